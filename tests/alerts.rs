//! Alerts reach a real HTTP receiver: an event that dies and its recovery, a sink that
//! is down and comes back, a backlog that fires and resolves, and two billd processes on
//! one database that send one alert, not two.

mod common;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use billd::{
    app::App,
    config::Config,
    store::events::{self as inbox, NewEvent, Status},
};
use common::{WEBHOOK_SECRET, fixture_as, sign, spawn_app_with, test_config, test_secrets};
use serde_json::Value;
use tokio::sync::oneshot;
use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};

/// Alerts settings for tests: a check every second, quick retries.
fn alerting(config: &mut Config, url: &str) {
    config.workers.max_attempts = 1;
    config.alerts.webhook_url = url.to_string();
    config.alerts.check_interval_secs = 1;
    config.alerts.retry_backoff_ms = 20;
    config.alerts.retries = 50;
}

async fn accepting() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .mount(&server)
        .await;
    server
}

/// The alerts the receiver accepted (answered 2xx), in order.
async fn alerts(server: &MockServer, answered_500: usize) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .skip(answered_500)
        .filter_map(|r| serde_json::from_slice(&r.body).ok())
        .collect()
}

/// Waits (at most 20 s) until the receiver has an alert of `kind` with `resolved`.
async fn wait_for(server: &MockServer, skip: usize, kind: &str, resolved: bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(alert) = alerts(server, skip)
            .await
            .into_iter()
            .find(|a| a["kind"] == kind && a["resolved"] == resolved)
        {
            return alert;
        }
        assert!(
            Instant::now() < deadline,
            "no {kind} alert (resolved: {resolved}): {:?}",
            alerts(server, 0).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn count(alerts: &[Value], kind: &str, resolved: bool) -> usize {
    alerts
        .iter()
        .filter(|a| a["kind"] == kind && a["resolved"] == resolved)
        .count()
}

/// An event the customer handler cannot read: with one attempt, it dies at once.
fn broken_event(id: &str) -> Value {
    let mut event = fixture_as("customer.updated.json", id);
    event["livemode"] = false.into();
    event["data"]["object"]["id"] = 42.into();
    event
}

async fn post(address: &str, event: &Value) {
    let body = event.to_string();
    let header = sign(&body, WEBHOOK_SECRET, billd::time::now_secs());
    let answer = reqwest::Client::new()
        .post(format!("{address}/stripe/webhook"))
        .header("Stripe-Signature", header)
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.status());
}

/// What a fixed billd would do for a dead event: read it again, as replay does, with a
/// payload that this version can parse.
fn fix_and_replay(dir: &Path, id: &str) {
    let mut event = fixture_as("customer.updated.json", id);
    event["livemode"] = false.into();
    // Blocking database work: off the test's runtime thread.
    std::thread::scope(|s| {
        s.spawn(|| {
            let store = common::open_store(dir);
            let conn = store.conn().unwrap();
            conn.execute(
                "UPDATE events SET payload = ?1 WHERE id = ?2",
                billd::params![event.to_string(), id],
            )
            .unwrap();
            inbox::requeue(&conn, id, billd::time::now_ms()).unwrap();
        });
    });
}

#[tokio::test]
async fn a_dead_event_alerts_once_and_its_recovery_is_announced_after_replay() {
    let receiver = accepting().await;
    let uri = receiver.uri();
    let app = spawn_app_with(|c| alerting(c, &uri), &[WEBHOOK_SECRET]).await;
    app.post_event(&broken_event("evt_alert_dead")).await;
    assert_eq!(app.settled("evt_alert_dead").await, Status::Dead);

    let alert = wait_for(&receiver, 0, "event_dead", false).await;
    assert_eq!(alert["severity"], "critical");
    assert_eq!(alert["details"]["dead"], 1);
    assert_eq!(
        alert["details"]["newest_dead_event_ids"][0],
        "evt_alert_dead"
    );
    assert!(alert["text"].as_str().unwrap().contains("event_dead"));
    // Ids and counts only: nothing of the payload.
    assert!(!alert.to_string().contains("customer.updated"), "{alert}");

    fix_and_replay(app.dir.path(), "evt_alert_dead");
    assert_eq!(app.settled("evt_alert_dead").await, Status::Processed);
    let resolved = wait_for(&receiver, 0, "event_dead", true).await;
    assert_eq!(resolved["kind"], "event_dead");
    let all = alerts(&receiver, 0).await;
    assert_eq!(count(&all, "event_dead", false), 1, "{all:?}");
    assert_eq!(count(&all, "event_dead", true), 1, "{all:?}");
    app.shutdown().await;
}

#[tokio::test]
async fn an_alert_reaches_a_sink_that_answered_500_once_it_comes_back() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(3)
        .with_priority(1)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let uri = receiver.uri();
    let app = spawn_app_with(|c| alerting(c, &uri), &[WEBHOOK_SECRET]).await;
    app.post_event(&broken_event("evt_alert_down")).await;
    assert_eq!(app.settled("evt_alert_down").await, Status::Dead);
    let alert = wait_for(&receiver, 3, "event_dead", false).await;
    assert_eq!(
        alert["details"]["newest_dead_event_ids"][0],
        "evt_alert_down"
    );
    let all = alerts(&receiver, 0).await;
    assert_eq!(
        count(&all, "event_dead", false),
        4,
        "three refused, one taken: {all:?}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn an_alert_reaches_a_sink_that_refused_connections_once_it_listens() {
    // A port nothing listens on, until the receiver starts there.
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = reserved.local_addr().unwrap();
    drop(reserved);
    let url = format!("http://{addr}");
    let app = spawn_app_with(
        |c| {
            alerting(c, &url);
            c.alerts.retry_backoff_ms = 100;
        },
        &[WEBHOOK_SECRET],
    )
    .await;
    app.post_event(&broken_event("evt_alert_refused")).await;
    assert_eq!(app.settled("evt_alert_refused").await, Status::Dead);
    let listener = std::net::TcpListener::bind(addr).unwrap();
    let receiver = MockServer::builder().listener(listener).start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    wait_for(&receiver, 0, "event_dead", false).await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_backlog_fires_and_resolves_once_the_old_event_is_applied() {
    let receiver = accepting().await;
    let uri = receiver.uri();
    let app = spawn_app_with(
        |c| {
            alerting(c, &uri);
            c.alerts.backlog_secs = 30;
            c.workers.max_attempts = 5;
        },
        &[WEBHOOK_SECRET],
    )
    .await;
    // An event received a minute ago, held back by a retry far in the future.
    let mut event = fixture_as("customer.updated.json", "evt_alert_old");
    event["livemode"] = false.into();
    let now = billd::time::now_ms();
    app.store
        .run(move |conn| {
            let tx = conn.transaction()?;
            inbox::insert(
                &tx,
                &NewEvent {
                    id: "evt_alert_old".into(),
                    type_: "customer.updated".into(),
                    account: None,
                    livemode: false,
                    api_version: None,
                    created: 1,
                    payload: event.to_string(),
                },
                now - 60_000,
            )?;
            let seq = inbox::get(&tx, "evt_alert_old")?.seq;
            inbox::fail(&tx, seq, "held back by the test", Some(now + 3_600_000))?;
            tx.commit()?;
            Ok(())
        })
        .await
        .unwrap();
    let alert = wait_for(&receiver, 0, "backlog", false).await;
    assert!(alert["details"]["oldest_waiting_secs"].as_i64().unwrap() >= 60);
    assert_eq!(alert["details"]["waiting"], 1);

    app.store
        .run(|conn| inbox::requeue(conn, "evt_alert_old", billd::time::now_ms()))
        .await
        .unwrap();
    assert_eq!(app.settled("evt_alert_old").await, Status::Processed);
    wait_for(&receiver, 0, "backlog", true).await;
    app.shutdown().await;
}

#[tokio::test]
async fn two_processes_on_one_database_send_one_alert_not_two() {
    let receiver = accepting().await;
    let dir = tempfile::tempdir().unwrap();
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let mut config = test_config(dir.path());
        alerting(&mut config, &receiver.uri());
        let app = App::build(config, &test_secrets(&[WEBHOOK_SECRET]))
            .await
            .expect("app builds");
        let address = format!("http://{}", app.local_addr());
        let (stop, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until(async move {
            let _ = rx.await;
        }));
        nodes.push((address, stop, handle));
    }
    post(&nodes[0].0, &broken_event("evt_alert_twice")).await;
    wait_for(&receiver, 0, "event_dead", false).await;
    // Both processes check every second: after three, each has seen the dead event.
    tokio::time::sleep(Duration::from_secs(3)).await;
    fix_and_replay(dir.path(), "evt_alert_twice");
    wait_for(&receiver, 0, "event_dead", true).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (_, stop, handle) in nodes {
        let _ = stop.send(());
        handle.await.unwrap().unwrap();
    }
    let all = alerts(&receiver, 0).await;
    assert_eq!(count(&all, "event_dead", false), 1, "{all:?}");
    assert_eq!(count(&all, "event_dead", true), 1, "{all:?}");
}

#[tokio::test]
async fn a_burst_of_bad_signatures_alerts() {
    let receiver = accepting().await;
    let uri = receiver.uri();
    let app = spawn_app_with(
        |c| {
            alerting(c, &uri);
            c.alerts.signature_failures = 3;
        },
        &[WEBHOOK_SECRET],
    )
    .await;
    for _ in 0..3 {
        let body = broken_event("evt_alert_sig").to_string();
        let header = sign(&body, "whsec_not_the_secret", billd::time::now_secs());
        assert_eq!(app.post_webhook(body, Some(&header)).await.status(), 400);
    }
    let alert = wait_for(&receiver, 0, "signature_failures", false).await;
    assert!(alert["details"]["count"].as_u64().unwrap() >= 3, "{alert}");
    app.shutdown().await;
}

//! Crash safety: SIGKILL the daemon during a burst of deliveries, restart it, re-send
//! what got no 2xx (as Stripe would) plus some that did; every event is stored exactly
//! once and applied exactly once.

mod common;

use std::{collections::BTreeSet, time::Duration};

use common::{daemon::*, fixture_as, sign};

const EVENTS: usize = 400;

fn event(i: usize) -> String {
    let mut e = fixture_as("charge.succeeded.json", &format!("evt_crash_{i:04}"));
    e["livemode"] = false.into();
    e["data"]["object"]["id"] = format!("ch_crash_{i:04}").into();
    e["data"]["object"]["payment_intent"] = format!("pi_crash_{i:04}").into();
    e.to_string()
}

async fn deliver(client: &reqwest::Client, address: &str, body: String) -> bool {
    let header = sign(&body, "whsec_crash", billd::time::now_secs());
    match client
        .post(format!("{address}/stripe/webhook"))
        .header("Stripe-Signature", header)
        .body(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
    {
        Ok(r) => r.status().is_success(),
        Err(_) => false,
    }
}

/// Sends all events from 16 concurrent senders and calls `stop` once a third of them
/// were acknowledged; returns every acknowledged event, including those answered
/// while `stop` ran.
async fn burst_until_stopped(
    client: &reqwest::Client,
    address: &str,
    stop: impl FnOnce(),
) -> BTreeSet<usize> {
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel::<usize>();
    let mut senders = Vec::new();
    for lane in 0..16 {
        let client = client.clone();
        let address = address.to_string();
        let acked = acked_tx.clone();
        senders.push(tokio::spawn(async move {
            for i in (lane..EVENTS).step_by(16) {
                if deliver(&client, &address, event(i)).await {
                    let _ = acked.send(i);
                }
            }
        }));
    }
    drop(acked_tx);
    let mut acked = BTreeSet::new();
    while let Some(i) = acked_rx.recv().await {
        acked.insert(i);
        if acked.len() == EVENTS / 3 {
            break;
        }
    }
    stop();
    for s in senders {
        s.await.unwrap();
    }
    while let Ok(i) = acked_rx.try_recv() {
        acked.insert(i);
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_daemon_mid_burst_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let daemon = Daemon::start(&config, "whsec_crash");
    let client = reqwest::Client::new();

    // A burst from 16 concurrent senders; the daemon dies part-way through it.
    let acked = burst_until_stopped(&client, &daemon.address.clone(), || daemon.kill()).await;
    assert!(
        acked.len() < EVENTS,
        "the kill came too late to test anything"
    );

    // Every acknowledged event survived the kill.
    let store = common::open_store(dir.path());
    let stored: BTreeSet<usize> = common::blocking(|| {
        let conn = store.conn().unwrap();
        let mut stmt = conn.prepare("SELECT id FROM events").unwrap();
        stmt.query_map((), |r| r.get::<_, String>(0))
            .unwrap()
            .map(|id| id.unwrap()["evt_crash_".len()..].parse().unwrap())
            .collect()
    });
    assert!(acked.is_subset(&stored), "acknowledged events were lost");

    // Stripe retries what got no 2xx; it may also re-send some that did.
    let daemon = Daemon::start(&config, "whsec_crash");
    for i in 0..EVENTS {
        if !acked.contains(&i) || i % 7 == 0 {
            assert!(
                deliver(&client, &daemon.address, event(i)).await,
                "redelivery {i} failed"
            );
        }
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let waiting = common::count(
            &store,
            "SELECT count(*) FROM events WHERE status <> 'processed'",
        );
        if waiting == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{waiting} events never applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.stop();

    let (events, once, payments) = common::blocking(|| {
        let conn = store.conn().unwrap();
        let (events, once): (i64, i64) = conn
            .query_row(
                "SELECT count(*), sum(CASE WHEN attempts = 1 THEN 1 ELSE 0 END) FROM events
                 WHERE id LIKE 'evt_crash_%'",
                (),
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        let payments: i64 = conn
            .query_row(
                "SELECT count(*) FROM payments WHERE id LIKE 'pi_crash_%'",
                (),
                |r| r.get(0),
            )
            .unwrap();
        (events, once, payments)
    });
    assert_eq!(events, EVENTS as i64, "every event stored exactly once");
    // `attempts` is bumped in the apply's own transaction: 1 means applied exactly once.
    assert_eq!(once, EVENTS as i64, "every event applied exactly once");
    assert_eq!(payments, EVENTS as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_burst_finishes_in_flight_work_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let daemon = Daemon::start(&config, "whsec_crash");
    let client = reqwest::Client::new();
    // A graceful stop mid-burst: the daemon must exit 0 on its own.
    let mut lines = Vec::new();
    let acked =
        burst_until_stopped(&client, &daemon.address.clone(), || lines = daemon.stop()).await;
    assert!(
        lines.iter().any(|l| l.contains("billd stopped")),
        "no clean stop logged"
    );

    let store = common::open_store(dir.path());
    let rows: Vec<(String, String, i64)> = common::blocking(|| {
        let conn = store.conn().unwrap();
        let mut stmt = conn
            .prepare("SELECT id, status, attempts FROM events")
            .unwrap();
        stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    });
    let stored: BTreeSet<usize> = rows
        .iter()
        .map(|(id, _, _)| id["evt_crash_".len()..].parse().unwrap())
        .collect();
    assert!(acked.is_subset(&stored), "acknowledged events were lost");
    // Whatever was being applied was finished, never left half-done: every event is
    // either applied once or still waiting, untouched.
    for (id, status, attempts) in &rows {
        match status.as_str() {
            "processed" => assert_eq!(*attempts, 1, "{id}"),
            "pending" => assert_eq!(*attempts, 0, "{id}"),
            other => panic!("{id} is {other}"),
        }
    }
}

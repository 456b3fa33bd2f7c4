//! Gap repair: events Stripe holds undelivered that the inbox lacks are listed from
//! Stripe's `/v1/events` (wiremock as Stripe), stored through the webhook's own path,
//! applied, alerted as `gap`, and the check is made by one process at a time.

mod common;

use std::time::{Duration, Instant};

use billd::store::{
    events::{self as inbox, Status},
    gap,
};
use common::{WEBHOOK_SECRET, fixture_as, spawn_app_with};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path, query_param},
};

fn listing(events: &[Value]) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "object": "list", "data": events, "has_more": false, "url": "/v1/events",
    }))
}

#[tokio::test]
async fn undelivered_events_the_inbox_lacks_are_stored_applied_and_alerted_as_a_gap() {
    let stripe = MockServer::start().await;
    // A payment that reached billd as a webhook and is listed again by Stripe: it must
    // count once.
    let delivered = fixture_as("charge.succeeded.json", "evt_gap_delivered");
    let mut lost = fixture_as("customer.created.json", "evt_gap_lost");
    lost["data"]["object"]["id"] = "cus_gap_lost".into();
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(query_param("delivery_success", "false"))
        .respond_with(listing(&[lost.clone(), delivered.clone()]))
        .mount(&stripe)
        .await;
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&receiver)
        .await;
    let (base, url) = (stripe.uri(), receiver.uri());
    let app = spawn_app_with(
        move |c| {
            c.stripe.api_base = base;
            c.stripe.gap_repair_interval_secs = 1;
            c.alerts.webhook_url = url;
            c.alerts.check_interval_secs = 1;
        },
        &[WEBHOOK_SECRET],
    )
    .await;
    // One of the two reached billd as a webhook; the other never did.
    assert_eq!(app.post_event(&delivered).await.status(), 200);

    assert_eq!(app.settled("evt_gap_lost").await, Status::Processed);
    let r = app
        .get(
            "/stripe/customers/cus_gap_lost",
            &app.token(billd::store::tokens::Scope::Read).await,
        )
        .await;
    assert_eq!(r.status(), 200, "the lost event was applied to the mirror");
    // The repair records its run after handing the events over, so the event can be
    // applied a moment before its state says so: wait for the record.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let state = loop {
        let state = app.store.run(|c| gap::state(c)).await.unwrap();
        if state.total_found > 0 || std::time::Instant::now() > deadline {
            break state;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(state.total_found, 1, "{state:?}");
    assert!(state.cursor.is_some());
    // The listing asked for undelivered events since a cursor.
    let asked = stripe.received_requests().await.unwrap_or_default();
    assert!(
        asked[0]
            .url
            .query()
            .unwrap_or("")
            .contains("created%5Bgte%5D=")
            || asked[0].url.query().unwrap_or("").contains("created[gte]="),
        "{}",
        asked[0].url
    );

    // The alert task reports it once, as `gap`.
    let deadline = Instant::now() + Duration::from_secs(20);
    let gap_alert = loop {
        let got: Vec<Value> = receiver
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter_map(|r| serde_json::from_slice(&r.body).ok())
            .collect();
        if let Some(a) = got.into_iter().find(|a| a["kind"] == "gap") {
            break a;
        }
        assert!(Instant::now() < deadline, "no gap alert");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(gap_alert["resolved"], false);
    assert_eq!(gap_alert["details"]["missing"], 1);
    // The payment delivered twice (webhook, then gap repair) is one payment.
    let payments: Value = app
        .get(
            "/stripe/payments?limit=100",
            &app.token(billd::store::tokens::Scope::Read).await,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(payments["data"].as_array().unwrap().len(), 1, "{payments}");
    // Both events are in the inbox once.
    let n = app
        .store
        .run(|c| inbox::counts(c))
        .await
        .unwrap()
        .iter()
        .map(|(_, n)| n)
        .sum::<i64>();
    assert_eq!(n, 2);
    app.shutdown().await;
}

#[tokio::test]
async fn a_check_claimed_by_another_process_is_left_to_it() {
    let stripe = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .respond_with(listing(&[]))
        .mount(&stripe)
        .await;
    let base = stripe.uri();
    let app = spawn_app_with(
        move |c| {
            c.stripe.api_base = base;
            c.stripe.gap_repair_interval_secs = 1;
        },
        &[WEBHOOK_SECRET],
    )
    .await;
    // Another process holds the check for a long while.
    let held = app
        .store
        .run(|c| gap::claim(c, "another-node", billd::time::now_ms(), 3_600_000))
        .await
        .unwrap();
    assert_eq!(held, Some(None));
    // Several intervals pass: this process never lists Stripe's events.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert!(
        stripe
            .received_requests()
            .await
            .unwrap_or_default()
            .is_empty()
    );
    app.shutdown().await;
}

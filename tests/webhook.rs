//! The webhook endpoint over real HTTP: signatures, durability answers, duplicates,
//! ordering, unknown types, livemode and connected accounts (DESIGN §5).

mod common;

use std::sync::atomic::Ordering;

use billd::store::{events as inbox, events::Status, mirror};
use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn every_signature_vector_made_by_stripes_library_gets_the_same_verdict_over_http() {
    let mut checked = 0;
    for case in signature_vectors() {
        // HTTP strips whitespace around a header value before any server (or Stripe's
        // library behind one) sees it; those cases are checked by the verifier's unit test.
        if case.header.trim() != case.header {
            continue;
        }
        checked += 1;
        let secrets: Vec<&str> = case.secrets.iter().map(String::as_str).collect();
        let tolerance = case.tolerance;
        let app = spawn_app_with(|c| c.stripe.webhook_tolerance_secs = tolerance, &secrets).await;
        app.clock.store(case.now, Ordering::SeqCst);
        let response = app
            .post_webhook(case.payload.clone(), Some(&case.header))
            .await;
        let status = response.status().as_u16();
        let body: serde_json::Value = response.json().await.unwrap();
        if case.valid {
            // A valid signature over a body that is no event (the empty body) is still a 400,
            // but never a signature error.
            assert_ne!(
                body["error"]["type"], "invalid_signature",
                "{}: {body}",
                case.name
            );
        } else {
            assert_eq!(status, 400, "{}", case.name);
            assert_eq!(
                body["error"]["type"], "invalid_signature",
                "{}: {body}",
                case.name
            );
        }
        app.shutdown().await;
    }
    assert!(checked > 40, "only {checked} vectors were checked");
}

#[tokio::test]
async fn webhook_with_a_bad_signature_is_rejected_and_not_stored() {
    let app = spawn_app().await;
    let body = fixture("customer.created.json").to_string();
    let header = sign(&body, "whsec_someone_else", billd::time::now_secs());
    let response = app.post_webhook(body, Some(&header)).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_signature");
    assert!(
        error["error"]["request_id"]
            .as_str()
            .unwrap()
            .starts_with("req_")
    );
    let stored = app
        .store
        .run(|c| inbox::get(c, "evt_wrapped_customer_created"))
        .await;
    assert!(stored.is_err(), "a rejected event must not be stored");
    app.shutdown().await;
}

#[tokio::test]
async fn webhook_with_stale_timestamp_is_rejected() {
    let app = spawn_app().await;
    let body = fixture("customer.created.json").to_string();
    let header = sign(&body, WEBHOOK_SECRET, billd::time::now_secs() - 301);
    let response = app.post_webhook(body, Some(&header)).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tolerance")
    );
    app.shutdown().await;
}

#[tokio::test]
async fn webhook_without_signature_header_is_rejected() {
    let app = spawn_app().await;
    let response = app
        .post_webhook(fixture("customer.created.json").to_string(), None)
        .await;
    assert_eq!(response.status(), 400);
    app.shutdown().await;
}

#[tokio::test]
async fn malformed_json_with_a_valid_signature_is_rejected() {
    let app = spawn_app().await;
    for body in ["{not json", r#"{"id":"evt_1","type":"x"}"#, "[]", ""] {
        let header = sign(body, WEBHOOK_SECRET, billd::time::now_secs());
        let response = app.post_webhook(body.to_string(), Some(&header)).await;
        assert_eq!(response.status(), 400, "body {body:?}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_duplicate_delivery_answers_200_and_changes_nothing() {
    let app = spawn_app().await;
    let event = fixture_as("customer.created.json", "evt_dup_1");
    let first: Value = app.post_event(&event).await.json().await.unwrap();
    assert_eq!(first, json!({"received": true, "duplicate": false}));
    assert_eq!(app.settled("evt_dup_1").await, Status::Processed);
    let before = app.store.run(|c| inbox::get(c, "evt_dup_1")).await.unwrap();
    let second: Value = app.post_event(&event).await.json().await.unwrap();
    assert_eq!(second, json!({"received": true, "duplicate": true}));
    let after = app.store.run(|c| inbox::get(c, "evt_dup_1")).await.unwrap();
    assert_eq!(before.attempts, after.attempts);
    assert_eq!(before.processed_at_ms, after.processed_at_ms);
    app.shutdown().await;
}

#[tokio::test]
async fn an_older_event_arriving_late_does_not_overwrite_newer_state() {
    let app = spawn_app().await;
    let mut newer = fixture_as("customer.updated.json", "evt_new");
    newer["created"] = 2_000.into();
    newer["data"]["object"]["name"] = "Newer".into();
    let mut older = fixture_as("customer.updated.json", "evt_old");
    older["created"] = 1_000.into();
    older["data"]["object"]["name"] = "Older".into();
    app.post_event(&newer).await;
    app.settled("evt_new").await;
    app.post_event(&older).await;
    assert_eq!(app.settled("evt_old").await, Status::Processed);
    let customer = app
        .store
        .run(|c| mirror::get_customer(c, "cus_IhGfebO16cMIGN"))
        .await
        .unwrap();
    assert_eq!(customer.name.as_deref(), Some("Newer"));
    app.shutdown().await;
}

#[tokio::test]
async fn an_unknown_event_type_is_stored_as_ignored_with_200() {
    let app = spawn_app().await;
    let event = json!({
        "id": "evt_unknown_1", "object": "event", "type": "billing.something_new",
        "created": 1_700_000_000, "livemode": false, "data": {"object": {"id": "x_1"}}
    });
    let response = app.post_event(&event).await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.settled("evt_unknown_1").await, Status::Ignored);
    app.shutdown().await;
}

#[tokio::test]
async fn a_livemode_mismatch_is_stored_and_never_applied() {
    let app = spawn_app().await; // test mode
    let mut event = fixture_as("customer.created.json", "evt_live_1");
    event["livemode"] = true.into();
    assert_eq!(app.post_event(&event).await.status(), 200);
    assert_eq!(app.settled("evt_live_1").await, Status::Ignored);
    let row = app
        .store
        .run(|c| inbox::get(c, "evt_live_1"))
        .await
        .unwrap();
    assert!(row.last_error.unwrap().contains("livemode"));
    let customer = app
        .store
        .run(|c| mirror::get_customer(c, "cus_IhGfebO16cMIGN"))
        .await;
    assert!(
        customer.is_err(),
        "a live event must not reach a test-mode mirror"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn a_connected_account_event_is_stored_with_its_account() {
    let app = spawn_app().await;
    let event = fixture_as("account.updated.json", "evt_acct_1");
    let account = event["account"].as_str().unwrap().to_string();
    assert_eq!(app.post_event(&event).await.status(), 200);
    app.settled("evt_acct_1").await;
    let row = app
        .store
        .run(|c| inbox::get(c, "evt_acct_1"))
        .await
        .unwrap();
    assert_eq!(row.account.as_deref(), Some(account.as_str()));
    app.shutdown().await;
}

#[tokio::test]
async fn concurrent_deliveries_are_each_stored_exactly_once() {
    // 200 requests at once from one address: above the default in-flight cap per
    // address (128), which would answer some 503 when the disk is slow (as designed:
    // tests/edge.rs checks the cap). This test is about storing each event once.
    let app = spawn_app_with(
        |c| {
            c.limits.max_in_flight = 1_024;
            c.limits.max_in_flight_per_address = 1_024;
        },
        &[WEBHOOK_SECRET],
    )
    .await;
    let mut tasks = Vec::new();
    for i in 0..100 {
        // Every event is delivered twice, concurrently.
        for _ in 0..2 {
            let event = fixture_as("customer.updated.json", &format!("evt_burst_{i}"));
            let client = app.client.clone();
            let url = app.url("/stripe/webhook");
            tasks.push(tokio::spawn(async move {
                let body = event.to_string();
                let header = sign(&body, WEBHOOK_SECRET, billd::time::now_secs());
                let r = client
                    .post(url)
                    .header("Stripe-Signature", header)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                r.json::<Value>().await.unwrap()["duplicate"]
                    .as_bool()
                    .unwrap()
            }));
        }
    }
    let mut duplicates = 0;
    for t in tasks {
        duplicates += usize::from(t.await.unwrap());
    }
    assert_eq!(duplicates, 100);
    app.drained().await;
    let count: i64 = app
        .store
        .run(|c| {
            Ok(c.query_row(
                "SELECT count(*) FROM events WHERE status = 'processed'",
                (),
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(count, 100);
    app.shutdown().await;
}

#[tokio::test]
async fn a_signed_envelope_with_an_unusable_id_created_or_object_is_refused_and_not_stored() {
    let app = spawn_app().await;
    let base = json!({
        "id": "evt_env_ok", "object": "event", "type": "customer.created",
        "created": 1_700_000_000, "livemode": false,
        "data": {"object": {"id": "cus_env", "object": "customer", "email": "secret@example.com"}}
    });
    let mut cases: Vec<(&str, Value)> = Vec::new();
    let mut e = base.clone();
    e["id"] = "".into();
    cases.push(("empty id", e));
    for created in [json!(i64::MAX), json!(-1), json!(253_402_300_800_i64)] {
        let mut e = base.clone();
        e["id"] = "evt_env_created".into();
        e["created"] = created;
        cases.push(("created out of range", e));
    }
    for object in [json!(null), json!("cus_env"), json!([1, 2]), json!(42)] {
        let mut e = base.clone();
        e["id"] = "evt_env_object".into();
        e["data"]["object"] = object;
        cases.push(("object not an object", e));
    }
    let mut e = base.clone();
    e["id"] = "evt_env_object".into();
    e["data"] = json!({"previous_attributes": {}});
    cases.push(("object missing", e));
    for (what, event) in cases {
        let response = app.post_event(&event).await;
        assert_eq!(response.status(), 400, "{what}: {event}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "invalid_request", "{what}: {body}");
        assert!(body["error"]["request_id"].is_string(), "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        for value in ["secret@example.com", "cus_env", "9223372036854775807"] {
            assert!(!message.contains(value), "{what}: {message}");
        }
    }
    let stored = app
        .store
        .run(|c| {
            inbox::list(
                c,
                &inbox::Filter {
                    limit: 100,
                    ..inbox::Filter::default()
                },
            )
        })
        .await
        .unwrap();
    assert!(
        stored.0.is_empty(),
        "refused events were stored: {stored:?}"
    );

    // The bounds themselves are times, and are stored.
    for (id, created) in [("evt_env_zero", 0_i64), ("evt_env_max", 253_402_300_799)] {
        let mut e = base.clone();
        e["id"] = id.into();
        e["created"] = created.into();
        assert_eq!(app.post_event(&e).await.status(), 200, "{id}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_body_over_the_limit_answers_413_in_the_error_shape() {
    let app = spawn_app().await;
    let body = format!(
        r#"{{"id":"evt_big","pad":"{}"}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let header = sign(&body, WEBHOOK_SECRET, billd::time::now_secs());
    let response = app.post_webhook(body, Some(&header)).await;
    assert_eq!(response.status(), 413);
    let request_id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_string();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "payload_too_large", "{body}");
    assert_eq!(body["error"]["request_id"], request_id.as_str());
    app.shutdown().await;
}

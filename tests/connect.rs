//! Acting for a connected account (docs/connect.md) against an HTTP mock answering
//! Stripe's shapes (localstripe has no Connect): direct charges, customers, Checkout
//! sessions and refunds sent with `Stripe-Account`, destination charges with
//! `transfer_data[destination]` and an application fee, mirror rows that keep their
//! account, and a Connect endpoint's webhook secret accepted beside the platform's.

mod common;

use billd::store::tokens::Scope;
use common::*;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

const ACCT: &str = "acct_1Connected";

fn payment_intent() -> Value {
    json!({
        "id": "pi_c1", "object": "payment_intent", "status": "succeeded", "amount": 2000,
        "currency": "eur", "customer": "cus_c1", "created": 1_735_689_600, "livemode": false,
        "latest_charge": {
            "id": "ch_c1", "object": "charge", "payment_intent": "pi_c1", "customer": "cus_c1",
            "amount": 2000, "amount_captured": 2000, "amount_refunded": 0, "currency": "eur",
            "status": "succeeded", "created": 1_735_689_600, "livemode": false, "refunds": {"object": "list", "data": []}
        }
    })
}

async fn app_on(mock: &MockServer) -> (TestApp, String) {
    let base = mock.uri();
    let app = spawn_app_with(
        move |c| {
            c.stripe.api_base = base;
            c.stripe.max_retries = 0;
        },
        &[WEBHOOK_SECRET],
    )
    .await;
    // Refunds need admin (DESIGN §3); everything else here, write.
    let token = app.token(Scope::Admin).await;
    (app, token)
}

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    let r = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The requests the mock received for `path`: (Stripe-Account header, form body).
async fn sent(mock: &MockServer, to: &str) -> Vec<(Option<String>, String)> {
    mock.received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path() == to)
        .map(|r| {
            (
                r.headers
                    .get("stripe-account")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string),
                String::from_utf8_lossy(&r.body).into_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_direct_charge_and_its_refund_are_made_on_the_connected_account() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(200).set_body_json(payment_intent()))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_c1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(payment_intent()))
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "re_c1", "object": "refund", "payment_intent": "pi_c1", "charge": "ch_c1",
            "amount": 500, "currency": "eur", "status": "succeeded", "created": 1_735_690_000
        })))
        .mount(&mock)
        .await;
    let (app, token) = app_on(&mock).await;

    let (status, p) = post(
        &app,
        &token,
        "/stripe/payments",
        json!({"account": ACCT, "customer": "cus_c1", "payment_method": "pm_c1",
               "amount": 2000, "currency": "eur"}),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    let calls = sent(&mock, "/v1/payment_intents").await;
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].0.as_deref(),
        Some(ACCT),
        "sent with Stripe-Account"
    );
    // The mirror keeps the payment's account, as the account's own webhooks would.
    let store = open_store(app.dir.path());
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM payments WHERE id = 'pi_c1' AND account = 'acct_1Connected'"
        ),
        1
    );

    let (status, r) = post(
        &app,
        &token,
        "/stripe/refunds",
        json!({"account": ACCT, "payment_intent": "pi_c1", "amount": 500}),
    )
    .await;
    assert_eq!(status, 201, "{r}");
    let reads = mock.received_requests().await.unwrap_or_default();
    let read = reads
        .iter()
        .find(|r| r.url.path() == "/v1/payment_intents/pi_c1")
        .expect("the payment is read first");
    assert_eq!(
        read.headers
            .get("stripe-account")
            .and_then(|v| v.to_str().ok()),
        Some(ACCT)
    );
    let refunds = sent(&mock, "/v1/refunds").await;
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].0.as_deref(), Some(ACCT));
    app.shutdown().await;
}

#[tokio::test]
async fn a_destination_charge_names_the_account_and_the_fee_and_bad_combinations_are_400s() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(ResponseTemplate::new(200).set_body_json(payment_intent()))
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cus_c2", "object": "customer", "email": "buyer@example.com",
            "created": 1_735_689_600, "livemode": false
        })))
        .mount(&mock)
        .await;
    let (app, token) = app_on(&mock).await;

    let (status, p) = post(
        &app,
        &token,
        "/stripe/payments",
        json!({"payment_method": "pm_c1", "amount": 2000, "currency": "eur",
               "transfer_data": {"destination": ACCT}, "application_fee_amount": 200}),
    )
    .await;
    assert_eq!(status, 201, "{p}");
    let calls = sent(&mock, "/v1/payment_intents").await;
    assert_eq!(calls.len(), 1);
    // On the platform: no Stripe-Account; the destination and fee in the form.
    assert_eq!(calls[0].0, None);
    assert!(
        calls[0]
            .1
            .contains("transfer_data[destination]=acct_1Connected")
            || calls[0]
                .1
                .contains("transfer_data%5Bdestination%5D=acct_1Connected"),
        "{}",
        calls[0].1
    );
    assert!(
        calls[0].1.contains("application_fee_amount=200"),
        "{}",
        calls[0].1
    );

    // A customer of the connected account.
    let (status, c) = post(
        &app,
        &token,
        "/stripe/customers",
        json!({"account": ACCT, "email": "buyer@example.com"}),
    )
    .await;
    assert_eq!(status, 201, "{c}");
    let customers = sent(&mock, "/v1/customers").await;
    assert_eq!(customers[0].0.as_deref(), Some(ACCT));

    for (body, param) in [
        (
            json!({"account": "acct_1/../x", "payment_method": "pm_c1", "amount": 1, "currency": "eur"}),
            "account",
        ),
        (
            json!({"payment_method": "pm_c1", "amount": 1, "currency": "eur",
                   "transfer_data": {"destination": "cus_1"}}),
            "transfer_data.destination",
        ),
        (
            json!({"payment_method": "pm_c1", "amount": 1000, "currency": "eur",
                   "application_fee_amount": 100}),
            "application_fee_amount",
        ),
        (
            json!({"payment_method": "pm_c1", "amount": 1000, "currency": "eur",
                   "transfer_data": {"destination": ACCT}, "application_fee_amount": 1001}),
            "application_fee_amount",
        ),
    ] {
        let (status, e) = post(&app, &token, "/stripe/payments", body.clone()).await;
        assert_eq!(status, 400, "{body}: {e}");
        assert_eq!(e["error"]["param"], param, "{body}: {e}");
    }
    let (status, e) = post(
        &app,
        &token,
        "/stripe/payments",
        json!({"account": ACCT, "payment_method": "pm_c1", "amount": 1000, "currency": "eur",
               "transfer_data": {"destination": ACCT}}),
    )
    .await;
    assert_eq!(status, 400, "{e}");
    // None of the refused requests reached Stripe.
    assert_eq!(sent(&mock, "/v1/payment_intents").await.len(), 1);
    app.shutdown().await;
}

#[tokio::test]
async fn a_connect_endpoints_secret_is_accepted_beside_the_platforms() {
    const CONNECT_SECRET: &str = "whsec_connect_endpoint_test";
    // `spawn_app_with` takes every secret the verifier accepts: the platform's and the
    // Connect endpoint's, as `[stripe] connect_webhook_secret_env` gives them.
    let app = spawn_app_with(|_| {}, &[WEBHOOK_SECRET, CONNECT_SECRET]).await;
    let mut event = fixture_as("account.updated.json", "evt_connect_signed");
    event["livemode"] = false.into();
    let body = event.to_string();
    let now = billd::time::now_secs();
    for (secret, status) in [(CONNECT_SECRET, 200), ("whsec_someone_else", 400)] {
        let header = sign(&body, secret, now);
        let r = app
            .client
            .post(app.url("/stripe/webhook"))
            .header("Stripe-Signature", header)
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("request");
        assert_eq!(r.status().as_u16(), status, "{secret}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn mirror_reads_filter_by_connected_account() {
    let app = spawn_app().await;
    // The same kind of payment on the platform and on a connected account.
    let mut platform = fixture_as("payment_intent.succeeded.json", "evt_pi_platform");
    platform["livemode"] = false.into();
    platform["data"]["object"]["id"] = "pi_platform".into();
    let mut connected = fixture_as("payment_intent.succeeded.json", "evt_pi_connected");
    connected["livemode"] = false.into();
    connected["account"] = ACCT.into();
    connected["data"]["object"]["id"] = "pi_connected".into();
    for event in [platform, connected] {
        let id = event["id"].as_str().unwrap_or("").to_string();
        assert_eq!(app.post_event(&event).await.status(), 200, "{id}");
        assert_eq!(
            app.settled(&id).await,
            billd::store::events::Status::Processed,
            "{id}"
        );
    }
    let token = app.token(Scope::Read).await;
    let ids = |body: &Value| -> Vec<String> {
        body["data"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p["id"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let all: Value = app
        .get("/stripe/payments", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&all).len(), 2, "{all}");
    let r = app
        .get(&format!("/stripe/payments?account={ACCT}"), &token)
        .await;
    assert_eq!(r.status(), 200);
    let mine: Value = r.json().await.unwrap();
    assert_eq!(ids(&mine), vec!["pi_connected".to_string()], "{mine}");
    let r = app
        .get(&format!("/stripe/invoices?account={ACCT}"), &token)
        .await;
    assert_eq!(r.status(), 200);
    // A malformed account is a 400 naming it, as every id is.
    for path in [
        "/stripe/payments?account=cus_1",
        "/stripe/invoices?account=acct_x%2F..",
    ] {
        let r = app.get(path, &token).await;
        assert_eq!(r.status(), 400, "{path}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["param"], "account", "{path}: {e}");
    }
    app.shutdown().await;
}

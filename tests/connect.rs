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

/// A signed event of `type_` about `object`, from the connected `account` (or the
/// platform's own when `None`), created at `created`.
fn event(id: &str, type_: &str, account: Option<&str>, created: i64, object: Value) -> Value {
    json!({
        "id": id, "object": "event", "type": type_, "created": created, "livemode": false,
        "api_version": "2024-06-20", "account": account, "data": {"object": object},
    })
}

/// Jan 2025, when the report test's money moves.
const JAN: i64 = 1_735_689_600;

fn succeeded_payment(id: &str, amount: i64) -> Value {
    json!({
        "id": id, "object": "payment_intent", "amount": amount, "amount_received": amount,
        "currency": "eur", "status": "succeeded", "created": JAN + 3600, "livemode": false,
        "customer": format!("cus_of_{id}"),
    })
}

fn active_subscription(id: &str, unit_amount: i64) -> Value {
    json!({
        "id": id, "object": "subscription", "customer": format!("cus_of_{id}"),
        "status": "active", "created": JAN + 86_400, "currency": "eur", "livemode": false,
        "cancel_at_period_end": false, "current_period_end": JAN + 31 * 86_400,
        "items": {"object": "list", "data": [{
            "id": format!("si_of_{id}"), "object": "subscription_item", "quantity": 1,
            "price": {"id": "price_monthly", "object": "price", "unit_amount": unit_amount,
                      "currency": "eur", "recurring": {"interval": "month", "interval_count": 1},
                      "product": "prod_1"}
        }]}
    })
}

#[tokio::test]
async fn every_report_and_the_event_list_filter_by_connected_account() {
    let app = spawn_app().await;
    let events = [
        event(
            "evt_r_platform_pi",
            "payment_intent.succeeded",
            None,
            JAN + 3600,
            succeeded_payment("pi_r_platform", 1000),
        ),
        event(
            "evt_r_connected_pi",
            "payment_intent.succeeded",
            Some(ACCT),
            JAN + 3600,
            succeeded_payment("pi_r_connected", 2000),
        ),
        event(
            "evt_r_connected_re",
            "refund.created",
            Some(ACCT),
            JAN + 7200,
            json!({"id": "re_r_connected", "object": "refund", "payment_intent": "pi_r_connected",
                   "amount": 500, "currency": "eur", "status": "succeeded", "created": JAN + 7200}),
        ),
        event(
            "evt_r_platform_sub",
            "customer.subscription.created",
            None,
            JAN + 86_400,
            active_subscription("sub_r_platform", 900),
        ),
        event(
            "evt_r_connected_sub",
            "customer.subscription.created",
            Some(ACCT),
            JAN + 86_400,
            active_subscription("sub_r_connected", 1500),
        ),
    ];
    for e in &events {
        let id = e["id"].as_str().unwrap_or("").to_string();
        assert_eq!(app.post_event(e).await.status(), 200, "{id}");
        assert_eq!(
            app.settled(&id).await,
            billd::store::events::Status::Processed,
            "{id}"
        );
    }
    let token = app.token(Scope::Read).await;
    let get = |path: String| {
        let app = &app;
        let token = token.clone();
        async move {
            let r = app.get(&path, &token).await;
            assert_eq!(r.status(), 200, "{path}");
            r.json::<Value>().await.expect("json")
        }
    };
    let range = "from=2025-01-01&to=2025-02-01";

    let all = get(format!("/stripe/reports/revenue?{range}")).await;
    assert_eq!(all["data"][0]["gross"], 3000, "{all}");
    assert_eq!(all["data"][0]["refunded"], 500, "{all}");
    let mine = get(format!("/stripe/reports/revenue?{range}&account={ACCT}")).await;
    assert_eq!(mine["data"].as_array().map(Vec::len), Some(1), "{mine}");
    assert_eq!(mine["data"][0]["gross"], 2000, "{mine}");
    assert_eq!(mine["data"][0]["refunded"], 500, "{mine}");
    assert_eq!(mine["data"][0]["net"], 1500, "{mine}");
    assert_eq!(mine["data"][0]["payments"], 1, "{mine}");
    // An account with nothing has an empty report, not the platform's.
    let none = get(format!(
        "/stripe/reports/revenue?{range}&account=acct_1Other"
    ))
    .await;
    assert_eq!(none["data"], json!([]), "{none}");

    let at = "at=2025-01-15";
    let all = get(format!("/stripe/reports/mrr?{at}")).await;
    assert_eq!(all["data"][0]["mrr"], 2400, "{all}");
    let mine = get(format!("/stripe/reports/mrr?{at}&account={ACCT}")).await;
    assert_eq!(mine["data"][0]["mrr"], 1500, "{mine}");
    assert_eq!(mine["data"][0]["active_subscriptions"], 1, "{mine}");

    let mine = get(format!(
        "/stripe/reports/mrr-movements?{range}&account={ACCT}"
    ))
    .await;
    assert_eq!(mine["data"][0]["new"], 1500, "{mine}");
    let mine = get(format!(
        "/stripe/reports/subscriptions?{range}&account={ACCT}"
    ))
    .await;
    assert_eq!(mine["data"][0]["new"], 1, "{mine}");
    let all = get(format!("/stripe/reports/subscriptions?{range}")).await;
    assert_eq!(all["data"][0]["new"], 2, "{all}");
    let mine = get(format!("/stripe/reports/retention?{range}&account={ACCT}")).await;
    assert!(mine["data"].is_array(), "{mine}");
    let mine = get(format!(
        "/stripe/reports/failed-payments?{range}&account={ACCT}"
    ))
    .await;
    assert_eq!(mine["data"], json!([]), "{mine}");

    let mine = get(format!("/stripe/events?account={ACCT}")).await;
    let ids: Vec<&str> = mine["data"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        ids,
        [
            "evt_r_connected_sub",
            "evt_r_connected_re",
            "evt_r_connected_pi"
        ],
        "{mine}"
    );

    // A malformed account is a 400 naming it on every report.
    for report in [
        "revenue",
        "mrr",
        "mrr-movements",
        "subscriptions",
        "retention",
    ] {
        let r = app
            .get(
                &format!("/stripe/reports/{report}?account=acct_x%2F.."),
                &token,
            )
            .await;
        assert_eq!(r.status(), 400, "{report}");
        let e: Value = r.json().await.unwrap();
        assert_eq!(e["error"]["param"], "account", "{report}: {e}");
    }

    // The CLI reads the same: `billd report … --account`.
    let (code, out, err) = run_billd(
        &app,
        &[
            "report",
            "revenue",
            "--from",
            "2025-01-01",
            "--to",
            "2025-02-01",
            "--account",
            ACCT,
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let rows: Value = serde_json::from_str(&out).expect("json rows");
    let rows = rows.get("data").unwrap_or(&rows);
    assert_eq!(rows[0]["gross"], 2000, "{out}");
    let (code, out, err) = run_billd(
        &app,
        &[
            "report",
            "mrr",
            "--at",
            "2025-01-15",
            "--account",
            ACCT,
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let rows: Value = serde_json::from_str(&out).expect("json rows");
    let rows = rows.get("data").unwrap_or(&rows);
    assert_eq!(rows[0]["mrr"], 1500, "{out}");
    let (code, _, err) = run_billd(&app, &["report", "revenue", "--account", "cus_1"]);
    assert_eq!(code, 2, "a malformed account is a usage error: {err}");
    assert!(err.contains("--account"), "{err}");
    app.shutdown().await;
}

fn subscription_on_account(quantity: u64, status: &str) -> Value {
    let mut s = active_subscription("sub_c1", 1500);
    s["customer"] = "cus_c1".into();
    s["status"] = status.into();
    s["items"]["data"][0]["quantity"] = quantity.into();
    s
}

#[tokio::test]
async fn a_connected_accounts_customer_and_subscriptions_are_changed_on_that_account() {
    let mock = MockServer::start().await;
    let customer = json!({"id": "cus_c1", "object": "customer", "email": null,
                          "created": JAN, "livemode": false});
    for (verb, at, body) in [
        (
            "POST",
            "/v1/subscriptions",
            subscription_on_account(1, "active"),
        ),
        (
            "GET",
            "/v1/subscriptions/sub_c1",
            subscription_on_account(1, "active"),
        ),
        (
            "POST",
            "/v1/subscriptions/sub_c1",
            subscription_on_account(2, "active"),
        ),
        (
            "DELETE",
            "/v1/subscriptions/sub_c1",
            subscription_on_account(2, "canceled"),
        ),
        ("POST", "/v1/customers/cus_c1", customer.clone()),
    ] {
        Mock::given(method(verb))
            .and(path(at))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&mock)
            .await;
    }
    let (app, token) = app_on(&mock).await;
    // The mirror knows the customer from its account's webhook.
    let created = event(
        "evt_c1_customer",
        "customer.created",
        Some(ACCT),
        JAN,
        customer,
    );
    assert_eq!(app.post_event(&created).await.status(), 200);
    assert_eq!(
        app.settled("evt_c1_customer").await,
        billd::store::events::Status::Processed
    );

    // Made on the customer's account without being told, and mirrored with it.
    let (status, s) = post(
        &app,
        &token,
        "/stripe/subscriptions",
        json!({"customer": "cus_c1", "price": "price_monthly"}),
    )
    .await;
    assert_eq!(status, 201, "{s}");
    let calls = sent(&mock, "/v1/subscriptions").await;
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].0.as_deref(),
        Some(ACCT),
        "sent with Stripe-Account"
    );
    let store = open_store(app.dir.path());
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM subscriptions WHERE id = 'sub_c1' AND account = 'acct_1Connected'"
        ),
        1
    );

    // Changed and canceled there too: the mirror says whose it is.
    let r = app
        .client
        .patch(app.url("/stripe/subscriptions/sub_c1"))
        .bearer_auth(&token)
        .json(&json!({"quantity": 2}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .delete(app.url("/stripe/subscriptions/sub_c1"))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .patch(app.url("/stripe/customers/cus_c1"))
        .bearer_auth(&token)
        .json(&json!({"name": "A. Person"}))
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let received = mock.received_requests().await.unwrap_or_default();
    for (verb, at) in [
        ("GET", "/v1/subscriptions/sub_c1"),
        ("POST", "/v1/subscriptions/sub_c1"),
        ("DELETE", "/v1/subscriptions/sub_c1"),
        ("POST", "/v1/customers/cus_c1"),
    ] {
        let request = received
            .iter()
            .find(|r| r.method.as_str() == verb && r.url.path() == at)
            .unwrap_or_else(|| panic!("{verb} {at} was not sent"));
        assert_eq!(
            request
                .headers
                .get("stripe-account")
                .and_then(|v| v.to_str().ok()),
            Some(ACCT),
            "{verb} {at}"
        );
    }
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM subscriptions WHERE id = 'sub_c1' AND status = 'canceled' \
             AND account = 'acct_1Connected'"
        ),
        1
    );
    app.shutdown().await;
}

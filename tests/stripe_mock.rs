//! The Stripe client against an HTTP mock answering Stripe's documented shapes, for
//! what localstripe does not do: real decline codes, request ids, `Retry-After`,
//! `Stripe-Should-Retry`, key failures, and the parameters localstripe rejects.

mod common;

use billd::store::tokens::Scope;
use common::*;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

async fn app_on(mock: &MockServer, retries: u32) -> (TestApp, String) {
    let base = mock.uri();
    let app = spawn_app_with(
        move |c| {
            c.stripe.api_base = base;
            c.stripe.max_retries = retries;
            c.stripe.retry_backoff_ms = 10;
        },
        &[WEBHOOK_SECRET],
    )
    .await;
    let token = app.token(Scope::Admin).await;
    (app, token)
}

async fn post(
    app: &TestApp,
    token: &str,
    path: &str,
    body: Value,
    key: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut r = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body);
    if let Some(key) = key {
        r = r.header("Idempotency-Key", key);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.json().await.unwrap_or(Value::Null))
}

fn stripe_error(status: u16, error: Value) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("request-id", "req_mock123")
        .set_body_json(json!({ "error": error }))
}

fn form(request: &wiremock::Request) -> String {
    String::from_utf8(request.body.clone()).unwrap()
}

#[tokio::test]
async fn a_real_decline_passes_its_decline_code_and_stripes_request_id_through() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(stripe_error(
            402,
            json!({"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
                   "message": "Your card has insufficient funds."}),
        ))
        .expect(1)
        .mount(&mock)
        .await;
    let (app, token) = app_on(&mock, 2).await;
    let (status, _, e) = post(
        &app,
        &token,
        "/stripe/payments",
        json!({"amount": 500, "currency": "eur", "payment_method": "pm_1"}),
        None,
    )
    .await;
    assert_eq!(status, 402, "{e}");
    assert_eq!(e["error"]["decline_code"], "insufficient_funds");
    assert_eq!(e["error"]["message"], "Your card has insufficient funds.");
    assert_eq!(e["error"]["stripe_request_id"], "req_mock123");
    // Without a return_url billd asks for payment methods that need no redirect.
    let sent = form(&mock.received_requests().await.unwrap()[0]);
    assert!(
        sent.contains("automatic_payment_methods[allow_redirects]=never"),
        "{sent}"
    );
    assert!(sent.contains("confirm=true"), "{sent}");
    app.shutdown().await;
}

#[tokio::test]
async fn a_failed_call_is_retried_with_the_callers_idempotency_key() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(stripe_error(
            500,
            json!({"type": "api_error", "message": "boom"}),
        ))
        .up_to_n_times(1)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("request-id", "req_ok")
                .set_body_json(
                    json!({"id": "cus_mock", "object": "customer", "email": "a@example.com"}),
                ),
        )
        .mount(&mock)
        .await;
    let (app, token) = app_on(&mock, 2).await;
    let (status, _, c) = post(
        &app,
        &token,
        "/stripe/customers",
        json!({"email": "a@example.com"}),
        Some("order-7"),
    )
    .await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["id"], "cus_mock");
    let requests = mock.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    for r in &requests {
        assert_eq!(r.headers.get("idempotency-key").unwrap(), "order-7");
        assert!(r.headers.get("stripe-version").is_some());
        assert_eq!(
            r.headers.get("authorization").unwrap(),
            "Bearer sk_test_billd"
        );
    }
    // Without a caller's key, billd makes one, the same on every retry.
    let (status, _, _) = post(&app, &token, "/stripe/customers", json!({}), None).await;
    assert_eq!(status, 201);
    let requests = mock.received_requests().await.unwrap();
    let generated = requests[2].headers.get("idempotency-key").unwrap();
    assert!(generated.to_str().unwrap().starts_with("billd-"));
    app.shutdown().await;
}

#[tokio::test]
async fn stripe_should_retry_false_stops_retries_and_a_5xx_is_a_502() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(
            stripe_error(503, json!({"type": "api_error"}))
                .insert_header("stripe-should-retry", "false"),
        )
        .expect(1)
        .mount(&mock)
        .await;
    let (app, token) = app_on(&mock, 3).await;
    let (status, _, e) = post(&app, &token, "/stripe/customers", json!({}), None).await;
    assert_eq!(status, 502, "{e}");
    assert_eq!(e["error"]["type"], "stripe_error");
    app.shutdown().await;
}

#[tokio::test]
async fn a_refused_api_key_is_a_502_and_rate_limiting_a_429_with_retry_after() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(stripe_error(401, json!({"type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****illd"})))
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/subscriptions"))
        .respond_with(
            stripe_error(
                429,
                json!({"type": "invalid_request_error", "code": "rate_limit"}),
            )
            .insert_header("retry-after", "7"),
        )
        .mount(&mock)
        .await;
    let (app, token) = app_on(&mock, 0).await;
    let (status, _, e) = post(&app, &token, "/stripe/customers", json!({}), None).await;
    assert_eq!(status, 502, "{e}");
    assert_eq!(e["error"]["type"], "stripe_auth_failed");
    assert!(!e.to_string().contains("sk_test"), "{e}");

    let (status, headers, e) = post(
        &app,
        &token,
        "/stripe/subscriptions",
        json!({"customer": "cus_1", "price": "price_1"}),
        None,
    )
    .await;
    assert_eq!(status, 429, "{e}");
    assert_eq!(headers.get("retry-after").unwrap(), "7");
    app.shutdown().await;
}

#[tokio::test]
async fn parameters_localstripe_rejects_reach_stripe() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions/sub_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"id": "sub_1", "status": "active", "items": {"data": [{"id": "si_1"}]}}),
        ))
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/subscriptions/sub_1"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "sub_1", "status": "active"})),
        )
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/charges/ch_1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "ch_1", "amount": 1000, "amount_refunded": 0, "currency": "usd", "status": "succeeded"
        })))
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "re_1", "charge": "ch_1", "amount": 1000, "currency": "usd",
            "status": "succeeded", "reason": "duplicate"
        })))
        .mount(&mock)
        .await;
    let (app, token) = app_on(&mock, 0).await;
    let r = app
        .client
        .patch(app.url("/stripe/subscriptions/sub_1"))
        .bearer_auth(&token)
        .json(&json!({"price": "price_2", "proration_behavior": "none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, _, refund) = post(
        &app,
        &token,
        "/stripe/refunds",
        json!({"charge": "ch_1", "reason": "duplicate"}),
        None,
    )
    .await;
    assert_eq!(status, 201, "{refund}");
    assert_eq!(refund["payment"], "ch_1");
    assert_eq!(refund["reason"], "duplicate");

    let requests = mock.received_requests().await.unwrap();
    let update = requests
        .iter()
        .find(|r| r.method.as_str() == "POST" && r.url.path() == "/v1/subscriptions/sub_1")
        .unwrap();
    let sent = form(update);
    assert!(sent.contains("proration_behavior=none"), "{sent}");
    assert!(sent.contains("items[0][id]=si_1"), "{sent}");
    assert!(sent.contains("items[0][plan]=price_2"), "{sent}");
    let refund = requests
        .iter()
        .find(|r| r.url.path() == "/v1/refunds")
        .unwrap();
    let sent = form(refund);
    assert!(
        sent.contains("reason=duplicate") && sent.contains("amount=1000"),
        "{sent}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn stripe_writes_need_the_write_scope_and_refunds_admin() {
    let mock = MockServer::start().await;
    let (app, _) = app_on(&mock, 0).await;
    let read = app.token(Scope::Read).await;
    let write = app.token(Scope::Write).await;
    for (verb, path) in [
        ("POST", "/stripe/customers"),
        ("PATCH", "/stripe/customers/cus_1"),
        ("DELETE", "/stripe/customers/cus_1"),
        ("POST", "/stripe/customers/cus_1/payment-methods"),
        ("DELETE", "/stripe/customers/cus_1/payment-methods/pm_1"),
        (
            "POST",
            "/stripe/customers/cus_1/payment-methods/pm_1/default",
        ),
        ("POST", "/stripe/subscriptions"),
        ("PATCH", "/stripe/subscriptions/sub_1"),
        ("DELETE", "/stripe/subscriptions/sub_1"),
        ("POST", "/stripe/payments"),
        ("POST", "/stripe/refunds"),
    ] {
        let method = reqwest::Method::from_bytes(verb.as_bytes()).unwrap();
        let r = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{verb} {path} without a token");
        let r = app
            .client
            .request(method.clone(), app.url(path))
            .bearer_auth(&read)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{verb} {path} with a read token");
        if path == "/stripe/refunds" {
            let r = app
                .client
                .request(method, app.url(path))
                .bearer_auth(&write)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "{verb} {path} with a write token");
        }
    }
    // Nothing reached Stripe.
    assert!(mock.received_requests().await.unwrap().is_empty());
    app.shutdown().await;
}

// ---- Stripe outages (issue 12, docs/reliability.md) --------------------------------

/// Every request the mock received for `to`.
async fn received(mock: &MockServer, to: &str) -> Vec<wiremock::Request> {
    mock.received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path() == to)
        .collect()
}

#[tokio::test]
async fn stripe_slow_failing_or_limiting_is_retried_a_bounded_number_of_times() {
    let mock = MockServer::start().await;
    // Slower than the per-attempt timeout (1 s), a 500, and a 429 with a short wait.
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "cus_late", "object": "customer"}))
                .set_delay(std::time::Duration::from_secs(3)),
        )
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/subscriptions"))
        .respond_with(stripe_error(500, json!({"type": "api_error"})))
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(
            stripe_error(
                429,
                json!({"type": "invalid_request_error", "code": "rate_limit"}),
            )
            .insert_header("retry-after", "1"),
        )
        .mount(&mock)
        .await;
    let base = mock.uri();
    let app = spawn_app_with(
        move |c| {
            c.stripe.api_base = base;
            c.stripe.max_retries = 2;
            c.stripe.retry_backoff_ms = 10;
            c.stripe.timeout_secs = 1;
        },
        &[WEBHOOK_SECRET],
    )
    .await;
    let token = app.token(Scope::Admin).await;

    let (status, headers, e) = post(&app, &token, "/stripe/customers", json!({}), None).await;
    assert_eq!(status, 503, "{e}");
    assert_eq!(e["error"]["type"], "stripe_unavailable");
    assert!(headers.get("retry-after").is_some());
    let (status, _, e) = post(
        &app,
        &token,
        "/stripe/subscriptions",
        json!({"customer": "cus_1", "price": "price_1"}),
        None,
    )
    .await;
    assert_eq!(status, 502, "{e}");
    assert_eq!(e["error"]["type"], "stripe_error");
    let (status, headers, e) = post(
        &app,
        &token,
        "/stripe/payments",
        json!({"customer": "cus_1", "payment_method": "pm_1", "amount": 500, "currency": "eur"}),
        None,
    )
    .await;
    assert_eq!(status, 429, "{e}");
    assert!(headers.get("retry-after").is_some());
    // One attempt and `max_retries` more, each, with one idempotency key.
    for to in ["/v1/customers", "/v1/subscriptions", "/v1/payment_intents"] {
        let sent = received(&mock, to).await;
        assert_eq!(sent.len(), 3, "{to}: attempts");
        let keys: std::collections::BTreeSet<_> = sent
            .iter()
            .map(|r| r.headers.get("idempotency-key").cloned())
            .collect();
        assert_eq!(keys.len(), 1, "{to}: one key across the retries");
    }
    // Nothing Stripe never confirmed is in the mirror.
    let store = open_store(app.dir.path());
    for table in ["customers", "subscriptions", "payments"] {
        assert_eq!(
            count(&store, &format!("SELECT count(*) FROM {table}")),
            0,
            "{table}"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn stripe_stopped_is_a_503_with_retry_after() {
    // A port nobody listens on any more.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let app = spawn_app_with(
        move |c| {
            c.stripe.api_base = base;
            c.stripe.max_retries = 1;
            c.stripe.retry_backoff_ms = 10;
        },
        &[WEBHOOK_SECRET],
    )
    .await;
    let token = app.token(Scope::Admin).await;
    let (status, headers, e) = post(&app, &token, "/stripe/customers", json!({}), None).await;
    assert_eq!(status, 503, "{e}");
    assert_eq!(e["error"]["type"], "stripe_unavailable");
    assert!(headers.get("retry-after").is_some());
    app.shutdown().await;
}

#[tokio::test]
async fn a_refund_whose_outcome_is_unknown_is_recorded_as_unknown_and_its_key_settles_it() {
    let mock = MockServer::start().await;
    let intent = json!({
        "id": "pi_u1", "object": "payment_intent", "status": "succeeded", "amount": 2000,
        "currency": "eur", "customer": "cus_u1", "created": 1_735_689_600, "livemode": false,
        "latest_charge": {
            "id": "ch_u1", "object": "charge", "payment_intent": "pi_u1", "customer": "cus_u1",
            "amount": 2000, "amount_captured": 2000, "amount_refunded": 0, "currency": "eur",
            "status": "succeeded", "created": 1_735_689_600, "livemode": false,
            "refunds": {"object": "list", "data": []}
        }
    });
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_u1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(intent))
        .mount(&mock)
        .await;
    // Stripe fails the first request and its retry; later it answers.
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(stripe_error(500, json!({"type": "api_error"})))
        .up_to_n_times(2)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "re_u1", "object": "refund", "payment_intent": "pi_u1", "charge": "ch_u1",
            "amount": 700, "currency": "eur", "status": "succeeded", "created": 1_735_690_000
        })))
        .mount(&mock)
        .await;
    let (app, token) = app_on(&mock, 1).await;
    let body = json!({"payment_intent": "pi_u1", "amount": 700});

    let (status, _, e) = post(&app, &token, "/stripe/refunds", body.clone(), None).await;
    assert_eq!(status, 502, "{e}");
    assert_eq!(e["error"]["outcome"], "unknown", "{e}");
    let key = e["error"]["idempotency_key"]
        .as_str()
        .expect("the key to check with")
        .to_string();
    assert!(
        e["error"]["check"].as_str().unwrap_or("").contains(&key),
        "{e}"
    );
    let store = open_store(app.dir.path());
    assert_eq!(count(&store, "SELECT count(*) FROM refunds"), 0);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM audit_log WHERE action = 'refund.unknown' AND target = 'pi_u1'"
        ),
        1
    );

    // The same request with that key: Stripe answers (here: makes) the one refund.
    let (status, _, r) = post(&app, &token, "/stripe/refunds", body, Some(&key)).await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["id"], "re_u1");
    let sent = received(&mock, "/v1/refunds").await;
    assert_eq!(sent.len(), 3, "two failed attempts, then the check");
    for r in &sent {
        assert_eq!(r.headers.get("idempotency-key").unwrap(), key.as_str());
    }
    assert_eq!(
        count(&store, "SELECT count(*) FROM refunds WHERE id = 're_u1'"),
        1
    );
    app.shutdown().await;
}

/// `[stripe]` for a CLI run against `mock`, without retries.
fn cli_stripe(mock: &MockServer) -> String {
    format!(
        "[stripe]\napi_base = \"{}\"\nmax_retries = 0\ngap_repair_interval_secs = 0\n",
        mock.uri()
    )
}

#[tokio::test]
async fn an_interrupted_sync_continues_after_the_last_page_it_wrote() {
    use wiremock::matchers::{query_param, query_param_is_missing};
    let mock = MockServer::start().await;
    let customer = |id: &str| json!({"id": id, "object": "customer", "created": 1_735_689_600});
    Mock::given(method("GET"))
        .and(path("/v1/customers"))
        .and(query_param_is_missing("starting_after"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "has_more": true,
            "data": [customer("cus_s1"), customer("cus_s2")],
        })))
        .mount(&mock)
        .await;
    // The second page fails once (Stripe down), then answers.
    Mock::given(method("GET"))
        .and(path("/v1/customers"))
        .and(query_param("starting_after", "cus_s2"))
        .respond_with(stripe_error(500, json!({"type": "api_error"})))
        .up_to_n_times(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/customers"))
        .and(query_param("starting_after", "cus_s2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "has_more": false, "data": [customer("cus_s3")],
        })))
        .mount(&mock)
        .await;
    let app = spawn_app().await;
    let store = open_store(app.dir.path());

    let (code, _, err) = run_billd_with(&app, &cli_stripe(&mock), &["sync", "customers"]);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("run it again to continue"), "{err}");
    assert_eq!(count(&store, "SELECT count(*) FROM customers"), 2);

    let (code, _, err) = run_billd_with(&app, &cli_stripe(&mock), &["sync", "customers"]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("continuing an interrupted sync"), "{err}");
    assert_eq!(count(&store, "SELECT count(*) FROM customers"), 3);
    // The first page was read once: the second run started after it.
    let first_pages = received(&mock, "/v1/customers")
        .await
        .iter()
        .filter(|r| !r.url.query().unwrap_or("").contains("starting_after"))
        .count();
    assert_eq!(first_pages, 1, "the second run started over");
    assert_eq!(count(&store, "SELECT count(*) FROM checkpoints"), 0);
    app.shutdown().await;
}

#[tokio::test]
async fn an_interrupted_fetch_of_stripes_events_continues_after_the_last_page_it_stored() {
    use wiremock::matchers::{query_param, query_param_is_missing};
    let mock = MockServer::start().await;
    let event = |n: i64| {
        let mut e = fixture_as("customer.created.json", &format!("evt_fs_{n}"));
        e["created"] = (1_735_689_600 + n).into();
        e["livemode"] = false.into();
        e["data"]["object"]["id"] = format!("cus_fs_{n}").into();
        e
    };
    // Newest first, as Stripe lists them.
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(query_param_is_missing("starting_after"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "has_more": true, "data": [event(4), event(3)],
        })))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(query_param("starting_after", "evt_fs_3"))
        .respond_with(stripe_error(500, json!({"type": "api_error"})))
        .up_to_n_times(1)
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/events"))
        .and(query_param("starting_after", "evt_fs_3"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "has_more": false, "data": [event(2), event(1)],
        })))
        .mount(&mock)
        .await;
    let app = spawn_app().await;
    let store = open_store(app.dir.path());
    let args = ["events", "replay", "--from-stripe", "--since", "2025-01-01"];

    let (code, _, err) = run_billd_with(&app, &cli_stripe(&mock), &args);
    assert_ne!(code, 0, "{err}");
    assert!(err.contains("continue from there"), "{err}");
    assert_eq!(count(&store, "SELECT count(*) FROM events"), 2);

    let (code, _, err) = run_billd_with(&app, &cli_stripe(&mock), &args);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("continuing an interrupted fetch"), "{err}");
    assert_eq!(count(&store, "SELECT count(*) FROM events"), 4);
    // All four applied, those of the interrupted run too; the first page read once.
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM events WHERE status = 'processed'"
        ),
        4
    );
    assert_eq!(count(&store, "SELECT count(*) FROM customers"), 4);
    let first_pages = received(&mock, "/v1/events")
        .await
        .iter()
        .filter(|r| !r.url.query().unwrap_or("").contains("starting_after"))
        .count();
    assert_eq!(first_pages, 1, "the second run started over");
    app.shutdown().await;
}

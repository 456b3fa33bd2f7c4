//! Ids are checked at the edge (DESIGN §3): an id from a path or a body that is not
//! `^[A-Za-z0-9_]{1,255}$` with its object's prefix answers 400 naming the parameter,
//! and no request reaches Stripe (here an HTTP mock that counts what it receives).

mod common;

use billd::store::tokens::Scope;
use common::*;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

/// The app against `mock`, with retries (so a retried refusal would show as several
/// requests, or as time), and an admin token (every write is allowed).
async fn app_on(mock: &MockServer) -> (TestApp, String) {
    let base = mock.uri();
    let app = spawn_app_with(
        move |c| {
            c.stripe.api_base = base;
            c.stripe.max_retries = 3;
            c.stripe.retry_backoff_ms = 200;
        },
        &[WEBHOOK_SECRET],
    )
    .await;
    let token = app.token(Scope::Admin).await;
    (app, token)
}

async fn send(
    app: &TestApp,
    token: &str,
    verb: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let verb = reqwest::Method::from_bytes(verb.as_bytes()).unwrap();
    let mut r = app.client.request(verb, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        r = r.json(&body);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[track_caller]
fn assert_refused(status: u16, e: &Value, param: &str, what: &str) {
    assert_eq!(status, 400, "{what}: {e}");
    assert_eq!(e["error"]["type"], "invalid_request", "{what}: {e}");
    assert_eq!(e["error"]["param"], param, "{what}: {e}");
    assert!(e["error"]["request_id"].is_string(), "{what}: {e}");
    let message = e["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(&format!("{param} must be ")),
        "{what}: {e}"
    );
    // The message says what an id looks like; it never echoes the hostile value.
    for echo in ["..", "refunds", "amount", "?", "\r", "\n", "\0", "Evil"] {
        assert!(
            !message.contains(echo),
            "{what}: {message:?} echoes {echo:?}"
        );
    }
}

#[tokio::test]
async fn a_path_id_that_would_become_a_refund_answers_400_and_nothing_reaches_stripe() {
    let mock = MockServer::start().await;
    let write_mock = Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "re_1"})));
    write_mock.mount(&mock).await;
    let (app, _) = app_on(&mock).await;
    let write = app.token(Scope::Write).await;
    let (status, e) = send(
        &app,
        &write,
        "PATCH",
        "/stripe/customers/x%2F..%2F..%2Frefunds%3Fpayment_intent%3Dpi_1%26amount%3D100",
        Some(json!({"name": "Mallory"})),
    )
    .await;
    assert_refused(status, &e, "id", "PATCH customer");
    assert!(mock.received_requests().await.unwrap().is_empty());
    app.shutdown().await;
}

#[tokio::test]
async fn ids_in_paths_and_bodies_are_checked_before_any_stripe_call() {
    let mock = MockServer::start().await;
    let (app, token) = app_on(&mock).await;
    let link = json!({"refresh_url": "https://a/r", "return_url": "https://a/ok"});
    let cases: Vec<(&str, String, Option<Value>, &str)> = vec![
        // Paths.
        (
            "PATCH",
            "/stripe/customers/cus_1%3Fexpand[]=x".into(),
            Some(json!({"name": "n"})),
            "id",
        ),
        ("DELETE", "/stripe/customers/cus_1%23x".into(), None, "id"),
        ("DELETE", "/stripe/customers/sub_1".into(), None, "id"),
        (
            "POST",
            "/stripe/customers/cus_1%2F..%2Fx/payment-methods".into(),
            Some(json!({"payment_method": "pm_1"})),
            "id",
        ),
        (
            "DELETE",
            "/stripe/customers/cus_1/payment-methods/pm_1%3Fx%3D1".into(),
            None,
            "pm",
        ),
        (
            "POST",
            "/stripe/customers/cus_1/payment-methods/..%2F..%2Fcharges/default".into(),
            None,
            "pm",
        ),
        (
            "PATCH",
            "/stripe/subscriptions/sub_1%2F..".into(),
            Some(json!({"quantity": 2})),
            "id",
        ),
        ("DELETE", "/stripe/subscriptions/cus_1".into(), None, "id"),
        (
            "POST",
            "/stripe/connect/accounts/acct_1%2F..%2F..%2Ftransfers/links".into(),
            Some(link),
            "id",
        ),
        // Bodies.
        (
            "POST",
            "/stripe/customers".into(),
            Some(json!({"payment_method": "pm_1#x"})),
            "payment_method",
        ),
        (
            "POST",
            "/stripe/customers/cus_1/payment-methods".into(),
            Some(json!({"payment_method": "pm_1/../x"})),
            "payment_method",
        ),
        (
            "POST",
            "/stripe/subscriptions".into(),
            Some(json!({"customer": "sub_1", "price": "price_1"})),
            "customer",
        ),
        (
            "POST",
            "/stripe/subscriptions".into(),
            Some(json!({"customer": "cus_1", "price": "price_1/../../x"})),
            "price",
        ),
        (
            "PATCH",
            "/stripe/subscriptions/sub_1".into(),
            Some(json!({"price": "price_1?x=1"})),
            "price",
        ),
        (
            "POST",
            "/stripe/payments".into(),
            Some(
                json!({"amount": 100, "currency": "eur", "payment_method": "pm_1",
                        "customer": "cus_1&amount=1"}),
            ),
            "customer",
        ),
        (
            "POST",
            "/stripe/payments".into(),
            Some(json!({"amount": 100, "currency": "eur", "payment_method": "tok_visa"})),
            "payment_method",
        ),
        (
            "POST",
            "/stripe/refunds".into(),
            Some(json!({"payment": "pi_1?amount=1"})),
            "payment",
        ),
        (
            "POST",
            "/stripe/refunds".into(),
            Some(json!({"charge": "pi_1"})),
            "charge",
        ),
        (
            "POST",
            "/stripe/refunds".into(),
            Some(json!({"payment_intent": "pi_1/../../customers"})),
            "payment_intent",
        ),
        (
            "POST",
            "/stripe/checkout/sessions".into(),
            Some(
                json!({"mode": "payment", "customer": "cus_..", "price": "price_1",
                        "success_url": "https://a/ok"}),
            ),
            "customer",
        ),
        (
            "POST",
            "/stripe/checkout/sessions".into(),
            Some(
                json!({"mode": "payment", "line_items": [{"price": "price_1"}, {"price": "price_2/x"}],
                        "success_url": "https://a/ok"}),
            ),
            "line_items[1].price",
        ),
        // Too long is refused whole, and not quoted.
        (
            "DELETE",
            format!("/stripe/customers/cus_{}", "a".repeat(300)),
            None,
            "id",
        ),
    ];
    for (verb, path, body, param) in cases {
        let what = format!("{verb} {path} {body:?}");
        let (status, e) = send(&app, &token, verb, &path, body).await;
        assert_refused(status, &e, param, &what);
    }
    assert!(mock.received_requests().await.unwrap().is_empty());
    app.shutdown().await;
}

#[tokio::test]
async fn control_bytes_in_an_id_answer_400_at_once_without_retries() {
    let mock = MockServer::start().await;
    let (app, token) = app_on(&mock).await;
    let started = std::time::Instant::now();
    for (verb, path, body, param) in [
        (
            "PATCH",
            "/stripe/customers/cus_1%0D%0AX-Evil:%201",
            Some(json!({"name": "n"})),
            "id",
        ),
        ("DELETE", "/stripe/customers/cus_1%00", None, "id"),
        ("DELETE", "/stripe/subscriptions/sub_1%0A", None, "id"),
        (
            "POST",
            "/stripe/customers/cus_1/payment-methods",
            Some(json!({"payment_method": "pm_1\r\nX-Evil: 1"})),
            "payment_method",
        ),
        (
            "POST",
            "/stripe/refunds",
            Some(json!({"payment": "pi_1\u{0}"})),
            "payment",
        ),
    ] {
        let (status, e) = send(&app, &token, verb, path, body).await;
        assert_refused(status, &e, param, path);
    }
    // Three retries with a 200 ms backoff would take over a second per request.
    assert!(started.elapsed() < std::time::Duration::from_secs(2));
    assert_eq!(mock.received_requests().await.unwrap().len(), 0);
    app.shutdown().await;
}

#[tokio::test]
async fn ids_that_follow_the_rule_still_reach_stripe_as_they_are() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/customers/cus_Ab9_z"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"id": "cus_Ab9_z", "object": "customer", "name": "n"})),
        )
        .expect(1)
        .mount(&mock)
        .await;
    let (app, token) = app_on(&mock).await;
    let (status, c) = send(
        &app,
        &token,
        "PATCH",
        "/stripe/customers/cus_Ab9_z",
        Some(json!({"name": "n"})),
    )
    .await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["id"], "cus_Ab9_z");
    app.shutdown().await;
}

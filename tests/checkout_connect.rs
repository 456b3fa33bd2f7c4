//! Checkout sessions and Stripe Connect, which localstripe does not have, against an
//! HTTP mock answering with Stripe's documented shapes: what billd sends, what it
//! answers, and what it keeps in the mirror.

mod common;

use billd::store::tokens::Scope;
use common::*;
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

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
    let token = app.token(Scope::Write).await;
    (app, token)
}

async fn post(
    app: &TestApp,
    token: &str,
    path: &str,
    body: Value,
    key: Option<&str>,
) -> (u16, Value) {
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
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The form bodies Stripe received on `path`, decoded (`a[b]` keys kept as text).
async fn forms(mock: &MockServer, on: &str) -> Vec<(String, Vec<(String, String)>)> {
    mock.received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == on)
        .map(|r| {
            let key = r
                .headers
                .get("idempotency-key")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let body = String::from_utf8(r.body.clone()).unwrap();
            let pairs = body
                .split('&')
                .filter_map(|pair| pair.split_once('='))
                .map(|(k, v)| (decode(k), decode(v)))
                .collect();
            (key, pairs)
        })
        .collect()
}

/// `application/x-www-form-urlencoded` decoding of one key or value.
fn decode(s: &str) -> String {
    let mut out = Vec::new();
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

fn has(pairs: &[(String, String)], key: &str, value: &str) -> bool {
    pairs.iter().any(|(k, v)| k == key && v == value)
}

/// Stripe's checkout session object (API reference), trimmed to common fields.
fn session(id: &str, mode: &str) -> Value {
    json!({
        "id": id,
        "object": "checkout.session",
        "amount_subtotal": 2500,
        "amount_total": 2500,
        "cancel_url": "https://shop.example/cancel",
        "created": 1_735_000_000,
        "currency": "eur",
        "customer": null,
        "expires_at": 1_735_086_400,
        "livemode": false,
        "mode": mode,
        "payment_intent": null,
        "payment_status": "unpaid",
        "status": "open",
        "subscription": null,
        "success_url": "https://shop.example/ok",
        "url": format!("https://checkout.stripe.com/c/pay/{id}")
    })
}

#[tokio::test]
async fn a_checkout_session_for_a_payment_answers_its_id_and_url_and_is_mirrored() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("request-id", "req_cs")
                .set_body_json(session("cs_test_a1", "payment")),
        )
        .mount(&mock)
        .await;
    let (app, token) = app_on(&mock).await;
    let (status, s) = post(
        &app,
        &token,
        "/stripe/checkout/sessions",
        json!({"mode": "payment", "amount": 1250, "currency": "EUR", "name": "Consulting",
               "quantity": 2, "customer_email": "buyer@example.com",
               "success_url": "https://shop.example/ok", "cancel_url": "https://shop.example/cancel"}),
        Some("checkout-1"),
    )
    .await;
    assert_eq!(status, 201, "{s}");
    assert_eq!(s["id"], "cs_test_a1");
    assert_eq!(s["url"], "https://checkout.stripe.com/c/pay/cs_test_a1");
    assert_eq!(s["mode"], "payment");
    assert_eq!(s["status"], "open");
    assert_eq!(s["expires_at"], "2024-12-25T00:26:40Z");

    let sent = forms(&mock, "/v1/checkout/sessions").await;
    assert_eq!(sent.len(), 1);
    let (key, form) = &sent[0];
    assert_eq!(key, "checkout-1");
    for (k, v) in [
        ("mode", "payment"),
        ("success_url", "https://shop.example/ok"),
        ("cancel_url", "https://shop.example/cancel"),
        ("customer_email", "buyer@example.com"),
        ("line_items[0][quantity]", "2"),
        ("line_items[0][price_data][currency]", "eur"),
        ("line_items[0][price_data][unit_amount]", "1250"),
        (
            "line_items[0][price_data][product_data][name]",
            "Consulting",
        ),
    ] {
        assert!(has(form, k, v), "{k}={v} not in {form:?}");
    }
    let mode: Option<String> = app
        .store
        .run(|c| {
            Ok(c.query_row(
                "SELECT mode FROM checkout_sessions WHERE id = 'cs_test_a1'",
                (),
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(mode.as_deref(), Some("payment"));
    app.shutdown().await;
}

#[tokio::test]
async fn a_checkout_session_for_a_subscription_sends_its_price_and_bad_bodies_never_reach_stripe() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(session("cs_test_s1", "subscription")),
        )
        .mount(&mock)
        .await;
    let (app, token) = app_on(&mock).await;
    let (status, s) = post(
        &app,
        &token,
        "/stripe/checkout/sessions",
        json!({"mode": "subscription", "customer": "cus_1", "price": "price_pro", "quantity": 3,
               "success_url": "https://shop.example/ok"}),
        None,
    )
    .await;
    assert_eq!(status, 201, "{s}");
    assert_eq!(s["url"], "https://checkout.stripe.com/c/pay/cs_test_s1");
    let sent = forms(&mock, "/v1/checkout/sessions").await;
    let (key, form) = &sent[0];
    assert!(key.starts_with("billd-"), "{key}");
    for (k, v) in [
        ("mode", "subscription"),
        ("customer", "cus_1"),
        ("line_items[0][price]", "price_pro"),
        ("line_items[0][quantity]", "3"),
    ] {
        assert!(has(form, k, v), "{k}={v} not in {form:?}");
    }

    for (body, param) in [
        (
            json!({"mode": "subscription", "amount": 100, "currency": "eur", "name": "x", "success_url": "https://a/ok"}),
            Some("amount"),
        ),
        (
            json!({"mode": "setup", "price": "p", "success_url": "https://a/ok"}),
            Some("mode"),
        ),
        (
            json!({"mode": "payment", "success_url": "https://a/ok"}),
            None,
        ),
        (json!({"mode": "payment", "price": "p"}), None),
    ] {
        let (status, e) = post(
            &app,
            &token,
            "/stripe/checkout/sessions",
            body.clone(),
            None,
        )
        .await;
        assert_eq!(status, 400, "{body} → {e}");
        if let Some(param) = param {
            assert_eq!(e["error"]["param"], param, "{e}");
        }
    }
    assert_eq!(forms(&mock, "/v1/checkout/sessions").await.len(), 1);

    // A read token may not create sessions.
    let read = app.token(Scope::Read).await;
    let (status, _) = post(
        &app,
        &read,
        "/stripe/checkout/sessions",
        json!({"mode": "payment", "price": "p", "success_url": "https://a/ok"}),
        None,
    )
    .await;
    assert_eq!(status, 403);
    app.shutdown().await;
}

/// Stripe's account object for a new Express account (API reference), trimmed.
fn new_account(id: &str) -> Value {
    json!({
        "id": id,
        "object": "account",
        "business_type": null,
        "capabilities": {"card_payments": "inactive", "transfers": "inactive"},
        "charges_enabled": false,
        "country": "DE",
        "created": 1_735_000_000,
        "default_currency": "eur",
        "details_submitted": false,
        "email": "seller@example.com",
        "payouts_enabled": false,
        "requirements": {
            "currently_due": ["business_type", "external_account", "tos_acceptance.date"],
            "disabled_reason": "requirements.past_due",
            "eventually_due": ["business_type"],
            "past_due": ["business_type"]
        },
        "type": "express"
    })
}

#[tokio::test]
async fn a_connected_account_is_created_onboarded_by_link_and_its_status_read_from_the_mirror() {
    let mock = MockServer::start().await;
    let acct = "acct_1Fg9jUA3kq9o1aTc";
    Mock::given(method("POST"))
        .and(path("/v1/accounts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(new_account(acct)))
        .expect(1)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/account_links"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "account_link",
            "created": 1_735_000_000,
            "expires_at": 1_735_000_300,
            "url": "https://connect.stripe.com/setup/e/acct_1Fg9jUA3kq9o1aTc/abc"
        })))
        .expect(1)
        .mount(&mock)
        .await;
    let (app, token) = app_on(&mock).await;

    let (status, a) = post(
        &app,
        &token,
        "/stripe/connect/accounts",
        json!({"type": "express", "country": "de", "email": "seller@example.com"}),
        None,
    )
    .await;
    assert_eq!(status, 201, "{a}");
    assert_eq!(a["id"], acct);
    assert_eq!(a["type"], "express");
    assert_eq!(a["charges_enabled"], false);
    assert_eq!(a["payouts_enabled"], false);
    assert_eq!(a["details_submitted"], false);
    assert_eq!(a["currently_due"][1], "external_account");
    assert_eq!(a["disabled_reason"], "requirements.past_due");
    let sent = forms(&mock, "/v1/accounts").await;
    let form = &sent[0].1;
    for (k, v) in [
        ("type", "express"),
        ("country", "DE"),
        ("email", "seller@example.com"),
        ("capabilities[card_payments][requested]", "true"),
        ("capabilities[transfers][requested]", "true"),
    ] {
        assert!(has(form, k, v), "{k}={v} not in {form:?}");
    }
    // The mirror keeps no contact details.
    let raw: String = app
        .store
        .run(move |c| {
            Ok(
                c.query_row("SELECT raw FROM accounts WHERE id = ?1", [acct], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
        .unwrap();
    assert!(!raw.contains("seller@example.com"), "{raw}");

    let (status, link) = post(
        &app,
        &token,
        &format!("/stripe/connect/accounts/{acct}/links"),
        json!({"refresh_url": "https://shop.example/reauth", "return_url": "https://shop.example/done"}),
        None,
    )
    .await;
    assert_eq!(status, 201, "{link}");
    assert_eq!(
        link["url"],
        "https://connect.stripe.com/setup/e/acct_1Fg9jUA3kq9o1aTc/abc"
    );
    assert_eq!(link["expires_at"], "2024-12-24T00:31:40Z");
    let sent = forms(&mock, "/v1/account_links").await;
    let form = &sent[0].1;
    for (k, v) in [
        ("account", acct),
        ("type", "account_onboarding"),
        ("refresh_url", "https://shop.example/reauth"),
        ("return_url", "https://shop.example/done"),
    ] {
        assert!(has(form, k, v), "{k}={v} not in {form:?}");
    }

    // The status comes from the mirror, which account.updated keeps current.
    let read = app.token(Scope::Read).await;
    let path = format!("/stripe/connect/accounts/{acct}");
    let a: Value = app.get(&path, &read).await.json().await.unwrap();
    assert_eq!(a["charges_enabled"], false);
    let mut updated = fixture_as("account.updated.json", "evt_account_verified");
    updated["created"] = 4_000_000_000i64.into();
    let o = &mut updated["data"]["object"];
    o["charges_enabled"] = true.into();
    o["payouts_enabled"] = true.into();
    o["details_submitted"] = true.into();
    o["requirements"]["currently_due"] = json!([]);
    o["requirements"]["disabled_reason"] = Value::Null;
    app.post_event(&updated).await;
    app.settled("evt_account_verified").await;
    let a: Value = app.get(&path, &read).await.json().await.unwrap();
    assert_eq!(a["charges_enabled"], true, "{a}");
    assert_eq!(a["payouts_enabled"], true);
    assert_eq!(a["details_submitted"], true);
    assert_eq!(a["currently_due"], json!([]));
    assert_eq!(a["disabled_reason"], Value::Null);

    let r = app
        .get("/stripe/connect/accounts/acct_unknown", &read)
        .await;
    assert_eq!(r.status(), 404);
    let (status, e) = post(
        &app,
        &token,
        "/stripe/connect/accounts",
        json!({"type": "platinum"}),
        None,
    )
    .await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"]["param"], "type");
    app.shutdown().await;
}

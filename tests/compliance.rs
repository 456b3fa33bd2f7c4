//! The `[compliance]` rules (DESIGN §2, docs/compliance.md) at the HTTP edge: each rule
//! refuses what it names with a 422 `compliance_refused` naming the rule, before
//! anything reaches Stripe (an HTTP mock counts the requests), audited; and what the
//! rules allow goes on to Stripe.

mod common;

use billd::store::{events::Status, tokens::Scope};
use common::*;
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, ResponseTemplate, matchers::any};

/// The mirror the rules read, through signed webhooks: customers with an address
/// country and an email, cards with a country, and a price.
async fn load_mirror(app: &TestApp) {
    let customer = |event: &str, id: &str, email: &str, country: &str| {
        let mut v = fixture_as("customer.created.json", event);
        v["livemode"] = false.into();
        let o = &mut v["data"]["object"];
        o["id"] = id.into();
        o["livemode"] = false.into();
        o["email"] = email.into();
        o["address"] = json!({"city": null, "country": country, "line1": null, "line2": null,
                              "postal_code": null, "state": null});
        o["invoice_settings"]["default_payment_method"] = Value::Null;
        o["default_source"] = Value::Null;
        v
    };
    let card = |event: &str, id: &str, customer: &str, country: &str| {
        let mut v = fixture_as("payment_method.attached.json", event);
        v["livemode"] = false.into();
        let o = &mut v["data"]["object"];
        o["id"] = id.into();
        o["customer"] = customer.into();
        o["livemode"] = false.into();
        o["card"]["country"] = country.into();
        v
    };
    let mut price = fixture_as("price.created.json", "evt_price_big");
    price["livemode"] = false.into();
    let o = &mut price["data"]["object"];
    o["id"] = "price_big".into();
    o["unit_amount"] = 300_000.into();
    o["currency"] = "usd".into();
    o["livemode"] = false.into();
    let mut sub = fixture_as("customer.subscription.created.json", "evt_sub_ok");
    sub["livemode"] = false.into();
    let o = &mut sub["data"]["object"];
    o["id"] = "sub_ok".into();
    o["customer"] = "cus_ok".into();
    o["livemode"] = false.into();
    o["plan"] = Value::Null;
    o["quantity"] = Value::Null;
    o["items"] = json!({"object": "list", "data": [{"id": "si_ok", "object": "subscription_item",
        "quantity": 1, "price": {"id": "price_big", "object": "price", "currency": "usd",
        "unit_amount": 300_000, "recurring": {"interval": "month", "interval_count": 1}}}]});
    for event in [
        sub,
        customer("evt_c_ok", "cus_ok", "buyer@example.com", "US"),
        customer("evt_c_kp", "cus_kp", "someone@example.com", "KP"),
        customer(
            "evt_c_mail",
            "cus_mail",
            "someone@mail.blocked.example",
            "DE",
        ),
        card("evt_pm_ok", "pm_ok", "cus_ok", "US"),
        card("evt_pm_kp", "pm_kp", "cus_ok", "kp"),
        price,
    ] {
        let id = event["id"].as_str().unwrap_or("").to_string();
        assert_eq!(app.post_event(&event).await.status(), 200, "{id}");
        assert_eq!(app.settled(&id).await, Status::Processed, "{id}");
    }
}

/// POST, or PATCH for a subscription's own path.
async fn send(app: &TestApp, token: &str, path: &str, body: Value) -> (u16, Value) {
    let method = if path.starts_with("/stripe/subscriptions/") {
        reqwest::Method::PATCH
    } else {
        reqwest::Method::POST
    };
    let r = app
        .client
        .request(method, app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn each_rule_refuses_what_it_names_before_stripe_and_lets_the_rest_through() {
    let mock = MockServer::start().await;
    // Stripe answers every request it gets with an error: what reaches it is counted,
    // and a request that passed the rules shows as a 502.
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(json!({"error": {"type": "api_error", "message": "mock"}})),
        )
        .mount(&mock)
        .await;
    let base = mock.uri();
    let app = spawn_app_with(
        move |c| {
            c.stripe.api_base = base;
            c.stripe.max_retries = 0;
            c.compliance.blocked_countries = vec!["KP".into()];
            c.compliance.max_amount = [("usd".to_string(), 500_000)].into_iter().collect();
            c.compliance.blocked_email_domains = vec!["blocked.example".into()];
        },
        &[WEBHOOK_SECRET],
    )
    .await;
    load_mirror(&app).await;
    let token = app.token(Scope::Write).await;

    let pay = |customer: &str, pm: &str, amount: i64, currency: &str| json!({"customer": customer, "payment_method": pm, "amount": amount, "currency": currency});
    let checkout = |extra: Value| {
        let mut body = json!({"success_url": "https://shop.example/ok"});
        for (k, v) in extra.as_object().cloned().unwrap_or_default() {
            body[k] = v;
        }
        body
    };
    let refused = [
        (
            "/stripe/payments",
            pay("cus_ok", "pm_ok", 500_001, "usd"),
            "max_amount",
        ),
        (
            "/stripe/payments",
            pay("cus_ok", "pm_ok", 500_001, "USD"),
            "max_amount",
        ),
        (
            "/stripe/payments",
            pay("cus_kp", "pm_ok", 100, "usd"),
            "blocked_countries",
        ),
        (
            "/stripe/payments",
            pay("cus_ok", "pm_kp", 100, "eur"),
            "blocked_countries",
        ),
        (
            "/stripe/payments",
            pay("cus_mail", "pm_ok", 100, "eur"),
            "blocked_email_domains",
        ),
        (
            "/stripe/checkout/sessions",
            checkout(
                json!({"mode": "payment", "amount": 100, "currency": "eur", "name": "A",
                            "customer_email": "x@Blocked.Example"}),
            ),
            "blocked_email_domains",
        ),
        (
            "/stripe/checkout/sessions",
            checkout(json!({"mode": "payment", "line_items": [
                {"amount": 250_000, "currency": "usd", "name": "A", "quantity": 1},
                {"price": "price_big", "quantity": 1}]})),
            "max_amount",
        ),
        (
            "/stripe/checkout/sessions",
            checkout(json!({"mode": "subscription", "customer": "cus_kp", "price": "price_big"})),
            "blocked_countries",
        ),
        (
            "/stripe/subscriptions",
            json!({"customer": "cus_ok", "price": "price_big", "quantity": 2}),
            "max_amount",
        ),
        (
            "/stripe/subscriptions",
            json!({"customer": "cus_mail", "price": "price_big", "trial_days": 14}),
            "blocked_email_domains",
        ),
        // A change to 2 × 3000.00 of the mirrored subscription's price.
        (
            "/stripe/subscriptions/sub_ok",
            json!({"quantity": 2}),
            "max_amount",
        ),
    ];
    for (path, body, rule) in &refused {
        let (status, e) = send(&app, &token, path, body.clone()).await;
        assert_eq!(status, 422, "{path} {body}: {e}");
        assert_eq!(e["error"]["type"], "compliance_refused", "{e}");
        assert_eq!(e["error"]["rule"], *rule, "{e}");
        let message = e["error"]["message"].as_str().unwrap_or("");
        assert!(message.contains(rule), "{message}");
        assert!(
            !message.contains('@'),
            "the refusal repeats no email: {message}"
        );
        assert!(e["error"]["request_id"].is_string(), "{e}");
    }
    assert!(
        mock.received_requests()
            .await
            .unwrap_or_default()
            .is_empty(),
        "a refused request reached Stripe"
    );
    let store = open_store(app.dir.path());
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM audit_log WHERE action = 'compliance.refused'"
        ),
        refused.len() as i64
    );
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM audit_log WHERE action = 'compliance.refused'
             AND detail = 'subscription.create refused by max_amount' AND target = 'cus_ok'"
        ),
        1
    );

    // What no rule forbids goes on to Stripe (the mock's error makes it a 502).
    let allowed = [
        ("/stripe/payments", pay("cus_ok", "pm_ok", 500_000, "usd")),
        ("/stripe/payments", pay("cus_ok", "pm_ok", 9_999_999, "eur")),
        (
            "/stripe/payments",
            pay("cus_unknown", "pm_unknown", 100, "usd"),
        ),
        (
            "/stripe/checkout/sessions",
            checkout(
                json!({"mode": "payment", "amount": 100, "currency": "eur", "name": "A",
                            "customer_email": "x@notblocked.example"}),
            ),
        ),
        (
            "/stripe/subscriptions",
            json!({"customer": "cus_ok", "price": "price_big"}),
        ),
        (
            "/stripe/subscriptions/sub_ok",
            json!({"cancel_at_period_end": true}),
        ),
    ];
    for (i, (path, body)) in allowed.iter().enumerate() {
        let (status, e) = send(&app, &token, path, body.clone()).await;
        assert_eq!(status, 502, "{path} {body}: {e}");
        let reached = mock.received_requests().await.unwrap_or_default().len();
        assert_eq!(reached, i + 1, "{path} {body} did not reach Stripe");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_bad_compliance_config_is_refused_at_load_naming_the_key() {
    for (toml, key) in [
        (
            "blocked_countries = [\"Korea\"]",
            "compliance.blocked_countries",
        ),
        ("max_amount = { usd = 0 }", "compliance.max_amount"),
        ("max_amount = { dollars = 5 }", "compliance.max_amount"),
        (
            "blocked_email_domains = [\"@\"]",
            "compliance.blocked_email_domains",
        ),
    ] {
        let config: billd::config::Config =
            toml::from_str(&format!("[compliance]\n{toml}\n")).expect("parses");
        let err = config.validate().expect_err(toml).to_string();
        assert!(err.contains(key), "{toml}: {err}");
    }
}

#[tokio::test]
async fn flags_are_listed_by_kind_over_http_and_the_cli() {
    let app = spawn_app().await;
    // A restricted connected account and a failed payment: two kinds of flags.
    let mut account = fixture_as("account.updated.json", "evt_acct_restricted");
    account["livemode"] = false.into();
    let mut failed = fixture_as("payment_intent.payment_failed.json", "evt_pi_failed");
    failed["livemode"] = false.into();
    for event in [account, failed] {
        let id = event["id"].as_str().unwrap_or("").to_string();
        assert_eq!(app.post_event(&event).await.status(), 200, "{id}");
        assert_eq!(app.settled(&id).await, Status::Processed, "{id}");
    }
    let token = app.token(Scope::Read).await;
    let get = |path: &'static str| {
        let app = &app;
        let token = token.clone();
        async move {
            let r = app.get(path, &token).await;
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, all) = get("/stripe/flags").await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["data"].as_array().map_or(0, Vec::len), 2, "{all}");
    let (status, restricted) = get("/stripe/flags?kind=account_restricted&status=open").await;
    assert_eq!(status, 200, "{restricted}");
    let data = restricted["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(data.len(), 1, "{restricted}");
    assert_eq!(data[0]["kind"], "account_restricted");
    assert!(
        data[0]["detail"]
            .as_str()
            .unwrap_or("")
            .contains("disabled_reason requirements.past_due"),
        "{restricted}"
    );
    let (status, e) = get("/stripe/flags?kind=fraud").await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"]["param"], "kind");

    let (code, out, err) = run_billd(
        &app,
        &[
            "flags",
            "list",
            "--kind",
            "payment_failed",
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let listed: Value = serde_json::from_str(&out).expect("JSON");
    let kinds: Vec<&str> = listed
        .as_array()
        .map(|a| a.iter().filter_map(|f| f["kind"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(kinds, vec!["payment_failed"], "{listed}");
    let (code, _, _) = run_billd(&app, &["flags", "list", "--kind", "fraud"]);
    assert_eq!(code, 2);
    app.shutdown().await;
}

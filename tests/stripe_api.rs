//! The Stripe side of the API against localstripe, a stateful Stripe double started
//! per test: customers, payment methods, subscriptions, one-time payments and refunds
//! through billd, written through to the mirror, with localstripe's signed webhooks
//! coming back to billd. Also the error paths: a declined card, a refund larger than
//! what is left, Stripe unreachable, and `Idempotency-Key` replays.

mod common;

use std::time::{Duration, Instant};

use billd::store::tokens::Scope;
use common::{localstripe::LocalStripe, *};
use serde_json::{Value, json};

struct Env {
    app: TestApp,
    ls: LocalStripe,
    admin: String,
}

/// billd pointed at a fresh localstripe, with localstripe's webhooks pointed at billd.
async fn env() -> Option<Env> {
    let ls = LocalStripe::start().await?;
    let api_base = ls.url.clone();
    let app = spawn_app_with(
        move |c| {
            c.stripe.api_base = api_base;
            // localstripe rejects automatic_payment_methods.
            c.stripe.payments_without_redirects = false;
            c.stripe.retry_backoff_ms = 10;
        },
        &[WEBHOOK_SECRET],
    )
    .await;
    ls.send_webhooks_to(&app.url("/stripe/webhook"), WEBHOOK_SECRET)
        .await;
    let admin = app.token(Scope::Admin).await;
    Some(Env { app, ls, admin })
}

impl Env {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
        key: Option<&str>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut r = self
            .app
            .client
            .request(method, self.app.url(path))
            .bearer_auth(&self.admin);
        if let Some(body) = body {
            r = r.json(&body);
        }
        if let Some(key) = key {
            r = r.header("Idempotency-Key", key);
        }
        let response = r.send().await.expect("request");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        (
            status,
            response.json().await.unwrap_or(Value::Null),
            headers,
        )
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let (s, b, _) = self
            .send(reqwest::Method::POST, path, Some(body), None)
            .await;
        (s, b)
    }

    async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        let (s, b, _) = self
            .send(reqwest::Method::PATCH, path, Some(body), None)
            .await;
        (s, b)
    }

    async fn delete(&self, path: &str) -> (u16, Value) {
        let (s, b, _) = self.send(reqwest::Method::DELETE, path, None, None).await;
        (s, b)
    }

    async fn get(&self, path: &str) -> Value {
        let r = self.app.get(path, &self.admin).await;
        assert_eq!(r.status(), 200, "GET {path}");
        r.json().await.unwrap()
    }

    /// A customer with a card attached and made the default: (customer, card).
    async fn customer_with_card(&self) -> (String, String) {
        let (status, c) = self
            .post(
                "/stripe/customers",
                json!({"name": "Ada", "email": "ada@example.com"}),
            )
            .await;
        assert_eq!(status, 201, "{c}");
        let cus = c["id"].as_str().unwrap().to_string();
        let (status, pm) = self
            .post(
                &format!("/stripe/customers/{cus}/payment-methods"),
                json!({"payment_method": "pm_card_visa"}),
            )
            .await;
        assert_eq!(status, 200, "{pm}");
        let pm = pm["id"].as_str().unwrap().to_string();
        let (status, c) = self
            .post(
                &format!("/stripe/customers/{cus}/payment-methods/{pm}/default"),
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "{c}");
        (cus, pm)
    }

    /// Waits until billd has processed an event of `type_` about `object`.
    async fn processed(&self, type_: &str, object: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.event_about(type_, object).await {
            assert!(
                Instant::now() < deadline,
                "no processed {type_} about {object}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn event_about(&self, type_: &str, object: &str) -> bool {
        let type_ = type_.to_string();
        let object = object.to_string();
        self.app
            .store
            .run(move |c| {
                let object_id = if common::on_postgres() {
                    "CAST(payload AS json) #>> '{data,object,id}'"
                } else {
                    "json_extract(payload, '$.data.object.id')"
                };
                let n: i64 = c.query_row(
                    &format!(
                        "SELECT count(*) FROM events WHERE type = ?1 AND status = 'processed'
                           AND {object_id} = ?2"
                    ),
                    [&type_, &object],
                    |r| r.get(0),
                )?;
                Ok(n > 0)
            })
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn a_customer_created_through_billd_is_in_stripe_and_its_signed_webhook_reaches_the_mirror() {
    let Some(env) = env().await else { return };
    let (status, c) = env
        .post(
            "/stripe/customers",
            json!({"email": "grace@example.com", "name": "Grace", "metadata": {"plan": "pro"}}),
        )
        .await;
    assert_eq!(status, 201, "{c}");
    let id = c["id"].as_str().unwrap();
    assert!(id.starts_with("cus_"));
    // Written through: the answer and an immediate GET agree with Stripe.
    assert_eq!(c["email"], "grace@example.com");
    assert_eq!(c["deleted"], false);
    let mirrored = env.get(&format!("/stripe/customers/{id}")).await;
    assert_eq!(mirrored["name"], "Grace");

    let (status, in_stripe) = env.ls.get(&format!("/v1/customers/{id}")).await;
    assert_eq!(status, 200);
    assert_eq!(in_stripe["email"], "grace@example.com");
    assert_eq!(in_stripe["metadata"]["plan"], "pro");

    // localstripe's webhook, signed with the endpoint secret, is accepted and applied.
    env.processed("customer.created", id).await;
    let mirrored = env.get(&format!("/stripe/customers/{id}")).await;
    assert_eq!(mirrored["email"], "grace@example.com");

    let (status, c) = env
        .patch(
            &format!("/stripe/customers/{id}"),
            json!({"name": "Grace H."}),
        )
        .await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["name"], "Grace H.");
    env.processed("customer.updated", id).await;
    assert_eq!(
        env.get(&format!("/stripe/customers/{id}")).await["name"],
        "Grace H."
    );

    let (status, c) = env.delete(&format!("/stripe/customers/{id}")).await;
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["deleted"], true);
    assert_eq!(env.ls.get(&format!("/v1/customers/{id}")).await.0, 404);
    // The late customer.deleted event (and any older update) keeps it deleted.
    env.processed("customer.deleted", id).await;
    assert_eq!(
        env.get(&format!("/stripe/customers/{id}")).await["deleted"],
        true
    );

    // Unknown in Stripe: 404 in billd's error shape.
    let (status, e) = env
        .patch("/stripe/customers/cus_missing", json!({"name": "x"}))
        .await;
    assert_eq!(status, 404, "{e}");
    assert_eq!(e["error"]["type"], "not_found");
    env.app.shutdown().await;
}

#[tokio::test]
async fn payment_methods_are_attached_made_default_and_detached() {
    let Some(env) = env().await else { return };
    let (cus, pm) = env.customer_with_card().await;
    let c = env.get(&format!("/stripe/customers/{cus}")).await;
    assert_eq!(c["default_payment_method"], pm.as_str());
    let pms = c["payment_methods"].as_array().unwrap();
    assert_eq!(pms.len(), 1, "{c}");
    assert_eq!(pms[0]["card_last4"], "4242");
    assert_eq!(pms[0]["card_brand"], "visa");
    let (_, in_stripe) = env.ls.get(&format!("/v1/customers/{cus}")).await;
    assert_eq!(
        in_stripe["invoice_settings"]["default_payment_method"],
        pm.as_str()
    );

    // Another customer's path does not detach it.
    let (status, _) = env
        .delete(&format!("/stripe/customers/cus_other/payment-methods/{pm}"))
        .await;
    assert_eq!(status, 404);
    let (status, detached) = env
        .delete(&format!("/stripe/customers/{cus}/payment-methods/{pm}"))
        .await;
    assert_eq!(status, 200, "{detached}");
    assert_eq!(detached["id"], pm.as_str());
    let c = env.get(&format!("/stripe/customers/{cus}")).await;
    assert!(c["payment_methods"].as_array().unwrap().is_empty(), "{c}");
    let (_, in_stripe) = env.ls.get(&format!("/v1/payment_methods/{pm}")).await;
    assert_eq!(in_stripe["customer"], Value::Null);

    // A card that Stripe declines on attach.
    let (status, e) = env
        .post(
            &format!("/stripe/customers/{cus}/payment-methods"),
            json!({"payment_method": "pm_card_visa_chargeDeclined"}),
        )
        .await;
    assert_eq!(status, 402, "{e}");
    assert_eq!(e["error"]["type"], "card_declined");
    assert!(e["error"]["decline_code"].is_string(), "{e}");
    env.app.shutdown().await;
}

#[tokio::test]
async fn subscriptions_are_created_changed_and_canceled() {
    let Some(env) = env().await else { return };
    env.ls.plan("plan_basic_monthly", 1500, "eur").await;
    let (cus, _) = env.customer_with_card().await;
    let (status, s) = env
        .post(
            "/stripe/subscriptions",
            json!({"customer": cus, "price": "plan_basic_monthly", "quantity": 2}),
        )
        .await;
    assert_eq!(status, 201, "{s}");
    let id = s["id"].as_str().unwrap().to_string();
    assert_eq!(s["status"], "active");
    assert_eq!(s["price"], "plan_basic_monthly");
    assert_eq!(s["quantity"], 2);
    assert_eq!(s["customer"], cus.as_str());
    let path = format!("/stripe/subscriptions/{id}");
    assert_eq!(env.get(&path).await["quantity"], 2);

    let (status, s) = env.patch(&path, json!({"quantity": 5})).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["quantity"], 5);
    let (_, in_stripe) = env.ls.get(&format!("/v1/subscriptions/{id}")).await;
    assert_eq!(in_stripe["quantity"], 5);

    let (status, s) = env
        .patch(&path, json!({"cancel_at_period_end": true}))
        .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["cancel_at_period_end"], true);
    let (status, s) = env.patch(&path, json!({"resume": true})).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["cancel_at_period_end"], false);
    let (status, s, _) = env
        .send(
            reqwest::Method::DELETE,
            &format!("{path}?at_period_end=true"),
            None,
            None,
        )
        .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["cancel_at_period_end"], true);
    assert_eq!(env.get(&path).await["cancel_at_period_end"], true);

    let (status, e) = env
        .patch(&path, json!({"proration_behavior": "sometimes"}))
        .await;
    assert_eq!(status, 400, "{e}");
    assert_eq!(e["error"]["param"], "proration_behavior");

    let (status, s) = env.delete(&path).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["status"], "canceled");
    env.processed("customer.subscription.deleted", &id).await;
    assert_eq!(env.get(&path).await["status"], "canceled");
    // And the customer lists it.
    let c = env.get(&format!("/stripe/customers/{cus}")).await;
    assert_eq!(c["subscriptions"][0]["id"], id.as_str());
    env.app.shutdown().await;
}

#[tokio::test]
async fn a_one_time_payment_is_refunded_in_part_and_never_beyond_what_is_left() {
    let Some(env) = env().await else { return };
    let (cus, pm) = env.customer_with_card().await;
    let (status, p) = env
        .post(
            "/stripe/payments",
            json!({"customer": cus, "amount": 2000, "currency": "eur", "payment_method": pm}),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["status"], "succeeded");
    assert_eq!(p["amount"], 2000);
    assert!(p.get("client_secret").is_none(), "{p}");
    let pi = p["id"].as_str().unwrap().to_string();
    assert!(pi.starts_with("pi_"));
    assert!(p["charge"].as_str().unwrap().starts_with("ch_"), "{p}");

    let (status, r) = env
        .post("/stripe/refunds", json!({"payment": pi, "amount": 500}))
        .await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["amount"], 500);
    assert_eq!(r["payment"], pi.as_str());
    assert_eq!(r["currency"], "eur");
    assert_eq!(r["status"], "succeeded");
    assert!(r["id"].as_str().unwrap().starts_with("re_"));
    // Written through: the payment shows what was refunded.
    let payments = env.get(&format!("/stripe/payments?customer={cus}")).await;
    assert_eq!(payments["data"][0]["amount_refunded"], 500, "{payments}");
    // Audited with the token that asked for it.
    let refund_id = r["id"].as_str().unwrap().to_string();
    let audit = env
        .app
        .store
        .run(|c| billd::store::audit::recent(c, 10))
        .await
        .unwrap();
    let entry = audit
        .iter()
        .find(|e| e.action == "refund.create" && e.target.as_deref() == Some(refund_id.as_str()))
        .expect("the refund is in the audit log");
    assert!(entry.actor.starts_with("token:tok_"), "{entry:?}");

    // 1,600 is more than the 1,500 left.
    let (status, e) = env
        .post(
            "/stripe/refunds",
            json!({"payment_intent": pi, "amount": 1600}),
        )
        .await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["error"]["type"], "refund_exceeds_remainder");
    assert_eq!(e["error"]["refundable"], 1500);
    let message = e["error"]["message"].as_str().unwrap();
    assert!(message.contains("1500 eur left"), "{message}");
    let charge = p["charge"].as_str().unwrap();
    let (_, refunds) = env.ls.get(&format!("/v1/refunds?charge={charge}")).await;
    assert_eq!(refunds["data"].as_array().unwrap().len(), 1, "{refunds}");

    // The rest, by charge id: then nothing is left.
    let (status, r) = env.post("/stripe/refunds", json!({"charge": charge})).await;
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["amount"], 1500);
    let (status, e) = env.post("/stripe/refunds", json!({"payment": pi})).await;
    assert_eq!(status, 422, "{e}");
    assert_eq!(e["error"]["type"], "not_refundable");

    let (status, e) = env
        .post("/stripe/refunds", json!({"payment": pi, "charge": charge}))
        .await;
    assert_eq!(status, 400, "{e}");
    env.app.shutdown().await;
}

#[tokio::test]
async fn a_declined_card_is_a_402_with_its_decline_code_and_a_card_needing_authentication_answers_requires_action()
 {
    let Some(env) = env().await else { return };
    let (cus, _) = env.customer_with_card().await;
    let (status, e) = env
        .post(
            "/stripe/payments",
            json!({"customer": cus, "amount": 1000, "currency": "usd",
                   "payment_method": "pm_card_chargeCustomerFail"}),
        )
        .await;
    assert_eq!(status, 402, "{e}");
    assert_eq!(e["error"]["type"], "card_declined");
    assert_eq!(e["error"]["code"], "card_declined");
    // localstripe names no reason: Stripe's generic decline.
    assert_eq!(e["error"]["decline_code"], "generic_decline");
    assert!(e["error"]["request_id"].is_string());

    // A card that asks for 3-D Secure (made in Stripe directly, as Stripe.js would).
    let pm = env
        .ls
        .post(
            "/v1/payment_methods",
            &[
                ("type", "card"),
                ("card[number]", "4000002500003155"),
                ("card[exp_month]", "12"),
                ("card[exp_year]", "2030"),
                ("card[cvc]", "123"),
            ],
        )
        .await;
    let pm = pm["id"].as_str().unwrap();
    let (status, p) = env
        .post(
            "/stripe/payments",
            json!({"customer": cus, "amount": 1000, "currency": "usd", "payment_method": pm}),
        )
        .await;
    assert_eq!(status, 201, "{p}");
    assert_eq!(p["status"], "requires_action");
    let secret = p["client_secret"].as_str().unwrap();
    assert!(secret.starts_with(p["id"].as_str().unwrap()), "{p}");
    env.app.shutdown().await;
}

#[tokio::test]
async fn the_same_idempotency_key_twice_creates_one_customer_and_one_refund() {
    let Some(env) = env().await else { return };
    let body = json!({"email": "once@example.com"});
    let (s1, c1, h1) = env
        .send(
            reqwest::Method::POST,
            "/stripe/customers",
            Some(body.clone()),
            Some("cus-once-1"),
        )
        .await;
    let (s2, c2, h2) = env
        .send(
            reqwest::Method::POST,
            "/stripe/customers",
            Some(body),
            Some("cus-once-1"),
        )
        .await;
    assert_eq!((s1, s2), (201, 201));
    assert_eq!(c1["id"], c2["id"]);
    assert!(h1.get("idempotent-replayed").is_none());
    assert_eq!(h2.get("idempotent-replayed").unwrap(), "true");
    let (_, all) = env.ls.get("/v1/customers?limit=100").await;
    let named: Vec<_> = all["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["email"] == "once@example.com")
        .collect();
    assert_eq!(named.len(), 1, "{all}");

    // The key with another body is a conflict, and creates nothing.
    let (status, e, _) = env
        .send(
            reqwest::Method::POST,
            "/stripe/customers",
            Some(json!({"email": "other@example.com"})),
            Some("cus-once-1"),
        )
        .await;
    assert_eq!(status, 409, "{e}");
    assert_eq!(e["error"]["type"], "idempotency_conflict");

    let (cus, pm) = env.customer_with_card().await;
    let (_, p) = env
        .post(
            "/stripe/payments",
            json!({"customer": cus, "amount": 3000, "currency": "eur", "payment_method": pm}),
        )
        .await;
    let pi = p["id"].as_str().unwrap();
    let refund = json!({"payment": pi, "amount": 1000, "reason": null});
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, r, _) = env
            .send(
                reqwest::Method::POST,
                "/stripe/refunds",
                Some(refund.clone()),
                Some("refund-once-1"),
            )
            .await;
        assert_eq!(status, 201, "{r}");
        ids.push(r["id"].clone());
    }
    assert_eq!(ids[0], ids[1]);
    let charge = p["charge"].as_str().unwrap();
    let (_, refunds) = env.ls.get(&format!("/v1/refunds?charge={charge}")).await;
    assert_eq!(refunds["data"].as_array().unwrap().len(), 1, "{refunds}");
    let payments = env.get(&format!("/stripe/payments?customer={cus}")).await;
    assert_eq!(payments["data"][0]["amount_refunded"], 1000);
    env.app.shutdown().await;
}

#[tokio::test]
async fn stripe_unreachable_is_a_503_with_retry_after() {
    // Nothing listens there: no localstripe needed.
    let port = common::localstripe::free_port();
    let app = spawn_app_with(
        move |c| {
            c.stripe.api_base = format!("http://127.0.0.1:{port}");
            c.stripe.retry_backoff_ms = 10;
        },
        &[WEBHOOK_SECRET],
    )
    .await;
    let token = app.token(Scope::Admin).await;
    let started = Instant::now();
    let r = app
        .client
        .post(app.url("/stripe/customers"))
        .bearer_auth(&token)
        .json(&json!({"email": "nobody@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("retry-after").is_some());
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["error"]["type"], "stripe_unavailable");
    assert!(started.elapsed() < Duration::from_secs(10));
    app.shutdown().await;
}

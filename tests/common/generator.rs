//! The lives of customers, subscriptions, invoices and payments as Stripe reports them,
//! as webhook events built from `tests/fixtures/events/*.json`. Self-contained (serde_json
//! and the fixtures only), so that both the tests (`common::histories`) and
//! `benches/ingest.rs` include it.

use std::collections::HashMap;

use serde_json::{Value, json};

/// The first `created` of the generated histories (2025-01-01T00:00:00Z).
pub const T0: i64 = 1_735_689_600;

/// The webhook events of a set of objects' lives, built from the fixtures: customers
/// created, updated and sometimes deleted; subscriptions created, updated and some
/// canceled, with their invoices; payment intents with their charges (a failed attempt
/// before the success for some, refunds and later charge updates for others). Each
/// object's events have increasing `created` times, except that a charge and its
/// intent report one change in the same second, as Stripe's do. Every event has its
/// own id; every object carries the whole state of its time, as Stripe sends it.
pub struct Histories {
    prefix: String,
    events: Vec<Value>,
    /// Each fixture read and parsed once: a benchmark builds 100,000 events.
    fixtures: HashMap<&'static str, Value>,
}

impl Histories {
    /// `groups` customers (each with a payment; every other one with a subscription and
    /// its invoice), each customer and subscription with `updates` updates.
    pub fn build(prefix: &str, groups: usize, updates: usize) -> Vec<Value> {
        let mut h = Histories {
            prefix: prefix.to_string(),
            events: Vec::new(),
            fixtures: HashMap::new(),
        };
        for g in 0..groups {
            let base = T0 + g as i64 * 10_000;
            h.customer(g, base, updates);
            let subscribed = g.is_multiple_of(2);
            if subscribed {
                h.subscription(g, base + 5, updates);
                h.invoice(g, base + 6);
            }
            h.payment(g, base + 7, subscribed);
        }
        h.events
    }

    /// One event from `fixture`, as `type_` at `created`, its object's fields set from
    /// `fields` (test mode throughout).
    fn push(&mut self, fixture: &'static str, type_: &str, created: i64, fields: Value) {
        let id = format!("evt_{}_{:05}", self.prefix, self.events.len());
        let mut event = self
            .fixtures
            .entry(fixture)
            .or_insert_with(|| read_fixture(fixture))
            .clone();
        event["id"] = id.into();
        event["type"] = type_.into();
        event["created"] = created.into();
        event["livemode"] = false.into();
        let object = event["data"]["object"]
            .as_object_mut()
            .expect("a fixture with an object");
        object.insert("livemode".into(), false.into());
        for (k, v) in fields.as_object().expect("fields").clone() {
            object.insert(k, v);
        }
        self.events.push(event);
    }

    fn id(&self, kind: &str, g: usize) -> String {
        format!("{kind}_{}{g}", self.prefix)
    }

    fn amount(g: usize, subscribed: bool) -> i64 {
        if subscribed {
            1500 + 500 * (g % 3) as i64
        } else {
            1000 + g as i64
        }
    }

    fn customer(&mut self, g: usize, at: i64, updates: usize) {
        let id = self.id("cus", g);
        let state = |k: usize| {
            json!({
                "id": id, "created": at,
                "email": format!("c{g}.v{k}@example.com"), "name": format!("Customer {g} v{k}"),
            })
        };
        self.push("customer.created.json", "customer.created", at, state(0));
        for k in 1..=updates {
            let t = at + 10 * k as i64;
            self.push("customer.created.json", "customer.updated", t, state(k));
        }
        if g % 7 == 3 {
            let t = at + 10 * (updates as i64 + 1);
            self.push(
                "customer.created.json",
                "customer.deleted",
                t,
                state(updates),
            );
        }
    }

    fn subscription(&mut self, g: usize, at: i64, updates: usize) {
        let (id, customer) = (self.id("sub", g), self.id("cus", g));
        let (item, price) = (self.id("si", g), format!("price_{}{}", self.prefix, g % 3));
        let canceled = g.is_multiple_of(4);
        let state = |k: usize, t: i64, status: &str| {
            json!({
                "id": id, "customer": customer, "status": status, "currency": "usd",
                "created": at, "start_date": at,
                "current_period_start": at, "current_period_end": at + 30 * 86_400,
                "cancel_at_period_end": canceled && k == updates,
                "canceled_at": if status == "canceled" { json!(t) } else { Value::Null },
                "ended_at": if status == "canceled" { json!(t) } else { Value::Null },
                "plan": null, "quantity": null,
                "items": {"object": "list", "has_more": false, "data": [{
                    "id": item, "object": "subscription_item", "subscription": id,
                    "quantity": k + 1,
                    "price": {
                        "id": price, "object": "price", "currency": "usd",
                        "unit_amount": Self::amount(g, true), "type": "recurring",
                        "recurring": {"interval": "month", "interval_count": 1},
                    },
                }]},
            })
        };
        let fixture = "customer.subscription.created.json";
        let created = state(0, at, "active");
        self.push(fixture, "customer.subscription.created", at, created);
        for k in 1..=updates {
            let t = at + 10 * k as i64;
            let updated = state(k, t, "active");
            self.push(fixture, "customer.subscription.updated", t, updated);
        }
        if canceled {
            let t = at + 10 * (updates as i64 + 1);
            let deleted = state(updates, t, "canceled");
            self.push(fixture, "customer.subscription.deleted", t, deleted);
        }
    }

    fn invoice(&mut self, g: usize, at: i64) {
        let (id, customer) = (self.id("in", g), self.id("cus", g));
        let (subscription, intent) = (self.id("sub", g), self.id("pi", g));
        let amount = Self::amount(g, true);
        let state = |status: &str| {
            let paid = if status == "paid" { amount } else { 0 };
            json!({
                "id": id, "customer": customer, "subscription": subscription,
                "status": status, "number": format!("N-{g}"), "currency": "usd",
                "amount_due": amount, "amount_paid": paid, "amount_remaining": amount - paid,
                "total": amount, "created": at, "period_start": at, "period_end": at,
                "payment_intent": if status == "draft" { Value::Null } else { json!(intent) },
            })
        };
        let fixture = "invoice.paid.json";
        self.push(fixture, "invoice.created", at, state("draft"));
        self.push(fixture, "invoice.finalized", at + 1, state("open"));
        self.push(fixture, "invoice.paid", at + 3, state("paid"));
    }

    fn payment(&mut self, g: usize, at: i64, subscribed: bool) {
        let (intent, customer) = (self.id("pi", g), self.id("cus", g));
        let invoice = if subscribed {
            json!(self.id("in", g))
        } else {
            Value::Null
        };
        let (failed_charge, charge) = (format!("{}a", self.id("ch", g)), self.id("ch", g));
        let amount = Self::amount(g, subscribed);
        let (refund, refund_at) = (self.id("re", g), (g % 5 == 1).then_some(at + 40));
        let intent_state = |status: &str, latest: Option<&str>, error: Value| {
            json!({
                "id": intent, "customer": customer, "invoice": invoice, "amount": amount,
                "currency": "usd", "created": at, "status": status,
                "amount_received": if status == "succeeded" { amount } else { 0 },
                "latest_charge": latest, "last_payment_error": error,
            })
        };
        // The charge as of `t`: refunded by then or not.
        let charge_state = |id: &str, t: i64, succeeded: bool, description: &str| {
            let refunds: Vec<Value> = refund_at
                .filter(|r| *r <= t)
                .map(|r| {
                    json!({
                        "id": refund, "object": "refund", "amount": 500,
                        "charge": id, "payment_intent": intent, "currency": "usd",
                        "created": r, "status": "succeeded", "reason": null,
                    })
                })
                .into_iter()
                .collect();
            let refunded: i64 = refunds.len() as i64 * 500;
            json!({
                "id": id, "payment_intent": intent, "customer": customer, "invoice": invoice,
                "amount": amount, "currency": "usd", "created": at + 1,
                "description": description,
                "status": if succeeded { "succeeded" } else { "failed" },
                "paid": succeeded, "captured": succeeded,
                "amount_captured": if succeeded { amount } else { 0 },
                "amount_refunded": refunded, "refunded": false,
                "failure_code": if succeeded { Value::Null } else { json!("card_declined") },
                "failure_message": if succeeded { Value::Null } else { json!("Your card was declined.") },
                "outcome": {
                    "network_status": if succeeded { "approved_by_network" } else { "declined_by_network" },
                    "reason": null, "risk_level": "normal", "risk_score": 20,
                    "seller_message": "", "type": if succeeded { "authorized" } else { "issuer_declined" },
                },
                "refunds": {"object": "list", "has_more": false, "data": refunds},
            })
        };
        let created = intent_state("requires_payment_method", None, Value::Null);
        self.push(
            "payment_intent.created.json",
            "payment_intent.created",
            at,
            created,
        );
        if g.is_multiple_of(3) {
            let failed = charge_state(&failed_charge, at + 1, false, "first attempt");
            self.push("charge.succeeded.json", "charge.failed", at + 1, failed);
            let error = json!({"code": "card_declined", "type": "card_error"});
            let failed = intent_state("requires_payment_method", Some(&failed_charge), error);
            let fixture = "payment_intent.payment_failed.json";
            self.push(fixture, "payment_intent.payment_failed", at + 1, failed);
        }
        let succeeded = charge_state(&charge, at + 2, true, "payment");
        self.push(
            "charge.succeeded.json",
            "charge.succeeded",
            at + 2,
            succeeded,
        );
        let succeeded = intent_state("succeeded", Some(&charge), Value::Null);
        self.push(
            "payment_intent.succeeded.json",
            "payment_intent.succeeded",
            at + 2,
            succeeded,
        );
        if let Some(t) = refund_at {
            let refunded = charge_state(&charge, t, true, "payment");
            self.push("charge.refunded.json", "charge.refunded", t, refunded);
        }
        if g % 2 == 1 {
            let t = at + 50;
            let updated = charge_state(&charge, t, true, "payment, described later");
            self.push("charge.succeeded.json", "charge.updated", t, updated);
        }
    }
}

fn read_fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

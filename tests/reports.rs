//! The financial reports against a dataset whose answers are worked out by hand below:
//! signed events over HTTP to the real server, then the report API and the binary.
//!
//! THE DATASET (all times 2025, UTC; amounts in minor units)
//!
//! Payments (charge events, one payment per payment intent):
//!   P1 EUR 5000  succeeded Jan 10                (its event is replayed: counted once)
//!   P2 EUR 2000  succeeded Jan 20; refund 500 succeeded Feb 5 (partial, a later month);
//!                a second refund of 100 on Feb 6 failed (gave nothing back: not counted)
//!   P3 USD 10000 succeeded Jan 15; charge.refunded with its full refund on Mar 2
//!   P4 JPY 1200  succeeded Feb 14; refund 200 *pending* on Mar 10 (counted: money is
//!                leaving)
//!   P5 JPY 3000  failed Feb 20, customer cus_jp_late: flag stays open
//!   P6 EUR 1500  failed Jan 25, retried and succeeded Jan 26 (same intent): one
//!                succeeded payment, the failure's flag is resolved by the success
//!   P7 USD 4000  succeeded Feb 10, fully refunded Feb 12; the charge.refunded event
//!                arrives BEFORE the older charge.succeeded (out of order)
//!   P9 USD 2500  failed Mar 3, customer cus_us_late; its flag is resolved by a person
//!
//! Revenue by month (gross = succeeded by payment time, refunded = refunds by refund
//! time, net = gross - refunded, payments = succeeded count, failed = failed count):
//!   2025-01 EUR gross 5000+2000+1500 = 8500, refunded 0, net 8500, payments 3, failed 0
//!   2025-01 USD gross 10000, refunded 0, net 10000, payments 1, failed 0
//!   2025-02 EUR gross 0, refunded 500, net -500, payments 0, failed 0
//!   2025-02 JPY gross 1200, refunded 0, net 1200, payments 1, failed 1 (P5)
//!   2025-02 USD gross 4000, refunded 4000, net 0, payments 1, failed 0
//!   2025-03 JPY gross 0, refunded 200, net -200, payments 0, failed 0
//!   2025-03 USD gross 0, refunded 10000, net -10000, payments 0, failed 1 (P9)
//!
//! Subscriptions (event time = when the state began):
//!   S1 EUR 1000/month × 2, active Jan 5; quantity 3 from Mar 10 (its created event is
//!      replayed)
//!   S2 USD 12000/year × 1, active Jan 20; canceled (deleted) Apr 15 — the deleted
//!      event arrives BEFORE the created one
//!   S3 JPY 1000/2 weeks × 3, active Feb 1
//!   S4 EUR 3000/month × 1, trialing Feb 10, active Feb 24
//!   S5 USD two items: 100/week × 1 and 3000/3 months × 1, active Mar 1
//!   S6 EUR 5000/month, incomplete Mar 5, incomplete_expired Mar 6 (never counts)
//!   S7 EUR 800/month × 1, active Jan 8, past_due May 2, canceled May 20
//!
//! Monthly amounts (unit × quantity normalised, rounded once per subscription):
//!   S1 2000 (×2), 3000 (×3); S2 12000/12 = 1000; S3 1000×3×52/(12×2) = 6500;
//!   S4 3000; S5 100×52/12 + 3000/3 = 433.33… + 1000 = 1433.33… → 1433; S7 800.
//!
//! MRR now (after everything):
//!   EUR mrr 3000 (S1) + 3000 (S4) = 6000, arr 72000, 2 active
//!       by_price: price_eur_10 3000 (1 sub, qty 3), price_eur_30 3000 (1 sub, qty 1)
//!   JPY mrr 6500, arr 78000, 1 active
//!   USD mrr 1433, arr 17196, 1 active (S2 canceled)
//!       by_price: price_usd_quarterly 1000, price_usd_weekly 433 (433.33… rounded)
//! MRR at 2025-02-15T00:00:00Z:
//!   EUR mrr 2000 (S1 ×2) + 800 (S7) = 2800, 2 active; trialing S4: trialing_mrr 3000, 1
//!   JPY mrr 6500, 1 active; USD mrr 1000 (S2), 1 active
//! MRR at 2025-05-10T00:00:00Z:
//!   EUR mrr 3000 + 3000 + 800 (S7 past due, still billed) = 6800, 3 active, 1 past due
//!
//! Subscriptions per month (population: active or past due; churn = canceled ÷
//! active at the period start):
//!   2025-01 active_start 0, new 3 (S1 S7 S2), canceled 0, net +3, churn null
//!   2025-02 active_start 3, new 2 (S3, S4 when its trial converts), canceled 0, churn 0
//!   2025-03 active_start 5, new 1 (S5), canceled 0, churn 0 (S6 never counted)
//!   2025-04 active_start 6, new 0, canceled 1 (S2), net -1, churn 1/6 = 0.166667
//!   2025-05 active_start 5, new 0, canceled 1 (S7), net -1, churn 1/5 = 0.2
//!   2025-06 active_start 4, new 0, canceled 0, churn 0
//!
//! Failed payments per month (failed payments by payment time; open payment_failed
//! flags by the time they were raised):
//!   2025-02 JPY failed 1, amount 3000, open_flags 1, customers [cus_jp_late]
//!   2025-03 USD failed 1, amount 2500, open_flags 0 (resolved), customers [cus_us_late]
//!   (P6's failure later succeeded: not failed, its flag resolved: nothing in January)

mod common;

use std::process::{Command, Stdio};

use billd::store::{events::Status, tokens::Scope};
use common::*;
use serde_json::{Value, json};

fn t(s: &str) -> i64 {
    billd::time::parse_time(s).expect("a time")
}

/// An event envelope from a fixture with our id, type and time, in test mode.
fn envelope(fixture: &str, id: &str, type_: &str, created: &str) -> Value {
    let mut v = fixture_as(fixture, id);
    v["type"] = type_.into();
    v["created"] = t(created).into();
    v["livemode"] = false.into();
    v
}

struct Charge<'a> {
    charge: &'a str,
    intent: &'a str,
    customer: &'a str,
    amount: i64,
    currency: &'a str,
    created: &'a str,
}

/// A charge.* event: `kind` is succeeded, failed or refunded.
fn charge_event(id: &str, kind: &str, c: &Charge<'_>, refunds: Vec<Value>) -> Value {
    let fixture = format!("charge.{kind}.json");
    let mut v = envelope(&fixture, id, &format!("charge.{kind}"), c.created);
    let o = &mut v["data"]["object"];
    o["id"] = c.charge.into();
    o["payment_intent"] = c.intent.into();
    o["customer"] = c.customer.into();
    o["invoice"] = Value::Null;
    o["amount"] = c.amount.into();
    o["currency"] = c.currency.into();
    o["created"] = t(c.created).into();
    o["livemode"] = false.into();
    let refunded: i64 = refunds
        .iter()
        .map(|r| r["amount"].as_i64().unwrap_or(0))
        .sum();
    o["amount_refunded"] = refunded.into();
    o["refunds"] = json!({"object": "list", "data": refunds, "has_more": false});
    v
}

fn refund_object(id: &str, c: &Charge<'_>, amount: i64, status: &str, created: &str) -> Value {
    json!({
        "id": id, "object": "refund", "amount": amount, "charge": c.charge,
        "payment_intent": c.intent, "currency": c.currency, "created": t(created),
        "status": status, "reason": null
    })
}

fn refund_event(id: &str, refund: Value, created: &str) -> Value {
    let mut v = envelope("refund.created.json", id, "refund.created", created);
    v["data"]["object"] = refund;
    v
}

/// (item id, price id, unit amount, currency, interval, interval_count, quantity)
type Item<'a> = (&'a str, &'a str, i64, &'a str, &'a str, i64, i64);

fn sub_event(
    id: &str,
    type_: &str,
    created: &str,
    sub: &str,
    status: &str,
    items: &[Item<'_>],
) -> Value {
    let mut v = envelope(
        "customer.subscription.created.json",
        id,
        &format!("customer.subscription.{type_}"),
        created,
    );
    let data: Vec<Value> = items
        .iter()
        .map(|(item, price, unit, currency, interval, count, quantity)| {
            json!({
                "id": item, "object": "subscription_item", "quantity": quantity,
                "subscription": sub,
                "price": {
                    "id": price, "object": "price", "currency": currency, "unit_amount": unit,
                    "type": "recurring",
                    "recurring": {"interval": interval, "interval_count": count}
                }
            })
        })
        .collect();
    let o = &mut v["data"]["object"];
    o["id"] = sub.into();
    o["customer"] = format!("cus_{sub}").into();
    o["status"] = status.into();
    o["currency"] = items.first().map_or("usd", |i| i.3).into();
    o["created"] = t(created).into();
    o["start_date"] = t(created).into();
    o["plan"] = Value::Null;
    o["quantity"] = Value::Null;
    o["livemode"] = false.into();
    o["canceled_at"] = if status == "canceled" {
        t(created).into()
    } else {
        Value::Null
    };
    o["items"] = json!({"object": "list", "data": data, "has_more": false});
    v
}

impl TestApp {
    /// Posts one event and waits until it is applied, so events apply in the order sent.
    async fn apply(&self, event: Value) {
        let id = event["id"].as_str().expect("event id").to_string();
        let response = self.post_event(&event).await;
        assert_eq!(response.status(), 200, "{id}");
        assert_eq!(self.settled(&id).await, Status::Processed, "{id}");
    }

    async fn report(&self, path: &str, token: &str) -> Value {
        let response = self.get(path, token).await;
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.expect("JSON")
    }
}

const P1: Charge = Charge {
    charge: "ch_p1",
    intent: "pi_p1",
    customer: "cus_eu1",
    amount: 5000,
    currency: "eur",
    created: "2025-01-10T09:00:00Z",
};
const P2: Charge = Charge {
    charge: "ch_p2",
    intent: "pi_p2",
    customer: "cus_eu2",
    amount: 2000,
    currency: "eur",
    created: "2025-01-20T10:00:00Z",
};
const P3: Charge = Charge {
    charge: "ch_p3",
    intent: "pi_p3",
    customer: "cus_us1",
    amount: 10000,
    currency: "usd",
    created: "2025-01-15T11:00:00Z",
};
const P4: Charge = Charge {
    charge: "ch_p4",
    intent: "pi_p4",
    customer: "cus_jp1",
    amount: 1200,
    currency: "jpy",
    created: "2025-02-14T12:00:00Z",
};
const P5: Charge = Charge {
    charge: "ch_p5",
    intent: "pi_p5",
    customer: "cus_jp_late",
    amount: 3000,
    currency: "jpy",
    created: "2025-02-20T13:00:00Z",
};
const P6_FAILED: Charge = Charge {
    charge: "ch_p6a",
    intent: "pi_p6",
    customer: "cus_eu3",
    amount: 1500,
    currency: "eur",
    created: "2025-01-25T14:00:00Z",
};
const P6_RETRY: Charge = Charge {
    charge: "ch_p6b",
    intent: "pi_p6",
    customer: "cus_eu3",
    amount: 1500,
    currency: "eur",
    created: "2025-01-26T14:00:00Z",
};
const P7: Charge = Charge {
    charge: "ch_p7",
    intent: "pi_p7",
    customer: "cus_us2",
    amount: 4000,
    currency: "usd",
    created: "2025-02-10T15:00:00Z",
};
const P9: Charge = Charge {
    charge: "ch_p9",
    intent: "pi_p9",
    customer: "cus_us_late",
    amount: 2500,
    currency: "usd",
    created: "2025-03-03T16:00:00Z",
};

const S1_Q2: [Item; 1] = [("si_s1", "price_eur_10", 1000, "eur", "month", 1, 2)];
const S1_Q3: [Item; 1] = [("si_s1", "price_eur_10", 1000, "eur", "month", 1, 3)];
const S2: [Item; 1] = [("si_s2", "price_usd_yearly", 12000, "usd", "year", 1, 1)];
const S3: [Item; 1] = [("si_s3", "price_jpy_biweekly", 1000, "jpy", "week", 2, 3)];
const S4: [Item; 1] = [("si_s4", "price_eur_30", 3000, "eur", "month", 1, 1)];
const S5: [Item; 2] = [
    ("si_s5a", "price_usd_weekly", 100, "usd", "week", 1, 1),
    ("si_s5b", "price_usd_quarterly", 3000, "usd", "month", 3, 1),
];
const S6: [Item; 1] = [("si_s6", "price_eur_50", 5000, "eur", "month", 1, 1)];
const S7: [Item; 1] = [("si_s7", "price_eur_8", 800, "eur", "month", 1, 1)];

/// Sends the whole dataset (see the module docs), including the out-of-order events
/// and the replays, and returns an admin token.
async fn load_dataset(app: &TestApp) -> String {
    let admin = app.token(Scope::Admin).await;

    // Payments.
    app.apply(charge_event("evt_p1", "succeeded", &P1, vec![]))
        .await;
    app.apply(charge_event("evt_p2", "succeeded", &P2, vec![]))
        .await;
    app.apply(refund_event(
        "evt_p2_re",
        refund_object("re_p2", &P2, 500, "succeeded", "2025-02-05T08:00:00Z"),
        "2025-02-05T08:00:00Z",
    ))
    .await;
    app.apply(refund_event(
        "evt_p2_re_failed",
        refund_object("re_p2_failed", &P2, 100, "failed", "2025-02-06T08:00:00Z"),
        "2025-02-06T08:00:00Z",
    ))
    .await;
    app.apply(charge_event("evt_p3", "succeeded", &P3, vec![]))
        .await;
    let mut p3_refunded = charge_event(
        "evt_p3_refunded",
        "refunded",
        &P3,
        vec![refund_object(
            "re_p3",
            &P3,
            10000,
            "succeeded",
            "2025-03-02T08:00:00Z",
        )],
    );
    p3_refunded["created"] = t("2025-03-02T08:00:00Z").into();
    app.apply(p3_refunded).await;
    app.apply(charge_event("evt_p4", "succeeded", &P4, vec![]))
        .await;
    app.apply(refund_event(
        "evt_p4_re",
        refund_object("re_p4", &P4, 200, "pending", "2025-03-10T08:00:00Z"),
        "2025-03-10T08:00:00Z",
    ))
    .await;
    app.apply(charge_event("evt_p5", "failed", &P5, vec![]))
        .await;
    app.apply(charge_event("evt_p6_failed", "failed", &P6_FAILED, vec![]))
        .await;
    app.apply(charge_event("evt_p6_retry", "succeeded", &P6_RETRY, vec![]))
        .await;
    // Out of order: the refund (newer event) first, then the older charge.succeeded.
    let mut p7_refunded = charge_event(
        "evt_p7_refunded",
        "refunded",
        &P7,
        vec![refund_object(
            "re_p7",
            &P7,
            4000,
            "succeeded",
            "2025-02-12T08:00:00Z",
        )],
    );
    p7_refunded["created"] = t("2025-02-12T08:00:00Z").into();
    app.apply(p7_refunded).await;
    app.apply(charge_event("evt_p7", "succeeded", &P7, vec![]))
        .await;
    app.apply(charge_event("evt_p9", "failed", &P9, vec![]))
        .await;

    // Subscriptions.
    app.apply(sub_event(
        "evt_s1_created",
        "created",
        "2025-01-05T00:00:00Z",
        "sub_s1",
        "active",
        &S1_Q2,
    ))
    .await;
    app.apply(sub_event(
        "evt_s1_more",
        "updated",
        "2025-03-10T00:00:00Z",
        "sub_s1",
        "active",
        &S1_Q3,
    ))
    .await;
    // Out of order: S2's end arrives before its start.
    app.apply(sub_event(
        "evt_s2_deleted",
        "deleted",
        "2025-04-15T00:00:00Z",
        "sub_s2",
        "canceled",
        &S2,
    ))
    .await;
    app.apply(sub_event(
        "evt_s2_created",
        "created",
        "2025-01-20T00:00:00Z",
        "sub_s2",
        "active",
        &S2,
    ))
    .await;
    app.apply(sub_event(
        "evt_s3_created",
        "created",
        "2025-02-01T00:00:00Z",
        "sub_s3",
        "active",
        &S3,
    ))
    .await;
    app.apply(sub_event(
        "evt_s4_trial",
        "created",
        "2025-02-10T00:00:00Z",
        "sub_s4",
        "trialing",
        &S4,
    ))
    .await;
    app.apply(sub_event(
        "evt_s4_converts",
        "updated",
        "2025-02-24T00:00:00Z",
        "sub_s4",
        "active",
        &S4,
    ))
    .await;
    app.apply(sub_event(
        "evt_s5_created",
        "created",
        "2025-03-01T00:00:00Z",
        "sub_s5",
        "active",
        &S5,
    ))
    .await;
    app.apply(sub_event(
        "evt_s6_created",
        "created",
        "2025-03-05T00:00:00Z",
        "sub_s6",
        "incomplete",
        &S6,
    ))
    .await;
    app.apply(sub_event(
        "evt_s6_expired",
        "updated",
        "2025-03-06T00:00:00Z",
        "sub_s6",
        "incomplete_expired",
        &S6,
    ))
    .await;
    app.apply(sub_event(
        "evt_s7_created",
        "created",
        "2025-01-08T00:00:00Z",
        "sub_s7",
        "active",
        &S7,
    ))
    .await;
    app.apply(sub_event(
        "evt_s7_past_due",
        "updated",
        "2025-05-02T00:00:00Z",
        "sub_s7",
        "past_due",
        &S7,
    ))
    .await;
    app.apply(sub_event(
        "evt_s7_deleted",
        "deleted",
        "2025-05-20T00:00:00Z",
        "sub_s7",
        "canceled",
        &S7,
    ))
    .await;

    // Replays of applied events must not count twice.
    for id in ["evt_p1", "evt_s1_created", "evt_p2_re"] {
        let r = app
            .post(&format!("/stripe/events/{id}/replay"), &admin)
            .await;
        assert_eq!(r.status(), 200, "replay {id}");
        app.wait_status(id, |s| s == Status::Processed).await;
    }
    app.drained().await;

    // A person follows up P9's failure.
    let open = app.report("/stripe/flags?status=open", &admin).await;
    let p9 = open["data"]
        .as_array()
        .expect("flags")
        .iter()
        .find(|f| f["object_id"] == "pi_p9")
        .expect("P9's flag is open")["id"]
        .as_i64()
        .expect("flag id");
    let r = app
        .post(&format!("/stripe/flags/{p9}/resolve"), &admin)
        .await;
    assert_eq!(r.status(), 200);
    admin
}

/// Rows as compact tuples, to compare with the hand-worked figures at a glance.
fn revenue_tuples(body: &Value) -> Vec<(String, String, i64, i64, i64, i64, i64)> {
    body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|r| {
            (
                r["period"].as_str().unwrap_or("").to_string(),
                r["currency"].as_str().unwrap_or("").to_string(),
                r["gross"].as_i64().unwrap_or(-1),
                r["refunded"].as_i64().unwrap_or(-1),
                r["net"].as_i64().unwrap_or(-1),
                r["payments"].as_i64().unwrap_or(-1),
                r["failed"].as_i64().unwrap_or(-1),
            )
        })
        .collect()
}

fn row(
    p: &str,
    c: &str,
    g: i64,
    r: i64,
    n: i64,
    ok: i64,
    f: i64,
) -> (String, String, i64, i64, i64, i64, i64) {
    (p.into(), c.into(), g, r, n, ok, f)
}

#[tokio::test]
async fn revenue_per_month_matches_the_hand_worked_figures() {
    let app = spawn_app().await;
    let token = load_dataset(&app).await;
    let body = app.report("/stripe/reports/revenue", &token).await;
    assert_eq!(body["has_more"], false);
    assert_eq!(
        revenue_tuples(&body),
        vec![
            row("2025-01", "eur", 8500, 0, 8500, 3, 0),
            row("2025-01", "usd", 10000, 0, 10000, 1, 0),
            row("2025-02", "eur", 0, 500, -500, 0, 0),
            row("2025-02", "jpy", 1200, 0, 1200, 1, 1),
            row("2025-02", "usd", 4000, 4000, 0, 1, 0),
            row("2025-03", "jpy", 0, 200, -200, 0, 0),
            row("2025-03", "usd", 0, 10000, -10000, 0, 1),
        ],
        "{body:#}"
    );
    // The row shape of DESIGN §3, with the period's bounds.
    let first = &body["data"][0];
    for field in [
        "period", "currency", "gross", "refunded", "net", "payments", "failed",
    ] {
        assert!(first.get(field).is_some(), "revenue row has no `{field}`");
    }
    assert_eq!(first["period_start"], "2025-01-01T00:00:00Z");
    assert_eq!(first["period_end"], "2025-02-01T00:00:00Z");

    // One currency, a range that cuts January.
    let eur = app
        .report(
            "/stripe/reports/revenue?currency=EUR&from=2025-01-15&to=2025-03-01",
            &token,
        )
        .await;
    assert_eq!(
        revenue_tuples(&eur),
        vec![
            // P1 (Jan 10) is before the range: 2000 + 1500.
            row("2025-01", "eur", 3500, 0, 3500, 2, 0),
            row("2025-02", "eur", 0, 500, -500, 0, 0),
        ]
    );
    assert_eq!(eur["data"][0]["period_start"], "2025-01-15T00:00:00Z");
    app.shutdown().await;
}

#[tokio::test]
async fn revenue_per_day_puts_each_refund_in_the_day_it_happened() {
    let app = spawn_app().await;
    let token = load_dataset(&app).await;
    let body = app
        .report(
            "/stripe/reports/revenue?interval=day&from=2025-02-01&to=2025-03-05&currency=usd",
            &token,
        )
        .await;
    assert_eq!(
        revenue_tuples(&body),
        vec![
            row("2025-02-10", "usd", 4000, 0, 4000, 1, 0),
            row("2025-02-12", "usd", 0, 4000, -4000, 0, 0),
            row("2025-03-02", "usd", 0, 10000, -10000, 0, 0),
            row("2025-03-03", "usd", 0, 0, 0, 0, 1),
        ],
        "{body:#}"
    );
    app.shutdown().await;
}

fn mrr_of<'a>(body: &'a Value, currency: &str) -> &'a Value {
    body["data"]
        .as_array()
        .expect("data")
        .iter()
        .find(|r| r["currency"] == currency)
        .unwrap_or_else(|| panic!("no {currency} row in {body:#}"))
}

#[tokio::test]
async fn mrr_now_and_at_past_times_match_the_hand_worked_figures() {
    let app = spawn_app().await;
    let token = load_dataset(&app).await;

    let now = app.report("/stripe/reports/mrr", &token).await;
    assert_eq!(now["has_more"], false);
    assert_eq!(now["data"].as_array().map(Vec::len), Some(3), "{now:#}");
    let eur = mrr_of(&now, "eur");
    for field in [
        "at",
        "currency",
        "mrr",
        "arr",
        "active_subscriptions",
        "by_price",
    ] {
        assert!(eur.get(field).is_some(), "MRR row has no `{field}`");
    }
    assert_eq!(eur["mrr"], 6000);
    assert_eq!(eur["arr"], 72000);
    assert_eq!(eur["active_subscriptions"], 2);
    assert_eq!(eur["trialing_subscriptions"], 0);
    assert_eq!(
        eur["by_price"],
        json!([
            {"price": "price_eur_10", "mrr": 3000, "subscriptions": 1, "quantity": 3},
            {"price": "price_eur_30", "mrr": 3000, "subscriptions": 1, "quantity": 1},
        ])
    );
    let jpy = mrr_of(&now, "jpy");
    assert_eq!(
        (jpy["mrr"].as_i64(), jpy["arr"].as_i64()),
        (Some(6500), Some(78000))
    );
    let usd = mrr_of(&now, "usd");
    assert_eq!(usd["mrr"], 1433);
    assert_eq!(usd["arr"], 17196);
    assert_eq!(usd["active_subscriptions"], 1);
    assert_eq!(
        usd["by_price"],
        json!([
            {"price": "price_usd_quarterly", "mrr": 1000, "subscriptions": 1, "quantity": 1},
            {"price": "price_usd_weekly", "mrr": 433, "subscriptions": 1, "quantity": 1},
        ])
    );

    let feb = app
        .report("/stripe/reports/mrr?at=2025-02-15T00:00:00Z", &token)
        .await;
    let eur = mrr_of(&feb, "eur");
    assert_eq!(eur["at"], "2025-02-15T00:00:00Z");
    assert_eq!(eur["mrr"], 2800);
    assert_eq!(eur["active_subscriptions"], 2);
    assert_eq!(eur["trialing_subscriptions"], 1);
    assert_eq!(eur["trialing_mrr"], 3000);
    assert_eq!(mrr_of(&feb, "jpy")["mrr"], 6500);
    assert_eq!(mrr_of(&feb, "usd")["mrr"], 1000);
    assert_ne!(feb["data"], now["data"]);

    let may = app
        .report("/stripe/reports/mrr?at=2025-05-10&currency=eur", &token)
        .await;
    assert_eq!(may["data"].as_array().map(Vec::len), Some(1));
    let eur = mrr_of(&may, "eur");
    assert_eq!(eur["mrr"], 6800);
    assert_eq!(eur["active_subscriptions"], 3);
    assert_eq!(eur["past_due_subscriptions"], 1);

    // Before anything started there is nothing.
    let before = app
        .report("/stripe/reports/mrr?at=2024-12-31", &token)
        .await;
    assert_eq!(before["data"], json!([]));
    app.shutdown().await;
}

#[tokio::test]
async fn the_subscriptions_report_counts_new_canceled_and_churn_per_month() {
    let app = spawn_app().await;
    let token = load_dataset(&app).await;
    let body = app
        .report(
            "/stripe/reports/subscriptions?from=2025-01-01&to=2025-07-01",
            &token,
        )
        .await;
    let got: Vec<(String, i64, i64, i64, i64, Value)> = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|r| {
            (
                r["period"].as_str().unwrap_or("").to_string(),
                r["active_start"].as_i64().unwrap_or(-1),
                r["new"].as_i64().unwrap_or(-1),
                r["canceled"].as_i64().unwrap_or(-1),
                r["net_change"].as_i64().unwrap_or(-99),
                r["churn_rate"].clone(),
            )
        })
        .collect();
    let want = |p: &str, a, n, c, net, churn: Value| (p.to_string(), a, n, c, net, churn);
    assert_eq!(
        got,
        vec![
            want("2025-01", 0, 3, 0, 3, Value::Null),
            want("2025-02", 3, 2, 0, 2, json!(0.0)),
            want("2025-03", 5, 1, 0, 1, json!(0.0)),
            want("2025-04", 6, 0, 1, -1, json!(0.166667)),
            want("2025-05", 5, 0, 1, -1, json!(0.2)),
            want("2025-06", 4, 0, 0, 0, json!(0.0)),
        ],
        "{body:#}"
    );
    // Without a range the report runs from the first subscription event to now, every
    // month since holding the 4 that remain.
    let all = app.report("/stripe/reports/subscriptions", &token).await;
    let rows = all["data"].as_array().expect("data");
    assert_eq!(rows[0]["period"], "2025-01");
    assert!(rows.len() >= 23, "{} rows", rows.len());
    assert_eq!(
        rows.last().map(|r| r["active_start"].clone()),
        Some(json!(4))
    );
    app.shutdown().await;
}

#[tokio::test]
async fn the_failed_payments_report_lists_the_customers_to_follow_up() {
    let app = spawn_app().await;
    let token = load_dataset(&app).await;
    let body = app.report("/stripe/reports/failed-payments", &token).await;
    assert_eq!(
        body["data"],
        json!([
            {"period": "2025-02", "period_start": "2025-02-01T00:00:00Z",
             "period_end": "2025-03-01T00:00:00Z", "currency": "jpy", "failed": 1,
             "amount": 3000, "open_flags": 1, "customers": ["cus_jp_late"]},
            {"period": "2025-03", "period_start": "2025-03-01T00:00:00Z",
             "period_end": "2025-04-01T00:00:00Z", "currency": "usd", "failed": 1,
             "amount": 2500, "open_flags": 0, "customers": ["cus_us_late"]},
        ]),
        "{body:#}"
    );
    app.shutdown().await;
}

#[tokio::test]
async fn replaying_every_event_changes_no_report() {
    // Replays are a money route, limited per token; this test replays the whole inbox.
    let app = spawn_app_with(|c| c.limits.money_burst = 1_000, &[WEBHOOK_SECRET]).await;
    let admin = load_dataset(&app).await;
    let paths = [
        "/stripe/reports/revenue?to=2026-01-01",
        "/stripe/reports/mrr?at=2025-03-15",
        "/stripe/reports/mrr?at=2026-01-01",
        "/stripe/reports/subscriptions?to=2026-01-01",
        "/stripe/reports/failed-payments?to=2026-01-01",
    ];
    let mut before = Vec::new();
    for p in paths {
        before.push(app.report(p, &admin).await);
    }
    let events = app.report("/stripe/events?limit=100", &admin).await;
    for e in events["data"].as_array().expect("events") {
        let id = e["id"].as_str().expect("id");
        assert_eq!(
            app.post(&format!("/stripe/events/{id}/replay"), &admin)
                .await
                .status(),
            200
        );
    }
    app.drained().await;
    for (p, b) in paths.iter().zip(before) {
        assert_eq!(
            app.report(p, &admin).await,
            b,
            "{p} changed after replaying everything"
        );
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_refund_stripe_announces_three_times_is_counted_once() {
    // Stripe tells of one refund in charge.refunded (in the charge's list), in
    // refund.created and in refund.updated; the revenue report must count it once.
    let app = spawn_app().await;
    let token = app.token(Scope::Read).await;
    let c = Charge {
        charge: "ch_once",
        intent: "pi_once",
        customer: "cus_once",
        amount: 5000,
        currency: "eur",
        created: "2025-01-10T08:00:00Z",
    };
    let refund = refund_object("re_once", &c, 1500, "succeeded", "2025-02-03T08:00:00Z");
    app.apply(charge_event("evt_once_paid", "succeeded", &c, vec![]))
        .await;
    let mut refunded = charge_event("evt_once_refunded", "refunded", &c, vec![refund.clone()]);
    refunded["created"] = t("2025-02-03T08:00:00Z").into();
    app.apply(refunded).await;
    app.apply(refund_event(
        "evt_once_re_created",
        refund.clone(),
        "2025-02-03T08:00:00Z",
    ))
    .await;
    let mut updated = refund_event("evt_once_re_updated", refund, "2025-02-03T08:00:05Z");
    updated["type"] = "refund.updated".into();
    app.apply(updated).await;

    let body = app.report("/stripe/reports/revenue", &token).await;
    assert_eq!(
        revenue_tuples(&body),
        vec![
            row("2025-01", "eur", 5000, 0, 5000, 1, 0),
            row("2025-02", "eur", 0, 1500, -1500, 0, 0),
        ]
    );
    app.shutdown().await;
}

#[tokio::test]
async fn an_empty_mirror_answers_empty_lists() {
    let app = spawn_app().await;
    let token = app.token(Scope::Read).await;
    for report in ["revenue", "mrr", "subscriptions", "failed-payments"] {
        let body = app
            .report(&format!("/stripe/reports/{report}"), &token)
            .await;
        assert_eq!(body, json!({"data": [], "has_more": false}), "{report}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn bad_report_parameters_answer_400_with_a_clear_message() {
    let app = spawn_app().await;
    let token = app.token(Scope::Read).await;
    let cases = [
        (
            "/stripe/reports/revenue?from=last-tuesday",
            "from: `last-tuesday` is not a time",
        ),
        ("/stripe/reports/revenue?to=2025-13-01", "to: "),
        (
            "/stripe/reports/revenue?interval=fortnight",
            "interval must be `day`, `week` or `month`",
        ),
        (
            "/stripe/reports/subscriptions?from=2025-02-01&to=2025-01-01",
            "`from` must be before `to`",
        ),
        (
            "/stripe/reports/failed-payments?currency=euro",
            "three-letter ISO code",
        ),
        ("/stripe/reports/mrr?at=soon", "at: `soon` is not a time"),
        ("/stripe/reports/mrr?currency=1", "three-letter ISO code"),
        (
            "/stripe/reports/revenue?from=1900-01-01&to=2200-01-01&interval=day",
            "narrow",
        ),
    ];
    for (path, message) in cases {
        let response = app.get(path, &token).await;
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response.json().await.expect("JSON error");
        assert_eq!(body["error"]["type"], "invalid_request", "{path}");
        let got = body["error"]["message"].as_str().unwrap_or("");
        assert!(got.contains(message), "{path}: {got}");
    }
    // Reports are read by any token, and by nobody without one.
    let r = app
        .client
        .get(app.url("/stripe/reports/mrr"))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), 401);
    app.shutdown().await;
}

/// `billd` run as cron runs it: a shell script, no terminal, against the test database.
fn cron(app: &TestApp, script_args: &str) -> (i32, String, String) {
    let config = app.dir.path().join("billd.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[log]\ndir = \"\"\n",
            common::database_toml(app.dir.path())
        ),
    )
    .expect("write config");
    let script =
        format!("set -e\n\"$BILLD\" --config \"$CONFIG\" {script_args} > \"$OUT\"\ncat \"$OUT\"\n");
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("BILLD", env!("CARGO_BIN_EXE_billd"))
        .env("CONFIG", &config)
        .env("OUT", app.dir.path().join("report.out"))
        .env("STRIPE_SECRET_KEY", "sk_test_x")
        .env("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env_remove("BILLD_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run sh");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_cli_prints_reports_for_cron_in_major_units() {
    let app = spawn_app().await;
    let token = load_dataset(&app).await;

    let (code, csv, err) = cron(&app, "report revenue --format csv");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        csv,
        "period,currency,gross,refunded,net,payments,failed,disputed,disputes_lost\n\
         2025-01,EUR,85.00,0.00,85.00,3,0,0.00,0.00\n\
         2025-01,USD,100.00,0.00,100.00,1,0,0.00,0.00\n\
         2025-02,EUR,0.00,5.00,-5.00,0,0,0.00,0.00\n\
         2025-02,JPY,1200,0,1200,1,1,0,0\n\
         2025-02,USD,40.00,40.00,0.00,1,0,0.00,0.00\n\
         2025-03,JPY,0,200,-200,0,0,0,0\n\
         2025-03,USD,0.00,100.00,-100.00,0,1,0.00,0.00\n"
    );

    // JSON is the API's rows (integer minor units), as a plain array.
    let (code, json_out, err) = cron(&app, "report mrr --at 2025-02-15 --format json");
    assert_eq!(code, 0, "{err}");
    let cli: Value = serde_json::from_str(&json_out).expect("JSON");
    let api = app
        .report("/stripe/reports/mrr?at=2025-02-15", &token)
        .await;
    assert_eq!(cli, api["data"]);

    let (code, table, err) = cron(&app, "report mrr --currency jpy --by-price");
    assert_eq!(code, 0, "{err}");
    assert!(
        table.contains("price_jpy_biweekly") && table.contains("6500"),
        "{table}"
    );

    let (code, csv, err) = cron(
        &app,
        "report subscriptions --from 2025-04-01 --to 2025-05-01 --format csv",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        csv,
        "period,active_start,new,canceled,net_change,churn_rate\n2025-04,6,0,1,-1,0.166667\n"
    );

    let (code, csv, err) = cron(&app, "report failed-payments --currency jpy --format csv");
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        csv,
        "period,currency,failed,amount,open_flags,customers\n2025-02,JPY,1,3000,1,cus_jp_late\n"
    );

    // An empty period is not an error: CSV prints its header, a table says so.
    let (code, csv, err) = cron(
        &app,
        "report revenue --from 2020-01-01 --to 2020-02-01 --format csv",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        csv,
        "period,currency,gross,refunded,net,payments,failed,disputed,disputes_lost\n"
    );
    let (code, table, err) = cron(&app, "report revenue --from 2020-01-01 --to 2020-02-01");
    assert_eq!(code, 0, "{err}");
    assert_eq!(table.trim(), "no data");

    // Usage errors exit 2 and say why.
    let (code, _, err) = cron(&app, "report revenue --interval fortnight");
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = cron(&app, "report revenue --from 2025-02-01 --to 2025-01-01");
    assert_eq!(code, 2);
    assert!(err.contains("--from must be before --to"), "{err}");
    app.shutdown().await;
}

/// A charge.dispute.* event about `c`.
fn dispute_event(
    id: &str,
    type_: &str,
    dispute: &str,
    c: &Charge<'_>,
    status: &str,
    at: &str,
) -> Value {
    let mut v = envelope("charge.dispute.created.json", id, type_, at);
    let o = &mut v["data"]["object"];
    o["id"] = dispute.into();
    o["charge"] = c.charge.into();
    o["payment_intent"] = c.intent.into();
    o["amount"] = c.amount.into();
    o["currency"] = c.currency.into();
    o["status"] = status.into();
    o["created"] = t("2025-04-10T10:00:00Z").into();
    o["livemode"] = false.into();
    v
}

// DISPUTES, worked by hand: two EUR payments in April (50.00 and 20.00), both disputed
// on April 10; the first is lost (closed in May), the second won. April: gross 70.00,
// disputed 70.00, disputes_lost 50.00, net 70.00 − 50.00 = 20.00, whenever the outcome
// arrived (a dispute counts in the period it was opened). May shows nothing.
#[tokio::test]
async fn disputes_show_in_revenue_and_lost_ones_come_out_of_net() {
    let app = spawn_app().await;
    let a = Charge {
        charge: "ch_dispute_a",
        intent: "pi_dispute_a",
        customer: "cus_dispute",
        amount: 5000,
        currency: "eur",
        created: "2025-04-02T10:00:00Z",
    };
    let b = Charge {
        charge: "ch_dispute_b",
        intent: "pi_dispute_b",
        amount: 2000,
        created: "2025-04-03T10:00:00Z",
        ..a
    };
    app.apply(charge_event("evt_dsp_pay_a", "succeeded", &a, vec![]))
        .await;
    app.apply(charge_event("evt_dsp_pay_b", "succeeded", &b, vec![]))
        .await;
    for event in [
        dispute_event(
            "evt_dsp_a1",
            "charge.dispute.created",
            "dp_a",
            &a,
            "needs_response",
            "2025-04-10T10:00:00Z",
        ),
        dispute_event(
            "evt_dsp_b1",
            "charge.dispute.created",
            "dp_b",
            &b,
            "needs_response",
            "2025-04-10T10:00:00Z",
        ),
        dispute_event(
            "evt_dsp_a2",
            "charge.dispute.closed",
            "dp_a",
            &a,
            "lost",
            "2025-05-20T10:00:00Z",
        ),
        dispute_event(
            "evt_dsp_b2",
            "charge.dispute.closed",
            "dp_b",
            &b,
            "won",
            "2025-05-21T10:00:00Z",
        ),
        // A late, older update of dp_a: the ordering rule keeps it lost.
        dispute_event(
            "evt_dsp_a0",
            "charge.dispute.updated",
            "dp_a",
            &a,
            "under_review",
            "2025-04-15T10:00:00Z",
        ),
    ] {
        app.apply(event).await;
    }
    let token = app.token(Scope::Read).await;
    let r = app
        .get(
            "/stripe/reports/revenue?from=2025-04-01&to=2025-06-01",
            &token,
        )
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("JSON");
    let rows = body["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows.len(), 1, "{body:#}");
    let april = &rows[0];
    assert_eq!(april["period"], "2025-04");
    assert_eq!(
        [
            &april["gross"],
            &april["disputed"],
            &april["disputes_lost"],
            &april["net"]
        ],
        [&json!(7000), &json!(7000), &json!(5000), &json!(2000)],
        "{april}"
    );
    // Replaying the loss (as after an incident) takes nothing off a second time.
    let admin = app.token(Scope::Admin).await;
    let before = app.report("/stripe/events/evt_dsp_a2", &token).await;
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let r = app.post("/stripe/events/evt_dsp_a2/replay", &admin).await;
    assert!(r.status().is_success(), "{}", r.status());
    app.drained().await;
    let replayed = app.report("/stripe/events/evt_dsp_a2", &token).await;
    assert_eq!(replayed["status"], "processed", "{replayed}");
    assert_ne!(
        replayed["processed_at"], before["processed_at"],
        "applied again: {replayed}"
    );
    let again: Value = app
        .get(
            "/stripe/reports/revenue?from=2025-04-01&to=2025-06-01",
            &token,
        )
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(again["data"], body["data"], "a replay changed the revenue");
    app.shutdown().await;
}

//! MRR movements and retention (issue 14) over a generated history of thousands of
//! customers: the identity `starting + new + expansion + reactivation − contraction −
//! churned = ending` in every period, each period starting where the last one ended,
//! the boundaries agreeing with the MRR report, and every column equal to a naive
//! model that classifies each customer from its own versions; then a small dataset
//! whose every figure is worked out by hand below, through signed webhooks, the real
//! server and the binary.

mod common;

use std::{collections::BTreeMap, time::Duration};

use billd::{
    report::{self, Interval, MrrMovementRow, RangeQuery, mrr::monthly},
    store::{
        Store,
        events::Status,
        mirror::{ItemRow, Version},
        reports::{BulkLoader, SubscriptionVersion},
        tokens::Scope,
    },
};
use common::*;
use serde_json::{Value, json};

const DAY: i64 = 86_400;

fn t(s: &str) -> i64 {
    billd::time::parse_time(s).expect("a time")
}

/// One generated version: (time, status, terminal, monthly amount).
type Gen = (i64, &'static str, bool, i64);

/// What the generator wrote, per (currency, customer): each subscription's versions.
type Model = BTreeMap<(String, String), Vec<Vec<Gen>>>;

/// Writes `n` customers with one to three subscriptions each (so some overlap and some
/// come back after a cancellation), each living through trials that convert or not,
/// upgrades, downgrades, price changes, past-due spells and cancellations.
fn generate(store: &Store, n: usize) -> Model {
    let mut rng = fastrand::Rng::with_seed(14);
    let mut model = Model::new();
    let mut conn = store.conn().expect("connection");
    let tx = conn.transaction().expect("transaction");
    {
        let mut bulk = BulkLoader::new(&tx).expect("bulk loader");
        let mut seq = 1;
        let (lo, hi) = (t("2024-10-01"), t("2025-12-01"));
        for c in 0..n {
            let customer = format!("cus_{c:05}");
            let currency = ["eur", "usd", "jpy"][rng.usize(0..3)];
            let subs = model
                .entry((currency.to_string(), customer.clone()))
                .or_default();
            for s in 0..rng.usize(1..4) {
                let id = format!("sub_{c:05}_{s}");
                let (interval, mut unit) = if rng.u32(0..4) == 0 {
                    ("year", 12 * rng.i64(50..500))
                } else {
                    ("month", rng.i64(50..500))
                };
                let mut quantity = rng.i64(1..4);
                let mut at = rng.i64(lo..hi);
                let mut status = if rng.u32(0..5) == 0 {
                    "trialing"
                } else {
                    "active"
                };
                let mut versions = Vec::new();
                loop {
                    let item = ItemRow {
                        id: format!("si_{id}"),
                        price: Some(format!("price_{interval}")),
                        quantity: Some(quantity),
                        unit_amount: Some(unit),
                        currency: Some(currency.into()),
                        interval: Some(interval.into()),
                        interval_count: Some(1),
                    };
                    let terminal = status == "canceled";
                    let amount = monthly(Some(unit), Some(quantity), Some(interval), Some(1))
                        .map_or(0, |m| m.round());
                    let v = SubscriptionVersion {
                        subscription: &id,
                        customer: Some(&customer),
                        status: Some(status),
                        currency: Some(currency),
                        terminal,
                        items: std::slice::from_ref(&item),
                        discounts: "",
                    };
                    bulk.version(&v, Version { created: at, seq })
                        .expect("version");
                    seq += 1;
                    versions.push((at, status, terminal, amount));
                    if terminal || at > t("2026-01-15") {
                        break;
                    }
                    at += rng.i64(1..60) * DAY;
                    status = match (status, rng.u32(0..10)) {
                        // A trial converts, or ends unpaid.
                        ("trialing", 0..6) => "active",
                        ("trialing", _) => "canceled",
                        (_, 0..2) => {
                            quantity += 1;
                            "active"
                        }
                        (_, 2..4) => {
                            quantity = (quantity - 1).max(1);
                            "active"
                        }
                        (_, 4) => {
                            unit = unit * 3 / 2;
                            "active"
                        }
                        (_, 5) => "past_due",
                        (_, 6..8) => "active",
                        _ => "canceled",
                    };
                }
                subs.push(versions);
            }
        }
        bulk.finish().expect("derive timelines");
    }
    tx.commit().expect("commit");
    model
}

/// A customer's MRR at `at` from its own versions: each subscription's newest version
/// at or before `at`, nothing once one of them ended it.
fn naive_mrr(subs: &[Vec<Gen>], at: i64) -> i64 {
    subs.iter()
        .map(|versions| {
            let held: Vec<&Gen> = versions.iter().filter(|v| v.0 <= at).collect();
            match held.last() {
                Some(v) if !held.iter().any(|v| v.2) && matches!(v.1, "active" | "past_due") => v.3,
                _ => 0,
            }
        })
        .sum()
}

/// Whether the customer had MRR at any moment before `at`.
fn naive_paid_before(subs: &[Vec<Gen>], at: i64) -> bool {
    subs.iter()
        .flat_map(|versions| versions.iter())
        .any(|v| v.0 < at && naive_mrr(subs, v.0) > 0)
}

fn open_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        Store::open(&dir.path().join("a.sqlite"), 2, Duration::from_secs(30)).expect("open");
    store.migrate().expect("migrate");
    (dir, store)
}

fn query(from: &str, to: &str, interval: Interval) -> RangeQuery {
    RangeQuery {
        from: Some(t(from)),
        to: Some(t(to)),
        interval,
        ..RangeQuery::default()
    }
}

fn assert_identity_and_continuity(rows: &[MrrMovementRow]) {
    let mut last_end: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for r in rows {
        assert_eq!(
            r.starting_mrr + r.new + r.expansion + r.reactivation - r.contraction - r.churned,
            r.ending_mrr,
            "{r:?}"
        );
        assert_eq!(r.net_change, r.ending_mrr - r.starting_mrr, "{r:?}");
        for v in [r.new, r.expansion, r.contraction, r.churned, r.reactivation] {
            assert!(v >= 0, "{r:?}");
        }
        // A period missing from the rows had no MRR at either end.
        if let Some(&(end, at)) = last_end.get(r.currency.as_str()) {
            let expected_start = if at == r.period_start { end } else { 0 };
            assert_eq!(r.starting_mrr, expected_start, "{r:?}");
        }
        last_end.insert(&r.currency, (r.ending_mrr, r.period_end));
    }
}

#[test]
fn movements_over_thousands_of_generated_customers_add_up_and_match_a_naive_model() {
    let (_dir, store) = open_store();
    let model = generate(&store, 3000);
    let conn = store.conn().expect("connection");
    let now = t("2026-06-01");

    let q = query("2025-01-01", "2026-01-01", Interval::Month);
    let rows = report::mrr_movements(&conn, &q, now).expect("movements");
    assert_eq!(
        rows.len(),
        12 * 3,
        "every month has paying customers in each currency"
    );
    assert_identity_and_continuity(&rows);

    // The boundaries are the MRR report's answers at the same times.
    for r in &rows {
        let at_start = report::mrr(
            &conn,
            r.period_start,
            Some(&r.currency),
            None,
            report::Basis::Net,
        )
        .expect("mrr");
        assert_eq!(
            at_start.first().map_or(0, |m| m.mrr),
            r.starting_mrr,
            "{r:?}"
        );
    }

    // Every column, from each customer's own versions.
    let mut expected: BTreeMap<(i64, String), [i64; 7]> = BTreeMap::new();
    for ((currency, _), subs) in &model {
        for r in rows.iter().filter(|r| &r.currency == currency) {
            let (s, e) = (
                naive_mrr(subs, r.period_start),
                naive_mrr(subs, r.period_end),
            );
            let x = expected
                .entry((r.period_start, currency.clone()))
                .or_default();
            x[0] += s;
            x[6] += e;
            match (s, e) {
                (0, 0) => {}
                (0, e) if naive_paid_before(subs, r.period_start) => x[5] += e,
                (0, e) => x[1] += e,
                (s, 0) => x[4] += s,
                (s, e) if e > s => x[2] += e - s,
                (s, e) => x[3] += s - e,
            }
        }
    }
    for r in &rows {
        let got = [
            r.starting_mrr,
            r.new,
            r.expansion,
            r.contraction,
            r.churned,
            r.reactivation,
            r.ending_mrr,
        ];
        assert_eq!(
            Some(&got),
            expected.get(&(r.period_start, r.currency.clone())),
            "{} {}",
            r.period,
            r.currency
        );
    }
    assert!(
        rows.iter().any(|r| r.reactivation > 0),
        "the data has reactivations"
    );
    assert!(rows.iter().any(|r| r.contraction > 0), "and contractions");

    // Retention is made of the same movements.
    let retention = report::retention(&conn, &q, now).expect("retention");
    assert_eq!(retention.len(), rows.len());
    for (m, r) in rows.iter().zip(&retention) {
        assert_eq!((&m.period, &m.currency), (&r.period, &r.currency));
        let kept = (m.starting_mrr - m.contraction - m.churned) as f64;
        assert_eq!(r.grr, Some(kept / m.starting_mrr as f64));
        assert_eq!(
            r.nrr,
            Some((kept + m.expansion as f64) / m.starting_mrr as f64)
        );
        let paying_end = model
            .iter()
            .filter(|((c, _), subs)| c == &m.currency && naive_mrr(subs, m.period_end) > 0)
            .count() as u64;
        assert_eq!(r.customers_end, paying_end);
        let arpa = (m.ending_mrr as f64 / paying_end as f64).round() as i64;
        assert_eq!(r.arpa, Some(arpa));
    }
}

#[test]
fn weekly_and_daily_movements_add_up_and_agree_with_the_monthly_totals() {
    let (_dir, store) = open_store();
    generate(&store, 1000);
    let conn = store.conn().expect("connection");
    let now = t("2026-06-01");
    let months = report::mrr_movements(
        &conn,
        &query("2025-03-01", "2025-05-01", Interval::Month),
        now,
    )
    .expect("months");
    for interval in [Interval::Week, Interval::Day] {
        let rows = report::mrr_movements(&conn, &query("2025-03-01", "2025-05-01", interval), now)
            .expect("movements");
        assert_identity_and_continuity(&rows);
        // Finer periods start and end where the months do.
        for currency in ["eur", "jpy", "usd"] {
            let fine: Vec<&MrrMovementRow> =
                rows.iter().filter(|r| r.currency == currency).collect();
            let coarse: Vec<&MrrMovementRow> =
                months.iter().filter(|r| r.currency == currency).collect();
            assert_eq!(fine[0].starting_mrr, coarse[0].starting_mrr);
            assert_eq!(
                fine.last().map(|r| r.ending_mrr),
                coarse.last().map(|r| r.ending_mrr)
            );
        }
    }
}

// ---- a dataset worked out by hand, through signed webhooks and the real server ------
//
// THE DATASET (all times 2025, UTC; amounts in minor units; a subscription's MRR is
// unit × quantity normalised to a month)
//   A  EUR  A1 1000/month × 1 active Jan 10; quantity 3 on Mar 5        1000 → 3000
//   B  EUR  B1 5000/month active Jan 20; price changed to 2000/month Apr 10 (downgrade)
//   C  USD  C1 12000/year active Feb 3 (12000 / 12 = 1000); cancel_at_period_end set on
//           Mar 1 (still billed: no movement); deleted at the period's end on May 3
//   D  USD  D1 2000/month active Jan 5, canceled Feb 10; a new subscription D2
//           3000/month active Apr 15 (D had MRR before: a reactivation, not new)
//   E  JPY  E1 trialing Feb 1 at 1500 × 2, converts (active) Feb 15          3000
//   F  JPY  F1 trialing Mar 1 at 900, canceled Mar 15 without converting: never MRR
//   G  JPY  G1 500/month × 4 active Jan 12 (2000); quantity 2 on May 20 (1000)
//
// MRR MOVEMENTS by month, from 2025-01-01 to 2025-07-01, each customer classified by its
// MRR at the month's start against its MRR at the month's end
// (start, new, expansion, contraction, churned, reactivation, end):
//   EUR Jan (0, 6000 = A 1000 + B 5000, 0, 0, 0, 0, 6000)
//       Feb (6000, 0, 0, 0, 0, 0, 6000)
//       Mar (6000, 0, 2000 = A 1000 → 3000, 0, 0, 0, 8000)
//       Apr (8000, 0, 0, 3000 = B 5000 → 2000, 0, 0, 5000)
//       May, Jun (5000, 0, 0, 0, 0, 0, 5000)
//   JPY Jan (0, 2000 G, 0, 0, 0, 0, 2000)
//       Feb (2000, 3000 E's trial converted, 0, 0, 0, 0, 5000)
//       Mar, Apr (5000, 0, 0, 0, 0, 0, 5000): F's trial is never MRR
//       May (5000, 0, 0, 1000 = G 2000 → 1000, 0, 0, 4000)
//       Jun (4000, 0, 0, 0, 0, 0, 4000)
//   USD Jan (0, 2000 D, 0, 0, 0, 0, 2000)
//       Feb (2000, 1000 C, 0, 0, 2000 D, 0, 1000)
//       Mar (1000, 0, 0, 0, 0, 0, 1000): cancel_at_period_end changes nothing yet
//       Apr (1000, 0, 0, 0, 0, 3000 D2, 4000)
//       May (4000, 0, 0, 0, 1000 C, 0, 3000)
//       Jun (3000, 0, 0, 0, 0, 0, 3000)
//
// RETENTION (nrr = (start + expansion − contraction − churned) ÷ start, grr = (start −
// contraction − churned) ÷ start, arpa = end ÷ customers paying at the end, rounded):
//   EUR Jan nrr null, grr null (start 0), arpa 6000 / 2 = 3000, customers 0 → 2
//       Feb 1, 1, 3000, 2 → 2
//       Mar 8000 / 6000 = 1.333…, 6000 / 6000 = 1, 8000 / 2 = 4000, 2 → 2
//       Apr 5000 / 8000 = 0.625, 0.625, 2500, 2 → 2
//       May, Jun 1, 1, 2500, 2 → 2
//   JPY Jan null, null, 2000, 0 → 1
//       Feb 1, 1, 5000 / 2 = 2500, 1 → 2 (E trialing at the start is not a customer)
//       Mar, Apr 1, 1, 2500, 2 → 2 (F trialing is not a customer)
//       May 4000 / 5000 = 0.8, 0.8, 2000, 2 → 2
//       Jun 1, 1, 2000, 2 → 2
//   USD Jan null, null, 2000, 0 → 1
//       Feb 0 / 2000 = 0, 0, 1000, 1 → 1 (D churned; C, new, is not retention)
//       Mar 1, 1, 1000, 1 → 1
//       Apr 1, 1 (a reactivation is not in nrr: D paid nothing at the start), 4000 / 2
//           = 2000, 1 → 2
//       May 3000 / 4000 = 0.75, 0.75, 3000, 2 → 1
//       Jun 1, 1, 3000, 1 → 1

/// A subscription event: (event id, type, time, customer, subscription, status, price,
/// unit amount, currency, interval, quantity, cancel_at_period_end).
struct Sub<'a> {
    event: &'a str,
    type_: &'a str,
    at: &'a str,
    customer: &'a str,
    id: &'a str,
    status: &'a str,
    price: &'a str,
    unit: i64,
    currency: &'a str,
    interval: &'a str,
    quantity: i64,
    cancel_at_period_end: bool,
}

fn sub_event(s: &Sub<'_>) -> Value {
    let mut v = fixture_as("customer.subscription.created.json", s.event);
    v["type"] = format!("customer.subscription.{}", s.type_).into();
    v["created"] = t(s.at).into();
    v["livemode"] = false.into();
    let o = &mut v["data"]["object"];
    o["id"] = s.id.into();
    o["customer"] = s.customer.into();
    o["status"] = s.status.into();
    o["currency"] = s.currency.into();
    o["created"] = t(s.at).into();
    o["start_date"] = t(s.at).into();
    o["plan"] = Value::Null;
    o["quantity"] = Value::Null;
    o["livemode"] = false.into();
    o["cancel_at_period_end"] = s.cancel_at_period_end.into();
    o["canceled_at"] = if s.status == "canceled" {
        t(s.at).into()
    } else {
        Value::Null
    };
    o["items"] = json!({"object": "list", "has_more": false, "data": [{
        "id": format!("si_{}", s.id), "object": "subscription_item", "quantity": s.quantity,
        "subscription": s.id,
        "price": {
            "id": s.price, "object": "price", "currency": s.currency, "unit_amount": s.unit,
            "type": "recurring", "recurring": {"interval": s.interval, "interval_count": 1}
        }
    }]});
    v
}

/// The dataset's events, in the order they happened.
fn dataset() -> Vec<Value> {
    let base = Sub {
        event: "",
        type_: "created",
        at: "",
        customer: "",
        id: "",
        status: "active",
        price: "price_eur_10",
        unit: 1000,
        currency: "eur",
        interval: "month",
        quantity: 1,
        cancel_at_period_end: false,
    };
    let eur = |event, type_, at, customer, id, unit, quantity| Sub {
        event,
        type_,
        at,
        customer,
        id,
        unit,
        quantity,
        ..base
    };
    let usd = |event, type_, at, customer, id, status, unit, interval| Sub {
        event,
        type_,
        at,
        customer,
        id,
        status,
        unit,
        interval,
        price: "price_usd",
        currency: "usd",
        ..base
    };
    let jpy = |event, type_, at, customer, id, status, unit, quantity| Sub {
        event,
        type_,
        at,
        customer,
        id,
        status,
        unit,
        quantity,
        price: "price_jpy",
        currency: "jpy",
        ..base
    };
    let mut c_flagged = usd(
        "evt_c1_flag",
        "updated",
        "2025-03-01T08:00:00Z",
        "cus_c",
        "sub_c1",
        "active",
        12000,
        "year",
    );
    c_flagged.cancel_at_period_end = true;
    let mut c_deleted = usd(
        "evt_c1_end",
        "deleted",
        "2025-05-03T00:00:00Z",
        "cus_c",
        "sub_c1",
        "canceled",
        12000,
        "year",
    );
    c_deleted.cancel_at_period_end = true;
    [
        usd(
            "evt_d1",
            "created",
            "2025-01-05T09:00:00Z",
            "cus_d",
            "sub_d1",
            "active",
            2000,
            "month",
        ),
        eur(
            "evt_a1",
            "created",
            "2025-01-10T09:00:00Z",
            "cus_a",
            "sub_a1",
            1000,
            1,
        ),
        jpy(
            "evt_g1",
            "created",
            "2025-01-12T09:00:00Z",
            "cus_g",
            "sub_g1",
            "active",
            500,
            4,
        ),
        eur(
            "evt_b1",
            "created",
            "2025-01-20T09:00:00Z",
            "cus_b",
            "sub_b1",
            5000,
            1,
        ),
        jpy(
            "evt_e1",
            "created",
            "2025-02-01T09:00:00Z",
            "cus_e",
            "sub_e1",
            "trialing",
            1500,
            2,
        ),
        usd(
            "evt_c1",
            "created",
            "2025-02-03T09:00:00Z",
            "cus_c",
            "sub_c1",
            "active",
            12000,
            "year",
        ),
        usd(
            "evt_d1_end",
            "deleted",
            "2025-02-10T09:00:00Z",
            "cus_d",
            "sub_d1",
            "canceled",
            2000,
            "month",
        ),
        jpy(
            "evt_e1_paid",
            "updated",
            "2025-02-15T09:00:00Z",
            "cus_e",
            "sub_e1",
            "active",
            1500,
            2,
        ),
        c_flagged,
        jpy(
            "evt_f1",
            "created",
            "2025-03-01T09:00:00Z",
            "cus_f",
            "sub_f1",
            "trialing",
            900,
            1,
        ),
        eur(
            "evt_a1_up",
            "updated",
            "2025-03-05T09:00:00Z",
            "cus_a",
            "sub_a1",
            1000,
            3,
        ),
        jpy(
            "evt_f1_end",
            "deleted",
            "2025-03-15T09:00:00Z",
            "cus_f",
            "sub_f1",
            "canceled",
            900,
            1,
        ),
        Sub {
            price: "price_eur_20",
            ..eur(
                "evt_b1_down",
                "updated",
                "2025-04-10T09:00:00Z",
                "cus_b",
                "sub_b1",
                2000,
                1,
            )
        },
        usd(
            "evt_d2",
            "created",
            "2025-04-15T09:00:00Z",
            "cus_d",
            "sub_d2",
            "active",
            3000,
            "month",
        ),
        c_deleted,
        jpy(
            "evt_g1_down",
            "updated",
            "2025-05-20T09:00:00Z",
            "cus_g",
            "sub_g1",
            "active",
            500,
            2,
        ),
    ]
    .iter()
    .map(sub_event)
    .collect()
}

async fn load_dataset(app: &TestApp) {
    for event in dataset() {
        let id = event["id"].as_str().unwrap_or("").to_string();
        assert_eq!(app.post_event(&event).await.status(), 200, "{id}");
        assert_eq!(app.settled(&id).await, Status::Processed, "{id}");
    }
}

async fn report(app: &TestApp, path: &str, token: &str) -> Vec<Value> {
    let response = app.get(path, token).await;
    assert_eq!(response.status(), 200, "{path}");
    let body: Value = response.json().await.expect("JSON");
    body["data"].as_array().cloned().unwrap_or_default()
}

const RANGE: &str = "from=2025-01-01&to=2025-07-01";

#[tokio::test]
async fn movements_of_the_hand_worked_dataset_are_as_worked_out() {
    let app = spawn_app().await;
    load_dataset(&app).await;
    let token = app.token(Scope::Read).await;
    let rows = report(
        &app,
        &format!("/stripe/reports/mrr-movements?{RANGE}"),
        &token,
    )
    .await;
    let got: Vec<(String, String, [i64; 7])> = rows
        .iter()
        .map(|r| {
            let n = |k: &str| r[k].as_i64().unwrap_or(-1);
            assert_eq!(n("net_change"), n("ending_mrr") - n("starting_mrr"), "{r}");
            (
                r["period"].as_str().unwrap_or("").to_string(),
                r["currency"].as_str().unwrap_or("").to_string(),
                [
                    "starting_mrr",
                    "new",
                    "expansion",
                    "contraction",
                    "churned",
                    "reactivation",
                    "ending_mrr",
                ]
                .map(n),
            )
        })
        .collect();
    let flat = |m: &str, c: &str, v: i64| (m.to_string(), c.to_string(), [v, 0, 0, 0, 0, 0, v]);
    let row = |m: &str, c: &str, v: [i64; 7]| (m.to_string(), c.to_string(), v);
    let want = vec![
        row("2025-01", "eur", [0, 6000, 0, 0, 0, 0, 6000]),
        row("2025-01", "jpy", [0, 2000, 0, 0, 0, 0, 2000]),
        row("2025-01", "usd", [0, 2000, 0, 0, 0, 0, 2000]),
        flat("2025-02", "eur", 6000),
        row("2025-02", "jpy", [2000, 3000, 0, 0, 0, 0, 5000]),
        row("2025-02", "usd", [2000, 1000, 0, 0, 2000, 0, 1000]),
        row("2025-03", "eur", [6000, 0, 2000, 0, 0, 0, 8000]),
        flat("2025-03", "jpy", 5000),
        flat("2025-03", "usd", 1000),
        row("2025-04", "eur", [8000, 0, 0, 3000, 0, 0, 5000]),
        flat("2025-04", "jpy", 5000),
        row("2025-04", "usd", [1000, 0, 0, 0, 0, 3000, 4000]),
        flat("2025-05", "eur", 5000),
        row("2025-05", "jpy", [5000, 0, 0, 1000, 0, 0, 4000]),
        row("2025-05", "usd", [4000, 0, 0, 0, 1000, 0, 3000]),
        flat("2025-06", "eur", 5000),
        flat("2025-06", "jpy", 4000),
        flat("2025-06", "usd", 3000),
    ];
    assert_eq!(got, want);
    app.shutdown().await;
}

#[tokio::test]
async fn retention_of_the_hand_worked_dataset_is_as_worked_out() {
    let app = spawn_app().await;
    load_dataset(&app).await;
    let token = app.token(Scope::Read).await;
    let rows = report(&app, &format!("/stripe/reports/retention?{RANGE}"), &token).await;
    let got: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!([
                r["period"],
                r["currency"],
                r["starting_mrr"],
                r["nrr"],
                r["grr"],
                r["arpa"],
                r["customers_start"],
                r["customers_end"]
            ])
        })
        .collect();
    let want = vec![
        json!(["2025-01", "eur", 0, null, null, 3000, 0, 2]),
        json!(["2025-01", "jpy", 0, null, null, 2000, 0, 1]),
        json!(["2025-01", "usd", 0, null, null, 2000, 0, 1]),
        json!(["2025-02", "eur", 6000, 1.0, 1.0, 3000, 2, 2]),
        json!(["2025-02", "jpy", 2000, 1.0, 1.0, 2500, 1, 2]),
        json!(["2025-02", "usd", 2000, 0.0, 0.0, 1000, 1, 1]),
        json!(["2025-03", "eur", 6000, 8000.0 / 6000.0, 1.0, 4000, 2, 2]),
        json!(["2025-03", "jpy", 5000, 1.0, 1.0, 2500, 2, 2]),
        json!(["2025-03", "usd", 1000, 1.0, 1.0, 1000, 1, 1]),
        json!(["2025-04", "eur", 8000, 0.625, 0.625, 2500, 2, 2]),
        json!(["2025-04", "jpy", 5000, 1.0, 1.0, 2500, 2, 2]),
        json!(["2025-04", "usd", 1000, 1.0, 1.0, 2000, 1, 2]),
        json!(["2025-05", "eur", 5000, 1.0, 1.0, 2500, 2, 2]),
        json!(["2025-05", "jpy", 5000, 0.8, 0.8, 2000, 2, 2]),
        json!(["2025-05", "usd", 4000, 0.75, 0.75, 3000, 2, 1]),
        json!(["2025-06", "eur", 5000, 1.0, 1.0, 2500, 2, 2]),
        json!(["2025-06", "jpy", 4000, 1.0, 1.0, 2000, 2, 2]),
        json!(["2025-06", "usd", 3000, 1.0, 1.0, 3000, 1, 1]),
    ];
    assert_eq!(got, want);

    // One currency, and bad parameters in billd's error shape.
    let jpy = report(
        &app,
        &format!("/stripe/reports/retention?{RANGE}&currency=JPY"),
        &token,
    )
    .await;
    assert_eq!(jpy.len(), 6);
    for (path, message) in [
        (
            "/stripe/reports/mrr-movements?interval=year",
            "`day`, `week` or `month`",
        ),
        (
            "/stripe/reports/retention?from=2025-02-01&to=2025-01-01",
            "before",
        ),
        (
            "/stripe/reports/mrr-movements?currency=euro",
            "three-letter",
        ),
    ] {
        let response = app.get(path, &token).await;
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["error"]["type"], "invalid_request", "{path}");
        let got = body["error"]["message"].as_str().unwrap_or("");
        assert!(got.contains(message), "{path}: {got}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn the_cli_prints_movements_and_retention_in_major_units_and_the_apis_json() {
    let app = spawn_app().await;
    load_dataset(&app).await;
    let token = app.token(Scope::Read).await;
    let range = ["--from", "2025-04-01", "--to", "2025-06-01"];

    let (code, csv, err) = run_billd(
        &app,
        &[
            &["report", "mrr-movements"][..],
            &range,
            &["--format", "csv"],
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{err}");
    // JPY has no decimals; EUR and USD two.
    assert_eq!(
        csv,
        "period,currency,starting_mrr,new,expansion,contraction,churned,reactivation,net_change,ending_mrr\n\
         2025-04,EUR,80.00,0.00,0.00,30.00,0.00,0.00,-30.00,50.00\n\
         2025-04,JPY,5000,0,0,0,0,0,0,5000\n\
         2025-04,USD,10.00,0.00,0.00,0.00,0.00,30.00,30.00,40.00\n\
         2025-05,EUR,50.00,0.00,0.00,0.00,0.00,0.00,0.00,50.00\n\
         2025-05,JPY,5000,0,0,1000,0,0,-1000,4000\n\
         2025-05,USD,40.00,0.00,0.00,0.00,10.00,0.00,-10.00,30.00\n"
    );

    let (code, table, err) = run_billd(
        &app,
        &[&["report", "retention", "--currency", "usd"][..], &range].concat(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(table.contains("75.00%") && table.contains("USD"), "{table}");

    let (code, json_out, err) = run_billd(
        &app,
        &[
            &["report", "retention", "--interval", "week"][..],
            &range,
            &["--format", "json"],
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{err}");
    let cli: Value = serde_json::from_str(&json_out).expect("JSON");
    let api = report(
        &app,
        "/stripe/reports/retention?from=2025-04-01&to=2025-06-01&interval=week",
        &token,
    )
    .await;
    assert_eq!(cli, Value::Array(api));
    assert_eq!(cli[0]["period"], "2025-W14");
    app.shutdown().await;
}

// PER CUSTOMER (GET /stripe/customers/{id} `mrr`, GET /stripe/customers/{id}/mrr).
//
// cus_h pays in two currencies; cus_o (eur, 5000 a month from Jan 15) is there so that
// the per-customer rows visibly leave everyone else out; cus_n has no subscription.
//   EUR sub_h1 1000 × 1 monthly from Jan 10 (new), × 3 = 3000 from Mar 5 (upgrade),
//       × 2 = 2000 from May 12 (downgrade), canceled Jul 8 (churn); sub_h2 1500 × 1
//       monthly from Sep 15 (back after churn: a reactivation).
//   JPY (no decimals) sub_h3 12000 yearly × 1 = 12000 ÷ 12 = 1000 a month from Feb 14
//       (new), × 3 = 3000 from Jun 20 (upgrade), still running.
// cus_h's rows over Jan–Oct 2025, each period comparing its MRR at the start and the
// end (start, new, expansion, contraction, churned, reactivation, end):
//   EUR Jan (0, 1000, 0, 0, 0, 0, 1000)
//       Feb (1000, 0, 0, 0, 0, 0, 1000)
//       Mar (1000, 0, 3000 − 1000 = 2000, 0, 0, 0, 3000)
//       Apr (3000, 0, 0, 0, 0, 0, 3000)
//       May (3000, 0, 0, 3000 − 2000 = 1000, 0, 0, 2000)
//       Jun (2000, 0, 0, 0, 0, 0, 2000)
//       Jul (2000, 0, 0, 0, 2000 (all of it), 0, 0)
//       Aug: no row (0 at both ends)
//       Sep (0, 0, 0, 0, 0, 1500 (it had MRR before), 1500)
//       Oct (1500, 0, 0, 0, 0, 0, 1500)
//   JPY Jan: no row (nothing yet)
//       Feb (0, 1000, 0, 0, 0, 0, 1000)
//       Mar, Apr, May (1000, 0, 0, 0, 0, 0, 1000)
//       Jun (1000, 0, 3000 − 1000 = 2000, 0, 0, 0, 3000)
//       Jul, Aug, Sep, Oct (3000, 0, 0, 0, 0, 0, 3000)
// Its MRR now (sub_h1 ended; sub_h2 and sub_h3 active):
//   EUR mrr 1500, arr 18000, 1 active subscription, by price price_eur_15: 1500, 1, ×1
//   JPY mrr 3000, arr 36000, 1 active subscription, by price price_jpy_year: 3000, 1, ×3

#[rustfmt::skip]
fn per_customer_dataset() -> Vec<Value> {
    let sub = |event, type_, at, customer, id, status, price, unit, currency, interval, quantity| {
        sub_event(&Sub {
            event,
            type_,
            at,
            customer,
            id,
            status,
            price,
            unit,
            currency,
            interval,
            quantity,
            cancel_at_period_end: false,
        })
    };
    let customer = |event: &str, id: &str| {
        let mut v = fixture_as("customer.created.json", event);
        v["data"]["object"]["id"] = id.into();
        v["livemode"] = false.into();
        v["data"]["object"]["livemode"] = false.into();
        v
    };
    vec![
        customer("evt_h_cus", "cus_h"),
        customer("evt_o_cus", "cus_o"),
        customer("evt_n_cus", "cus_n"),
        sub("evt_h1", "created", "2025-01-10T09:00:00Z", "cus_h", "sub_h1", "active", "price_eur_10", 1000, "eur", "month", 1),
        sub("evt_o1", "created", "2025-01-15T09:00:00Z", "cus_o", "sub_o1", "active", "price_eur_50", 5000, "eur", "month", 1),
        sub("evt_h3", "created", "2025-02-14T09:00:00Z", "cus_h", "sub_h3", "active", "price_jpy_year", 12000, "jpy", "year", 1),
        sub("evt_h1_up", "updated", "2025-03-05T09:00:00Z", "cus_h", "sub_h1", "active", "price_eur_10", 1000, "eur", "month", 3),
        sub("evt_h1_down", "updated", "2025-05-12T09:00:00Z", "cus_h", "sub_h1", "active", "price_eur_10", 1000, "eur", "month", 2),
        sub("evt_h3_up", "updated", "2025-06-20T09:00:00Z", "cus_h", "sub_h3", "active", "price_jpy_year", 12000, "jpy", "year", 3),
        sub("evt_h1_end", "deleted", "2025-07-08T09:00:00Z", "cus_h", "sub_h1", "canceled", "price_eur_10", 1000, "eur", "month", 2),
        sub("evt_h2", "created", "2025-09-15T09:00:00Z", "cus_h", "sub_h2", "active", "price_eur_15", 1500, "eur", "month", 1),
    ]
}

/// (period, currency, [start, new, expansion, contraction, churned, reactivation, end])
/// of movement rows, checking `net_change` on the way.
fn movement_columns(rows: &[Value]) -> Vec<(String, String, [i64; 7])> {
    rows.iter()
        .map(|r| {
            let n = |k: &str| r[k].as_i64().unwrap_or(-1);
            assert_eq!(n("net_change"), n("ending_mrr") - n("starting_mrr"), "{r}");
            (
                r["period"].as_str().unwrap_or("").to_string(),
                r["currency"].as_str().unwrap_or("").to_string(),
                [
                    "starting_mrr",
                    "new",
                    "expansion",
                    "contraction",
                    "churned",
                    "reactivation",
                    "ending_mrr",
                ]
                .map(n),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_customers_movements_and_mrr_are_as_worked_out() {
    let app = spawn_app().await;
    for event in per_customer_dataset() {
        let id = event["id"].as_str().unwrap_or("").to_string();
        assert_eq!(app.post_event(&event).await.status(), 200, "{id}");
        assert_eq!(app.settled(&id).await, Status::Processed, "{id}");
    }
    let token = app.token(Scope::Read).await;
    let range = "from=2025-01-01&to=2025-11-01";

    let rows = report(
        &app,
        &format!("/stripe/customers/cus_h/mrr?{range}"),
        &token,
    )
    .await;
    let flat = |m: &str, c: &str, v: i64| (m.to_string(), c.to_string(), [v, 0, 0, 0, 0, 0, v]);
    let row = |m: &str, c: &str, v: [i64; 7]| (m.to_string(), c.to_string(), v);
    let want = vec![
        row("2025-01", "eur", [0, 1000, 0, 0, 0, 0, 1000]),
        flat("2025-02", "eur", 1000),
        row("2025-02", "jpy", [0, 1000, 0, 0, 0, 0, 1000]),
        row("2025-03", "eur", [1000, 0, 2000, 0, 0, 0, 3000]),
        flat("2025-03", "jpy", 1000),
        flat("2025-04", "eur", 3000),
        flat("2025-04", "jpy", 1000),
        row("2025-05", "eur", [3000, 0, 0, 1000, 0, 0, 2000]),
        flat("2025-05", "jpy", 1000),
        flat("2025-06", "eur", 2000),
        row("2025-06", "jpy", [1000, 0, 2000, 0, 0, 0, 3000]),
        row("2025-07", "eur", [2000, 0, 0, 0, 2000, 0, 0]),
        flat("2025-07", "jpy", 3000),
        flat("2025-08", "jpy", 3000),
        row("2025-09", "eur", [0, 0, 0, 0, 0, 1500, 1500]),
        flat("2025-09", "jpy", 3000),
        flat("2025-10", "eur", 1500),
        flat("2025-10", "jpy", 3000),
    ];
    assert_eq!(movement_columns(&rows), want);
    // The same row shape as the report, period bounds included.
    assert_eq!(rows[0]["period_start"], "2025-01-01T00:00:00Z");
    assert_eq!(rows[0]["period_end"], "2025-02-01T00:00:00Z");
    // The report over everyone has cus_o's 5000 in January's eur row; cus_h's has not.
    let all = report(
        &app,
        &format!("/stripe/reports/mrr-movements?{range}"),
        &token,
    )
    .await;
    assert_eq!(all[0]["new"], 6000, "{}", all[0]);

    // One currency (any case), and weeks.
    let jpy = report(
        &app,
        &format!("/stripe/customers/cus_h/mrr?{range}&currency=JPY"),
        &token,
    )
    .await;
    assert_eq!(
        movement_columns(&jpy),
        want.iter()
            .filter(|r| r.1 == "jpy")
            .cloned()
            .collect::<Vec<_>>()
    );
    let weeks = report(
        &app,
        "/stripe/customers/cus_h/mrr?from=2025-03-01&to=2025-03-15&interval=week&currency=eur",
        &token,
    )
    .await;
    // Mar 1 is in 2025-W09 (Mon Feb 24), clipped to start on Mar 1; the upgrade on Wed
    // Mar 5 falls in 2025-W10; W11 starts Mar 10 and is clipped to end on Mar 15.
    assert_eq!(
        movement_columns(&weeks),
        vec![
            flat("2025-W09", "eur", 1000),
            row("2025-W10", "eur", [1000, 0, 2000, 0, 0, 0, 3000]),
            flat("2025-W11", "eur", 3000),
        ]
    );
    // Without a range: from the customer's first change to now, the same months.
    let open = report(&app, "/stripe/customers/cus_h/mrr", &token).await;
    assert_eq!(movement_columns(&open)[..want.len()], want[..]);

    // The customer's MRR now, per currency, in the MRR report's row shape.
    let response = app.get("/stripe/customers/cus_h", &token).await;
    assert_eq!(response.status(), 200);
    let customer: Value = response.json().await.expect("JSON");
    assert_eq!(customer["id"], "cus_h");
    let mrr = customer["mrr"].as_array().expect("mrr is a list");
    let got: Vec<Value> = mrr
        .iter()
        .map(|r| {
            json!([
                r["currency"],
                r["mrr"],
                r["arr"],
                r["active_subscriptions"],
                r["past_due_subscriptions"],
                r["trialing_mrr"],
                r["trialing_subscriptions"],
                r["by_price"]
            ])
        })
        .collect();
    assert_eq!(
        got,
        vec![
            json!(["eur", 1500, 18000, 1, 0, 0, 0,
                [{"price": "price_eur_15", "mrr": 1500, "subscriptions": 1, "quantity": 1}]]),
            json!(["jpy", 3000, 36000, 1, 0, 0, 0,
                [{"price": "price_jpy_year", "mrr": 3000, "subscriptions": 1, "quantity": 3}]]),
        ]
    );
    assert!(mrr.iter().all(|r| r["at"].is_string()), "{customer}");

    // No subscription: an empty `mrr` and an empty history, not a 404.
    let response = app.get("/stripe/customers/cus_n", &token).await;
    assert_eq!(response.status(), 200);
    let none: Value = response.json().await.expect("JSON");
    assert_eq!(none["mrr"], json!([]), "{none}");
    assert!(
        report(&app, "/stripe/customers/cus_n/mrr", &token)
            .await
            .is_empty()
    );

    // Refusals, in billd's error shape.
    for (path, token, status, kind) in [
        (
            "/stripe/customers/cus_nobody/mrr",
            token.as_str(),
            404,
            "not_found",
        ),
        (
            "/stripe/customers/cus_h/mrr?interval=year",
            token.as_str(),
            400,
            "invalid_request",
        ),
        (
            "/stripe/customers/cus_h/mrr?from=2025-02-01&to=2025-01-01",
            token.as_str(),
            400,
            "invalid_request",
        ),
        (
            "/stripe/customers/sub_h1/mrr",
            token.as_str(),
            400,
            "invalid_request",
        ),
        ("/stripe/customers/cus_h/mrr", "", 401, ""),
    ] {
        let response = app.get(path, token).await;
        assert_eq!(response.status(), status, "{path}");
        assert!(response.headers().contains_key("x-request-id"), "{path}");
        let body: Value = response.json().await.expect("JSON");
        assert!(body["error"]["message"].is_string(), "{path}: {body}");
        if !kind.is_empty() {
            assert_eq!(body["error"]["type"], kind, "{path}: {body}");
        }
    }
    app.shutdown().await;
}

// DISCOUNTS, worked by hand (docs/reports.md, "Discounts"): MRR is net of forever and
// repeating coupons while they run; `once` coupons never count; `gross=true` is before
// discounts.
//   cus_da (eur) sub_da from Jan 10: 40.00 a month with the old API's embedded
//     `discount` (25 % off, repeating, Jan 10 until Apr 10): 30.00, then 40.00 from Apr 10
//     without any event.
//   cus_db (usd) sub_db from Jan 20: 100.00 a year, `discounts: ["di_b"]`; di_b's event
//     and then its coupon's (12.00 off per invoice, forever) arrive after the
//     subscription's: 10000 / 12 − 1200 / 12 = 733.33… → 733 (gross 833.33… → 833).
//   cus_dc (jpy, zero-decimal) sub_dc from Feb 5: 3000 a month with di_c, a `once`
//     coupon (50 %): 3000. Updated Mar 15 to carry di_c2 (10 % forever): 2700.
// Movements by month, net (start, new, expansion, contraction, churned, reactivation, end):
//   EUR Jan (0, 3000, 0, 0, 0, 0, 3000); Feb, Mar flat 3000; Apr (3000, 0, 1000, 0, 0,
//       0, 4000): the coupon ended on Apr 10; May flat 4000
//   JPY Feb (0, 3000, …, 3000); Mar (3000, 0, 0, 300, 0, 0, 2700); Apr, May flat 2700
//   USD Jan (0, 733, …, 733); Feb to May flat 733
// Gross: EUR Jan new 4000 then flat; JPY Feb new 3000 then flat; USD Jan new 833, flat.
// MRR on Feb 15, net: eur 3000 (discounts 1000), jpy 3000 (0), usd 733 (833 − 733 = 100).

fn discount_dataset() -> Vec<Value> {
    let sub = |event, type_, at, customer, id, price, unit, currency, interval| {
        sub_event(&Sub {
            event,
            type_,
            at,
            customer,
            id,
            status: "active",
            price,
            unit,
            currency,
            interval,
            quantity: 1,
            cancel_at_period_end: false,
        })
    };
    let mut da = sub(
        "evt_da",
        "created",
        "2025-01-10T08:00:00Z",
        "cus_da",
        "sub_da",
        "price_eur_40",
        4000,
        "eur",
        "month",
    );
    // 2020-03-02 (the fixture's version): one embedded discount, its coupon inside.
    da["data"]["object"]["discount"] = json!({
        "object": "discount", "customer": "cus_da", "subscription": "sub_da",
        "start": t("2025-01-10T08:00:00Z"), "end": t("2025-04-10T08:00:00Z"),
        "coupon": {"id": "QUARTER", "object": "coupon", "percent_off": 25, "amount_off": null,
                   "currency": null, "duration": "repeating", "duration_in_months": 3}
    });
    let mut db = sub(
        "evt_db",
        "created",
        "2025-01-20T08:00:00Z",
        "cus_db",
        "sub_db",
        "price_usd_year",
        10000,
        "usd",
        "year",
    );
    db["data"]["object"]["discounts"] = json!(["di_b"]);
    let mut dc = sub(
        "evt_dc",
        "created",
        "2025-02-05T08:00:00Z",
        "cus_dc",
        "sub_dc",
        "price_jpy_3000",
        3000,
        "jpy",
        "month",
    );
    dc["data"]["object"]["discounts"] = json!(["di_c"]);
    let mut dc2 = sub(
        "evt_dc2",
        "updated",
        "2025-03-15T08:00:00Z",
        "cus_dc",
        "sub_dc",
        "price_jpy_3000",
        3000,
        "jpy",
        "month",
    );
    dc2["data"]["object"]["discounts"] = json!(["di_c2"]);
    let discount = |event: &str, id: &str, coupon: &str, customer: &str, sub: &str, at: &str| {
        let mut v = fixture_as("customer.discount.created.json", event);
        v["created"] = t(at).into();
        v["data"]["object"] = json!({
            "id": id, "object": "discount", "customer": customer, "subscription": sub,
            "source": {"type": "coupon", "coupon": coupon}, "start": t(at), "end": null
        });
        v
    };
    let coupon =
        |event: &str, id: &str, percent: Value, amount: Value, currency: Value, duration: &str| {
            let mut v = fixture_as("coupon.created.json", event);
            v["created"] = t("2025-01-01").into();
            let o = &mut v["data"]["object"];
            o["id"] = id.into();
            o["percent_off"] = percent;
            o["amount_off"] = amount;
            o["currency"] = currency;
            o["duration"] = duration.into();
            o["duration_in_months"] = Value::Null;
            v
        };
    let mut customer = fixture_as("customer.created.json", "evt_cus_da");
    customer["data"]["object"]["id"] = "cus_da".into();
    customer["livemode"] = false.into();
    customer["data"]["object"]["livemode"] = false.into();
    vec![
        customer,
        da,
        db,
        discount(
            "evt_di_b",
            "di_b",
            "AMT12",
            "cus_db",
            "sub_db",
            "2025-01-20T08:00:00Z",
        ),
        coupon(
            "evt_cpn_amt",
            "AMT12",
            Value::Null,
            json!(1200),
            json!("usd"),
            "forever",
        ),
        coupon(
            "evt_cpn_once",
            "HALFONCE",
            json!(50),
            Value::Null,
            Value::Null,
            "once",
        ),
        dc,
        discount(
            "evt_di_c",
            "di_c",
            "HALFONCE",
            "cus_dc",
            "sub_dc",
            "2025-02-05T08:00:00Z",
        ),
        coupon(
            "evt_cpn_ten",
            "TEN",
            json!(10.0),
            Value::Null,
            Value::Null,
            "forever",
        ),
        discount(
            "evt_di_c2",
            "di_c2",
            "TEN",
            "cus_dc",
            "sub_dc",
            "2025-03-15T08:00:00Z",
        ),
        dc2,
    ]
}

#[tokio::test]
async fn mrr_is_net_of_running_forever_and_repeating_coupons_as_worked_out() {
    let app = spawn_app().await;
    for event in discount_dataset() {
        let id = event["id"].as_str().unwrap_or("").to_string();
        assert_eq!(app.post_event(&event).await.status(), 200, "{id}");
        assert_eq!(app.settled(&id).await, Status::Processed, "{id}");
    }
    let token = app.token(Scope::Read).await;
    let range = "from=2025-01-01&to=2025-06-01";
    let flat = |m: &str, c: &str, v: i64| (m.to_string(), c.to_string(), [v, 0, 0, 0, 0, 0, v]);
    let row = |m: &str, c: &str, v: [i64; 7]| (m.to_string(), c.to_string(), v);

    let net = report(
        &app,
        &format!("/stripe/reports/mrr-movements?{range}"),
        &token,
    )
    .await;
    let want_net = vec![
        row("2025-01", "eur", [0, 3000, 0, 0, 0, 0, 3000]),
        row("2025-01", "usd", [0, 733, 0, 0, 0, 0, 733]),
        flat("2025-02", "eur", 3000),
        row("2025-02", "jpy", [0, 3000, 0, 0, 0, 0, 3000]),
        flat("2025-02", "usd", 733),
        flat("2025-03", "eur", 3000),
        row("2025-03", "jpy", [3000, 0, 0, 300, 0, 0, 2700]),
        flat("2025-03", "usd", 733),
        row("2025-04", "eur", [3000, 0, 1000, 0, 0, 0, 4000]),
        flat("2025-04", "jpy", 2700),
        flat("2025-04", "usd", 733),
        flat("2025-05", "eur", 4000),
        flat("2025-05", "jpy", 2700),
        flat("2025-05", "usd", 733),
    ];
    assert_eq!(movement_columns(&net), want_net);

    let gross = report(
        &app,
        &format!("/stripe/reports/mrr-movements?{range}&gross=true"),
        &token,
    )
    .await;
    let want_gross = vec![
        row("2025-01", "eur", [0, 4000, 0, 0, 0, 0, 4000]),
        row("2025-01", "usd", [0, 833, 0, 0, 0, 0, 833]),
        flat("2025-02", "eur", 4000),
        row("2025-02", "jpy", [0, 3000, 0, 0, 0, 0, 3000]),
        flat("2025-02", "usd", 833),
        flat("2025-03", "eur", 4000),
        flat("2025-03", "jpy", 3000),
        flat("2025-03", "usd", 833),
        flat("2025-04", "eur", 4000),
        flat("2025-04", "jpy", 3000),
        flat("2025-04", "usd", 833),
        flat("2025-05", "eur", 4000),
        flat("2025-05", "jpy", 3000),
        flat("2025-05", "usd", 833),
    ];
    assert_eq!(movement_columns(&gross), want_gross);

    // The MRR report on Feb 15, net and gross, with what discounts take off.
    let mrr_cols = |rows: &[Value]| -> Vec<(String, i64, i64, i64)> {
        rows.iter()
            .map(|r| {
                (
                    r["currency"].as_str().unwrap_or("").to_string(),
                    r["mrr"].as_i64().unwrap_or(-1),
                    r["discounts"].as_i64().unwrap_or(-1),
                    r["by_price"][0]["mrr"].as_i64().unwrap_or(-1),
                )
            })
            .collect()
    };
    let at = "at=2025-02-15";
    let net = report(&app, &format!("/stripe/reports/mrr?{at}"), &token).await;
    let c = |s: &str, mrr, off, price| (s.to_string(), mrr, off, price);
    assert_eq!(
        mrr_cols(&net),
        vec![
            c("eur", 3000, 1000, 3000),
            c("jpy", 3000, 0, 3000),
            c("usd", 733, 100, 733)
        ]
    );
    let gross = report(
        &app,
        &format!("/stripe/reports/mrr?{at}&gross=true"),
        &token,
    )
    .await;
    assert_eq!(
        mrr_cols(&gross),
        vec![
            c("eur", 4000, 1000, 4000),
            c("jpy", 3000, 0, 3000),
            c("usd", 833, 100, 833)
        ]
    );
    // After the repeating coupon ended, nothing is taken off eur.
    let may = report(
        &app,
        "/stripe/reports/mrr?at=2025-05-01&currency=eur",
        &token,
    )
    .await;
    assert_eq!(mrr_cols(&may), vec![c("eur", 4000, 0, 4000)]);
    // Retention follows the net movements: jpy March keeps 2700 of 3000.
    let retention = report(
        &app,
        "/stripe/reports/retention?from=2025-03-01&to=2025-04-01&currency=jpy",
        &token,
    )
    .await;
    assert_eq!(retention[0]["nrr"], 0.9, "{retention:?}");
    // The customer's own history is net too.
    let own = report(
        &app,
        &format!("/stripe/customers/cus_da/mrr?{range}"),
        &token,
    )
    .await;
    assert_eq!(
        movement_columns(&own)[3],
        row("2025-04", "eur", [3000, 0, 1000, 0, 0, 0, 4000])
    );

    // The CLI: --gross, and the discounts column of `report mrr`.
    let (code, out, err) = run_billd(
        &app,
        &[
            "report",
            "mrr-movements",
            "--from",
            "2025-01-01",
            "--to",
            "2025-02-01",
            "--gross",
            "--format",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let cli: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(cli[0]["new"], 4000, "{out}");
    let (code, csv, err) = run_billd(
        &app,
        &["report", "mrr", "--at", "2025-02-15", "--format", "csv"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        csv.lines().next().unwrap_or("").ends_with(",discounts"),
        "{csv}"
    );
    assert!(csv.contains("EUR,30.00,360.00,1,0,0.00,0,10.00"), "{csv}");

    // `gross` is true or false, nothing else.
    let response = app.get("/stripe/reports/mrr?gross=yes", &token).await;
    assert_eq!(response.status(), 400);
    let response = app.get("/stripe/reports/retention?gross=1", &token).await;
    assert_eq!(response.status(), 400);
    app.shutdown().await;
}

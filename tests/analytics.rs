//! MRR movements and retention (issue 14) over a generated history of thousands of
//! customers: the identity `starting + new + expansion + reactivation − contraction −
//! churned = ending` in every period, each period starting where the last one ended,
//! the boundaries agreeing with the MRR report, and every column equal to a naive
//! model that classifies each customer from its own versions.

use std::{collections::BTreeMap, time::Duration};

use billd::{
    report::{self, Interval, MrrMovementRow, RangeQuery, mrr::monthly},
    store::{
        Store,
        mirror::{ItemRow, Version},
        reports::{BulkLoader, SubscriptionVersion},
    },
};

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
                        ("trialing", 0..7) => "active",
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
        currency: None,
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
        let at_start = report::mrr(&conn, r.period_start, Some(&r.currency)).expect("mrr");
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

//! Report benchmark (issue 4, docs/reports.md). Run: `cargo bench --bench reports`.
//!
//! Generates a mirror of 1,000,000 payments (three years, usd/eur/jpy, 5 % failed,
//! 8 % of the succeeded ones refunded later) and 100,000 subscriptions (monthly, yearly
//! and weekly prices with interval counts, quantities, trials, quantity changes, a
//! renewal update every 30 days, past-due spells and cancellations) in one transaction
//! through `store::reports::BulkLoader`, then times each report as the API runs it and
//! prints one line: median of 5 runs per report (the first run in brackets), plus the
//! cost of recording one subscription version in the apply path.
//! Sizes: BENCH_PAYMENTS (default 1000000), BENCH_SUBSCRIPTIONS (default 100000).

use std::time::{Duration, Instant};

use billd::{
    report::{self, Basis, RangeQuery, period::Interval},
    store::{
        Store,
        flags::{self, Kind},
        mirror::{ItemRow, Version},
        reports::{self, BulkLoader, BulkPayment, SubscriptionVersion},
    },
};

const DAY: i64 = 86_400;
/// The benchmark's "now": 2026-11-28T00:00:00Z.
const NOW: i64 = 1_795_824_000;
const SPAN: i64 = 3 * 365 * DAY;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn currency(rng: &mut fastrand::Rng) -> (&'static str, i64) {
    // (currency, typical amount in its minor unit)
    match rng.u32(0..10) {
        0..6 => ("usd", 2_000),
        6..9 => ("eur", 1_800),
        _ => ("jpy", 3_000),
    }
}

/// (price id, unit amount scale, interval, interval_count)
const PRICES: [(&str, i64, &str, i64); 6] = [
    ("price_monthly", 1, "month", 1),
    ("price_quarterly", 3, "month", 3),
    ("price_yearly", 10, "year", 1),
    ("price_biyearly", 18, "year", 2),
    ("price_weekly", 1, "week", 1),
    ("price_daily", 1, "day", 7),
];

fn load(store: &Store, n_payments: usize, n_subs: usize) -> (usize, usize, usize) {
    let mut rng = fastrand::Rng::with_seed(4);
    let mut conn = store.conn().expect("connection");
    let tx = conn.transaction().expect("transaction");
    let mut refunds = 0;
    let mut versions = 0;
    let mut discounts = 0;
    {
        let mut bulk = BulkLoader::new(&tx).expect("bulk loader");
        for i in 0..n_payments {
            let (cur, typical) = currency(&mut rng);
            let created = NOW - SPAN + rng.i64(0..SPAN);
            let amount = typical / 2 + rng.i64(0..typical * 2);
            let status = match rng.u32(0..100) {
                0..5 => "failed",
                5..7 => "canceled",
                _ => "succeeded",
            };
            let refunded = status == "succeeded" && rng.u32(0..100) < 8;
            let refund_amount = if rng.bool() { amount } else { amount / 3 };
            let id = format!("pi_{i:07}");
            let customer = format!("cus_{:06}", rng.u32(0..200_000));
            bulk.payment(&BulkPayment {
                id: &id,
                customer: &customer,
                amount,
                amount_refunded: if refunded { refund_amount } else { 0 },
                currency: cur,
                status,
                created,
            })
            .expect("payment");
            if refunded {
                let at = (created + rng.i64(DAY..60 * DAY)).min(NOW - 1);
                bulk.refund(&format!("re_{i:07}"), &id, refund_amount, cur, at)
                    .expect("refund");
                refunds += 1;
            }
            // Half of the failures are still waiting for someone.
            if status == "failed" && rng.bool() {
                flags::open(
                    &tx,
                    Kind::PaymentFailed,
                    &id,
                    Some(&customer),
                    "card_declined",
                    created,
                )
                .expect("flag");
            }
        }

        // An eighth of the subscriptions carry a coupon from their start: 20 % off
        // forever, 50 % off for 90 days, or 5.00 off per invoice forever (usd only).
        bulk.coupon("PCT20", Some(2000), None, "forever")
            .expect("coupon");
        bulk.coupon("PCT50", Some(5000), None, "repeating")
            .expect("coupon");
        bulk.coupon("AMT5", None, Some((500, "usd")), "forever")
            .expect("coupon");
        let mut seq = 1i64;
        for s in 0..n_subs {
            let id = format!("sub_{s:06}");
            let customer = format!("cus_{s:06}");
            let (cur, typical) = currency(&mut rng);
            let n_items = if rng.u32(0..5) == 0 { 2 } else { 1 };
            let mut items: Vec<ItemRow> = (0..n_items)
                .map(|k| {
                    let (price, scale, interval, count) = PRICES[rng.usize(0..PRICES.len())];
                    ItemRow {
                        id: format!("si_{s:06}_{k}"),
                        price: Some(format!("{price}_{cur}")),
                        quantity: Some(rng.i64(1..6)),
                        unit_amount: Some(typical * scale / 2),
                        currency: Some(cur.into()),
                        interval: Some(interval.into()),
                        interval_count: Some(count),
                    }
                })
                .collect();
            let start = NOW - SPAN + rng.i64(0..SPAN);
            let trial = rng.u32(0..5) == 0;
            let ends = (rng.u32(0..4) == 0).then(|| start + rng.i64(20 * DAY..SPAN));
            let change = (rng.u32(0..10) < 3).then(|| start + rng.i64(DAY..300 * DAY));
            let past_due = (rng.u32(0..20) == 0).then(|| start + rng.i64(30 * DAY..400 * DAY));
            let discount = if rng.u32(0..8) == 0 {
                let id = format!("di_{s:06}");
                let (coupon, ends) = match rng.u32(0..3) {
                    0 => ("PCT20", None),
                    1 => ("PCT50", Some(start + 90 * DAY)),
                    _ => ("AMT5", None),
                };
                bulk.discount(&id, coupon, &id, start, ends)
                    .expect("discount");
                discounts += 1;
                id
            } else {
                String::new()
            };
            let mut status = if trial { "trialing" } else { "active" };
            let mut last = None;
            let mut t = start;
            while t < NOW && ends.is_none_or(|e| t < e) {
                if trial && t >= start + 14 * DAY {
                    status = "active";
                }
                if change.is_some_and(|c| t >= c) {
                    items[0].quantity = Some(3);
                }
                let st = if past_due.is_some_and(|p| t >= p && t < p + 30 * DAY) {
                    "past_due"
                } else {
                    status
                };
                let v = SubscriptionVersion {
                    subscription: &id,
                    customer: Some(&customer),
                    status: Some(st),
                    currency: Some(cur),
                    terminal: false,
                    items: &items,
                    discounts: &discount,
                };
                bulk.version(&v, Version { created: t, seq })
                    .expect("version");
                last = Some((st, Version { created: t, seq }));
                seq += 1;
                versions += 1;
                // The first renewal ends the trial; then one update per 30 days.
                t += if trial && t == start {
                    14 * DAY
                } else {
                    30 * DAY
                };
            }
            let mut final_status = last.map_or("active", |l| l.0);
            let mut final_at = last.map_or(
                Version {
                    created: start,
                    seq,
                },
                |l| l.1,
            );
            if let Some(end) = ends.filter(|e| *e < NOW) {
                let v = SubscriptionVersion {
                    subscription: &id,
                    customer: Some(&customer),
                    status: Some("canceled"),
                    currency: Some(cur),
                    terminal: true,
                    items: &items,
                    discounts: &discount,
                };
                final_at = Version { created: end, seq };
                bulk.version(&v, final_at).expect("version");
                final_status = "canceled";
                seq += 1;
                versions += 1;
            }
            let row = SubscriptionVersion {
                subscription: &id,
                customer: Some(&customer),
                status: Some(final_status),
                currency: Some(cur),
                terminal: final_status == "canceled",
                items: &items,
                discounts: "",
            };
            bulk.subscription(&id, &customer, &row, final_at)
                .expect("subscription");
        }
        bulk.finish().expect("derive timelines");
    }
    tx.commit().expect("commit");
    // No ANALYZE: a real database has none, so the plans measured are the ones it gets.
    (refunds, versions, discounts)
}

/// Median and first of 5 runs, in milliseconds.
fn time<T>(mut f: impl FnMut() -> T) -> (f64, f64, T) {
    let mut runs: Vec<Duration> = Vec::new();
    let mut out = None;
    for _ in 0..5 {
        let started = Instant::now();
        out = Some(f());
        runs.push(started.elapsed());
    }
    let first = runs[0].as_secs_f64() * 1000.0;
    runs.sort();
    (
        runs[2].as_secs_f64() * 1000.0,
        first,
        out.expect("ran five times"),
    )
}

fn main() {
    let n_payments = env_usize("BENCH_PAYMENTS", 1_000_000);
    let n_subs = env_usize("BENCH_SUBSCRIPTIONS", 100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let store =
        Store::open(&dir.path().join("bench.sqlite"), 4, Duration::from_secs(30)).expect("open");
    store.migrate().expect("migrate");

    let started = Instant::now();
    let (n_refunds, n_versions, n_discounts) = load(&store, n_payments, n_subs);
    let load_s = started.elapsed().as_secs_f64();

    let conn = store.conn().expect("connection");
    let changes: i64 = conn
        .query_row(
            "SELECT count(*) FROM subscription_versions WHERE changed = 1",
            (),
            |r| r.get(0),
        )
        .expect("count changes");
    let all_months = RangeQuery::default();
    let year_days = RangeQuery {
        from: Some(NOW - 365 * DAY),
        interval: Interval::Day,
        ..RangeQuery::default()
    };
    let mut figures = Vec::new();
    let mut report = |name: &str, f: &mut dyn FnMut() -> usize| {
        let (median, first, rows) = time(f);
        figures.push(format!("{name}={median:.0}ms({first:.0}ms,{rows}rows)"));
    };
    report("revenue_month_all", &mut || {
        report::revenue(&conn, &all_months, NOW)
            .expect("revenue")
            .len()
    });
    report("revenue_day_year", &mut || {
        report::revenue(&conn, &year_days, NOW)
            .expect("revenue")
            .len()
    });
    report("mrr_now", &mut || {
        report::mrr(&conn, NOW, None, None, Basis::Net)
            .expect("mrr")
            .len()
    });
    report("mrr_18_months_ago", &mut || {
        report::mrr(&conn, NOW - 548 * DAY, None, None, Basis::Net)
            .expect("mrr")
            .len()
    });
    report("subscriptions_month_all", &mut || {
        report::subscriptions(&conn, &all_months, NOW)
            .expect("subscriptions")
            .len()
    });
    // Issue 14's target: movements over 24 months of the whole history in under 1 s.
    let two_years = RangeQuery {
        from: Some(NOW - 730 * DAY),
        to: Some(NOW),
        ..RangeQuery::default()
    };
    report("mrr_movements_24_months", &mut || {
        report::mrr_movements(&conn, &two_years, NOW)
            .expect("movements")
            .len()
    });
    report("mrr_movements_24_months_gross", &mut || {
        let q = RangeQuery {
            basis: Basis::Gross,
            ..two_years.clone()
        };
        report::mrr_movements(&conn, &q, NOW)
            .expect("movements")
            .len()
    });
    report("retention_24_months", &mut || {
        report::retention(&conn, &two_years, NOW)
            .expect("retention")
            .len()
    });
    report("mrr_movements_week_year", &mut || {
        let q = RangeQuery {
            from: Some(NOW - 364 * DAY),
            to: Some(NOW),
            interval: Interval::Week,
            ..RangeQuery::default()
        };
        report::mrr_movements(&conn, &q, NOW)
            .expect("movements")
            .len()
    });
    report("failed_payments_month_all", &mut || {
        report::failed_payments(&conn, &all_months, NOW)
            .expect("failed payments")
            .len()
    });

    // The write-side cost of the history: one version recorded as the subscription
    // handler does it (insert, items, timeline recomputed), on the full mirror.
    let items = [ItemRow {
        id: "si_bench".into(),
        price: Some("price_monthly_usd".into()),
        quantity: Some(2),
        unit_amount: Some(1000),
        currency: Some("usd".into()),
        interval: Some("month".into()),
        interval_count: Some(1),
    }];
    let n: u32 = 2_000;
    // In order (the newest version of its subscription) and late (older than all of
    // them, so the timeline is recomputed). Inside one transaction, as the worker
    // applies an event (statements outside one would each commit on their own).
    let record = |late: bool| {
        let tx = conn.unchecked_transaction().expect("transaction");
        let started = Instant::now();
        for i in 0..n {
            let v = SubscriptionVersion {
                subscription: &format!("sub_{:06}", i as usize % n_subs.max(1)),
                customer: None,
                status: Some("active"),
                currency: Some("usd"),
                terminal: false,
                items: &items,
                discounts: "",
            };
            let created = if late { NOW - SPAN - 1 } else { NOW } - i64::from(i);
            let at = Version {
                created,
                seq: 1_000_000_000 + i64::from(i),
            };
            reports::record_subscription_version(&tx, &v, at).expect("record");
        }
        let us = started.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        tx.rollback().expect("rollback");
        us
    };
    let record_us = record(false);
    let record_late_us = record(true);

    println!(
        "reports: payments={n_payments} refunds={n_refunds} subscriptions={n_subs} versions={n_versions} changes={changes} discounts={n_discounts} \
         load={load_s:.1}s {} record_version={record_us:.0}us record_late_version={record_late_us:.0}us",
        figures.join(" ")
    );
}

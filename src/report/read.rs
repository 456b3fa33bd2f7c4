//! The reports as asked: the store's rows over a range folded into report rows.
//!
//! The store answers rows for plain parameters (`store::reports`); the periods, the MRR
//! builder and the churn sweep are here, so the store never needs a report type. The
//! large reads stream: each row goes straight into the fold.

use std::collections::{BTreeMap, BTreeSet};

use crate::store::db::Connection;

use super::{
    ChurnSweep, FailedPaymentsRow, MovementsBuilder, MrrBuilder, MrrItem, MrrMovementRow, MrrRow,
    RangeQuery, ReportError, RetentionRow, RevenueRow, SubscriptionsRow,
    discount::{Basis, Discounts},
    movements::Movements,
    period,
};
use crate::store::reports::{self, Scope};

type ReportResult<T> = std::result::Result<T, ReportError>;

/// Revenue per period and currency, in period then currency order; only periods with
/// something in them.
pub fn revenue(conn: &Connection, q: &RangeQuery, now: i64) -> ReportResult<Vec<RevenueRow>> {
    let account = q.account.as_deref();
    let currencies = match &q.currency {
        Some(c) => vec![c.clone()],
        None => reports::revenue_currencies(conn, account)?,
    };
    // Each currency's own first and last data time, so its quiet periods cost nothing.
    let mut spans = Vec::new();
    for c in currencies {
        if let Some(span) = reports::revenue_span(conn, &c, account)? {
            spans.push((c, span));
        }
    }
    let first = spans.iter().map(|(_, s)| s.0).min();
    let last = spans.iter().map(|(_, s)| s.1).max();
    let Some((from, to)) = q.resolve(first, last, now) else {
        return Ok(Vec::new());
    };
    let periods = period::periods(from, to, q.interval)?;

    let mut totals = reports::RevenueTotals::new(conn, account)?;
    let mut rows = Vec::new();
    for (currency, (first, last)) in &spans {
        let lo = periods.partition_point(|p| p.end <= *first);
        let hi = periods.partition_point(|p| p.start <= *last);
        for (i, p) in periods.iter().enumerate().take(hi).skip(lo) {
            let t = totals.between(currency, p.start, p.end)?;
            if t.payments == 0 && t.failed == 0 && t.refunds == 0 && t.disputes == 0 {
                continue;
            }
            rows.push((
                i,
                RevenueRow {
                    period: p.label.clone(),
                    period_start: p.start,
                    period_end: p.end,
                    currency: currency.clone(),
                    gross: t.gross,
                    refunded: t.refunded,
                    net: t.gross - t.refunded - t.disputes_lost,
                    payments: t.payments,
                    failed: t.failed,
                    disputed: t.disputed,
                    disputes_lost: t.disputes_lost,
                },
            ));
        }
    }
    // Currencies were walked in order, so a stable sort by period keeps them so within.
    rows.sort_by_key(|(i, _)| *i);
    Ok(rows.into_iter().map(|(_, r)| r).collect())
}

/// MRR at `at` per currency, from the subscription version that held at `at`, net of
/// discounts or before them (`basis`), of `currency` and of the connected `account` if
/// given.
pub fn mrr(
    conn: &Connection,
    at: i64,
    currency: Option<&str>,
    account: Option<&str>,
    basis: Basis,
) -> ReportResult<Vec<MrrRow>> {
    let scope = Scope {
        currency,
        account,
        customer: None,
    };
    mrr_of(conn, at, scope, basis)
}

/// One customer's MRR at `at` per currency: the MRR report over its subscriptions only
/// (empty when none of them is active, past due or trialing then).
pub fn customer_mrr(
    conn: &Connection,
    customer: &str,
    at: i64,
    basis: Basis,
) -> ReportResult<Vec<MrrRow>> {
    let scope = Scope {
        customer: Some(customer),
        ..Scope::default()
    };
    mrr_of(conn, at, scope, basis)
}

/// The discounts the MRR reads apply: every one the mirror knows (see
/// `store::reports::all_discounts`).
fn discounts(conn: &Connection) -> ReportResult<Discounts> {
    Ok(Discounts::from_rows(reports::all_discounts(conn)?))
}

fn mrr_of(conn: &Connection, at: i64, scope: Scope<'_>, basis: Basis) -> ReportResult<Vec<MrrRow>> {
    let mut builder = MrrBuilder::new(at, discounts(conn)?, basis);
    reports::each_held_item(conn, at, scope, |r| {
        builder.push(MrrItem {
            version: r.version,
            status: r.status,
            currency: r.currency,
            price: r.price,
            quantity: r.quantity,
            unit_amount: r.unit_amount,
            interval: r.interval,
            interval_count: r.interval_count,
            discounts: r.discounts,
        })
    })?;
    Ok(builder.finish())
}

/// New, canceled and churn per period (see `report::subscriptions`).
pub fn subscriptions(
    conn: &Connection,
    q: &RangeQuery,
    now: i64,
) -> ReportResult<Vec<SubscriptionsRow>> {
    let scope = scope_of(q, None);
    let (first, last) = reports::version_changes_span(conn, scope)?;
    let Some((from, to)) = q.resolve(first, last, now) else {
        return Ok(Vec::new());
    };
    let mut sweep = ChurnSweep::new(period::periods(from, to, q.interval)?);
    reports::each_version_change(conn, to, scope, |v| {
        sweep.version(v.subscription, v.at, v.status, v.ended)
    })?;
    Ok(sweep.finish())
}

/// MRR movements per period and currency (see `report::movements`).
pub fn mrr_movements(
    conn: &Connection,
    q: &RangeQuery,
    now: i64,
) -> ReportResult<Vec<MrrMovementRow>> {
    Ok(movements(conn, q, now, None)?
        .into_iter()
        .map(|m| m.row)
        .collect())
}

/// One customer's MRR movements per period and currency: the rows of `mrr_movements`
/// computed over its subscriptions only, so each row is that customer's one movement
/// (or none) in the period. Without `from`, the range starts with its own history.
pub fn customer_mrr_movements(
    conn: &Connection,
    customer: &str,
    q: &RangeQuery,
    now: i64,
) -> ReportResult<Vec<MrrMovementRow>> {
    Ok(movements(conn, q, now, Some(customer))?
        .into_iter()
        .map(|m| m.row)
        .collect())
}

/// Net and gross revenue retention, ARPA and paying customers per period and currency.
pub fn retention(conn: &Connection, q: &RangeQuery, now: i64) -> ReportResult<Vec<RetentionRow>> {
    Ok(movements(conn, q, now, None)?
        .into_iter()
        .map(Movements::retention)
        .collect())
}

/// The subscriptions `q` asks about (of `customer` alone, if given).
fn scope_of<'a>(q: &'a RangeQuery, customer: Option<&'a str>) -> Scope<'a> {
    Scope {
        currency: q.currency.as_deref(),
        customer,
        account: q.account.as_deref(),
    }
}

/// The movements of every customer, or of `customer` alone.
fn movements(
    conn: &Connection,
    q: &RangeQuery,
    now: i64,
    customer: Option<&str>,
) -> ReportResult<Vec<Movements>> {
    let scope = scope_of(q, customer);
    let (first, last) = reports::version_changes_span(conn, scope)?;
    let Some((from, to)) = q.resolve(first, last, now) else {
        return Ok(Vec::new());
    };
    let mut builder = MovementsBuilder::new(
        period::periods(from, to, q.interval)?,
        discounts(conn)?,
        q.basis,
    );
    // Versions from before `from` matter too: they make the MRR at its start and tell
    // a reactivation from a new customer.
    reports::each_version_span_item(conn, to, scope, |r| builder.push(r))?;
    Ok(builder.finish())
}

/// Failed payments and open payment-failed flags per period and currency.
pub fn failed_payments(
    conn: &Connection,
    q: &RangeQuery,
    now: i64,
) -> ReportResult<Vec<FailedPaymentsRow>> {
    let account = q.account.as_deref();
    let (first, last) = reports::failed_payments_span(conn, account)?;
    let Some((from, to)) = q.resolve(first, last, now) else {
        return Ok(Vec::new());
    };
    let periods = period::periods(from, to, q.interval)?;

    #[derive(Default)]
    struct Acc {
        failed: u64,
        amount: i64,
        open_flags: u64,
        customers: BTreeSet<String>,
    }
    let mut acc: BTreeMap<(usize, String), Acc> = BTreeMap::new();
    let currency = q.currency.as_deref();
    reports::each_failed_payment(conn, from, to, currency, account, |r| {
        let Some(i) = period::find(&periods, r.created) else {
            return;
        };
        let a = acc.entry((i, r.currency.to_owned())).or_default();
        a.failed += 1;
        a.amount += r.amount;
        if let Some(c) = r.customer {
            a.customers.insert(c.to_owned());
        }
    })?;
    // A flag names its invoice or payment; the currency is that object's.
    reports::each_open_payment_failed_flag(conn, from, to, currency, account, |r| {
        let Some(i) = period::find(&periods, r.created) else {
            return;
        };
        let a = acc.entry((i, r.currency.to_owned())).or_default();
        a.open_flags += 1;
        if let Some(c) = r.customer {
            a.customers.insert(c.to_owned());
        }
    })?;

    Ok(acc
        .into_iter()
        .map(|((i, currency), a)| {
            let p = &periods[i];
            FailedPaymentsRow {
                period: p.label.clone(),
                period_start: p.start,
                period_end: p.end,
                currency,
                failed: a.failed,
                amount: a.amount,
                open_flags: a.open_flags,
                customers: a.customers.into_iter().collect(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    //! The subscription history's timeline, checked through the MRR it answers: what
    //! must hold whatever order the events came in is the report.

    use super::*;
    use crate::store::{
        mirror::{ItemRow, Version},
        reports::{SubscriptionVersion, recompute_timeline, record_subscription_version},
        test_store,
    };

    fn item(price: &str, quantity: i64, unit: i64, interval: &str) -> ItemRow {
        ItemRow {
            id: format!("si_{price}"),
            price: Some(price.into()),
            quantity: Some(quantity),
            unit_amount: Some(unit),
            currency: Some("eur".into()),
            interval: Some(interval.into()),
            interval_count: Some(1),
        }
    }

    fn record(conn: &Connection, status: &str, quantity: i64, created: i64, seq: i64) -> bool {
        let items = [item("price_m", quantity, 1000, "month")];
        record_subscription_version(
            conn,
            &SubscriptionVersion {
                subscription: "sub_1",
                customer: Some("cus_1"),
                status: Some(status),
                currency: Some("eur"),
                terminal: status == "canceled",
                items: &items,
                discounts: "",
            },
            Version { created, seq },
        )
        .unwrap()
    }

    fn mrr_at(conn: &Connection, at: i64) -> i64 {
        mrr(conn, at, None, None, Basis::Net)
            .unwrap()
            .first()
            .map_or(0, |r| r.mrr)
    }

    #[test]
    fn the_history_answers_mrr_at_any_time_whatever_order_the_events_came_in() {
        let (_dir, store) = test_store();
        let conn = store.conn().unwrap();
        // Arrival order: the update (t=200), the creation (t=100), the end (t=300).
        assert!(record(&conn, "active", 3, 200, 1));
        assert!(record(&conn, "active", 1, 100, 2));
        assert!(record(&conn, "canceled", 3, 300, 3));
        // A replay adds nothing.
        assert!(!record(&conn, "active", 1, 100, 2));
        assert_eq!(mrr_at(&conn, 99), 0);
        assert_eq!(mrr_at(&conn, 100), 1000);
        assert_eq!(mrr_at(&conn, 199), 1000);
        assert_eq!(mrr_at(&conn, 200), 3000);
        assert_eq!(mrr_at(&conn, 300), 0);
        // A late update after the end does not revive it.
        assert!(record(&conn, "active", 5, 400, 4));
        assert_eq!(mrr_at(&conn, 500), 0);
    }

    /// Events in any order, with replays: the fast in-order path and the recompute
    /// must leave the same timeline, and MRR at every time must be that of a naive
    /// model (the newest version at or before the time; nothing after an end).
    #[test]
    fn the_timeline_is_the_same_whatever_the_arrival_order() {
        let mut rng = fastrand::Rng::with_seed(7);
        for round in 0..200 {
            let (_dir, store) = test_store();
            let conn = store.conn().unwrap();
            // (subscription, created, seq, status, quantity)
            let mut versions = Vec::new();
            let mut seq = 1;
            for sub in 0..rng.usize(1..4) {
                for _ in 0..rng.usize(1..8) {
                    let status =
                        ["active", "past_due", "trialing", "unpaid", "canceled"][rng.usize(0..5)];
                    // Few distinct times, so same-second events are common.
                    versions.push((sub, rng.i64(0..6) * 10, seq, status, rng.i64(1..3)));
                    seq += 1;
                }
            }
            let mut order = versions.clone();
            rng.shuffle(&mut order);
            for &(sub, created, seq, status, q) in order.iter().chain(order.iter().take(2)) {
                let items = [item("price_m", q, 1000, "month")];
                let id = format!("sub_{sub}");
                record_subscription_version(
                    &conn,
                    &SubscriptionVersion {
                        subscription: &id,
                        customer: None,
                        status: Some(status),
                        currency: Some("eur"),
                        terminal: status == "canceled",
                        items: &items,
                        discounts: "",
                    },
                    Version { created, seq },
                )
                .unwrap();
            }
            assert_eq!(recompute_timeline(&conn, None).unwrap(), 0, "round {round}");
            for at in (0..7).map(|i| i * 10 - 5).chain((0..6).map(|i| i * 10)) {
                let mut want = 0;
                let mut subs: Vec<usize> = versions.iter().map(|v| v.0).collect();
                subs.dedup();
                for sub in subs {
                    let mut mine: Vec<_> = versions
                        .iter()
                        .filter(|v| v.0 == sub && v.1 <= at)
                        .collect();
                    mine.sort_by_key(|v| (v.1, v.2));
                    let ended = mine.iter().any(|v| v.3 == "canceled");
                    if let Some(last) = mine.last()
                        && !ended
                        && matches!(last.3, "active" | "past_due")
                    {
                        want += 1000 * last.4;
                    }
                }
                assert_eq!(mrr_at(&conn, at), want, "round {round}, at {at}");
            }
        }
    }

    #[test]
    fn upgrading_a_database_backfills_the_history_from_the_mirror() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        let (jan1, jan15, feb1, mar1) =
            (1_735_689_600, 1_736_899_200, 1_738_368_000, 1_740_787_200);
        {
            // A database at schema version 1 with two mirrored subscriptions.
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(include_str!("../../migrations/0001_init.sql"))
                .unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO subscriptions (id, status, currency, start_date, trial_start,
                     trial_end, deleted, raw, ev_created, ev_seq)
                 VALUES ('sub_a', 'active', 'eur', ?1, ?1, ?2, 0, '{}', ?4, 7),
                        ('sub_b', 'canceled', 'eur', ?1, NULL, NULL, 1, '{}', ?3, 9)",
                rusqlite::params![jan1, jan15, feb1, mar1],
            )
            .unwrap();
            conn.execute_batch(
                "INSERT INTO subscription_items (id, subscription, price, quantity, unit_amount,
                     currency, interval, interval_count)
                 VALUES ('si_a', 'sub_a', 'p', 1, 1000, 'eur', 'month', 1),
                        ('si_b', 'sub_b', 'p', 2, 1000, 'eur', 'month', 1);",
            )
            .unwrap();
        }
        let store = crate::store::Store::open(&path, 2, std::time::Duration::from_secs(5)).unwrap();
        // Every migration after the first.
        assert_eq!(
            store.migrate().unwrap(),
            crate::store::latest_migration() - 1
        );
        let conn = store.conn().unwrap();
        // Jan 10: a is trialing, b active (×2).
        let jan10 = &mrr(&conn, jan1 + 9 * 86_400, None, None, Basis::Net).unwrap()[0];
        assert_eq!((jan10.mrr, jan10.trialing_mrr), (2000, 1000));
        // Jan 20: both active; Feb 10: b has ended.
        assert_eq!(mrr_at(&conn, jan15 + 5 * 86_400), 3000);
        assert_eq!(mrr_at(&conn, feb1 + 9 * 86_400), 1000);
        assert_eq!(mrr_at(&conn, mar1 + 1), 1000);
    }

    #[test]
    fn a_later_event_in_the_same_second_wins() {
        let (_dir, store) = test_store();
        let conn = store.conn().unwrap();
        record(&conn, "active", 1, 100, 1);
        record(&conn, "active", 2, 100, 2);
        assert_eq!(mrr_at(&conn, 100), 2000);
    }
}

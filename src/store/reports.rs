//! Report reads over the mirror, and the subscription history they need.
//!
//! Every report is an indexed query over the idempotent mirror rows (one row per
//! payment, refund, subscription version), computed when asked: nothing is a counter
//! that a replayed or reordered event could bump, so reports are exactly as current as
//! the applied events. docs/reports.md has the formulas and the measurements behind
//! choosing queries over rollups.

use std::collections::{BTreeMap, BTreeSet};

use rusqlite::{Connection, OptionalExtension, Statement, params};

use super::{Result, mirror::ItemRow, mirror::Version};
use crate::report::{
    ChurnSweep, FailedPaymentsRow, MrrBuilder, MrrItem, MrrRow, RangeQuery, ReportError,
    RevenueRow, SubscriptionsRow, period,
};

type ReportResult<T> = std::result::Result<T, ReportError>;

/// Refund statuses that count as refunded: money that has left or is leaving.
/// (`failed` and `canceled` refunds gave nothing back; `requires_action` has not
/// started.)
const REFUNDED_STATUSES: &str = "'succeeded', 'pending'";

// ---- the subscription history ----------------------------------------------------------

/// The state one subscription event describes, as recorded in the history.
#[derive(Debug, Clone, Copy)]
pub struct SubscriptionVersion<'a> {
    pub subscription: &'a str,
    pub customer: Option<&'a str>,
    pub status: Option<&'a str>,
    pub currency: Option<&'a str>,
    /// The event ends the subscription (deleted, canceled, incomplete_expired).
    pub terminal: bool,
    pub items: &'a [ItemRow],
}

/// Records the version `v` of a subscription, written by the event `at`. Called by the
/// subscription handler in the apply transaction for every event, including those the
/// mirror row ignored as stale: the row keeps the newest state, the history keeps all.
/// A replayed event inserts nothing (keyed by subscription and event). Returns whether
/// a version was added.
pub fn record_subscription_version(
    conn: &Connection,
    v: &SubscriptionVersion<'_>,
    at: Version,
) -> Result<bool> {
    let known = conn
        .prepare_cached(
            "SELECT 1 FROM subscription_versions WHERE subscription = ?1 AND ev_seq = ?2",
        )?
        .query_row(params![v.subscription, at.seq], |_| Ok(()))
        .optional()?
        .is_some();
    if known {
        return Ok(false);
    }
    let key = items_key(v.items);
    // Events mostly arrive in order: then the new version is the newest, its derived
    // columns follow from its predecessor alone, and only that predecessor's `valid_to`
    // changes. The result is exactly what `recompute_timeline` would give (a test holds
    // them equal). An older event arriving late recomputes the whole timeline.
    let newer_exists = conn
        .prepare_cached(
            "SELECT 1 FROM subscription_versions
             WHERE subscription = ?1 AND (ev_created, ev_seq) > (?2, ?3) LIMIT 1",
        )?
        .query_row(params![v.subscription, at.created, at.seq], |_| Ok(()))
        .optional()?
        .is_some();
    let prev: Option<(Option<String>, String, bool)> = if newer_exists {
        None
    } else {
        conn.prepare_cached(
            "SELECT status, items_key, ended FROM subscription_versions
             WHERE subscription = ?1 AND (ev_created, ev_seq) < (?2, ?3)
             ORDER BY ev_created DESC, ev_seq DESC LIMIT 1",
        )?
        .query_row(params![v.subscription, at.created, at.seq], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?
    };
    let ended = v.terminal || prev.as_ref().is_some_and(|p| p.2);
    let changed = match &prev {
        None => true,
        Some((status, prev_key, prev_ended)) => {
            *prev_ended != ended || (!ended && (status.as_deref() != v.status || *prev_key != key))
        }
    };
    let valid_to = if changed { i64::MAX } else { at.created };
    conn.prepare_cached(
        "INSERT INTO subscription_versions
            (subscription, ev_created, ev_seq, status, customer, currency, items_key,
             terminal, ended, changed, valid_to)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        v.subscription,
        at.created,
        at.seq,
        v.status,
        v.customer,
        v.currency,
        key,
        v.terminal,
        ended,
        changed,
        valid_to
    ])?;
    let id = conn.last_insert_rowid();
    insert_version_items(conn, id, v.items)?;
    if newer_exists {
        recompute_timeline(conn, Some(v.subscription))?;
    } else if changed {
        // The change ends the version that held until now: the newest change before it.
        // (Found through the subscription's timeline; `valid_to = MAX` alone would have
        // SQLite walk every current version of every subscription.)
        conn.prepare_cached(
            "UPDATE subscription_versions SET valid_to = ?2
             WHERE id = (SELECT id FROM subscription_versions
                         WHERE subscription = ?1 AND changed = 1
                           AND (ev_created, ev_seq) < (?2, ?3)
                         ORDER BY ev_created DESC, ev_seq DESC LIMIT 1)",
        )?
        .execute(params![v.subscription, at.created, at.seq])?;
    }
    Ok(true)
}

fn insert_version_items(conn: &Connection, version: i64, items: &[ItemRow]) -> Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO subscription_version_items
            (version, item, price, quantity, unit_amount, currency, interval, interval_count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for i in items {
        insert.execute(params![
            version,
            i.id,
            i.price,
            i.quantity,
            i.unit_amount,
            i.currency,
            i.interval,
            i.interval_count
        ])?;
    }
    Ok(())
}

/// Recomputes the derived `ended`, `changed` and `valid_to` of one subscription's
/// versions (or of all, with `None`) from its whole timeline, so the result is the
/// same whatever order the events came in. Only rows whose values change are written.
/// Returns how many versions it corrected.
pub fn recompute_timeline(conn: &Connection, subscription: Option<&str>) -> Result<usize> {
    Ok(recompute(conn, subscription)?)
}

/// Gives a subscription that has no history yet (one a backfill found, `billd sync`)
/// the history the migration gives mirrored rows: a version at its start (trialing
/// until the trial's end, else active), one at the end of its trial, and its current
/// state at the version that wrote the row, all with its current items. A
/// subscription with any history is left alone (its events know better). Returns
/// whether it added one.
pub fn seed_history(conn: &Connection, subscription: &str) -> Result<bool> {
    let known = conn
        .prepare_cached("SELECT 1 FROM subscription_versions WHERE subscription = ?1 LIMIT 1")?
        .query_row([subscription], |_| Ok(()))
        .optional()?
        .is_some();
    if known {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT OR IGNORE INTO subscription_versions
            (subscription, ev_created, ev_seq, status, customer, currency, items_key, terminal)
         SELECT id, coalesce(start_date, created), -2,
                CASE WHEN trial_end > coalesce(start_date, created) THEN 'trialing' ELSE 'active' END,
                customer, currency, 'backfill', 0
         FROM subscriptions
         WHERE id = ?1 AND coalesce(start_date, created) < ev_created
           AND coalesce(status, '') NOT IN ('incomplete', 'incomplete_expired')",
    )?
    .execute([subscription])?;
    conn.prepare_cached(
        "INSERT OR IGNORE INTO subscription_versions
            (subscription, ev_created, ev_seq, status, customer, currency, items_key, terminal)
         SELECT id, trial_end, -1, 'active', customer, currency, 'backfill', 0
         FROM subscriptions
         WHERE id = ?1 AND trial_end > coalesce(start_date, created) AND trial_end < ev_created
           AND coalesce(status, '') NOT IN ('incomplete', 'incomplete_expired', 'trialing')",
    )?
    .execute([subscription])?;
    conn.prepare_cached(
        "INSERT OR IGNORE INTO subscription_versions
            (subscription, ev_created, ev_seq, status, customer, currency, items_key, terminal)
         SELECT id, ev_created, ev_seq, status, customer, currency, 'backfill',
                deleted = 1 OR coalesce(status, '') IN ('canceled', 'incomplete_expired')
         FROM subscriptions WHERE id = ?1",
    )?
    .execute([subscription])?;
    conn.prepare_cached(
        "INSERT OR IGNORE INTO subscription_version_items
            (version, item, price, quantity, unit_amount, currency, interval, interval_count)
         SELECT v.id, i.id, i.price, i.quantity, i.unit_amount, i.currency, i.interval,
                i.interval_count
         FROM subscription_versions v JOIN subscription_items i ON i.subscription = v.subscription
         WHERE v.subscription = ?1",
    )?
    .execute([subscription])?;
    recompute(conn, Some(subscription))?;
    Ok(true)
}

/// The migration's hook: derives the timelines of the versions it backfilled.
pub(crate) fn migration_hook(tx: &rusqlite::Transaction<'_>) -> rusqlite_migration::HookResult {
    recompute(tx, None)?;
    Ok(())
}

fn recompute(conn: &Connection, subscription: Option<&str>) -> rusqlite::Result<usize> {
    // Two texts rather than `?1 IS NULL OR subscription = ?1`, which would keep SQLite
    // from using the (subscription, ev_seq) index on the per-event path.
    let scope = match subscription {
        Some(_) => "WHERE subscription = ?1",
        None => "",
    };
    let sql = format!(
        "WITH a AS (
             SELECT id, subscription, ev_created, ev_seq, status, items_key,
                    max(terminal) OVER w AS ended_now,
                    row_number() OVER w AS n
             FROM subscription_versions {scope}
             WINDOW w AS (PARTITION BY subscription ORDER BY ev_created, ev_seq)
         ),
         b AS (
             SELECT id, subscription, ev_created, ev_seq, ended_now,
                    (n = 1 OR lag(ended_now) OVER w IS NOT ended_now
                     OR (ended_now = 0 AND (lag(status) OVER w IS NOT status
                                            OR lag(items_key) OVER w IS NOT items_key)))
                        AS changed_now
             FROM a
             WINDOW w AS (PARTITION BY subscription ORDER BY ev_created, ev_seq)
         ),
         c AS (
             SELECT id, ended_now, changed_now,
                    CASE WHEN changed_now
                         THEN coalesce(lead(ev_created) OVER (PARTITION BY subscription, changed_now
                                                              ORDER BY ev_created, ev_seq),
                                       9223372036854775807)
                         ELSE ev_created END AS valid_to_now
             FROM b
         )
         UPDATE subscription_versions
         SET ended = c.ended_now, changed = c.changed_now, valid_to = c.valid_to_now
         FROM c
         WHERE subscription_versions.id = c.id
           AND (subscription_versions.ended IS NOT c.ended_now
                OR subscription_versions.changed IS NOT c.changed_now
                OR subscription_versions.valid_to IS NOT c.valid_to_now)"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    match subscription {
        Some(id) => stmt.execute([id]),
        None => stmt.execute([]),
    }
}

/// A fingerprint of a version's items: equal keys mean equal items, so a version that
/// repeats its predecessor (a renewal) is known not to change MRR.
pub fn items_key(items: &[ItemRow]) -> String {
    let mut sorted: Vec<&ItemRow> = items.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let mut key = String::from("v1");
    for i in sorted {
        key.push_str(&format!(
            "|{}\u{1f}{}\u{1f}{:?}\u{1f}{:?}\u{1f}{}\u{1f}{}\u{1f}{:?}",
            i.id,
            i.price.as_deref().unwrap_or(""),
            i.quantity,
            i.unit_amount,
            i.currency.as_deref().unwrap_or(""),
            i.interval.as_deref().unwrap_or(""),
            i.interval_count,
        ));
    }
    key
}

// ---- revenue -------------------------------------------------------------------------------

/// Revenue per period and currency, in period then currency order; only periods with
/// something in them.
pub fn revenue(conn: &Connection, q: &RangeQuery, now: i64) -> ReportResult<Vec<RevenueRow>> {
    let currencies = match &q.currency {
        Some(c) => vec![c.clone()],
        None => revenue_currencies(conn)?,
    };
    // Each currency's own first and last data time, so its quiet periods cost nothing.
    let mut spans = Vec::new();
    for c in currencies {
        if let Some(span) = revenue_span(conn, &c)? {
            spans.push((c, span));
        }
    }
    let first = spans.iter().map(|(_, s)| s.0).min();
    let last = spans.iter().map(|(_, s)| s.1).max();
    let Some((from, to)) = q.resolve(first, last, now) else {
        return Ok(Vec::new());
    };
    let periods = period::periods(from, to, q.interval)?;

    let mut gross = conn.prepare_cached(
        "SELECT coalesce(sum(amount), 0), count(*) FROM payments
         WHERE status = 'succeeded' AND currency = ?1 AND created >= ?2 AND created < ?3",
    )?;
    let mut failed = conn.prepare_cached(
        "SELECT count(*) FROM payments
         WHERE status = 'failed' AND currency = ?1 AND created >= ?2 AND created < ?3",
    )?;
    let mut refunded = conn.prepare_cached(&format!(
        "SELECT coalesce(sum(amount), 0), count(*) FROM refunds
         WHERE currency = ?1 AND created >= ?2 AND created < ?3
           AND status IN ({REFUNDED_STATUSES})"
    ))?;
    let mut rows = Vec::new();
    for (currency, (first, last)) in &spans {
        let lo = periods.partition_point(|p| p.end <= *first);
        let hi = periods.partition_point(|p| p.start <= *last);
        for (i, p) in periods.iter().enumerate().take(hi).skip(lo) {
            let span = params![currency, p.start, p.end];
            let (g, n): (i64, i64) = gross.query_row(span, |r| Ok((r.get(0)?, r.get(1)?)))?;
            let f: i64 = failed.query_row(span, |r| r.get(0))?;
            let (re, re_n): (i64, i64) =
                refunded.query_row(span, |r| Ok((r.get(0)?, r.get(1)?)))?;
            if n == 0 && f == 0 && re_n == 0 {
                continue;
            }
            rows.push((
                i,
                RevenueRow {
                    period: p.label.clone(),
                    period_start: p.start,
                    period_end: p.end,
                    currency: currency.clone(),
                    gross: g,
                    refunded: re,
                    net: g - re,
                    payments: n as u64,
                    failed: f as u64,
                },
            ));
        }
    }
    // Currencies were walked in order, so a stable sort by period keeps them so within.
    rows.sort_by_key(|(i, _)| *i);
    Ok(rows.into_iter().map(|(_, r)| r).collect())
}

/// The currencies of payments and refunds, by skipping through the report indexes (one
/// seek per currency, however many rows).
fn revenue_currencies(conn: &Connection) -> Result<Vec<String>> {
    let mut all = BTreeSet::new();
    for status in ["succeeded", "failed"] {
        let mut first = conn.prepare_cached(
            "SELECT min(currency) FROM payments WHERE status = ?1 AND currency >= ''",
        )?;
        let mut next = conn.prepare_cached(
            "SELECT min(currency) FROM payments WHERE status = ?1 AND currency > ?2",
        )?;
        let mut cur: Option<String> = first.query_row([status], |r| r.get(0))?;
        while let Some(c) = cur {
            cur = next.query_row(params![status, c], |r| r.get(0))?;
            all.insert(c);
        }
    }
    let mut first = conn.prepare_cached("SELECT min(currency) FROM refunds")?;
    let mut next = conn.prepare_cached("SELECT min(currency) FROM refunds WHERE currency > ?1")?;
    let mut cur: Option<String> = first.query_row([], |r| r.get(0))?;
    while let Some(c) = cur {
        cur = next.query_row([&c], |r| r.get(0))?;
        all.insert(c);
    }
    Ok(all.into_iter().collect())
}

/// First and last data time of one currency's revenue (each a single index seek).
fn revenue_span(conn: &Connection, currency: &str) -> Result<Option<(i64, i64)>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT min(t), max(t) FROM (
             SELECT (SELECT min(created) FROM payments WHERE status = 'succeeded' AND currency = ?1) AS t
             UNION ALL SELECT (SELECT max(created) FROM payments WHERE status = 'succeeded' AND currency = ?1)
             UNION ALL SELECT (SELECT min(created) FROM payments WHERE status = 'failed' AND currency = ?1)
             UNION ALL SELECT (SELECT max(created) FROM payments WHERE status = 'failed' AND currency = ?1)
             UNION ALL SELECT (SELECT min(created) FROM refunds WHERE currency = ?1
                                AND status IN ({REFUNDED_STATUSES}))
             UNION ALL SELECT (SELECT max(created) FROM refunds WHERE currency = ?1
                                AND status IN ({REFUNDED_STATUSES})))"
    ))?;
    let (min, max): (Option<i64>, Option<i64>) =
        stmt.query_row([currency], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(min.zip(max))
}

// ---- MRR -----------------------------------------------------------------------------------

/// MRR at `at` per currency, from the subscription version that held at `at`.
pub fn mrr(conn: &Connection, at: i64, currency: Option<&str>) -> ReportResult<Vec<MrrRow>> {
    // The version holding at `at`: written at or before it, superseded after it. A
    // version superseded in the same second by a later event has valid_to = ev_created
    // and is skipped. A subscription without items still counts (with no amount). The
    // LEFT JOIN keeps versions the outer loop, so a version's items come consecutively
    // (what the builder needs) without sorting.
    let mut stmt = conn.prepare_cached(
        "SELECT v.id, v.status, coalesce(v.currency, i.currency), i.price, i.quantity,
                i.unit_amount, i.interval, i.interval_count
         FROM subscription_versions v
         LEFT JOIN subscription_version_items i ON i.version = v.id
         WHERE v.changed = 1 AND v.valid_to > ?1 AND v.ev_created <= ?1 AND v.ended = 0
           AND v.status IN ('active', 'past_due', 'trialing')
           AND (?2 IS NULL OR coalesce(v.currency, i.currency) = ?2)",
    )?;
    let mut rows = stmt.query(params![at, currency])?;
    let mut builder = MrrBuilder::new(at);
    while let Some(r) = rows.next()? {
        builder.push(MrrItem {
            version: r.get(0)?,
            status: text(r, 1)?.unwrap_or(""),
            currency: text(r, 2)?,
            price: text(r, 3)?,
            quantity: r.get(4)?,
            unit_amount: r.get(5)?,
            interval: text(r, 6)?,
            interval_count: r.get(7)?,
        });
    }
    Ok(builder.finish())
}

/// A text column borrowed from the row (no allocation per row on the hot paths).
fn text<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> rusqlite::Result<Option<&'r str>> {
    r.get_ref(i)?.as_str_or_null().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
    })
}

// ---- subscriptions -------------------------------------------------------------------------

/// New, canceled and churn per period (see `report::subscriptions`).
pub fn subscriptions(
    conn: &Connection,
    q: &RangeQuery,
    now: i64,
) -> ReportResult<Vec<SubscriptionsRow>> {
    let (first, last): (Option<i64>, Option<i64>) = conn
        .prepare_cached(
            "SELECT min(ev_created), max(ev_created) FROM subscription_versions
             WHERE changed = 1 AND (?1 IS NULL OR currency = ?1)",
        )?
        .query_row([&q.currency], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let Some((from, to)) = q.resolve(first, last, now) else {
        return Ok(Vec::new());
    };
    let mut sweep = ChurnSweep::new(period::periods(from, to, q.interval)?);
    // The timeline index gives the versions grouped by subscription, in event order.
    let mut stmt = conn.prepare_cached(
        "SELECT subscription, ev_created, status, ended FROM subscription_versions
         WHERE changed = 1 AND ev_created < ?1 AND (?2 IS NULL OR currency = ?2)
         ORDER BY subscription, ev_created, ev_seq",
    )?;
    let mut rows = stmt.query(params![to, q.currency])?;
    while let Some(r) = rows.next()? {
        sweep.version(text(r, 0)?.unwrap_or(""), r.get(1)?, text(r, 2)?, r.get(3)?);
    }
    Ok(sweep.finish())
}

// ---- failed payments -----------------------------------------------------------------------

/// Failed payments and open payment-failed flags per period and currency.
pub fn failed_payments(
    conn: &Connection,
    q: &RangeQuery,
    now: i64,
) -> ReportResult<Vec<FailedPaymentsRow>> {
    let (first, last): (Option<i64>, Option<i64>) = conn
        .prepare_cached(
            "SELECT min(t), max(t) FROM (
                 SELECT (SELECT min(created) FROM payments WHERE status = 'failed') AS t
                 UNION ALL SELECT (SELECT max(created) FROM payments WHERE status = 'failed')
                 UNION ALL SELECT (SELECT min(created) FROM flags
                                   WHERE kind = 'payment_failed' AND status = 'open')
                 UNION ALL SELECT (SELECT max(created) FROM flags
                                   WHERE kind = 'payment_failed' AND status = 'open'))",
        )?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
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

    let mut payments = conn.prepare_cached(
        "SELECT created, currency, customer, amount FROM payments
         WHERE status = 'failed' AND created >= ?1 AND created < ?2
           AND (?3 IS NULL OR currency = ?3)",
    )?;
    let mut rows = payments.query(params![from, to, q.currency])?;
    while let Some(r) = rows.next()? {
        let Some(i) = period::find(&periods, r.get(0)?) else {
            continue;
        };
        let a = acc.entry((i, r.get(1)?)).or_default();
        a.failed += 1;
        a.amount += r.get::<_, i64>(3)?;
        if let Some(c) = r.get::<_, Option<String>>(2)? {
            a.customers.insert(c);
        }
    }

    // A flag names its invoice or payment; the currency is that object's.
    let mut flags = conn.prepare_cached(
        "SELECT created, customer, currency FROM (
             SELECT f.created, f.customer,
                    coalesce((SELECT currency FROM payments WHERE id = f.object_id),
                             (SELECT currency FROM invoices WHERE id = f.object_id), '') AS currency
             FROM flags f
             WHERE f.kind = 'payment_failed' AND f.status = 'open'
               AND f.created >= ?1 AND f.created < ?2)
         WHERE ?3 IS NULL OR currency = ?3",
    )?;
    let mut rows = flags.query(params![from, to, q.currency])?;
    while let Some(r) = rows.next()? {
        let Some(i) = period::find(&periods, r.get(0)?) else {
            continue;
        };
        let a = acc.entry((i, r.get(2)?)).or_default();
        a.open_flags += 1;
        if let Some(c) = r.get::<_, Option<String>>(1)? {
            a.customers.insert(c);
        }
    }

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

// ---- bulk loading (benchmarks) -------------------------------------------------------------

/// Writes many mirror rows fast: prepared statements on the caller's transaction, no
/// ordering guard (the rows are new). For generating benchmark mirrors, never for
/// events. Call [`BulkLoader::finish`] after the last subscription version.
pub struct BulkLoader<'c> {
    conn: &'c Connection,
    payment: Statement<'c>,
    refund: Statement<'c>,
    subscription: Statement<'c>,
    version: Statement<'c>,
    item: Statement<'c>,
}

/// One generated payment.
#[derive(Debug, Clone, Copy)]
pub struct BulkPayment<'a> {
    pub id: &'a str,
    pub customer: &'a str,
    pub amount: i64,
    pub amount_refunded: i64,
    pub currency: &'a str,
    pub status: &'a str,
    pub created: i64,
}

impl<'c> BulkLoader<'c> {
    pub fn new(conn: &'c Connection) -> Result<BulkLoader<'c>> {
        Ok(BulkLoader {
            conn,
            payment: conn.prepare(
                "INSERT INTO payments (id, customer, amount, amount_refunded, currency, status,
                                       created, raw, ev_created, ev_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, '{}', ?7, 0)",
            )?,
            refund: conn.prepare(
                "INSERT INTO refunds (id, payment, amount, currency, status, created, raw,
                                      ev_created, ev_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, '{}', ?6, 0)",
            )?,
            subscription: conn.prepare(
                "INSERT INTO subscriptions (id, customer, status, currency, deleted, raw,
                                            ev_created, ev_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, '{}', ?6, ?7)",
            )?,
            version: conn.prepare(
                "INSERT INTO subscription_versions
                    (subscription, ev_created, ev_seq, status, customer, currency, items_key,
                     terminal)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?,
            item: conn.prepare(
                "INSERT INTO subscription_version_items
                    (version, item, price, quantity, unit_amount, currency, interval,
                     interval_count)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?,
        })
    }

    pub fn payment(&mut self, p: &BulkPayment<'_>) -> Result<()> {
        self.payment.execute(params![
            p.id,
            p.customer,
            p.amount,
            p.amount_refunded,
            p.currency,
            p.status,
            p.created
        ])?;
        Ok(())
    }

    pub fn refund(
        &mut self,
        id: &str,
        payment: &str,
        amount: i64,
        currency: &str,
        created: i64,
    ) -> Result<()> {
        self.refund
            .execute(params![id, payment, amount, currency, "succeeded", created])?;
        Ok(())
    }

    /// A subscription's mirror row (its last version's state).
    pub fn subscription(
        &mut self,
        id: &str,
        customer: &str,
        last: &SubscriptionVersion<'_>,
        at: Version,
    ) -> Result<()> {
        self.subscription.execute(params![
            id,
            customer,
            last.status,
            last.currency,
            last.terminal,
            at.created,
            at.seq
        ])?;
        Ok(())
    }

    /// One history version, without recomputing the timeline (see `finish`).
    pub fn version(&mut self, v: &SubscriptionVersion<'_>, at: Version) -> Result<()> {
        self.version.execute(params![
            v.subscription,
            at.created,
            at.seq,
            v.status,
            v.customer,
            v.currency,
            items_key(v.items),
            v.terminal
        ])?;
        let id = self.conn.last_insert_rowid();
        for i in v.items {
            self.item.execute(params![
                id,
                i.id,
                i.price,
                i.quantity,
                i.unit_amount,
                i.currency,
                i.interval,
                i.interval_count
            ])?;
        }
        Ok(())
    }

    /// Derives every timeline once, after the bulk of versions.
    pub fn finish(self) -> Result<()> {
        recompute_timeline(self.conn, None)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;

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
            },
            Version { created, seq },
        )
        .unwrap()
    }

    fn mrr_at(conn: &Connection, at: i64) -> i64 {
        mrr(conn, at, None).unwrap().first().map_or(0, |r| r.mrr)
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
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(include_str!("../../migrations/0001_init.sql"))
                .unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO subscriptions (id, status, currency, start_date, trial_start,
                     trial_end, deleted, raw, ev_created, ev_seq)
                 VALUES ('sub_a', 'active', 'eur', ?1, ?1, ?2, 0, '{}', ?4, 7),
                        ('sub_b', 'canceled', 'eur', ?1, NULL, NULL, 1, '{}', ?3, 9)",
                params![jan1, jan15, feb1, mar1],
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
        let jan10 = &mrr(&conn, jan1 + 9 * 86_400, None).unwrap()[0];
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

//! Reads of the subscription history for the MRR and subscriptions reports.

use crate::store::db::{Connection, params};

use super::{only, text};
use crate::store::Result;

/// One item of a subscription version that held at the asked time. A version without
/// items is one row with the item columns `None`.
#[derive(Debug, Clone, Copy)]
pub struct HeldItemRow<'a> {
    /// Identifies the subscription version; items of one version come consecutively.
    pub version: i64,
    pub status: &'a str,
    /// The version's currency, else the item's.
    pub currency: Option<&'a str>,
    pub price: Option<&'a str>,
    pub quantity: Option<i64>,
    pub unit_amount: Option<i64>,
    pub interval: Option<&'a str>,
    pub interval_count: Option<i64>,
    /// The version's discount ids, space-separated in order.
    pub discounts: &'a str,
}

/// Which subscriptions a history read covers: all, or those of one currency, customer
/// or connected account (each `None` for all).
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope<'a> {
    pub currency: Option<&'a str>,
    pub customer: Option<&'a str>,
    pub account: Option<&'a str>,
}

impl Scope<'_> {
    /// The conditions on the customer (`?{n}`) and the account (`?{n + 1}`) of the
    /// subscription versions `v`. A version does not record its account: the
    /// subscription's row does (the account never changes).
    fn conditions(&self, v: &str, n: usize) -> String {
        let account = match self.account {
            Some(_) => format!(
                "AND {v}subscription IN (SELECT id FROM subscriptions WHERE account = ?{})",
                n + 1
            ),
            None => format!("AND CAST(?{} AS TEXT) IS NULL", n + 1),
        };
        format!(
            "{} {account}",
            only(&format!("{v}customer"), n, self.customer)
        )
    }
}

/// Hands `f` the items of every subscription version that held at `at` (unix seconds)
/// in a status MRR looks at (active, past due, trialing), of the `scope`'s
/// subscriptions.
pub fn each_held_item(
    conn: &Connection,
    at: i64,
    scope: Scope<'_>,
    mut f: impl FnMut(HeldItemRow<'_>),
) -> Result<()> {
    // The version holding at `at`: written at or before it, superseded after it. A
    // version superseded in the same second by a later event has valid_to = ev_created
    // and is skipped. A subscription without items still counts (with no amount). The
    // LEFT JOIN keeps versions the outer loop, so a version's items come consecutively
    // (what the MRR builder needs) without sorting.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT v.id, v.status, coalesce(v.currency, i.currency), i.price, i.quantity,
                i.unit_amount, i.interval, i.interval_count, v.discounts
         FROM subscription_versions v
         LEFT JOIN subscription_version_items i ON i.version = v.id
         WHERE v.changed = 1 AND v.valid_to > ?1 AND v.ev_created <= ?1 AND v.ended = 0
           AND v.status IN ('active', 'past_due', 'trialing')
           AND (coalesce(v.currency, i.currency) = ?2 OR ?2 IS NULL)
           {}",
        scope.conditions("v.", 3)
    ))?;
    let mut rows = stmt.query(params![at, scope.currency, scope.customer, scope.account])?;
    while let Some(r) = rows.next()? {
        f(HeldItemRow {
            version: r.get(0)?,
            status: text(r, 1)?.unwrap_or(""),
            currency: text(r, 2)?,
            price: text(r, 3)?,
            quantity: r.get(4)?,
            unit_amount: r.get(5)?,
            interval: text(r, 6)?,
            interval_count: r.get(7)?,
            discounts: text(r, 8)?.unwrap_or(""),
        });
    }
    Ok(())
}

/// First and last time a subscription of the `scope` changed.
pub fn version_changes_span(
    conn: &Connection,
    scope: Scope<'_>,
) -> Result<(Option<i64>, Option<i64>)> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT min(ev_created), max(ev_created) FROM subscription_versions
             WHERE changed = 1 AND (currency = ?1 OR ?1 IS NULL)
               {}",
            scope.conditions("", 2)
        ))?
        .query_row(
            params![scope.currency, scope.customer, scope.account],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
}

/// A version that changed its subscription's status, items or end.
#[derive(Debug, Clone, Copy)]
pub struct VersionChangeRow<'a> {
    pub subscription: &'a str,
    /// Its event's time.
    pub at: i64,
    pub status: Option<&'a str>,
    /// It or an earlier version of the subscription is terminal.
    pub ended: bool,
}

/// Hands `f` every change before `before` (unix seconds) of the `scope`'s
/// subscriptions, grouped by subscription and in event order (what the churn sweep
/// needs).
pub fn each_version_change(
    conn: &Connection,
    before: i64,
    scope: Scope<'_>,
    mut f: impl FnMut(VersionChangeRow<'_>),
) -> Result<()> {
    // The timeline index gives the versions in this order without sorting.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT subscription, ev_created, status, ended FROM subscription_versions
         WHERE changed = 1 AND ev_created < ?1 AND (currency = ?2 OR ?2 IS NULL) {}
         ORDER BY subscription, ev_created, ev_seq",
        scope.conditions("", 3)
    ))?;
    let mut rows = stmt.query(params![
        before,
        scope.currency,
        scope.customer,
        scope.account
    ])?;
    while let Some(r) = rows.next()? {
        f(VersionChangeRow {
            subscription: text(r, 0)?.unwrap_or(""),
            at: r.get(1)?,
            status: text(r, 2)?,
            ended: r.get(3)?,
        });
    }
    Ok(())
}

/// One item of a subscription version that changed something, with the span it held.
/// A version without items is one row with the item columns `None`.
#[derive(Debug, Clone, Copy)]
pub struct SpanItemRow<'a> {
    /// Identifies the subscription version; items of one version come consecutively.
    pub version: i64,
    /// The version's customer, else its subscription (a history written without one).
    pub customer: &'a str,
    /// When its event happened: the version holds from here…
    pub from: i64,
    /// …until the next change (exclusive; `i64::MAX` while it holds).
    pub to: i64,
    pub status: &'a str,
    /// It or an earlier version of the subscription is terminal.
    pub ended: bool,
    /// The version's currency, else the item's.
    pub currency: Option<&'a str>,
    pub quantity: Option<i64>,
    pub unit_amount: Option<i64>,
    pub interval: Option<&'a str>,
    pub interval_count: Option<i64>,
    /// The version's discount ids, space-separated in order.
    pub discounts: &'a str,
}

/// Hands `f` the items of every version that began before `before` and held for some
/// time (a version superseded in its own second held for none), of the `scope`'s
/// subscriptions, ended ones included: together they are every (or the customer's or
/// account's every) subscription's whole timeline.
pub fn each_version_span_item(
    conn: &Connection,
    before: i64,
    scope: Scope<'_>,
    mut f: impl FnMut(SpanItemRow<'_>),
) -> Result<()> {
    // As in `each_held_item`, versions are the outer loop so a version's items come
    // consecutively without sorting; the fold needs no other order, since each
    // version carries its own end.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT v.id, coalesce(v.customer, v.subscription), v.ev_created, v.valid_to,
                coalesce(v.status, ''), v.ended, coalesce(v.currency, i.currency),
                i.quantity, i.unit_amount, i.interval, i.interval_count, v.discounts
         FROM subscription_versions v
         LEFT JOIN subscription_version_items i ON i.version = v.id
         WHERE v.changed = 1 AND v.valid_to > v.ev_created AND v.ev_created < ?1
           AND (coalesce(v.currency, i.currency) = ?2 OR ?2 IS NULL)
           {}",
        scope.conditions("v.", 3)
    ))?;
    let mut rows = stmt.query(params![
        before,
        scope.currency,
        scope.customer,
        scope.account
    ])?;
    while let Some(r) = rows.next()? {
        f(SpanItemRow {
            version: r.get(0)?,
            customer: text(r, 1)?.unwrap_or(""),
            from: r.get(2)?,
            to: r.get(3)?,
            status: text(r, 4)?.unwrap_or(""),
            ended: r.get(5)?,
            currency: text(r, 6)?,
            quantity: r.get(7)?,
            unit_amount: r.get(8)?,
            interval: text(r, 9)?,
            interval_count: r.get(10)?,
            discounts: text(r, 11)?.unwrap_or(""),
        });
    }
    Ok(())
}

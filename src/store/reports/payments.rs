//! Reads of payments, refunds and payment-failed flags for the revenue and
//! failed-payments reports.

use std::collections::BTreeSet;

use crate::store::db::{Connection, Statement, params};

use super::{only, text};
use crate::store::Result;

/// Refund statuses that count as refunded: money that has left or is leaving.
/// (`failed` and `canceled` refunds gave nothing back; `requires_action` has not
/// started.)
const REFUNDED_STATUSES: &str = "'succeeded', 'pending'";

/// The currencies of payments and refunds (of the connected `account`, if given),
/// sorted, by skipping through the report indexes (one seek per currency, however many
/// rows; an account's rows are checked on the way).
pub fn revenue_currencies(conn: &Connection, account: Option<&str>) -> Result<Vec<String>> {
    let mut all = BTreeSet::new();
    for status in ["succeeded", "failed"] {
        let mut first = conn.prepare_cached(&format!(
            "SELECT min(currency) FROM payments WHERE status = ?1 AND currency >= '' {}",
            only("account", 2, account)
        ))?;
        let mut next = conn.prepare_cached(&format!(
            "SELECT min(currency) FROM payments WHERE status = ?1 AND currency > ?3 {}",
            only("account", 2, account)
        ))?;
        let mut cur: Option<String> = first.query_row(params![status, account], |r| r.get(0))?;
        while let Some(c) = cur {
            cur = next.query_row(params![status, account, c], |r| r.get(0))?;
            all.insert(c);
        }
    }
    let mut first = conn.prepare_cached(&format!(
        "SELECT min(currency) FROM refunds WHERE currency >= '' {}",
        only("account", 1, account)
    ))?;
    let mut next = conn.prepare_cached(&format!(
        "SELECT min(currency) FROM refunds WHERE currency > ?2 {}",
        only("account", 1, account)
    ))?;
    let mut cur: Option<String> = first.query_row([account], |r| r.get(0))?;
    while let Some(c) = cur {
        cur = next.query_row(params![account, c], |r| r.get(0))?;
        all.insert(c);
    }
    Ok(all.into_iter().collect())
}

/// First and last data time of one currency's revenue, of the connected `account` if
/// given (each a single index seek for all accounts).
pub fn revenue_span(
    conn: &Connection,
    currency: &str,
    account: Option<&str>,
) -> Result<Option<(i64, i64)>> {
    let acct = only("account", 2, account);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT min(t), max(t) FROM (
             SELECT (SELECT min(created) FROM payments WHERE status = 'succeeded' AND currency = ?1 {acct}) AS t
             UNION ALL SELECT (SELECT max(created) FROM payments WHERE status = 'succeeded' AND currency = ?1 {acct})
             UNION ALL SELECT (SELECT min(created) FROM payments WHERE status = 'failed' AND currency = ?1 {acct})
             UNION ALL SELECT (SELECT max(created) FROM payments WHERE status = 'failed' AND currency = ?1 {acct})
             UNION ALL SELECT (SELECT min(created) FROM refunds WHERE currency = ?1
                                AND status IN ({REFUNDED_STATUSES}) {acct})
             UNION ALL SELECT (SELECT max(created) FROM refunds WHERE currency = ?1
                                AND status IN ({REFUNDED_STATUSES}) {acct})
             UNION ALL SELECT (SELECT min(created) FROM disputes WHERE currency = ?1 {acct})
             UNION ALL SELECT (SELECT max(created) FROM disputes WHERE currency = ?1 {acct})) AS span"
    ))?;
    let (min, max): (Option<i64>, Option<i64>) =
        stmt.query_row(params![currency, account], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(min.zip(max))
}

/// What one currency took, gave back and failed to take in `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeriodRevenue {
    /// Sum of succeeded payments created in the range.
    pub gross: i64,
    /// How many succeeded payments.
    pub payments: u64,
    /// How many payments created in the range are failed.
    pub failed: u64,
    /// Sum of refunds (succeeded or pending) created in the range.
    pub refunded: i64,
    /// How many such refunds.
    pub refunds: u64,
    /// Sum of disputes opened in the range (whatever their outcome).
    pub disputed: i64,
    /// Of those, the sum of disputes lost.
    pub disputes_lost: i64,
    /// How many disputes were opened in the range.
    pub disputes: u64,
}

/// The revenue sums of one range after another, on statements prepared once: the
/// revenue report asks this for every period of every currency.
pub struct RevenueTotals<'c, 'a> {
    account: Option<&'a str>,
    gross: Statement<'c>,
    failed: Statement<'c>,
    refunded: Statement<'c>,
    disputed: Statement<'c>,
}

impl<'c, 'a> RevenueTotals<'c, 'a> {
    /// The sums of every account's rows, or of the connected `account`'s alone.
    pub fn new(conn: &'c Connection, account: Option<&'a str>) -> Result<RevenueTotals<'c, 'a>> {
        let acct = only("account", 4, account);
        Ok(RevenueTotals {
            account,
            gross: conn.prepare_cached(&format!(
                "SELECT coalesce(sum(amount), 0), count(*) FROM payments
                 WHERE status = 'succeeded' AND currency = ?1 AND created >= ?2 AND created < ?3
                   {acct}"
            ))?,
            failed: conn.prepare_cached(&format!(
                "SELECT count(*) FROM payments
                 WHERE status = 'failed' AND currency = ?1 AND created >= ?2 AND created < ?3
                   {acct}"
            ))?,
            refunded: conn.prepare_cached(&format!(
                "SELECT coalesce(sum(amount), 0), count(*) FROM refunds
                 WHERE currency = ?1 AND created >= ?2 AND created < ?3
                   AND status IN ({REFUNDED_STATUSES}) {acct}"
            ))?,
            disputed: conn.prepare_cached(&format!(
                "SELECT coalesce(sum(amount), 0),
                        coalesce(sum(CASE WHEN status = 'lost' THEN amount ELSE 0 END), 0),
                        count(*)
                 FROM disputes WHERE currency = ?1 AND created >= ?2 AND created < ?3 {acct}"
            ))?,
        })
    }

    /// The sums of `currency` over `[start, end)` (unix seconds).
    pub fn between(&mut self, currency: &str, start: i64, end: i64) -> Result<PeriodRevenue> {
        let span = params![currency, start, end, self.account];
        let (gross, payments): (i64, i64) =
            self.gross.query_row(span, |r| Ok((r.get(0)?, r.get(1)?)))?;
        let failed: i64 = self.failed.query_row(span, |r| r.get(0))?;
        let (refunded, refunds): (i64, i64) = self
            .refunded
            .query_row(span, |r| Ok((r.get(0)?, r.get(1)?)))?;
        let (disputed, disputes_lost, disputes): (i64, i64, i64) = self
            .disputed
            .query_row(span, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(PeriodRevenue {
            gross,
            payments: payments as u64,
            failed: failed as u64,
            refunded,
            refunds: refunds as u64,
            disputed,
            disputes_lost,
            disputes: disputes as u64,
        })
    }
}

/// First and last time of a failed payment or an open payment-failed flag (of the
/// connected `account`, if given: a flag's account is its payment's or invoice's).
pub fn failed_payments_span(
    conn: &Connection,
    account: Option<&str>,
) -> Result<(Option<i64>, Option<i64>)> {
    let acct = only("account", 1, account);
    let flag_acct = only(FLAG_ACCOUNT, 1, account);
    Ok(conn
        .prepare_cached(&format!(
            "SELECT min(t), max(t) FROM (
                 SELECT (SELECT min(created) FROM payments WHERE status = 'failed' {acct}) AS t
                 UNION ALL SELECT (SELECT max(created) FROM payments WHERE status = 'failed' {acct})
                 UNION ALL SELECT (SELECT min(created) FROM flags f
                                   WHERE kind = 'payment_failed' AND status = 'open' {flag_acct})
                 UNION ALL SELECT (SELECT max(created) FROM flags f
                                   WHERE kind = 'payment_failed' AND status = 'open' {flag_acct})
             ) AS span"
        ))?
        .query_row([account], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

/// The connected account of the flag `f`: its payment's, else its invoice's.
const FLAG_ACCOUNT: &str = "coalesce((SELECT account FROM payments WHERE id = f.object_id),
                                     (SELECT account FROM invoices WHERE id = f.object_id))";

/// One failed payment.
#[derive(Debug, Clone, Copy)]
pub struct FailedPaymentRow<'a> {
    pub created: i64,
    pub currency: &'a str,
    pub customer: Option<&'a str>,
    pub amount: i64,
}

/// Hands each failed payment created in `[from, to)` (of `currency` and of the
/// connected `account`, if given) to `f`.
pub fn each_failed_payment(
    conn: &Connection,
    from: i64,
    to: i64,
    currency: Option<&str>,
    account: Option<&str>,
    mut f: impl FnMut(FailedPaymentRow<'_>),
) -> Result<()> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT created, currency, customer, amount FROM payments
         WHERE status = 'failed' AND created >= ?1 AND created < ?2
           AND (currency = ?3 OR ?3 IS NULL) {}",
        only("account", 4, account)
    ))?;
    let mut rows = stmt.query(params![from, to, currency, account])?;
    while let Some(r) = rows.next()? {
        f(FailedPaymentRow {
            created: r.get(0)?,
            // NOT NULL in the schema.
            currency: text(r, 1)?.unwrap_or(""),
            customer: text(r, 2)?,
            amount: r.get(3)?,
        });
    }
    Ok(())
}

/// One open payment-failed flag, with the currency of the invoice or payment it names
/// (empty when the mirror has neither).
#[derive(Debug, Clone, Copy)]
pub struct PaymentFailedFlagRow<'a> {
    pub created: i64,
    pub customer: Option<&'a str>,
    pub currency: &'a str,
}

/// Hands each open payment-failed flag raised in `[from, to)` (whose object is in
/// `currency` and of the connected `account`, if given) to `f`.
pub fn each_open_payment_failed_flag(
    conn: &Connection,
    from: i64,
    to: i64,
    currency: Option<&str>,
    account: Option<&str>,
    mut f: impl FnMut(PaymentFailedFlagRow<'_>),
) -> Result<()> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT created, customer, currency FROM (
             SELECT f.created, f.customer,
                    coalesce((SELECT currency FROM payments WHERE id = f.object_id),
                             (SELECT currency FROM invoices WHERE id = f.object_id), '') AS currency
             FROM flags f
             WHERE f.kind = 'payment_failed' AND f.status = 'open'
               AND f.created >= ?1 AND f.created < ?2 {}) AS open_flags
         WHERE currency = ?3 OR ?3 IS NULL",
        only(FLAG_ACCOUNT, 4, account)
    ))?;
    let mut rows = stmt.query(params![from, to, currency, account])?;
    while let Some(r) = rows.next()? {
        f(PaymentFailedFlagRow {
            created: r.get(0)?,
            customer: text(r, 1)?,
            // Never NULL: the query coalesces it to ''.
            currency: text(r, 2)?.unwrap_or(""),
        });
    }
    Ok(())
}

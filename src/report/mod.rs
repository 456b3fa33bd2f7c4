//! Financial reports (DESIGN §3, docs/reports.md).
//!
//! `revenue`, `mrr`, `subscriptions`, `failed_payments`, `mrr_movements` and
//! `retention` (in `read.rs`) ask the store
//! for rows (`store::reports`, plain parameters in, plain rows out) and fold them with
//! the computations here: the report periods, MRR normalisation and rounding, the churn
//! sweep over the subscription history, and money shown in a currency's own decimals.
//! Imports point down: this module uses the store, the store never uses it. Apart from
//! `read.rs` nothing here touches SQL or HTTP, so the arithmetic is tested on its own.

pub mod discount;
pub mod money;
pub mod movements;
pub mod mrr;
pub mod period;
mod read;
pub mod subscriptions;

use serde::Serialize;

pub use discount::{Basis, Discounts};
pub use movements::{MovementsBuilder, MrrMovementRow, RetentionRow};
pub use mrr::{MrrBuilder, MrrItem, MrrRow, PriceMrr};
pub use period::{Interval, Period};
pub use read::{
    customer_mrr, customer_mrr_movements, failed_payments, mrr, mrr_movements, retention, revenue,
    subscriptions,
};
pub use subscriptions::{ChurnSweep, SubscriptionsRow};

use crate::{store::StoreError, time::as_rfc3339};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The request cannot be answered as asked (a 400, or exit code 1 with the message).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<crate::store::db::Error> for ReportError {
    fn from(e: crate::store::db::Error) -> Self {
        ReportError::Store(e.into())
    }
}

/// What a per-period report is asked for: `[from, to)` (each defaulting to the data's
/// own bounds and now), the period length and optionally one currency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RangeQuery {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub interval: Interval,
    pub currency: Option<String>,
    /// Only the rows of this connected account (its direct charges, its customers'
    /// subscriptions); every account's and the platform's when `None`.
    pub account: Option<String>,
    /// The MRR reports (movements, retention): net of discounts or before them.
    pub basis: Basis,
}

impl RangeQuery {
    /// Parses the parameters as a person or a client gives them (RFC 3339, a date or
    /// unix seconds; `day`/`week`/`month`; an ISO currency in any case).
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        interval: Option<&str>,
        currency: Option<&str>,
    ) -> Result<RangeQuery, ReportError> {
        let from = from.map(|s| parse_time("from", s)).transpose()?;
        let to = to.map(|s| parse_time("to", s)).transpose()?;
        if let (Some(f), Some(t)) = (from, to)
            && f >= t
        {
            return Err(ReportError::Invalid(
                "`from` must be before `to` (`to` is exclusive)".into(),
            ));
        }
        Ok(RangeQuery {
            from,
            to,
            interval: interval
                .map(Interval::parse)
                .transpose()?
                .unwrap_or_default(),
            currency: currency.map(parse_currency).transpose()?,
            account: None,
            basis: Basis::Net,
        })
    }

    /// The range to report given the first and last data times: `from` defaults to the
    /// start of the period holding the first (so rows are whole periods), `to` to just
    /// after now (or after the last data, if later). `None` when the range is empty.
    pub fn resolve(&self, first: Option<i64>, last: Option<i64>, now: i64) -> Option<(i64, i64)> {
        let from = self
            .from
            .or_else(|| first.map(|t| period::period_start(t, self.interval)))?;
        let to = self
            .to
            .unwrap_or_else(|| now.max(last.unwrap_or(now)).saturating_add(1));
        (from < to).then_some((from, to))
    }
}

/// Parses a time parameter, naming it in the error.
pub fn parse_time(name: &str, s: &str) -> Result<i64, ReportError> {
    crate::time::parse_time(s).map_err(|e| ReportError::Invalid(format!("{name}: {e}")))
}

/// A currency parameter: three ASCII letters, returned lowercase as the mirror keeps it.
pub fn parse_currency(s: &str) -> Result<String, ReportError> {
    let s = s.trim();
    if s.len() == 3 && s.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(ReportError::Invalid(format!(
            "currency must be a three-letter ISO code such as `eur`, got `{s}`"
        )))
    }
}

/// Revenue of one currency in one period (DESIGN §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevenueRow {
    pub period: String,
    #[serde(serialize_with = "as_rfc3339::secs")]
    pub period_start: i64,
    #[serde(serialize_with = "as_rfc3339::secs")]
    pub period_end: i64,
    pub currency: String,
    /// Succeeded payments created in the period.
    pub gross: i64,
    /// Refunds (succeeded or pending) created in the period, whenever the payment was.
    pub refunded: i64,
    /// `gross - refunded - disputes_lost`; negative when a period gives back more than
    /// it takes.
    pub net: i64,
    /// How many succeeded payments.
    pub payments: u64,
    /// How many payments created in the period are failed (still, at report time).
    pub failed: u64,
    /// Disputes opened in the period, whatever their outcome.
    pub disputed: i64,
    /// Of `disputed`, the disputes lost (taken out of `net`).
    pub disputes_lost: i64,
}

/// Failed payments and open payment-failed flags of one currency in one period, with
/// the customers to follow up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailedPaymentsRow {
    pub period: String,
    #[serde(serialize_with = "as_rfc3339::secs")]
    pub period_start: i64,
    #[serde(serialize_with = "as_rfc3339::secs")]
    pub period_end: i64,
    pub currency: String,
    /// Payments created in the period whose status is `failed`.
    pub failed: u64,
    /// Their total amount.
    pub amount: i64,
    /// `payment_failed` flags raised in the period and still open.
    pub open_flags: u64,
    /// Customers with a failed payment or an open flag in the period, sorted.
    pub customers: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_parsed_and_bad_ones_named() {
        let q = RangeQuery::parse(
            Some("2026-01-01"),
            Some("2026-02-01T00:00:00Z"),
            Some("day"),
            Some("EUR"),
        )
        .unwrap();
        assert_eq!(q.from, Some(1_767_225_600));
        assert_eq!(q.to, Some(1_769_904_000));
        assert_eq!(q.interval, Interval::Day);
        assert_eq!(q.currency.as_deref(), Some("eur"));
        assert_eq!(
            RangeQuery::parse(None, None, None, None).unwrap().interval,
            Interval::Month
        );

        let err = |r: Result<RangeQuery, ReportError>| r.unwrap_err().to_string();
        assert!(err(RangeQuery::parse(Some("soon"), None, None, None)).starts_with("from: "));
        assert!(
            err(RangeQuery::parse(None, None, Some("fortnight"), None))
                .contains("`day`, `week` or `month`")
        );
        assert!(err(RangeQuery::parse(None, None, None, Some("euro"))).contains("three-letter"));
        assert!(
            err(RangeQuery::parse(
                Some("2026-02-01"),
                Some("2026-01-01"),
                None,
                None
            ))
            .contains("before")
        );
    }

    #[test]
    fn an_open_range_takes_the_datas_bounds_and_now() {
        let q = RangeQuery::default();
        assert_eq!(q.resolve(None, None, 100), None);
        // From the start of the first data's month.
        let jan = 1_767_225_600; // 2026-01-01
        assert_eq!(
            q.resolve(Some(jan + 10), Some(jan + 50), jan + 100),
            Some((jan, jan + 101))
        );
        assert_eq!(
            q.resolve(Some(jan + 10), Some(jan + 500), jan + 100),
            Some((jan, jan + 501))
        );
        // A given bound is kept as given.
        let q = RangeQuery {
            from: Some(jan + 20),
            to: Some(jan + 30),
            ..RangeQuery::default()
        };
        assert_eq!(
            q.resolve(Some(jan + 10), Some(jan + 50), jan + 100),
            Some((jan + 20, jan + 30))
        );
        let q = RangeQuery {
            to: Some(jan - 5),
            ..RangeQuery::default()
        };
        assert_eq!(q.resolve(Some(jan + 10), None, jan + 100), None);
    }
}

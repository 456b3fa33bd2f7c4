//! MRR net of discounts (docs/reports.md, "Discounts").
//!
//! A subscription's gross MRR (its items, normalised to a month) is reduced by each of
//! its discounts in the order Stripe lists them, while the discount runs
//! (`start <= t < end`):
//! - percent off: the amount so far × (1 − percent ÷ 100);
//! - amount off (per invoice, in the coupon's currency): that amount normalised to a
//!   month with the subscription's billing interval, taken off the amount so far, never
//!   below zero; a coupon of another currency takes nothing off.
//!
//! Only `forever` and `repeating` coupons count: a `once` coupon lowers one invoice, not
//! the recurring revenue. Everything stays an exact fraction until the one rounding per
//! subscription, as for gross MRR.

use std::collections::HashMap;

use super::mrr::{Ratio, monthly};
use crate::store::reports::DiscountRow;

/// What the reports count: MRR net of discounts (the default) or before them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Basis {
    #[default]
    Net,
    Gross,
}

impl Basis {
    /// `?gross=true|false` / `--gross`.
    pub fn parse(gross: Option<&str>) -> Result<Basis, super::ReportError> {
        match gross {
            None | Some("false") => Ok(Basis::Net),
            Some("true") => Ok(Basis::Gross),
            Some(_) => Err(super::ReportError::Invalid(
                "gross must be `true` or `false`".into(),
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Off {
    /// Hundredths of a percent.
    Percent(i64),
    Amount {
        amount: i64,
        currency: String,
    },
}

/// One discount as the reports apply it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discount {
    starts_at: Option<i64>,
    ends_at: Option<i64>,
    off: Off,
}

impl Discount {
    /// The discount of a stored row; `None` when it never lowers MRR: a `once` coupon,
    /// a coupon billd has not seen, or one without a usable amount.
    pub fn of(row: &DiscountRow) -> Option<Discount> {
        let ends_at = match row.duration.as_deref()? {
            "forever" => None,
            // Stripe sets `end` on a repeating discount; one without it ends after its
            // months, counted from its start.
            "repeating" => row.ends_at.or_else(|| {
                let months = row.duration_in_months.filter(|m| *m > 0)?;
                add_months(row.starts_at?, months)
            }),
            _ => return None,
        };
        let off = match (row.percent_off_bp, row.amount_off, &row.currency) {
            (Some(bp), _, _) if bp > 0 && bp <= 10_000 => Off::Percent(bp),
            (None, Some(amount), Some(currency)) if amount > 0 => Off::Amount {
                amount,
                currency: currency.to_ascii_lowercase(),
            },
            _ => return None,
        };
        Some(Discount {
            starts_at: row.starts_at,
            ends_at,
            off,
        })
    }

    fn runs_at(&self, t: i64) -> bool {
        self.starts_at.is_none_or(|s| s <= t) && self.ends_at.is_none_or(|e| t < e)
    }
}

/// Every discount that can lower MRR, by id.
#[derive(Debug, Default)]
pub struct Discounts(HashMap<String, Discount>);

impl Discounts {
    pub fn from_rows(rows: impl IntoIterator<Item = DiscountRow>) -> Discounts {
        Discounts(
            rows.into_iter()
                .filter_map(|r| Some((r.id.clone(), Discount::of(&r)?)))
                .collect(),
        )
    }

    /// `gross` after the discounts `ids` (space-separated, in Stripe's order) that run
    /// at `at`, for a subscription billed in `currency` every `interval`.
    pub fn net(
        &self,
        gross: Ratio,
        ids: &str,
        currency: Option<&str>,
        interval: Option<(&str, i64)>,
        at: i64,
    ) -> Ratio {
        let mut net = gross;
        for d in self.of(ids).filter(|d| d.runs_at(at)) {
            net = match &d.off {
                Off::Percent(bp) => net * Ratio::new(i128::from(10_000 - bp), 10_000),
                Off::Amount {
                    amount,
                    currency: c,
                } if currency.is_some_and(|cur| cur.eq_ignore_ascii_case(c)) => {
                    let (every, count) = interval.unwrap_or(("month", 1));
                    match monthly(Some(*amount), Some(1), Some(every), Some(count)) {
                        Some(m) => (net - m).at_least_zero(),
                        None => net,
                    }
                }
                Off::Amount { .. } => net,
            };
        }
        net
    }

    /// The times in `(from, to)` at which one of `ids` starts or ends: where the net
    /// MRR of a version holding over `[from, to)` may change, ascending.
    pub fn changes(&self, ids: &str, from: i64, to: i64) -> Vec<i64> {
        let mut at: Vec<i64> = self
            .of(ids)
            .flat_map(|d| [d.starts_at, d.ends_at])
            .flatten()
            .filter(|t| from < *t && *t < to)
            .collect();
        at.sort_unstable();
        at.dedup();
        at
    }

    fn of<'a>(&'a self, ids: &'a str) -> impl Iterator<Item = &'a Discount> + 'a {
        ids.split(' ')
            .filter(|id| !id.is_empty())
            .filter_map(|id| self.0.get(id))
    }
}

/// `t` plus `months` calendar months (the day clamped to the month's length), in UTC.
fn add_months(t: i64, months: i64) -> Option<i64> {
    let dt = time::OffsetDateTime::from_unix_timestamp(t).ok()?;
    let total = i64::from(dt.year()) * 12 + i64::from(u8::from(dt.month())) - 1 + months;
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = time::Month::try_from(u8::try_from(total.rem_euclid(12) + 1).ok()?).ok()?;
    let day = dt.day().min(month.length(year));
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    Some(dt.replace_date(date).unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = 86_400;

    fn row(id: &str, duration: &str, bp: Option<i64>, amount: Option<i64>) -> DiscountRow {
        DiscountRow {
            id: id.into(),
            starts_at: Some(100 * DAY),
            ends_at: None,
            percent_off_bp: bp,
            amount_off: amount,
            currency: amount.map(|_| "eur".into()),
            duration: Some(duration.into()),
            duration_in_months: None,
        }
    }

    fn eur(cents: i64) -> Ratio {
        Ratio::new(i128::from(cents), 1)
    }

    #[test]
    fn percent_and_amount_coupons_stack_in_order_and_never_go_below_zero() {
        let mut fixed = row("di_fixed", "forever", None, Some(500));
        fixed.starts_at = None;
        let d = Discounts::from_rows([row("di_pct", "forever", Some(2550), None), fixed]);
        let at = 200 * DAY;
        let month = Some(("month", 1));
        // 40.00 − 25.5 % = 29.80, then − 5.00 = 24.80.
        let net = d.net(eur(4000), "di_pct di_fixed", Some("eur"), month, at);
        assert_eq!(net.round(), 2480);
        // The other order: 40.00 − 5.00 = 35.00, − 25.5 % = 26.075 → 26.08.
        let net = d.net(eur(4000), "di_fixed di_pct", Some("eur"), month, at);
        assert_eq!(net.round(), 2608);
        // 5.00 off a 3.00 subscription leaves nothing, not a negative MRR.
        assert_eq!(
            d.net(eur(300), "di_fixed", Some("eur"), month, at),
            Ratio::ZERO
        );
        // A yearly subscription: 5.00 off per invoice is 5.00 / 12 a month.
        let net = d.net(eur(1000), "di_fixed", Some("eur"), Some(("year", 1)), at);
        assert_eq!(net.round(), 958);
        // Another currency's amount-off coupon takes nothing off.
        assert_eq!(
            d.net(eur(1000), "di_fixed", Some("usd"), month, at),
            eur(1000)
        );
        // Unknown ids and an empty list change nothing.
        assert_eq!(
            d.net(eur(1000), "di_nope", Some("eur"), month, at),
            eur(1000)
        );
        assert_eq!(d.net(eur(1000), "", Some("eur"), month, at), eur(1000));
    }

    #[test]
    fn a_discount_counts_only_while_it_runs_and_once_coupons_never() {
        let mut repeating = row("di_rep", "repeating", Some(5000), None);
        repeating.ends_at = Some(130 * DAY);
        let d = Discounts::from_rows([repeating, row("di_once", "once", Some(5000), None)]);
        let m = Some(("month", 1));
        assert_eq!(
            d.net(eur(1000), "di_rep", Some("eur"), m, 99 * DAY),
            eur(1000)
        );
        assert_eq!(
            d.net(eur(1000), "di_rep", Some("eur"), m, 100 * DAY),
            eur(500)
        );
        assert_eq!(
            d.net(eur(1000), "di_rep", Some("eur"), m, 130 * DAY),
            eur(1000)
        );
        assert_eq!(
            d.net(eur(1000), "di_once", Some("eur"), m, 110 * DAY),
            eur(1000)
        );
        assert_eq!(
            d.changes("di_rep di_once", 0, i64::MAX),
            vec![100 * DAY, 130 * DAY]
        );
        assert_eq!(d.changes("di_rep", 100 * DAY, 200 * DAY), vec![130 * DAY]);
    }

    #[test]
    fn a_repeating_discount_without_an_end_ends_after_its_months() {
        // 2026-01-31 + 1 month is 2026-02-28 (the day clamped), + 3 is 2026-04-30.
        let jan31 = 1_769_817_600;
        assert_eq!(add_months(jan31, 1), Some(jan31 + 28 * DAY));
        assert_eq!(add_months(jan31, 3), Some(jan31 + 89 * DAY));
        assert_eq!(add_months(jan31, 12), Some(jan31 + 365 * DAY));
        let mut r = row("di", "repeating", Some(1000), None);
        r.starts_at = Some(jan31);
        r.duration_in_months = Some(1);
        let d = Discount::of(&r).unwrap();
        assert!(d.runs_at(jan31 + 27 * DAY));
        assert!(!d.runs_at(jan31 + 28 * DAY));
    }

    #[test]
    fn gross_is_parsed_strictly() {
        assert_eq!(Basis::parse(None).unwrap(), Basis::Net);
        assert_eq!(Basis::parse(Some("false")).unwrap(), Basis::Net);
        assert_eq!(Basis::parse(Some("true")).unwrap(), Basis::Gross);
        assert!(Basis::parse(Some("yes")).is_err());
    }
}

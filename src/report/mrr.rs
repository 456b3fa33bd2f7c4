//! Monthly recurring revenue: each item's price normalised to a month, summed exactly
//! per subscription, rounded once per subscription, then added up per currency.
//!
//! Normalisation (DESIGN §3): unit amount × quantity, times 365/12 for a daily price,
//! 52/12 weekly, 1 monthly, 1/12 yearly, each divided by `interval_count`. The
//! arithmetic is exact (a fraction of a minor unit) until the one rounding per
//! subscription, so no float ever touches money.

use std::collections::BTreeMap;

use serde::Serialize;

use super::discount::{Basis, Discounts};
use crate::time::as_rfc3339;

/// An exact, non-reduced-on-purpose fraction of a minor unit (denominator > 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    num: i128,
    den: i128,
}

impl Ratio {
    pub const ZERO: Ratio = Ratio { num: 0, den: 1 };

    pub(crate) fn new(num: i128, den: i128) -> Ratio {
        let g = gcd(num.unsigned_abs(), den.unsigned_abs()).max(1) as i128;
        let sign = if den < 0 { -1 } else { 1 };
        Ratio {
            num: sign * num / g,
            den: sign * den / g,
        }
    }

    /// The nearest whole minor unit; halves round away from zero.
    pub fn round(self) -> i64 {
        let q = self.num.div_euclid(self.den);
        let r = self.num.rem_euclid(self.den);
        // r/den >= 1/2 rounds up; for negatives, a half rounds away from zero (down).
        let up = if self.num >= 0 {
            2 * r >= self.den
        } else {
            2 * r > self.den
        };
        let v = if up { q + 1 } else { q };
        i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
    }
}

impl std::ops::Add for Ratio {
    type Output = Ratio;

    fn add(self, other: Ratio) -> Ratio {
        Ratio::new(
            self.num * other.den + other.num * self.den,
            self.den * other.den,
        )
    }
}

impl std::ops::Sub for Ratio {
    type Output = Ratio;

    fn sub(self, other: Ratio) -> Ratio {
        Ratio::new(
            self.num * other.den - other.num * self.den,
            self.den * other.den,
        )
    }
}

impl std::ops::Mul for Ratio {
    type Output = Ratio;

    fn mul(self, other: Ratio) -> Ratio {
        Ratio::new(self.num * other.num, self.den * other.den)
    }
}

impl Ratio {
    /// The ratio, or zero if it is negative.
    pub fn at_least_zero(self) -> Ratio {
        if self.num < 0 { Ratio::ZERO } else { self }
    }

    /// `self × num ÷ den`, or zero when `den` is zero.
    pub fn scaled(self, num: Ratio, den: Ratio) -> Ratio {
        if den.num == 0 {
            return Ratio::ZERO;
        }
        self * num * Ratio::new(den.den, den.num)
    }
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// One item's amount per month, exactly; `None` when it has no recurring monthly
/// meaning (no interval, an unknown interval, or no unit amount or quantity: metered
/// and tiered prices are billed on usage the mirror does not know).
pub fn monthly(
    unit_amount: Option<i64>,
    quantity: Option<i64>,
    interval: Option<&str>,
    interval_count: Option<i64>,
) -> Option<Ratio> {
    // Per month = amount × (periods per year) / 12; a year has 365 days, 52 weeks.
    let per_year: i128 = match interval? {
        "day" => 365,
        "week" => 52,
        "month" => 12,
        "year" => 1,
        _ => return None,
    };
    let count = i128::from(interval_count.filter(|c| *c > 0).unwrap_or(1));
    let amount = i128::from(unit_amount?) * i128::from(quantity?);
    Some(Ratio::new(amount * per_year, 12 * count))
}

/// Subscription states in the MRR report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// In `mrr`: active or past due (still billed, payment being retried).
    Active { past_due: bool },
    /// Reported apart: not paying yet.
    Trialing,
}

impl Counted {
    /// How a subscription `status` counts; `None` for statuses never in MRR
    /// (incomplete, incomplete_expired, canceled, unpaid, paused).
    pub fn of(status: &str) -> Option<Counted> {
        match status {
            "active" => Some(Counted::Active { past_due: false }),
            "past_due" => Some(Counted::Active { past_due: true }),
            "trialing" => Some(Counted::Trialing),
            _ => None,
        }
    }
}

/// The MRR of one currency at one time (DESIGN §3).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MrrRow {
    #[serde(serialize_with = "as_rfc3339::secs")]
    pub at: i64,
    pub currency: String,
    pub mrr: i64,
    pub arr: i64,
    /// Subscriptions in `mrr`: active and past due.
    pub active_subscriptions: u64,
    /// Of `active_subscriptions`, those past due.
    pub past_due_subscriptions: u64,
    /// What trialing subscriptions will bring once they convert (not in `mrr`).
    pub trialing_mrr: i64,
    pub trialing_subscriptions: u64,
    /// What discounts take off the active subscriptions' MRR (docs/reports.md): `mrr`
    /// is net of it, or with `?gross=true` before it.
    pub discounts: i64,
    pub by_price: Vec<PriceMrr>,
}

/// The part of `mrr` from one price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PriceMrr {
    pub price: String,
    pub mrr: i64,
    pub subscriptions: u64,
    pub quantity: i64,
}

/// One item of one subscription version, as read from the store.
#[derive(Debug, Clone, Copy)]
pub struct MrrItem<'a> {
    /// Identifies the subscription version; items of one version arrive together.
    pub version: i64,
    pub status: &'a str,
    pub currency: Option<&'a str>,
    pub price: Option<&'a str>,
    pub quantity: Option<i64>,
    pub unit_amount: Option<i64>,
    pub interval: Option<&'a str>,
    pub interval_count: Option<i64>,
    /// The version's discount ids, space-separated in order.
    pub discounts: &'a str,
}

/// Folds item rows (grouped by version) into per-currency MRR rows.
#[derive(Debug)]
pub struct MrrBuilder {
    at: i64,
    discounts: Discounts,
    basis: Basis,
    currencies: BTreeMap<String, Acc>,
    current: Option<Sub>,
}

#[derive(Debug, Default)]
struct Acc {
    mrr: i64,
    active: u64,
    past_due: u64,
    trialing_mrr: i64,
    trialing: u64,
    discounts: i64,
    by_price: BTreeMap<String, (i64, u64, i64)>,
}

#[derive(Debug)]
struct Sub {
    version: i64,
    counted: Counted,
    currency: Option<String>,
    total: Ratio,
    /// Per price: exact monthly amount and quantity.
    prices: Vec<(String, Ratio, i64)>,
    discounts: String,
    /// The billing interval (of its first item that has one): what an amount-off
    /// coupon's per-invoice amount is normalised with.
    interval: Option<(String, i64)>,
}

impl MrrBuilder {
    /// A builder for MRR at `at`, net of `discounts` or before them (`basis`).
    pub fn new(at: i64, discounts: Discounts, basis: Basis) -> MrrBuilder {
        MrrBuilder {
            at,
            discounts,
            basis,
            currencies: BTreeMap::new(),
            current: None,
        }
    }

    /// Adds one item row; rows of one version must be consecutive. A version without
    /// items is one row with `price` and `interval` `None`.
    pub fn push(&mut self, item: MrrItem<'_>) {
        let Some(counted) = Counted::of(item.status) else {
            return;
        };
        if self.current.as_ref().map(|s| s.version) != Some(item.version) {
            self.flush();
            self.current = Some(Sub {
                version: item.version,
                counted,
                currency: None,
                total: Ratio::ZERO,
                prices: Vec::new(),
                discounts: item.discounts.to_owned(),
                interval: None,
            });
        }
        let Some(sub) = self.current.as_mut() else {
            return;
        };
        if sub.currency.is_none() {
            sub.currency = item.currency.map(str::to_ascii_lowercase);
        }
        if sub.interval.is_none()
            && let Some(every) = item.interval
        {
            sub.interval = Some((every.to_owned(), item.interval_count.unwrap_or(1)));
        }
        let Some(m) = monthly(
            item.unit_amount,
            item.quantity,
            item.interval,
            item.interval_count,
        ) else {
            return;
        };
        sub.total = sub.total + m;
        let price = item.price.unwrap_or("");
        let quantity = item.quantity.unwrap_or(0);
        match sub.prices.iter_mut().find(|p| p.0 == price) {
            Some(p) => {
                p.1 = p.1 + m;
                p.2 += quantity;
            }
            None => sub.prices.push((price.to_string(), m, quantity)),
        }
    }

    fn flush(&mut self) {
        let Some(sub) = self.current.take() else {
            return;
        };
        let gross = sub.total;
        let net = self.discounts.net(
            gross,
            &sub.discounts,
            sub.currency.as_deref(),
            sub.interval.as_ref().map(|(every, n)| (every.as_str(), *n)),
            self.at,
        );
        let counted = match self.basis {
            Basis::Net => net,
            Basis::Gross => gross,
        };
        let acc = self
            .currencies
            .entry(sub.currency.unwrap_or_default())
            .or_default();
        let amount = counted.round();
        match sub.counted {
            Counted::Trialing => {
                acc.trialing += 1;
                acc.trialing_mrr += amount;
            }
            Counted::Active { past_due } => {
                acc.active += 1;
                acc.past_due += u64::from(past_due);
                acc.mrr += amount;
                acc.discounts += gross.round() - net.round();
                for (price, m, quantity) in sub.prices {
                    let e = acc.by_price.entry(price).or_default();
                    // Discounts are the subscription's: each price bears its share.
                    e.0 += m.scaled(counted, gross).round();
                    e.1 += 1;
                    e.2 += quantity;
                }
            }
        }
    }

    /// The rows, one per currency, in currency order.
    pub fn finish(mut self) -> Vec<MrrRow> {
        self.flush();
        let at = self.at;
        self.currencies
            .into_iter()
            .map(|(currency, a)| MrrRow {
                at,
                currency,
                mrr: a.mrr,
                arr: a.mrr.saturating_mul(12),
                active_subscriptions: a.active,
                past_due_subscriptions: a.past_due,
                trialing_mrr: a.trialing_mrr,
                trialing_subscriptions: a.trialing,
                discounts: a.discounts,
                by_price: a
                    .by_price
                    .into_iter()
                    .map(|(price, (mrr, subscriptions, quantity))| PriceMrr {
                        price,
                        mrr,
                        subscriptions,
                        quantity,
                    })
                    .collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(unit: i64, q: i64, interval: &str, count: i64) -> Ratio {
        monthly(Some(unit), Some(q), Some(interval), Some(count)).unwrap()
    }

    #[test]
    fn each_interval_is_normalised_to_a_month() {
        // 10.00 a month is 10.00.
        assert_eq!(m(1000, 1, "month", 1).round(), 1000);
        // 120.00 a year is 10.00 a month.
        assert_eq!(m(12000, 1, "year", 1).round(), 1000);
        // 10.00 a week is 10.00 × 52 / 12 = 43.333… → 43.33.
        assert_eq!(m(1000, 1, "week", 1).round(), 4333);
        // 1.00 a day is 1.00 × 365 / 12 = 30.4166… → 30.42.
        assert_eq!(m(100, 1, "day", 1).round(), 3042);
        // 30.00 every 3 months, quantity 2: 60 / 3 = 20.00.
        assert_eq!(m(3000, 2, "month", 3).round(), 2000);
        // 1000 JPY every 2 weeks: 1000 × 52 / 24 = 2166.67 → 2167.
        assert_eq!(m(1000, 1, "week", 2).round(), 2167);
        // 99.99 every 2 years: 9999 / 24 = 416.625 minor units → 417 (half away from zero).
        assert_eq!(m(9999, 1, "year", 2).round(), 417);
    }

    #[test]
    fn rounding_happens_once_per_subscription_not_per_item() {
        // Two weekly items of 1 minor unit: each is 52/12 = 4.33…; rounded apart they
        // would make 4 + 4 = 8, together 8.66… → 9.
        let total = m(1, 1, "week", 1) + m(1, 1, "week", 1);
        assert_eq!(total.round(), 9);
        let total = m(10, 1, "week", 1) + m(10, 1, "week", 1);
        // 10 × 52 / 12 × 2 = 86.66… → 87 (apart: 43 + 43 = 86).
        assert_eq!(total.round(), 87);
    }

    #[test]
    fn halves_round_away_from_zero() {
        assert_eq!(Ratio::new(5, 2).round(), 3);
        assert_eq!(Ratio::new(-5, 2).round(), -3);
        assert_eq!(Ratio::new(7, 3).round(), 2);
        assert_eq!(Ratio::new(-7, 3).round(), -2);
        assert_eq!(Ratio::new(-8, 3).round(), -3);
    }

    #[test]
    fn items_without_interval_unit_amount_or_quantity_are_not_monthly() {
        assert_eq!(monthly(Some(100), Some(1), None, Some(1)), None);
        assert_eq!(monthly(None, Some(1), Some("month"), Some(1)), None);
        assert_eq!(monthly(Some(100), None, Some("month"), Some(1)), None);
        assert_eq!(
            monthly(Some(100), Some(1), Some("fortnight"), Some(1)),
            None
        );
        // A missing or nonsensical interval_count means 1.
        assert_eq!(
            monthly(Some(100), Some(1), Some("month"), None),
            Some(m(100, 1, "month", 1))
        );
        assert_eq!(
            monthly(Some(100), Some(1), Some("month"), Some(0)),
            Some(m(100, 1, "month", 1))
        );
    }

    #[test]
    fn the_builder_counts_active_past_due_and_trialing_apart_per_currency() {
        let item = |version, status, currency, price, q, unit, interval| MrrItem {
            version,
            status,
            currency: Some(currency),
            price: Some(price),
            quantity: Some(q),
            unit_amount: Some(unit),
            interval: Some(interval),
            interval_count: Some(1),
            discounts: "",
        };
        let mut b = MrrBuilder::new(0, Discounts::default(), Basis::Net);
        b.push(item(1, "active", "eur", "p_m", 2, 1000, "month"));
        b.push(item(1, "active", "eur", "p_w", 1, 10, "week"));
        b.push(item(2, "past_due", "eur", "p_m", 1, 1000, "month"));
        b.push(item(3, "trialing", "eur", "p_m", 1, 1000, "month"));
        b.push(item(4, "canceled", "eur", "p_m", 1, 1000, "month"));
        b.push(item(5, "active", "jpy", "p_y", 1, 12000, "year"));
        let rows = b.finish();
        assert_eq!(rows.len(), 2);
        let eur = &rows[0];
        // sub 1: 20.00 + 0.4333… = 20.4333… → 20.43; sub 2: 10.00.
        assert_eq!(eur.mrr, 2043 + 1000);
        assert_eq!(eur.arr, 12 * 3043);
        assert_eq!(eur.active_subscriptions, 2);
        assert_eq!(eur.past_due_subscriptions, 1);
        assert_eq!(eur.trialing_subscriptions, 1);
        assert_eq!(eur.trialing_mrr, 1000);
        assert_eq!(
            eur.by_price,
            vec![
                PriceMrr {
                    price: "p_m".into(),
                    mrr: 3000,
                    subscriptions: 2,
                    quantity: 3
                },
                PriceMrr {
                    price: "p_w".into(),
                    mrr: 43,
                    subscriptions: 1,
                    quantity: 1
                },
            ]
        );
        assert_eq!(rows[1].currency, "jpy");
        assert_eq!(rows[1].mrr, 1000);
    }
}

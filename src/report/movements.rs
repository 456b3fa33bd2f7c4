//! MRR movements and retention per period and currency (DESIGN §3), from each
//! customer's MRR at the period boundaries.
//!
//! A customer's MRR at a time is the sum of its subscriptions' MRR then (the rules of
//! `mrr`: active and past due only, one rounding per subscription), so the boundaries
//! agree with the MRR report asked at the same times. Each customer and currency is
//! classified once per period by comparing its MRR at the period's start with its MRR
//! at the period's end:
//! - 0 → > 0: `new` if it never had MRR before the period's start, else `reactivation`;
//! - > 0 → 0: `churned`, its whole starting MRR;
//! - > 0 → more or less: `expansion` or `contraction` by the difference.
//!
//! Every customer's change lands in exactly one column, so
//! `starting_mrr + new + expansion + reactivation − contraction − churned = ending_mrr`
//! holds by construction, and one period's `ending_mrr` is the next one's
//! `starting_mrr` (the end is exclusive: it is the next period's start).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::store::reports::SpanItemRow;

use super::{
    discount::{Basis, Discounts},
    mrr::{Counted, Ratio, monthly},
    period::Period,
};
use crate::time::as_rfc3339;

/// MRR movements of one currency in one period (DESIGN §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MrrMovementRow {
    pub period: String,
    #[serde(serialize_with = "as_rfc3339::secs")]
    pub period_start: i64,
    #[serde(serialize_with = "as_rfc3339::secs")]
    pub period_end: i64,
    pub currency: String,
    pub starting_mrr: i64,
    pub new: i64,
    pub expansion: i64,
    pub contraction: i64,
    pub churned: i64,
    pub reactivation: i64,
    pub net_change: i64,
    pub ending_mrr: i64,
}

/// Retention of one currency in one period (DESIGN §3).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetentionRow {
    pub period: String,
    #[serde(serialize_with = "as_rfc3339::secs")]
    pub period_start: i64,
    #[serde(serialize_with = "as_rfc3339::secs")]
    pub period_end: i64,
    pub currency: String,
    pub starting_mrr: i64,
    /// `(starting + expansion − contraction − churned) ÷ starting`; null when starting is 0.
    pub nrr: Option<f64>,
    /// `(starting − contraction − churned) ÷ starting`; null when starting is 0.
    pub grr: Option<f64>,
    /// `ending_mrr ÷ customers_end`, rounded; null when no customer pays at the end.
    pub arpa: Option<i64>,
    pub customers_start: u64,
    pub customers_end: u64,
}

/// One period and currency, with the movements and the customer counts both reports
/// are made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movements {
    pub row: MrrMovementRow,
    pub customers_start: u64,
    pub customers_end: u64,
}

impl Movements {
    pub fn retention(self) -> RetentionRow {
        let r = self.row;
        let ratio = |kept: i64| (r.starting_mrr > 0).then(|| kept as f64 / r.starting_mrr as f64);
        RetentionRow {
            nrr: ratio(r.starting_mrr + r.expansion - r.contraction - r.churned),
            grr: ratio(r.starting_mrr - r.contraction - r.churned),
            arpa: (self.customers_end > 0).then(|| {
                Ratio::new(i128::from(r.ending_mrr), i128::from(self.customers_end)).round()
            }),
            customers_start: self.customers_start,
            customers_end: self.customers_end,
            period: r.period,
            period_start: r.period_start,
            period_end: r.period_end,
            currency: r.currency,
            starting_mrr: r.starting_mrr,
        }
    }
}

/// Folds version spans into per customer MRR at each period boundary, then into rows.
#[derive(Debug)]
pub struct MovementsBuilder {
    periods: Vec<Period>,
    /// The periods' starts and the last one's end, ascending.
    boundaries: Vec<i64>,
    discounts: Discounts,
    basis: Basis,
    customers: HashMap<(String, String), Customer>,
    current: Option<Span>,
}

#[derive(Debug)]
struct Customer {
    /// MRR at each boundary.
    mrr: Vec<i64>,
    /// When it first had MRR, at any time (not only at a boundary).
    first_paid: i64,
}

#[derive(Debug)]
struct Span {
    version: i64,
    customer: String,
    currency: Option<String>,
    from: i64,
    to: i64,
    /// `false` when the version is not in MRR (trialing, ended, canceled, …).
    counted: bool,
    total: Ratio,
    discounts: String,
    /// The billing interval of its first item that has one (see `report::discount`).
    interval: Option<(String, i64)>,
}

impl MovementsBuilder {
    /// A builder over `periods`, counting MRR net of `discounts` or before them.
    pub fn new(periods: Vec<Period>, discounts: Discounts, basis: Basis) -> MovementsBuilder {
        let mut boundaries: Vec<i64> = periods.iter().map(|p| p.start).collect();
        boundaries.extend(periods.last().map(|p| p.end));
        MovementsBuilder {
            periods,
            boundaries,
            discounts,
            basis,
            customers: HashMap::new(),
            current: None,
        }
    }

    /// Adds one item row; rows of one version must be consecutive.
    pub fn push(&mut self, item: SpanItemRow<'_>) {
        if self.current.as_ref().map(|s| s.version) != Some(item.version) {
            self.flush();
            self.current = Some(Span {
                version: item.version,
                customer: item.customer.to_owned(),
                currency: None,
                from: item.from,
                to: item.to,
                counted: !item.ended
                    && matches!(Counted::of(item.status), Some(Counted::Active { .. })),
                total: Ratio::ZERO,
                discounts: item.discounts.to_owned(),
                interval: None,
            });
        }
        let Some(span) = self.current.as_mut() else {
            return;
        };
        if span.currency.is_none() {
            span.currency = item.currency.map(str::to_ascii_lowercase);
        }
        if span.interval.is_none()
            && let Some(every) = item.interval
        {
            span.interval = Some((every.to_owned(), item.interval_count.unwrap_or(1)));
        }
        if let Some(m) = monthly(
            item.unit_amount,
            item.quantity,
            item.interval,
            item.interval_count,
        ) {
            span.total = span.total + m;
        }
    }

    fn flush(&mut self) {
        let Some(span) = self.current.take() else {
            return;
        };
        if !span.counted {
            return;
        }
        let discounts = &self.discounts;
        let interval = span
            .interval
            .as_ref()
            .map(|(every, n)| (every.as_str(), *n));
        let at = |t: i64| match self.basis {
            Basis::Gross => span.total.round(),
            Basis::Net => discounts
                .net(
                    span.total,
                    &span.discounts,
                    span.currency.as_deref(),
                    interval,
                    t,
                )
                .round(),
        };
        // Within the span the MRR changes only where one of its discounts starts or
        // ends; without such a time inside it, it is one amount throughout.
        let changes = match self.basis {
            Basis::Net if !span.discounts.is_empty() => {
                discounts.changes(&span.discounts, span.from, span.to)
            }
            _ => Vec::new(),
        };
        let Some(first_paid) = std::iter::once(span.from)
            .chain(changes.iter().copied())
            .find(|t| at(*t) > 0)
        else {
            return;
        };
        let n = self.boundaries.len();
        let c = self
            .customers
            .entry((
                span.currency.clone().unwrap_or_default(),
                span.customer.clone(),
            ))
            .or_insert_with(|| Customer {
                mrr: vec![0; n],
                first_paid: i64::MAX,
            });
        c.first_paid = c.first_paid.min(first_paid);
        let lo = self.boundaries.partition_point(|b| *b < span.from);
        let hi = self.boundaries.partition_point(|b| *b < span.to);
        if changes.is_empty() {
            let amount = at(span.from);
            for m in &mut c.mrr[lo..hi] {
                *m += amount;
            }
        } else {
            for (m, b) in c.mrr[lo..hi].iter_mut().zip(&self.boundaries[lo..hi]) {
                *m += at(*b);
            }
        }
    }

    /// The rows in period then currency order; a period and currency appear when some
    /// customer pays at its start or its end.
    pub fn finish(mut self) -> Vec<Movements> {
        self.flush();
        let mut acc: BTreeMap<(usize, String), Movements> = BTreeMap::new();
        for ((currency, _), c) in &self.customers {
            for (i, p) in self.periods.iter().enumerate() {
                let (start, end) = (c.mrr[i], c.mrr[i + 1]);
                if start == 0 && end == 0 {
                    continue;
                }
                let m = acc
                    .entry((i, currency.clone()))
                    .or_insert_with(|| empty(p, currency));
                let r = &mut m.row;
                r.starting_mrr += start;
                r.ending_mrr += end;
                m.customers_start += u64::from(start > 0);
                m.customers_end += u64::from(end > 0);
                if start == 0 {
                    if c.first_paid < p.start {
                        r.reactivation += end;
                    } else {
                        r.new += end;
                    }
                } else if end == 0 {
                    r.churned += start;
                } else if end > start {
                    r.expansion += end - start;
                } else {
                    r.contraction += start - end;
                }
            }
        }
        acc.into_values()
            .map(|mut m| {
                m.row.net_change = m.row.ending_mrr - m.row.starting_mrr;
                m
            })
            .collect()
    }
}

fn empty(p: &Period, currency: &str) -> Movements {
    Movements {
        row: MrrMovementRow {
            period: p.label.clone(),
            period_start: p.start,
            period_end: p.end,
            currency: currency.to_owned(),
            starting_mrr: 0,
            new: 0,
            expansion: 0,
            contraction: 0,
            churned: 0,
            reactivation: 0,
            net_change: 0,
            ending_mrr: 0,
        },
        customers_start: 0,
        customers_end: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Interval, period::periods};
    use crate::store::reports::DiscountRow;

    const DAY: i64 = 86_400;

    /// Customer `cus`, one version of 1 × `amount` a month in eur over `[from, to)`.
    fn span(b: &mut MovementsBuilder, version: i64, cus: &str, amount: i64, from: i64, to: i64) {
        b.push(SpanItemRow {
            version,
            customer: cus,
            from,
            to,
            status: "active",
            ended: false,
            currency: Some("eur"),
            quantity: Some(1),
            unit_amount: Some(amount),
            interval: Some("month"),
            interval_count: Some(1),
            discounts: "",
        });
    }

    fn days(n: i64) -> Vec<Period> {
        periods(0, n * DAY, Interval::Day).unwrap()
    }

    #[test]
    fn each_change_lands_in_its_column_and_the_identity_holds() {
        let mut b = MovementsBuilder::new(days(4), Discounts::default(), Basis::Net);
        // a: new on day 0 (at 1000), expands to 1500 on day 1, churns on day 2.
        span(&mut b, 1, "a", 1000, 10, DAY + 5);
        span(&mut b, 2, "a", 1500, DAY + 5, 2 * DAY + 5);
        // b: paying before the range, contracts on day 0, reactivates on day 3 after a gap.
        span(&mut b, 3, "b", 800, -DAY, 100);
        span(&mut b, 4, "b", 300, 100, DAY + 1);
        span(&mut b, 5, "b", 700, 3 * DAY + 1, i64::MAX);
        let rows: Vec<MrrMovementRow> = b.finish().into_iter().map(|m| m.row).collect();
        let cols = |r: &MrrMovementRow| {
            (
                r.starting_mrr,
                r.new,
                r.expansion,
                r.contraction,
                r.churned,
                r.reactivation,
                r.ending_mrr,
            )
        };
        // Day 0: a new 1000, b 800 → 300.
        assert_eq!(cols(&rows[0]), (800, 1000, 0, 500, 0, 0, 1300));
        // Day 1: a 1000 → 1500, b 300 → 0.
        assert_eq!(cols(&rows[1]), (1300, 0, 500, 0, 300, 0, 1500));
        // Day 2: a 1500 → 0.
        assert_eq!(cols(&rows[2]), (1500, 0, 0, 0, 1500, 0, 0));
        // Day 3: b comes back.
        assert_eq!(cols(&rows[3]), (0, 0, 0, 0, 0, 700, 700));
        for r in &rows {
            assert_eq!(r.net_change, r.ending_mrr - r.starting_mrr);
        }
    }

    #[test]
    fn a_customer_who_paid_only_inside_an_earlier_period_comes_back_as_a_reactivation() {
        let mut b = MovementsBuilder::new(days(2), Discounts::default(), Basis::Net);
        span(&mut b, 1, "a", 1000, 10, 20);
        span(&mut b, 2, "a", 1000, DAY + 10, i64::MAX);
        let rows = b.finish();
        assert_eq!(rows.len(), 1, "day 0 starts and ends at 0");
        assert_eq!((rows[0].row.new, rows[0].row.reactivation), (0, 1000));
    }

    #[test]
    fn trialing_and_ended_versions_are_not_mrr() {
        let mut b = MovementsBuilder::new(days(1), Discounts::default(), Basis::Net);
        for (version, status, ended) in [(1, "trialing", false), (2, "active", true)] {
            b.push(SpanItemRow {
                version,
                customer: "a",
                from: 0,
                to: i64::MAX,
                status,
                ended,
                currency: Some("eur"),
                quantity: Some(1),
                unit_amount: Some(1000),
                interval: Some("month"),
                interval_count: Some(1),
                discounts: "",
            });
        }
        assert!(b.finish().is_empty());
    }

    #[test]
    fn retention_divides_by_what_paid_at_the_start_and_is_null_without_it() {
        let mut b = MovementsBuilder::new(days(2), Discounts::default(), Basis::Net);
        // Day 0: a 1000 → 1200, c 1000 → 0, d new 500.
        span(&mut b, 1, "a", 1000, 0, 100);
        span(&mut b, 2, "a", 1200, 100, i64::MAX);
        span(&mut b, 3, "c", 1000, 0, 100);
        span(&mut b, 4, "d", 500, 100, i64::MAX);
        let rows: Vec<RetentionRow> = b.finish().into_iter().map(Movements::retention).collect();
        let day0 = &rows[0];
        assert_eq!(day0.starting_mrr, 2000);
        // (2000 + 200 − 0 − 1000) / 2000 and (2000 − 0 − 1000) / 2000.
        assert_eq!(day0.nrr, Some(0.6));
        assert_eq!(day0.grr, Some(0.5));
        // (1200 + 500) / 2 customers.
        assert_eq!(day0.arpa, Some(850));
        assert_eq!((day0.customers_start, day0.customers_end), (2, 2));

        let mut b = MovementsBuilder::new(days(1), Discounts::default(), Basis::Net);
        span(&mut b, 1, "a", 1001, 100, i64::MAX);
        span(&mut b, 2, "b", 1000, 100, i64::MAX);
        let r = b.finish().remove(0).retention();
        assert_eq!((r.nrr, r.grr), (None, None));
        // 2001 / 2 = 1000.5 rounds away from zero.
        assert_eq!(r.arpa, Some(1001));
    }

    #[test]
    fn a_coupon_that_ends_inside_a_version_is_an_expansion_when_it_ends() {
        // a: 50 % off from its start until just after day 2 begins (repeating); c: 100 %
        // off forever.
        let coupon = |id: &str, bp, duration: &str, ends_at| DiscountRow {
            id: id.into(),
            starts_at: Some(0),
            ends_at,
            percent_off_bp: Some(bp),
            amount_off: None,
            currency: None,
            duration: Some(duration.into()),
            duration_in_months: None,
        };
        let discounts = Discounts::from_rows([
            coupon("di_half", 5000, "repeating", Some(2 * DAY + 5)),
            coupon("di_free", 10_000, "forever", None),
        ]);
        let item = |version, customer, discounts| SpanItemRow {
            version,
            customer,
            from: 10,
            to: i64::MAX,
            status: "active",
            ended: false,
            currency: Some("eur"),
            quantity: Some(1),
            unit_amount: Some(1000),
            interval: Some("month"),
            interval_count: Some(1),
            discounts,
        };
        let mut b = MovementsBuilder::new(days(3), discounts, Basis::Net);
        b.push(item(1, "a", "di_half"));
        b.push(item(2, "c", "di_free"));
        let rows: Vec<MrrMovementRow> = b.finish().into_iter().map(|m| m.row).collect();
        // Day 0: a is new at 5.00 (c pays nothing: never a customer); day 1 holds; day 2
        // the coupon ends and a expands to 10.00.
        assert_eq!((rows[0].new, rows[0].ending_mrr), (500, 500));
        assert_eq!((rows[1].starting_mrr, rows[1].ending_mrr), (500, 500));
        assert_eq!((rows[2].expansion, rows[2].ending_mrr), (500, 1000));

        // Before discounts, a is new at 10.00 and so is c.
        let discounts = Discounts::from_rows([coupon("di_half", 5000, "repeating", None)]);
        let mut b = MovementsBuilder::new(days(1), discounts, Basis::Gross);
        b.push(item(1, "a", "di_half"));
        b.push(item(2, "c", "di_free"));
        let rows = b.finish();
        assert_eq!(rows[0].row.new, 2000);
    }
}

//! New, canceled and churned subscriptions per period, swept from the subscription
//! history in one pass.
//!
//! The population is the one MRR counts: subscriptions that are active or past due
//! (and not ended). Per period `[start, end)`:
//! - `active_start`: counted just before `start` (the state of the last version with
//!   `ev_created < start`), the same number MRR's `active_subscriptions` gives at
//!   `start - 1`;
//! - `new`: subscriptions counted for the first time in the period (a trial counts
//!   when it converts);
//! - `canceled`: subscriptions that ended in the period after having been counted (a
//!   trial canceled before converting is neither new nor canceled);
//! - `net_change` = `new - canceled`;
//! - `churn_rate` = `canceled / active_start` (null when nothing was active).

use serde::Serialize;

use super::period::{self, Period};
use crate::time::as_rfc3339;

/// One period of the subscriptions report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SubscriptionsRow {
    pub period: String,
    #[serde(serialize_with = "as_rfc3339::secs")]
    pub period_start: i64,
    #[serde(serialize_with = "as_rfc3339::secs")]
    pub period_end: i64,
    pub active_start: u64,
    pub new: u64,
    pub canceled: u64,
    pub net_change: i64,
    pub churn_rate: Option<f64>,
}

/// Folds subscription versions, grouped by subscription and in event order, into
/// per-period counts.
#[derive(Debug)]
pub struct ChurnSweep {
    periods: Vec<Period>,
    /// Change of the counted population before the first period: its `active_start`.
    before: i64,
    delta: Vec<i64>,
    new: Vec<u64>,
    canceled: Vec<u64>,
    current: Option<Sub>,
}

#[derive(Debug)]
struct Sub {
    id: String,
    counted: bool,
    ever_counted: bool,
    ended: bool,
}

impl ChurnSweep {
    pub fn new(periods: Vec<Period>) -> ChurnSweep {
        let n = periods.len();
        ChurnSweep {
            periods,
            before: 0,
            delta: vec![0; n],
            new: vec![0; n],
            canceled: vec![0; n],
            current: None,
        }
    }

    /// One version: `at` its event time, `ended` whether it or an earlier version of
    /// the subscription is terminal. Versions of one subscription must be consecutive
    /// and ordered by (ev_created, ev_seq).
    pub fn version(&mut self, subscription: &str, at: i64, status: Option<&str>, ended: bool) {
        if self.current.as_ref().map(|s| s.id.as_str()) != Some(subscription) {
            self.current = Some(Sub {
                id: subscription.to_string(),
                counted: false,
                ever_counted: false,
                ended: false,
            });
        }
        let Some(sub) = self.current.as_mut() else {
            return;
        };
        let counted = !ended && matches!(status, Some("active" | "past_due"));
        let slot = period::find(&self.periods, at);
        let before = self.periods.first().is_none_or(|p| at < p.start);
        if counted != sub.counted {
            let d = if counted { 1 } else { -1 };
            match slot {
                Some(i) => self.delta[i] += d,
                None if before => self.before += d,
                None => {}
            }
        }
        if let Some(i) = slot {
            if counted && !sub.ever_counted {
                self.new[i] += 1;
            }
            if ended && !sub.ended && sub.ever_counted {
                self.canceled[i] += 1;
            }
        }
        sub.counted = counted;
        sub.ever_counted |= counted;
        sub.ended |= ended;
    }

    /// The rows of periods with anything to say (something active, new or canceled).
    pub fn finish(self) -> Vec<SubscriptionsRow> {
        let mut active = self.before;
        let mut rows = Vec::new();
        for (i, p) in self.periods.into_iter().enumerate() {
            let active_start = u64::try_from(active).unwrap_or(0);
            active += self.delta[i];
            let (new, canceled) = (self.new[i], self.canceled[i]);
            if active_start == 0 && new == 0 && canceled == 0 {
                continue;
            }
            rows.push(SubscriptionsRow {
                period: p.label,
                period_start: p.start,
                period_end: p.end,
                active_start,
                new,
                canceled,
                net_change: new as i64 - canceled as i64,
                churn_rate: churn_rate(canceled, active_start),
            });
        }
        rows
    }
}

/// `canceled / active_start`, to six decimals; `None` when nothing was active.
pub fn churn_rate(canceled: u64, active_start: u64) -> Option<f64> {
    (active_start > 0).then(|| (canceled as f64 / active_start as f64 * 1e6).round() / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::period::{Interval, periods};

    #[test]
    fn churn_is_canceled_over_active_at_the_start() {
        assert_eq!(churn_rate(1, 4), Some(0.25));
        assert_eq!(churn_rate(1, 3), Some(0.333333));
        assert_eq!(churn_rate(0, 3), Some(0.0));
        assert_eq!(churn_rate(2, 0), None);
    }

    #[test]
    fn the_sweep_counts_starts_trial_conversions_and_cancellations_per_period() {
        // Periods of 100 s: [100, 200), [200, 300), [300, 400).
        let p: Vec<Period> = (1..4)
            .map(|i| Period {
                label: format!("p{i}"),
                start: i * 100,
                end: i * 100 + 100,
            })
            .collect();
        let mut s = ChurnSweep::new(p);
        // a: active before the range, canceled in p2.
        s.version("a", 50, Some("active"), false);
        s.version("a", 250, Some("canceled"), true);
        // b: trial in p1, converts in p2, a late update after its end is ignored.
        s.version("b", 150, Some("trialing"), false);
        s.version("b", 210, Some("active"), false);
        s.version("b", 320, Some("canceled"), true);
        s.version("b", 330, Some("active"), true);
        // c: trial canceled before converting: neither new nor canceled.
        s.version("c", 120, Some("trialing"), false);
        s.version("c", 130, Some("canceled"), true);
        // d: new in p1, past due in p2 (still counted), unpaid in p3 (leaves the count).
        s.version("d", 110, Some("active"), false);
        s.version("d", 220, Some("past_due"), false);
        s.version("d", 310, Some("unpaid"), false);
        let rows = s.finish();
        let got: Vec<(u64, u64, u64)> = rows
            .iter()
            .map(|r| (r.active_start, r.new, r.canceled))
            .collect();
        assert_eq!(got, [(1, 1, 0), (2, 1, 1), (2, 0, 1)]);
        assert_eq!(rows[1].churn_rate, Some(0.5));
        assert_eq!(rows[1].net_change, 0);
    }

    #[test]
    fn quiet_periods_with_nothing_active_are_left_out() {
        let p = periods(0, 400, Interval::Day).unwrap();
        let s = ChurnSweep::new(p);
        assert!(s.finish().is_empty());
    }
}

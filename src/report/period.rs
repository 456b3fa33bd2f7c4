//! Report periods: whole UTC days, ISO weeks (Monday to Sunday, UTC) or calendar
//! months, clipped to the asked range.

use time::{Date, Month, OffsetDateTime};

use super::ReportError;

/// The length of a report period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Interval {
    Day,
    Week,
    #[default]
    Month,
}

impl Interval {
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Day => "day",
            Interval::Week => "week",
            Interval::Month => "month",
        }
    }

    pub fn parse(s: &str) -> Result<Interval, ReportError> {
        match s.trim() {
            "day" => Ok(Interval::Day),
            "week" => Ok(Interval::Week),
            "month" => Ok(Interval::Month),
            other => Err(ReportError::Invalid(format!(
                "interval must be `day`, `week` or `month`, got `{other}`"
            ))),
        }
    }
}

/// One row's time span: `[start, end)` in unix seconds, named by the calendar period
/// that contains it (`2026-11`, the ISO week `2026-W48` or the day `2026-11-28`). The first and last periods of a range
/// may be clipped by `from` and `to`; `start` and `end` say so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Period {
    pub label: String,
    pub start: i64,
    pub end: i64,
}

/// No range may hold more periods than this (a century of days): a guard against a
/// request that would build millions of empty buckets.
pub const MAX_PERIODS: usize = 36_600;

/// Start of the calendar period containing `t`.
pub fn period_start(t: i64, interval: Interval) -> i64 {
    match interval {
        Interval::Day => t.div_euclid(86_400) * 86_400,
        Interval::Week => {
            // 1970-01-01 was a Thursday: its Monday is three days earlier.
            let day = t.div_euclid(86_400);
            (day - (day + 3).rem_euclid(7)) * 86_400
        }
        Interval::Month => {
            let d = date_of(t);
            month_start(d.year(), d.month())
        }
    }
}

/// Start of the calendar period after the one starting at `start`.
fn next_start(start: i64, interval: Interval) -> i64 {
    match interval {
        Interval::Day => start + 86_400,
        Interval::Week => start + 7 * 86_400,
        Interval::Month => {
            let d = date_of(start);
            let (y, m) = match d.month() {
                Month::December => (d.year() + 1, Month::January),
                m => (d.year(), m.next()),
            };
            month_start(y, m)
        }
    }
}

fn date_of(t: i64) -> Date {
    OffsetDateTime::from_unix_timestamp(t)
        .map(|t| t.date())
        .unwrap_or(if t < 0 { Date::MIN } else { Date::MAX })
}

fn month_start(year: i32, month: Month) -> i64 {
    Date::from_calendar_date(year, month, 1)
        .map(|d| d.midnight().assume_utc().unix_timestamp())
        .unwrap_or(0)
}

fn label(start: i64, interval: Interval) -> String {
    let d = date_of(start);
    match interval {
        Interval::Day => format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day()),
        Interval::Week => {
            // The ISO week-numbering year: 2024-12-30 is in 2025-W01.
            let (year, week, _) = d.to_iso_week_date();
            format!("{year:04}-W{week:02}")
        }
        Interval::Month => format!("{:04}-{:02}", d.year(), d.month() as u8),
    }
}

/// The periods covering `[from, to)`, in order; empty when `from >= to`.
pub fn periods(from: i64, to: i64, interval: Interval) -> Result<Vec<Period>, ReportError> {
    let mut out = Vec::new();
    if from >= to {
        return Ok(out);
    }
    let mut start = period_start(from, interval);
    while start < to {
        if out.len() == MAX_PERIODS {
            return Err(ReportError::Invalid(format!(
                "the range holds more than {MAX_PERIODS} {}s; narrow `from`/`to` or use a longer interval",
                interval.as_str()
            )));
        }
        let end = next_start(start, interval);
        out.push(Period {
            label: label(start, interval),
            start: start.max(from),
            end: end.min(to),
        });
        start = end;
    }
    Ok(out)
}

/// Index of the period holding `t`, if any (periods are ordered and contiguous).
pub fn find(periods: &[Period], t: i64) -> Option<usize> {
    let i = periods.partition_point(|p| p.end <= t);
    periods.get(i).filter(|p| p.start <= t).map(|_| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_time;

    fn t(s: &str) -> i64 {
        parse_time(s).unwrap()
    }

    #[test]
    fn months_are_calendar_months_clipped_to_the_range() {
        let p = periods(t("2025-12-15"), t("2026-02-10"), Interval::Month).unwrap();
        let labels: Vec<&str> = p.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["2025-12", "2026-01", "2026-02"]);
        assert_eq!(p[0].start, t("2025-12-15"));
        assert_eq!(p[0].end, t("2026-01-01"));
        assert_eq!(p[1].start, t("2026-01-01"));
        assert_eq!(p[1].end, t("2026-02-01"));
        assert_eq!(p[2].end, t("2026-02-10"));
    }

    #[test]
    fn days_are_utc_days_including_leap_days() {
        let p = periods(t("2028-02-28"), t("2028-03-01T00:00:01Z"), Interval::Day).unwrap();
        let labels: Vec<&str> = p.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["2028-02-28", "2028-02-29", "2028-03-01"]);
        assert_eq!(p[2].end - p[2].start, 1);
    }

    #[test]
    fn weeks_start_on_monday_and_are_named_by_their_iso_year() {
        let p = periods(t("2024-12-25"), t("2025-01-08"), Interval::Week).unwrap();
        let labels: Vec<&str> = p.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(labels, ["2024-W52", "2025-W01", "2025-W02"]);
        assert_eq!(p[0].start, t("2024-12-25"));
        assert_eq!(p[1].start, t("2024-12-30"));
        assert_eq!(p[2].start, t("2025-01-06"));
        assert_eq!(p[2].end, t("2025-01-08"));
        assert_eq!(
            period_start(t("1970-01-01"), Interval::Week),
            t("1969-12-29")
        );
    }

    #[test]
    fn an_empty_or_reversed_range_has_no_periods_and_a_huge_one_is_refused() {
        assert!(periods(10, 10, Interval::Day).unwrap().is_empty());
        assert!(periods(10, 5, Interval::Month).unwrap().is_empty());
        assert!(periods(0, t("2200-01-01"), Interval::Day).is_err());
        assert!(periods(0, t("2200-01-01"), Interval::Month).is_ok());
    }

    #[test]
    fn a_time_is_found_in_its_period() {
        let p = periods(t("2026-01-01"), t("2026-03-01"), Interval::Month).unwrap();
        assert_eq!(find(&p, t("2025-12-31T23:59:59Z")), None);
        assert_eq!(find(&p, t("2026-01-01")), Some(0));
        assert_eq!(find(&p, t("2026-01-31T23:59:59Z")), Some(0));
        assert_eq!(find(&p, t("2026-02-01")), Some(1));
        assert_eq!(find(&p, t("2026-03-01")), None);
    }
}

//! Time helpers: billd stores unix seconds (and milliseconds where order within a
//! second matters) and shows RFC 3339 UTC strings at its edges.

use std::time::{SystemTime, UNIX_EPOCH};

use time::{Date, OffsetDateTime, format_description::well_known::Rfc3339};

/// Milliseconds since the unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Seconds since the unix epoch.
pub fn now_secs() -> i64 {
    now_ms() / 1000
}

/// Unix seconds as an RFC 3339 UTC string (`2026-11-28T00:00:00Z`).
pub fn rfc3339(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| secs.to_string())
}

/// Unix milliseconds as an RFC 3339 UTC string with millisecond precision, always
/// three digits (`2026-11-28T00:00:00.120Z`), so times line up in a column.
pub fn rfc3339_ms(ms: i64) -> String {
    const FIXED: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(FIXED).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// Parses a time given by a person: RFC 3339 (`2026-11-01T12:00:00Z`), a date
/// (`2026-11-01`, midnight UTC) or unix seconds. Returns unix seconds.
pub fn parse_time(s: &str) -> Result<i64, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<i64>() {
        return Ok(secs);
    }
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let date_format = time::macros::format_description!("[year]-[month]-[day]");
    if let Ok(d) = Date::parse(s, &date_format) {
        return Ok(d.midnight().assume_utc().unix_timestamp());
    }
    Err(format!(
        "`{s}` is not a time: use RFC 3339 (2026-11-01T12:00:00Z), a date (2026-11-01) or unix seconds"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn millisecond_times_always_have_three_digits() {
        assert_eq!(rfc3339_ms(1_764_547_200_120), "2025-12-01T00:00:00.120Z");
        assert_eq!(rfc3339_ms(1_764_547_200_000), "2025-12-01T00:00:00.000Z");
    }

    #[test]
    fn times_round_trip_through_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Ok(0));
        assert_eq!(parse_time("2026-11-28"), Ok(1_795_824_000));
        assert_eq!(parse_time("1795824000"), Ok(1_795_824_000));
        assert!(parse_time("yesterday").is_err());
    }
}

/// `#[serde(serialize_with = "…")]` helpers that show unix seconds as RFC 3339.
pub mod as_rfc3339 {
    use serde::Serializer;

    pub fn secs<S: Serializer>(secs: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339(*secs))
    }

    pub fn opt_secs<S: Serializer>(secs: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match secs {
            Some(v) => s.serialize_str(&super::rfc3339(*v)),
            None => s.serialize_none(),
        }
    }

    pub fn ms<S: Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::rfc3339_ms(*ms))
    }

    pub fn opt_ms<S: Serializer>(ms: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match ms {
            Some(v) => s.serialize_str(&super::rfc3339_ms(*v)),
            None => s.serialize_none(),
        }
    }
}

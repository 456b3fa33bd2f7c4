//! `GET /metrics` in the Prometheus text format.
//!
//! The inbox and flag figures are read from the database, not kept in memory, because
//! several billd processes may share one database: every process then reports the same,
//! true numbers. Alert on `billd_events{status="dead"} > 0` and on the age of the oldest
//! waiting event. Webhook outcomes are counted per process.

use std::{
    fmt::Write,
    sync::atomic::{AtomicU64, Ordering},
};

use axum::{extract::State, http::header, response::IntoResponse};

use super::{AppState, error::ApiResult};
use crate::store::{events, flags};

const OUTCOMES: [&str; 5] = [
    "stored",
    "duplicate",
    "rejected",
    "not_stored",
    "rate_limited",
];
static WEBHOOKS: [AtomicU64; 5] = [const { AtomicU64::new(0) }; 5];

const PROTECTIONS: [&str; 3] = ["connection_refused", "rate_limited", "overloaded"];
static PROTECTED: [AtomicU64; 3] = [const { AtomicU64::new(0) }; 3];

/// Counts one request or connection refused by a server protection (`[limits]`).
pub fn protection(reason: &'static str) {
    if let Some(i) = PROTECTIONS.iter().position(|o| *o == reason) {
        PROTECTED[i].fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts one webhook delivery by outcome.
pub fn webhook(outcome: &'static str) {
    if let Some(i) = OUTCOMES.iter().position(|o| *o == outcome) {
        WEBHOOKS[i].fetch_add(1, Ordering::Relaxed);
    }
}

pub async fn render(State(state): State<AppState>) -> ApiResult<impl IntoResponse> {
    let (counts, oldest, open) = state
        .store
        .run(|c| {
            Ok((
                events::counts(c)?,
                events::oldest_waiting_ms(c)?,
                flags::open_counts(c)?,
            ))
        })
        .await?;
    let mut out = String::new();
    let _ = writeln!(out, "# HELP billd_events Events in the inbox by status.");
    let _ = writeln!(out, "# TYPE billd_events gauge");
    for status in events::Status::ALL {
        let n = counts
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n);
        let _ = writeln!(out, "billd_events{{status=\"{}\"}} {n}", status.as_str());
    }
    let age = oldest.map_or(0.0, |ms| {
        (crate::time::now_ms() - ms).max(0) as f64 / 1000.0
    });
    let _ = writeln!(
        out,
        "# HELP billd_events_oldest_waiting_seconds Age of the oldest event not yet applied."
    );
    let _ = writeln!(out, "# TYPE billd_events_oldest_waiting_seconds gauge");
    let _ = writeln!(out, "billd_events_oldest_waiting_seconds {age}");
    let _ = writeln!(out, "# HELP billd_flags_open Open flags by kind.");
    let _ = writeln!(out, "# TYPE billd_flags_open gauge");
    for (kind, n) in open {
        let _ = writeln!(out, "billd_flags_open{{kind=\"{kind}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP billd_webhooks_total Webhook deliveries answered by this process, by outcome."
    );
    let _ = writeln!(out, "# TYPE billd_webhooks_total counter");
    for (i, outcome) in OUTCOMES.iter().enumerate() {
        let n = WEBHOOKS[i].load(Ordering::Relaxed);
        let _ = writeln!(out, "billd_webhooks_total{{outcome=\"{outcome}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP billd_refused_total Connections and requests refused by this process's limits."
    );
    let _ = writeln!(out, "# TYPE billd_refused_total counter");
    for (i, reason) in PROTECTIONS.iter().enumerate() {
        let n = PROTECTED[i].load(Ordering::Relaxed);
        let _ = writeln!(out, "billd_refused_total{{reason=\"{reason}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP billd_webhook_hmacs_total HMACs computed verifying webhook signatures."
    );
    let _ = writeln!(out, "# TYPE billd_webhook_hmacs_total counter");
    let _ = writeln!(
        out,
        "billd_webhook_hmacs_total {}",
        state.verifier.hmac_count()
    );
    crate::metrics::render(&mut out);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}

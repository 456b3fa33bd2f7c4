//! This process's counters and histograms, for `GET /metrics` (`http::metrics` renders
//! them beside the inbox figures it reads from the database).
//!
//! Kept here, below every layer that counts (the HTTP edge, the workers, the Stripe
//! client, the alert task), as a small registry rather than the `metrics` crate family:
//! a dozen families with bounded labels need a map and a lock, not a recorder with its
//! own clock and buckets. Label values are bounded by construction (route templates,
//! statuses, operation names, Stripe's event types) and, to be sure, by a cap on the
//! series of each family: past it, new label sets count under `other`.

use std::{
    collections::BTreeMap,
    fmt::Write,
    sync::{LazyLock, Mutex},
};

/// Most series one family keeps.
const MAX_SERIES: usize = 2_000;

/// Upper bounds (seconds) of the duration histograms.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Counter,
    Histogram,
}

/// Every family billd exports from memory: name, kind, help.
const FAMILIES: [(&str, Kind, &str); 6] = [
    (
        "billd_webhook_deliveries_total",
        Kind::Counter,
        "Signed webhook deliveries answered by this process, by event type and outcome.",
    ),
    (
        "billd_apply_duration_seconds",
        Kind::Histogram,
        "Time to apply one event (its handler and its status change), by outcome.",
    ),
    (
        "billd_apply_failures_total",
        Kind::Counter,
        "Failed applies by event type and result (retried or dead).",
    ),
    (
        "billd_stripe_requests_duration_seconds",
        Kind::Histogram,
        "Stripe API attempts by operation and HTTP status (error for no answer), with their latency.",
    ),
    (
        "billd_http_requests_total",
        Kind::Counter,
        "HTTP requests answered by this process, by route template, method and status.",
    ),
    (
        "billd_alerts_sent_total",
        Kind::Counter,
        "Alerts delivered (or given up on) by this process, by kind and result.",
    ),
];

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

type Labels = Vec<(&'static str, String)>;

#[derive(Default)]
struct Registry {
    counters: BTreeMap<&'static str, BTreeMap<Labels, u64>>,
    histograms: BTreeMap<&'static str, BTreeMap<Labels, Histogram>>,
}

static REGISTRY: LazyLock<Mutex<Registry>> = LazyLock::new(Mutex::default);

fn registry() -> std::sync::MutexGuard<'static, Registry> {
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// The label set to count under: `labels`, or `other` once the family is full.
fn bounded<V>(series: &BTreeMap<Labels, V>, labels: Labels) -> Labels {
    if series.len() < MAX_SERIES || series.contains_key(&labels) {
        labels
    } else {
        labels
            .into_iter()
            .map(|(k, _)| (k, "other".into()))
            .collect()
    }
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).to_string())).collect()
}

/// Adds one to the counter `name` with `pairs` as labels.
pub fn count(name: &'static str, pairs: &[(&'static str, &str)]) {
    let mut r = registry();
    let series = r.counters.entry(name).or_default();
    let key = bounded(series, labels(pairs));
    *series.entry(key).or_default() += 1;
}

/// Records one observation of `seconds` in the histogram `name`.
pub fn observe(name: &'static str, pairs: &[(&'static str, &str)], seconds: f64) {
    let mut r = registry();
    let series = r.histograms.entry(name).or_default();
    let key = bounded(series, labels(pairs));
    let h = series.entry(key).or_default();
    for (i, le) in BUCKETS.iter().enumerate() {
        if seconds <= *le {
            h.buckets[i] += 1;
        }
    }
    h.count += 1;
    h.sum += seconds;
}

fn render_labels(labels: &Labels, extra: Option<(&str, &str)>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some((k, v)) = extra {
        parts.push(format!("{k}=\"{v}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Every family in the Prometheus text format (families with no series yet still get
/// their HELP and TYPE lines, so dashboards and rules can name them from the start).
pub fn render(out: &mut String) {
    let r = registry();
    for (name, kind, help) in FAMILIES {
        let _ = writeln!(out, "# HELP {name} {help}");
        match kind {
            Kind::Counter => {
                let _ = writeln!(out, "# TYPE {name} counter");
                for (labels, n) in r.counters.get(name).into_iter().flatten() {
                    let _ = writeln!(out, "{name}{} {n}", render_labels(labels, None));
                }
            }
            Kind::Histogram => {
                let _ = writeln!(out, "# TYPE {name} histogram");
                for (labels, h) in r.histograms.get(name).into_iter().flatten() {
                    for (i, le) in BUCKETS.iter().enumerate() {
                        let le = le.to_string();
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {}",
                            render_labels(labels, Some(("le", &le))),
                            h.buckets[i]
                        );
                    }
                    let _ = writeln!(
                        out,
                        "{name}_bucket{} {}",
                        render_labels(labels, Some(("le", "+Inf"))),
                        h.count
                    );
                    let _ = writeln!(out, "{name}_sum{} {}", render_labels(labels, None), h.sum);
                    let _ = writeln!(
                        out,
                        "{name}_count{} {}",
                        render_labels(labels, None),
                        h.count
                    );
                }
            }
        }
    }
}

/// The names of the families exported from memory (tests check dashboards against them).
pub fn family_names() -> impl Iterator<Item = &'static str> {
    FAMILIES.iter().map(|(name, _, _)| *name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_in_the_prometheus_format() {
        count(
            "billd_http_requests_total",
            &[("route", "/test/{id}"), ("status", "200")],
        );
        count(
            "billd_http_requests_total",
            &[("route", "/test/{id}"), ("status", "200")],
        );
        observe(
            "billd_apply_duration_seconds",
            &[("outcome", "test_only")],
            0.003,
        );
        let mut out = String::new();
        render(&mut out);
        assert!(
            out.contains("billd_http_requests_total{route=\"/test/{id}\",status=\"200\"} 2"),
            "{out}"
        );
        assert!(
            out.contains(
                "billd_apply_duration_seconds_bucket{outcome=\"test_only\",le=\"0.005\"} 1"
            )
        );
        assert!(out.contains(
            "billd_apply_duration_seconds_bucket{outcome=\"test_only\",le=\"0.0025\"} 0"
        ));
        assert!(out.contains("billd_apply_duration_seconds_count{outcome=\"test_only\"} 1"));
        assert!(out.contains("# TYPE billd_alerts_sent_total counter"));
    }

    #[test]
    fn a_family_past_its_cap_counts_new_label_sets_as_other() {
        let mut series = BTreeMap::new();
        for i in 0..MAX_SERIES {
            series.insert(vec![("type", i.to_string())], 1u64);
        }
        assert_eq!(
            bounded(&series, vec![("type", "new".into())]),
            vec![("type", "other".to_string())]
        );
        assert_eq!(
            bounded(&series, vec![("type", "7".into())]),
            vec![("type", "7".to_string())]
        );
    }
}

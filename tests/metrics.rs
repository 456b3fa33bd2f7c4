//! `GET /metrics` grows with what an operator graphs (issue 10): deliveries by type,
//! apply durations, Stripe calls, HTTP requests by route template, and the dashboard
//! and alerting rules in docs/ name only metrics billd exports.

mod common;

use std::collections::BTreeSet;

use billd::store::tokens::Scope;
use common::{WEBHOOK_SECRET, fixture_as, spawn_app_with};

/// Every metric family named in `# TYPE` lines.
fn families(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// The `billd_*` names an expression uses, without histogram suffixes.
fn names_in(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("billd_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.push(base.to_string());
        rest = &tail[end..];
    }
    names
}

#[tokio::test]
async fn metrics_count_deliveries_applies_and_requests_by_route_template() {
    let app = spawn_app_with(|c| c.server.metrics_public = true, &[WEBHOOK_SECRET]).await;
    let read = app.token(Scope::Read).await;
    let event = fixture_as("customer.created.json", "evt_metrics_1");
    assert_eq!(app.post_event(&event).await.status(), 200);
    app.settled("evt_metrics_1").await;
    assert_eq!(
        app.get("/stripe/customers/cus_nothere", &read)
            .await
            .status(),
        404
    );
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            "billd_webhook_deliveries_total{type=\"customer.created\",outcome=\"stored\"}"
        ),
        "{text}"
    );
    assert!(text.contains("billd_apply_duration_seconds_count{outcome=\"processed\"}"));
    // The route template, never the id as sent.
    assert!(text.contains(
        "billd_http_requests_total{route=\"/stripe/customers/{id}\",method=\"GET\",status=\"404\"}"
    ));
    assert!(!text.contains("cus_nothere"));
    app.shutdown().await;
}

#[tokio::test]
async fn the_dashboard_and_the_alerting_rules_name_only_exported_metrics() {
    let app = spawn_app_with(|c| c.server.metrics_public = true, &[WEBHOOK_SECRET]).await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let exported = families(&text);
    app.shutdown().await;
    let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/docs");

    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(format!("{docs}/grafana-dashboard.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 10);
    let mut used = BTreeSet::new();
    for panel in panels {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            used.extend(names_in(expr));
        }
    }

    let rules = std::fs::read_to_string(format!("{docs}/prometheus-rules.yml")).unwrap();
    assert!(rules.contains("groups:") && rules.contains("rules:"));
    let alerts = rules
        .lines()
        .filter(|l| l.trim_start().starts_with("- alert: "))
        .count();
    assert!(alerts >= 6, "{alerts} alerting rules");
    // Every rule has an expression (block scalars included) and names exported metrics.
    let exprs = rules
        .lines()
        .filter(|l| l.trim_start().starts_with("expr:"))
        .count();
    assert_eq!(exprs, alerts);
    used.extend(names_in(&rules));

    for name in &used {
        assert!(
            exported.contains(name),
            "{name} is not exported by /metrics"
        );
    }
    // And every family billd keeps in memory is on the dashboard.
    for name in billd::metrics::family_names() {
        assert!(used.contains(name), "{name} is on no panel or rule");
    }
}

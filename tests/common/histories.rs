//! Generated webhook traffic for the tests that kill, restart and compare: the lives of
//! customers, subscriptions, invoices and payments as Stripe reports them, and the
//! checks that the inbox took each event once and applied it once.

use std::{collections::BTreeSet, time::Duration};

use billd::store::Store;
use serde_json::Value;

use super::sign;

// The generator itself is self-contained, so that `benches/ingest.rs` includes it too.
#[path = "generator.rs"]
mod generator;
#[allow(unused_imports)] // a test binary that uses no histories
pub use generator::Histories;

/// The seed of this run's random choices, printed so a failure can be repeated.
pub fn seed() -> u64 {
    let seed = std::env::var("BILLD_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("seed {seed} (BILLD_TEST_SEED={seed} repeats this run's random choices)");
    seed
}

/// Distinct ids of the customers the events are about.
pub fn customers_in(events: &[Value]) -> BTreeSet<String> {
    events
        .iter()
        .filter(|e| {
            let t = e["type"].as_str().unwrap_or_default();
            t.starts_with("customer.") && !t.starts_with("customer.subscription.")
        })
        .filter_map(|e| e["data"]["object"]["id"].as_str().map(String::from))
        .collect()
}

/// Every event's (id, status, attempts), off the runtime thread.
pub fn inbox_rows(store: &Store) -> Vec<(String, String, i64)> {
    super::blocking(|| {
        let conn = store.conn().expect("a connection");
        let mut stmt = conn
            .prepare("SELECT id, status, attempts FROM events ORDER BY seq")
            .expect("read the inbox");
        stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("read the inbox")
            .map(|row| row.expect("an inbox row"))
            .collect()
    })
}

/// Asserts that every event of the inbox was applied exactly once: `processed` with one
/// attempt (`attempts` is bumped in the apply's own transaction).
pub fn assert_each_applied_once(rows: &[(String, String, i64)], what: &str) {
    let wrong: Vec<_> = rows
        .iter()
        .filter(|(_, status, attempts)| status != "processed" || *attempts != 1)
        .collect();
    assert!(
        wrong.is_empty(),
        "{what}: {} of {} events not processed exactly once (id, status, attempts): {:?}",
        wrong.len(),
        rows.len(),
        &wrong[..wrong.len().min(20)]
    );
}

/// Posts one event to a node, signed with that node's secret; true on a 2xx.
pub async fn deliver(client: &reqwest::Client, address: &str, secret: &str, body: &str) -> bool {
    let header = sign(body, secret, billd::time::now_secs());
    match client
        .post(format!("{address}/stripe/webhook"))
        .header("Stripe-Signature", header)
        .body(body.to_string())
        .timeout(Duration::from_secs(10))
        .send()
        .await
    {
        Ok(r) => r.status().is_success(),
        Err(_) => false,
    }
}

//! `billd db copy`: a populated SQLite installation moved to another database (the
//! PostgreSQL test cluster when the suite runs on PostgreSQL, else another SQLite file)
//! and back answers every report, list and token the same, and keeps its sequence
//! numbers.

mod common;

use std::{path::Path, process::Command};

use billd::{config::DatabaseConfig, store::tokens::Scope};
use common::{TestApp, WEBHOOK_SECRET, fixture_as, spawn_app_with};
use serde_json::Value;

/// The fixture events, each under an id of its own.
fn every_fixture() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
        .iter()
        .enumerate()
        .map(|(i, name)| fixture_as(name, &format!("evt_copy_{i:03}")))
        .collect()
}

/// What support and finance would look at: every answer must survive the move.
const READS: &[&str] = &[
    "/stripe/events?limit=100",
    "/stripe/customers/cus_IhGfebO16cMIGN",
    "/stripe/invoices?limit=100",
    "/stripe/payments?limit=100",
    "/stripe/flags?limit=100",
    "/stripe/plans",
    "/stripe/reports/revenue?from=2015-01-01&to=2030-01-01&interval=month",
    "/stripe/reports/mrr?at=2024-01-01T00:00:00Z",
    "/stripe/reports/subscriptions?from=2015-01-01&to=2030-01-01",
    "/stripe/reports/retention?from=2019-01-01&to=2026-01-01",
    "/stripe/reports/failed-payments?from=2015-01-01&to=2030-01-01",
    "/stripe/reports/mrr-movements?from=2019-01-01&to=2026-01-01",
];

async fn answers(app: &TestApp, token: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for path in READS {
        let r = app.get(path, token).await;
        assert_eq!(r.status(), 200, "{path}");
        let mut answer: Value = r.json().await.unwrap();
        // A customer's MRR is as of the request's second: not part of what was copied.
        if let Some(rows) = answer.get_mut("mrr").and_then(Value::as_array_mut) {
            for row in rows {
                row.as_object_mut().unwrap().remove("at");
            }
        }
        out.push((path.to_string(), answer));
    }
    out
}

/// `billd db copy` with a config naming `source`; answers the exit code and stderr.
fn db_copy(dir: &Path, source: &DatabaseConfig, args: &[&str]) -> (i32, String) {
    let config = dir.join(format!("copy-{}.toml", uuid::Uuid::new_v4().simple()));
    let mut text = format!(
        "[database]\npath = {:?}\n",
        source.path.display().to_string()
    );
    if let Some(url) = &source.url {
        text.push_str(&format!("url = {url:?}\n"));
    }
    text.push_str("[log]\ndir = \"\"\n");
    std::fs::write(&config, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_billd"))
        .arg("--config")
        .arg(&config)
        .args(["db", "copy"])
        .args(args)
        .env_remove("RUST_LOG")
        .output()
        .expect("billd runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A database config for a copy's target: a fresh PostgreSQL database, or a new
/// SQLite file in `dir`.
fn target(dir: &Path, name: &str) -> (DatabaseConfig, String) {
    let path = dir.join(format!("{name}.sqlite"));
    match common::fresh_postgres() {
        Some(url) => (
            DatabaseConfig {
                path,
                url: Some(url.clone()),
                ..Default::default()
            },
            url,
        ),
        None => (
            DatabaseConfig {
                path: path.clone(),
                ..Default::default()
            },
            path.display().to_string(),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_populated_sqlite_database_copied_and_back_answers_the_same() {
    // The installation to move: SQLite, whatever backend the suite runs on, in a
    // directory that outlives its daemon.
    let work = tempfile::tempdir().unwrap();
    let source = DatabaseConfig {
        path: work.path().join("source.sqlite"),
        ..Default::default()
    };
    let source_app = spawn_app_with(|c| c.database = source.clone(), &[WEBHOOK_SECRET]).await;
    let events = every_fixture();
    for event in &events {
        assert_eq!(source_app.post_event(event).await.status(), 200);
    }
    source_app.drained().await;
    let token = source_app.token(Scope::Read).await;
    let before = answers(&source_app, &token).await;

    // Refused while the daemon holds the SQLite file: what it takes would be missed.
    let (first, first_url) = target(work.path(), "first");
    let (code, stderr) = db_copy(work.path(), &source, &["--to", &first_url]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("stop the daemon"), "{stderr}");
    source_app.shutdown().await;

    let (code, stderr) = db_copy(work.path(), &source, &["--to", &first_url]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("copied"), "{stderr}");
    // A second copy into the now full target is refused unless asked to replace it.
    let (code, stderr) = db_copy(work.path(), &source, &["--to", &first_url]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("not empty"), "{stderr}");
    let (code, stderr) = db_copy(work.path(), &source, &["--to", &first_url, "--replace"]);
    assert_eq!(code, 0, "{stderr}");

    // And back: the copy copied again, into a SQLite file.
    let back_path = work.path().join("back.sqlite");
    let (code, stderr) = db_copy(work.path(), &first, &["--to", back_path.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let back = DatabaseConfig {
        path: back_path,
        ..Default::default()
    };

    for copied in [first, back] {
        let app = spawn_app_with(|c| c.database = copied.clone(), &[WEBHOOK_SECRET]).await;
        // The token (only its hash is stored) works, and every answer is the same.
        let after = answers(&app, &token).await;
        for ((path, a), (_, b)) in before.iter().zip(&after) {
            assert_eq!(a, b, "{path} differs after the copy to {copied:?}");
        }
        // New events get sequence numbers after the copied ones (a reused one would be
        // refused by the primary key): the new event lists first, newest by sequence.
        let event = fixture_as("customer.created.json", "evt_after_copy");
        assert_eq!(app.post_event(&event).await.status(), 200);
        app.settled("evt_after_copy").await;
        let listed: Value = app
            .get("/stripe/events?limit=1", &token)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(listed["data"][0]["id"], "evt_after_copy");
        app.shutdown().await;
    }
}

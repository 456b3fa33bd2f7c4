//! Upgrades (issue 12, docs/reliability.md): this binary started on the database of
//! the release before it (13 migrations) while events wait in its inbox and an old node
//! keeps storing webhooks into it, migrates it, and applies every event once; and a
//! database newer than this binary is refused with a message that says what to do.
//!
//! The old node is emulated: a thread storing events into the inbox as the old
//! release's ingest does (the inbox's schema has not changed since), retrying what the
//! migration's lock makes wait, as Stripe's redelivery would. Migrations only add
//! (tables, nullable columns, indexes), which is what lets an old node go on writing
//! the new schema until it is replaced.

mod common;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use billd::store::{
    Store,
    events::{self as inbox, NewEvent},
};
use common::{
    daemon::{Daemon, write_config},
    histories::{Histories, inbox_rows},
};
use serde_json::Value;

/// The schema of the release before this one (stop 19: migrations 1 to 13).
const OLD_SCHEMA: usize = 13;

fn new_event(e: &Value) -> NewEvent {
    NewEvent {
        id: e["id"].as_str().unwrap().to_string(),
        type_: e["type"].as_str().unwrap().to_string(),
        account: None,
        livemode: false,
        api_version: e["api_version"].as_str().map(str::to_string),
        created: e["created"].as_i64().unwrap(),
        payload: e.to_string(),
    }
}

/// Stores `event` as an old node's ingest would, retrying while the database is busy
/// (Stripe redelivers what was answered 503).
fn store_event(store: &Store, event: &NewEvent) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stored = store.conn().and_then(|mut conn| {
            let tx = conn.transaction()?;
            inbox::insert(&tx, event, billd::time::now_ms())?;
            tx.commit()?;
            Ok(())
        });
        match stored {
            Ok(()) => return,
            Err(e) => {
                assert!(Instant::now() < deadline, "the old node cannot store: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_binary_migrates_an_old_database_while_events_wait_and_an_old_node_writes() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[stripe]\ngap_repair_interval_secs = 0\n");
    std::fs::write(&config, text).unwrap();

    // The old release's database, with events it stored and did not apply yet.
    let old = common::blocking(|| {
        let store =
            Store::open_config(&common::database_of(dir.path())).expect("open the database");
        assert_eq!(store.migrate_to(OLD_SCHEMA).unwrap(), OLD_SCHEMA);
        store
    });
    let events: Vec<NewEvent> = Histories::build("up", 12, 2)
        .iter()
        .map(new_event)
        .collect();
    let (queued, later) = events.split_at(events.len() / 2);
    common::blocking(|| {
        for e in queued {
            store_event(&old, e);
        }
    });

    // The old node goes on taking webhooks while the new binary starts and migrates.
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (old, later, stop) = (old.clone(), later.to_vec(), stop.clone());
        std::thread::spawn(move || {
            for (i, e) in later.iter().enumerate() {
                store_event(&old, e);
                // Half of them while the new node starts, the rest after.
                if i == later.len() / 2 {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            }
        })
    };
    let daemon = Daemon::start(&config, "whsec_upgrade");
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("the old node's writes");

    let store = common::open_store(dir.path());
    assert_eq!(
        common::blocking(|| store.applied_migrations().unwrap()),
        billd::store::latest_migration(),
        "the new binary migrated the database"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while common::waiting(&store) > 0 {
        assert!(Instant::now() < deadline, "events were never applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.stop();
    let rows = inbox_rows(&store);
    assert_eq!(rows.len(), events.len(), "every event is in the inbox once");
    let wrong: Vec<_> = rows
        .iter()
        .filter(|(_, status, attempts)| status != "processed" || *attempts != 1)
        .collect();
    assert!(wrong.is_empty(), "not applied exactly once: {wrong:?}");
}

#[tokio::test]
async fn a_database_newer_than_this_binary_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let store = common::open_store(dir.path());
    let newer = billd::store::latest_migration() + 1;
    common::blocking(|| {
        let conn = store.conn().unwrap();
        match store.backend() {
            billd::store::Backend::Sqlite => conn
                .execute_batch(&format!("PRAGMA user_version = {newer}"))
                .unwrap(),
            billd::store::Backend::Postgres => {
                conn.execute(
                    "INSERT INTO billd_migrations (version, applied_at_ms) VALUES (?1, 0)",
                    [newer as i64],
                )
                .unwrap();
            }
        }
    });
    for args in [&["serve"][..], &["migrate"][..]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_billd"))
            .args(args)
            .arg("--config")
            .arg(&config)
            .env("STRIPE_SECRET_KEY", common::daemon::SECRET_KEY)
            .env("STRIPE_WEBHOOK_SECRET", "whsec_upgrade")
            .env_remove("RUST_LOG")
            .output()
            .expect("billd runs");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            !out.status.success(),
            "{args:?} started on a newer database"
        );
        assert!(
            said.contains("newer than this billd") && said.contains("upgrade billd"),
            "{args:?}: {said}"
        );
    }
    assert_eq!(
        common::blocking(|| store.applied_migrations().unwrap()),
        newer,
        "the database was left as it was"
    );
}

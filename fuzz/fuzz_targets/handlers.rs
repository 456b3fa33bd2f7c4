//! Each handler's lenient parse of `data.object`, and the handler itself. The input is
//! an event type on its first line (one of `billd::events::handled_types()`; any other
//! line picks one of them by its bytes), then the object's JSON.
//!
//! The object goes through `events::parse_object` (the parse alone, no database) and
//! through `events::apply` in a transaction on an empty SQLite mirror that is rolled
//! back after each input. Beyond never panicking: a type no handler takes is
//! `Unhandled` both ways, and an object whose parse fails fails its handler too.
#![no_main]

use std::{sync::LazyLock, time::Duration};

use billd::{
    events::{self, ApplyError, Event, Outcome},
    store::Store,
};
use libfuzzer_sys::fuzz_target;
use serde_json::value::RawValue;

/// The `created` and the clock of every event (2026-01-01).
const NOW: i64 = 1_767_225_600;

static STORE: LazyLock<(tempfile::TempDir, Store)> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(&dir.path().join("fuzz.sqlite"), 1, Duration::from_secs(5))
        .expect("open the database");
    store.migrate().expect("migrate the database");
    (dir, store)
});

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == b'\n').unwrap_or(data.len());
    let types = events::handled_types();
    let line = &data[..split];
    let type_ = types
        .iter()
        .copied()
        .find(|t| t.as_bytes() == line)
        .unwrap_or_else(|| {
            let pick = line.iter().map(|&b| usize::from(b)).sum::<usize>();
            types[pick % types.len()]
        });
    let Ok(text) = std::str::from_utf8(data.get(split + 1..).unwrap_or_default()) else {
        return;
    };
    // What the webhook stores: `data.object` a JSON object.
    let Ok(object) = serde_json::from_str::<&RawValue>(text) else {
        return;
    };
    if !object.get().starts_with('{') {
        return;
    }

    let parsed = events::parse_object(type_, object.get());
    let mut conn = STORE.1.conn().expect("a connection");
    let tx = conn.transaction().expect("a transaction");
    let event = Event {
        seq: 1,
        id: "evt_fuzz",
        type_,
        created: NOW,
        account: None,
        livemode: false,
        object,
    };
    let applied = events::apply(&tx, &event, NOW);
    drop(tx);
    match (&parsed, &applied) {
        (Ok(Outcome::Unhandled), Ok(Outcome::Unhandled)) | (Ok(Outcome::Applied), _) => {}
        (Err(_), Err(ApplyError::Parse { .. })) => {}
        (Err(ApplyError::Store(_)), _) => unreachable!("parse_object has no database"),
        _ => panic!("{type_}: parse_object {parsed:?}, apply {applied:?}"),
    }
});

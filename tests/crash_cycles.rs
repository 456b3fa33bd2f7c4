//! Crash cycles (docs/reliability.md): cycle after cycle, a burst of distinct and
//! duplicate signed events from concurrent senders, a SIGKILL of `billd serve` at a
//! random moment (while it ingests, while it applies, while `billd events replay`
//! runs, and a `billd db copy` killed part-way and run again), a restart, and Stripe's
//! redelivery of everything unacknowledged plus some acknowledged events. On PostgreSQL
//! the daemon's database connections are also terminated mid-burst. At the end every
//! event is in the inbox once, applied once (more only when replayed), and the mirror
//! equals a fresh serial replay of the inbox into an empty database, table by table.
//!
//! `BILLD_CRASH_CYCLES` sets the number of cycles (3 by default, as the README's test
//! command runs it; scripts/crash-cycles.sh runs 20). The random choices come from a
//! seed printed at the start (`BILLD_TEST_SEED=N` repeats them, not the timing).

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use billd::store::Store;
use common::{
    daemon::{Daemon, SECRET_KEY, write_config},
    histories::{Histories, deliver, inbox_rows, seed},
};
use serde_json::Value;

const SECRET: &str = "whsec_cycles";
/// Concurrent senders of a burst.
const SENDERS: usize = 6;

/// Where in a cycle the daemon is killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moment {
    /// Part-way through the burst: some deliveries unanswered.
    Ingest,
    /// Just after the burst was answered, while its events are being applied.
    Apply,
    /// While `billd events replay` applies every stored event again (the replay is
    /// killed too, at its own random moment).
    Replay,
    /// Part-way through the burst; after recovery, a `billd db copy` of the database is
    /// killed part-way and run again with `--replace`.
    Copy,
}

const MOMENTS: [Moment; 4] = [Moment::Ingest, Moment::Apply, Moment::Replay, Moment::Copy];

fn cycles() -> usize {
    std::env::var("BILLD_CRASH_CYCLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
}

/// `billd ARGS --config CONFIG`, not waited for.
fn billd(config: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_billd"))
        .args(args)
        .arg("--config")
        .arg(config)
        .env("STRIPE_SECRET_KEY", SECRET_KEY)
        .env("STRIPE_WEBHOOK_SECRET", SECRET)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("billd runs")
}

/// Runs `billd ARGS` to the end; panics with its stderr unless it exits 0.
fn billd_ok(config: &Path, args: &[&str]) {
    let out = billd(config, args).wait_with_output().expect("billd runs");
    assert!(
        out.status.success(),
        "billd {args:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// On PostgreSQL, ends every other session on the test's database (the daemon's pool
/// and its listener), as a failover or an administrator would.
fn terminate_connections(store: &Store) -> i64 {
    common::count(
        store,
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()) AS ended",
    )
}

/// Waits until nothing is pending or failed; panics after a minute.
async fn until_applied(store: &Store, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = common::waiting(store);
        if left == 0 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {left} events never applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The events of a burst, each delivered once by one of the senders, about one in five
/// a second time (by another sender, so the two race), in a random order.
fn lanes(rng: &mut fastrand::Rng, events: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..events).collect();
    rng.shuffle(&mut order);
    let mut lanes = vec![Vec::new(); SENDERS];
    for (pos, &e) in order.iter().enumerate() {
        lanes[pos % SENDERS].push(e);
        if rng.u8(0..5) == 0 {
            lanes[(pos + 1 + rng.usize(0..SENDERS - 1)) % SENDERS].push(e);
        }
    }
    lanes
}

/// What one cycle did, for the run's summary.
#[derive(Debug)]
#[allow(dead_code)] // Read through Debug, in the summary line.
struct Cycle {
    moment: Moment,
    events: usize,
    acknowledged: usize,
    /// Events not yet applied when the daemon died.
    unapplied_at_kill: i64,
    redelivered: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_cycles_lose_nothing_double_nothing_and_leave_the_serial_replays_mirror() {
    let seed = seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    // Gap repair would call Stripe, which these tests do not run.
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[stripe]\ngap_repair_interval_secs = 0\n");
    std::fs::write(&config, text).unwrap();
    let store = common::open_store(dir.path());
    let on_postgres = store.backend() == billd::store::Backend::Postgres;
    let client = reqwest::Client::new();
    let mut all_ids = BTreeSet::new();
    let mut summary = Vec::new();

    for c in 0..cycles() {
        let moment = MOMENTS[c % MOMENTS.len()];
        let events = Histories::build(&format!("cy{c}x"), 14, 2);
        let bodies: Vec<String> = events.iter().map(Value::to_string).collect();
        let ids: Vec<String> = events
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect();
        all_ids.extend(ids.iter().cloned());
        let lanes = lanes(&mut rng, events.len());
        let deliveries: usize = lanes.iter().map(Vec::len).sum();

        let daemon = Daemon::start(&config, SECRET);
        let (ack_tx, mut ack_rx) = tokio::sync::mpsc::unbounded_channel::<Option<usize>>();
        let mut senders = Vec::new();
        for lane in lanes {
            let (client, bodies, address) =
                (client.clone(), bodies.clone(), daemon.address.clone());
            let ack = ack_tx.clone();
            senders.push(tokio::spawn(async move {
                for e in lane {
                    let ok = deliver(&client, &address, SECRET, &bodies[e]).await;
                    let _ = ack.send(ok.then_some(e));
                }
            }));
        }
        drop(ack_tx);

        // The kill, at this cycle's moment.
        let kill_at = match moment {
            Moment::Ingest | Moment::Copy => rng.usize(deliveries / 10..deliveries * 9 / 10),
            Moment::Apply | Moment::Replay => usize::MAX,
        };
        let terminate_at = on_postgres.then(|| rng.usize(1..deliveries));
        let mut daemon = Some(daemon);
        let mut acked = BTreeSet::new();
        let mut answered = 0;
        let mut unapplied_at_kill = 0;
        while let Some(ack) = ack_rx.recv().await {
            answered += 1;
            acked.extend(ack);
            if Some(answered) == terminate_at {
                let ended = terminate_connections(&store);
                eprintln!("cycle {c}: terminated {ended} database sessions mid-burst");
            }
            if answered == kill_at {
                daemon.take().unwrap().kill();
                unapplied_at_kill = common::waiting(&store);
            }
        }
        for s in senders {
            s.await.unwrap();
        }
        match moment {
            Moment::Apply => {
                daemon.take().unwrap().kill();
                unapplied_at_kill = common::waiting(&store);
            }
            Moment::Replay => {
                let replay = billd(&config, &["events", "replay", "--since", "0"]);
                tokio::time::sleep(Duration::from_millis(rng.u64(0..150))).await;
                daemon.take().unwrap().kill();
                unapplied_at_kill = common::waiting(&store);
                tokio::time::sleep(Duration::from_millis(rng.u64(0..150))).await;
                kill(replay);
            }
            Moment::Ingest | Moment::Copy => {}
        }

        // Everything acknowledged survived the kill.
        let stored: BTreeSet<String> = inbox_rows(&store).into_iter().map(|r| r.0).collect();
        let lost: Vec<&String> = acked
            .iter()
            .map(|&e| &ids[e])
            .filter(|id| !stored.contains(*id))
            .collect();
        assert!(
            lost.is_empty(),
            "cycle {c}: acknowledged events were lost: {lost:?}"
        );

        // Restart; Stripe redelivers what got no 2xx, and some of what did.
        let daemon = Daemon::start(&config, SECRET);
        let mut redelivered = 0;
        for e in 0..events.len() {
            if !acked.contains(&e) || rng.u8(0..4) == 0 {
                assert!(
                    deliver(&client, &daemon.address, SECRET, &bodies[e]).await,
                    "cycle {c}: redelivery of {} failed",
                    ids[e]
                );
                redelivered += 1;
            }
        }
        until_applied(&store, &format!("cycle {c}")).await;
        daemon.stop();

        if moment == Moment::Copy {
            copy_killed_and_redone(&config, dir.path(), &store, c, &mut rng).await;
        }
        let cycle = Cycle {
            moment,
            events: events.len(),
            acknowledged: acked.len(),
            unapplied_at_kill,
            redelivered,
        };
        eprintln!("cycle {c}: {cycle:?}");
        summary.push(cycle);
    }

    // Once each in the inbox, each applied.
    let rows = inbox_rows(&store);
    let distinct: BTreeSet<&String> = rows.iter().map(|r| &r.0).collect();
    assert_eq!(rows.len(), distinct.len(), "an event id is stored twice");
    assert_eq!(
        distinct,
        all_ids.iter().collect::<BTreeSet<_>>(),
        "the inbox holds exactly the events sent"
    );
    // Applied once, or once more per replay the audit log records: `attempts` is bumped
    // in the apply's own transaction, so an apply cut short by a kill does not count.
    let replays = replays_by_event(&store);
    let wrong: Vec<_> = rows
        .iter()
        .filter(|(id, status, attempts)| {
            let most = 1 + replays.get(id).copied().unwrap_or(0);
            status != "processed" || *attempts < 1 || *attempts > most
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} events not applied exactly once (id, status, attempts): {:?}",
        wrong.len(),
        rows.len(),
        &wrong[..wrong.len().min(20)]
    );

    // The mirror is what one worker builds from the same inbox, serially.
    let fresh = tempfile::tempdir().unwrap();
    let replay = common::open_store(fresh.path());
    assert_eq!(common::copy_inbox_for_replay(&store, &replay), rows.len());
    common::apply_serially(&replay);
    common::assert_same_mirror(
        &common::mirror_dump(&replay),
        &common::mirror_dump(&store),
        "the crash-cycled mirror against a serial replay of its inbox",
    );
    let events: usize = summary.iter().map(|c| c.events).sum();
    let unacked: usize = summary.iter().map(|c| c.events - c.acknowledged).sum();
    let redelivered: usize = summary.iter().map(|c| c.redelivered).sum();
    let unapplied: i64 = summary.iter().map(|c| c.unapplied_at_kill).sum();
    eprintln!(
        "crash cycles: {} cycles passed (seed {seed}, {}): {events} events, {unacked} \
         unacknowledged at a kill, {unapplied} unapplied at a kill, {redelivered} \
         redelivered; 0 lost, 0 doubled, mirror equal to the serial replay",
        summary.len(),
        if on_postgres { "PostgreSQL" } else { "SQLite" },
    );
}

fn kill(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// How many times the audit log says each event was replayed.
fn replays_by_event(store: &Store) -> BTreeMap<String, i64> {
    common::blocking(|| {
        let conn = store.conn().expect("a connection");
        let mut stmt = conn
            .prepare(
                "SELECT target, count(*) FROM audit_log WHERE action = 'event.replay'
                 GROUP BY target",
            )
            .expect("read the audit log");
        stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("read the audit log")
            .map(|row| row.expect("an audit row"))
            .collect()
    })
}

/// `billd db copy` to a SQLite file, killed at a random moment, then run again with
/// `--replace`: the copy holds the same inbox and mirror as its source.
async fn copy_killed_and_redone(
    config: &Path,
    dir: &Path,
    store: &Store,
    c: usize,
    rng: &mut fastrand::Rng,
) {
    let target = dir.join(format!("copy-{c}.db"));
    let to = target.to_str().expect("a UTF-8 path");
    let copy = billd(config, &["db", "copy", "--to", to]);
    tokio::time::sleep(Duration::from_millis(rng.u64(0..200))).await;
    kill(copy);
    billd_ok(config, &["db", "copy", "--to", to, "--replace"]);
    let copied = common::blocking(|| {
        Store::open(&target, 2, Duration::from_secs(5)).expect("open the copy")
    });
    assert_eq!(
        inbox_rows(&copied),
        inbox_rows(store),
        "cycle {c}: the copy's inbox"
    );
    common::assert_same_mirror(
        &common::mirror_dump(store),
        &common::mirror_dump(&copied),
        &format!("cycle {c}: the copy's mirror"),
    );
}

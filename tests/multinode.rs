//! Several billd nodes on one PostgreSQL database (DESIGN §9): every node takes
//! webhooks and every node's workers apply them, so an event must still be stored once
//! and applied once, whichever node took it (or took it again), when one node dies
//! mid-burst, and whichever worker claimed which event in which order. The mirror they
//! leave is compared with a serial replay of the same inbox (same `seq`s) by one worker:
//! the ordering rule promises the two cannot differ.
//!
//! These tests need a shared server database and run only on PostgreSQL
//! (`BILLD_TEST_POSTGRES`); their SQLite equivalents are tests/crash.rs (one process).
//! The random choices (arrival order, duplicates, claim order) come from a seed printed
//! at the start; `BILLD_TEST_SEED=N` repeats them (not the timing, which is the
//! machine's).

mod common;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use billd::{
    config::StripeMode,
    store::{
        Store,
        events::{self as inbox, NewEvent},
    },
    worker::{Step, Worker},
};
use common::{
    daemon::Daemon,
    histories::{Histories, assert_each_applied_once, customers_in, deliver, inbox_rows, seed},
};
use serde_json::Value;

// ---------------------------------------------------------------------------------
// Three nodes, one killed mid-burst.

const NODES: usize = 3;
/// Concurrent senders of the burst (Stripe delivers many events at once).
const SENDERS: usize = 4;
/// The node that is killed mid-burst.
const KILLED: usize = 1;

/// One node: its own directory (config, logs) and webhook secret, the shared database.
struct Node {
    _dir: tempfile::TempDir,
    config: PathBuf,
    secret: String,
}

impl Node {
    fn new(shared: &Path, n: usize) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("billd.toml");
        // As daemon::write_config, but every node names the database of `shared`; gap
        // repair is off (it would call Stripe).
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_secs = 5\n\
             {db}\
             [workers]\npoll_interval_ms = 50\nbackoff_base_ms = 10\nbackoff_max_ms = 20\n\
             [stripe]\ngap_repair_interval_secs = 0\n\
             [log]\nformat = \"json\"\nlevel = \"info\"\ndir = \"{logs}\"\n",
            db = common::database_toml(shared),
            logs = dir.path().join("logs").display(),
        );
        std::fs::write(&config, text).unwrap();
        Node {
            _dir: dir,
            config,
            secret: format!("whsec_multinode_{n}"),
        }
    }

    fn start(&self) -> Daemon {
        Daemon::start(&self.config, &self.secret)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_on_one_database_store_and_apply_every_event_once_even_when_one_is_killed() {
    if !common::on_postgres() {
        // On SQLite, tests/crash.rs is the equivalent: several nodes need a server database.
        return;
    }
    let seed = seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    let shared = tempfile::tempdir().unwrap();
    let store = common::open_store(shared.path());
    let nodes: Vec<Node> = (0..NODES).map(|n| Node::new(shared.path(), n)).collect();
    let mut daemons: Vec<Option<Daemon>> = nodes.iter().map(|n| Some(n.start())).collect();
    let client = reqwest::Client::new();

    let events = Histories::build("mn", 30, 2);
    let bodies: Vec<String> = events.iter().map(Value::to_string).collect();
    let ids: Vec<String> = events
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();

    // The burst: events in a random order, round-robin over the nodes; about one in
    // five is delivered again at once, to another node. An event's deliveries stay in
    // one sender, in order (a redelivery follows its first delivery).
    let mut order: Vec<usize> = (0..events.len()).collect();
    rng.shuffle(&mut order);
    let mut lanes: Vec<Vec<(usize, usize)>> = vec![Vec::new(); SENDERS];
    let mut deliveries = 0;
    for (pos, &e) in order.iter().enumerate() {
        let node = pos % NODES;
        let lane = &mut lanes[pos % SENDERS];
        lane.push((e, node));
        deliveries += 1;
        if rng.u8(0..5) == 0 {
            lane.push((e, (node + 1 + rng.usize(0..NODES - 1)) % NODES));
            deliveries += 1;
        }
    }
    let addresses: Vec<String> = daemons
        .iter()
        .map(|d| d.as_ref().unwrap().address.clone())
        .collect();
    let secrets: Vec<String> = nodes.iter().map(|n| n.secret.clone()).collect();
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel::<Option<usize>>();
    let mut senders = Vec::new();
    for lane in lanes {
        let (client, bodies) = (client.clone(), bodies.clone());
        let (addresses, secrets) = (addresses.clone(), secrets.clone());
        let acked = acked_tx.clone();
        senders.push(tokio::spawn(async move {
            for (e, node) in lane {
                let ok = deliver(&client, &addresses[node], &secrets[node], &bodies[e]).await;
                let _ = acked.send(ok.then_some(e));
            }
        }));
    }
    drop(acked_tx);

    // SIGKILL one node once a third of the deliveries were answered.
    let started = Instant::now();
    let mut acked = BTreeSet::new();
    let mut answered = 0;
    while let Some(ack) = acked_rx.recv().await {
        answered += 1;
        acked.extend(ack);
        if answered == deliveries / 3 {
            daemons[KILLED].take().unwrap().kill();
        }
    }
    for s in senders {
        s.await.unwrap();
    }
    eprintln!(
        "burst: {} events, {deliveries} deliveries, {} events acknowledged, in {:?}",
        events.len(),
        acked.len(),
        started.elapsed()
    );
    assert!(
        acked.len() < events.len(),
        "the kill came too late to leave anything unacknowledged"
    );

    // Every acknowledged event survived the kill.
    let stored: BTreeSet<String> = inbox_rows(&store).into_iter().map(|r| r.0).collect();
    let lost: Vec<&String> = acked
        .iter()
        .map(|&e| &ids[e])
        .filter(|id| !stored.contains(*id))
        .collect();
    assert!(lost.is_empty(), "acknowledged events were lost: {lost:?}");

    // The killed node comes back; Stripe redelivers what got no 2xx, and some of what
    // did, to whichever node the load balancer picks.
    daemons[KILLED] = Some(nodes[KILLED].start());
    let addresses: Vec<String> = daemons
        .iter()
        .map(|d| d.as_ref().unwrap().address.clone())
        .collect();
    let mut redelivered = 0;
    for e in 0..events.len() {
        if !acked.contains(&e) || rng.u8(0..4) == 0 {
            let node = rng.usize(0..NODES);
            assert!(
                deliver(&client, &addresses[node], &secrets[node], &bodies[e]).await,
                "redelivery of {} to node {node} failed",
                ids[e]
            );
            redelivered += 1;
        }
    }
    eprintln!("redelivered {redelivered} events");

    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = common::waiting(&store);
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{left} events never applied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "applied everything {:?} after the burst began",
        started.elapsed()
    );
    for daemon in daemons.into_iter().flatten() {
        daemon.stop();
    }

    // Stored once each, applied once each.
    let rows = inbox_rows(&store);
    let distinct: BTreeSet<&String> = rows.iter().map(|r| &r.0).collect();
    assert_eq!(rows.len(), distinct.len(), "an event id is stored twice");
    assert_eq!(
        distinct,
        ids.iter().collect::<BTreeSet<_>>(),
        "the inbox holds exactly the events sent"
    );
    assert_each_applied_once(&rows, "three nodes");

    // The mirror is the one a single worker builds from the same inbox, serially.
    let replay = common::fresh_postgres_store();
    assert_eq!(common::copy_inbox_for_replay(&store, &replay), events.len());
    common::apply_serially(&replay);
    assert_each_applied_once(&inbox_rows(&replay), "the serial replay");
    let (nodes_mirror, serial_mirror) = (common::mirror_dump(&store), common::mirror_dump(&replay));
    assert_eq!(
        serial_mirror["customers"].len(),
        customers_in(&events).len(),
        "the replay mirrors every customer"
    );
    common::assert_same_mirror(
        &serial_mirror,
        &nodes_mirror,
        &format!("seed {seed}: a serial replay (expected) vs three nodes (got)"),
    );
}

// ---------------------------------------------------------------------------------
// Two workers racing over the same objects.

/// Stores `events` in this order (so two fresh inboxes get the same `seq`s), all due.
fn store_inbox(store: &Store, events: &[Value]) {
    common::blocking(|| {
        let mut conn = store.conn().expect("a connection");
        let tx = conn.transaction().expect("a transaction");
        for e in events {
            let event = NewEvent {
                id: e["id"].as_str().unwrap().into(),
                type_: e["type"].as_str().unwrap().into(),
                account: None,
                livemode: false,
                api_version: e["api_version"].as_str().map(String::from),
                created: e["created"].as_i64().unwrap(),
                payload: e.to_string(),
            };
            inbox::insert(&tx, &event, 0).expect("store an event");
        }
        tx.commit().expect("commit the inbox");
    })
}

/// (seq, id) of every event, in seq order.
fn seqs(store: &Store) -> Vec<(i64, String)> {
    common::blocking(|| {
        let conn = store.conn().expect("a connection");
        let mut stmt = conn
            .prepare("SELECT seq, id FROM events ORDER BY seq")
            .unwrap();
        stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    })
}

/// What one worker's steps came to.
#[derive(Debug, Default)]
struct Tally {
    applied: usize,
    busy: usize,
    contention_errors: usize,
}

/// Runs `workers` workers on OS threads of their own, each stepping batches of `batch`
/// until nothing waits; answers each worker's tally.
fn apply_concurrently(store: &Store, workers: usize, batch: usize) -> Vec<Tally> {
    let deadline = Instant::now() + Duration::from_secs(120);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                s.spawn(|| {
                    let worker =
                        Worker::new(store.clone(), common::replay_workers(), StripeMode::Test);
                    let mut tally = Tally::default();
                    loop {
                        match worker.step_batch(batch) {
                            // Nothing claimable: done if nothing waits, else the other
                            // worker holds what is left (or a retry is not due yet).
                            Ok(steps) if steps.is_empty() => {
                                if common::waiting(store) == 0 {
                                    return tally;
                                }
                            }
                            Ok(steps) => {
                                for step in steps {
                                    match step {
                                        Step::Applied { .. } => tally.applied += 1,
                                        // Its object was being applied by the other
                                        // worker: it waits, untouched, for a later claim.
                                        Step::Busy { .. } => tally.busy += 1,
                                        other => panic!("an event did not apply: {other:?}"),
                                    }
                                }
                            }
                            // The other worker held a row this one needed: try again.
                            Err(e) if e.is_contention() => tally.contention_errors += 1,
                            Err(e) => panic!("a worker step failed: {e}"),
                        }
                        assert!(Instant::now() < deadline, "the workers did not finish");
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a worker thread"))
            .collect()
    })
}

#[test]
fn two_workers_applying_shuffled_streams_of_the_same_objects_match_one_worker_in_order() {
    if !common::on_postgres() {
        // On SQLite, tests/crash.rs is the equivalent: SQLite serialises applies (one
        // writer), so two workers cannot race there.
        return;
    }
    let seed = seed();
    let mut rng = fastrand::Rng::with_seed(seed);
    // Few objects, many events each: the two workers keep meeting on the same ones.
    let mut events = Histories::build("sh", 12, 10);
    // Arrival order: by `created`, with some neighbours swapped (Stripe delivers
    // roughly, not strictly, in order).
    events.sort_by_key(|e| e["created"].as_i64());
    for _ in 0..events.len() / 8 {
        let i = rng.usize(0..events.len() - 1);
        events.swap(i, i + 1);
    }

    let (a, b) = (
        common::fresh_postgres_store(),
        common::fresh_postgres_store(),
    );
    store_inbox(&a, &events);
    store_inbox(&b, &events);
    let seqs_b = seqs(&b);
    assert_eq!(
        seqs(&a),
        seqs_b,
        "both inboxes hold the same events at the same seqs"
    );
    // B's claim order is a shuffle of seq order: workers claim by next_attempt_ms first.
    let mut due: Vec<i64> = (1..=seqs_b.len() as i64).collect();
    rng.shuffle(&mut due);
    common::blocking(|| {
        let mut conn = b.conn().unwrap();
        let tx = conn.transaction().unwrap();
        for ((seq, _), at) in seqs_b.iter().zip(&due) {
            tx.execute(
                "UPDATE events SET next_attempt_ms = ?2 WHERE seq = ?1",
                billd::params![seq, at],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    });

    let started = Instant::now();
    common::apply_serially(&a);
    let serial = started.elapsed();
    let started = Instant::now();
    let tallies = apply_concurrently(&b, 2, 8);
    eprintln!(
        "{} events: one worker in order {serial:?}; two workers shuffled {:?}: {tallies:?}",
        events.len(),
        started.elapsed()
    );
    assert!(
        tallies.iter().all(|t| t.applied > 0),
        "both workers must have applied events for the test to mean anything: {tallies:?}"
    );

    assert_each_applied_once(&inbox_rows(&a), "one worker in order");
    assert_each_applied_once(&inbox_rows(&b), "two workers, shuffled");
    let (in_order, shuffled) = (common::mirror_dump(&a), common::mirror_dump(&b));
    assert_eq!(
        in_order["customers"].len(),
        customers_in(&events).len(),
        "the in-order apply mirrors every customer"
    );
    common::assert_same_mirror(
        &in_order,
        &shuffled,
        &format!("seed {seed}: one worker in seq order (expected) vs two workers, shuffled (got)"),
    );
}

#[test]
fn nodes_starting_together_apply_each_migration_once() {
    if !common::on_postgres() {
        // SQLite serialises migrations with its write lock; one file, one machine.
        return;
    }
    let url = common::fresh_postgres().expect("on PostgreSQL");
    let stores: Vec<Store> = (0..4)
        .map(|_| Store::open_postgres(&url, None, 2, Duration::from_secs(5)).unwrap())
        .collect();
    // Four processes' worth of `billd serve` starting at the same moment.
    let barrier = std::sync::Barrier::new(stores.len());
    let applied: Vec<usize> = std::thread::scope(|s| {
        let handles: Vec<_> = stores
            .iter()
            .map(|store| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    store.migrate().expect("every node's migrate succeeds")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let latest = billd::store::latest_migration();
    assert_eq!(applied.iter().sum::<usize>(), latest, "{applied:?}");
    assert!(
        applied.contains(&latest),
        "one node applied them all: {applied:?}"
    );
    for store in &stores {
        assert_eq!(store.applied_migrations().unwrap(), latest);
    }
}

// ---------------------------------------------------------------------------------
// One batch: a failure rolls back alone, a busy object waits.

/// A minimal stored event of `type_` about the object `object_id`.
fn bare_event(id: &str, type_: &str, object_id: &str) -> Value {
    serde_json::json!({
        "id": id, "object": "event", "type": type_, "created": 1, "livemode": false,
        "data": {"object": {"id": object_id}}
    })
}

#[test]
fn a_batch_on_postgresql_rolls_a_failure_back_alone_and_leaves_busy_objects_waiting() {
    if !common::on_postgres() {
        // On SQLite, the worker's unit tests hold the same (one writer: nothing is busy).
        return;
    }
    let store = common::fresh_postgres_store();
    let worker = Worker::new(store.clone(), common::replay_workers(), StripeMode::Test);
    common::blocking(|| {
        store
            .conn()
            .unwrap()
            .execute_batch(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS
                     $$ BEGIN RAISE EXCEPTION 'the test refuses prices'; END $$;
                 CREATE TRIGGER refuse_prices BEFORE INSERT ON prices
                     FOR EACH ROW EXECUTE FUNCTION refuse();",
            )
            .unwrap()
    });
    // The batch runs first without savepoints; the refused price rolls it all back, and
    // it runs again with one savepoint per event: the events around the failure stand.
    store_inbox(
        &store,
        &[
            bare_event("evt_f1", "customer.created", "cus_f1"),
            bare_event("evt_f2", "price.created", "price_f2"),
            bare_event("evt_f3", "customer.created", "cus_f3"),
        ],
    );
    let steps = common::blocking(|| worker.step_batch(10).unwrap());
    let id = |s: &str| s.to_string();
    assert_eq!(
        steps,
        vec![
            Step::Applied { id: id("evt_f1") },
            Step::Retried { id: id("evt_f2") },
            Step::Applied { id: id("evt_f3") },
        ]
    );
    let event = |id: &str| {
        common::blocking(|| inbox::get(&store.conn().unwrap(), id).expect("a stored event"))
    };
    assert_eq!(event("evt_f2").status, inbox::Status::Failed);
    assert_eq!(event("evt_f2").attempts, 1, "one attempt, counted once");
    assert_eq!(event("evt_f1").attempts, 1, "applied once");
    assert_eq!(
        common::count(
            &store,
            "SELECT count(*) FROM customers WHERE id IN ('cus_f1', 'cus_f3')"
        ),
        2
    );

    // Another transaction holds cus_b1: its two events wait, untouched, and so does
    // nothing else; once it commits, they apply.
    store_inbox(
        &store,
        &[
            bare_event("evt_b1", "customer.created", "cus_b1"),
            bare_event("evt_b2", "customer.updated", "cus_b1"),
            bare_event("evt_b3", "customer.created", "cus_b3"),
        ],
    );
    common::blocking(|| {
        let mut holder = store.conn().unwrap();
        let tx = holder.transaction().unwrap();
        tx.execute_batch("SELECT pg_advisory_xact_lock(hashtextextended('cus_b1', 0))")
            .unwrap();
        let steps: Vec<Step> = worker
            .step_batch(10)
            .unwrap()
            .into_iter()
            // The refused price may be due again: its steps are not this part's.
            .filter(|s| !format!("{s:?}").contains("evt_f2"))
            .collect();
        assert_eq!(
            steps,
            vec![
                Step::Busy { id: id("evt_b1") },
                Step::Busy { id: id("evt_b2") },
                Step::Applied { id: id("evt_b3") },
            ]
        );
        tx.commit().unwrap();
    });
    for e in ["evt_b1", "evt_b2"] {
        assert_eq!(event(e).status, inbox::Status::Pending, "{e} waits");
        assert_eq!(event(e).attempts, 0, "{e}: waiting is not an attempt");
    }
    let steps = common::blocking(|| worker.step_batch(10).unwrap());
    assert!(
        steps.contains(&Step::Applied { id: id("evt_b1") }),
        "{steps:?}"
    );
    assert!(
        steps.contains(&Step::Applied { id: id("evt_b2") }),
        "{steps:?}"
    );
}

// ---------------------------------------------------------------------------------
// Another node's commit wakes this node's workers.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_another_node_stores_wake_this_nodes_idle_workers_at_once() {
    if !common::on_postgres() {
        // SQLite has one machine: its ingest wakes its own workers.
        return;
    }
    // Idle workers sleep a minute between polls: only the notification can wake them.
    let app = common::spawn_app_with(
        |c| c.workers.poll_interval_ms = 60_000,
        &[common::WEBHOOK_SECRET],
    )
    .await;
    // Let the workers find the inbox empty and go to sleep.
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Stored as another node's ingest stores a batch: through a session of its own.
    let url = common::database_of(app.dir.path())
        .url
        .expect("on PostgreSQL");
    common::blocking(|| {
        let other = Store::open_postgres(&url, None, 1, Duration::from_secs(5)).unwrap();
        let event = bare_event("evt_wake", "customer.created", "cus_wake");
        let new = NewEvent {
            id: "evt_wake".into(),
            type_: "customer.created".into(),
            account: None,
            livemode: false,
            api_version: None,
            created: 1,
            payload: event.to_string(),
        };
        let outcomes = inbox::store_batch(&mut other.conn().unwrap(), &[&new], 0).unwrap();
        assert_eq!(outcomes, vec![inbox::Inserted::New]);
    });
    let started = Instant::now();
    while common::count(
        &app.store,
        "SELECT count(*) FROM events WHERE id = 'evt_wake' AND status = 'processed'",
    ) == 0
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the other node's event was not applied: its notification did not wake the workers"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

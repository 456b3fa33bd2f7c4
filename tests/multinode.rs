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
use common::{daemon::Daemon, fixture_as, sign};
use serde_json::{Value, json};

/// The seed of this run's random choices, printed so a failure can be repeated.
fn seed() -> u64 {
    let seed = std::env::var("BILLD_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("seed {seed} (BILLD_TEST_SEED={seed} repeats this run's random choices)");
    seed
}

/// The first `created` of the generated histories (2025-01-01T00:00:00Z).
const T0: i64 = 1_735_689_600;

/// The webhook events of a set of objects' lives, built from the fixtures: customers
/// created, updated and sometimes deleted; subscriptions created, updated and some
/// canceled, with their invoices; payment intents with their charges (a failed attempt
/// before the success for some, refunds and later charge updates for others). Each
/// object's events have increasing `created` times, except that a charge and its
/// intent report one change in the same second, as Stripe's do. Every event has its
/// own id; every object carries the whole state of its time, as Stripe sends it.
struct Histories {
    prefix: &'static str,
    events: Vec<Value>,
}

impl Histories {
    /// `groups` customers (each with a payment; every other one with a subscription and
    /// its invoice), each customer and subscription with `updates` updates.
    fn build(prefix: &'static str, groups: usize, updates: usize) -> Vec<Value> {
        let mut h = Histories {
            prefix,
            events: Vec::new(),
        };
        for g in 0..groups {
            let base = T0 + g as i64 * 10_000;
            h.customer(g, base, updates);
            let subscribed = g.is_multiple_of(2);
            if subscribed {
                h.subscription(g, base + 5, updates);
                h.invoice(g, base + 6);
            }
            h.payment(g, base + 7, subscribed);
        }
        h.events
    }

    /// One event from `fixture`, as `type_` at `created`, its object's fields set from
    /// `fields` (test mode throughout).
    fn push(&mut self, fixture: &str, type_: &str, created: i64, fields: Value) {
        let id = format!("evt_{}_{:05}", self.prefix, self.events.len());
        let mut event = fixture_as(fixture, &id);
        event["type"] = type_.into();
        event["created"] = created.into();
        event["livemode"] = false.into();
        let object = event["data"]["object"]
            .as_object_mut()
            .expect("a fixture with an object");
        object.insert("livemode".into(), false.into());
        for (k, v) in fields.as_object().expect("fields").clone() {
            object.insert(k, v);
        }
        self.events.push(event);
    }

    fn id(&self, kind: &str, g: usize) -> String {
        format!("{kind}_{}{g}", self.prefix)
    }

    fn amount(g: usize, subscribed: bool) -> i64 {
        if subscribed {
            1500 + 500 * (g % 3) as i64
        } else {
            1000 + g as i64
        }
    }

    fn customer(&mut self, g: usize, at: i64, updates: usize) {
        let id = self.id("cus", g);
        let state = |k: usize| {
            json!({
                "id": id, "created": at,
                "email": format!("c{g}.v{k}@example.com"), "name": format!("Customer {g} v{k}"),
            })
        };
        self.push("customer.created.json", "customer.created", at, state(0));
        for k in 1..=updates {
            let t = at + 10 * k as i64;
            self.push("customer.created.json", "customer.updated", t, state(k));
        }
        if g % 7 == 3 {
            let t = at + 10 * (updates as i64 + 1);
            self.push(
                "customer.created.json",
                "customer.deleted",
                t,
                state(updates),
            );
        }
    }

    fn subscription(&mut self, g: usize, at: i64, updates: usize) {
        let (id, customer) = (self.id("sub", g), self.id("cus", g));
        let (item, price) = (self.id("si", g), format!("price_{}{}", self.prefix, g % 3));
        let canceled = g.is_multiple_of(4);
        let state = |k: usize, t: i64, status: &str| {
            json!({
                "id": id, "customer": customer, "status": status, "currency": "usd",
                "created": at, "start_date": at,
                "current_period_start": at, "current_period_end": at + 30 * 86_400,
                "cancel_at_period_end": canceled && k == updates,
                "canceled_at": if status == "canceled" { json!(t) } else { Value::Null },
                "ended_at": if status == "canceled" { json!(t) } else { Value::Null },
                "plan": null, "quantity": null,
                "items": {"object": "list", "has_more": false, "data": [{
                    "id": item, "object": "subscription_item", "subscription": id,
                    "quantity": k + 1,
                    "price": {
                        "id": price, "object": "price", "currency": "usd",
                        "unit_amount": Self::amount(g, true), "type": "recurring",
                        "recurring": {"interval": "month", "interval_count": 1},
                    },
                }]},
            })
        };
        let fixture = "customer.subscription.created.json";
        let created = state(0, at, "active");
        self.push(fixture, "customer.subscription.created", at, created);
        for k in 1..=updates {
            let t = at + 10 * k as i64;
            let updated = state(k, t, "active");
            self.push(fixture, "customer.subscription.updated", t, updated);
        }
        if canceled {
            let t = at + 10 * (updates as i64 + 1);
            let deleted = state(updates, t, "canceled");
            self.push(fixture, "customer.subscription.deleted", t, deleted);
        }
    }

    fn invoice(&mut self, g: usize, at: i64) {
        let (id, customer) = (self.id("in", g), self.id("cus", g));
        let (subscription, intent) = (self.id("sub", g), self.id("pi", g));
        let amount = Self::amount(g, true);
        let state = |status: &str| {
            let paid = if status == "paid" { amount } else { 0 };
            json!({
                "id": id, "customer": customer, "subscription": subscription,
                "status": status, "number": format!("N-{g}"), "currency": "usd",
                "amount_due": amount, "amount_paid": paid, "amount_remaining": amount - paid,
                "total": amount, "created": at, "period_start": at, "period_end": at,
                "payment_intent": if status == "draft" { Value::Null } else { json!(intent) },
            })
        };
        let fixture = "invoice.paid.json";
        self.push(fixture, "invoice.created", at, state("draft"));
        self.push(fixture, "invoice.finalized", at + 1, state("open"));
        self.push(fixture, "invoice.paid", at + 3, state("paid"));
    }

    fn payment(&mut self, g: usize, at: i64, subscribed: bool) {
        let (intent, customer) = (self.id("pi", g), self.id("cus", g));
        let invoice = if subscribed {
            json!(self.id("in", g))
        } else {
            Value::Null
        };
        let (failed_charge, charge) = (format!("{}a", self.id("ch", g)), self.id("ch", g));
        let amount = Self::amount(g, subscribed);
        let (refund, refund_at) = (self.id("re", g), (g % 5 == 1).then_some(at + 40));
        let intent_state = |status: &str, latest: Option<&str>, error: Value| {
            json!({
                "id": intent, "customer": customer, "invoice": invoice, "amount": amount,
                "currency": "usd", "created": at, "status": status,
                "amount_received": if status == "succeeded" { amount } else { 0 },
                "latest_charge": latest, "last_payment_error": error,
            })
        };
        // The charge as of `t`: refunded by then or not.
        let charge_state = |id: &str, t: i64, succeeded: bool, description: &str| {
            let refunds: Vec<Value> = refund_at
                .filter(|r| *r <= t)
                .map(|r| {
                    json!({
                        "id": refund, "object": "refund", "amount": 500,
                        "charge": id, "payment_intent": intent, "currency": "usd",
                        "created": r, "status": "succeeded", "reason": null,
                    })
                })
                .into_iter()
                .collect();
            let refunded: i64 = refunds.len() as i64 * 500;
            json!({
                "id": id, "payment_intent": intent, "customer": customer, "invoice": invoice,
                "amount": amount, "currency": "usd", "created": at + 1,
                "description": description,
                "status": if succeeded { "succeeded" } else { "failed" },
                "paid": succeeded, "captured": succeeded,
                "amount_captured": if succeeded { amount } else { 0 },
                "amount_refunded": refunded, "refunded": false,
                "failure_code": if succeeded { Value::Null } else { json!("card_declined") },
                "failure_message": if succeeded { Value::Null } else { json!("Your card was declined.") },
                "outcome": {
                    "network_status": if succeeded { "approved_by_network" } else { "declined_by_network" },
                    "reason": null, "risk_level": "normal", "risk_score": 20,
                    "seller_message": "", "type": if succeeded { "authorized" } else { "issuer_declined" },
                },
                "refunds": {"object": "list", "has_more": false, "data": refunds},
            })
        };
        let created = intent_state("requires_payment_method", None, Value::Null);
        self.push(
            "payment_intent.created.json",
            "payment_intent.created",
            at,
            created,
        );
        if g.is_multiple_of(3) {
            let failed = charge_state(&failed_charge, at + 1, false, "first attempt");
            self.push("charge.succeeded.json", "charge.failed", at + 1, failed);
            let error = json!({"code": "card_declined", "type": "card_error"});
            let failed = intent_state("requires_payment_method", Some(&failed_charge), error);
            let fixture = "payment_intent.payment_failed.json";
            self.push(fixture, "payment_intent.payment_failed", at + 1, failed);
        }
        let succeeded = charge_state(&charge, at + 2, true, "payment");
        self.push(
            "charge.succeeded.json",
            "charge.succeeded",
            at + 2,
            succeeded,
        );
        let succeeded = intent_state("succeeded", Some(&charge), Value::Null);
        self.push(
            "payment_intent.succeeded.json",
            "payment_intent.succeeded",
            at + 2,
            succeeded,
        );
        if let Some(t) = refund_at {
            let refunded = charge_state(&charge, t, true, "payment");
            self.push("charge.refunded.json", "charge.refunded", t, refunded);
        }
        if g % 2 == 1 {
            let t = at + 50;
            let updated = charge_state(&charge, t, true, "payment, described later");
            self.push("charge.succeeded.json", "charge.updated", t, updated);
        }
    }
}

/// Distinct ids of the customers the events are about.
fn customers_in(events: &[Value]) -> BTreeSet<String> {
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
fn inbox_rows(store: &Store) -> Vec<(String, String, i64)> {
    common::blocking(|| {
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
fn assert_each_applied_once(rows: &[(String, String, i64)], what: &str) {
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

/// Posts one event to a node, signed with that node's secret; true on a 2xx.
async fn deliver(client: &reqwest::Client, address: &str, secret: &str, body: &str) -> bool {
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

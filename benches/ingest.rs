//! Webhook ingest and apply benchmark (DESIGN §8, issue 9). Run: `cargo bench --bench ingest`.
//!
//! Starts the real `billd serve` (release build) on loopback with a fresh database and
//! sends it a realistic burst from concurrent keep-alive connections: the lives of
//! customers, subscriptions, invoices, payment intents, charges and refunds
//! (`tests/common/generator.rs`), every event with its own id, some sent twice, arrival
//! shuffled within a window so some arrive after a newer event of their object. The same
//! deliveries go first to a minimal server in the same run (the yardstick of issue 9: an
//! axum server that verifies the signature with billd's verifier, reads the envelope and
//! group-commits to SQLite, WAL, `synchronous=FULL`), so the ratio billd/minimal cancels
//! the disk's mood. It prints: an fsync probe; ingest req/s with p50/p99 for both servers
//! and their ratio (every 200 means the event was fsync-committed); billd's apply
//! events/s while ingest ran and after it; the time from the first delivery until the
//! burst is fully applied; billd's start to ready (spawn to `/readyz` 200) on a fresh
//! database and on restart over the full inbox; peak (VmHWM) and idle RSS (VmRSS after
//! the drain and a second idle); one worker applying alone over a pre-filled inbox; and
//! each target of issue 9, met or not.
//!
//! Knobs (environment):
//! - `BENCH_EVENTS` distinct events of the burst (default 20000; 100000 for the issue's
//!   burst), `BENCH_CONCURRENCY` connections (default 64)
//! - `BENCH_DUPLICATES` percent of events delivered twice (default 3), `BENCH_DELAYED`
//!   percent delivered late (default 10), by up to `BENCH_WINDOW` deliveries (default
//!   200), `BENCH_SEED` the random seed (default 9)
//! - `BENCH_WORKERS` billd's `[workers] count`, `BENCH_LOG_LEVEL` its `[log] level`
//!   (default billd's: a line per delivery), `BENCH_MINIMAL=0` skips the minimal
//!   server, `BENCH_FSYNCS` writes of the fsync probe (default 200)
//! - `BENCH_HISTORY=N` (SQLite) fills the database with N events already processed and
//!   their objects (N/10 customers and payments, N/20 subscriptions and invoices, random
//!   ids, 1 KB payloads) before the burst, and the one-worker database with a copy: what
//!   applying costs once the inbox and the mirror hold a history
//! - `BENCH_PERF=FILE` records `perf record -g` of the (first) daemon from the first
//!   delivery to the end of the drain into FILE
//! - PostgreSQL: `BENCH_POSTGRES=postgres://user@host:port/postgres` (an admin URL; each
//!   run creates fresh databases there) and `BENCH_NODES=N` (default 1) starts N daemons
//!   on one database, the senders spread over them round-robin. The minimal server stays
//!   on SQLite.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader, Read, Write},
    path::Path,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use billd::{
    config::{StripeMode, WorkerConfig},
    store::{Store, events::NewEvent},
    worker::{Step, Worker},
};
use serde_json::Value;

#[allow(dead_code)] // the tests' helpers of the generator are not all used here
#[path = "../tests/common/generator.rs"]
mod generator;
#[path = "ingest/minimal.rs"]
mod minimal;

const SECRET: &str = "whsec_bench";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The burst: `total` distinct events (whole lives, the last one cut short) and the order
/// they are delivered in, as indexes into the events (a duplicate appears twice).
struct Workload {
    events: Vec<Value>,
    bodies: Arc<Vec<String>>,
    deliveries: Arc<Vec<usize>>,
    customers: usize,
    late: usize,
}

impl Workload {
    fn build(
        total: usize,
        duplicates_pct: usize,
        delayed_pct: usize,
        window: usize,
        seed: u64,
    ) -> Workload {
        let mut groups = total / 10 + 1;
        let mut events = loop {
            let events = generator::Histories::build("b", groups, 2);
            if events.len() >= total {
                break events;
            }
            groups = groups * 3 / 2 + 1;
        };
        events.truncate(total);
        let customers = events
            .iter()
            .filter(|e| e["type"] == "customer.created")
            .count();
        // Mostly in order, as Stripe delivers: `delayed_pct` of the events arrive up to
        // `window` deliveries late, and a second delivery comes up to four windows after
        // its event.
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut keyed: Vec<(usize, usize)> = Vec::with_capacity(total + total / 20);
        for i in 0..total {
            let lag = if rng.usize(0..100) < delayed_pct {
                rng.usize(1..=window)
            } else {
                0
            };
            keyed.push((i + lag, i));
            if rng.usize(0..100) < duplicates_pct {
                keyed.push((i + rng.usize(1..=4 * window), i));
            }
        }
        keyed.sort();
        let deliveries: Vec<usize> = keyed.into_iter().map(|(_, i)| i).collect();
        // Events that arrive (first) after a newer event of the same object.
        let mut newest: HashMap<&str, i64> = HashMap::new();
        let mut seen = vec![false; total];
        let mut late = 0;
        for &i in &deliveries {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            let e = &events[i];
            let object = e["data"]["object"]["id"].as_str().unwrap_or_default();
            let created = e["created"].as_i64().unwrap_or_default();
            let newest = newest.entry(object).or_insert(created);
            if created < *newest {
                late += 1;
            }
            *newest = (*newest).max(created);
        }
        let bodies = events.iter().map(Value::to_string).collect();
        Workload {
            events,
            bodies: Arc::new(bodies),
            deliveries: Arc::new(deliveries),
            customers,
            late,
        }
    }

    /// "N customer, N customer.subscription, …": events per family.
    fn mix(&self) -> String {
        let mut families: Vec<(String, usize)> = Vec::new();
        for e in &self.events {
            let t = e["type"].as_str().unwrap_or_default();
            let family = t.rsplit_once('.').map_or(t, |(f, _)| f).to_string();
            match families.iter_mut().find(|(f, _)| *f == family) {
                Some((_, n)) => *n += 1,
                None => families.push((family, 1)),
            }
        }
        let types: std::collections::BTreeSet<&str> = self
            .events
            .iter()
            .filter_map(|e| e["type"].as_str())
            .collect();
        let families: Vec<String> = families.iter().map(|(f, n)| format!("{n} {f}")).collect();
        format!("{} ({} types)", families.join(", "), types.len())
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

/// A `/proc/PID/status` field in MiB (`VmHWM` peak, `VmRSS` now).
fn status_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// CPU seconds (user + system) `pid` has used so far; `None`: this process.
fn cpu_secs(pid: Option<u32>) -> f64 {
    let path = pid.map_or("/proc/self/stat".to_string(), |p| format!("/proc/{p}/stat"));
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // The fields after the command (which may hold spaces) and its closing parenthesis.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    // utime and stime are fields 14 and 15 of stat(5), in clock ticks of 1/100 s.
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU seconds every process named `postgres` on this machine has used so far (the
/// server of `BENCH_POSTGRES` when it runs here; its backends that already exited are
/// not counted, so this is read across phases where billd's sessions stay open).
fn postgres_cpu_secs() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "postgres")
        })
        .map(|pid| cpu_secs(Some(pid)))
        .filter(|s| s.is_finite())
        .sum()
}

/// Fills a migrated SQLite database with `n` processed events and their objects, in
/// transactions of 100,000 rows, printing progress.
fn fill_history(store: &Store, n: usize) {
    const CHUNK: usize = 100_000;
    let started = Instant::now();
    let conn = store.conn().unwrap();
    conn.execute_batch("PRAGMA cache_size = -262144").unwrap();
    let now_ms = billd::time::now_ms();
    let created = billd::time::now_secs() - 3 * 365 * 86_400;
    // (table, rows per event, the INSERT's columns, their values for row x)
    let tables: [(&str, usize, &str, String); 5] = [
        (
            "events",
            1,
            "id, type, livemode, api_version, created, received_at_ms, payload, status, attempts, next_attempt_ms, processed_at_ms",
            format!(
                "'evt_' || lower(hex(randomblob(12))),                  CASE x % 5 WHEN 0 THEN 'customer.updated' WHEN 1 THEN 'invoice.paid'                  WHEN 2 THEN 'charge.succeeded' WHEN 3 THEN 'payment_intent.succeeded'                  ELSE 'customer.subscription.updated' END,                  0, '2024-06-20', {created} + x / 50, {now_ms} - 1000000000 + x,                  '{{\"object\":\"event\",\"pad\":\"' || hex(zeroblob(480)) || '\"}}',                  'processed', 1, 0, {now_ms} - 1000000000 + x"
            ),
        ),
        (
            "customers",
            10,
            "id, email, currency, created, raw, ev_created, ev_seq",
            format!(
                "'cus_' || lower(hex(randomblob(7))), 'h' || x || '@example.com', 'usd',                  {created} + x, '{{}}', {created} + x, x"
            ),
        ),
        (
            "payments",
            10,
            "id, charge, customer, amount, currency, status, created, raw, ev_created, ev_seq",
            format!(
                "'pi_' || lower(hex(randomblob(12))), 'ch_' || lower(hex(randomblob(12))),                  'cus_' || lower(hex(randomblob(7))), 500 + x % 5000, 'usd',                  CASE WHEN x % 20 = 0 THEN 'failed' ELSE 'succeeded' END,                  {created} + x, '{{}}', {created} + x, x"
            ),
        ),
        (
            "subscriptions",
            20,
            "id, customer, status, price, quantity, currency, current_period_start, current_period_end, created, raw, ev_created, ev_seq",
            format!(
                "'sub_' || lower(hex(randomblob(12))), 'cus_' || lower(hex(randomblob(7))),                  CASE WHEN x % 4 = 0 THEN 'canceled' ELSE 'active' END, 'price_monthly', 1,                  'usd', {created} + x, {created} + x + 2592000, {created} + x, '{{}}',                  {created} + x, x"
            ),
        ),
        (
            "invoices",
            20,
            "id, customer, status, currency, amount_due, amount_paid, total, created, raw, ev_created, ev_seq",
            format!(
                "'in_' || lower(hex(randomblob(12))), 'cus_' || lower(hex(randomblob(7))),                  'paid', 'usd', 2000, 2000, 2000, {created} + x, '{{}}', {created} + x, x"
            ),
        ),
    ];
    for (table, per, columns, values) in &tables {
        let rows = n / per;
        let mut done = 0;
        while done < rows {
            let (from, to) = (done + 1, (done + CHUNK).min(rows));
            conn.execute_batch(&format!(
                "BEGIN; WITH RECURSIVE n(x) AS (SELECT {from} UNION ALL SELECT x + 1 FROM n WHERE x < {to})                  INSERT INTO {table} ({columns}) SELECT {values} FROM n; COMMIT;"
            ))
            .unwrap();
            done = to;
            eprint!(
                "\rhistory: {table} {done}/{rows} ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    eprintln!();
    println!(
        "history: {n} processed events, {} customers, {} payments, {} subscriptions, {} invoices, filled in {:.0} s",
        n / 10,
        n / 10,
        n / 20,
        n / 20,
        started.elapsed().as_secs_f64()
    );
}

/// Events stored and not yet applied (or dead).
fn waiting(store: &Store) -> i64 {
    store
        .conn()
        .unwrap()
        .query_row(
            "SELECT count(*) FROM events WHERE status IN ('pending', 'failed')",
            (),
            |r| r.get(0),
        )
        .unwrap()
}

fn count_status(store: &Store, status: &str) -> i64 {
    store
        .conn()
        .unwrap()
        .query_row(
            "SELECT count(*) FROM events WHERE status = ?1",
            billd::params![status],
            |r| r.get(0),
        )
        .unwrap()
}

/// `count` small writes, each followed by an fsync, on a file in `dir`: p50/p99 in ms.
fn fsync_probe(dir: &Path, count: usize) -> (f64, f64) {
    let mut file = std::fs::File::create(dir.join("fsync-probe")).unwrap();
    let mut times = Vec::with_capacity(count);
    for i in 0..count {
        let t = Instant::now();
        file.write_all(format!("{i:063}\n").as_bytes()).unwrap();
        file.sync_all().unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    (percentile(&times, 0.50), percentile(&times, 0.99))
}

/// A fresh database: a SQLite file in `dir`, or a new database on the PostgreSQL
/// cluster of `BENCH_POSTGRES`. Answers its `[database]` section and a way to open it.
fn fresh_database(dir: &Path, name: &str) -> (String, Store) {
    match std::env::var("BENCH_POSTGRES") {
        Ok(admin) => {
            let db = format!("billd_bench_{name}_{}", std::process::id());
            let mut client = postgres::Client::connect(&admin, postgres::NoTls).unwrap();
            // One statement each: neither may run inside a transaction block.
            client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))
                .unwrap();
            client
                .batch_execute(&format!("CREATE DATABASE {db}"))
                .unwrap();
            let url = format!("{}/{db}", admin.rsplit_once('/').unwrap().0);
            let store = Store::open_postgres(&url, None, 4, Duration::from_secs(5)).unwrap();
            (format!("[database]\nurl = {url:?}\n"), store)
        }
        Err(_) => {
            let path = dir.join(format!("{name}.sqlite"));
            let store = Store::open(&path, 2, Duration::from_secs(5)).unwrap();
            (
                format!("[database]\npath = {:?}\n", path.display().to_string()),
                store,
            )
        }
    }
}

/// Reads `child`'s stdout until a line containing `marker`, then keeps draining it on a
/// thread (a full pipe would block the child). Answers that line.
fn wait_for_line(child: &mut Child, marker: &str) -> String {
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = loop {
        let line = lines.next().expect("the server exited").unwrap();
        if line.contains(marker) {
            break line;
        }
    };
    std::thread::spawn(move || for _ in lines {});
    line
}

/// Whether `GET /readyz` on `addr` answers 200 (plain HTTP/1.1, one connection).
fn ready(addr: &str) -> bool {
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let request = format!("GET /readyz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.ends_with(b" 200")
}

/// A running `billd serve`: the child, its webhook URL and its start to ready.
struct Node {
    child: Child,
    url: String,
    start_to_ready: Duration,
}

/// Starts `billd serve` on `config` and waits until `/readyz` answers 200.
fn start_node(config: &Path) -> Node {
    let spawned = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_billd"))
        .args(["serve", "--config"])
        .arg(config)
        .env("STRIPE_SECRET_KEY", "sk_test_bench")
        .env("STRIPE_WEBHOOK_SECRET", SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("billd starts");
    let line = wait_for_line(&mut child, "billd serving");
    let v: Value = serde_json::from_str(&line).unwrap();
    let addr = v["fields"]["addr"].as_str().unwrap().to_string();
    while !ready(&addr) {
        assert!(
            spawned.elapsed() < Duration::from_secs(60),
            "billd not ready after 60 s"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    Node {
        child,
        url: format!("http://{addr}/stripe/webhook"),
        start_to_ready: spawned.elapsed(),
    }
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

/// What one ingest run measured: sorted latencies and the run's duration.
struct Ingest {
    latencies: Vec<Duration>,
    secs: f64,
}

impl Ingest {
    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.secs
    }

    fn p50(&self) -> f64 {
        percentile(&self.latencies, 0.50)
    }

    fn p99(&self) -> f64 {
        percentile(&self.latencies, 0.99)
    }

    fn line(&self) -> String {
        format!(
            "{:.0} req/s, p50 {:.2} ms, p99 {:.2} ms",
            self.rate(),
            self.p50(),
            self.p99()
        )
    }
}

/// Sends every delivery of `work` from `concurrency` keep-alive connections (the
/// deliveries dealt round-robin, each connection in order), spread over `urls`.
fn ingest(work: &Workload, urls: &[String], concurrency: usize) -> Ingest {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(1)
        .build()
        .unwrap();
    let started = Instant::now();
    let mut latencies: Vec<Duration> = runtime.block_on(async {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .build()
            .unwrap();
        let mut lanes = Vec::new();
        for lane in 0..concurrency {
            let client = client.clone();
            let (bodies, deliveries) = (work.bodies.clone(), work.deliveries.clone());
            let url = urls[lane % urls.len()].clone();
            lanes.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for d in (lane..deliveries.len()).step_by(concurrency) {
                    let body = bodies[deliveries[d]].clone();
                    let header =
                        billd::signature::sign(body.as_bytes(), SECRET, billd::time::now_secs());
                    let t = Instant::now();
                    let r = client
                        .post(&url)
                        .header("Stripe-Signature", header)
                        .body(body)
                        .send()
                        .await
                        .expect("request");
                    assert!(r.status().is_success(), "status {}", r.status());
                    out.push(t.elapsed());
                }
                out
            }));
        }
        let mut all = Vec::new();
        for lane in lanes {
            all.extend(lane.await.unwrap());
        }
        all
    });
    let secs = started.elapsed().as_secs_f64();
    latencies.sort();
    Ingest { latencies, secs }
}

/// The minimal server: this benchmark's own binary, run as a separate process.
/// The minimal server's run, its peak RSS (MiB) and the CPU seconds it used.
fn minimal_run(dir: &Path, work: &Workload, concurrency: usize) -> (Ingest, f64, f64) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(minimal::ROLE, dir.join("minimal.sqlite"))
        .env("STRIPE_WEBHOOK_SECRET", SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the minimal server starts");
    let line = wait_for_line(&mut child, minimal::SERVING);
    let addr = line.rsplit(' ').next().unwrap();
    let cpu = cpu_secs(Some(child.id()));
    let run = ingest(
        work,
        &[format!("http://{addr}/stripe/webhook")],
        concurrency,
    );
    let cpu = cpu_secs(Some(child.id())) - cpu;
    let rss = status_mib(child.id(), "VmHWM:");
    stop(child);
    (run, rss, cpu)
}

/// `perf record -g` of `pid` until stopped with SIGINT.
fn perf_start(pid: u32) -> Option<Child> {
    let out = std::env::var("BENCH_PERF").ok()?;
    Command::new("perf")
        .args(["record", "-g", "-o", &out, "-p", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .ok()
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

fn main() {
    if let Some(path) = std::env::var_os(minimal::ROLE) {
        minimal::serve(Path::new(&path), SECRET);
        return;
    }
    let total = env_usize("BENCH_EVENTS", 20_000);
    let concurrency = env_usize("BENCH_CONCURRENCY", 64);
    let nodes = env_usize("BENCH_NODES", 1).max(1);
    let workers = env_usize("BENCH_WORKERS", WorkerConfig::default().count);
    let duplicates = env_usize("BENCH_DUPLICATES", 3);
    let delayed = env_usize("BENCH_DELAYED", 10);
    let window = env_usize("BENCH_WINDOW", 200);
    let fsyncs = env_usize("BENCH_FSYNCS", 200).max(1);
    let seed = std::env::var("BENCH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(9);
    let backend = if std::env::var_os("BENCH_POSTGRES").is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "billd ingest bench ({backend}, {nodes} node(s) × {workers} workers, {concurrency} connections, seed {seed}); load average {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let work = Workload::build(total, duplicates, delayed, window, seed);
    println!(
        "workload: {total} events about {} customers: {}; {} delivered twice ({} deliveries); {} ({:.1}%) arrive after a newer event of their object ({delayed}% delayed by up to {window} deliveries)",
        work.customers,
        work.mix(),
        work.deliveries.len() - total,
        work.deliveries.len(),
        work.late,
        100.0 * work.late as f64 / total as f64,
    );
    let dir = tempfile::tempdir().unwrap();
    let (fsync_p50, fsync_p99) = fsync_probe(dir.path(), fsyncs);
    println!(
        "fsync probe: {fsyncs} × (64 B write + fsync) in the bench's temp dir: p50 {fsync_p50:.2} ms, p99 {fsync_p99:.2} ms"
    );

    let minimal = (std::env::var("BENCH_MINIMAL").as_deref() != Ok("0"))
        .then(|| minimal_run(dir.path(), &work, concurrency));
    if let Some((run, rss, cpu)) = &minimal {
        println!(
            "minimal server: ingest {} | peak RSS {rss:.1} MiB | CPU {:.0} µs per delivery",
            run.line(),
            cpu * 1e6 / run.latencies.len() as f64
        );
    }

    // The "billd serving" line (target `billd::app`, level info) is how the address is read.
    let log_level = std::env::var("BENCH_LOG_LEVEL")
        .map(|l| format!("level = \"{l},billd::app=info\"\n"))
        .unwrap_or_default();
    let (database, store) = fresh_database(dir.path(), "ingest");
    let history = env_usize("BENCH_HISTORY", 0);
    if history > 0 {
        assert_eq!(
            backend, "sqlite",
            "BENCH_HISTORY fills SQLite databases only"
        );
        store.migrate().unwrap();
        fill_history(&store, history);
        std::fs::copy(
            dir.path().join("ingest.sqlite"),
            dir.path().join("apply.sqlite"),
        )
        .unwrap();
    }
    // Processed events of the burst (the history's are processed already).
    let processed = |store: &Store| count_status(store, "processed") - history as i64;
    let mut configs = Vec::new();
    let mut running = Vec::new();
    for n in 0..nodes {
        let config = dir.path().join(format!("billd-{n}.toml"));
        std::fs::write(
            &config,
            format!(
                // One loopback client stands in for all of Stripe's senders: the
                // per-address webhook limit is lifted so it measures ingest, not the limit.
                "[server]\nlisten = \"127.0.0.1:0\"\n{database}[log]\nformat = \"json\"\n{log_level}dir = \"{}\"\n\
                 [limits]\nwebhook_burst = 1000000\nwebhook_per_sec = 1000000\n\
                 [workers]\ncount = {workers}\n",
                dir.path().join(format!("logs-{n}")).display()
            ),
        )
        .unwrap();
        running.push(start_node(&config));
        configs.push(config);
    }
    let fresh_ready = running
        .iter()
        .map(|n| n.start_to_ready)
        .max()
        .unwrap_or_default();
    let urls: Vec<String> = running.iter().map(|n| n.url.clone()).collect();

    let perf = perf_start(running[0].child.id());
    let billd_cpu = || -> f64 { running.iter().map(|n| cpu_secs(Some(n.child.id()))).sum() };
    let pg_cpu = || {
        if backend == "postgres" {
            postgres_cpu_secs()
        } else {
            0.0
        }
    };
    let (cpu_start, bench_cpu_start, pg_cpu_start) = (billd_cpu(), cpu_secs(None), pg_cpu());
    let started = Instant::now();
    let run = ingest(&work, &urls, concurrency);
    let during = processed(&store);
    let ingest_end = started.elapsed().as_secs_f64();
    let (cpu_ingest, bench_cpu, pg_cpu_ingest) =
        (billd_cpu(), cpu_secs(None) - bench_cpu_start, pg_cpu());
    // Polled by the events still waiting (a partial index that shrinks as they are
    // applied), not by counting every processed one: the poll must not load the server.
    let (mut last, mut progressed) = (i64::MAX, Instant::now());
    loop {
        let waiting = waiting(&store);
        if waiting == 0 {
            break;
        }
        if waiting < last {
            (last, progressed) = (waiting, Instant::now());
        }
        assert!(
            progressed.elapsed() < Duration::from_secs(30),
            "no progress for 30 s: {waiting} waiting, {} failed, {} dead",
            count_status(&store, "failed"),
            count_status(&store, "dead"),
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let applied_secs = started.elapsed().as_secs_f64();
    assert_eq!(
        processed(&store),
        total as i64,
        "every event of the burst processed"
    );
    let cpu_drain = billd_cpu() - cpu_ingest;
    let cpu_ingest = cpu_ingest - cpu_start;
    let pg_cpu_drain = pg_cpu() - pg_cpu_ingest;
    let pg_cpu_ingest = pg_cpu_ingest - pg_cpu_start;
    if let Some(perf) = perf {
        let _ = Command::new("kill")
            .args(["-INT", &perf.id().to_string()])
            .status();
        let _ = perf.wait_with_output();
    }
    let peak = running
        .iter()
        .map(|n| status_mib(n.child.id(), "VmHWM:"))
        .fold(0.0, f64::max);
    std::thread::sleep(Duration::from_secs(1));
    let idle = running
        .iter()
        .map(|n| status_mib(n.child.id(), "VmRSS:"))
        .fold(0.0, f64::max);
    for node in running {
        stop(node.child);
    }
    // Start to ready again, over the full inbox (one node).
    let again = start_node(&configs[0]);
    let restart_ready = again.start_to_ready;
    stop(again.child);

    let during_rate = during as f64 / run.secs;
    let drain_secs = applied_secs - ingest_end;
    let drain_rate = (total as i64 - during) as f64 / drain_secs.max(1e-9);
    println!("billd: ingest {}", run.line());
    if let Some((m, _, _)) = &minimal {
        println!(
            "billd/minimal: req/s {:.2}×, p99 {:.2}×",
            run.rate() / m.rate(),
            run.p99() / m.p99()
        );
    }
    println!(
        "billd: apply {during_rate:.0} events/s while ingest ran ({during} of {total} in {:.2} s), \
         {drain_rate:.0} events/s after it ({} in {drain_secs:.2} s)",
        run.secs,
        total as i64 - during,
    );
    println!("billd: all {total} events applied {applied_secs:.2} s after the first delivery");
    println!(
        "CPU: billd {cpu_ingest:.2} s while ingest ran ({:.2} cores, {:.0} µs per delivery, its applies included), \
         {cpu_drain:.2} s for the drain ({:.0} µs per event applied); the load generator {bench_cpu:.2} s ({:.0} µs per delivery)",
        cpu_ingest / run.secs,
        cpu_ingest * 1e6 / run.latencies.len() as f64,
        cpu_drain * 1e6 / (total as i64 - during).max(1) as f64,
        bench_cpu * 1e6 / run.latencies.len() as f64,
    );
    if backend == "postgres" {
        println!(
            "CPU: PostgreSQL (the processes on this machine) {pg_cpu_ingest:.2} s while ingest ran ({:.2} cores, \
             {:.0} µs per delivery, its applies included), {pg_cpu_drain:.2} s for the drain ({:.0} µs per event applied)",
            pg_cpu_ingest / run.secs,
            pg_cpu_ingest * 1e6 / run.latencies.len() as f64,
            pg_cpu_drain * 1e6 / (total as i64 - during).max(1) as f64,
        );
    }
    println!(
        "billd: RSS peak {peak:.1} MiB, idle {idle:.1} MiB (largest node) | start to ready {:.0} ms fresh database, {:.0} ms restart over the full inbox",
        fresh_ready.as_secs_f64() * 1000.0,
        restart_ready.as_secs_f64() * 1000.0,
    );

    // One worker stepping alone over a pre-filled inbox of the same events.
    let store = if history > 0 {
        Store::open(&dir.path().join("apply.sqlite"), 2, Duration::from_secs(5)).unwrap()
    } else {
        fresh_database(dir.path(), "apply").1
    };
    store.migrate().unwrap();
    {
        let mut conn = store.conn().unwrap();
        let tx = conn.transaction().unwrap();
        let mut seen = vec![false; total];
        for &i in work.deliveries.iter() {
            if std::mem::replace(&mut seen[i], true) {
                continue;
            }
            let e = &work.events[i];
            let new = NewEvent {
                id: e["id"].as_str().unwrap().to_string(),
                type_: e["type"].as_str().unwrap().to_string(),
                account: None,
                livemode: false,
                api_version: e["api_version"].as_str().map(String::from),
                created: e["created"].as_i64().unwrap(),
                payload: work.bodies[i].clone(),
            };
            billd::store::events::insert(&tx, &new, 0).unwrap();
        }
        tx.commit().unwrap();
    }
    let config = WorkerConfig::default();
    let batch = config.batch_size;
    let worker = Worker::new(store.clone(), config, StripeMode::Test);
    let t = Instant::now();
    let mut applied = 0;
    loop {
        let steps = worker.step_batch(batch).unwrap();
        if steps.is_empty() {
            break;
        }
        applied += steps
            .iter()
            .filter(|s| matches!(s, Step::Applied { .. }))
            .count();
    }
    let alone = applied as f64 / t.elapsed().as_secs_f64();
    assert_eq!(applied, total);
    println!("one worker alone over the pre-filled inbox: {alone:.0} events/s");

    println!("issue 9 targets:");
    if let Some((m, _, _)) = &minimal {
        let (ratio, p99) = (run.rate() / m.rate(), run.p99() / m.p99());
        println!(
            "  ingest ≥ 0.85× minimal: {ratio:.2}× {}; p99 ≤ 1.5× minimal: {p99:.2}× {}",
            verdict(ratio >= 0.85),
            verdict(p99 <= 1.5)
        );
    }
    println!(
        "  apply ≥ 10000 events/s with ingest running: {during_rate:.0} {}",
        verdict(during_rate >= 10_000.0)
    );
    if total == 100_000 {
        println!(
            "  100000-event burst applied in ≤ 15 s: {applied_secs:.1} s {}",
            verdict(applied_secs <= 15.0)
        );
    } else {
        println!("  burst ≤ 15 s: only for BENCH_EVENTS=100000 ({total} took {applied_secs:.1} s)");
    }
    println!(
        "  peak RSS ≤ 64 MB: {:.1} MB {}; start to ready ≤ 100 ms: {:.0} ms {}",
        peak * 1.048_576,
        verdict(peak * 1.048_576 <= 64.0),
        fresh_ready.max(restart_ready).as_secs_f64() * 1000.0,
        verdict(fresh_ready.max(restart_ready) <= Duration::from_millis(100)),
    );
}

//! Webhook ingest and apply benchmark (DESIGN §8). Run: `cargo bench --bench ingest`.
//!
//! Starts the real `billd serve` (release build) on loopback with a fresh database,
//! sends signed `charge.succeeded` events from concurrent keep-alive connections,
//! and prints one line: ingest requests/s with p50/p99 latency (every 200 means the
//! event was fsync-committed), how fast the daemon's workers applied them, apply
//! events/s of one worker stepping alone over a pre-filled inbox, and the daemon's
//! peak RSS. Sizes: BENCH_EVENTS (default 20000), BENCH_CONCURRENCY (default 64).
//!
//! PostgreSQL mode: `BENCH_POSTGRES=postgres://user@host:port/postgres` (an admin URL;
//! each run creates fresh databases there) and `BENCH_NODES=N` (default 1) starts N
//! daemons on one database, the senders spread over them round-robin.

use std::{
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use billd::{
    config::{StripeMode, WorkerConfig},
    store::{Store, events::NewEvent},
    worker::{Step, Worker},
};

const SECRET: &str = "whsec_bench";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn event(i: usize) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/events/charge.succeeded.json"
    ))
    .unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["id"] = format!("evt_bench_{i}").into();
    v["livemode"] = false.into();
    v["data"]["object"]["id"] = format!("ch_bench_{i}").into();
    v["data"]["object"]["payment_intent"] = format!("pi_bench_{i}").into();
    // Distinct objects: one shared invoice would serialise every apply on PostgreSQL,
    // where workers lock each object an event names.
    v["data"]["object"]["invoice"] = format!("in_bench_{i}").into();
    v.to_string()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn count_processed(store: &Store) -> i64 {
    store
        .conn()
        .unwrap()
        .query_row(
            "SELECT count(*) FROM events WHERE status = 'processed'",
            (),
            |r| r.get(0),
        )
        .unwrap()
}

/// A fresh database: a SQLite file in `dir`, or a new database on the PostgreSQL
/// cluster of `BENCH_POSTGRES`. Answers its `[database]` section and a way to open it.
fn fresh_database(dir: &std::path::Path, name: &str) -> (String, Store) {
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

/// Starts `billd serve` on `config`; answers the child and its webhook URL.
fn start_node(config: &std::path::Path) -> (std::process::Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_billd"))
        .args(["serve", "--config"])
        .arg(config)
        .env("STRIPE_SECRET_KEY", "sk_test_bench")
        .env("STRIPE_WEBHOOK_SECRET", SECRET)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("billd starts");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let address = loop {
        let line = lines.next().expect("billd exited").unwrap();
        if line.contains("billd serving") {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            break format!(
                "http://{}/stripe/webhook",
                v["fields"]["addr"].as_str().unwrap()
            );
        }
    };
    // Keep draining the daemon's stdout so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, address)
}

fn main() {
    let total = env_usize("BENCH_EVENTS", 20_000);
    let concurrency = env_usize("BENCH_CONCURRENCY", 64);
    let nodes = env_usize("BENCH_NODES", 1).max(1);
    let workers = env_usize("BENCH_WORKERS", WorkerConfig::default().count);
    let backend = if std::env::var_os("BENCH_POSTGRES").is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let dir = tempfile::tempdir().unwrap();
    let (database, store) = fresh_database(dir.path(), "ingest");
    let mut children = Vec::new();
    let mut addresses = Vec::new();
    for n in 0..nodes {
        let config = dir.path().join(format!("billd-{n}.toml"));
        std::fs::write(
            &config,
            format!(
                // One loopback client stands in for all of Stripe's senders: the
                // per-address webhook limit is lifted so it measures ingest, not the limit.
                "[server]\nlisten = \"127.0.0.1:0\"\n{database}[log]\nformat = \"json\"\ndir = \"{}\"\n\
                 [limits]\nwebhook_burst = 1000000\nwebhook_per_sec = 1000000\n\
                 [workers]\ncount = {workers}\n",
                dir.path().join(format!("logs-{n}")).display()
            ),
        )
        .unwrap();
        let (child, address) = start_node(&config);
        children.push(child);
        addresses.push(address);
    }

    let bodies: Vec<String> = (0..total).map(event).collect();
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
        let bodies = std::sync::Arc::new(bodies);
        let mut lanes = Vec::new();
        for lane in 0..concurrency {
            let client = client.clone();
            let bodies = bodies.clone();
            let address = addresses[lane % addresses.len()].clone();
            lanes.push(tokio::spawn(async move {
                let mut out = Vec::new();
                for i in (lane..bodies.len()).step_by(concurrency) {
                    let body = bodies[i].clone();
                    let header =
                        billd::signature::sign(body.as_bytes(), SECRET, billd::time::now_secs());
                    let t = Instant::now();
                    let r = client
                        .post(&address)
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
    let ingest_secs = started.elapsed().as_secs_f64();
    latencies.sort();

    while count_processed(&store) < total as i64 {
        std::thread::sleep(Duration::from_millis(20));
    }
    let daemon_apply_secs = started.elapsed().as_secs_f64();
    let rss = children
        .iter()
        .map(|c| peak_rss_mib(c.id()))
        .fold(0.0, f64::max);
    for mut child in children {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
    }

    // One worker stepping alone over a pre-filled inbox.
    let (_, store) = fresh_database(dir.path(), "apply");
    store.migrate().unwrap();
    {
        let mut conn = store.conn().unwrap();
        let tx = conn.transaction().unwrap();
        for i in 0..total {
            billd::store::events::insert(
                &tx,
                &NewEvent {
                    id: format!("evt_bench_{i}"),
                    type_: "charge.succeeded".into(),
                    account: None,
                    livemode: false,
                    api_version: None,
                    created: 1_700_000_000,
                    payload: event(i),
                },
                0,
            )
            .unwrap();
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
    let step_secs = t.elapsed().as_secs_f64();
    assert_eq!(applied, total);

    println!(
        "billd bench ({backend}, {nodes} node(s) × {workers} workers): {total} events, {concurrency} connections | ingest {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms | \
         daemon applied all within {:.2} s ({:.0} events/s) | one worker alone {:.0} events/s | peak RSS {:.1} MiB (largest node)",
        total as f64 / ingest_secs,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        daemon_apply_secs,
        total as f64 / daemon_apply_secs,
        applied as f64 / step_secs,
        rss,
    );
}

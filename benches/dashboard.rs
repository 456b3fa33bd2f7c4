//! Dashboard benchmark (issue 15, docs/dashboard.md). Run: `cargo bench --bench dashboard`.
//!
//! Fills the inbox with 1,000,000 events (BENCH_EVENTS; ten types, 97 % processed,
//! 1 % ignored, 1 % failed with their next attempt far off, 0.5 % dead, each with a
//! real ~1.7 KB payload), in transactions of multi-row prepared inserts, plus some
//! flags and connected accounts; starts billd on that database, logs in as an admin
//! over HTTP and times each page as a browser gets it (one GET, loopback, the whole
//! answer read). Prints one line: the median of 9 runs per page (the first run in
//! brackets), in milliseconds. SQLite by default; PostgreSQL when BILLD_BENCH_POSTGRES
//! names a cluster's admin URL (a fresh database is made on it).

use std::time::{Duration, Instant};

use billd::{
    app::App,
    config::{Config, Secrets},
    store::{
        Store,
        db::{Value, params_from_iter},
        flags::{self, Kind},
        tokens::{self, Scope},
    },
};
use secrecy::SecretString;

const TYPES: [&str; 10] = [
    "invoice.paid",
    "invoice.created",
    "invoice.finalized",
    "charge.succeeded",
    "payment_intent.succeeded",
    "customer.updated",
    "customer.subscription.updated",
    "payment_method.attached",
    "invoice.payment_failed",
    "checkout.session.completed",
];
const ROWS_PER_INSERT: usize = 250;
const INSERTS_PER_TX: usize = 200;
const RUNS: usize = 9;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A fresh database on the PostgreSQL cluster named by BILLD_BENCH_POSTGRES, as a URL.
fn postgres_database() -> Option<String> {
    let admin = std::env::var("BILLD_BENCH_POSTGRES").ok()?;
    let name = format!("billd_bench_{}", std::process::id());
    let mut client = postgres::Client::connect(&admin, postgres::NoTls).expect("the cluster");
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create the bench database");
    let (base, _) = admin
        .rsplit_once('/')
        .expect("an admin URL ending in /dbname");
    Some(format!("{base}/{name}"))
}

/// The inbox: `n` events, newest last, received over the last 30 days.
fn fill(store: &Store, n: usize, now_ms: i64) {
    let template = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/events/customer.created.json"
    ))
    .expect("the payload fixture");
    let mut conn = store.conn().expect("a connection");
    let span_ms = 30 * 86_400_000i64;
    let mut seq = 0usize;
    while seq < n {
        let tx = conn.transaction().expect("a transaction");
        for _ in 0..INSERTS_PER_TX {
            if seq >= n {
                break;
            }
            let rows = ROWS_PER_INSERT.min(n - seq);
            // Numbered placeholders (?1, ?2, …): one text serves both backends.
            let tuples: Vec<String> = (0..rows)
                .map(|r| {
                    let p: Vec<String> = (1..=10).map(|k| format!("?{}", r * 10 + k)).collect();
                    format!(
                        "({}, {}, NULL, 0, '2020-03-02', {}, {}, {}, {}, {}, {}, {}, {})",
                        p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9]
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO events (id, type, account, livemode, api_version, created,
                    received_at_ms, payload, status, attempts, next_attempt_ms,
                    processed_at_ms, last_error) VALUES {}",
                tuples.join(", ")
            );
            let mut values = Vec::with_capacity(rows * 10);
            for _ in 0..rows {
                let i = seq as i64;
                let id = format!("evt_bench{i:09}");
                let received = now_ms - span_ms + span_ms * i / n as i64;
                let (status, next, processed, error) = match seq % 200 {
                    0 => (
                        "dead",
                        received,
                        None,
                        Some("cannot parse customer: data error at line 1 column 217"),
                    ),
                    1 | 2 => ("failed", now_ms + 86_400_000, None, Some("storage is busy")),
                    3 | 4 => (
                        "ignored",
                        received,
                        Some(received + 3),
                        Some("unhandled type"),
                    ),
                    _ => ("processed", received, Some(received + 4), None),
                };
                values.extend([
                    Value::Text(id.clone()),
                    Value::Text(TYPES[seq % TYPES.len()].into()),
                    Value::Integer(received / 1000 - 1),
                    Value::Integer(received),
                    Value::Text(template.replace("evt_wrapped_customer_created", &id)),
                    Value::Text(status.into()),
                    Value::Integer(1),
                    Value::Integer(next),
                    processed.map_or(Value::Null, Value::Integer),
                    error.map_or(Value::Null, |e| Value::Text(e.into())),
                ]);
                seq += 1;
            }
            tx.execute(&sql, params_from_iter(values))
                .expect("insert events");
        }
        tx.commit().expect("commit");
    }
    // Flags to follow up and accounts needing action, a few hundred of each.
    let tx = conn.transaction().expect("a transaction");
    for i in 0..500 {
        flags::open(
            &tx,
            Kind::PaymentFailed,
            &format!("in_bench{i}"),
            Some(&format!("cus_bench{i}")),
            "invoice payment failed: attempt 1, amount_due 4200 usd",
            now_ms / 1000 - i,
        )
        .expect("a flag");
    }
    for i in 0..300 {
        tx.execute(
            "INSERT INTO accounts (id, type, country, charges_enabled, payouts_enabled,
                 details_submitted, currently_due, disabled_reason, deleted, raw, ev_created, ev_seq)
             VALUES (?1, 'express', 'DE', ?2, 0, 1, '[\"external_account\"]', NULL, 0, '{}', 1, 1)",
            billd::params![format!("acct_bench{i:04}"), i64::from(i % 2 == 0)],
        )
        .expect("an account");
    }
    tx.commit().expect("commit");
}

fn main() {
    let events = env_usize("BENCH_EVENTS", 1_000_000);
    let dir = tempfile::tempdir().expect("a directory");
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.database.path = dir.path().join("bench.sqlite");
    config.database.url = postgres_database();
    config.log.dir = "".into();
    config.stripe.gap_repair_interval_secs = 0;
    let backend = if config.database.url.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    let secrets = Secrets {
        stripe_secret_key: SecretString::from("sk_test_bench".to_string()),
        webhook_secrets: vec![SecretString::from("whsec_bench".to_string())],
        alert_webhook_url: None,
    };
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let app = runtime
        .block_on(App::build(config, &secrets))
        .expect("billd builds");
    let store = app.store();
    let address = format!("http://{}", app.local_addr());
    let now_ms = billd::time::now_ms();
    let started = Instant::now();
    fill(&store, events, now_ms);
    let load = started.elapsed();
    let token = tokens::create(&store.conn().unwrap(), "bench", Scope::Admin, 0)
        .expect("a token")
        .token;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(app.run_until(async move {
        let _ = rx.await;
    }));

    let figures = runtime.block_on(async {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let form = http
            .get(format!("{address}/dashboard/login"))
            .send()
            .await
            .unwrap();
        let login_cookie = form
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("billd_login="))
            .and_then(|v| v.split(';').next())
            .expect("a login cookie")
            .to_string();
        let r = http
            .post(format!("{address}/dashboard/login"))
            .header("cookie", format!("billd_login={login_cookie}"))
            .form(&[("token", token.as_str()), ("csrf", login_cookie.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "login");
        let session = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("billd_session="))
            .and_then(|v| v.split(';').next())
            .expect("a session")
            .to_string();
        let deep = format!("evt_bench{:09}", events / 2);
        let pages = [
            ("overview", "/dashboard".to_string()),
            ("events", "/dashboard/events".to_string()),
            ("events_dead", "/dashboard/events?status=dead".to_string()),
            (
                "events_type",
                "/dashboard/events?type=invoice.paid".to_string(),
            ),
            (
                "events_deep_page",
                format!("/dashboard/events?after={deep}"),
            ),
            ("event", format!("/dashboard/events/{deep}")),
            ("dead", "/dashboard/dead".to_string()),
            ("flags", "/dashboard/flags".to_string()),
            ("revenue", "/dashboard/revenue".to_string()),
            ("accounts", "/dashboard/accounts".to_string()),
        ];
        let mut figures = Vec::new();
        for (name, path) in pages {
            let mut times = Vec::new();
            for _ in 0..RUNS {
                let t = Instant::now();
                let r = http
                    .get(format!("{address}{path}"))
                    .header("cookie", format!("billd_session={session}"))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200, "{path}");
                let body = r.bytes().await.unwrap();
                assert!(body.len() > 1_000, "{path}");
                times.push(t.elapsed());
            }
            let first = times[0];
            times.sort();
            let median = times[RUNS / 2];
            figures.push(format!("{name}={:.1}ms({:.1}ms)", ms(median), ms(first)));
        }
        figures
    });
    let _ = tx.send(());
    runtime
        .block_on(server)
        .expect("the server task")
        .expect("a clean shutdown");
    println!(
        "dashboard backend={backend} events={events} load={:.0}s {}",
        load.as_secs_f64(),
        figures.join(" ")
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

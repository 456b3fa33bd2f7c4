//! Test helpers: the real server on a random port with a fresh database, signed
//! webhooks, tokens, and waiting on state (never on sleeps alone).
#![allow(dead_code)]

pub mod browser;
pub mod daemon;
pub mod histories;
pub mod localstripe;
pub mod personal;

use std::{
    sync::{
        Arc, Once,
        atomic::{AtomicI64, Ordering},
    },
    time::{Duration, Instant},
};

use billd::{
    app::App,
    config::{Config, Secrets},
    store::{
        Store,
        events::{self as inbox, Status},
        tokens::{self, Scope},
    },
};
use secrecy::SecretString;
use serde_json::Value;
use tokio::{sync::oneshot, task::JoinHandle};

pub const WEBHOOK_SECRET: &str = "whsec_billd_test_secret";

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub store: Store,
    pub dir: tempfile::TempDir,
    /// Unix seconds the webhook verifier sees; 0 means the real clock.
    pub clock: Arc<AtomicI64>,
    shutdown: Option<oneshot::Sender<()>>,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

static TRACING: Once = Once::new();

fn init_tracing() {
    TRACING.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt().with_test_writer().try_init();
        }
    });
}

/// The environment variable naming a PostgreSQL cluster's admin URL: when set, every
/// test runs on a fresh PostgreSQL database of that cluster instead of SQLite
/// (`scripts/test.sh` runs the suite both ways).
pub const POSTGRES_ENV: &str = "BILLD_TEST_POSTGRES";

/// True when the suite runs on PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var_os(POSTGRES_ENV).is_some()
}

/// A new, empty PostgreSQL database on the test cluster, as a `[database] url`; `None`
/// when the suite runs on SQLite.
pub fn fresh_postgres() -> Option<String> {
    let admin = std::env::var(POSTGRES_ENV).ok()?;
    let name = format!("billd_t{}", uuid::Uuid::new_v4().simple());
    // The blocking client runs its own runtime: off any test's runtime thread.
    let (url, sql) = (admin.clone(), format!("CREATE DATABASE {name}"));
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("{POSTGRES_ENV}: cannot connect to the test cluster: {e}"));
        client.batch_execute(&sql).expect("create a test database");
    })
    .join()
    .expect("create a test database");
    let (base, _) = admin
        .rsplit_once('/')
        .expect("an admin URL ending in /dbname");
    Some(format!("{base}/{name}"))
}

/// The database of a test directory: `dir/billd.sqlite`, or on PostgreSQL a fresh
/// database whose URL is kept in `dir/postgres-url`, so that every helper (the
/// in-process app, a `billd serve` child, a CLI run) given `dir` opens the same one.
pub fn database_of(dir: &std::path::Path) -> billd::config::DatabaseConfig {
    let mut db = billd::config::DatabaseConfig {
        path: dir.join("billd.sqlite"),
        ..Default::default()
    };
    if on_postgres() {
        let file = dir.join("postgres-url");
        db.url = Some(match std::fs::read_to_string(&file) {
            Ok(url) => url,
            Err(_) => {
                let url = fresh_postgres().expect("on PostgreSQL");
                std::fs::write(&file, &url).expect("keep the test database's URL");
                url
            }
        });
    }
    db
}

/// The `[database]` section of a config file for the database of `dir`.
pub fn database_toml(dir: &std::path::Path) -> String {
    let db = database_of(dir);
    let mut text = format!("[database]\npath = {:?}\n", db.path.display().to_string());
    if let Some(url) = &db.url {
        text.push_str(&format!("url = {url:?}\n"));
    }
    text
}

/// The store of the database of `dir`, migrated, as the daemon would open it.
pub fn open_store(dir: &std::path::Path) -> Store {
    blocking(|| {
        let store = Store::open_config(&database_of(dir)).expect("open the test database");
        store.migrate().expect("migrate the test database");
        store
    })
}

/// Runs blocking database work on a thread of its own: a test's async code must not
/// block its runtime (and PostgreSQL's blocking client refuses to run there).
pub fn blocking<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().expect("blocking work panicked"))
}

/// The first column of the first row of `sql` in the database of `store`, off the
/// runtime thread.
pub fn count(store: &Store, sql: &str) -> i64 {
    blocking(|| {
        store
            .conn()
            .expect("a connection")
            .query_row(sql, (), |r| r.get(0))
            .expect("count query")
    })
}

/// A config for tests: port 0, a fresh database (in `dir`, or on the PostgreSQL test
/// cluster), no log file, fast retries.
pub fn test_config(dir: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.server.shutdown_grace_secs = 5;
    config.database = database_of(dir);
    config.log.dir = "".into();
    config.workers.poll_interval_ms = 50;
    config.workers.backoff_base_ms = 10;
    config.workers.backoff_max_ms = 20;
    // Tests that check gap repair turn it on; others must not call Stripe by themselves.
    config.stripe.gap_repair_interval_secs = 0;
    config
}

pub fn test_secrets(webhook_secrets: &[&str]) -> Secrets {
    Secrets {
        stripe_secret_key: SecretString::from("sk_test_billd".to_string()),
        webhook_secrets: webhook_secrets
            .iter()
            .map(|s| SecretString::from(s.to_string()))
            .collect(),
        alert_webhook_url: None,
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}, &[WEBHOOK_SECRET]).await
}

pub async fn spawn_app_with(edit: impl FnOnce(&mut Config), webhook_secrets: &[&str]) -> TestApp {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let mut config = test_config(dir.path());
    edit(&mut config);
    let clock = Arc::new(AtomicI64::new(0));
    let c = clock.clone();
    let app = App::build(config, &test_secrets(webhook_secrets))
        .await
        .expect("app builds")
        .with_clock(Arc::new(move || match c.load(Ordering::SeqCst) {
            0 => billd::time::now_secs(),
            fixed => fixed,
        }));
    let address = format!("http://{}", app.local_addr());
    let store = app.store();
    let (tx, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    TestApp {
        address,
        client: reqwest::Client::new(),
        store,
        dir,
        clock,
        shutdown: Some(tx),
        handle: Some(handle),
    }
}

/// A fixture event from `tests/fixtures/events/`.
pub fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/events/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

/// A fixture event with its own id (fixture ids repeat across files).
pub fn fixture_as(name: &str, id: &str) -> Value {
    let mut v = fixture(name);
    v["id"] = id.into();
    v
}

/// A case of `tests/fixtures/signatures.json`: a header, and the verdict Stripe's own
/// library gives it.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct SignatureVector {
    pub name: String,
    pub payload: String,
    pub header: String,
    pub secrets: Vec<String>,
    pub now: i64,
    pub tolerance: u64,
    pub valid: bool,
}

/// Every case of `tests/fixtures/signatures.json`.
pub fn signature_vectors() -> Vec<SignatureVector> {
    #[derive(serde::Deserialize)]
    struct Vectors {
        cases: Vec<SignatureVector>,
    }
    let text = include_str!("../fixtures/signatures.json");
    let vectors: Vectors = serde_json::from_str(text).expect("the signature vectors");
    vectors.cases
}

pub fn sign(body: &str, secret: &str, t: i64) -> String {
    billd::signature::sign(body.as_bytes(), secret, t)
}

/// `billd ARGS` against the test app's database, as cron or a person runs it: (exit
/// code, stdout, stderr).
pub fn run_billd(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    run_billd_with(app, "", args)
}

/// [`run_billd`] with more config (`extra`, TOML tables after the database's).
pub fn run_billd_with(app: &TestApp, extra: &str, args: &[&str]) -> (i32, String, String) {
    let config = app.dir.path().join("billd.toml");
    std::fs::write(
        &config,
        format!(
            "{}\n[log]\ndir = \"\"\n{extra}",
            database_toml(app.dir.path())
        ),
    )
    .expect("write config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_billd"))
        .arg("--config")
        .arg(&config)
        .args(args)
        .env("STRIPE_SECRET_KEY", "sk_test_x")
        .env("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .env_remove("BILLD_CONFIG")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run billd");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Posts an event signed with the test secret, now.
    pub async fn post_event(&self, event: &Value) -> reqwest::Response {
        let body = event.to_string();
        let header = sign(&body, WEBHOOK_SECRET, billd::time::now_secs());
        self.post_webhook(body, Some(&header)).await
    }

    pub async fn post_webhook(
        &self,
        body: impl Into<reqwest::Body>,
        header: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.client.post(self.url("/stripe/webhook")).body(body);
        if let Some(h) = header {
            request = request.header("Stripe-Signature", h);
        }
        request.send().await.expect("webhook request")
    }

    pub async fn token(&self, scope: Scope) -> String {
        self.store
            .run(move |c| tokens::create(c, "test", scope, 0))
            .await
            .unwrap()
            .token
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("GET")
    }

    pub async fn post(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("POST")
    }

    /// Waits until the event has left pending/failed (or `timeout`), returns its status.
    pub async fn settled(&self, id: &str) -> Status {
        self.wait_status(id, |s| !matches!(s, Status::Pending | Status::Failed))
            .await
    }

    pub async fn wait_status(&self, id: &str, done: impl Fn(Status) -> bool) -> Status {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let id2 = id.to_string();
            let row = self.store.run(move |c| inbox::get(c, &id2)).await;
            if let Ok(row) = &row
                && done(row.status)
            {
                return row.status;
            }
            assert!(
                Instant::now() < deadline,
                "event {id} did not settle: {row:?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until no event is pending or failed.
    pub async fn drained(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let counts = self.store.run(|c| inbox::counts(c)).await.unwrap();
            let waiting: i64 = counts
                .iter()
                .filter(|(s, _)| matches!(s, Status::Pending | Status::Failed))
                .map(|(_, n)| n)
                .sum();
            if waiting == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "inbox did not drain: {counts:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.handle.take() {
            h.await.unwrap().unwrap();
        }
    }
}

// Mirror comparison: two databases that applied the same inbox must hold the same
// mirror, whichever nodes, workers and order applied it (tests/multinode.rs).

/// A table the event handlers write, as a mirror comparison reads it.
pub struct MirrorTable {
    pub name: &'static str,
    /// Columns that name a row whatever order the rows were inserted in: what the diff
    /// lines up rows by.
    pub key: &'static [&'static str],
    /// The rows, in plain SQL both backends run.
    pub select: &'static str,
    /// Columns left out: those two correct applies of the same events may still
    /// disagree on (surrogate ids drawn in insert order, wall-clock times of the apply).
    pub skip: &'static [&'static str],
}

/// Every table an event handler writes (migrations/postgres/*.sql). [`mirror_dump`]
/// refuses a database with a table in neither this list nor [`NOT_MIRROR_TABLES`], so a
/// new table has to be placed on one side before the comparison passes again.
pub const MIRROR_TABLES: &[MirrorTable] = &[
    MirrorTable {
        name: "customers",
        key: &["id"],
        select: "SELECT * FROM customers",
        skip: &[],
    },
    MirrorTable {
        name: "payment_methods",
        key: &["id"],
        select: "SELECT * FROM payment_methods",
        skip: &[],
    },
    MirrorTable {
        name: "products",
        key: &["id"],
        select: "SELECT * FROM products",
        skip: &[],
    },
    MirrorTable {
        name: "prices",
        key: &["id"],
        select: "SELECT * FROM prices",
        skip: &[],
    },
    MirrorTable {
        name: "subscriptions",
        key: &["id"],
        select: "SELECT * FROM subscriptions",
        skip: &[],
    },
    MirrorTable {
        name: "subscription_items",
        key: &["id"],
        select: "SELECT * FROM subscription_items",
        skip: &[],
    },
    MirrorTable {
        name: "invoices",
        key: &["id"],
        select: "SELECT * FROM invoices",
        skip: &[],
    },
    MirrorTable {
        name: "payments",
        key: &["id"],
        select: "SELECT * FROM payments",
        skip: &[],
    },
    MirrorTable {
        name: "refunds",
        key: &["id"],
        select: "SELECT * FROM refunds",
        skip: &[],
    },
    MirrorTable {
        name: "checkout_sessions",
        key: &["id"],
        select: "SELECT * FROM checkout_sessions",
        skip: &[],
    },
    MirrorTable {
        name: "accounts",
        key: &["id"],
        select: "SELECT * FROM accounts",
        skip: &[],
    },
    MirrorTable {
        name: "coupons",
        key: &["id"],
        select: "SELECT * FROM coupons",
        skip: &[],
    },
    MirrorTable {
        name: "discounts",
        key: &["id"],
        select: "SELECT * FROM discounts",
        skip: &[],
    },
    MirrorTable {
        name: "disputes",
        key: &["id"],
        select: "SELECT * FROM disputes",
        skip: &[],
    },
    // `id` is drawn in insert order; `resolved_at` is the wall clock of the apply that
    // resolved the flag (events resolve flags at `now`); `resolved_by` names the first
    // success applied, which depends on the order when several succeed in one second
    // (or `already succeeded` when the failure came after them); `ev_created` is the
    // flag's own ordering version, bumped by the success that resolved it. That a
    // failure left a flag, its status, customer, detail and time must not depend on the
    // order (docs/decisions.md).
    MirrorTable {
        name: "flags",
        key: &["kind", "object_id"],
        select: "SELECT * FROM flags",
        skip: &["id", "resolved_at", "resolved_by", "ev_created"],
    },
    // `id` is drawn in insert order; a version is named by its subscription and event.
    MirrorTable {
        name: "subscription_versions",
        key: &["subscription", "ev_seq"],
        select: "SELECT * FROM subscription_versions",
        skip: &["id"],
    },
    // `version` is the surrogate id above: replaced by the version's natural key.
    MirrorTable {
        name: "subscription_version_items",
        key: &["subscription", "ev_seq", "item"],
        select: "SELECT i.*, v.subscription, v.ev_seq FROM subscription_version_items i
                 JOIN subscription_versions v ON v.id = i.version",
        skip: &["version"],
    },
];

/// Tables left out of mirror comparisons: the inbox itself (compared on its own), and
/// what no event handler writes (tokens, audit, idempotency records, alert and gap-repair
/// state, the migration ledger, the catalog's change counter).
pub const NOT_MIRROR_TABLES: &[&str] = &[
    "events",
    "audit_log",
    "api_tokens",
    "idempotency_keys",
    "alert_state",
    "gap_repair",
    "billd_migrations",
    "catalog_generation",
    "readiness_probe",
    "checkpoints",
    "dashboard_sessions",
];

/// Each mirror table's rows as sorted JSON text.
pub type MirrorDump = std::collections::BTreeMap<&'static str, Vec<String>>;

/// The mirror of a database (either backend), off the runtime thread: each row a JSON
/// object of its columns but the table's `skip`. Panics if the database has a table
/// that neither [`MIRROR_TABLES`] nor [`NOT_MIRROR_TABLES`] names.
pub fn mirror_dump(store: &Store) -> MirrorDump {
    use billd::store::db::ValueRef;
    let list = match store.backend() {
        billd::store::Backend::Postgres => {
            "SELECT table_name::text FROM information_schema.tables
             WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        }
        billd::store::Backend::Sqlite => {
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        }
    };
    blocking(|| {
        let conn = store.conn().expect("a connection");
        let mut stmt = conn.prepare(list).expect("list tables");
        let tables: std::collections::BTreeSet<String> = stmt
            .query_map((), |r| r.get(0))
            .expect("list tables")
            .map(|t| t.expect("a table name"))
            .collect();
        let known: std::collections::BTreeSet<String> = MIRROR_TABLES
            .iter()
            .map(|t| t.name)
            .chain(NOT_MIRROR_TABLES.iter().copied())
            .map(String::from)
            .collect();
        let unplaced: Vec<&String> = tables.difference(&known).collect();
        assert!(
            unplaced.is_empty(),
            "tables neither compared nor excluded (add them to MIRROR_TABLES or \
             NOT_MIRROR_TABLES in tests/common/mod.rs): {unplaced:?}"
        );
        MIRROR_TABLES
            .iter()
            .map(|t| {
                let mut stmt = conn.prepare(t.select).expect(t.name);
                let columns = stmt.column_names();
                let mut rows = Vec::new();
                let mut cursor = stmt.query(()).expect(t.name);
                while let Some(r) = cursor.next().expect(t.name) {
                    let mut row = serde_json::Map::new();
                    for (i, c) in columns.iter().enumerate() {
                        if t.skip.contains(&c.as_str()) {
                            continue;
                        }
                        let v = match r.get_ref(i).expect(c) {
                            ValueRef::Null => Value::Null,
                            ValueRef::Integer(n) => n.into(),
                            ValueRef::Real(x) => x.into(),
                            ValueRef::Text(s) => s.into(),
                            ValueRef::Blob(b) => hex::encode(b).into(),
                        };
                        row.insert(c.clone(), v);
                    }
                    rows.push(Value::Object(row).to_string());
                }
                rows.sort();
                (t.name, rows)
            })
            .collect()
    })
}

/// Asserts that two mirrors are equal; otherwise panics with, per table, the rows only
/// one side has and the columns that differ in rows both have (lined up by key).
pub fn assert_same_mirror(expected: &MirrorDump, actual: &MirrorDump, what: &str) {
    const SHOWN_PER_TABLE: usize = 12;
    let mut report = Vec::new();
    for table in MIRROR_TABLES {
        let keyed = |dump: &MirrorDump| -> std::collections::BTreeMap<String, serde_json::Map<String, Value>> {
            dump.get(table.name)
                .into_iter()
                .flatten()
                .map(|text| {
                    let Value::Object(row) = serde_json::from_str(text).expect("a JSON row") else {
                        panic!("{}: a row that is not an object: {text}", table.name)
                    };
                    let key = table
                        .key
                        .iter()
                        .map(|k| row.get(*k).map_or("null".into(), Value::to_string))
                        .collect::<Vec<_>>()
                        .join(" ");
                    (key, row)
                })
                .collect()
        };
        let (want, got) = (keyed(expected), keyed(actual));
        let mut lines = Vec::new();
        for (key, row) in &want {
            match got.get(key) {
                None => lines.push(format!("  {key}: missing")),
                Some(other) if other != row => {
                    let columns = row
                        .keys()
                        .chain(other.keys())
                        .collect::<std::collections::BTreeSet<_>>();
                    for c in columns {
                        let (a, b) = (row.get(c), other.get(c));
                        if a != b {
                            lines.push(format!(
                                "  {key}: {c}: expected {} got {}",
                                shorten(a),
                                shorten(b)
                            ));
                        }
                    }
                }
                Some(_) => {}
            }
        }
        for key in got.keys().filter(|k| !want.contains_key(*k)) {
            lines.push(format!("  {key}: unexpected row"));
        }
        if !lines.is_empty() {
            let more = lines.len().saturating_sub(SHOWN_PER_TABLE);
            lines.truncate(SHOWN_PER_TABLE);
            if more > 0 {
                lines.push(format!("  … and {more} more"));
            }
            report.push(format!(
                "{} ({} vs {} rows):\n{}",
                table.name,
                want.len(),
                got.len(),
                lines.join("\n")
            ));
        }
    }
    assert!(
        report.is_empty(),
        "{what}: the mirrors differ (expected = the first, got = the second):\n{}",
        report.join("\n")
    );
}

/// A JSON value for a diff line, cut to a readable length (`raw` columns are long).
fn shorten(v: Option<&Value>) -> String {
    const MAX: usize = 160;
    let text = v.map_or("(no column)".to_string(), Value::to_string);
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// A fresh PostgreSQL database of the test cluster, migrated, opened as a store.
/// Panics when the suite runs on SQLite.
pub fn fresh_postgres_store() -> Store {
    let url = fresh_postgres().expect("on PostgreSQL");
    blocking(|| {
        let store = Store::open_postgres(&url, None, 4, Duration::from_secs(5))
            .expect("open a fresh PostgreSQL database");
        store.migrate().expect("migrate it");
        store
    })
}

/// Copies every event of `from`'s inbox into the empty inbox of `to`, every column
/// (`seq` included, so the ordering rule sees the same versions) but the apply's own:
/// each copy is `pending`, never attempted, due at once. Returns how many were copied.
/// The serial replay a multi-node run is compared with starts from this copy.
pub fn copy_inbox_for_replay(from: &Store, to: &Store) -> usize {
    use billd::store::db::{ToSql, Value as SqlValue};
    blocking(|| {
        let source = from.conn().expect("a connection");
        let mut stmt = source
            .prepare("SELECT * FROM events ORDER BY seq")
            .expect("read the inbox");
        let columns = stmt.column_names();
        let reset = |column: &str| -> Option<SqlValue> {
            match column {
                "status" => Some(SqlValue::Text("pending".into())),
                "attempts" | "next_attempt_ms" => Some(SqlValue::Integer(0)),
                "processed_at_ms" | "last_error" => Some(SqlValue::Null),
                _ => None,
            }
        };
        let mut events: Vec<Vec<SqlValue>> = Vec::new();
        let mut rows = stmt.query(()).expect("read the inbox");
        while let Some(row) = rows.next().expect("an inbox row") {
            events.push(
                columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| {
                        reset(c).unwrap_or_else(|| SqlValue::from(row.get_ref(i).expect(c)))
                    })
                    .collect(),
            );
        }
        let mut target = to.conn().expect("a connection");
        let tx = target.transaction().expect("a transaction");
        let insert = format!(
            "INSERT INTO events ({}) VALUES ({})",
            columns.join(", "),
            (1..=columns.len())
                .map(|i| format!("?{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for event in &events {
            let params: Vec<&dyn ToSql> = event.iter().map(|v| v as &dyn ToSql).collect();
            tx.execute(&insert, params).expect("copy an event");
        }
        if to.backend() == billd::store::Backend::Postgres {
            // Explicit seqs leave the identity behind: an event stored later must not
            // draw a seq already taken.
            tx.execute_batch(
                "SELECT setval(pg_get_serial_sequence('events', 'seq'),
                               (SELECT coalesce(max(seq), 1) FROM events))",
            )
            .expect("move the seq identity past the copies");
        }
        tx.commit().expect("commit the copy");
        events.len()
    })
}

/// Events still waiting to be applied (`pending` or `failed`).
pub fn waiting(store: &Store) -> i64 {
    count(
        store,
        "SELECT count(*) FROM events WHERE status IN ('pending', 'failed')",
    )
}

/// Applies the inbox of `store` with one worker, one event per step, in claim order
/// (`next_attempt_ms`, then `seq`), until nothing waits: the serial reference that
/// concurrent applies are compared with. Returns the steps taken. Blocking.
pub fn apply_serially(store: &Store) -> Vec<billd::worker::Step> {
    let worker = billd::worker::Worker::new(
        store.clone(),
        replay_workers(),
        billd::config::StripeMode::Test,
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    blocking(|| {
        let mut steps = Vec::new();
        loop {
            let batch = worker.step_batch(1).expect("a serial step");
            if batch.is_empty() {
                let left = waiting(store);
                if left == 0 {
                    return steps;
                }
                // Only a failed event's retry can be waiting here: poll until it is due.
                assert!(
                    Instant::now() < deadline,
                    "the serial replay did not finish: {left} waiting"
                );
            }
            steps.extend(batch);
        }
    })
}

/// Worker settings for in-test workers: a failed event is retried within milliseconds
/// (a test must not wait out production backoff; the attempt count shows the failure).
pub fn replay_workers() -> billd::config::WorkerConfig {
    billd::config::WorkerConfig {
        backoff_base_ms: 5,
        backoff_max_ms: 20,
        ..Default::default()
    }
}

//! Test helpers: the real server on a random port with a fresh database, signed
//! webhooks, tokens, and waiting on state (never on sleeps alone).
#![allow(dead_code)]

pub mod daemon;
pub mod localstripe;

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

pub fn sign(body: &str, secret: &str, t: i64) -> String {
    billd::signature::sign(body.as_bytes(), secret, t)
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

//! Operating billd (issue 10): `billd doctor` against a wiremock Stripe, `billd backup`
//! while a real `billd serve` ingests signed events, `billd restore` refused while that
//! daemon runs and working once it stopped, and the systemd unit in `config/`.

mod common;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use billd::store::{Store, tokens};
use common::daemon::{self, Daemon};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

const KEY: &str = "sk_test_ops_0123456789";
const HOOK_SECRET: &str = "whsec_ops_secret";

/// What one run of the binary did.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs `billd ARGS --config CONFIG` with stdin closed, off the async runtime (a
/// wiremock Stripe in this process must keep answering meanwhile).
async fn billd(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_billd"));
    cmd.args(args)
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG")
        .env_remove("BILLD_CONFIG")
        .env("STRIPE_SECRET_KEY", KEY)
        .env("STRIPE_WEBHOOK_SECRET", HOOK_SECRET)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run billd"))
        .await
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

/// A config in `dir` with a migrated database and Stripe at `api_base`.
fn setup(dir: &Path, api_base: &str, extra: &str) -> PathBuf {
    let db = dir.join("data/billd.sqlite");
    let store = Store::open(&db, 1, Duration::from_secs(5)).unwrap();
    store.migrate().unwrap();
    drop(store);
    let config = dir.join("billd.toml");
    std::fs::write(
        &config,
        format!(
            "[database]\npath = {db:?}\n[log]\ndir = \"\"\n\
             [stripe]\napi_base = {api_base:?}\nmax_retries = 0\ntimeout_secs = 5\n{extra}"
        ),
    )
    .unwrap();
    config
}

fn http_date(t: time::OffsetDateTime) -> String {
    t.format(time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    ))
    .unwrap()
}

async fn stripe_with(endpoints: Value, date: time::OffsetDateTime) -> MockServer {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/webhook_endpoints"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("date", http_date(date).as_str())
                .insert_header("request-id", "req_doctor")
                .set_body_json(json!({ "object": "list", "data": endpoints, "has_more": false })),
        )
        .mount(&mock)
        .await;
    mock
}

fn endpoint(url: &str, status: &str, events: &[&str]) -> Value {
    json!({
        "id": "we_ops1",
        "object": "webhook_endpoint",
        "url": url,
        "status": status,
        "enabled_events": events,
        "api_version": "2024-06-20",
    })
}

/// The checks of `doctor --format json`, checking the shape on the way.
fn checks(run: &Run) -> Vec<Value> {
    let v: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("doctor JSON: {e}\n{}\n{}", run.stdout, run.stderr));
    let checks = v["checks"].as_array().expect("checks").clone();
    assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
    for c in &checks {
        let keys: BTreeSet<&str> = c.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, BTreeSet::from(["name", "ok", "detail", "fix"]), "{c}");
        assert!(c["name"].is_string() && c["ok"].is_boolean() && c["detail"].is_string());
        if c["ok"] == false {
            assert!(
                c["fix"].as_str().is_some_and(|f| !f.is_empty()),
                "a failed check has a fix: {c}"
            );
        }
    }
    checks
}

fn failed(checks: &[Value]) -> BTreeSet<String> {
    checks
        .iter()
        .filter(|c| c["ok"] == false)
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_on_a_good_setup_exits_0_and_prints_every_check_ok() {
    let dir = tempfile::tempdir().unwrap();
    let stripe = stripe_with(
        json!([
            endpoint("https://other.example.com/hooks", "enabled", &["*"]),
            endpoint(
                "https://billd.example.com/stripe/webhook",
                "enabled",
                &["*"]
            ),
        ]),
        time::OffsetDateTime::now_utc(),
    )
    .await;
    let config = setup(dir.path(), &stripe.uri(), "");
    let run = billd(&config, &["doctor", "--format", "json"], &[]).await;
    let checks = checks(&run);
    assert_eq!(run.code, Some(0), "{run:?}");
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    for name in [
        "config",
        "secrets",
        "stripe_key_mode",
        "database",
        "file_modes",
        "disk_space",
        "stripe_api",
        "clock",
        "webhook_endpoint",
        "webhook_enabled",
        "webhook_events",
        "webhook_api_version",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert!(failed(&checks).is_empty(), "{checks:#?}");
    // Secrets are masked: their prefix and length only.
    assert!(!run.stdout.contains(KEY) && !run.stdout.contains(HOOK_SECRET));
    assert!(
        run.stdout.contains("sk_test_… (22 characters)"),
        "{}",
        run.stdout
    );

    let table = billd(&config, &["doctor"], &[]).await;
    assert_eq!(table.code, Some(0), "{table:?}");
    assert!(table.stdout.contains("webhook_endpoint") && table.stdout.contains("we_ops1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_on_a_broken_setup_exits_1_and_names_each_failing_check_with_a_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let skewed = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let stripe = stripe_with(
        json!([endpoint(
            "https://billd.example.com/stripe/webhook",
            "disabled",
            &["customer.created", "charge.succeeded"]
        )]),
        skewed,
    )
    .await;
    let config = setup(dir.path(), &stripe.uri(), "mode = \"test\"\n");
    let data = dir.path().join("data");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        data.join("billd.sqlite"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    // Built at run time: a key-shaped literal in the sources looks like a leaked secret.
    let live = format!("sk_{}_ops_0123456789", "live");
    let run = billd(
        &config,
        &["doctor", "--format", "json"],
        &[("STRIPE_SECRET_KEY", live.as_str())],
    )
    .await;
    assert_eq!(run.code, Some(1), "{run:?}");
    let checks = checks(&run);
    assert_eq!(
        failed(&checks),
        BTreeSet::from(
            [
                "stripe_key_mode",
                "file_modes",
                "clock",
                "webhook_enabled",
                "webhook_events"
            ]
            .map(String::from)
        ),
        "{checks:#?}"
    );
    let by_name = |n: &str| checks.iter().find(|c| c["name"] == n).unwrap().clone();
    let modes = by_name("file_modes");
    assert!(
        modes["detail"].as_str().unwrap().contains("0755"),
        "{modes}"
    );
    assert!(
        modes["fix"].as_str().unwrap().contains("chmod 600"),
        "{modes}"
    );
    let events = by_name("webhook_events");
    assert!(
        events["fix"].as_str().unwrap().contains("invoice.paid"),
        "{events}"
    );
    assert!(
        by_name("stripe_key_mode")["detail"]
            .as_str()
            .unwrap()
            .contains("live key")
    );
    assert!(!run.stdout.contains(&live) && !run.stderr.contains(&live));
    // The doctor changes nothing: the loose modes are still there.
    let mode = std::fs::metadata(data.join("billd.sqlite"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_without_an_endpoint_for_billd_fails_the_endpoint_check() {
    let dir = tempfile::tempdir().unwrap();
    let stripe = stripe_with(
        json!([endpoint(
            "https://billd.example.com/other/hook",
            "enabled",
            &["*"]
        )]),
        time::OffsetDateTime::now_utc(),
    )
    .await;
    let config = setup(dir.path(), &stripe.uri(), "");
    let run = billd(&config, &["doctor", "--format", "json"], &[]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    let checks = checks(&run);
    let failed = failed(&checks);
    assert!(failed.contains("webhook_endpoint"), "{checks:#?}");
    assert!(!failed.contains("stripe_api") && !failed.contains("database"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_with_stripe_unreachable_fails_the_stripe_check_and_does_not_crash() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing listens on port 9 (discard) here: the connection is refused.
    let config = setup(dir.path(), "http://127.0.0.1:9", "");
    let run = billd(&config, &["doctor", "--format", "json"], &[]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    let checks = checks(&run);
    let failed = failed(&checks);
    assert!(failed.contains("stripe_api"), "{checks:#?}");
    assert!(!failed.contains("database") && !failed.contains("config"));
    let stripe = checks.iter().find(|c| c["name"] == "stripe_api").unwrap();
    assert!(
        stripe["detail"]
            .as_str()
            .unwrap()
            .contains("cannot reach Stripe"),
        "{stripe}"
    );
}

/// Posts signed events to `address` until `stop`, recording the ids answered 200.
fn start_posting(
    address: String,
    stop: Arc<AtomicBool>,
    answered: Arc<Mutex<Vec<String>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = reqwest::Client::new();
        let mut n = 0;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let id = format!("evt_ops_{n:06}");
            let body = common::fixture_as("customer.created.json", &id).to_string();
            let header = common::sign(&body, common::WEBHOOK_SECRET, billd::time::now_secs());
            let r = client
                .post(format!("{address}/stripe/webhook"))
                .header("Stripe-Signature", header)
                .body(body)
                .send()
                .await;
            if r.is_ok_and(|r| r.status() == 200) {
                answered.lock().unwrap().push(id);
            }
        }
    })
}

fn event_ids(db: &Path) -> BTreeSet<String> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut q = conn.prepare("SELECT id FROM events").unwrap();
    q.query_map((), |r| r.get::<_, String>(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_while_serving_is_consistent_and_restore_waits_for_the_daemon_to_stop() {
    let dir = tempfile::tempdir().unwrap();
    let config = daemon::write_config(dir.path());
    let db = dir.path().join("billd.sqlite");
    let running = Daemon::start(&config, common::WEBHOOK_SECRET);
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(Mutex::new(Vec::new()));
    let poster = start_posting(running.address.clone(), stop.clone(), answered.clone());
    while answered.lock().unwrap().len() < 100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let before: Vec<String> = answered.lock().unwrap().clone();
    let copy = dir.path().join("backup.sqlite");
    let run = billd(&config, &["backup", copy.to_str().unwrap()], &[]).await;
    if common::on_postgres() {
        // A SQLite feature: on PostgreSQL it says what to use instead.
        assert_eq!(run.code, Some(1), "{run:?}");
        assert!(run.stderr.contains("pg_dump"), "{run:?}");
        stop.store(true, Ordering::SeqCst);
        poster.await.unwrap();
        return;
    }
    assert_eq!(run.code, Some(0), "{run:?}");
    let during = answered.lock().unwrap().len() - before.len();
    stop.store(true, Ordering::SeqCst);
    poster.await.unwrap();

    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copy).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the backup is the owner's alone");
    }
    let conn = rusqlite::Connection::open(&copy).unwrap();
    let check: String = conn
        .query_row("PRAGMA integrity_check", (), |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    drop(conn);
    let saved = event_ids(&copy);
    let missing: Vec<&String> = before.iter().filter(|id| !saved.contains(*id)).collect();
    assert!(
        missing.is_empty(),
        "answered 200 before the backup began but not in it: {missing:?}"
    );
    eprintln!(
        "{} events before the backup, {during} while it ran",
        before.len()
    );

    // Overwriting needs --force.
    let again = billd(&config, &["backup", copy.to_str().unwrap()], &[]).await;
    assert_eq!(again.code, Some(1), "{again:?}");

    // While the daemon runs, restore refuses and changes nothing.
    let refused = billd(&config, &["restore", copy.to_str().unwrap(), "--yes"], &[]).await;
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(refused.stderr.contains("in use"), "{}", refused.stderr);
    let live = event_ids(&db);
    assert!(live.len() >= saved.len());
    let later = live.difference(&saved).next().cloned();

    running.stop();
    let restored = billd(&config, &["restore", copy.to_str().unwrap(), "--yes"], &[]).await;
    assert_eq!(restored.code, Some(0), "{restored:?}");
    assert_eq!(event_ids(&db), saved, "the database is the backup's");

    // The restored database serves the backed-up events.
    let store = Store::open(&db, 1, Duration::from_secs(5)).unwrap();
    let token = tokens::create(&store.conn().unwrap(), "ops", tokens::Scope::Read, 0)
        .unwrap()
        .token;
    drop(store);
    let again = Daemon::start(&config, common::WEBHOOK_SECRET);
    let client = reqwest::Client::new();
    for id in before.iter().step_by(25).chain(before.last()) {
        let r = client
            .get(format!("{}/stripe/events/{id}", again.address))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{id}");
    }
    if let Some(id) = later {
        let r = client
            .get(format!("{}/stripe/events/{id}", again.address))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{id} came after the backup");
    }
    again.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_without_yes_and_without_a_terminal_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = setup(dir.path(), "http://127.0.0.1:9", "");
    let db = dir.path().join("data/billd.sqlite");
    let copy = dir.path().join("copy.sqlite");
    let run = billd(&config, &["backup", copy.to_str().unwrap()], &[]).await;
    assert_eq!(run.code, Some(0), "{run:?}");
    let before = std::fs::read(&db).unwrap();
    let listing = |d: &Path| -> BTreeSet<String> {
        std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect()
    };
    let files = listing(db.parent().unwrap());
    let run = billd(&config, &["restore", copy.to_str().unwrap()], &[]).await;
    assert_ne!(run.code, Some(0), "{run:?}");
    assert!(run.stderr.contains("--yes"), "{}", run.stderr);
    assert_eq!(std::fs::read(&db).unwrap(), before);
    assert_eq!(
        listing(db.parent().unwrap()),
        files,
        "no file made or removed"
    );

    // Not a billd database: refused before anything else.
    let junk = dir.path().join("junk.sqlite");
    std::fs::write(&junk, b"not a database").unwrap();
    let run = billd(&config, &["restore", junk.to_str().unwrap(), "--yes"], &[]).await;
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

#[test]
fn the_systemd_unit_has_every_required_directive() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/billd.service");
    let text = std::fs::read_to_string(&path).expect("config/billd.service");
    let mut section = String::new();
    let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
    let mut values: Vec<(String, String, String)> = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not a directive: {line}"));
        seen.insert((section.clone(), key.trim().to_string()));
        values.push((
            section.clone(),
            key.trim().to_string(),
            value.trim().to_string(),
        ));
    }
    let value = |s: &str, k: &str| {
        values
            .iter()
            .find(|(sec, key, _)| sec == s && key == k)
            .map(|(_, _, v)| v.as_str())
            .unwrap_or_else(|| panic!("[{s}] {k}= missing"))
    };
    for (s, k) in [
        ("Unit", "Description"),
        ("Unit", "After"),
        ("Service", "Type"),
        ("Service", "User"),
        ("Service", "ExecStart"),
        ("Service", "Restart"),
        ("Service", "EnvironmentFile"),
        ("Service", "ReadWritePaths"),
        ("Service", "LimitNOFILE"),
        ("Service", "ProtectSystem"),
        ("Service", "NoNewPrivileges"),
        ("Install", "WantedBy"),
    ] {
        value(s, k);
    }
    assert_eq!(value("Service", "Type"), "simple");
    assert_eq!(value("Service", "ProtectSystem"), "strict");
    assert_eq!(value("Service", "NoNewPrivileges"), "yes");
    assert_ne!(value("Service", "User"), "root");
    assert!(value("Service", "ExecStart").contains(" serve"));
    assert!(value("Service", "LimitNOFILE").parse::<u64>().unwrap() >= 4096);
    assert!(value("Service", "ReadWritePaths").contains("/var/lib/billd"));
}

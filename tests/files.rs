//! What `billd serve` leaves on the machine (issue 7): a database, its `-wal`/`-shm`
//! and logs readable by their owner only, log lines whose size the caller cannot
//! choose, and only `[log] keep_days` daily files.

mod common;

use std::{os::unix::fs::PermissionsExt, path::Path};

use common::{daemon::*, fixture_as, sign};
use serde_json::Value;

const WEBHOOK_SECRET: &str = "whsec_files_secret_value";

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn log_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("billd.log")
        })
        .collect();
    files.sort();
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_s_files_are_private_and_its_logs_stay_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let logs = data.join("logs");
    // Old daily files from earlier runs: only the newest `keep_days` survive.
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    for day in 1..=5 {
        std::fs::write(logs.join(format!("billd.log.2020-01-0{day}")), "{}\n").unwrap();
    }
    let config = dir.path().join("billd.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nshutdown_grace_secs = 5\n\
             [database]\npath = \"{db}\"\n\
             [log]\nformat = \"json\"\ndir = \"{logs}\"\nkeep_days = 2\n",
            db = data.join("billd.sqlite").display(),
            logs = logs.display(),
        ),
    )
    .unwrap();
    let daemon = Daemon::start(&config, WEBHOOK_SECRET);
    let client = reqwest::Client::new();

    // A stored event, so the WAL exists.
    let body = fixture_as("customer.created.json", "evt_files_1").to_string();
    let header = sign(&body, WEBHOOK_SECRET, billd::time::now_secs());
    let r = client
        .post(format!("{}/stripe/webhook", daemon.address))
        .header("Stripe-Signature", header)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Unknown paths of 60,000 characters, unauthenticated.
    let long = "a".repeat(60_000);
    for _ in 0..20 {
        let r = client
            .get(format!("{}/{long}", daemon.address))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }

    let lines = daemon.stop();
    for file in ["billd.sqlite", "billd.sqlite-wal", "billd.sqlite-shm"] {
        let path = data.join(file);
        if file == "billd.sqlite" || path.exists() {
            assert_eq!(mode(&path), 0o600, "{file}");
        }
    }
    assert_eq!(mode(&data), 0o700, "the database directory");
    assert_eq!(mode(&logs), 0o700, "the log directory");
    let files = log_files(&logs);
    assert!(files.len() <= 2, "{files:?}");
    let today = files.last().expect("today's log file");
    assert_eq!(mode(today), 0o600, "{}", today.display());

    // Every line is short whatever the path was, and names the route, not the path.
    let written = std::fs::read_to_string(today).unwrap();
    let mut unmatched = 0;
    for line in written.lines().chain(lines.iter().map(String::as_str)) {
        assert!(line.len() < 2_000, "a long line: {}…", &line[..200]);
        let v: Value = serde_json::from_str(line).unwrap();
        // One span list per line, not the current span again beside it.
        assert!(v.get("span").is_none(), "{line}");
        if line.contains("(no route)") {
            unmatched += 1;
        }
    }
    assert!(
        unmatched >= 20,
        "unmatched requests are logged by route: {unmatched}"
    );
}

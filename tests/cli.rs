//! The `billd` binary as an operator meets it (DESIGN §4): each test runs the real
//! executable against its own temporary config and database, with stdin closed, and
//! checks the exit code (0 success, 1 failure, 2 usage), stdout and stderr.

mod common;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{SystemTime, UNIX_EPOCH},
};

use billd::store::{
    Store,
    events::{self, Inserted, NewEvent},
    flags,
};
use serde_json::Value;

const SECRET_KEY: &str = "sk_test_x";
const WEBHOOK_SECRET: &str = "whsec_x";

/// A temporary directory with a config file naming a database inside it.
struct TestEnv {
    dir: tempfile::TempDir,
    config: PathBuf,
    db: PathBuf,
}

impl TestEnv {
    fn new() -> TestEnv {
        TestEnv::with_extra_config("")
    }

    /// The standard config followed by `extra` TOML.
    fn with_extra_config(extra: &str) -> TestEnv {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("billd.sqlite");
        let config = dir.path().join("billd.toml");
        let text = format!(
            "{}\n[log]\ndir = \"\"\n{extra}",
            common::database_toml(dir.path())
        );
        std::fs::write(&config, text).expect("write config");
        TestEnv { dir, config, db }
    }

    /// `billd --config <tmp>/billd.toml`, with test secrets, stdin closed, run in the temp
    /// dir so no `./config/billd.toml` is picked up by accident.
    fn billd(&self) -> Command {
        let mut cmd = self.bare_billd();
        cmd.arg("--config").arg(&self.config);
        cmd
    }

    /// Like [`TestEnv::billd`] but without `--config`.
    fn bare_billd(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_billd"));
        cmd.current_dir(self.dir.path())
            .env_remove("BILLD_CONFIG")
            .env_remove("RUST_LOG")
            .env("STRIPE_SECRET_KEY", SECRET_KEY)
            .env("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .stdin(Stdio::null());
        cmd
    }

    fn run(&self, args: &[&str]) -> Run {
        Run::of(self.billd().args(args))
    }

    /// Opens the database through the library, migrated, as the daemon would.
    fn store(&self) -> Store {
        common::open_store(self.dir.path())
    }

    /// Stores a fixture event (status pending) and returns its id.
    fn insert_fixture_event(&self, fixture: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/events")
            .join(fixture);
        let payload = std::fs::read_to_string(&path).expect("read fixture");
        let json: Value = serde_json::from_str(&payload).expect("fixture is JSON");
        let event = NewEvent {
            id: json["id"].as_str().expect("event id").to_string(),
            type_: json["type"].as_str().expect("event type").to_string(),
            account: None,
            livemode: json["livemode"].as_bool().unwrap_or(false),
            api_version: json["api_version"].as_str().map(str::to_string),
            created: json["created"].as_i64().expect("event created"),
            payload,
        };
        let store = self.store();
        let conn = store.conn().expect("connection");
        let inserted = events::insert(&conn, &event, now_ms()).expect("insert event");
        assert_eq!(inserted, Inserted::New);
        event.id
    }

    fn count(&self, sql: &str) -> i64 {
        let store = self.store();
        let conn = store.conn().expect("open db");
        conn.query_row(sql, (), |r| r.get(0)).expect("count query")
    }
}

/// What one run of the binary did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    what: String,
}

impl Run {
    fn of(cmd: &mut Command) -> Run {
        let what = format!("{:?}", cmd.get_args().collect::<Vec<_>>());
        let out = cmd.output().expect("run billd");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
            what,
        }
    }

    #[track_caller]
    fn expect_code(self, code: i32) -> Run {
        assert_eq!(
            self.code,
            Some(code),
            "billd {} exited with {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.what,
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    fn succeeds(self) -> Run {
        self.expect_code(0)
    }

    #[track_caller]
    fn fails(self) -> Run {
        self.expect_code(1)
    }

    #[track_caller]
    fn fails_with_usage_error(self) -> Run {
        self.expect_code(2)
    }

    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout of billd {} is not JSON ({e}):\n{}",
                self.what, self.stdout
            )
        })
    }

    #[track_caller]
    fn stderr_mentions(&self, needle: &str) -> &Run {
        assert!(
            self.stderr.contains(needle),
            "stderr of billd {} does not mention {needle:?}:\n{}",
            self.what,
            self.stderr
        );
        self
    }
}

fn toml_string(path: &Path) -> String {
    let s = path.to_str().expect("UTF-8 temp path");
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("time fits")
}

fn keys(v: &Value) -> BTreeSet<&str> {
    v.as_object()
        .expect("a JSON object")
        .keys()
        .map(String::as_str)
        .collect()
}

/// The `result` of each replayed event, by id.
fn replay_results(run: &Run) -> Vec<(String, String)> {
    run.json()
        .as_array()
        .expect("a JSON array")
        .iter()
        .map(|r| {
            (
                r["id"].as_str().expect("id").to_string(),
                r["result"].as_str().expect("result").to_string(),
            )
        })
        .collect()
}

// ---------------------------------------------------------------- tokens

#[test]
fn token_create_prints_the_token_once_and_token_list_shows_it_without_the_secret() {
    let env = TestEnv::new();
    let created = env
        .run(&[
            "token", "create", "--name", "ci", "--scope", "read", "--format", "json",
        ])
        .succeeds();
    let made = created.json();
    assert_eq!(
        keys(&made),
        BTreeSet::from(["id", "name", "scope", "token"])
    );
    assert_eq!(made["name"], "ci");
    assert_eq!(made["scope"], "read");
    let id = made["id"].as_str().expect("id is a string");
    let token = made["token"].as_str().expect("token is a string");
    assert!(id.starts_with("tok_"), "{id}");
    assert!(token.len() > 32, "token looks too short: {token}");
    created.stderr_mentions("cannot be shown again");

    let listed = env.run(&["token", "list", "--format", "json"]).succeeds();
    let list = listed.json();
    let list = list.as_array().expect("a JSON array");
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["id"], id);
    assert_eq!(list[0]["name"], "ci");
    assert_eq!(list[0]["scope"], "read");
    assert!(list[0]["revoked_at"].is_null());
    assert!(!keys(&list[0]).contains("token"));
    for format in ["json", "csv", "table"] {
        let run = env.run(&["token", "list", "--format", format]).succeeds();
        assert!(
            !run.stdout.contains(token),
            "token list --format {format} shows the secret"
        );
        assert!(
            run.stdout.contains(id),
            "token list --format {format} lacks the id"
        );
    }
}

#[test]
fn token_list_as_csv_neutralises_a_name_a_spreadsheet_would_run() {
    let env = TestEnv::new();
    let name = "=HYPERLINK(\"https://evil.example\",\"x\")";
    env.run(&["token", "create", "--name", name, "--scope", "read"])
        .succeeds();
    let csv = env.run(&["token", "list", "--format", "csv"]).succeeds();
    let lines: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", csv.stdout);
    assert!(
        lines[1].contains(",\"'=HYPERLINK(\"\"https://evil.example\"\",\"\"x\"\")\","),
        "the name is not neutralised: {}",
        lines[1]
    );
    // JSON shows the name as it is: only CSV is read by spreadsheets.
    let json = env
        .run(&["token", "list", "--format", "json"])
        .succeeds()
        .json();
    assert_eq!(json[0]["name"], name);
}

#[test]
fn token_revoke_marks_the_token_revoked_and_a_second_revoke_changes_nothing() {
    let env = TestEnv::new();
    let made = env
        .run(&[
            "token", "create", "--name", "ops", "--scope", "admin", "--format", "json",
        ])
        .succeeds()
        .json();
    let id = made["id"].as_str().expect("id");
    env.run(&["token", "revoke", id]).succeeds();
    let list = env
        .run(&["token", "list", "--format", "json"])
        .succeeds()
        .json();
    let revoked_at = list[0]["revoked_at"].clone();
    assert!(revoked_at.is_string(), "{list}");

    env.run(&["token", "revoke", id]).succeeds();
    let list = env
        .run(&["token", "list", "--format", "json"])
        .succeeds()
        .json();
    assert_eq!(list[0]["revoked_at"], revoked_at);
}

#[test]
fn token_revoke_of_an_unknown_id_fails_with_a_clear_message() {
    let env = TestEnv::new();
    let run = env.run(&["token", "revoke", "tok_nope"]).fails();
    run.stderr_mentions("no token with id tok_nope");
    assert!(run.stdout.is_empty(), "{}", run.stdout);
}

#[test]
fn token_create_without_a_name_is_a_usage_error() {
    let env = TestEnv::new();
    env.run(&["token", "create", "--scope", "read"])
        .fails_with_usage_error()
        .stderr_mentions("--name");
}

#[test]
fn token_create_with_an_unknown_scope_is_a_usage_error() {
    let env = TestEnv::new();
    env.run(&["token", "create", "--name", "x", "--scope", "root"])
        .fails_with_usage_error()
        .stderr_mentions("root");
}

// ---------------------------------------------------------------- config

#[test]
fn config_check_succeeds_and_never_prints_the_secrets() {
    let env = TestEnv::new();
    let key = "sk_test_51VerySecretApiKeyValue";
    let hook = "whsec_VerySecretSigningValue";
    for format in ["table", "json", "csv"] {
        let run = Run::of(
            env.billd()
                .env("STRIPE_SECRET_KEY", key)
                .env("STRIPE_WEBHOOK_SECRET", format!("{hook},whsec_Other"))
                .args(["config", "check", "--format", format]),
        )
        .succeeds();
        for secret in [key, hook, "whsec_Other", "VerySecret"] {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "config check --format {format} printed {secret:?}:\n{}\n{}",
                run.stdout,
                run.stderr
            );
        }
        assert!(
            run.stdout.contains("STRIPE_WEBHOOK_SECRET"),
            "{}",
            run.stdout
        );
    }
}

#[test]
fn config_check_shows_no_character_of_a_secret_without_a_known_prefix_nor_a_urls_password() {
    let env = TestEnv::with_extra_config(
        "\n[stripe]\napi_base = \"https://billd:Hunter2Password@stripe.example:8443/v1\"\n",
    );
    let key = "mykey_ZZsecretpart";
    let hook = "hook_YYsecretpart";
    for format in ["table", "json", "csv"] {
        let run = Run::of(
            env.billd()
                .env("STRIPE_SECRET_KEY", key)
                .env(
                    "STRIPE_WEBHOOK_SECRET",
                    format!("whsec_XXsecretpart,{hook}"),
                )
                .args(["config", "check", "--format", format]),
        )
        .succeeds();
        let printed = format!("{}{}", run.stdout, run.stderr);
        for leak in [
            "mykey", "ZZsecret", "hook_YY", "YYsecret", "XXsecret", "Hunter2", "billd:",
        ] {
            assert!(
                !printed.contains(leak),
                "config check --format {format} printed {leak:?}:\n{printed}"
            );
        }
        assert!(printed.contains("stripe.example:8443/v1"), "{printed}");
    }
    let settings = Run::of(
        env.billd()
            // Built at run time: a key-shaped literal looks like a leaked secret.
            .env("STRIPE_SECRET_KEY", format!("sk_{}_AAsecretpart", "live"))
            .env(
                "STRIPE_WEBHOOK_SECRET",
                "whsec_XXsecretpart,hook_YYsecretpart",
            )
            .args(["config", "check", "--format", "json"]),
    );
    // A live key in test mode is refused; the default mode is test.
    settings.fails();
    let settings = Run::of(
        env.billd()
            .env("STRIPE_SECRET_KEY", "rk_test_AAsecretpart")
            .env(
                "STRIPE_WEBHOOK_SECRET",
                "whsec_XXsecretpart,hook_YYsecretpart",
            )
            .args(["config", "check", "--format", "json"]),
    )
    .succeeds()
    .json();
    assert_eq!(
        settings["stripe secret key"],
        "STRIPE_SECRET_KEY = rk_test_… (20 characters)"
    );
    assert_eq!(
        settings["webhook secrets"],
        "STRIPE_WEBHOOK_SECRET = 2 secret(s): whsec_… (18 characters), … (no known prefix, 17 characters)"
    );
    assert_eq!(
        settings["stripe.api_base"],
        "https://***@stripe.example:8443/v1"
    );
}

#[test]
fn config_check_as_json_shows_the_settings_in_use() {
    let env = TestEnv::new();
    let settings = env
        .run(&["config", "check", "--format", "json"])
        .succeeds()
        .json();
    assert_eq!(settings["config file"], env.config.display().to_string());
    match common::database_of(env.dir.path()).url {
        Some(url) => {
            // The database's URL, never its user or password.
            let shown = settings["database.url"].as_str().unwrap();
            let host = url.rsplit_once('@').unwrap().1;
            assert_eq!(shown, format!("postgres://***@{host}"));
        }
        None => assert_eq!(settings["database.path"], env.db.display().to_string()),
    }
    assert_eq!(settings["stripe.mode"], "test");
}

#[test]
fn config_check_fails_naming_the_webhook_secret_variable_when_it_is_unset() {
    let env = TestEnv::new();
    Run::of(
        env.billd()
            .env_remove("STRIPE_WEBHOOK_SECRET")
            .args(["config", "check"]),
    )
    .fails()
    .stderr_mentions("STRIPE_WEBHOOK_SECRET");
}

#[test]
fn config_check_fails_naming_an_unknown_key() {
    let env = TestEnv::with_extra_config("\n[server]\nlisten_addr = \"127.0.0.1:1\"\n");
    env.run(&["config", "check"])
        .fails()
        .stderr_mentions("listen_addr");
}

#[test]
fn config_check_fails_naming_an_invalid_value() {
    let env = TestEnv::with_extra_config("\n[workers]\ncount = 0\n");
    env.run(&["config", "check"])
        .fails()
        .stderr_mentions("workers.count");
}

#[test]
fn a_missing_config_file_fails_with_its_path_in_the_message() {
    let env = TestEnv::new();
    let missing = env.dir.path().join("nowhere/billd.toml");
    let run = Run::of(
        env.bare_billd()
            .arg("--config")
            .arg(&missing)
            .args(["token", "list"]),
    )
    .fails();
    run.stderr_mentions(&missing.display().to_string());
}

#[test]
fn the_billd_config_variable_chooses_the_config_file() {
    let env = TestEnv::new();
    let settings = Run::of(
        env.bare_billd()
            .env("BILLD_CONFIG", &env.config)
            .args(["config", "check", "--format", "json"]),
    )
    .succeeds()
    .json();
    assert_eq!(settings["config file"], env.config.display().to_string());
}

#[test]
fn the_config_flag_wins_over_the_billd_config_variable() {
    let env = TestEnv::new();
    Run::of(
        env.billd()
            .env("BILLD_CONFIG", env.dir.path().join("missing.toml"))
            .args(["config", "check"]),
    )
    .succeeds();
}

#[test]
fn without_any_config_file_billd_says_where_it_looked() {
    if Path::new("/etc/billd/billd.toml").exists() {
        return; // this machine has a system-wide config, which billd would rightly use
    }
    let env = TestEnv::new();
    Run::of(env.bare_billd().args(["config", "check"]))
        .fails()
        .stderr_mentions("BILLD_CONFIG");
}

#[test]
fn a_database_that_cannot_be_opened_fails_naming_the_key() {
    if common::on_postgres() {
        // Nothing listens on port 1.
        let env = TestEnv::with_extra_config("");
        let text = std::fs::read_to_string(&env.config).unwrap();
        let url = regex_free_url(&text);
        std::fs::write(
            &env.config,
            text.replace(&url, "postgres://billd@127.0.0.1:1/none"),
        )
        .unwrap();
        env.run(&["events", "list"])
            .fails()
            .stderr_mentions("database.url");
        return;
    }
    // The database path is an existing directory: SQLite cannot open it.
    let env = TestEnv::new();
    std::fs::create_dir(&env.db).expect("make a directory where the database goes");
    env.run(&["events", "list"])
        .fails()
        .stderr_mentions("database.path");
}

/// The `url = "…"` value of a config text.
fn regex_free_url(config: &str) -> String {
    let line = config
        .lines()
        .find(|l| l.starts_with("url = "))
        .expect("a url line");
    line["url = ".len()..].trim_matches('"').to_string()
}

// ---------------------------------------------------------------- migrate

#[test]
fn migrate_status_shows_pending_migrations_until_migrate_applies_them() {
    let env = TestEnv::new();
    let before = env.run(&["migrate", "--status"]).succeeds();
    let latest = billd::store::latest_migration();
    assert!(
        before.stdout.contains(&format!("0 of {latest}")),
        "{}",
        before.stdout
    );

    let applied = env.run(&["migrate"]).succeeds();
    assert!(
        applied
            .stdout
            .contains(&format!("applied {latest} migration")),
        "{}",
        applied.stdout
    );

    let after = env.run(&["migrate", "--status"]).succeeds();
    assert!(
        after
            .stdout
            .contains(&format!("{latest} of {latest} (up to date)")),
        "{}",
        after.stdout
    );

    let again = env.run(&["migrate"]).succeeds();
    assert!(
        again.stdout.contains("applied 0 migration"),
        "{}",
        again.stdout
    );
}

// ---------------------------------------------------------------- events

#[test]
fn events_list_on_an_empty_database_prints_an_empty_json_array() {
    let env = TestEnv::new();
    let run = env.run(&["events", "list", "--format", "json"]).succeeds();
    assert_eq!(run.json(), Value::Array(vec![]));
}

#[test]
fn events_list_with_a_limit_out_of_range_is_a_usage_error() {
    let env = TestEnv::new();
    env.run(&["events", "list", "--limit", "0"])
        .fails_with_usage_error();
    env.run(&["events", "list", "--limit", "101"])
        .fails_with_usage_error();
}

#[test]
fn events_replay_without_a_selection_is_a_usage_error() {
    let env = TestEnv::new();
    env.run(&["events", "replay"]).fails_with_usage_error();
}

#[test]
fn events_replay_with_ids_and_a_selection_is_a_usage_error() {
    let env = TestEnv::new();
    env.run(&["events", "replay", "evt_1", "--failed"])
        .fails_with_usage_error();
}

#[test]
fn events_replay_with_an_unparseable_time_is_a_usage_error() {
    let env = TestEnv::new();
    env.run(&["events", "replay", "--since", "yesterday"])
        .fails_with_usage_error()
        .stderr_mentions("RFC 3339");
}

#[test]
fn replaying_a_missing_event_fails_and_says_not_found() {
    let env = TestEnv::new();
    let run = env
        .run(&["events", "replay", "evt_missing", "--format", "json"])
        .fails();
    assert_eq!(
        replay_results(&run),
        [("evt_missing".to_string(), "not found".to_string())]
    );
}

#[test]
fn replaying_an_event_applies_it_and_replaying_again_does_not_double_its_effect() {
    let env = TestEnv::new();
    let id = env.insert_fixture_event("customer.created.json");

    for _ in 0..2 {
        let run = env
            .run(&["events", "replay", &id, "--format", "json"])
            .succeeds();
        assert_eq!(
            replay_results(&run),
            [(id.clone(), "processed".to_string())]
        );
        assert_eq!(
            env.count("SELECT count(*) FROM customers WHERE id = 'cus_IhGfebO16cMIGN'"),
            1
        );
    }
    assert_eq!(env.count("SELECT count(*) FROM customers"), 1);

    let listed = env
        .run(&["events", "list", "--format", "json"])
        .succeeds()
        .json();
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["status"], "processed");
}

#[test]
fn replaying_a_payment_twice_keeps_one_payment_row_and_audits_each_replay() {
    let env = TestEnv::new();
    let id = env.insert_fixture_event("charge.succeeded.json");

    for _ in 0..2 {
        let run = Run::of(
            env.billd()
                .env("USER", "alice")
                .args(["events", "replay", &id, "--format", "json"]),
        )
        .succeeds();
        assert_eq!(
            replay_results(&run),
            [(id.clone(), "processed".to_string())]
        );
    }
    assert_eq!(env.count("SELECT count(*) FROM payments"), 1);
    assert_eq!(env.count("SELECT sum(amount) FROM payments"), 3000);
    assert_eq!(
        env.count(
            "SELECT count(*) FROM audit_log WHERE action = 'event.replay' AND actor = 'alice'"
        ),
        2
    );
}

#[test]
fn events_replay_since_a_time_replays_every_event_received_after_it() {
    let env = TestEnv::new();
    let created = env.insert_fixture_event("customer.created.json");
    let updated = env.insert_fixture_event("customer.updated.json");

    let run = env
        .run(&[
            "events",
            "replay",
            "--since",
            "2000-01-01",
            "--format",
            "json",
        ])
        .succeeds();
    assert_eq!(
        replay_results(&run),
        [
            (created, "processed".to_string()),
            (updated, "processed".to_string())
        ]
    );
    assert_eq!(env.count("SELECT count(*) FROM customers"), 1);

    let none = env
        .run(&[
            "events",
            "replay",
            "--since",
            "2999-01-01",
            "--format",
            "json",
        ])
        .succeeds();
    assert_eq!(none.json(), Value::Array(vec![]));
}

// ---------------------------------------------------------------- flags

#[test]
fn flags_list_as_csv_prints_a_header_line_even_when_empty() {
    let env = TestEnv::new();
    let run = env.run(&["flags", "list", "--format", "csv"]).succeeds();
    assert_eq!(
        run.stdout,
        "id,kind,object_id,customer,status,created,detail\n"
    );
}

#[test]
fn flags_resolve_closes_an_open_flag_and_records_who_resolved_it() {
    let env = TestEnv::new();
    {
        let store = env.store();
        let conn = store.conn().expect("connection");
        let detail = "card_declined, insufficient_funds";
        flags::open(
            &conn,
            flags::Kind::PaymentFailed,
            "in_1",
            Some("cus_1"),
            detail,
            1_700_000_000,
        )
        .expect("open flag");
    }
    let csv = env
        .run(&["flags", "list", "--status", "open", "--format", "csv"])
        .succeeds();
    let lines: Vec<&str> = csv.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", csv.stdout);
    assert!(
        lines[1].ends_with(",\"card_declined, insufficient_funds\""),
        "a cell with a comma is quoted: {}",
        lines[1]
    );
    let id = lines[1].split(',').next().expect("id cell");

    let resolved = Run::of(
        env.billd()
            .env("USER", "alice")
            .args(["flags", "resolve", id, "--format", "json"]),
    )
    .succeeds()
    .json();
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["resolved_by"], "alice");

    let open = env
        .run(&["flags", "list", "--status", "open", "--format", "json"])
        .succeeds();
    assert_eq!(open.json(), Value::Array(vec![]));
}

#[test]
fn flags_resolve_of_an_unknown_id_fails() {
    let env = TestEnv::new();
    env.run(&["flags", "resolve", "999"])
        .fails()
        .stderr_mentions("no flag with id 999");
}

#[test]
fn flags_resolve_of_a_non_number_is_a_usage_error() {
    let env = TestEnv::new();
    env.run(&["flags", "resolve", "flag_1"])
        .fails_with_usage_error();
}

#[test]
fn events_list_fits_the_terminal_width_and_cuts_a_long_error() {
    let env = TestEnv::new();
    let id = env.insert_fixture_event("customer.created.json");
    let long_error = format!("handler failed: {}", "a very long reason ".repeat(20));
    let store = env.store();
    let conn = store.conn().expect("open db");
    conn.execute(
        "UPDATE events SET status = 'failed', last_error = ?1 WHERE id = ?2",
        billd::params![long_error, id],
    )
    .expect("mark failed");
    let run = Run::of(env.billd().env("COLUMNS", "100").args(["events", "list"])).succeeds();
    let lines: Vec<&str> = run.stdout.lines().collect();
    for line in &lines {
        assert!(line.chars().count() <= 100, "wider than 100: {line}");
    }
    assert!(
        run.stdout.contains('…'),
        "the long error is cut:\n{}",
        run.stdout
    );
    // JSON keeps the whole error.
    let json = env
        .run(&["events", "list", "--format", "json"])
        .succeeds()
        .json();
    assert_eq!(json[0]["last_error"], long_error.as_str());
}

#[test]
fn events_list_watch_prints_the_list_again_until_interrupted() {
    use std::io::{BufRead, BufReader};
    let env = TestEnv::new();
    env.insert_fixture_event("customer.created.json");
    let mut child = env
        .billd()
        .args(["events", "list", "--watch", "1"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("billd starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut headers = 0;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("a line");
        if line.starts_with("billd events list, every 1 s") {
            headers += 1;
            if headers == 2 {
                break;
            }
        }
    }
    child.kill().expect("kill");
    child.wait().expect("wait");
    assert_eq!(headers, 2);
}

/// A receiver answering every POST with `status`.
async fn alert_receiver(status: u16) -> wiremock::MockServer {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(status).set_body_string("ok"))
        .mount(&server)
        .await;
    server
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_test_exits_0_when_every_sink_accepts_and_the_command_reads_the_alert_on_stdin() {
    let receiver = alert_receiver(200).await;
    let scratch = tempfile::tempdir().expect("temp dir");
    let script = scratch.path().join("sink.sh");
    let got = scratch.path().join("alert.json");
    std::fs::write(&script, "#!/bin/sh\ncat > \"$1\"\n").expect("write script");
    let mut perms = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o700);
    std::fs::set_permissions(&script, perms).unwrap();
    let env = TestEnv::with_extra_config(&format!(
        "[alerts]\nwebhook_url_env = \"BILLD_TEST_ALERT_URL\"\ncommand = [{}, {}]\n",
        toml_string(&script),
        toml_string(&got)
    ));
    let url = format!("{}/services/T0/B0/secretpart", receiver.uri());
    let run = Run::of(
        env.billd()
            .args(["--format", "json", "alerts", "test"])
            .env("BILLD_TEST_ALERT_URL", &url),
    )
    .succeeds();
    let answers = run.json();
    assert_eq!(answers[0]["sink"], "webhook");
    assert_eq!(answers[0]["accepted"], true);
    assert!(answers[0]["answer"].as_str().unwrap().contains("200"));
    assert_eq!(answers[1]["sink"], "command");
    assert!(!run.stdout.contains("secretpart") && !run.stderr.contains("secretpart"));
    let alert: Value =
        serde_json::from_str(&std::fs::read_to_string(&got).expect("the command wrote stdin"))
            .expect("stdin was JSON");
    assert_eq!(alert["kind"], "test");
    assert_eq!(alert["resolved"], false);
    let received = receiver.received_requests().await.unwrap();
    let posted: Value = serde_json::from_slice(&received[0].body).unwrap();
    assert!(posted["text"].as_str().unwrap().contains("test"));

    let checked = Run::of(
        env.billd()
            .args(["config", "check"])
            .env("BILLD_TEST_ALERT_URL", &url),
    )
    .succeeds();
    assert!(!checked.stdout.contains("secretpart"), "{}", checked.stdout);
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_test_exits_1_when_a_sink_answers_500() {
    let receiver = alert_receiver(500).await;
    let env = TestEnv::with_extra_config(&format!(
        "[alerts]\nwebhook_url = \"{}/hook\"\n",
        receiver.uri()
    ));
    let run = env.run(&["alerts", "test"]).fails();
    assert!(run.stdout.contains("500"), "{}", run.stdout);
    run.stderr_mentions("not every configured alert sink accepted");
}

#[test]
fn alerts_test_exits_1_with_a_clear_message_when_no_sink_is_configured() {
    TestEnv::new()
        .run(&["alerts", "test"])
        .fails()
        .stderr_mentions("no alert sink is configured");
}

#[test]
fn refund_reasons_are_spelled_as_stripe_spells_them() {
    // A Stripe that refuses connections at once: the flag is what is under test.
    let env = TestEnv::with_extra_config(
        "[stripe]\napi_base = \"http://127.0.0.1:9\"\nmax_retries = 0\n",
    );
    // The reason parses (the run then fails for want of a Stripe, not for the flag).
    let run = env.run(&[
        "refund",
        "pi_123",
        "--amount",
        "1.00",
        "--reason",
        "requested_by_customer",
        "--yes",
    ]);
    assert_ne!(run.code, Some(2), "a usage error: {}", run.stderr);
    let help = env.run(&["refund", "--help"]).succeeds();
    assert!(
        help.stdout.contains("requested_by_customer"),
        "{}",
        help.stdout
    );
}

#[test]
fn doctor_checks_the_configured_database_on_either_backend() {
    let env = TestEnv::new();
    let database = |run: &Run| -> Value {
        let v: Value = serde_json::from_str(&run.stdout).expect("doctor JSON");
        v["checks"]
            .as_array()
            .expect("checks")
            .iter()
            .find(|c| c["name"] == "database")
            .expect("a database check")
            .clone()
    };
    // Other checks (Stripe) fail here: only the database's is looked at.
    let before = database(&env.run(&["doctor", "--format", "json"]));
    assert_eq!(before["ok"], false, "{before}");
    env.run(&["migrate"]).succeeds();
    let after = database(&env.run(&["doctor", "--format", "json"]));
    assert_eq!(after["ok"], true, "{after}");
    assert!(
        after["detail"].as_str().unwrap().contains("(up to date)"),
        "{after}"
    );
}

//! The subcommands that call Stripe, run as the real binary against localstripe (and
//! an HTTP mock where localstripe lacks an API): `billd refund`, `billd plans sync`,
//! `billd sync` and `billd events replay --from-stripe`. stdin is closed, as in cron.

mod common;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use billd::store::{Store, tokens::Scope};
use common::{
    localstripe::{self, LocalStripe},
    *,
};
use serde_json::{Value, json};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path, query_param},
};

const OPERATOR: &str = "ops-ada";

/// A config for the binary: the database of `dir`, Stripe at `api_base`.
fn write_config(dir: &Path, api_base: &str) -> PathBuf {
    let path = dir.join("billd-cli.toml");
    let text = format!(
        "{db}\n[stripe]\napi_base = {api_base:?}\n\
         payments_without_redirects = false\nretry_backoff_ms = 10\n\n[log]\ndir = \"\"\n",
        db = common::database_toml(dir),
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// What one run of the binary did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn code(self, code: i32) -> Run {
        assert_eq!(
            self.code,
            Some(code),
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    #[track_caller]
    fn stderr_has(&self, needle: &str) -> &Run {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            self.stderr
        );
        self
    }
}

/// Runs `billd --config CONFIG ARGS` with stdin closed, off the async runtime (the
/// daemon under test and localstripe's webhooks keep going meanwhile).
async fn billd(config: &Path, args: &[&str]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_billd"));
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env_remove("BILLD_CONFIG")
        .env_remove("RUST_LOG")
        .env("STRIPE_SECRET_KEY", localstripe::KEY)
        .env_remove("STRIPE_WEBHOOK_SECRET")
        .env("USER", OPERATOR)
        .stdin(Stdio::null());
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("run billd"))
        .await
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

async fn count(store: &Store, sql: &'static str) -> i64 {
    store
        .run(move |c| Ok(c.query_row(sql, (), |r| r.get(0))?))
        .await
        .unwrap()
}

/// The daemon on a fresh database, pointed at localstripe, with localstripe's webhooks
/// pointed back at it, and a config for the binary on the same database.
struct Env {
    app: TestApp,
    ls: LocalStripe,
    admin: String,
    config: PathBuf,
}

async fn env() -> Option<Env> {
    let ls = LocalStripe::start().await?;
    let api_base = ls.url.clone();
    let app = spawn_app_with(
        move |c| {
            c.stripe.api_base = api_base;
            c.stripe.payments_without_redirects = false;
            c.stripe.retry_backoff_ms = 10;
        },
        &[WEBHOOK_SECRET],
    )
    .await;
    ls.send_webhooks_to(&app.url("/stripe/webhook"), WEBHOOK_SECRET)
        .await;
    let admin = app.token(Scope::Admin).await;
    let config = write_config(app.dir.path(), &ls.url);
    Some(Env {
        app,
        ls,
        admin,
        config,
    })
}

impl Env {
    async fn post(&self, path: &str, body: Value) -> Value {
        let r = self
            .app
            .client
            .post(self.app.url(path))
            .bearer_auth(&self.admin)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body: Value = r.json().await.unwrap();
        assert!(status.is_success(), "POST {path}: {status} {body}");
        body
    }

    /// A payment made through billd: (payment intent, charge).
    async fn payment(&self, amount: i64, currency: &str) -> (String, String) {
        let c = self
            .post("/stripe/customers", json!({"email": "payer@example.com"}))
            .await;
        let cus = c["id"].as_str().unwrap();
        let pm = self
            .post(
                &format!("/stripe/customers/{cus}/payment-methods"),
                json!({"payment_method": "pm_card_visa"}),
            )
            .await;
        let p = self
            .post(
                "/stripe/payments",
                json!({"customer": cus, "amount": amount, "currency": currency,
                       "payment_method": pm["id"]}),
            )
            .await;
        assert_eq!(p["status"], "succeeded", "{p}");
        (
            p["id"].as_str().unwrap().to_string(),
            p["charge"].as_str().unwrap().to_string(),
        )
    }

    async fn refunds_in_stripe(&self, charge: &str) -> Vec<Value> {
        let (_, refunds) = self.ls.get(&format!("/v1/refunds?charge={charge}")).await;
        refunds["data"].as_array().unwrap().clone()
    }
}

#[tokio::test]
async fn billd_refund_refunds_part_of_a_payment_made_through_billd_and_never_more_than_is_left() {
    let Some(env) = env().await else { return };
    let (pi, charge) = env.payment(2000, "eur").await;

    let run = billd(&env.config, &["refund", &pi, "--amount", "5", "--yes"])
        .await
        .code(0);
    run.stderr_has("refundable:  20.00 EUR")
        .stderr_has("to refund:   5.00 EUR");
    assert!(run.stdout.contains("5.00 EUR"), "{}", run.stdout);

    let run = billd(
        &env.config,
        &[
            "refund", &pi, "--amount", "2.50", "--yes", "--format", "json",
        ],
    )
    .await
    .code(0);
    let refund = run.json();
    let keys: BTreeSet<&str> = refund
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for key in ["id", "payment", "amount", "currency", "status", "reason"] {
        assert!(keys.contains(key), "{key} missing from {refund}");
    }
    assert_eq!(refund["payment"], pi.as_str());
    assert_eq!(refund["amount"], 250);
    assert_eq!(refund["currency"], "eur");
    assert_eq!(refund["status"], "succeeded");
    let refund_id = refund["id"].as_str().unwrap().to_string();
    assert!(refund_id.starts_with("re_"));
    assert_eq!(env.refunds_in_stripe(&charge).await.len(), 2);

    // Written through: the mirror knows at once.
    let store = &env.app.store;
    assert_eq!(
        count(
            store,
            "SELECT amount_refunded FROM payments WHERE charge IS NOT NULL"
        )
        .await,
        750
    );
    assert_eq!(count(store, "SELECT count(*) FROM refunds").await, 2);
    // Who did it is in the audit log, with the refund and the amount.
    let refund_id2 = refund_id.clone();
    let (actor, detail): (String, String) = store
        .run(move |c| {
            Ok(c.query_row(
                "SELECT actor, detail FROM audit_log WHERE action = 'refund.create' AND target = ?1",
                [&refund_id2],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(actor, OPERATOR);
    assert!(
        detail.contains("250 eur") && detail.contains(&pi),
        "{detail}"
    );

    // 12.51 is more than the 12.50 left: refused, nothing refunded.
    billd(&env.config, &["refund", &pi, "--amount", "12.51", "--yes"])
        .await
        .code(1)
        .stderr_has("more than the 12.50 EUR left to refund");
    // Without a terminal and without --yes billd never asks: it refuses.
    billd(&env.config, &["refund", &pi, "--amount", "1"])
        .await
        .code(1)
        .stderr_has("pass --yes");
    // EUR has cents, not thousandths.
    billd(&env.config, &["refund", &pi, "--amount", "1.234", "--yes"])
        .await
        .code(1)
        .stderr_has("EUR has 2");
    billd(&env.config, &["refund", "cus_123", "--yes"])
        .await
        .code(1)
        .stderr_has("PAYMENT_ID must be a payment intent or charge id");
    assert_eq!(env.refunds_in_stripe(&charge).await.len(), 2);

    // The rest, without --amount.
    let refund = billd(
        &env.config,
        &["refund", &charge, "--yes", "--format", "json"],
    )
    .await
    .code(0)
    .json();
    assert_eq!(refund["amount"], 1250);
    billd(&env.config, &["refund", &pi, "--yes"])
        .await
        .code(1)
        .stderr_has("already refunded in full");
    env.app.shutdown().await;
}

#[tokio::test]
async fn billd_refund_reads_a_jpy_amount_as_whole_yen() {
    let Some(env) = env().await else { return };
    let (pi, charge) = env.payment(5000, "jpy").await;
    let refund = billd(
        &env.config,
        &[
            "refund", &pi, "--amount", "1200", "--yes", "--format", "json",
        ],
    )
    .await
    .code(0)
    .json();
    assert_eq!(refund["amount"], 1200);
    assert_eq!(refund["currency"], "jpy");
    let refunds = env.refunds_in_stripe(&charge).await;
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0]["amount"], 1200);
    billd(&env.config, &["refund", &pi, "--amount", "12.5", "--yes"])
        .await
        .code(1)
        .stderr_has("no minor unit");
    env.app.shutdown().await;
}

#[tokio::test]
async fn plans_sync_shows_what_it_would_do_with_dry_run_then_mirrors_the_catalog() {
    let Some(ls) = LocalStripe::start().await else {
        return;
    };
    ls.plan("basic-monthly", 1500, "eur").await;
    ls.plan("yen-monthly", 1200, "jpy").await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &ls.url);
    let store = common::open_store(dir.path());

    let changes = |run: &Run| -> Vec<(String, String, String)> {
        run.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["kind"].as_str().unwrap().to_string(),
                    r["id"].as_str().unwrap().to_string(),
                    r["change"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };

    let run = billd(&config, &["plans", "sync", "--dry-run", "--format", "json"])
        .await
        .code(0);
    run.stderr_has("dry run: nothing was written")
        .stderr_has("prices: 2 added");
    let dry = changes(&run);
    assert_eq!(dry.len(), 4, "{dry:?}");
    assert!(dry.iter().all(|c| c.2 == "added"), "{dry:?}");
    assert_eq!(count(&store, "SELECT count(*) FROM products").await, 0);
    assert_eq!(count(&store, "SELECT count(*) FROM prices").await, 0);

    let run = billd(&config, &["plans", "sync", "--format", "json"])
        .await
        .code(0);
    assert_eq!(changes(&run), dry);
    assert_eq!(
        count(&store, "SELECT count(*) FROM products WHERE active = 1").await,
        2
    );
    assert_eq!(
        count(
            &store,
            "SELECT unit_amount FROM prices WHERE id = 'yen-monthly' AND currency = 'jpy'
               AND interval = 'month' AND type = 'recurring'"
        )
        .await,
        1200
    );

    // Nothing changed in Stripe: nothing changes here.
    let run = billd(&config, &["plans", "sync", "--format", "json"])
        .await
        .code(0);
    assert!(changes(&run).iter().all(|c| c.2 == "unchanged"));

    // A plan deleted in Stripe is deleted here; a table says so too.
    let r = ls
        .client
        .delete(ls.api("/v1/plans/basic-monthly"))
        .bearer_auth(localstripe::KEY)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let run = billd(&config, &["plans", "sync"]).await.code(0);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.contains("basic-monthly") && l.contains("deleted")),
        "{}",
        run.stdout
    );
    assert_eq!(
        count(
            &store,
            "SELECT deleted FROM prices WHERE id = 'basic-monthly'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn plans_sync_pages_through_products_and_prices_where_stripe_has_the_prices_api() {
    let mock = MockServer::start().await;
    let product = |id: &str, name: &str| {
        json!({"id": id, "object": "product", "active": true, "name": name,
               "description": null, "created": 1_700_000_000, "livemode": false})
    };
    Mock::given(method("GET"))
        .and(path("/v1/products"))
        .and(query_param("starting_after", "prod_a"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "url": "/v1/products", "has_more": false,
            "data": [product("prod_b", "Team")]
        })))
        .mount(&mock)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/products"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "list", "url": "/v1/products", "has_more": true,
            "data": [product("prod_a", "Solo")]
        })))
        .mount(&mock)
        .await;
    let prices = |solo_active: bool| {
        json!({
            "object": "list", "url": "/v1/prices", "has_more": false,
            "data": [
                {"id": "price_solo", "object": "price", "active": solo_active, "currency": "eur",
                 "product": "prod_a", "type": "recurring", "unit_amount": 900,
                 "recurring": {"interval": "month", "interval_count": 1}, "created": 1_700_000_000},
                {"id": "price_setup", "object": "price", "active": true, "currency": "eur",
                 "product": "prod_b", "type": "one_time", "unit_amount": 5000,
                 "recurring": null, "created": 1_700_000_000}
            ]
        })
    };
    Mock::given(method("GET"))
        .and(path("/v1/prices"))
        .respond_with(ResponseTemplate::new(200).set_body_json(prices(true)))
        .up_to_n_times(1)
        .mount(&mock)
        .await;
    // The second sync finds the monthly price switched off.
    Mock::given(method("GET"))
        .and(path("/v1/prices"))
        .respond_with(ResponseTemplate::new(200).set_body_json(prices(false)))
        .mount(&mock)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &mock.uri());
    let run = billd(&config, &["plans", "sync", "--format", "json"])
        .await
        .code(0);
    let rows = run.json();
    let ids: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["prod_a", "prod_b", "price_solo", "price_setup"]);
    let paths: Vec<String> = mock
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_string())
        .collect();
    assert!(!paths.iter().any(|p| p == "/v1/plans"), "{paths:?}");
    let store = common::open_store(dir.path());
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM prices WHERE type = 'one_time' AND product = 'prod_b'"
        )
        .await,
        1
    );

    let rows = billd(&config, &["plans", "sync", "--format", "json"])
        .await
        .code(0)
        .json();
    let changes: Vec<(&str, &str)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r["change"].as_str().unwrap()))
        .collect();
    assert_eq!(
        changes,
        [
            ("prod_a", "unchanged"),
            ("prod_b", "unchanged"),
            ("price_solo", "deactivated"),
            ("price_setup", "unchanged")
        ]
    );
}

#[tokio::test]
async fn sync_customers_backfills_what_stripe_has_and_a_rerun_adds_nothing() {
    let Some(ls) = LocalStripe::start().await else {
        return;
    };
    // More than one page of 100, made in Stripe while billd was not there.
    for i in 0..105 {
        ls.post("/v1/customers", &[("email", &format!("c{i}@example.com"))])
            .await;
    }
    let cus = ls.post("/v1/customers", &[("name", "Subscriber")]).await;
    let cus = cus["id"].as_str().unwrap();
    let pm = ls
        .post(
            "/v1/payment_methods/pm_card_visa/attach",
            &[("customer", cus)],
        )
        .await;
    ls.post(
        &format!("/v1/customers/{cus}"),
        &[(
            "invoice_settings[default_payment_method]",
            pm["id"].as_str().unwrap(),
        )],
    )
    .await;
    ls.plan("basic-monthly", 1500, "eur").await;
    ls.post(
        "/v1/subscriptions",
        &[("customer", cus), ("items[0][plan]", "basic-monthly")],
    )
    .await;

    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &ls.url);
    let run = billd(&config, &["sync", "customers", "--format", "json"])
        .await
        .code(0);
    run.stderr_has("synced 100 customers…")
        .stderr_has("synced 106 customers (106 new)");
    assert_eq!(
        run.json(),
        json!([{"resource": "customers", "synced": 106, "new": 106}])
    );
    let store = common::open_store(dir.path());
    assert_eq!(count(&store, "SELECT count(*) FROM customers").await, 106);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM customers WHERE email = 'c42@example.com'"
        )
        .await,
        1
    );

    // Safe to run again: the same rows, nothing new.
    let run = billd(&config, &["sync", "customers", "--format", "json"])
        .await
        .code(0);
    assert_eq!(
        run.json(),
        json!([{"resource": "customers", "synced": 106, "new": 0}])
    );
    assert_eq!(count(&store, "SELECT count(*) FROM customers").await, 106);

    let run = billd(&config, &["sync", "all", "--format", "json"])
        .await
        .code(0);
    let synced = run.json();
    assert_eq!(synced[1]["resource"], "subscriptions");
    assert_eq!(synced[1]["new"], 1, "{synced}");
    assert_eq!(synced[2]["resource"], "invoices");
    assert!(synced[2]["new"].as_i64().unwrap() >= 1, "{synced}");
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM subscriptions WHERE status = 'active' AND price = 'basic-monthly'"
        )
        .await,
        1
    );
    assert_eq!(
        count(&store, "SELECT count(*) FROM subscription_items").await,
        1
    );
    // The reports know it too: 15.00 EUR of MRR, from its start on.
    let mrr = billd(&config, &["report", "mrr", "--format", "json"])
        .await
        .code(0)
        .json();
    assert_eq!(mrr[0]["currency"], "eur", "{mrr}");
    assert_eq!(mrr[0]["mrr"], 1500, "{mrr}");
    assert_eq!(mrr[0]["active_subscriptions"], 1, "{mrr}");
    // A rerun adds no history.
    let versions = count(&store, "SELECT count(*) FROM subscription_versions").await;
    billd(&config, &["sync", "subscriptions"]).await.code(0);
    assert_eq!(
        count(&store, "SELECT count(*) FROM subscription_versions").await,
        versions
    );
}

#[tokio::test]
async fn events_replay_from_stripe_ingests_the_events_billd_missed_and_no_event_twice() {
    let Some(env) = env().await else { return };
    // Received while billd listened.
    let seen = env
        .ls
        .post("/v1/customers", &[("email", "seen@example.com")])
        .await;
    let seen = seen["id"].as_str().unwrap().to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while count(
        &env.app.store,
        "SELECT count(*) FROM customers WHERE raw LIKE '%seen@%'",
    )
    .await
        == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "no webhook for {seen}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let before = count(&env.app.store, "SELECT count(*) FROM events").await;
    assert!(before >= 1);

    // billd stops listening; Stripe goes on.
    let nowhere = format!(
        "http://127.0.0.1:{}/stripe/webhook",
        localstripe::free_port()
    );
    env.ls.send_webhooks_to(&nowhere, WEBHOOK_SECRET).await;
    let mut missed = Vec::new();
    for email in ["missed1@example.com", "missed2@example.com"] {
        let c = env.ls.post("/v1/customers", &[("email", email)]).await;
        missed.push(c["id"].as_str().unwrap().to_string());
    }

    let run = billd(
        &env.config,
        &["events", "replay", "--from-stripe", "--format", "json"],
    )
    .await
    .code(0);
    let got = run.json();
    let (_, listed) = env.ls.get("/v1/events?limit=100").await;
    let in_stripe = listed["data"].as_array().unwrap().len() as i64;
    assert_eq!(got["fetched"], in_stripe, "{got}");
    assert_eq!(got["already_present"], before, "{got}");
    assert_eq!(got["new"], in_stripe - before, "{got}");
    let types: Vec<&str> = got["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["customer.created", "customer.created"], "{got}");
    for e in got["events"].as_array().unwrap() {
        assert!(
            ["processed", "queued"].contains(&e["result"].as_str().unwrap()),
            "{got}"
        );
    }
    run.stderr_has("2 new");
    assert_eq!(
        count(&env.app.store, "SELECT count(*) FROM events").await,
        in_stripe
    );
    env.app.drained().await;
    for id in &missed {
        let r = env
            .app
            .get(&format!("/stripe/customers/{id}"), &env.admin)
            .await;
        assert_eq!(r.status(), 200, "{id} not mirrored");
    }

    // Again: everything is already there.
    let got = billd(
        &env.config,
        &["events", "replay", "--from-stripe", "--format", "json"],
    )
    .await
    .code(0)
    .json();
    assert_eq!(got["new"], 0);
    assert_eq!(got["already_present"], in_stripe);
    // --since filters by Stripe's created time.
    let got = billd(
        &env.config,
        &[
            "events",
            "replay",
            "--from-stripe",
            "--since",
            "2999-01-01",
            "--format",
            "json",
        ],
    )
    .await
    .code(0)
    .json();
    assert_eq!(got["fetched"], 0);
    assert_eq!(
        count(&env.app.store, "SELECT count(*) FROM events").await,
        in_stripe
    );
    env.app.shutdown().await;
}

#[tokio::test]
async fn a_refund_with_an_unknown_outcome_says_so_and_is_retried_with_its_key() {
    let mock = MockServer::start().await;
    let charge = |refunded: i64| {
        json!({"id": "ch_unknown", "object": "charge", "amount": 5000, "amount_refunded": refunded,
               "currency": "eur", "status": "succeeded", "payment_intent": null,
               "customer": "cus_unknown", "created": 1_700_000_000, "livemode": false})
    };
    Mock::given(method("GET"))
        .and(path("/v1/charges/ch_unknown"))
        .respond_with(ResponseTemplate::new(200).set_body_json(charge(0)))
        .mount(&mock)
        .await;
    // Stripe fails (after billd's retries): the refund may or may not exist.
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(
            ResponseTemplate::new(500)
                .set_body_json(json!({"error": {"type": "api_error", "message": "try again"}})),
        )
        .up_to_n_times(3)
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "re_unknown", "object": "refund", "amount": 1000, "charge": "ch_unknown",
            "payment_intent": null, "currency": "eur", "status": "succeeded",
            "reason": null, "created": 1_700_000_100
        })))
        .mount(&mock)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &mock.uri());

    let failed = billd(
        &config,
        &["refund", "ch_unknown", "--amount", "10", "--yes"],
    )
    .await
    .code(1);
    failed.stderr_has("may or may not have been made");
    let key = failed
        .stderr
        .split("--idempotency-key ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the key to retry with")
        .trim_end_matches(',')
        .to_string();

    let retried = billd(
        &config,
        &[
            "refund",
            "ch_unknown",
            "--amount",
            "10",
            "--yes",
            "--idempotency-key",
            &key,
            "--format",
            "json",
        ],
    )
    .await
    .code(0);
    assert_eq!(retried.json()["id"], "re_unknown");
    // Every attempt of both runs asked Stripe with the one key, so Stripe could only
    // ever make one refund.
    let posts: Vec<String> = mock
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| r.headers["idempotency-key"].to_str().unwrap().to_string())
        .collect();
    assert!(posts.len() >= 2, "{posts:?}");
    assert!(posts.iter().all(|k| *k == key), "{posts:?} vs {key}");
}

#[tokio::test]
async fn a_charge_captured_in_part_is_refunded_at_most_what_was_captured() {
    let mock = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/charges/ch_partial"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "ch_partial", "object": "charge", "amount": 5000, "amount_captured": 3000,
            "amount_refunded": 0, "currency": "eur", "status": "succeeded",
            "payment_intent": null, "created": 1_700_000_000, "livemode": false
        })))
        .mount(&mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/refunds"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "re_partial", "object": "refund", "amount": 3000, "charge": "ch_partial",
            "currency": "eur", "status": "succeeded", "created": 1_700_000_100
        })))
        .mount(&mock)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &mock.uri());

    billd(
        &config,
        &["refund", "ch_partial", "--amount", "40", "--yes"],
    )
    .await
    .code(1)
    .stderr_has("30.00");
    billd(&config, &["refund", "ch_partial", "--yes"])
        .await
        .code(0);
    let bodies: Vec<String> = mock
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST")
        .map(|r| String::from_utf8(r.body).unwrap())
        .collect();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert!(bodies[0].contains("amount=3000"), "{bodies:?}");
}

#[tokio::test]
async fn billd_refund_of_an_id_that_is_not_one_sends_nothing_and_fails() {
    let mock = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "re_1"})))
        .mount(&mock)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &mock.uri());
    for id in ["pi_1/../x", "pi_1?amount=1", "ch_1\r\nX-Evil: 1", "pi_"] {
        let run = billd(&config, &["refund", id, "--yes"]).await.code(1);
        run.stderr_has("not refunding: PAYMENT_ID must be a payment intent or charge id");
        assert!(
            !run.stderr.contains("../x") && !run.stderr.contains("Evil"),
            "{}",
            run.stderr
        );
    }
    assert!(mock.received_requests().await.unwrap().is_empty());
}

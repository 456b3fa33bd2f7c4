//! `billd doctor`: checks what a running billd depends on and says how to fix what is
//! wrong: the config and its secrets, the database, its disk and file modes, the clock,
//! and the Stripe webhook endpoint that points at billd. Exit 0 when every check is ok,
//! 1 otherwise. It changes nothing: the database is looked at, not opened as a store
//! (which would create it and tighten its modes).

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;

use super::{Format, output};
use crate::{
    config::{Config, StripeMode, mask},
    store::{StoreError, backup, latest_migration},
    stripe::{
        StripeError,
        webhook_endpoints::{self, Endpoints, WebhookEndpoint},
    },
};

/// The free space under which the disk check fails: 1 GiB, or a tenth of a filesystem
/// smaller than 10 GiB (a small volume with a tenth free is not in trouble yet).
const MIN_FREE_BYTES: u64 = 1 << 30;

/// How far the local clock may be from Stripe's. Signatures older than
/// `webhook_tolerance_secs` (300 by default) are refused, so a skew eats that margin;
/// the `Date` header has one-second resolution.
const MAX_SKEW_SECS: f64 = 60.0;

/// The event types the endpoint must send, one or more per family `events::apply`
/// handles (Connect's `account.*` come through a Connect endpoint and are left out).
/// `*` covers them all.
const NEEDED_EVENTS: &[&str] = &[
    "customer.created",
    "customer.updated",
    "customer.deleted",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.created",
    "invoice.finalized",
    "invoice.paid",
    "invoice.payment_failed",
    "invoice.updated",
    "invoice.voided",
    "charge.succeeded",
    "charge.failed",
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.closed",
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "refund.created",
    "refund.updated",
    "payment_method.attached",
    "payment_method.detached",
    "product.created",
    "product.updated",
    "price.created",
    "price.updated",
    "checkout.session.completed",
    "radar.early_fraud_warning.created",
    "review.opened",
];

#[derive(Debug, clap::Args)]
pub struct Args {}

/// One line of the checklist.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
    /// What to do about it; none when ok.
    pub fix: Option<String>,
}

fn pass(name: &'static str, detail: impl Into<String>) -> Check {
    Check {
        name,
        ok: true,
        detail: detail.into(),
        fix: None,
    }
}

fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name,
        ok: false,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

impl Args {
    pub fn run(self, config_path: Option<&Path>, format: Format) -> anyhow::Result<ExitCode> {
        let checks = match Config::load(config_path) {
            Ok(config) => checks(&config)?,
            Err(e) => vec![fail(
                "config",
                format!("{e}"),
                "pass --config PATH or set $BILLD_CONFIG; `billd config check` names the key at fault",
            )],
        };
        print(format, &checks)?;
        let failed = checks.iter().filter(|c| !c.ok).count();
        if failed == 0 {
            eprintln!("all {} checks ok", checks.len());
            Ok(ExitCode::SUCCESS)
        } else {
            eprintln!("{failed} of {} checks failed", checks.len());
            Ok(ExitCode::FAILURE)
        }
    }
}

fn checks(config: &Config) -> anyhow::Result<Vec<Check>> {
    let source = config.source.as_ref().map_or_else(
        || "built-in defaults".to_string(),
        |p| p.display().to_string(),
    );
    let mut checks = vec![pass("config", format!("{source} parsed and valid"))];
    let key = env_secret(&config.stripe.secret_key_env);
    checks.push(secrets(config, key.as_deref()));
    checks.push(key_mode(config, key.as_deref()));
    match &config.database.url {
        Some(_) => checks.push(postgres(config)),
        None => {
            checks.push(database(&config.database.path));
            checks.push(file_modes(config));
            checks.push(disk(&config.database.path));
        }
    }
    checks.extend(stripe(config, key)?);
    Ok(checks)
}

fn env_secret(var: &str) -> Option<String> {
    std::env::var(var)
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

fn secrets(config: &Config, key: Option<&str>) -> Check {
    let key_var = &config.stripe.secret_key_env;
    let hook_var = &config.stripe.webhook_secret_env;
    let hooks: Vec<String> = env_secret(hook_var)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(mask)
        .collect();
    let mut missing = Vec::new();
    if key.is_none() {
        missing.push(key_var.as_str());
    }
    if hooks.is_empty() {
        missing.push(hook_var.as_str());
    }
    if !missing.is_empty() {
        return fail(
            "secrets",
            format!("not set: {}", missing.join(", ")),
            format!(
                "set {} (e.g. in the service's EnvironmentFile); the file names the variables, never the secrets",
                missing.join(" and ")
            ),
        );
    }
    pass(
        "secrets",
        format!(
            "{key_var} = {}; {hook_var} = {} secret(s): {}",
            key.map(mask).unwrap_or_default(),
            hooks.len(),
            hooks.join(", ")
        ),
    )
}

fn key_mode(config: &Config, key: Option<&str>) -> Check {
    const NAME: &str = "stripe_key_mode";
    let want = match config.stripe.mode {
        StripeMode::Test => "test",
        StripeMode::Live => "live",
    };
    let Some(key) = key else {
        return fail(
            NAME,
            format!("not checked: {} is not set", config.stripe.secret_key_env),
            "see the secrets check",
        );
    };
    let has = if key.starts_with("sk_test_") || key.starts_with("rk_test_") {
        "test"
    } else if key.starts_with("sk_live_") || key.starts_with("rk_live_") {
        "live"
    } else {
        return fail(
            NAME,
            format!(
                "{} does not look like a Stripe secret key ({})",
                config.stripe.secret_key_env,
                mask(key)
            ),
            "use a secret key (sk_test_…/sk_live_…) or a restricted key (rk_…) from the Stripe dashboard",
        );
    };
    if has == want {
        pass(NAME, format!("a {has} key, and [stripe] mode = \"{want}\""))
    } else {
        fail(
            NAME,
            format!(
                "[stripe] mode = \"{want}\" but {} holds a {has} key",
                config.stripe.secret_key_env
            ),
            format!(
                "set [stripe] mode = \"{has}\", or set {} to a {want} key",
                config.stripe.secret_key_env
            ),
        )
    }
}

/// PostgreSQL: reachable with the configured password, and migrated. (Its files and
/// disk are the server's: its own monitoring watches them.)
fn postgres(config: &Config) -> Check {
    const NAME: &str = "database";
    let store = match crate::store::Store::open_config(&config.database) {
        Ok(store) => store,
        Err(e) => {
            return fail(
                NAME,
                format!("cannot reach PostgreSQL: {e}"),
                format!(
                    "check [database] url, that the server runs and accepts this host, and \
                     the password in ${}",
                    config.database.password_env
                ),
            );
        }
    };
    let shown = store.describe();
    match store.applied_migrations() {
        Ok(n) if n == latest_migration() => pass(
            NAME,
            format!("{shown}: reachable, schema version {n} (up to date)"),
        ),
        Ok(n) => fail(
            NAME,
            format!(
                "{shown}: schema version {n} of {}: migration(s) pending",
                latest_migration()
            ),
            "run `billd migrate` (billd serve also applies them when it starts)",
        ),
        Err(e) => fail(
            NAME,
            format!("{shown}: {e}"),
            "check that this role may read billd's tables",
        ),
    }
}

fn database(path: &Path) -> Check {
    const NAME: &str = "database";
    let shown = path.display();
    match backup::inspect(path) {
        Ok(seen) if !seen.intact => fail(
            NAME,
            format!("{shown} fails SQLite's integrity check"),
            "stop billd and restore the latest backup: billd restore PATH --yes",
        ),
        Ok(seen) if seen.is_ready() => pass(
            NAME,
            format!(
                "{shown}: reachable, schema version {} (up to date)",
                seen.schema_version
            ),
        ),
        Ok(seen) => fail(
            NAME,
            format!(
                "{shown}: schema version {} of {}: {} migration(s) pending",
                seen.schema_version,
                latest_migration(),
                latest_migration() - seen.schema_version
            ),
            "run `billd migrate` (billd serve also applies them when it starts)",
        ),
        Err(StoreError::NotFound) => fail(
            NAME,
            format!("no database at {shown}"),
            "start billd serve or run `billd migrate`, which create it; or correct [database] path",
        ),
        Err(e) => fail(
            NAME,
            format!("{shown}: {e}"),
            "check that [database] path names billd's database and that this user may read and write it",
        ),
    }
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

fn file_modes(config: &Config) -> Check {
    const NAME: &str = "file_modes";
    let db = &config.database.path;
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        dirs.push(dir.to_path_buf());
    }
    if !config.log.dir.as_os_str().is_empty() {
        dirs.push(config.log.dir.clone());
    }
    let files = [db.clone(), sidecar(db, "-wal"), sidecar(db, "-shm")];
    let mut loose = Vec::new();
    let mut wide_dirs = Vec::new();
    let mut wide_files = Vec::new();
    for (path, is_dir) in dirs
        .iter()
        .map(|d| (d, true))
        .chain(files.iter().map(|f| (f, false)))
    {
        if let Some(mode) = mode_of(path)
            && mode & 0o077 != 0
        {
            loose.push(format!("{} is {mode:04o}", path.display()));
            if is_dir {
                wide_dirs.push(path.display().to_string());
            } else {
                wide_files.push(path.display().to_string());
            }
        }
    }
    if loose.is_empty() {
        return pass(
            NAME,
            "the database, its -wal and -shm are 0600 or tighter, their directory and the log directory 0700 or tighter",
        );
    }
    let mut fix = Vec::new();
    if !wide_dirs.is_empty() {
        fix.push(format!("chmod 700 {}", wide_dirs.join(" ")));
    }
    if !wide_files.is_empty() {
        fix.push(format!("chmod 600 {}", wide_files.join(" ")));
    }
    fail(
        NAME,
        format!(
            "readable by others (customer data, token hashes): {}",
            loose.join(", ")
        ),
        fix.join("; "),
    )
}

#[cfg(unix)]
fn mode_of(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn mode_of(_: &Path) -> Option<u32> {
    None
}

fn disk(db: &Path) -> Check {
    const NAME: &str = "disk_space";
    // The database may not exist yet: look at the nearest directory that does.
    let start = db
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Some(dir) = start.ancestors().find(|d| d.is_dir()) else {
        return fail(
            NAME,
            format!("no directory of {} exists", db.display()),
            "correct [database] path",
        );
    };
    match free_space(dir) {
        Ok((free, total)) => {
            let threshold = MIN_FREE_BYTES.min(total / 10);
            let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
            let percent = if total == 0 {
                0.0
            } else {
                free as f64 * 100.0 / total as f64
            };
            let detail = format!(
                "{:.1} GiB free of {:.1} GiB ({percent:.0}%) where {} lives",
                gib(free),
                gib(total),
                dir.display()
            );
            if free >= threshold {
                pass(NAME, detail)
            } else {
                fail(
                    NAME,
                    detail,
                    format!(
                        "free space there (at least {:.1} GiB): the WAL, backups and migrations need room, and a full disk stops the webhook inbox (Stripe's deliveries get 503)",
                        gib(threshold)
                    ),
                )
            }
        }
        Err(e) => fail(
            NAME,
            format!("cannot read the free space of {}: {e}", dir.display()),
            "check the filesystem with df",
        ),
    }
}

#[cfg(unix)]
fn free_space(dir: &Path) -> std::io::Result<(u64, u64)> {
    let s = rustix::fs::statvfs(dir)?;
    Ok((
        s.f_bavail.saturating_mul(s.f_frsize),
        s.f_blocks.saturating_mul(s.f_frsize),
    ))
}

#[cfg(not(unix))]
fn free_space(_: &Path) -> std::io::Result<(u64, u64)> {
    Err(std::io::Error::other("not supported on this platform"))
}

const STRIPE_CHECKS: [&str; 5] = [
    "clock",
    "webhook_endpoint",
    "webhook_enabled",
    "webhook_events",
    "webhook_api_version",
];

/// The checks that need Stripe's answer; each fails as "not checked" when there is none.
fn stripe(config: &Config, key: Option<String>) -> anyhow::Result<Vec<Check>> {
    const NAME: &str = "stripe_api";
    let not_checked = |why: &str| {
        STRIPE_CHECKS
            .iter()
            .map(|name| {
                fail(
                    name,
                    format!("not checked: {why}"),
                    "fix the stripe_api check first",
                )
            })
            .collect::<Vec<_>>()
    };
    let Some(key) = key else {
        let mut out = vec![fail(
            NAME,
            format!("not checked: {} is not set", config.stripe.secret_key_env),
            "see the secrets check",
        )];
        out.extend(not_checked("no Stripe API key"));
        return Ok(out);
    };
    let base = crate::config::without_credentials(&config.stripe.api_base);
    let client = match crate::stripe::Client::from_config(&config.stripe, &SecretString::from(key))
    {
        Ok(client) => client,
        Err(e) => {
            let mut out = vec![fail(NAME, format!("{e}"), "correct [stripe] api_base")];
            out.extend(not_checked("no Stripe client"));
            return Ok(out);
        }
    };
    let answer = super::runtime()?.block_on(webhook_endpoints::list_all(&client));
    let found = match answer {
        Ok(found) => found,
        Err(e) => {
            let mut out = vec![fail(NAME, stripe_error(&base, &e), stripe_fix(&e))];
            out.extend(not_checked("Stripe did not answer"));
            return Ok(out);
        }
    };
    let mut out = vec![pass(
        NAME,
        format!(
            "{base} answered: {} webhook endpoint(s) on the account",
            found.endpoints.len()
        ),
    )];
    out.push(clock(&found));
    out.extend(endpoint_checks(&found.endpoints));
    Ok(out)
}

/// The error's kind, status and request id: never Stripe's message, which may quote
/// part of the key.
fn stripe_error(base: &str, e: &StripeError) -> String {
    let mut text = format!("{base}: {e}");
    if let Some(id) = e.request_id() {
        text.push_str(&format!(" (Stripe request {id})"));
    }
    text
}

fn stripe_fix(e: &StripeError) -> String {
    match e {
        StripeError::Authentication { .. } => {
            "set the secret key variable to a current key (Stripe dashboard: Developers, API keys)"
                .into()
        }
        StripeError::Permission { .. } => {
            "give the restricted key read access to webhook endpoints, or use a secret key".into()
        }
        _ => "check the network path to Stripe (firewall, proxy, DNS) and [stripe] api_base".into(),
    }
}

fn clock(found: &Endpoints) -> Check {
    const NAME: &str = "clock";
    let Some(stripe) = found.stripe_date else {
        return fail(
            NAME,
            "Stripe's answer had no valid Date header to compare with",
            "compare the clock by hand (timedatectl status) and make sure NTP is on",
        );
    };
    let skew = (found.local_date - stripe).as_seconds_f64();
    let how = if skew >= 0.0 { "ahead of" } else { "behind" };
    let detail = format!("the local clock is {:.0} s {how} Stripe's", skew.abs());
    if skew.abs() <= MAX_SKEW_SECS {
        pass(NAME, detail)
    } else {
        fail(
            NAME,
            detail,
            "turn on time synchronisation (timedatectl set-ntp true, or chrony): webhook signatures older than stripe.webhook_tolerance_secs are refused",
        )
    }
}

/// `https://host/stripe/webhook?x` → `/stripe/webhook`.
fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = rest.find('/').map_or("", |i| &rest[i..]);
    path.split(['?', '#']).next().unwrap_or("")
}

/// The URL without its query string, which may carry a token.
fn shown_url(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

fn endpoint_checks(endpoints: &[WebhookEndpoint]) -> Vec<Check> {
    let ours: Vec<&WebhookEndpoint> = endpoints
        .iter()
        .filter(|e| {
            url_path(&e.url)
                .trim_end_matches('/')
                .ends_with("/stripe/webhook")
        })
        .collect();
    let Some(endpoint) = ours
        .iter()
        .find(|e| e.status.as_deref() == Some("enabled"))
        .or(ours.first())
        .copied()
    else {
        let fix = "create one: Stripe dashboard, Developers, Webhooks, Add endpoint, URL https://<your host>/stripe/webhook, events \"*\" or the ones billd handles; put its signing secret in the webhook secret variable";
        let mut out = vec![fail(
            "webhook_endpoint",
            format!(
                "none of the account's {} webhook endpoint(s) has a URL ending in /stripe/webhook",
                endpoints.len()
            ),
            fix,
        )];
        out.extend(STRIPE_CHECKS[2..].iter().map(|name| {
            fail(
                name,
                "not checked: no endpoint points at billd",
                "see the webhook_endpoint check",
            )
        }));
        return out;
    };
    let mut out = vec![pass(
        "webhook_endpoint",
        format!(
            "{} points at {}{}",
            endpoint.id,
            shown_url(&endpoint.url),
            if ours.len() > 1 {
                format!(" ({} endpoints point at a /stripe/webhook)", ours.len())
            } else {
                String::new()
            }
        ),
    )];
    let status = endpoint.status.as_deref().unwrap_or("unknown");
    out.push(if status == "enabled" {
        pass("webhook_enabled", format!("{} is enabled", endpoint.id))
    } else {
        fail(
            "webhook_enabled",
            format!("{} is {status}: Stripe sends it nothing", endpoint.id),
            "enable it in the Stripe dashboard (Developers, Webhooks), then fetch what was missed: billd events replay --from-stripe --since TIME",
        )
    });
    out.push(events_check(endpoint));
    out.push(pass(
        "webhook_api_version",
        format!(
            "events come in API version {} (billd's client pins {}; events are read leniently in any version)",
            endpoint.api_version.as_deref().unwrap_or("of the account's default"),
            stripe_client_core::VERSION.as_str()
        ),
    ));
    out
}

fn events_check(endpoint: &WebhookEndpoint) -> Check {
    const NAME: &str = "webhook_events";
    if endpoint.enabled_events.iter().any(|e| e == "*") {
        return pass(
            NAME,
            format!("{} sends every event type (\"*\")", endpoint.id),
        );
    }
    let missing: Vec<&str> = NEEDED_EVENTS
        .iter()
        .copied()
        .filter(|needed| !endpoint.enabled_events.iter().any(|e| e == needed))
        .collect();
    if missing.is_empty() {
        return pass(
            NAME,
            format!(
                "{} sends the {} event types billd needs",
                endpoint.id,
                NEEDED_EVENTS.len()
            ),
        );
    }
    let named: Vec<&str> = missing.iter().take(5).copied().collect();
    fail(
        NAME,
        format!(
            "{} does not send {} event type(s) billd applies: {}{}",
            endpoint.id,
            missing.len(),
            named.join(", "),
            if missing.len() > named.len() {
                ", …"
            } else {
                ""
            }
        ),
        format!(
            "add them to the endpoint's events in the Stripe dashboard, or select all events (\"*\"); needed: {}",
            missing.join(", ")
        ),
    )
}

fn print(format: Format, checks: &[Check]) -> anyhow::Result<()> {
    if format == Format::Json {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut out, &json!({ "checks": checks }))?;
        std::io::Write::write_all(&mut out, b"\n")?;
        return Ok(());
    }
    let rows = output::Rows {
        header: vec!["check", "ok", "detail", "fix"],
        rows: checks
            .iter()
            .map(|c| {
                vec![
                    c.name.to_string(),
                    if c.ok { "ok" } else { "FAIL" }.to_string(),
                    c.detail.clone(),
                    c.fix.clone().unwrap_or_default(),
                ]
            })
            .collect(),
    };
    output::print_list(format, checks, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_is_billds_by_its_url_path() {
        assert_eq!(
            url_path("https://billd.example.com/stripe/webhook"),
            "/stripe/webhook"
        );
        assert_eq!(
            url_path("https://h:8443/x/stripe/webhook?t=1"),
            "/x/stripe/webhook"
        );
        assert_eq!(url_path("https://h"), "");
        assert_eq!(
            shown_url("https://h/stripe/webhook?token=s"),
            "https://h/stripe/webhook"
        );
    }

    #[test]
    fn events_are_covered_by_star_or_by_every_needed_type() {
        let mut e = WebhookEndpoint {
            id: "we_1".into(),
            url: "https://h/stripe/webhook".into(),
            status: Some("enabled".into()),
            enabled_events: vec!["*".into()],
            api_version: None,
        };
        assert!(events_check(&e).ok);
        e.enabled_events = NEEDED_EVENTS.iter().map(|s| s.to_string()).collect();
        assert!(events_check(&e).ok);
        e.enabled_events.pop();
        let check = events_check(&e);
        assert!(!check.ok && check.fix.is_some(), "{check:?}");
    }
}

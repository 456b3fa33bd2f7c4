//! Configuration: a TOML file found by the lookup order of DESIGN §2, with secrets
//! read from the environment variables the file names (never from the file itself).

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use secrecy::SecretString;
use serde::Deserialize;

mod secrets;

pub use secrets::{Secrets, mask, mask_url, without_credentials};

/// Where a config file was looked for, in order, when none was named.
pub const SEARCH_PATHS: [&str; 2] = ["./config/billd.toml", "/etc/billd/billd.toml"];

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no config file found: pass --config PATH, set BILLD_CONFIG, or create one of {}", SEARCH_PATHS.join(", "))]
    NotFound,
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid config: {key}: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("environment variable {var} (named by {key}) is not set: {why}")]
    MissingSecret {
        var: String,
        key: &'static str,
        why: &'static str,
    },
}

/// The whole configuration, as parsed from the file (secrets not yet resolved).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub stripe: StripeConfig,
    pub workers: WorkerConfig,
    pub log: LogConfig,
    pub limits: LimitsConfig,
    pub alerts: AlertsConfig,
    pub compliance: ComplianceConfig,
    /// The file this was read from, if any.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Seconds to wait for in-flight requests and applies on shutdown.
    pub shutdown_grace_secs: u64,
    /// Serve `GET /metrics` without a token.
    pub metrics_public: bool,
    /// Addresses (or CIDR ranges) of reverse proxies whose `X-Forwarded-For` is believed
    /// when billd decides who a client is (rate limits). Empty: the peer address.
    pub trusted_proxies: Vec<String>,
}

/// Rate limits and server protections (DESIGN §2 `[limits]`): what an unauthenticated
/// caller can cost is bounded by these.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Requests that fail authentication or signature verification, per client address:
    /// a burst of this many...
    pub failed_auth_burst: u32,
    /// ...refilling this many per second.
    pub failed_auth_per_sec: u32,
    /// Money routes (payments, refunds, Checkout, Connect, replay), per token: burst...
    pub money_burst: u32,
    /// ...and refill per second.
    pub money_per_sec: u32,
    /// `POST /stripe/webhook`, per client address: burst...
    pub webhook_burst: u32,
    /// ...and refill per second.
    pub webhook_per_sec: u32,
    /// Time a connection has to send a request's headers, counted from when it starts
    /// waiting for them (when it opens, or after its previous answer).
    pub header_read_timeout_secs: u64,
    /// Time a request has to send its whole body, counted from its headers.
    pub body_read_timeout_secs: u64,
    /// Longest a keep-alive connection stays open waiting for its next request.
    pub idle_timeout_secs: u64,
    /// Open connections at most; more are closed as soon as they are accepted.
    pub max_connections: usize,
    /// Requests being handled at once at most; more answer 503 at once.
    pub max_in_flight: usize,
    /// Of those, at most this many from one client address.
    pub max_in_flight_per_address: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            failed_auth_burst: 50,
            failed_auth_per_sec: 1,
            money_burst: 20,
            money_per_sec: 2,
            webhook_burst: 20_000,
            webhook_per_sec: 10_000,
            header_read_timeout_secs: 10,
            body_read_timeout_secs: 30,
            idle_timeout_secs: 60,
            max_connections: 1_024,
            max_in_flight: 512,
            max_in_flight_per_address: 128,
        }
    }
}

/// Where alerts go and when they fire (DESIGN §2 `[alerts]`, docs/alerts.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// A URL that receives each alert as a JSON POST (Slack-compatible). Such URLs
    /// often carry their own secret: prefer `webhook_url_env`.
    pub webhook_url: String,
    /// Name of an environment variable holding the webhook URL.
    pub webhook_url_env: String,
    /// Time allowed for one POST to the webhook.
    pub webhook_timeout_secs: u64,
    /// A program and its arguments, run with the alert as JSON on stdin (no shell).
    pub command: Vec<String>,
    /// Time the command has to exit (it is killed after).
    pub command_timeout_secs: u64,
    /// How often the conditions are checked.
    pub check_interval_secs: u64,
    /// While a kind keeps firing, at most one alert for it per this many seconds.
    pub repeat_secs: u64,
    /// Deliveries retried after a failure, per sink, before the alert is logged as lost.
    pub retries: u32,
    /// First delay before a retry; doubled per retry, at most 60 s.
    pub retry_backoff_ms: u64,
    /// `backlog` fires when the oldest waiting event is older than this.
    pub backlog_secs: u64,
    /// The window over which signature failures, Stripe errors and storage errors are counted.
    pub window_secs: u64,
    /// `signature_failures` fires at this many refused webhook signatures in the window.
    pub signature_failures: u64,
    /// `stripe_errors` fires when this share (0 to 1) of Stripe API attempts in the window failed...
    pub stripe_error_rate: f64,
    /// ...and at least this many attempts were made.
    pub stripe_min_calls: u64,
    /// `storage` fires at this many database errors in the window.
    pub storage_errors: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            webhook_url: String::new(),
            webhook_url_env: String::new(),
            webhook_timeout_secs: 10,
            command: Vec::new(),
            command_timeout_secs: 10,
            check_interval_secs: 30,
            repeat_secs: 3_600,
            retries: 5,
            retry_backoff_ms: 1_000,
            backlog_secs: 600,
            window_secs: 300,
            signature_failures: 20,
            stripe_error_rate: 0.5,
            stripe_min_calls: 10,
            storage_errors: 1,
        }
    }
}

impl AlertsConfig {
    /// The webhook URL, from the file or the variable it names; `None` when neither.
    pub fn webhook_url(
        &self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<SecretString>, ConfigError> {
        if !self.webhook_url_env.is_empty() {
            let url = lookup(&self.webhook_url_env)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .ok_or_else(|| ConfigError::MissingSecret {
                    var: self.webhook_url_env.clone(),
                    key: "alerts.webhook_url_env",
                    why: "it names the variable holding the alert webhook URL",
                })?;
            if !is_http_url(&url) {
                return Err(ConfigError::Invalid {
                    key: "alerts.webhook_url_env",
                    message: format!(
                        "{} must hold an http:// or https:// URL",
                        self.webhook_url_env
                    ),
                });
            }
            return Ok(Some(SecretString::from(url)));
        }
        Ok((!self.webhook_url.is_empty()).then(|| SecretString::from(self.webhook_url.clone())))
    }
}

/// Checks before billd asks Stripe to take money (DESIGN §2 `[compliance]`,
/// docs/compliance.md). Empty: nothing is checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ComplianceConfig {
    /// ISO 3166-1 alpha-2 codes, matched against the customer's address country and the
    /// card's country where the mirror knows them.
    pub blocked_countries: Vec<String>,
    /// The largest single payment per currency, in minor units (`{ usd = 500000 }`).
    pub max_amount: BTreeMap<String, i64>,
    /// Email domains (and their subdomains) refused as customers.
    pub blocked_email_domains: Vec<String>,
}

fn is_http_url(url: &str) -> bool {
    (url.starts_with("http://") || url.starts_with("https://")) && url.parse::<hyper::Uri>().is_ok()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// SQLite file; its directory is created if missing. Ignored when `url` is set.
    pub path: PathBuf,
    /// `postgres://user@host:port/db?sslmode=…`: selects PostgreSQL (DESIGN §9).
    pub url: Option<String>,
    /// Environment variable holding the PostgreSQL password (never in the file).
    pub password_env: String,
    pub busy_timeout_ms: u64,
    pub pool_size: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StripeMode {
    Test,
    Live,
}

impl StripeMode {
    pub fn is_live(self) -> bool {
        self == StripeMode::Live
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StripeConfig {
    pub api_base: String,
    pub mode: StripeMode,
    /// Name of the environment variable holding the API secret key.
    pub secret_key_env: String,
    /// Name of the environment variable holding the webhook signing secret(s),
    /// comma-separated so a secret can be rolled without downtime.
    pub webhook_secret_env: String,
    /// Name of the environment variable holding the signing secret(s) of a Connect
    /// webhook endpoint (events of connected accounts), accepted beside the platform's;
    /// empty (the default) for none. Comma-separated, like `webhook_secret_env`.
    pub connect_webhook_secret_env: String,
    /// Largest accepted age (either way) of a webhook's signed timestamp.
    pub webhook_tolerance_secs: u64,
    /// Time allowed for one Stripe API request (each retry gets its own).
    pub timeout_secs: u64,
    /// Retries of a Stripe API call after a network error, a 409/429 or a 5xx
    /// (never when Stripe answers `Stripe-Should-Retry: false`).
    pub max_retries: u32,
    /// First delay before a retry; doubled per retry (with jitter), at most 5 s.
    pub retry_backoff_ms: u64,
    /// `POST /stripe/payments` without a `return_url` asks Stripe for payment methods
    /// that need no redirect; off for test doubles that lack the parameter.
    pub payments_without_redirects: bool,
    /// Seconds `GET /stripe/plans` answers from memory; catalog webhooks clear it
    /// sooner. 0: no cache.
    pub plans_cache_ttl_secs: u64,
    /// Requests per second this process sends to Stripe at most, all callers together
    /// (the API, backfills, replays, gap repair): Stripe's own limit is 25 in test mode
    /// and 100 in live mode.
    pub max_requests_per_sec: u32,
    /// Seconds between two gap-repair checks of Stripe's undelivered events; 0 turns
    /// gap repair off.
    pub gap_repair_interval_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Tasks applying events concurrently.
    pub count: usize,
    /// Attempts before an event is `dead`.
    pub max_attempts: u32,
    /// First retry delay; doubled per attempt, with jitter.
    pub backoff_base_ms: u64,
    /// Cap on the retry delay.
    pub backoff_max_ms: u64,
    /// How often idle workers look for due retries and events stored by other processes.
    pub poll_interval_ms: u64,
    /// Events a worker applies in one transaction at most (each under its own
    /// savepoint).
    pub batch_size: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable on a terminal, JSON lines otherwise.
    Auto,
    Json,
    Human,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `RUST_LOG` overrides this.
    pub level: String,
    pub format: LogFormat,
    /// Directory of the daily rolling JSON log file; empty disables the file.
    pub dir: PathBuf,
    /// Daily files kept; older ones are deleted when the file rolls over.
    pub keep_days: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            shutdown_grace_secs: 30,
            metrics_public: false,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            path: PathBuf::from("./data/billd.sqlite"),
            url: None,
            password_env: "PGPASSWORD".into(),
            busy_timeout_ms: 5_000,
            pool_size: 8,
        }
    }
}

impl Default for StripeConfig {
    fn default() -> Self {
        StripeConfig {
            api_base: "https://api.stripe.com".into(),
            mode: StripeMode::Test,
            secret_key_env: "STRIPE_SECRET_KEY".into(),
            webhook_secret_env: "STRIPE_WEBHOOK_SECRET".into(),
            connect_webhook_secret_env: String::new(),
            webhook_tolerance_secs: 300,
            timeout_secs: 30,
            max_retries: 2,
            retry_backoff_ms: 500,
            payments_without_redirects: true,
            plans_cache_ttl_secs: 300,
            max_requests_per_sec: 20,
            gap_repair_interval_secs: 900,
        }
    }
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            count: 2,
            max_attempts: 8,
            backoff_base_ms: 1_000,
            backoff_max_ms: 3_600_000,
            poll_interval_ms: 1_000,
            batch_size: 16,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
            format: LogFormat::Auto,
            dir: PathBuf::from("./data/logs"),
            keep_days: 14,
        }
    }
}

impl Config {
    /// Finds and loads the config file: `explicit`, then `$BILLD_CONFIG`, then
    /// [`SEARCH_PATHS`].
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None => match std::env::var_os("BILLD_CONFIG").filter(|v| !v.is_empty()) {
                Some(p) => PathBuf::from(p),
                None => SEARCH_PATHS
                    .iter()
                    .map(PathBuf::from)
                    .find(|p| p.is_file())
                    .ok_or(ConfigError::NotFound)?,
            },
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let mut config = Config::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.clone(),
                message,
            },
            other => other,
        })?;
        config.source = Some(path);
        Ok(config)
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.to_string(),
            })
        };
        if self.database.path.as_os_str().is_empty() {
            return invalid("database.path", "must not be empty");
        }
        if self.database.pool_size == 0 {
            return invalid("database.pool_size", "must be at least 1");
        }
        if !(self.stripe.api_base.starts_with("http://")
            || self.stripe.api_base.starts_with("https://"))
        {
            return invalid("stripe.api_base", "must be an http:// or https:// URL");
        }
        if self.stripe.timeout_secs == 0 {
            return invalid("stripe.timeout_secs", "must be at least 1");
        }
        if self.stripe.max_requests_per_sec == 0 {
            return invalid("stripe.max_requests_per_sec", "must be at least 1");
        }
        if self.stripe.max_retries > 10 {
            return invalid("stripe.max_retries", "must be at most 10");
        }
        if self.stripe.secret_key_env.is_empty() {
            return invalid("stripe.secret_key_env", "must name an environment variable");
        }
        if self.stripe.webhook_secret_env.is_empty() {
            return invalid(
                "stripe.webhook_secret_env",
                "must name an environment variable",
            );
        }
        if let Some(url) = &self.database.url {
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                return invalid("database.url", "must be a postgres:// URL");
            }
            // `user:password@`: the password belongs in the environment (DESIGN §2).
            let authority = url
                .split_once("://")
                .map_or("", |(_, rest)| rest.split(['/', '?']).next().unwrap_or(""));
            if authority
                .rsplit_once('@')
                .is_some_and(|(user, _)| user.contains(':'))
            {
                return invalid(
                    "database.url",
                    &format!(
                        "must not contain a password: set it in ${} instead",
                        self.database.password_env
                    ),
                );
            }
        }
        if self.workers.count == 0 {
            return invalid("workers.count", "must be at least 1");
        }
        if self.workers.max_attempts == 0 {
            return invalid("workers.max_attempts", "must be at least 1");
        }
        if self.workers.backoff_base_ms == 0
            || self.workers.backoff_max_ms < self.workers.backoff_base_ms
        {
            return invalid(
                "workers.backoff_base_ms",
                "must be positive and not above workers.backoff_max_ms",
            );
        }
        if self.workers.poll_interval_ms == 0 {
            return invalid("workers.poll_interval_ms", "must be positive");
        }
        if !(1..=1_000).contains(&self.workers.batch_size) {
            return invalid("workers.batch_size", "must be between 1 and 1000");
        }
        if self.log.keep_days == 0 {
            return invalid("log.keep_days", "must be at least 1");
        }
        for proxy in &self.server.trusted_proxies {
            if crate::http::limits::AddressRange::parse(proxy).is_none() {
                return invalid(
                    "server.trusted_proxies",
                    "each entry must be an IP address or a CIDR range (10.0.0.0/8)",
                );
            }
        }
        let l = &self.limits;
        for (key, value) in [
            ("limits.failed_auth_burst", l.failed_auth_burst),
            ("limits.failed_auth_per_sec", l.failed_auth_per_sec),
            ("limits.money_burst", l.money_burst),
            ("limits.money_per_sec", l.money_per_sec),
            ("limits.webhook_burst", l.webhook_burst),
            ("limits.webhook_per_sec", l.webhook_per_sec),
        ] {
            if value == 0 {
                return invalid(key, "must be at least 1");
            }
        }
        for (key, value) in [
            (
                "limits.header_read_timeout_secs",
                l.header_read_timeout_secs,
            ),
            ("limits.body_read_timeout_secs", l.body_read_timeout_secs),
            ("limits.idle_timeout_secs", l.idle_timeout_secs),
        ] {
            if value == 0 {
                return invalid(key, "must be at least 1 second");
            }
        }
        if l.max_connections == 0 {
            return invalid("limits.max_connections", "must be at least 1");
        }
        if l.max_in_flight == 0 {
            return invalid("limits.max_in_flight", "must be at least 1");
        }
        if l.max_in_flight_per_address == 0 {
            return invalid("limits.max_in_flight_per_address", "must be at least 1");
        }
        self.validate_alerts()?;
        self.validate_compliance()
    }

    fn validate_compliance(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: String| Err(ConfigError::Invalid { key, message });
        let c = &self.compliance;
        for country in &c.blocked_countries {
            let country = country.trim();
            if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_alphabetic()) {
                return invalid(
                    "compliance.blocked_countries",
                    format!("`{country}` is not a two-letter ISO country code such as \"KP\""),
                );
            }
        }
        for (currency, max) in &c.max_amount {
            if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
                return invalid(
                    "compliance.max_amount",
                    format!("`{currency}` is not a three-letter ISO currency code such as usd"),
                );
            }
            if *max <= 0 {
                return invalid(
                    "compliance.max_amount",
                    format!("{currency}: must be a positive number of minor units"),
                );
            }
        }
        for domain in &c.blocked_email_domains {
            let domain = domain.trim().trim_start_matches('@');
            if domain.is_empty() || domain.contains(['@', ' ', '/']) || !domain.contains('.') {
                return invalid(
                    "compliance.blocked_email_domains",
                    format!("`{domain}` is not an email domain such as example.com"),
                );
            }
        }
        Ok(())
    }

    fn validate_alerts(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.to_string(),
            })
        };
        let a = &self.alerts;
        if !a.webhook_url.is_empty() && !a.webhook_url_env.is_empty() {
            return invalid(
                "alerts.webhook_url",
                "set either alerts.webhook_url or alerts.webhook_url_env, not both",
            );
        }
        if !a.webhook_url.is_empty() && !is_http_url(&a.webhook_url) {
            return invalid("alerts.webhook_url", "must be an http:// or https:// URL");
        }
        if a.command.first().is_some_and(|p| p.is_empty()) {
            return invalid(
                "alerts.command",
                "the program (first element) must not be empty",
            );
        }
        for (key, value) in [
            ("alerts.webhook_timeout_secs", a.webhook_timeout_secs),
            ("alerts.command_timeout_secs", a.command_timeout_secs),
            ("alerts.check_interval_secs", a.check_interval_secs),
            ("alerts.repeat_secs", a.repeat_secs),
            ("alerts.retry_backoff_ms", a.retry_backoff_ms),
            ("alerts.backlog_secs", a.backlog_secs),
            ("alerts.window_secs", a.window_secs),
            ("alerts.signature_failures", a.signature_failures),
            ("alerts.stripe_min_calls", a.stripe_min_calls),
            ("alerts.storage_errors", a.storage_errors),
        ] {
            if value == 0 {
                return invalid(key, "must be at least 1");
            }
        }
        if a.retries > 20 {
            return invalid("alerts.retries", "must be at most 20");
        }
        if !(a.stripe_error_rate > 0.0 && a.stripe_error_rate <= 1.0) {
            return invalid("alerts.stripe_error_rate", "must be above 0 and at most 1");
        }
        Ok(())
    }

    pub fn busy_timeout(&self) -> Duration {
        Duration::from_millis(self.database.busy_timeout_ms)
    }

    /// Reads the secrets the daemon needs from the environment.
    pub fn secrets_from_env(&self) -> Result<Secrets, ConfigError> {
        Secrets::from_lookup(self, |name| std::env::var(name).ok())
    }

    /// Reads only the Stripe API key from the environment: what the subcommands that
    /// call Stripe need (they receive no webhooks).
    pub fn stripe_key_from_env(&self) -> Result<SecretString, ConfigError> {
        Secrets::key_from_lookup(self, |name| std::env::var(name).ok())
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn the_repository_default_config_is_valid() {
        let text = include_str!("../../config/billd.toml");
        Config::from_toml(text).expect("config/billd.toml parses");
    }

    #[test]
    fn the_localstripe_config_of_the_readme_is_valid() {
        let text = include_str!("../../config/try-localstripe.toml");
        let config = Config::from_toml(text).expect("config/try-localstripe.toml parses");
        assert_eq!(config.stripe.api_base, "http://localhost:8420");
    }

    #[test]
    fn the_example_config_documents_every_key_and_is_valid() {
        let text = include_str!("../../config/billd.example.toml");
        Config::from_toml(text).expect("config/billd.example.toml parses");
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let err = Config::from_toml("[server]\nlisten_addr = \"x\"\n").unwrap_err();
        assert!(err.to_string().contains("listen_addr"), "{err}");
    }

    #[test]
    fn a_database_url_with_a_password_is_refused_without_showing_it() {
        let password = ["hunter", "2"].concat();
        let err = Config::from_toml(&format!(
            "[database]\nurl = \"postgres://billd:{password}@db:5432/billd\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("database.url") && err.contains("PGPASSWORD"),
            "{err}"
        );
        assert!(!err.contains(&password), "{err}");
        assert!(
            Config::from_toml("[database]\nurl = \"postgres://billd@db:5432/billd\"\n").is_ok()
        );
        assert!(Config::from_toml("[database]\nurl = \"mysql://db/billd\"\n").is_err());
    }

    #[test]
    fn invalid_values_name_the_key() {
        let err = Config::from_toml("[workers]\ncount = 0\n").unwrap_err();
        assert!(err.to_string().contains("workers.count"), "{err}");
    }

    #[test]
    fn missing_webhook_secret_names_the_variable() {
        let config = Config::default();
        let err = Secrets::from_lookup(&config, |name| {
            (name == "STRIPE_SECRET_KEY").then(|| "sk_test_x".to_string())
        })
        .unwrap_err();
        assert!(err.to_string().contains("STRIPE_WEBHOOK_SECRET"), "{err}");
    }

    #[test]
    fn several_webhook_secrets_are_split_on_commas() {
        let config = Config::default();
        let secrets = Secrets::from_lookup(&config, |name| match name {
            "STRIPE_SECRET_KEY" => Some("sk_test_x".into()),
            _ => Some("whsec_a, whsec_b,".into()),
        })
        .unwrap();
        assert_eq!(secrets.webhook_secrets.len(), 2);
        assert!(!format!("{secrets:?}").contains("whsec_a"));
    }

    #[test]
    fn a_connect_endpoints_secrets_are_accepted_beside_the_platforms() {
        let mut config = Config::default();
        config.stripe.connect_webhook_secret_env = "STRIPE_CONNECT_WEBHOOK_SECRET".into();
        let secrets = Secrets::from_lookup(&config, |name| match name {
            "STRIPE_SECRET_KEY" => Some("sk_test_x".into()),
            "STRIPE_WEBHOOK_SECRET" => Some("whsec_platform".into()),
            "STRIPE_CONNECT_WEBHOOK_SECRET" => Some("whsec_connect".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(secrets.webhook_secrets.len(), 2);
        // Named but not set: an error naming the variable, not a silent platform-only billd.
        let err = Secrets::from_lookup(&config, |name| match name {
            "STRIPE_SECRET_KEY" => Some("sk_test_x".into()),
            "STRIPE_WEBHOOK_SECRET" => Some("whsec_platform".into()),
            _ => None,
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains("STRIPE_CONNECT_WEBHOOK_SECRET"), "{err}");
    }

    #[test]
    fn masks_show_a_known_prefix_and_the_length_only() {
        assert_eq!(mask("sk_test_abc"), "sk_test_… (11 characters)");
        assert_eq!(mask("rk_live_abcd"), "rk_live_… (12 characters)");
        assert_eq!(mask("whsec_abc"), "whsec_… (9 characters)");
        assert_eq!(mask("pk_test_abc"), "… (no known prefix, 11 characters)");
        assert_eq!(mask("hunter2"), "… (no known prefix, 7 characters)");
    }

    #[test]
    fn credentials_in_a_url_are_removed() {
        assert_eq!(
            without_credentials("https://user:pw@example.com:8443/v1?x=1"),
            "https://***@example.com:8443/v1?x=1"
        );
        assert_eq!(
            without_credentials("http://sk_test_x@localhost:8420"),
            "http://***@localhost:8420"
        );
        assert_eq!(
            without_credentials("https://api.stripe.com"),
            "https://api.stripe.com"
        );
        assert_eq!(
            without_credentials("https://example.com/a@b"),
            "https://example.com/a@b"
        );
    }

    #[test]
    fn alerts_keys_are_validated_by_name() {
        let err = Config::from_toml("[alerts]\nwebhook_url = \"ftp://x\"\n").unwrap_err();
        assert!(err.to_string().contains("alerts.webhook_url"), "{err}");
        let both = "[alerts]\nwebhook_url = \"https://x\"\nwebhook_url_env = \"U\"\n";
        assert!(Config::from_toml(both).is_err());
        let err = Config::from_toml("[alerts]\nstripe_error_rate = 2.0\n").unwrap_err();
        assert!(
            err.to_string().contains("alerts.stripe_error_rate"),
            "{err}"
        );
    }

    #[test]
    fn an_alert_webhook_url_is_read_from_its_variable_and_masked_to_its_host() {
        let config = Config::from_toml("[alerts]\nwebhook_url_env = \"HOOK\"\n").unwrap();
        let url = config
            .alerts
            .webhook_url(|_| Some("https://hooks.example.com/T0/B0/secretpart".into()))
            .unwrap()
            .unwrap();
        let masked = mask_url(url.expose_secret());
        assert_eq!(masked, "https://hooks.example.com/… (42 characters)");
        let err = config.alerts.webhook_url(|_| None).unwrap_err();
        assert!(err.to_string().contains("HOOK"), "{err}");
    }

    #[test]
    fn a_live_key_in_test_mode_is_refused() {
        let config = Config::default();
        let err = Secrets::from_lookup(&config, |name| match name {
            "STRIPE_SECRET_KEY" => Some("sk_live_x".into()),
            _ => Some("whsec_a".into()),
        })
        .unwrap_err();
        assert!(err.to_string().contains("stripe.mode"), "{err}");
    }
}

//! Alerts that reach a person (DESIGN §2 `[alerts]`, docs/alerts.md).
//!
//! A background task ([`Alerter::run`]) checks each kind's condition on an interval
//! (and at once when a worker marks an event dead). Whether an alert is due is decided
//! in the database (`store::alerts`), so several billd processes on one database send
//! it once. Due alerts go to every configured sink (a Slack-compatible webhook, a
//! command), each retried with backoff; one that never gets through is logged at ERROR.
//!
//! Alerts carry ids, counts, kinds and ages only: never payloads, emails or secrets.

use std::{
    collections::{HashMap, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

mod sinks;

pub use sinks::{Answer, Sinks};

use crate::{
    config::AlertsConfig,
    store::{
        Store, StoreError,
        alerts::{self as state, Raised},
        events::{self as inbox, Status},
    },
};

/// The longest wait between two delivery attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Dead event ids named in an `event_dead` alert, at most.
const DEAD_IDS: usize = 5;

/// What an alert is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Events are dead: their effect is missing from the mirror until replayed.
    EventDead,
    /// A burst of webhooks with bad signatures (a wrong secret, or someone guessing).
    SignatureFailures,
    /// The oldest waiting event is older than `backlog_secs`.
    Backlog,
    /// Many Stripe API attempts fail.
    StripeErrors,
    /// The database could not be reached or written.
    Storage,
    /// Events Stripe holds that the inbox lacks (found and stored by gap repair).
    Gap,
    /// `billd alerts test`.
    Test,
}

impl Kind {
    pub const CHECKED: [Kind; 5] = [
        Kind::EventDead,
        Kind::SignatureFailures,
        Kind::Backlog,
        Kind::StripeErrors,
        Kind::Storage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::EventDead => "event_dead",
            Kind::SignatureFailures => "signature_failures",
            Kind::Backlog => "backlog",
            Kind::StripeErrors => "stripe_errors",
            Kind::Storage => "storage",
            Kind::Gap => "gap",
            Kind::Test => "test",
        }
    }

    pub fn severity(self) -> &'static str {
        match self {
            Kind::EventDead | Kind::Storage => "critical",
            Kind::Test => "info",
            _ => "warning",
        }
    }

    /// Counted per process: resolved only once no process has seen it for a window.
    fn per_process(self) -> bool {
        matches!(
            self,
            Kind::SignatureFailures | Kind::StripeErrors | Kind::Storage
        )
    }
}

/// One alert as every sink receives it (the webhook's JSON body, the command's stdin).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Alert {
    /// A one-line rendering, for Slack and the like.
    pub text: String,
    pub kind: &'static str,
    pub severity: &'static str,
    pub summary: String,
    /// Ids, counts and ages only.
    pub details: Value,
    pub resolved: bool,
}

impl Alert {
    pub fn new(kind: Kind, summary: String, details: Value, resolved: bool) -> Alert {
        let text = if resolved {
            format!("[billd] resolved: {}: {summary}", kind.as_str())
        } else {
            format!("[billd] {} {}: {summary}", kind.severity(), kind.as_str())
        };
        Alert {
            text,
            kind: kind.as_str(),
            severity: kind.severity(),
            summary,
            details,
            resolved,
        }
    }

    pub fn test() -> Alert {
        Alert::new(
            Kind::Test,
            "test alert from `billd alerts test`: this sink works".into(),
            json!({}),
            false,
        )
    }
}

// Per-process counts of what the alerts watch, fed by the webhook, the Stripe client and
// the storage paths (as `http::metrics` counts webhook outcomes). Monotonic, so every
// alerter in the process reads them without taking them from another.
static SIGNATURE_FAILURES: AtomicU64 = AtomicU64::new(0);
static STRIPE_ATTEMPTS: AtomicU64 = AtomicU64::new(0);
static STRIPE_FAILURES: AtomicU64 = AtomicU64::new(0);
static STORAGE_ERRORS: AtomicU64 = AtomicU64::new(0);

/// Counts a webhook refused for its signature.
pub fn signature_failed() {
    SIGNATURE_FAILURES.fetch_add(1, Ordering::Relaxed);
}

/// Counts one Stripe API attempt; `failed` for a network error, a timeout, a 429 or a 5xx
/// (a card decline or a 404 is Stripe working).
pub fn stripe_attempt(failed: bool) {
    STRIPE_ATTEMPTS.fetch_add(1, Ordering::Relaxed);
    if failed {
        STRIPE_FAILURES.fetch_add(1, Ordering::Relaxed);
    }
}

/// Counts a database error on a path that cannot answer a caller with it (the ingest
/// writer, a worker step).
pub fn storage_error() {
    STORAGE_ERRORS.fetch_add(1, Ordering::Relaxed);
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    signature_failures: u64,
    stripe_attempts: u64,
    stripe_failures: u64,
    storage_errors: u64,
}

impl Counts {
    fn now() -> Counts {
        Counts {
            signature_failures: SIGNATURE_FAILURES.load(Ordering::Relaxed),
            stripe_attempts: STRIPE_ATTEMPTS.load(Ordering::Relaxed),
            stripe_failures: STRIPE_FAILURES.load(Ordering::Relaxed),
            storage_errors: STORAGE_ERRORS.load(Ordering::Relaxed),
        }
    }

    fn since(self, earlier: Counts) -> Counts {
        Counts {
            signature_failures: self
                .signature_failures
                .saturating_sub(earlier.signature_failures),
            stripe_attempts: self.stripe_attempts.saturating_sub(earlier.stripe_attempts),
            stripe_failures: self.stripe_failures.saturating_sub(earlier.stripe_failures),
            storage_errors: self.storage_errors.saturating_sub(earlier.storage_errors),
        }
    }
}

/// What a check found for one kind.
#[derive(Debug, Clone, PartialEq)]
struct Finding {
    kind: Kind,
    /// `Some(summary, details)` while the condition holds.
    firing: Option<(String, Value)>,
}

/// The background task: checks, claims and sends.
pub struct Alerter {
    store: Store,
    config: AlertsConfig,
    sinks: Sinks,
    /// Snapshots of the counters, oldest first, covering the window.
    history: VecDeque<(Instant, Counts)>,
    /// When the database cannot be reached, `storage` alerts are rate-limited here: the
    /// claim that would dedupe them across processes needs that database.
    local_sent: HashMap<Kind, Instant>,
}

impl Alerter {
    pub fn new(store: Store, config: AlertsConfig, sinks: Sinks) -> Alerter {
        let mut history = VecDeque::new();
        history.push_back((Instant::now(), Counts::now()));
        Alerter {
            store,
            config,
            sinks,
            history,
            local_sent: HashMap::new(),
        }
    }

    /// Runs until `shutdown`: a check every `check_interval_secs`, and one at once when
    /// `wake` is notified (a worker marked an event dead).
    pub async fn run(mut self, wake: Arc<Notify>, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(Duration::from_secs(self.config.check_interval_secs));
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut deliveries = tokio::task::JoinSet::new();
        tracing::info!(sinks = ?self.sinks.names(), "alerts enabled");
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = every.tick() => {}
                _ = wake.notified() => {}
            }
            for alert in self.check().await {
                let sinks = self.sinks.clone();
                let stop = shutdown.clone();
                let retries = self.config.retries;
                let backoff = Duration::from_millis(self.config.retry_backoff_ms);
                deliveries.spawn(async move {
                    sinks.deliver(&alert, retries, backoff, &stop).await;
                });
            }
            while deliveries.try_join_next().is_some() {}
        }
        // Deliveries still retrying see the cancellation, make one last try and log
        // what they could not send.
        while deliveries.join_next().await.is_some() {}
    }

    /// One check of every kind: the alerts this process should send now.
    pub async fn check(&mut self) -> Vec<Alert> {
        let now_ms = crate::time::now_ms();
        let findings = match self.findings(now_ms).await {
            Ok(f) => f,
            Err(e) => {
                storage_error();
                tracing::error!(error = %e, "alert check cannot read the database");
                return self.storage_unreachable(&e);
            }
        };
        let repeat_ms =
            i64::try_from(self.config.repeat_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let window_ms =
            i64::try_from(self.config.window_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        let claims = self
            .store
            .run(move |conn| {
                let mut due = Vec::new();
                for finding in findings {
                    let kind = finding.kind.as_str();
                    match finding.firing {
                        Some((summary, details)) => {
                            match state::raise(conn, kind, now_ms, repeat_ms)? {
                                Raised::New => {
                                    due.push(Alert::new(finding.kind, summary, details, false))
                                }
                                Raised::Reminder { since_ms } => {
                                    let mut details = details;
                                    if let Value::Object(map) = &mut details {
                                        map.insert(
                                            "firing_for_secs".into(),
                                            json!((now_ms - since_ms) / 1000),
                                        );
                                    }
                                    due.push(Alert::new(
                                        finding.kind,
                                        format!("still firing: {summary}"),
                                        details,
                                        false,
                                    ));
                                }
                                Raised::Quiet => {}
                            }
                        }
                        None => {
                            let grace = if finding.kind.per_process() {
                                window_ms
                            } else {
                                0
                            };
                            if let Some(since_ms) = state::clear(conn, kind, now_ms, grace)? {
                                let secs = (now_ms - since_ms) / 1000;
                                due.push(Alert::new(
                                    finding.kind,
                                    format!("{kind} cleared after {secs} s"),
                                    json!({ "firing_for_secs": secs }),
                                    true,
                                ));
                            }
                        }
                    }
                }
                Ok(due)
            })
            .await;
        match claims {
            Ok(due) => due,
            Err(e) => {
                storage_error();
                tracing::error!(error = %e, "alert state cannot be written");
                self.storage_unreachable(&e)
            }
        }
    }

    /// A `storage` alert decided by this process alone (at most one per `repeat_secs`).
    fn storage_unreachable(&mut self, e: &StoreError) -> Vec<Alert> {
        let repeat = Duration::from_secs(self.config.repeat_secs);
        if self
            .local_sent
            .get(&Kind::Storage)
            .is_some_and(|at| at.elapsed() < repeat)
        {
            return Vec::new();
        }
        self.local_sent.insert(Kind::Storage, Instant::now());
        let kind = match e {
            StoreError::Pool(_) => "pool",
            StoreError::Database(_) => "database",
            _ => "other",
        };
        vec![Alert::new(
            Kind::Storage,
            "billd cannot use its database".into(),
            json!({ "error_kind": kind }),
            false,
        )]
    }

    /// Reads every condition.
    async fn findings(&mut self, now_ms: i64) -> Result<Vec<Finding>, StoreError> {
        let (counts, oldest, dead_ids, gap) = self
            .store
            .run(|conn| {
                let gap = crate::store::gap::state(conn)?;
                let counts = inbox::counts(conn)?;
                let oldest = inbox::oldest_waiting_ms(conn)?;
                let (dead, _) = inbox::list(
                    conn,
                    &inbox::Filter {
                        status: Some(Status::Dead),
                        type_: None,
                        account: None,
                        since_ms: None,
                        limit: DEAD_IDS,
                        starting_after: None,
                    },
                )?;
                Ok((
                    counts,
                    oldest,
                    dead.into_iter().map(|e| e.id).collect::<Vec<_>>(),
                    gap,
                ))
            })
            .await?;
        let count = |status: Status| {
            counts
                .iter()
                .find(|(s, _)| *s == status)
                .map_or(0, |(_, n)| *n)
        };
        let window = self.window();
        let c = &self.config;
        let window_secs = c.window_secs;
        let mut findings = Vec::new();

        let dead = count(Status::Dead);
        findings.push(Finding {
            kind: Kind::EventDead,
            firing: (dead > 0).then(|| {
                (
                    format!("{dead} event(s) dead; replay them with `billd events replay --dead`"),
                    json!({ "dead": dead, "newest_dead_event_ids": dead_ids }),
                )
            }),
        });

        let age_secs = oldest.map_or(0, |ms| (now_ms - ms).max(0) / 1000);
        let waiting = count(Status::Pending) + count(Status::Failed);
        let backlog_secs = i64::try_from(c.backlog_secs).unwrap_or(i64::MAX);
        findings.push(Finding {
            kind: Kind::Backlog,
            firing: (oldest.is_some() && age_secs >= backlog_secs).then(|| {
                (
                    format!("the oldest waiting event is {age_secs} s old ({waiting} waiting)"),
                    json!({ "oldest_waiting_secs": age_secs, "waiting": waiting, "threshold_secs": backlog_secs }),
                )
            }),
        });

        let sig = window.signature_failures;
        findings.push(Finding {
            kind: Kind::SignatureFailures,
            firing: (sig >= c.signature_failures).then(|| {
                (
                    format!("{sig} webhook(s) with a bad signature in {window_secs} s"),
                    json!({ "count": sig, "window_secs": window_secs, "process_id": std::process::id() }),
                )
            }),
        });

        let (tried, failed) = (window.stripe_attempts, window.stripe_failures);
        let rate = if tried == 0 {
            0.0
        } else {
            failed as f64 / tried as f64
        };
        findings.push(Finding {
            kind: Kind::StripeErrors,
            firing: (tried >= c.stripe_min_calls && rate >= c.stripe_error_rate).then(|| {
                (
                    format!("{failed} of {tried} Stripe API attempts failed in {window_secs} s"),
                    json!({ "failed": failed, "attempts": tried, "window_secs": window_secs, "process_id": std::process::id() }),
                )
            }),
        });

        // Gap repair's last check, whichever process made it: events it had to store,
        // or a cursor so old that Stripe may have dropped events it has not listed.
        let cursor_age_days = gap
            .cursor
            .map_or(0, |c| (now_ms / 1000 - c).max(0) / 86_400);
        findings.push(Finding {
            kind: Kind::Gap,
            firing: if gap.last_found > 0 {
                Some((
                    format!(
                        "gap repair stored {} event(s) Stripe held that the inbox lacked",
                        gap.last_found
                    ),
                    json!({ "missing": gap.last_found, "total_repaired": gap.total_found }),
                ))
            } else if cursor_age_days >= GAP_CURSOR_WARN_DAYS {
                Some((
                    format!(
                        "gap repair has not checked events newer than {cursor_age_days} days; \
                         Stripe keeps them 30 days"
                    ),
                    json!({ "cursor_age_days": cursor_age_days }),
                ))
            } else {
                None
            },
        });

        let storage = window.storage_errors;
        findings.push(Finding {
            kind: Kind::Storage,
            firing: (storage >= c.storage_errors).then(|| {
                (
                    format!("{storage} database error(s) in {window_secs} s"),
                    json!({ "count": storage, "window_secs": window_secs, "process_id": std::process::id() }),
                )
            }),
        });
        Ok(findings)
    }

    /// The counts of the last `window_secs`, keeping the snapshots that cover it.
    fn window(&mut self) -> Counts {
        let now = Instant::now();
        let current = Counts::now();
        let span = Duration::from_secs(self.config.window_secs);
        // Keep one snapshot at or before the window's start as its baseline.
        while self.history.len() > 1
            && self
                .history
                .get(1)
                .is_some_and(|(at, _)| now.duration_since(*at) >= span)
        {
            self.history.pop_front();
        }
        let base = self.history.front().map_or(current, |(_, c)| *c);
        self.history.push_back((now, current));
        current.since(base)
    }
}

/// A gap-repair cursor this old is alerted: Stripe keeps events 30 days.
const GAP_CURSOR_WARN_DAYS: i64 = 25;

#[cfg(test)]
mod tests {
    use super::sinks::run_command;
    use super::*;
    use secrecy::SecretString;
    use std::io::Write;
    use std::sync::Mutex;
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};

    fn config() -> AlertsConfig {
        AlertsConfig {
            retries: 2,
            retry_backoff_ms: 1,
            ..AlertsConfig::default()
        }
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn an_alert_has_the_fields_of_the_contract() {
        let alert = Alert::new(Kind::Backlog, "x".into(), json!({"waiting": 2}), true);
        let v = serde_json::to_value(&alert).unwrap();
        for field in ["text", "kind", "severity", "summary", "details", "resolved"] {
            assert!(v.get(field).is_some(), "{field} missing: {v}");
        }
        assert_eq!(v["kind"], "backlog");
        assert_eq!(v["resolved"], true);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn an_alert_a_sink_never_accepts_is_logged_at_error_without_the_url() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(500))
            .expect(3)
            .mount(&server)
            .await;
        let url = format!("{}/hook/secretpart", server.uri());
        let sinks = Sinks::new(&config(), Some(SecretString::from(url))).unwrap();
        let logs = Captured::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let alert = Alert::new(Kind::Storage, "s".into(), json!({}), false);
        let ok = sinks
            .deliver(
                &alert,
                2,
                Duration::from_millis(1),
                &CancellationToken::new(),
            )
            .await;
        assert!(!ok);
        let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
        let lost = text
            .lines()
            .find(|l| l.contains("alert not delivered"))
            .unwrap_or_else(|| panic!("no ERROR line: {text}"));
        assert!(lost.contains("\"level\":\"ERROR\""), "{lost}");
        assert!(lost.contains("storage"), "{lost}");
        assert!(!text.contains("secretpart"), "{text}");
    }

    #[tokio::test]
    async fn a_sink_that_comes_back_receives_the_alert_on_a_retry() {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(2)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .expect(1)
            .mount(&server)
            .await;
        let sinks = Sinks::new(&config(), Some(SecretString::from(server.uri()))).unwrap();
        let alert = Alert::new(Kind::Backlog, "b".into(), json!({}), false);
        assert!(
            sinks
                .deliver(
                    &alert,
                    3,
                    Duration::from_millis(1),
                    &CancellationToken::new()
                )
                .await
        );
    }

    #[tokio::test]
    async fn a_command_that_fails_or_hangs_is_not_an_accepted_alert() {
        let mut c = config();
        c.command = vec!["false".into()];
        let sinks = Sinks::new(&c, None).unwrap();
        let answers = sinks.send_once(&Alert::test()).await;
        assert!(!answers[0].accepted, "{answers:?}");
        assert!(
            run_command(
                &["sleep".into(), "5".into()],
                b"{}",
                Duration::from_millis(50)
            )
            .is_err()
        );
        assert!(run_command(&["true".into()], b"{}", Duration::from_secs(5)).is_ok());
    }
}

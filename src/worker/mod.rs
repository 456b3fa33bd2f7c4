//! Workers: apply stored events to the mirror.
//!
//! [`Worker::step_batch`] claims due events inside one immediate transaction, applies
//! them and records their new status in that same transaction, so an event's effect
//! lands exactly once even across crashes, several workers and several processes
//! sharing the database. A batch runs first without savepoints (fewer round trips on
//! PostgreSQL); if one of its handlers fails (or panics), the batch rolls back and runs
//! again with a savepoint per event, where the failure rolls back alone (the rest of the
//! batch stands), and the event is retried with exponential backoff and jitter until
//! `max_attempts`, then `dead`.
//!
//! On PostgreSQL the claim locks the events' rows (`FOR UPDATE SKIP LOCKED`), so workers
//! of every node apply in parallel; before a handler reads anything, its worker takes a
//! try-lock on every object the batch's events name (one round trip), and an event whose
//! object another worker holds is left waiting ([`Step::Busy`], no attempt counted).

use std::{
    collections::HashSet,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::Arc,
    time::{Duration, Instant},
};

mod keys;

use crate::store::db::TransactionBehavior;
use keys::object_keys;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::{
    config::{StripeMode, WorkerConfig},
    events::{self, Event, Outcome},
    store::{
        Store, StoreError,
        events::{self as inbox, Claimed, Status},
    },
    time::now_ms,
};

/// How long a worker whose every claimed event was busy waits before claiming again.
const BUSY_WAIT: Duration = Duration::from_millis(2);

/// Why an event was not applied.
enum Failure {
    /// Its object was locked by another worker, or the database reported contention
    /// (deadlock, lock timeout, serialisation failure): try again, not an attempt.
    Busy,
    /// A message for `last_error`; counts as an attempt.
    Error(String),
    /// The payload cannot be read by this version of billd: no retry can help, so the
    /// event is dead at once (and replayable after an upgrade).
    Permanent(String),
}

impl Failure {
    fn from_store(e: StoreError) -> Failure {
        if e.is_contention() {
            Failure::Busy
        } else {
            Failure::Error(e.to_string())
        }
    }
}

/// Longest a batch keeps adding events on SQLite (it always applies at least one): the
/// batch holds the one write lock, which the ingest writer needs. PostgreSQL has no such
/// lock: a batch applies everything it claimed (its rows are locked meanwhile, and other
/// workers skip them, so stopping early would only make them skip more).
const BATCH_TIME: Duration = Duration::from_millis(5);

/// Longest a batch keeps adding events on SQLite while this process's ingest writer
/// waits for its turn ([`crate::store::gate`]): about as long as an ingest commit, so
/// the lock's time is shared about evenly while a burst arrives.
const BATCH_TIME_INGEST_WAITING: Duration = Duration::from_millis(1);

/// How a batch keeps its events apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isolation {
    /// No savepoints (two round trips per event fewer on PostgreSQL): one failing event
    /// rolls the whole batch back, and it runs again [`Isolation::PerEvent`].
    Together,
    /// A savepoint per event: a failing event rolls back alone and its failure is
    /// recorded, while the rest of the batch stands.
    PerEvent,
}

/// An event's `data.object`, read once per batch for both its locks and its apply.
type Object<'a> = Result<&'a serde_json::value::RawValue, events::ApplyError>;

/// What a batch did to one claimed event, reported once the batch committed.
struct Done<'a> {
    event: &'a Claimed,
    duration_ms: f64,
    verdict: Verdict,
}

enum Verdict {
    /// Applied (`processed`) or decided against (`ignored`); the status is written with
    /// the rest of the batch's.
    Finished {
        status: Status,
        note: Option<String>,
    },
    /// Another transaction holds one of its objects: it waits, no attempt counted.
    Busy,
    /// Rolled back and recorded: retried at `next`, or dead.
    Failed {
        error: String,
        attempts: i64,
        next: Option<i64>,
        permanent: bool,
    },
}

/// The span an event's apply and its report are logged in.
fn apply_span(event: &Claimed) -> tracing::Span {
    tracing::info_span!(
        "apply",
        event_id = %event.id,
        event_type = %event.type_,
        account = event.account.as_deref().unwrap_or(""),
        livemode = event.livemode,
    )
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// An event was applied (`processed`).
    Applied { id: String },
    /// An event was stored as `ignored` (unknown type or livemode mismatch).
    Ignored { id: String },
    /// An event failed and will be retried.
    Retried { id: String },
    /// An event failed for the last time and is `dead`.
    Dead { id: String },
    /// Another worker (on PostgreSQL, perhaps of another node) was applying an event of
    /// the same object: this one stays waiting, its attempts untouched.
    Busy { id: String },
    /// Nothing was due.
    Idle,
}

#[derive(Clone)]
pub struct Worker {
    store: Store,
    config: WorkerConfig,
    mode: StripeMode,
    /// Called after an event is marked dead (wakes the alert check).
    on_dead: Option<Arc<dyn Fn() + Send + Sync>>,
}

impl Worker {
    pub fn new(store: Store, config: WorkerConfig, mode: StripeMode) -> Worker {
        Worker {
            store,
            config,
            mode,
            on_dead: None,
        }
    }

    /// Registers a callback for events marked dead: the alert check runs at once rather
    /// than at its next interval (it reads the dead count itself, see docs/decisions.md).
    pub fn on_dead(mut self, f: Arc<dyn Fn() + Send + Sync>) -> Worker {
        self.on_dead = Some(f);
        self
    }

    /// Applies the next due event, if any. Blocking.
    pub fn step(&self) -> Result<Step, StoreError> {
        Ok(self.step_batch(1)?.pop().unwrap_or(Step::Idle))
    }

    /// Applies up to `max` due events in one transaction, each under a savepoint of its
    /// own: a failing event rolls back to its savepoint (and records its failure), not
    /// the batch. Answers what happened to each (empty: nothing was due). Blocking.
    ///
    /// One transaction for several events takes the write lock once and commits once
    /// where one per event did it each time; on SQLite the batch also ends after
    /// [`BATCH_TIME`], so the ingest writer never waits long for the lock.
    pub fn step_batch(&self, max: usize) -> Result<Vec<Step>, StoreError> {
        self.batch_with(|conn, now| inbox::claim_due(conn, now, max))
    }

    /// Applies the event `seq` now if it is still waiting. Blocking.
    pub fn apply_seq(&self, seq: i64) -> Result<Step, StoreError> {
        Ok(self
            .batch_with(|conn, _| Ok(inbox::claim_seq(conn, seq)?.into_iter().collect()))?
            .pop()
            .unwrap_or(Step::Idle))
    }

    /// Claims with `claim` (one query: one attempt per event per batch) and applies what
    /// it claimed (on SQLite until [`BATCH_TIME`] has passed; the rest stay waiting,
    /// released at the commit). The batch runs first with its events [`Isolation::Together`];
    /// if one of them fails, that transaction rolls back and the batch runs again
    /// [`Isolation::PerEvent`], where the failure rolls back alone and is recorded.
    fn batch_with(
        &self,
        claim: impl Fn(&crate::store::Connection, i64) -> Result<Vec<Claimed>, StoreError>,
    ) -> Result<Vec<Step>, StoreError> {
        match self.run_batch(&claim, Isolation::Together)? {
            Some(steps) => Ok(steps),
            None => Ok(self
                .run_batch(&claim, Isolation::PerEvent)?
                .unwrap_or_default()),
        }
    }

    /// One batch in one transaction. `None`: an event failed [`Isolation::Together`],
    /// and the transaction rolled back with nothing written.
    fn run_batch(
        &self,
        claim: &impl Fn(&crate::store::Connection, i64) -> Result<Vec<Claimed>, StoreError>,
        isolation: Isolation,
    ) -> Result<Option<Vec<Step>>, StoreError> {
        let mut conn = self.store.conn()?;
        let holds_the_write_lock = conn.single_writer();
        // SQLite: this process's turn at the write lock, for the whole transaction.
        let _turn =
            holds_the_write_lock.then(|| self.store.write_turn(crate::store::gate::Writer::Worker));
        let now = now_ms();
        let batch_started = Instant::now();
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let claimed = claim(&tx, now)?;
        let objects: Vec<Object<'_>> = claimed
            .iter()
            .map(|e| Event::object_of(&e.payload))
            .collect();
        let busy = self.lock_objects(&tx, &claimed, &objects)?;
        let mut done: Vec<Done<'_>> = Vec::with_capacity(claimed.len());
        for ((event, object), busy) in claimed.iter().zip(&objects).zip(busy) {
            if holds_the_write_lock && !done.is_empty() {
                let elapsed = batch_started.elapsed();
                if elapsed >= BATCH_TIME
                    || (elapsed >= BATCH_TIME_INGEST_WAITING && self.store.ingest_waiting())
                {
                    break;
                }
            }
            if busy {
                done.push(Done {
                    event,
                    duration_ms: 0.0,
                    verdict: Verdict::Busy,
                });
                continue;
            }
            let applied = match isolation {
                Isolation::Together => {
                    let applied = self.apply(&tx, event, object, now);
                    if !matches!(applied.verdict, Verdict::Finished { .. }) {
                        // Dropping the transaction rolls back the whole batch.
                        return Ok(None);
                    }
                    applied
                }
                Isolation::PerEvent => self.apply_isolated(&mut tx, event, object, now)?,
            };
            // The database reported contention: commit what this batch did, so the other
            // transaction is not kept waiting for locks this one holds.
            let contended = matches!(applied.verdict, Verdict::Busy);
            done.push(applied);
            if contended {
                break;
            }
        }
        if done.is_empty() {
            return Ok(Some(Vec::new()));
        }
        let finished: Vec<inbox::Finished<'_>> = done
            .iter()
            .filter_map(|d| match &d.verdict {
                Verdict::Finished { status, note } => Some(inbox::Finished {
                    seq: d.event.seq,
                    status: *status,
                    note: note.as_deref(),
                }),
                _ => None,
            })
            .collect();
        inbox::finish_all(&tx, &finished, now)?;
        tx.commit()?;
        // Logged and counted once committed: a batch that ran again says so once.
        let steps: Vec<Step> = done.into_iter().map(|d| self.report(d)).collect();
        if steps.iter().any(|s| matches!(s, Step::Dead { .. }))
            && let Some(f) = &self.on_dead
        {
            f();
        }
        Ok(Some(steps))
    }

    /// Per claimed event, whether it must wait because another transaction holds one of
    /// the objects it names (PostgreSQL; SQLite's one writer serialises applies). An event sharing an object with a waiting
    /// one waits too, so the events of one object still apply in the order claimed.
    fn lock_objects(
        &self,
        conn: &crate::store::Connection,
        claimed: &[Claimed],
        objects: &[Object<'_>],
    ) -> Result<Vec<bool>, StoreError> {
        if conn.single_writer() {
            return Ok(vec![false; claimed.len()]);
        }
        // An ignored event (livemode mismatch) or an unreadable one writes no object.
        let keys: Vec<Vec<String>> = claimed
            .iter()
            .zip(objects)
            .map(|(e, object)| match object {
                Ok(object) if e.livemode == self.mode.is_live() => object_keys(object),
                _ => Vec::new(),
            })
            .collect();
        let mut all: Vec<&str> = keys.iter().flatten().map(String::as_str).collect();
        all.sort_unstable();
        all.dedup();
        let held: HashSet<String> = inbox::lock_objects(conn, &all)?.into_iter().collect();
        let mut waiting: HashSet<&str> = HashSet::new();
        Ok(keys
            .iter()
            .map(|keys| {
                let busy = keys
                    .iter()
                    .any(|k| held.contains(k) || waiting.contains(k.as_str()));
                if busy {
                    waiting.extend(keys.iter().map(String::as_str));
                }
                busy
            })
            .collect())
    }

    /// Applies one claimed event in `conn` (a transaction or a savepoint), or decides
    /// not to; writes nothing of its status.
    fn apply<'a>(
        &self,
        conn: &crate::store::Connection,
        event: &'a Claimed,
        object: &Object<'_>,
        now: i64,
    ) -> Done<'a> {
        let started = Instant::now();
        let span = apply_span(event);
        let _entered = span.enter();
        let result = catch_unwind(AssertUnwindSafe(|| self.decide(conn, event, object, now)))
            .unwrap_or_else(|panic| {
                Err(Failure::Error(format!(
                    "handler panicked: {}",
                    panic_message(&panic)
                )))
            });
        let verdict = match result {
            Ok((status, note)) => Verdict::Finished { status, note },
            Err(Failure::Busy) => Verdict::Busy,
            Err(Failure::Error(error)) => self.failed(event, error, false),
            Err(Failure::Permanent(error)) => self.failed(event, error, true),
        };
        Done {
            event,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            verdict,
        }
    }

    /// Applies one claimed event under a savepoint of `tx`: a failure rolls back what
    /// its handler wrote, and only that, and is recorded in `tx`.
    fn apply_isolated<'a>(
        &self,
        tx: &mut crate::store::Transaction<'_>,
        event: &'a Claimed,
        object: &Object<'_>,
        now: i64,
    ) -> Result<Done<'a>, StoreError> {
        let savepoint = tx.savepoint()?;
        let done = self.apply(&savepoint, event, object, now);
        match &done.verdict {
            Verdict::Finished { .. } => savepoint.commit()?,
            Verdict::Busy => drop(savepoint),
            Verdict::Failed { error, next, .. } => {
                // Dropping the savepoint rolls back whatever the handler wrote.
                drop(savepoint);
                inbox::fail(tx, done.event.seq, error, *next)?;
            }
        }
        Ok(done)
    }

    /// A failed attempt: retried after a backoff, or dead after the last attempt (at
    /// once when no retry can help).
    fn failed(&self, event: &Claimed, error: String, permanent: bool) -> Verdict {
        let attempts = event.attempts + 1;
        let next = (!permanent && attempts < i64::from(self.config.max_attempts))
            .then(|| now_ms() + self.backoff_ms(attempts));
        Verdict::Failed {
            error,
            attempts,
            next,
            permanent,
        }
    }

    /// Logs and counts what a committed batch did to one event; answers its step.
    fn report(&self, done: Done<'_>) -> Step {
        let Done {
            event,
            duration_ms,
            verdict,
        } = done;
        let span = apply_span(event);
        let _entered = span.enter();
        let id = event.id.clone();
        match verdict {
            Verdict::Finished { status, note } => {
                let outcome = status.as_str();
                crate::metrics::observe(
                    "billd_apply_duration_seconds",
                    &[("outcome", outcome)],
                    duration_ms / 1000.0,
                );
                tracing::info!(
                    outcome,
                    duration_ms,
                    note = note.as_deref().unwrap_or(""),
                    "event applied"
                );
                match status {
                    Status::Ignored => Step::Ignored { id },
                    _ => Step::Applied { id },
                }
            }
            Verdict::Busy => {
                tracing::debug!("object busy in another worker; the event waits");
                Step::Busy { id }
            }
            Verdict::Failed {
                error,
                attempts,
                next,
                permanent,
            } => {
                crate::metrics::observe(
                    "billd_apply_duration_seconds",
                    &[("outcome", "failed")],
                    duration_ms / 1000.0,
                );
                let result = if next.is_some() { "retried" } else { "dead" };
                crate::metrics::count(
                    "billd_apply_failures_total",
                    &[("type", &event.type_), ("result", result)],
                );
                if next.is_some() {
                    tracing::warn!(outcome = "failed", attempts, duration_ms, error = %error, "event failed, will retry");
                    Step::Retried { id }
                } else if permanent {
                    tracing::error!(outcome = "dead", attempts, duration_ms, error = %error, alert = true,
                        "event cannot be read by this billd: dead at once; replay it after an upgrade with `billd events replay`");
                    Step::Dead { id }
                } else {
                    tracing::error!(outcome = "dead", attempts, duration_ms, error = %error, alert = true,
                        "event is dead after its last attempt; replay it with `billd events replay`");
                    Step::Dead { id }
                }
            }
        }
    }

    /// Applies the event or decides not to.
    fn decide(
        &self,
        conn: &crate::store::Connection,
        event: &Claimed,
        object: &Object<'_>,
        now_ms: i64,
    ) -> Result<(Status, Option<String>), Failure> {
        if event.livemode != self.mode.is_live() {
            return Ok((
                Status::Ignored,
                Some(format!(
                    "livemode mismatch: event livemode is {}, billd runs in {} mode",
                    event.livemode,
                    if self.mode.is_live() { "live" } else { "test" }
                )),
            ));
        }
        let object = *object
            .as_ref()
            .map_err(|e| Failure::Permanent(e.to_string()))?;
        let ev = Event {
            seq: event.seq,
            id: &event.id,
            type_: &event.type_,
            created: event.created,
            account: event.account.as_deref(),
            livemode: event.livemode,
            object,
        };
        let outcome = events::apply(conn, &ev, now_ms / 1000).map_err(|e| match e {
            events::ApplyError::Store(e) => Failure::from_store(e),
            e @ events::ApplyError::Parse { .. } => Failure::Permanent(e.to_string()),
        })?;
        match outcome {
            Outcome::Applied => Ok((Status::Processed, None)),
            Outcome::Unhandled => Ok((
                Status::Ignored,
                Some("no handler for this event type".into()),
            )),
        }
    }

    /// Delay before attempt `attempts + 1`: exponential, capped, with jitter in its
    /// upper half so retries of many events spread out.
    fn backoff_ms(&self, attempts: i64) -> i64 {
        let exp = u32::try_from(attempts.saturating_sub(1))
            .unwrap_or(u32::MAX)
            .min(40);
        let full = self
            .config
            .backoff_base_ms
            .saturating_mul(1u64 << exp)
            .min(self.config.backoff_max_ms);
        let half = full / 2;
        let jittered = half + fastrand::u64(0..=half.max(1));
        i64::try_from(jittered).unwrap_or(i64::MAX)
    }

    /// Runs until `shutdown`: steps while there is work, then sleeps until new events are
    /// stored (`stored`), a retry is due, or the poll interval passes. Shutdown is
    /// observed between steps, so an event being applied is always finished.
    pub async fn run(self, stored: Arc<Notify>, shutdown: CancellationToken) {
        let poll = Duration::from_millis(self.config.poll_interval_ms);
        while !shutdown.is_cancelled() {
            // Registered before the step, so an event stored during it is not missed.
            let notified = stored.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let worker = self.clone();
            let batch = self.config.batch_size;
            let step = tokio::task::spawn_blocking(move || worker.step_batch(batch)).await;
            let wait = match step {
                Ok(Ok(steps)) if steps.is_empty() => Some(self.idle_wait(poll).await),
                // Only busy objects: give their workers a moment to commit.
                Ok(Ok(steps)) if steps.iter().all(|s| matches!(s, Step::Busy { .. })) => {
                    Some(BUSY_WAIT)
                }
                Ok(Ok(_)) => None,
                Ok(Err(e)) => {
                    crate::alerts::storage_error();
                    tracing::error!(error = %e, "worker step failed (storage)");
                    Some(poll)
                }
                Err(e) => {
                    tracing::error!(error = %e, "worker step task failed");
                    Some(poll)
                }
            };
            if let Some(wait) = wait {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = &mut notified => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }

    /// How long an idle worker may sleep: until the next retry is due, at most `poll`.
    async fn idle_wait(&self, poll: Duration) -> Duration {
        let store = self.store.clone();
        let next = store
            .run(|conn| inbox::next_due_at(conn))
            .await
            .ok()
            .flatten();
        match next {
            Some(at) => Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)).min(poll),
            None => poll,
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{events::NewEvent, test_store};

    fn worker(store: &Store, max_attempts: u32) -> Worker {
        Worker::new(
            store.clone(),
            WorkerConfig {
                max_attempts,
                backoff_base_ms: 1,
                backoff_max_ms: 1,
                ..WorkerConfig::default()
            },
            StripeMode::Test,
        )
    }

    fn store_event(store: &Store, id: &str, type_: &str, livemode: bool, payload: &str) {
        let conn = store.conn().unwrap();
        inbox::insert(
            &conn,
            &NewEvent {
                id: id.into(),
                type_: type_.into(),
                account: None,
                livemode,
                api_version: None,
                created: 1,
                payload: payload.into(),
            },
            0,
        )
        .unwrap();
    }

    /// Makes every insert into `prices` fail, as a database error would.
    fn refuse_prices(store: &Store) {
        store
            .conn()
            .unwrap()
            .execute_batch(
                "CREATE TRIGGER refuse_prices BEFORE INSERT ON prices
                 BEGIN SELECT RAISE(ABORT, 'the test refuses prices'); END;",
            )
            .unwrap();
    }

    /// Runs `f`, answering what it returned and the messages of the log lines it wrote
    /// on this thread.
    fn logged_messages<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
        use std::sync::Mutex;
        use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
        struct Messages(Arc<Mutex<Vec<String>>>);
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "message" {
                    self.0 = format!("{value:?}");
                }
            }
        }
        impl<S: tracing::Subscriber> Layer<S> for Messages {
            fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
                let mut message = Message(String::new());
                event.record(&mut message);
                self.0.lock().unwrap().push(message.0);
            }
        }
        let messages = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Messages(messages.clone()));
        let out = tracing::subscriber::with_default(subscriber, f);
        let messages = messages.lock().unwrap().clone();
        (out, messages)
    }

    fn status(store: &Store, id: &str) -> Status {
        inbox::get(&store.conn().unwrap(), id).unwrap().status
    }

    #[test]
    fn unknown_types_and_livemode_mismatches_are_ignored_with_a_reason() {
        let (_dir, store) = test_store();
        store_event(
            &store,
            "evt_u",
            "something.new",
            false,
            r#"{"data":{"object":{}}}"#,
        );
        store_event(
            &store,
            "evt_l",
            "customer.created",
            true,
            r#"{"data":{"object":{"id":"cus_1"}}}"#,
        );
        let w = worker(&store, 3);
        assert!(matches!(w.step().unwrap(), Step::Ignored { .. }));
        assert!(matches!(w.step().unwrap(), Step::Ignored { .. }));
        assert_eq!(w.step().unwrap(), Step::Idle);
        assert_eq!(status(&store, "evt_u"), Status::Ignored);
        let live = inbox::get(&store.conn().unwrap(), "evt_l").unwrap();
        assert_eq!(live.status, Status::Ignored);
        assert!(live.last_error.unwrap().contains("livemode"));
        // Nothing was applied for the mismatched event.
        assert!(crate::store::mirror::get_customer(&store.conn().unwrap(), "cus_1").is_err());
    }

    #[test]
    fn a_batch_applies_each_event_under_its_own_savepoint() {
        let (_dir, store) = test_store();
        store_event(
            &store,
            "evt_b1",
            "customer.created",
            false,
            r#"{"data":{"object":{"id":"cus_b1"}}}"#,
        );
        // A write the database refuses: an error a retry may get past.
        refuse_prices(&store);
        store_event(
            &store,
            "evt_b2",
            "price.created",
            false,
            r#"{"data":{"object":{"id":"price_b2"}}}"#,
        );
        store_event(
            &store,
            "evt_b3",
            "customer.created",
            false,
            r#"{"data":{"object":{"id":"cus_b3"}}}"#,
        );
        let w = worker(&store, 3);
        // The batch runs twice (without savepoints, then with one per event): what it
        // logs, it logs once, after the commit that counts.
        let (steps, logged) = logged_messages(|| w.step_batch(10).unwrap());
        assert_eq!(
            steps,
            vec![
                Step::Applied {
                    id: "evt_b1".into()
                },
                Step::Retried {
                    id: "evt_b2".into()
                },
                Step::Applied {
                    id: "evt_b3".into()
                },
            ]
        );
        // The failure rolled back alone: the events around it are applied and committed.
        let conn = store.conn().unwrap();
        assert!(crate::store::mirror::get_customer(&conn, "cus_b1").is_ok());
        assert!(crate::store::mirror::get_customer(&conn, "cus_b3").is_ok());
        assert_eq!(status(&store, "evt_b2"), Status::Failed);
        assert_eq!(inbox::get(&conn, "evt_b2").unwrap().attempts, 1);
        for applied in ["evt_b1", "evt_b3"] {
            assert_eq!(inbox::get(&conn, applied).unwrap().attempts, 1, "{applied}");
        }
        let count = |message: &str| logged.iter().filter(|m| *m == message).count();
        assert_eq!(count("event applied"), 2, "{logged:?}");
        assert_eq!(count("event failed, will retry"), 1, "{logged:?}");
        // A batch never takes more than asked.
        store_event(
            &store,
            "evt_b4",
            "something.new",
            false,
            r#"{"data":{"object":{}}}"#,
        );
        store_event(
            &store,
            "evt_b5",
            "something.new",
            false,
            r#"{"data":{"object":{}}}"#,
        );
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(w.step_batch(1).unwrap().len(), 1);
    }

    #[test]
    fn a_payload_this_billd_cannot_read_is_dead_at_once_with_a_readable_reason() {
        let (_dir, store) = test_store();
        // A customer without its id: no retry can make it readable.
        store_event(
            &store,
            "evt_unreadable",
            "customer.created",
            false,
            r#"{"data":{"object":{"email":"jane@example.com"}}}"#,
        );
        let w = worker(&store, 8);
        assert!(matches!(w.step().unwrap(), Step::Dead { .. }));
        let conn = store.conn().unwrap();
        let e = inbox::get(&conn, "evt_unreadable").unwrap();
        assert_eq!(e.status, Status::Dead);
        assert_eq!(e.attempts, 1);
        let reason = e.last_error.unwrap_or_default();
        assert!(reason.contains("missing field `id`"), "{reason}");
        assert!(!reason.contains("jane"), "{reason}");
    }

    #[test]
    fn a_failing_event_is_retried_then_dead_and_does_not_block_others() {
        let (_dir, store) = test_store();
        // A write the database refuses each time: retried, then dead.
        refuse_prices(&store);
        store_event(
            &store,
            "evt_bad",
            "price.created",
            false,
            r#"{"data":{"object":{"id":"price_bad"}}}"#,
        );
        store_event(
            &store,
            "evt_good",
            "customer.created",
            false,
            r#"{"data":{"object":{"id":"cus_ok"}}}"#,
        );
        let w = worker(&store, 2);
        let mut dead = false;
        for _ in 0..20 {
            match w.step().unwrap() {
                Step::Dead { .. } => dead = true,
                Step::Idle => std::thread::sleep(Duration::from_millis(2)),
                _ => {}
            }
            if dead && status(&store, "evt_good") == Status::Processed {
                break;
            }
        }
        assert_eq!(status(&store, "evt_bad"), Status::Dead);
        assert_eq!(status(&store, "evt_good"), Status::Processed);
        let bad = inbox::get(&store.conn().unwrap(), "evt_bad").unwrap();
        assert_eq!(bad.attempts, 2);
        assert!(
            bad.last_error
                .as_deref()
                .unwrap_or("")
                .contains("refuses prices"),
            "{:?}",
            bad.last_error
        );
    }

    #[test]
    fn backoff_grows_and_stays_under_the_cap() {
        let (_dir, store) = test_store();
        let w = Worker::new(
            store,
            WorkerConfig {
                backoff_base_ms: 1000,
                backoff_max_ms: 10_000,
                ..WorkerConfig::default()
            },
            StripeMode::Test,
        );
        for attempts in 1..10 {
            let d = w.backoff_ms(attempts);
            let full = (1000i64 << (attempts - 1)).min(10_000);
            assert!(d >= full / 2 && d <= full, "attempt {attempts}: {d}");
        }
    }
}

//! Gap repair: events Stripe holds that the inbox lacks (a webhook that never got
//! through: billd was down longer than Stripe retries, a secret was wrong, a proxy
//! dropped them) are found and stored as if their webhook had arrived.
//!
//! Every `[stripe] gap_repair_interval_secs` one process (whichever claims the check in
//! the database: `store::gap`) lists Stripe's events created since the cursor that were
//! not delivered to every endpoint (`delivery_success=false`: pending or failed), hands
//! each to the ingest writer (the webhook's own path: durable, duplicates ignored),
//! and moves the cursor. The alert task raises `gap` from what the check found
//! (`alerts`), and when the cursor nears the 30 days Stripe keeps events.
//!
//! Calls go through the shared Stripe client, so they wait their turn behind the
//! process's request budget and honour `Retry-After`.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::{
    events::EnvelopeHeader,
    ingest::Ingest,
    store::{Store, events::Inserted, gap},
    stripe::{
        self,
        list::{self, Created, Query},
    },
    time::{now_ms, now_secs},
};

/// How far back the first check looks.
const FIRST_LOOKBACK_SECS: i64 = 3 * 24 * 3600;
/// The cursor stays this far behind the newest event seen, so events of the same
/// second (or a clock a little behind Stripe's) are listed again rather than missed.
const OVERLAP_SECS: i64 = 300;
/// How long one check may hold its claim: far longer than a check takes.
const LEASE: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum GapError {
    #[error("Stripe's events could not be listed: {0}")]
    Stripe(#[from] stripe::StripeError),
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("an event could not be stored: {0}")]
    Ingest(#[from] crate::ingest::IngestError),
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Another process holds the check.
    NotOurTurn,
    /// Listed `listed` undelivered events; `missing` of them were not in the inbox
    /// and are now.
    Checked {
        listed: usize,
        missing: usize,
        cursor: i64,
    },
}

/// The repairer of one process.
pub struct GapRepair {
    store: Store,
    client: stripe::Client,
    ingest: Ingest,
    /// This process, in the claim.
    holder: String,
}

impl GapRepair {
    pub fn new(store: Store, client: stripe::Client, ingest: Ingest) -> GapRepair {
        let holder = format!("{}:{}", std::process::id(), uuid::Uuid::new_v4());
        GapRepair {
            store,
            client,
            ingest,
            holder,
        }
    }

    /// One check, if it is this process's turn.
    pub async fn step(&self) -> Result<Outcome, GapError> {
        let holder = self.holder.clone();
        let lease_ms = LEASE.as_millis() as i64;
        let claimed = self
            .store
            .run(move |c| gap::claim(c, &holder, now_ms(), lease_ms))
            .await?;
        let Some(cursor) = claimed else {
            return Ok(Outcome::NotOurTurn);
        };
        let since = cursor.unwrap_or_else(|| now_secs() - FIRST_LOOKBACK_SECS);
        match self.check(since).await {
            Ok((listed, missing, next)) => {
                let holder = self.holder.clone();
                let found = i64::try_from(missing).unwrap_or(i64::MAX);
                self.store
                    .run(move |c| gap::finish(c, &holder, Some(next), found, now_ms()))
                    .await?;
                if missing > 0 {
                    tracing::warn!(
                        listed,
                        missing,
                        "gap repair stored events Stripe held that the inbox lacked"
                    );
                } else {
                    tracing::info!(listed, "gap repair found no missing event");
                }
                Ok(Outcome::Checked {
                    listed,
                    missing,
                    cursor: next,
                })
            }
            Err(e) => {
                // The claim is released and the cursor kept: the next check retries.
                let holder = self.holder.clone();
                let _ = self
                    .store
                    .run(move |c| gap::finish(c, &holder, None, 0, now_ms()))
                    .await;
                Err(e)
            }
        }
    }

    /// Lists and stores; answers (listed, missing, next cursor).
    async fn check(&self, since: i64) -> Result<(usize, usize, i64), GapError> {
        let query = Query {
            created: Some(Created { gte: since }),
            delivery_success: Some(false),
            ..Query::default()
        };
        let listed = list::all(&self.client, "events.list", "/events", query).await?;
        let mut events = Vec::with_capacity(listed.len());
        for e in listed {
            match crate::objects::parse_json::<EnvelopeHeader>(&e.raw, "event") {
                Ok(header) => events.push((header, e.raw)),
                // One unreadable event must not stop the others; it names no value.
                Err(err) => tracing::warn!(error = %err, "gap repair skipped an unreadable event"),
            }
        }
        // Oldest first, as the webhooks would have arrived.
        events.sort_by_key(|(h, _)| h.created);
        let newest = events.last().map(|(h, _)| h.created);
        let listed = events.len();
        let mut missing = 0;
        for (header, payload) in events {
            let event = header.into_new_event(payload);
            if self.ingest.submit(event).await? == Inserted::New {
                missing += 1;
            }
        }
        let next = newest
            .unwrap_or_else(now_secs)
            .min(now_secs())
            .saturating_sub(OVERLAP_SECS)
            .max(since);
        Ok((listed, missing, next))
    }

    /// Checks every `every` until `stop`, the first time one interval after start (a
    /// restart does not list Stripe's events at once, and N nodes starting together do
    /// not race for the first claim).
    pub async fn run(self, every: Duration, stop: CancellationToken) {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                () = stop.cancelled() => return,
            }
            let step = tokio::select! {
                step = self.step() => step,
                () = stop.cancelled() => return,
            };
            if let Err(e) = step {
                tracing::warn!(error = %e, "gap repair failed; it retries at the next check");
            }
        }
    }
}

//! Ingest: the group-commit writer that makes webhooks durable before they are answered.
//!
//! One dedicated thread per process owns a durable connection (SQLite
//! `synchronous=FULL`, PostgreSQL `synchronous_commit=on`). Requests hand it their
//! verified event and wait; it takes whatever has arrived, inserts it all in one
//! transaction (one statement on PostgreSQL), commits (one fsync for the whole batch)
//! and only then answers each request. Many concurrent deliveries therefore cost one
//! fsync, not one each.

use std::thread;

use tokio::sync::{Notify, mpsc, oneshot};

use crate::store::{
    Store, StoreError, Sync,
    events::{self, Inserted, NewEvent},
};

/// Most events committed in one transaction.
const MAX_BATCH: usize = 512;

struct Job {
    event: NewEvent,
    reply: oneshot::Sender<Result<Inserted, String>>,
}

/// Hands events to the writer thread. Cloned into every request handler; the thread
/// ends once every handle is dropped and the queue is drained.
#[derive(Clone)]
pub struct Ingest {
    jobs: mpsc::Sender<Job>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the event could not be stored: {0}")]
    Storage(String),
    #[error("billd is shutting down")]
    Closed,
}

impl Ingest {
    /// Starts the writer thread. `stored` is notified after every commit that stored
    /// new events, to wake the workers.
    pub fn start(
        store: &Store,
        stored: std::sync::Arc<Notify>,
    ) -> Result<(Ingest, thread::JoinHandle<()>), StoreError> {
        let conn = store.dedicated(Sync::Full)?;
        let (tx, rx) = mpsc::channel::<Job>(MAX_BATCH * 8);
        let store = store.clone();
        let handle = thread::Builder::new()
            .name("billd-ingest".into())
            .spawn(move || writer(&store, conn, rx, &stored))
            .map_err(|e| StoreError::Task(e.to_string()))?;
        Ok((Ingest { jobs: tx }, handle))
    }

    /// Stores an event; returns once it is committed to disk (or known as a duplicate).
    pub async fn submit(&self, event: NewEvent) -> Result<Inserted, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job { event, reply })
            .await
            .map_err(|_| IngestError::Closed)?;
        match answer.await {
            Ok(Ok(inserted)) => Ok(inserted),
            Ok(Err(e)) => Err(IngestError::Storage(e)),
            Err(_) => Err(IngestError::Closed),
        }
    }
}

fn writer(
    store: &Store,
    mut conn: crate::store::Connection,
    mut rx: mpsc::Receiver<Job>,
    stored: &Notify,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let now = crate::time::now_ms();
        // SQLite: this process's turn at the write lock, taken ahead of the workers.
        let turn = conn
            .single_writer()
            .then(|| store.write_turn(crate::store::gate::Writer::Ingest));
        let events: Vec<&NewEvent> = batch.iter().map(|job| &job.event).collect();
        let result = events::store_batch(&mut conn, &events, now);
        drop(turn);
        match result {
            Ok(outcomes) => {
                let any_new = outcomes.contains(&Inserted::New);
                tracing::debug!(batch = batch.len(), "inbox commit");
                for (job, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = job.reply.send(Ok(outcome));
                }
                if any_new {
                    stored.notify_waiters();
                }
            }
            Err(e) => {
                crate::alerts::storage_error();
                tracing::error!(error = %e, batch = batch.len(), "inbox commit failed");
                for job in batch {
                    let _ = job.reply.send(Err(e.to_string()));
                }
                // A connection the server closed (a restart, a failover, a terminated
                // session) never works again: open another, or try again at the next
                // batch. Until then every delivery is answered 503, and Stripe retries.
                if conn.is_broken() {
                    match store.dedicated(Sync::Full) {
                        Ok(fresh) => {
                            tracing::warn!("the inbox connection was lost; reconnected");
                            conn = fresh;
                        }
                        Err(e) => tracing::error!(error = %e, "cannot reconnect the inbox writer"),
                    }
                }
            }
        }
    }
}

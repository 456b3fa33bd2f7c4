//! `GET /readyz`: ready when the schema is current and the database takes a write now,
//! so a load balancer stops sending webhooks to a node whose database is locked, full,
//! read-only or gone (docs/reliability.md), and sends them again once it recovers.
//!
//! The check is a write and the route is public, so one answer serves every check for
//! [`FRESH`]: a flood of checks costs one small write a second, not one each.

use std::time::{Duration, Instant};

use tokio::sync::Mutex;

use crate::store::Store;

/// How long one check's answer is reused.
const FRESH: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Ready,
    /// The schema is older than this binary: `billd migrate`.
    NotMigrated,
    /// The database cannot be read or written now (the reason is logged).
    Unavailable,
}

/// The newest answer and when it was found (this process's: readiness is per node).
#[derive(Default)]
pub struct Readiness {
    last: Mutex<Option<(Instant, Answer)>>,
}

impl Readiness {
    /// The answer of a check at most [`FRESH`] old. Concurrent callers wait for the one
    /// check in progress instead of starting their own.
    pub async fn check(&self, store: &Store) -> Answer {
        let mut last = self.last.lock().await;
        if let Some((at, answer)) = last.as_ref()
            && at.elapsed() < FRESH
        {
            return answer.clone();
        }
        let store = store.clone();
        let checked = tokio::task::spawn_blocking(move || {
            if !store.is_ready()? {
                return Ok(Answer::NotMigrated);
            }
            store.check_writable()?;
            Ok::<_, crate::store::StoreError>(Answer::Ready)
        })
        .await;
        let answer = match checked {
            Ok(Ok(answer)) => answer,
            Ok(Err(e)) => {
                crate::alerts::storage_error();
                tracing::error!(error = %e, "readiness: the database does not take writes");
                Answer::Unavailable
            }
            Err(e) => {
                tracing::error!(error = %e, "readiness check failed");
                Answer::Unavailable
            }
        };
        *last = Some((Instant::now(), answer.clone()));
        answer
    }
}

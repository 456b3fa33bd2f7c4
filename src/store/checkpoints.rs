//! Checkpoints of interrupted backfills (`billd sync`, `billd events replay
//! --from-stripe`): the last object written, saved in the same transaction as the page
//! it ends, so a run stopped at any moment (a kill, Stripe unreachable) continues after
//! the last page it committed. A finished job has no row.

use crate::store::db::{Connection, OptionalExtension, params};

use super::Result;

/// Where an unfinished job stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The last object id written; the next page starts after it.
    pub cursor: String,
    /// Objects written so far.
    pub done: u64,
}

/// The checkpoint of `job`, if it is unfinished.
pub fn get(conn: &Connection, job: &str) -> Result<Option<Checkpoint>> {
    Ok(conn
        .prepare_cached("SELECT cursor, done FROM checkpoints WHERE job = ?1")?
        .query_row([job], |r| {
            Ok(Checkpoint {
                cursor: r.get(0)?,
                done: r.get::<_, i64>(1)? as u64,
            })
        })
        .optional()?)
}

/// Records that `job` has written everything up to `cursor` (`done` objects in all).
pub fn save(conn: &Connection, job: &str, cursor: &str, done: u64, now_ms: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO checkpoints (job, cursor, done, updated_ms) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (job) DO UPDATE
         SET cursor = excluded.cursor, done = excluded.done, updated_ms = excluded.updated_ms",
    )?
    .execute(params![job, cursor, done as i64, now_ms])?;
    Ok(())
}

/// Forgets `job`'s checkpoint: it finished, or is to start over.
pub fn clear(conn: &Connection, job: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM checkpoints WHERE job = ?1")?
        .execute([job])?;
    Ok(())
}

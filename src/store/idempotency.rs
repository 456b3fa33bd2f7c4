//! `Idempotency-Key` records: the answer of the first request made with a key, kept
//! 24 hours per (token, key). A record is `running` while its request runs and `done`
//! once its answer is kept; a request whose answer is not kept deletes its record, so
//! the key is free for a corrected request. Records are never evicted early: only
//! those older than 24 hours are deleted (and a running one only once its lease ended,
//! which means its process died).

use crate::store::db::{Connection, OptionalExtension, TransactionBehavior, params};

use super::Result;

/// How long an answer is kept.
pub const KEEP_MS: i64 = 24 * 3600 * 1000;

/// A request made with a key.
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub token_id: &'a str,
    pub key: &'a str,
    pub fingerprint: &'a [u8; 32],
}

/// A kept answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kept {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// What [`claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is this request's: run it, then [`complete`] or [`release`].
    Claimed,
    /// The same request ran before: its answer.
    Done(Kept),
    /// The same request is running now (here or in another process).
    Running,
    /// The key belongs to a different request.
    Conflict,
}

/// Claims `attempt`'s key for `lease_ms` (how long the request may run before a retry
/// may take it over), or says who holds it.
pub fn claim(conn: &mut Connection, attempt: Attempt, now_ms: i64, lease_ms: i64) -> Result<Claim> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute(
        "DELETE FROM idempotency_keys
         WHERE created_ms < ?1 AND (state = 'done' OR lease_ms < ?2)",
        params![now_ms - KEEP_MS, now_ms],
    )?;
    // Insert first: of two requests racing with one key (on PostgreSQL, perhaps on two
    // nodes), one inserts and the other waits for its commit, then finds its row.
    let inserted = tx.execute(
        "INSERT INTO idempotency_keys
             (token_id, key, fingerprint, state, created_ms, lease_ms)
         VALUES (?1, ?2, ?3, 'running', ?4, ?5)
         ON CONFLICT DO NOTHING",
        params![
            attempt.token_id,
            attempt.key,
            &attempt.fingerprint[..],
            now_ms,
            now_ms + lease_ms
        ],
    )? == 1;
    if inserted {
        tx.commit()?;
        return Ok(Claim::Claimed);
    }
    let found = tx
        .query_row(
            "SELECT fingerprint, state, lease_ms, status, content_type, body
             FROM idempotency_keys WHERE token_id = ?1 AND key = ?2",
            params![attempt.token_id, attempt.key],
            |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Option<u16>>(3)?,
                    r.get::<_, Option<String>>(4)?,
                    r.get::<_, Option<Vec<u8>>>(5)?,
                ))
            },
        )
        .optional()?;
    let claim = match found {
        // Released between the insert and the read: as if still running; the caller's
        // retry finds the key free.
        None => Claim::Running,
        Some((fingerprint, _, _, _, _, _)) if fingerprint != attempt.fingerprint[..] => {
            Claim::Conflict
        }
        Some((_, state, _, Some(status), content_type, body)) if state == "done" => {
            Claim::Done(Kept {
                status,
                content_type,
                body: body.unwrap_or_default(),
            })
        }
        Some((_, _, lease, _, _, _)) if lease > now_ms => Claim::Running,
        Some(_) => {
            // Its process died mid-request: the retry runs it (the Stripe calls carry
            // the same key, so Stripe itself answers what it already did).
            tx.execute(
                "UPDATE idempotency_keys SET lease_ms = ?3, created_ms = ?4
                 WHERE token_id = ?1 AND key = ?2",
                params![attempt.token_id, attempt.key, now_ms + lease_ms, now_ms],
            )?;
            Claim::Claimed
        }
    };
    tx.commit()?;
    Ok(claim)
}

/// Keeps the answer of a claimed request.
pub fn complete(conn: &Connection, attempt: Attempt, kept: &Kept) -> Result<()> {
    conn.execute(
        "UPDATE idempotency_keys SET state = 'done', status = ?3, content_type = ?4, body = ?5
         WHERE token_id = ?1 AND key = ?2 AND fingerprint = ?6",
        params![
            attempt.token_id,
            attempt.key,
            kept.status,
            kept.content_type,
            kept.body,
            &attempt.fingerprint[..]
        ],
    )?;
    Ok(())
}

/// Frees the key of a claimed request whose answer is not kept.
pub fn release(conn: &Connection, attempt: Attempt) -> Result<()> {
    conn.execute(
        "DELETE FROM idempotency_keys
         WHERE token_id = ?1 AND key = ?2 AND fingerprint = ?3 AND state = 'running'",
        params![attempt.token_id, attempt.key, &attempt.fingerprint[..]],
    )?;
    Ok(())
}

/// How many records exist (tests, metrics).
pub fn count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT count(*) FROM idempotency_keys", (), |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;

    fn attempt<'a>(token: &'a str, key: &'a str, fp: &'a [u8; 32]) -> Attempt<'a> {
        Attempt {
            token_id: token,
            key,
            fingerprint: fp,
        }
    }

    #[test]
    fn a_key_is_claimed_once_replayed_when_done_and_refused_to_another_request() {
        let (_dir, store) = test_store();
        let mut c = store.conn().unwrap();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(
            claim(&mut c, attempt("t1", "k", &a), 1_000, 60_000).unwrap(),
            Claim::Claimed
        );
        assert_eq!(
            claim(&mut c, attempt("t1", "k", &a), 1_001, 60_000).unwrap(),
            Claim::Running
        );
        assert_eq!(
            claim(&mut c, attempt("t1", "k", &b), 1_001, 60_000).unwrap(),
            Claim::Conflict
        );
        // Another token's key of the same name is another request.
        assert_eq!(
            claim(&mut c, attempt("t2", "k", &b), 1_001, 60_000).unwrap(),
            Claim::Claimed
        );
        let kept = Kept {
            status: 201,
            content_type: Some("application/json".into()),
            body: b"{}".to_vec(),
        };
        complete(&c, attempt("t1", "k", &a), &kept).unwrap();
        assert_eq!(
            claim(&mut c, attempt("t1", "k", &a), 2_000, 60_000).unwrap(),
            Claim::Done(kept.clone())
        );
        // Kept 24 hours, then gone.
        let later = 1_000 + KEEP_MS + 1;
        assert_eq!(
            claim(&mut c, attempt("t1", "k", &b), later, 60_000).unwrap(),
            Claim::Claimed
        );
    }

    #[test]
    fn a_released_key_is_free_and_a_dead_process_s_claim_is_taken_over_after_its_lease() {
        let (_dir, store) = test_store();
        let mut c = store.conn().unwrap();
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(
            claim(&mut c, attempt("t", "k", &a), 0, 100).unwrap(),
            Claim::Claimed
        );
        release(&c, attempt("t", "k", &a)).unwrap();
        assert_eq!(count(&c).unwrap(), 0);
        assert_eq!(
            claim(&mut c, attempt("t", "k", &b), 1, 100).unwrap(),
            Claim::Claimed
        );
        assert_eq!(
            claim(&mut c, attempt("t", "k", &b), 50, 100).unwrap(),
            Claim::Running
        );
        assert_eq!(
            claim(&mut c, attempt("t", "k", &b), 102, 100).unwrap(),
            Claim::Claimed
        );
        // A running record is never deleted as old while its lease holds.
        assert_eq!(
            claim(&mut c, attempt("t", "k", &b), 150, KEEP_MS * 2).unwrap(),
            Claim::Running
        );
    }
}

//! Alert state per kind: who sends, and when a kind fires and resolves.
//!
//! Every claim is one conditional UPDATE inside an immediate transaction: of several
//! processes that see the same condition at the same time, exactly one gets a changed
//! row back, and only that one sends.

use crate::store::db::{Connection, OptionalExtension, TransactionBehavior, params};

use super::Result;

/// What a process that saw a kind's condition hold may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Raised {
    /// The kind was not firing: a new episode, to announce.
    New,
    /// Still firing, and the last alert is at least `repeat_ms` old: a reminder.
    Reminder { since_ms: i64 },
    /// Firing, and announced recently (by this or another process): nothing to send.
    Quiet,
}

/// Records that the condition of `kind` holds now, and claims the alert if one is due.
pub fn raise(conn: &mut Connection, kind: &str, now_ms: i64, repeat_ms: i64) -> Result<Raised> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.prepare_cached(
        "INSERT INTO alert_state (kind, firing) VALUES (?1, 0) ON CONFLICT DO NOTHING",
    )?
    .execute(params![kind])?;
    let new = tx
        .prepare_cached(
            "UPDATE alert_state
             SET firing = 1, since_ms = ?2, last_sent_ms = ?2, last_seen_ms = ?2
             WHERE kind = ?1 AND firing = 0",
        )?
        .execute(params![kind, now_ms])?;
    let raised = if new == 1 {
        Raised::New
    } else {
        let since: Option<i64> = tx
            .prepare_cached(
                "UPDATE alert_state SET last_sent_ms = ?2, last_seen_ms = ?2
                 WHERE kind = ?1 AND firing = 1 AND last_sent_ms <= CAST(?2 AS BIGINT) - CAST(?3 AS BIGINT)
                 RETURNING since_ms",
            )?
            .query_row(params![kind, now_ms, repeat_ms], |r| r.get(0))
            .optional()?
            .flatten();
        match since {
            Some(since_ms) => Raised::Reminder { since_ms },
            None => {
                tx.prepare_cached("UPDATE alert_state SET last_seen_ms = ?2 WHERE kind = ?1")?
                    .execute(params![kind, now_ms])?;
                Raised::Quiet
            }
        }
    };
    tx.commit()?;
    Ok(raised)
}

/// Records that the condition of `kind` does not hold now. Answers the start of the
/// episode when this call ended it (the caller announces the recovery): only when no
/// process has seen the condition for `grace_ms`.
pub fn clear(conn: &mut Connection, kind: &str, now_ms: i64, grace_ms: i64) -> Result<Option<i64>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let since: Option<Option<i64>> = tx
        .prepare_cached(
            "UPDATE alert_state SET firing = 0, resolved_ms = ?2
             WHERE kind = ?1 AND firing = 1 AND last_seen_ms <= CAST(?2 AS BIGINT) - CAST(?3 AS BIGINT)
             RETURNING since_ms",
        )?
        .query_row(params![kind, now_ms, grace_ms], |r| r.get(0))
        .optional()?;
    tx.commit()?;
    Ok(since.map(|s| s.unwrap_or(now_ms)))
}

/// The kinds firing now, with the start of their episode.
pub fn firing(conn: &Connection) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT kind, coalesce(since_ms, 0) FROM alert_state WHERE firing = 1 ORDER BY kind",
    )?;
    let rows = stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<crate::store::db::Result<_>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;

    #[test]
    fn a_kind_is_announced_once_then_reminded_after_repeat_then_resolved_once() {
        let (_dir, store) = test_store();
        let mut conn = store.conn().unwrap();
        assert_eq!(
            raise(&mut conn, "backlog", 1_000, 500).unwrap(),
            Raised::New
        );
        assert_eq!(
            raise(&mut conn, "backlog", 1_200, 500).unwrap(),
            Raised::Quiet
        );
        assert_eq!(
            raise(&mut conn, "backlog", 1_600, 500).unwrap(),
            Raised::Reminder { since_ms: 1_000 }
        );
        assert_eq!(firing(&conn).unwrap(), vec![("backlog".to_string(), 1_000)]);
        assert_eq!(clear(&mut conn, "backlog", 1_700, 0).unwrap(), Some(1_000));
        assert_eq!(clear(&mut conn, "backlog", 1_800, 0).unwrap(), None);
        assert_eq!(
            raise(&mut conn, "backlog", 1_900, 500).unwrap(),
            Raised::New
        );
    }

    #[test]
    fn a_kind_seen_recently_by_any_process_is_not_resolved_within_its_grace() {
        let (_dir, store) = test_store();
        let mut conn = store.conn().unwrap();
        assert_eq!(
            raise(&mut conn, "storage", 1_000, 500).unwrap(),
            Raised::New
        );
        assert_eq!(clear(&mut conn, "storage", 1_100, 300).unwrap(), None);
        assert_eq!(
            clear(&mut conn, "storage", 1_300, 300).unwrap(),
            Some(1_000)
        );
    }

    #[test]
    fn two_connections_raising_together_claim_one_alert() {
        let (_dir, store) = test_store();
        let mut a = store.conn().unwrap();
        let mut b = store.conn().unwrap();
        let first = raise(&mut a, "event_dead", 1_000, 500).unwrap();
        let second = raise(&mut b, "event_dead", 1_000, 500).unwrap();
        assert_eq!((first, second), (Raised::New, Raised::Quiet));
    }
}

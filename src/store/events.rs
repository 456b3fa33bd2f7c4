//! The event inbox: every verified webhook, stored once per Stripe event id, with its
//! processing status.

use crate::store::db::{Connection, OptionalExtension, Row, Value, params};

use super::{Backend, OptionalExt, Result, StoreError};

/// Processing status of a stored event (DESIGN §3 names these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pending,
    Processed,
    Failed,
    Dead,
    Ignored,
}

impl Status {
    pub const ALL: [Status; 5] = [
        Status::Pending,
        Status::Processed,
        Status::Failed,
        Status::Dead,
        Status::Ignored,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Processed => "processed",
            Status::Failed => "failed",
            Status::Dead => "dead",
            Status::Ignored => "ignored",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// A verified event about to be stored.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: String,
    pub type_: String,
    pub account: Option<String>,
    pub livemode: bool,
    pub api_version: Option<String>,
    pub created: i64,
    pub payload: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    New,
    Duplicate,
}

/// Inserts events in the caller's transaction; an id already stored is a duplicate
/// and changes nothing.
pub fn insert(conn: &Connection, event: &NewEvent, now_ms: i64) -> Result<Inserted> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO events
            (id, type, account, livemode, api_version, created, received_at_ms, payload, next_attempt_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?7)
         ON CONFLICT (id) DO NOTHING",
    )?;
    let changed = stmt.execute(params![
        event.id,
        event.type_,
        event.account,
        event.livemode,
        event.api_version,
        event.created,
        now_ms,
        event.payload,
    ])?;
    Ok(if changed == 1 {
        Inserted::New
    } else {
        Inserted::Duplicate
    })
}

/// Stores a batch of deliveries and commits it, answering for each whether it was new;
/// new events are announced to every node's workers at the commit. On SQLite one
/// immediate transaction; on PostgreSQL one statement in a transaction of its own (one
/// round trip however large the batch: `INSERT … SELECT FROM unnest(…) ON CONFLICT DO
/// NOTHING RETURNING id`, with its `pg_notify`). An id another node inserted and has not
/// committed yet makes the statement wait for that commit, so a duplicate is answered
/// only once the original is durable.
pub fn store_batch(
    conn: &mut Connection,
    batch: &[&NewEvent],
    now_ms: i64,
) -> Result<Vec<Inserted>> {
    if conn.backend() == Backend::Sqlite {
        let tx = conn.transaction_with_behavior(crate::store::TransactionBehavior::Immediate)?;
        let outcomes = batch
            .iter()
            .map(|e| insert(&tx, e, now_ms))
            .collect::<Result<Vec<_>>>()?;
        tx.commit()?;
        return Ok(outcomes);
    }
    let column = |f: fn(&NewEvent) -> Option<&str>| batch.iter().map(|e| f(e)).collect::<Vec<_>>();
    let ids = column(|e| Some(&e.id));
    let types = column(|e| Some(&e.type_));
    let accounts = column(|e| e.account.as_deref());
    let versions = column(|e| e.api_version.as_deref());
    let payloads = column(|e| Some(&e.payload));
    let livemodes: Vec<i64> = batch.iter().map(|e| i64::from(e.livemode)).collect();
    let created: Vec<i64> = batch.iter().map(|e| e.created).collect();
    // PostgreSQL sends one notification however many rows call `pg_notify` with it
    // (the channel is [`CHANNEL`]).
    let sql = "WITH new AS (
             INSERT INTO events
                 (id, type, account, livemode, api_version, created, received_at_ms, payload,
                  next_attempt_ms)
             SELECT id, type, account, livemode, api_version, created, $8, payload, $8
             FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[],
                         $6::bigint[], $7::text[])
                  AS b (id, type, account, livemode, api_version, created, payload)
             ON CONFLICT (id) DO NOTHING
             RETURNING id)
         SELECT id, pg_notify('billd_events', '') FROM new";
    let inserted: std::collections::HashSet<String> = conn
        .with_pg_statement(sql, |client, stmt| {
            client.query(
                stmt,
                &[
                    &ids, &types, &accounts, &livemodes, &versions, &created, &payloads, &now_ms,
                ],
            )
        })
        .expect("a PostgreSQL connection")?
        .map_err(super::db::Error::from)?
        .iter()
        .map(|r| r.get::<_, String>(0))
        .collect();
    // An id twice in one batch is inserted once: the first is new, the rest duplicates.
    let mut answered = std::collections::HashSet::new();
    Ok(batch
        .iter()
        .map(|e| {
            if inserted.contains(&e.id) && answered.insert(e.id.as_str()) {
                Inserted::New
            } else {
                Inserted::Duplicate
            }
        })
        .collect())
}

/// The channel new events are announced on (PostgreSQL), so the workers of every node
/// wake, not only those of the node that stored them.
const CHANNEL: &str = "billd_events";

/// Calls `wake` whenever any node announces new events, until `stop` is set (checked
/// every second). PostgreSQL only; best effort: a lost connection is opened again
/// after a pause, and the workers' polling covers whatever was missed meanwhile.
/// Blocking: run it on a thread of its own.
pub fn listen(store: &super::Store, wake: impl Fn(), stop: &std::sync::atomic::AtomicBool) {
    use std::sync::atomic::Ordering;
    let tick = std::time::Duration::from_secs(1);
    while !stop.load(Ordering::Relaxed) {
        let listened = store.dedicated(super::Sync::Normal).and_then(|conn| {
            conn.execute_batch(&format!("LISTEN {CHANNEL}"))?;
            let outcome = conn.with_pg(|client| -> std::result::Result<(), postgres::Error> {
                while !stop.load(Ordering::Relaxed) {
                    let mut notifications = client.notifications();
                    let mut arrived = notifications.timeout_iter(tick);
                    let mut any = false;
                    while let Some(_n) =
                        postgres::fallible_iterator::FallibleIterator::next(&mut arrived)?
                    {
                        any = true;
                    }
                    if any {
                        wake();
                    }
                }
                Ok(())
            });
            match outcome {
                Some(result) => result.map_err(|e| StoreError::from(super::db::Error::from(e))),
                None => Ok(()),
            }
        });
        if let Err(e) = listened {
            tracing::warn!(error = %e, "cannot listen for other nodes' events; polling covers them");
            std::thread::sleep(tick * 5);
        }
    }
}

/// An event as listed by the API and CLI (no payload).
#[derive(Debug, Clone)]
pub struct EventRow {
    pub seq: i64,
    pub id: String,
    pub type_: String,
    pub account: Option<String>,
    pub livemode: bool,
    pub api_version: Option<String>,
    pub created: i64,
    pub received_at_ms: i64,
    pub status: Status,
    pub attempts: i64,
    pub next_attempt_ms: i64,
    pub processed_at_ms: Option<i64>,
    pub last_error: Option<String>,
}

const EVENT_COLUMNS: &str =
    "seq, id, type, account, livemode, api_version, created, received_at_ms,
     status, attempts, next_attempt_ms, processed_at_ms, last_error";

fn event_row(row: &Row<'_>) -> crate::store::db::Result<EventRow> {
    let status: String = row.get(8)?;
    Ok(EventRow {
        seq: row.get(0)?,
        id: row.get(1)?,
        type_: row.get(2)?,
        account: row.get(3)?,
        livemode: row.get(4)?,
        api_version: row.get(5)?,
        created: row.get(6)?,
        received_at_ms: row.get(7)?,
        status: Status::parse(&status).unwrap_or(Status::Failed),
        attempts: row.get(9)?,
        next_attempt_ms: row.get(10)?,
        processed_at_ms: row.get(11)?,
        last_error: row.get(12)?,
    })
}

pub fn get(conn: &Connection, id: &str) -> Result<EventRow> {
    conn.query_row(
        &format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1"),
        [id],
        event_row,
    )
    .found()
}

/// The raw webhook body of an event.
pub fn payload(conn: &Connection, id: &str) -> Result<String> {
    conn.query_row("SELECT payload FROM events WHERE id = ?1", [id], |r| {
        r.get(0)
    })
    .found()
}

#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub status: Option<Status>,
    pub type_: Option<String>,
    /// Only events of this connected account.
    pub account: Option<String>,
    /// Only events received at or after this time.
    pub since_ms: Option<i64>,
    pub limit: usize,
    /// Event id after which (in newest-first order) the page starts.
    pub starting_after: Option<String>,
}

/// Events newest first; the second value says whether more follow.
pub fn list(conn: &Connection, filter: &Filter) -> Result<(Vec<EventRow>, bool)> {
    let before_seq = match &filter.starting_after {
        Some(id) => match get(conn, id) {
            Err(StoreError::NotFound) => {
                return Err(StoreError::UnknownCursor(format!("event {id}")));
            }
            other => other?.seq,
        },
        None => i64::MAX,
    };
    // Only the filters given are in the text (no `?N IS NULL OR …`), so the planner
    // walks the index that fits, (status, seq) or (type, seq), newest first: a page of
    // rare events (the dead ones among millions) costs a page, not a scan.
    let mut sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE seq < ?1");
    let mut values = vec![Value::Integer(before_seq)];
    if let Some(status) = filter.status {
        values.push(Value::Text(status.as_str().into()));
        sql.push_str(&format!(" AND status = ?{}", values.len()));
    }
    if let Some(type_) = &filter.type_ {
        values.push(Value::Text(type_.clone()));
        sql.push_str(&format!(" AND type = ?{}", values.len()));
    }
    if let Some(account) = &filter.account {
        values.push(Value::Text(account.clone()));
        sql.push_str(&format!(" AND account = ?{}", values.len()));
    }
    if let Some(since) = filter.since_ms {
        values.push(Value::Integer(since));
        sql.push_str(&format!(" AND received_at_ms >= ?{}", values.len()));
    }
    values.push(Value::Integer(filter.limit as i64 + 1));
    sql.push_str(&format!(" ORDER BY seq DESC LIMIT ?{}", values.len()));
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt
        .query_map(super::db::params_from_iter(values), event_row)?
        .collect::<crate::store::db::Result<Vec<_>>>()?;
    let has_more = rows.len() > filter.limit;
    rows.truncate(filter.limit);
    Ok((rows, has_more))
}

/// Counts per status, for metrics, the dashboard and `billd events list` summaries.
/// One statement (one snapshot on either backend): the total, and each status but
/// `processed` as a range of `events_status`; `processed` is the rest. A `GROUP BY
/// status` would walk the whole status index, a cost that grows with the inbox
/// (85 ms at a million events on SQLite against 12 ms for this).
pub fn counts(conn: &Connection) -> Result<Vec<(Status, i64)>> {
    let (total, pending, failed, dead, ignored): (i64, i64, i64, i64, i64) = conn
        .prepare_cached(
            "SELECT (SELECT count(*) FROM events),
                    (SELECT count(*) FROM events WHERE status = 'pending'),
                    (SELECT count(*) FROM events WHERE status = 'failed'),
                    (SELECT count(*) FROM events WHERE status = 'dead'),
                    (SELECT count(*) FROM events WHERE status = 'ignored')",
        )?
        .query_row((), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?;
    let processed = total - pending - failed - dead - ignored;
    Ok([
        (Status::Pending, pending),
        (Status::Processed, processed),
        (Status::Failed, failed),
        (Status::Dead, dead),
        (Status::Ignored, ignored),
    ]
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .collect())
}

/// How many events have `status` (one index range: cheap for the rare statuses).
pub fn count_status(conn: &Connection, status: Status) -> Result<i64> {
    Ok(conn
        .prepare_cached("SELECT count(*) FROM events WHERE status = ?1")?
        .query_row([status.as_str()], |r| r.get(0))?)
}

/// Receipt time of the oldest event still waiting to be applied: the waiting event
/// that arrived first (lowest sequence number; events are numbered as they are
/// received). Two lookups at the head of `(status, seq)`, whatever the inbox's size or
/// the number of events waiting for a retry; a scan of the waiting events'
/// `received_at_ms` took 25 ms with 10,000 of them among a million.
pub fn oldest_waiting_ms(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached(
            "SELECT min(received_at_ms) FROM events
             WHERE seq IN ((SELECT min(seq) FROM events WHERE status = 'pending'),
                           (SELECT min(seq) FROM events WHERE status = 'failed'))",
        )?
        .query_row((), |r| r.get(0))?)
}

/// How many of the newest `window` events (by arrival) were applied (processed or
/// ignored) at or after `since_ms`, and how many events that window held. Bounded by
/// `window` whatever the inbox's size, for the dashboard's apply rate: an event
/// replayed from further back is not counted.
pub fn recently_applied(conn: &Connection, since_ms: i64, window: usize) -> Result<(i64, i64)> {
    let window = i64::try_from(window).unwrap_or(i64::MAX);
    Ok(conn
        .prepare_cached(
            "SELECT coalesce(sum(CASE WHEN processed_at_ms >= ?1
                                        AND status IN ('processed', 'ignored')
                                      THEN 1 ELSE 0 END), 0),
                    count(*)
             FROM (SELECT processed_at_ms, status FROM events ORDER BY seq DESC LIMIT ?2)
                  AS recent",
        )?
        .query_row(params![since_ms, window], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

/// An event claimed for applying.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub seq: i64,
    pub id: String,
    pub type_: String,
    pub account: Option<String>,
    pub livemode: bool,
    pub created: i64,
    pub attempts: i64,
    pub payload: String,
}

fn claimed_row(row: &Row<'_>) -> crate::store::db::Result<Claimed> {
    Ok(Claimed {
        seq: row.get(0)?,
        id: row.get(1)?,
        type_: row.get(2)?,
        account: row.get(3)?,
        livemode: row.get(4)?,
        created: row.get(5)?,
        attempts: row.get(6)?,
        payload: row.get(7)?,
    })
}

/// Up to `limit` events due for applying, oldest due first. Call inside the transaction
/// that applies them, so no other worker or process can apply them too: on SQLite that
/// transaction holds the write lock; on PostgreSQL the rows are locked (`FOR UPDATE`)
/// until it commits, and other nodes' workers skip them (`SKIP LOCKED`). A node that
/// dies mid-apply loses its session, which releases the locks: another node applies the
/// events, once.
pub fn claim_due(conn: &Connection, now_ms: i64, limit: usize) -> Result<Vec<Claimed>> {
    let sql = match conn.backend() {
        // `INDEXED BY` the partial index of waiting events: otherwise the planner may pick
        // the status index and sort every waiting row (payload and all) for each claim.
        Backend::Sqlite => {
            "SELECT seq, id, type, account, livemode, created, attempts, payload
             FROM events INDEXED BY events_due
             WHERE status IN ('pending', 'failed') AND next_attempt_ms <= ?1
             ORDER BY next_attempt_ms, seq LIMIT ?2"
        }
        Backend::Postgres => {
            "SELECT seq, id, type, account, livemode, created, attempts, payload
             FROM events
             WHERE status IN ('pending', 'failed') AND next_attempt_ms <= ?1
             ORDER BY next_attempt_ms, seq LIMIT ?2
             FOR UPDATE SKIP LOCKED"
        }
    };
    let limit = i64::try_from(limit.max(1)).unwrap_or(i64::MAX);
    Ok(conn
        .prepare_cached(sql)?
        .query_map(params![now_ms, limit], claimed_row)?
        .collect::<super::db::Result<Vec<_>>>()?)
}

/// The event `seq` if it is still waiting to be applied (and, on PostgreSQL, not being
/// applied by another worker right now).
pub fn claim_seq(conn: &Connection, seq: i64) -> Result<Option<Claimed>> {
    let sql = match conn.backend() {
        Backend::Sqlite => {
            "SELECT seq, id, type, account, livemode, created, attempts, payload FROM events
             WHERE seq = ?1 AND status IN ('pending', 'failed')"
        }
        Backend::Postgres => {
            "SELECT seq, id, type, account, livemode, created, attempts, payload FROM events
             WHERE seq = ?1 AND status IN ('pending', 'failed')
             FOR UPDATE SKIP LOCKED"
        }
    };
    Ok(conn
        .prepare_cached(sql)?
        .query_row([seq], claimed_row)
        .optional()?)
}

/// Takes the apply locks of the objects `keys` until the transaction ends; answers the
/// keys another transaction holds (their events must wait). SQLite serialises applies
/// (one writer), so every key is free there; on PostgreSQL several workers apply at
/// once, and a handler that reads before it writes (flags, history, the payment row a
/// charge and its intent share) must not interleave with another on one object. One
/// round trip for a whole batch; try-locks never wait, so they never deadlock.
pub fn lock_objects(conn: &Connection, keys: &[&str]) -> Result<Vec<String>> {
    if conn.backend() == Backend::Sqlite || keys.is_empty() {
        return Ok(Vec::new());
    }
    let keys = serde_json::Value::from(keys.to_vec()).to_string();
    Ok(conn
        .prepare_cached(
            "SELECT k FROM jsonb_array_elements_text(?1::jsonb) AS keys (k)
             WHERE NOT pg_try_advisory_xact_lock(hashtextextended(k, 0))",
        )?
        .query_map(params![keys], |r| r.get(0))?
        .collect::<super::db::Result<Vec<String>>>()?)
}

/// The earliest time a pending or failed event becomes due (for idle workers).
pub fn next_due_at(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn.query_row(
        match conn.backend() {
            Backend::Sqlite => {
                "SELECT min(next_attempt_ms) FROM events INDEXED BY events_due
                 WHERE status IN ('pending', 'failed')"
            }
            Backend::Postgres => {
                "SELECT min(next_attempt_ms) FROM events WHERE status IN ('pending', 'failed')"
            }
        },
        (),
        |r| r.get(0),
    )?)
}

/// An event a batch applied (`processed`) or decided not to apply (`ignored`).
pub struct Finished<'a> {
    pub seq: i64,
    pub status: Status,
    pub note: Option<&'a str>,
}

/// Records the finished events of a batch, in the batch's transaction: one statement on
/// PostgreSQL (a round trip per event saved), one cached statement per event on SQLite.
pub fn finish_all(conn: &Connection, finished: &[Finished<'_>], now_ms: i64) -> Result<()> {
    if finished.is_empty() {
        return Ok(());
    }
    if conn.backend() == Backend::Postgres {
        let rows: Vec<serde_json::Value> = finished
            .iter()
            .map(|f| serde_json::json!({"seq": f.seq, "status": f.status.as_str(), "note": f.note}))
            .collect();
        let rows = serde_json::Value::from(rows).to_string();
        // Planned at each run, never from the statement cache: the rows' estimate is
        // fixed, so a cached plan made while `events` was small (a fresh database taking
        // its first burst) would scan the whole table for every batch after.
        conn.with_pg(|client| {
            client.execute(
                "UPDATE events SET status = b.status, attempts = events.attempts + 1,
                        processed_at_ms = $2, last_error = b.note
                 FROM jsonb_to_recordset($1::text::jsonb) AS b (seq bigint, status text, note text)
                 WHERE events.seq = b.seq",
                &[&rows, &now_ms],
            )
        })
        .expect("a PostgreSQL connection")
        .map_err(super::db::Error::from)?;
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(
        "UPDATE events SET status = ?2, attempts = attempts + 1, processed_at_ms = ?3,
                last_error = ?4
         WHERE seq = ?1",
    )?;
    for f in finished {
        stmt.execute(params![f.seq, f.status.as_str(), now_ms, f.note])?;
    }
    Ok(())
}

/// Records a failed attempt: `failed` with the next attempt's time, or `dead`.
pub fn fail(conn: &Connection, seq: i64, error: &str, next_attempt_ms: Option<i64>) -> Result<()> {
    let status = if next_attempt_ms.is_some() {
        Status::Failed
    } else {
        Status::Dead
    };
    conn.prepare_cached(
        "UPDATE events SET status = ?2, attempts = attempts + 1, last_error = ?3,
                next_attempt_ms = coalesce(?4, next_attempt_ms)
         WHERE seq = ?1 AND status IN ('pending', 'failed')",
    )?
    .execute(params![seq, status.as_str(), error, next_attempt_ms])?;
    Ok(())
}

/// Queues an event to be applied again (replay); returns its sequence number.
/// Its attempts start over; its last error is kept until the next apply.
pub fn requeue(conn: &Connection, id: &str, now_ms: i64) -> Result<i64> {
    let seq: Option<i64> = conn
        .prepare_cached(
            "UPDATE events SET status = 'pending', attempts = 0, next_attempt_ms = ?2
             WHERE id = ?1 RETURNING seq",
        )?
        .query_row(params![id, now_ms], |r| r.get(0))
        .optional()?;
    seq.ok_or(StoreError::NotFound)
}

/// Ids of the events matching a replay selection, oldest first.
pub fn select_for_replay(
    conn: &Connection,
    status: Option<Status>,
    since_ms: Option<i64>,
) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id FROM events
         WHERE (status = ?1 OR ?1 IS NULL) AND (received_at_ms >= ?2 OR ?2 IS NULL)
         ORDER BY seq",
    )?;
    let ids = stmt
        .query_map(params![status.map(Status::as_str), since_ms], |r| r.get(0))?
        .collect::<crate::store::db::Result<Vec<String>>>()?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;

    fn event(id: &str) -> NewEvent {
        NewEvent {
            id: id.into(),
            type_: "customer.created".into(),
            account: None,
            livemode: false,
            api_version: None,
            created: 1,
            payload: "{}".into(),
        }
    }

    #[test]
    fn the_same_event_id_is_stored_once() {
        let (_dir, store) = test_store();
        let conn = store.conn().unwrap();
        assert_eq!(insert(&conn, &event("evt_1"), 10).unwrap(), Inserted::New);
        assert_eq!(
            insert(&conn, &event("evt_1"), 11).unwrap(),
            Inserted::Duplicate
        );
        let (rows, more) = list(
            &conn,
            &Filter {
                limit: 10,
                ..Filter::default()
            },
        )
        .unwrap();
        assert_eq!(rows.len(), 1);
        assert!(!more);
    }

    #[test]
    fn listing_pages_newest_first() {
        let (_dir, store) = test_store();
        let conn = store.conn().unwrap();
        for i in 0..5 {
            insert(&conn, &event(&format!("evt_{i}")), i).unwrap();
        }
        let page = |after: Option<&str>| {
            list(
                &conn,
                &Filter {
                    limit: 2,
                    starting_after: after.map(String::from),
                    ..Filter::default()
                },
            )
            .unwrap()
        };
        let (first, more) = page(None);
        assert_eq!(
            first.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["evt_4", "evt_3"]
        );
        assert!(more);
        let (last, more) = page(Some("evt_1"));
        assert_eq!(
            last.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["evt_0"]
        );
        assert!(!more);
    }
}

//! `billd db copy`: every row of one billd database into another, across backends
//! (SQLite to PostgreSQL to move an installation beyond one machine, or back).
//!
//! The source is read from one snapshot, table by table in key order and in chunks
//! (memory stays flat however large the inbox is); each chunk is one insert
//! transaction on the target, with the source's own keys, so event sequence numbers,
//! flag and audit ids and history versions keep their values (PostgreSQL's identity
//! sequences are moved past them afterwards). The target is migrated first and must
//! hold no data unless `replace` says to empty it.

use super::{Backend, Connection, Result, Store, StoreError, TransactionBehavior, db, migrations};

/// The tables a copy carries, parents before children (the foreign keys), each with
/// the columns of its primary key (the order it is read in).
const TABLES: &[(&str, &[&str])] = &[
    ("events", &["seq"]),
    ("customers", &["id"]),
    ("payment_methods", &["id"]),
    ("products", &["id"]),
    ("prices", &["id"]),
    ("subscriptions", &["id"]),
    ("subscription_items", &["id"]),
    ("invoices", &["id"]),
    ("payments", &["id"]),
    ("refunds", &["id"]),
    ("checkout_sessions", &["id"]),
    ("accounts", &["id"]),
    ("coupons", &["id"]),
    ("discounts", &["id"]),
    ("disputes", &["id"]),
    ("flags", &["id"]),
    ("api_tokens", &["id"]),
    ("audit_log", &["id"]),
    ("subscription_versions", &["id"]),
    ("subscription_version_items", &["version", "item"]),
    ("idempotency_keys", &["token_id", "key"]),
    ("alert_state", &["kind"]),
    ("gap_repair", &["id"]),
    ("dashboard_sessions", &["id"]),
];
// Not copied: the migration count (the target migrates itself) and the catalog
// generation (the target's own, bumped by its triggers as products and prices land), and
// the readiness row (a probe's scratch, rewritten at each `/readyz`), and checkpoints of
// unfinished backfills (of the source's Stripe listing, not the target's).

/// Rows per read and per insert transaction.
const CHUNK: usize = 500;

/// How far a copy is.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub table: &'static str,
    pub done: u64,
    pub total: u64,
}

/// What a copy moved: rows per table, in copy order.
pub type Copied = Vec<(&'static str, u64)>;

/// Copies every row of `from` into `to`. Refuses a target that holds data unless
/// `replace` (which empties it first, in the same transaction as nothing else: the
/// caller asked for it).
pub fn copy(
    from: &Store,
    to: &Store,
    replace: bool,
    mut progress: impl FnMut(Progress),
) -> Result<Copied> {
    let mut source = from.conn()?;
    let mut target = to.conn()?;
    let version = migrations::applied(&source)?;
    if version != super::latest_migration() {
        return Err(StoreError::Conflict(format!(
            "the source database has schema version {version}, this billd {}: run \
             `billd migrate` on it first",
            super::latest_migration()
        )));
    }
    migrations::migrate(&mut target)?;
    let holding: Vec<&str> = TABLES
        .iter()
        .map(|(t, _)| *t)
        .filter(|t| !matches!(*t, "gap_repair" | "alert_state"))
        .filter_map(|t| match has_rows(&target, t) {
            Ok(true) => Some(Ok(t)),
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_>>()?;
    if !holding.is_empty() && !replace {
        return Err(StoreError::Conflict(format!(
            "the target database is not empty ({} hold rows): copy into an empty database, \
             or pass --replace to empty it first",
            holding.join(", ")
        )));
    }
    {
        // Children first, then what they point at; the seeded single rows go too (the
        // source's take their place).
        let tx = target.transaction()?;
        for (table, _) in TABLES.iter().rev() {
            tx.execute(&format!("DELETE FROM {table}"), ())?;
        }
        tx.commit()?;
    }

    let snapshot = source.transaction_with_behavior(TransactionBehavior::Snapshot)?;
    let mut copied = Vec::with_capacity(TABLES.len());
    for (table, key) in TABLES {
        let total: i64 =
            snapshot.query_row(&format!("SELECT count(*) FROM {table}"), (), |r| r.get(0))?;
        let total = u64::try_from(total).unwrap_or(0);
        let mut done = 0u64;
        progress(Progress { table, done, total });
        let mut after: Option<Vec<db::Value>> = None;
        loop {
            let (columns, rows) = read_chunk(&snapshot, table, key, after.as_deref())?;
            if rows.is_empty() {
                break;
            }
            write_chunk(&target, table, &columns, &rows)?;
            let key_at: Vec<usize> = key
                .iter()
                .map(|k| {
                    columns
                        .iter()
                        .position(|c| c == k)
                        .expect("key column read")
                })
                .collect();
            let last = rows.last().expect("a non-empty chunk");
            after = Some(key_at.iter().map(|&i| last[i].clone()).collect());
            done += rows.len() as u64;
            progress(Progress { table, done, total });
        }
        copied.push((*table, done));
    }
    drop(snapshot);
    if target.backend() == Backend::Postgres {
        move_sequences(&target)?;
    }
    Ok(copied)
}

fn has_rows(conn: &Connection, table: &str) -> Result<bool> {
    Ok(conn
        .query_row(&format!("SELECT 1 FROM {table} LIMIT 1"), (), |_| Ok(()))
        .map(|_| true)
        .or_else(|e| match e {
            db::Error::NoRows => Ok(false),
            e => Err(e),
        })?)
}

type Chunk = (Vec<String>, Vec<Vec<db::Value>>);

/// The next `CHUNK` rows of `table` after the key `after`, in key order.
fn read_chunk(
    conn: &Connection,
    table: &str,
    key: &[&str],
    after: Option<&[db::Value]>,
) -> Result<Chunk> {
    let key_list = key.join(", ");
    let filter = match after {
        None => String::new(),
        Some(_) => {
            let marks: Vec<String> = (1..=key.len()).map(|i| format!("?{i}")).collect();
            format!("WHERE ({key_list}) > ({})", marks.join(", "))
        }
    };
    let sql = format!("SELECT * FROM {table} {filter} ORDER BY {key_list} LIMIT {CHUNK}");
    let mut stmt = conn.prepare(&sql)?;
    let columns = stmt.column_names();
    let width = columns.len();
    let read = |r: &db::Row<'_>| -> db::Result<Vec<db::Value>> {
        (0..width)
            .map(|i| Ok(db::Value::from(r.get_ref(i)?)))
            .collect()
    };
    let rows = match after {
        None => stmt.query_map((), read)?,
        Some(after) => stmt.query_map(db::params_from_iter(after.iter()), read)?,
    }
    .collect::<db::Result<Vec<_>>>()?;
    Ok((columns, rows))
}

/// Inserts `rows` into `table` in one transaction.
fn write_chunk(
    conn: &Connection,
    table: &str,
    columns: &[String],
    rows: &[Vec<db::Value>],
) -> Result<()> {
    let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
    let sql = format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        columns.join(", "),
        marks.join(", ")
    );
    let tx = conn.unchecked_transaction()?;
    {
        let mut stmt = tx.prepare_cached(&sql)?;
        for row in rows {
            stmt.execute(db::params_from_iter(row.iter()))?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// Moves every identity sequence past the largest value copied into its column, so the
/// next event, flag or audit row gets a new number.
fn move_sequences(conn: &Connection) -> Result<()> {
    let identities: Vec<(String, String)> = conn
        .prepare(
            "SELECT table_name, column_name FROM information_schema.columns
             WHERE is_identity = 'YES' AND table_schema = current_schema()",
        )?
        .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<db::Result<_>>()?;
    for (table, column) in identities {
        conn.query_row(
            &format!(
                "SELECT setval(pg_get_serial_sequence('{table}', '{column}'),
                               coalesce((SELECT max({column}) FROM {table}), 0) + 1, false)"
            ),
            (),
            |_| Ok(()),
        )?;
    }
    Ok(())
}

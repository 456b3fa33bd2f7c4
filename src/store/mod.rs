//! Storage: the only module that writes SQL.
//!
//! SQLite through an r2d2 pool; every connection is set up once with WAL, foreign keys
//! and a busy timeout. Callers on the async runtime go through [`Store::run`], which moves
//! the blocking work to tokio's blocking pool (carrying the current tracing span). The
//! interface is narrow (functions over a `&Connection`) so a PostgreSQL backend can be
//! added later without touching the event handlers.

pub mod accounts;
pub mod alerts;
pub mod audit;
pub mod backup;
pub mod catalog;
pub mod events;
pub mod flags;
pub mod gap;
pub mod idempotency;
pub mod mirror;
pub mod reports;
pub mod tokens;

use std::{path::Path, sync::LazyLock, time::Duration};

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::Connection;
use rusqlite_migration::{M, Migrations, SchemaVersion};

pub use rusqlite::Transaction;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    /// A list's `starting_after` names nothing in that list.
    #[error("starting_after: no such {0}")]
    UnknownCursor(String),
    // The causes are shown in the message rather than chained as sources, so that a
    // one-line log of the error says what went wrong and `{:#}` does not say it twice.
    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
    #[error("database pool error: {0}")]
    Pool(r2d2::Error),
    #[error("migration error: {0}")]
    Migration(rusqlite_migration::Error),
    #[error("cannot create database directory or file {path} (readable by its owner only)")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error("storage task failed: {0}")]
    Task(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Sqlite(e)
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> Self {
        StoreError::Pool(e)
    }
}

impl From<rusqlite_migration::Error> for StoreError {
    fn from(e: rusqlite_migration::Error) -> Self {
        StoreError::Migration(e)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The numbered files of `migrations/`, applied in order.
static MIGRATIONS: LazyLock<Migrations<'static>> = LazyLock::new(|| {
    Migrations::new(vec![
        M::up(include_str!("../../migrations/0001_init.sql")),
        // The hook derives the timelines of the subscription history it backfills.
        M::up_with_hook(
            include_str!("../../migrations/0002_reports.sql"),
            reports::migration_hook,
        ),
        M::up(include_str!(
            "../../migrations/0003_subscription_history_order.sql"
        )),
        M::up(include_str!("../../migrations/0004_idempotency.sql")),
        M::up(include_str!("../../migrations/0005_alerts.sql")),
        M::up(include_str!("../../migrations/0006_gap_repair.sql")),
    ])
});

/// Number of the newest migration this binary knows.
pub fn latest_migration() -> usize {
    6
}

pub type Pool = r2d2::Pool<SqliteConnectionManager>;
pub type PooledConnection = r2d2::PooledConnection<SqliteConnectionManager>;

/// Durability of one connection's commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// `synchronous=FULL`: a commit is on disk when it returns (the inbox writer).
    Full,
    /// `synchronous=NORMAL`: in WAL mode a crash never corrupts, but a power cut may lose
    /// the last commits. Used for mirror applies, which are replayed from the durable
    /// inbox if lost.
    Normal,
}

/// A handle to the database: cheap to clone, shared by the API, workers and CLI.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    path: std::path::PathBuf,
    busy_timeout: Duration,
}

impl Store {
    /// Opens (creating if needed) the database at `path`. Does not migrate.
    pub fn open(path: &Path, pool_size: u32, busy_timeout: Duration) -> Result<Store> {
        // Customer emails, raw payloads and token hashes: the owner's alone.
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::process::private_dir(dir).map_err(|source| StoreError::Directory {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let sidecar = |suffix: &str| {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            std::path::PathBuf::from(p)
        };
        crate::process::private_files(path, &[sidecar("-wal"), sidecar("-shm")]).map_err(
            |source| StoreError::Directory {
                path: path.display().to_string(),
                source,
            },
        )?;
        // WAL is a property of the file: switch it once, before the pool opens
        // connections concurrently (switching needs an exclusive lock).
        let first = Connection::open(path)?;
        first.busy_timeout(busy_timeout)?;
        first.pragma_update(None, "journal_mode", "WAL")?;
        drop(first);
        let manager = SqliteConnectionManager::file(path)
            .with_init(move |c| configure(c, busy_timeout, Sync::Normal));
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(1))
            .connection_timeout(busy_timeout.max(Duration::from_secs(1)))
            .build(manager)?;
        Ok(Store {
            pool,
            path: path.to_path_buf(),
            busy_timeout,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A pooled connection, for blocking callers (CLI, worker threads).
    pub fn conn(&self) -> Result<PooledConnection> {
        Ok(self.pool.get()?)
    }

    /// A dedicated connection with the given durability, outside the pool.
    pub fn dedicated(&self, sync: Sync) -> Result<Connection> {
        let conn = Connection::open(&self.path)?;
        configure(&conn, self.busy_timeout, sync)?;
        Ok(conn)
    }

    /// Runs blocking database work off the async runtime.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let store = self.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _entered = span.enter();
            let mut conn = store.conn()?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// Applies pending migrations; returns how many were applied.
    pub fn migrate(&self) -> Result<usize> {
        let mut conn = self.conn()?;
        let before = self.applied_migrations_on(&conn)?;
        MIGRATIONS.to_latest(&mut conn)?;
        Ok(latest_migration().saturating_sub(before))
    }

    /// How many migrations the database has applied.
    pub fn applied_migrations(&self) -> Result<usize> {
        let conn = self.conn()?;
        self.applied_migrations_on(&conn)
    }

    fn applied_migrations_on(&self, conn: &Connection) -> Result<usize> {
        Ok(match MIGRATIONS.current_version(conn)? {
            SchemaVersion::NoneSet => 0,
            SchemaVersion::Inside(n) | SchemaVersion::Outside(n) => n.get(),
        })
    }

    /// True when the database answers and holds the schema this binary expects.
    pub fn is_ready(&self) -> Result<bool> {
        Ok(self.applied_migrations()? == latest_migration())
    }
}

/// Connection setup, once per connection: foreign keys, busy timeout, durability (and
/// WAL, already set on the file by [`Store::open`]).
fn configure(conn: &Connection, busy_timeout: Duration, sync: Sync) -> rusqlite::Result<()> {
    conn.busy_timeout(busy_timeout)?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(
        None,
        "synchronous",
        match sync {
            Sync::Full => "FULL",
            Sync::Normal => "NORMAL",
        },
    )?;
    Ok(())
}

/// Maps "no rows" to [`StoreError::NotFound`].
pub(crate) trait OptionalExt<T> {
    fn found(self) -> Result<T>;
}

impl<T> OptionalExt<T> for rusqlite::Result<T> {
    fn found(self) -> Result<T> {
        match self {
            Ok(v) => Ok(v),
            Err(rusqlite::Error::QueryReturnedNoRows) => Err(StoreError::NotFound),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
pub(crate) fn test_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.sqlite"), 4, Duration::from_secs(5)).unwrap();
    store.migrate().unwrap();
    (dir, store)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_migration_file_is_applied_and_counted() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let files = std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "sql"))
            })
            .count();
        assert_eq!(super::latest_migration(), files);
        let (_dir, store) = super::test_store();
        assert_eq!(store.applied_migrations().unwrap(), files);
    }
}

//! Storage: the only module that writes SQL.
//!
//! One [`Store`] over either backend (DESIGN §9): an embedded SQLite file (WAL, foreign
//! keys, busy timeout) or a PostgreSQL database shared by several billd processes. Both
//! are reached through billd's own connection type ([`db::Connection`]) from one r2d2
//! pool; callers never name the backend. Callers on the async runtime go through
//! [`Store::run`], which moves the blocking work to tokio's blocking pool (carrying the
//! current tracing span).

pub mod accounts;
pub mod alerts;
pub mod audit;
pub mod backup;
pub mod catalog;
pub mod checkpoints;
pub mod compliance;
pub mod copy;
pub mod db;
pub mod events;
pub mod flags;
pub mod gap;
pub(crate) mod gate;
pub mod idempotency;
mod migrations;
pub mod mirror;
pub mod reports;
pub mod sessions;
pub mod tokens;

use std::{path::Path, time::Duration};

pub use db::{Backend, Connection, Savepoint, Transaction, TransactionBehavior};
pub use migrations::latest_migration;

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
    Database(db::Error),
    #[error("database pool error: {0}")]
    Pool(r2d2::Error),
    #[error("migration error: {0}")]
    Migration(String),
    #[error("cannot create database directory or file {path} (readable by its owner only)")]
    Directory {
        path: String,
        source: std::io::Error,
    },
    #[error("storage task failed: {0}")]
    Task(String),
}

impl StoreError {
    /// Another writer held what this needed: worth trying again, and says nothing about
    /// the work itself.
    pub fn is_contention(&self) -> bool {
        matches!(self, StoreError::Database(e) if e.is_contention())
    }
}

impl From<db::Error> for StoreError {
    fn from(e: db::Error) -> Self {
        match e {
            db::Error::NoRows => StoreError::NotFound,
            e => StoreError::Database(e),
        }
    }
}

/// SQLite-only store code (backups, restores) uses rusqlite directly.
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        db::Error::from(e).into()
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(e: r2d2::Error) -> Self {
        StoreError::Pool(e)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub type Pool = r2d2::Pool<Manager>;
pub type PooledConnection = r2d2::PooledConnection<Manager>;

/// Durability of one connection's commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sync {
    /// A commit is on disk when it returns (the inbox writer): SQLite
    /// `synchronous=FULL`, PostgreSQL `synchronous_commit=on`.
    Full,
    /// A crash never corrupts, but a power cut may lose the last commits (SQLite
    /// `synchronous=NORMAL` in WAL mode, PostgreSQL `synchronous_commit=off`). Used for
    /// mirror applies, which are replayed from the durable inbox if lost.
    Normal,
}

/// Where the database is.
#[derive(Debug, Clone)]
pub enum Target {
    Sqlite(std::path::PathBuf),
    Postgres(Box<db::PgTarget>),
}

/// Opens connections for the pool (and dedicated ones) with billd's session set-up.
#[derive(Debug)]
pub struct Manager {
    target: Target,
    busy_timeout: Duration,
    sync: Sync,
}

impl Manager {
    fn connect(&self) -> db::Result<Connection> {
        match &self.target {
            Target::Sqlite(path) => {
                let conn = rusqlite::Connection::open(path)?;
                configure(&conn, self.busy_timeout, self.sync)?;
                Ok(Connection::from_sqlite(conn))
            }
            Target::Postgres(t) => Ok(Connection::from_pg(t.connect(self.sync == Sync::Full)?)),
        }
    }
}

impl r2d2::ManageConnection for Manager {
    type Connection = Connection;
    type Error = db::Error;

    fn connect(&self) -> db::Result<Connection> {
        Manager::connect(self)
    }

    fn is_valid(&self, conn: &mut Connection) -> db::Result<()> {
        conn.execute_batch("")
    }

    fn has_broken(&self, conn: &mut Connection) -> bool {
        conn.is_broken()
    }
}

/// A handle to the database: cheap to clone, shared by the API, workers and CLI.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    manager: std::sync::Arc<Manager>,
    /// How this process's ingest writer and workers take turns at SQLite's write lock.
    gate: std::sync::Arc<gate::WriteGate>,
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path`. Does not migrate.
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
        let first = rusqlite::Connection::open(path).map_err(db::Error::from)?;
        first.busy_timeout(busy_timeout).map_err(db::Error::from)?;
        first
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(db::Error::from)?;
        drop(first);
        Store::with_target(Target::Sqlite(path.to_path_buf()), pool_size, busy_timeout)
    }

    /// Opens the PostgreSQL database at `url` (its password from the environment).
    pub fn open_postgres(
        url: &str,
        password: Option<&str>,
        pool_size: u32,
        busy_timeout: Duration,
    ) -> Result<Store> {
        let target = db::PgTarget::new(url, password, busy_timeout)?;
        Store::with_target(Target::Postgres(Box::new(target)), pool_size, busy_timeout)
    }

    /// Opens the database `[database]` selects: `url` (PostgreSQL) or `path` (SQLite).
    pub fn open_config(config: &crate::config::DatabaseConfig) -> Result<Store> {
        let busy = Duration::from_millis(config.busy_timeout_ms);
        match &config.url {
            Some(url) => {
                let password = std::env::var(&config.password_env).ok();
                Store::open_postgres(url, password.as_deref(), config.pool_size, busy)
            }
            None => Store::open(&config.path, config.pool_size, busy),
        }
    }

    fn with_target(target: Target, pool_size: u32, busy_timeout: Duration) -> Result<Store> {
        let manager = |sync| Manager {
            target: target.clone(),
            busy_timeout,
            sync,
        };
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(1))
            .connection_timeout(busy_timeout.max(Duration::from_secs(1)))
            .build(manager(Sync::Normal))?;
        Ok(Store {
            pool,
            manager: std::sync::Arc::new(manager(Sync::Normal)),
            gate: Default::default(),
        })
    }

    /// This process's turn at SQLite's write lock ([`gate::WriteGate`]), held until the
    /// answer is dropped: the ingest writer takes it before its batch, a worker before
    /// its apply transaction.
    pub(crate) fn write_turn(&self, who: gate::Writer) -> gate::Turn<'_> {
        self.gate.turn(who)
    }

    /// Whether this process's ingest writer is waiting for its turn: a worker ends its
    /// batch early rather than keep a webhook waiting.
    pub(crate) fn ingest_waiting(&self) -> bool {
        self.gate.ingest_waiting()
    }

    pub fn backend(&self) -> Backend {
        match self.manager.target {
            Target::Sqlite(_) => Backend::Sqlite,
            Target::Postgres(_) => Backend::Postgres,
        }
    }

    pub fn target(&self) -> &Target {
        &self.manager.target
    }

    /// The database as messages name it: the SQLite file, or the PostgreSQL URL without
    /// its credentials.
    pub fn describe(&self) -> String {
        match &self.manager.target {
            Target::Sqlite(p) => p.display().to_string(),
            Target::Postgres(t) => t.describe(),
        }
    }

    /// The SQLite file, or `None` on PostgreSQL.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.manager.target {
            Target::Sqlite(p) => Some(p),
            Target::Postgres(_) => None,
        }
    }

    /// A pooled connection, for blocking callers (CLI, worker threads).
    pub fn conn(&self) -> Result<PooledConnection> {
        Ok(self.pool.get()?)
    }

    /// A dedicated connection with the given durability, outside the pool.
    pub fn dedicated(&self, sync: Sync) -> Result<Connection> {
        let manager = Manager {
            target: self.manager.target.clone(),
            busy_timeout: self.manager.busy_timeout,
            sync,
        };
        Ok(manager.connect()?)
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

    /// Applies pending migrations; returns how many were applied. Several processes
    /// starting together are safe: one applies, the others find nothing left to do.
    pub fn migrate(&self) -> Result<usize> {
        let mut conn = self.conn()?;
        migrations::migrate(&mut conn)
    }

    /// Applies the migrations up to number `version` only: the schema an older billd
    /// left. For the upgrade tests; `billd` itself always migrates to its own schema.
    #[doc(hidden)]
    pub fn migrate_to(&self, version: usize) -> Result<usize> {
        let mut conn = self.conn()?;
        migrations::migrate_to(&mut conn, version)
    }

    /// How many migrations the database has applied.
    pub fn applied_migrations(&self) -> Result<usize> {
        let conn = self.conn()?;
        migrations::applied(&conn)
    }

    /// True when the database answers and holds the schema this binary expects.
    pub fn is_ready(&self) -> Result<bool> {
        Ok(self.applied_migrations()? == latest_migration())
    }

    /// Commits one small write now (the readiness row), on the pool: a database that is
    /// locked beyond the busy timeout, full, read-only or unreachable answers its error.
    pub fn check_writable(&self) -> Result<()> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "INSERT INTO readiness_probe (id, at_ms) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET at_ms = excluded.at_ms",
            [crate::time::now_ms()],
        )?;
        tx.commit()?;
        Ok(())
    }
}

/// SQLite connection setup, once per connection: foreign keys, busy timeout, durability
/// (and WAL, already set on the file by [`Store::open`]).
fn configure(
    conn: &rusqlite::Connection,
    busy_timeout: Duration,
    sync: Sync,
) -> rusqlite::Result<()> {
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
    if sync == Sync::Full {
        // The ingest writer never checkpoints: copying the WAL back into the database
        // would happen inside its commit, while webhooks wait for their 200. Every
        // other connection's commits checkpoint as usual (the workers commit whenever
        // events were stored).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    }
    Ok(())
}

/// Maps "no rows" to [`StoreError::NotFound`].
pub(crate) trait OptionalExt<T> {
    fn found(self) -> Result<T>;
}

impl<T> OptionalExt<T> for db::Result<T> {
    fn found(self) -> Result<T> {
        self.map_err(StoreError::from)
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

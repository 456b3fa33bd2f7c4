//! Copies of the database: `billd backup` (SQLite's online backup API, consistent while
//! a daemon writes), `billd restore`, the lock that tells a restore a daemon is using
//! the database, and a look at a database file that changes nothing (`billd doctor`).
//!
//! The lock is `<database>.lock`, a file next to the database that every daemon holds
//! a shared `flock` on for as long as it runs, and that a restore takes exclusively. A
//! shared lock because several daemons may serve one database file; a separate file
//! because SQLite's own locks on the database are POSIX record locks, released by any
//! close of the file in the process, and held only while a transaction is open, so an
//! idle daemon holds none. The kernel drops a `flock` when its holder dies, so a
//! killed daemon leaves no stale lock.

use std::{
    fs::File,
    path::{Path, PathBuf},
    time::Duration,
};

use rusqlite::{Connection, OpenFlags, backup::StepResult};

use super::{Result, StoreError, latest_migration};

/// Pages copied per backup step (4 MiB at SQLite's default page size): few steps, and
/// progress to show on a large database.
const PAGES_PER_STEP: i32 = 1024;

/// The path of the lock file of the database at `db`.
pub fn lock_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".lock");
    PathBuf::from(p)
}

/// A lock on the database's lock file, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct DbLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("the database is in use by a running billd (lock {0} is held)")]
    InUse(String),
    #[error("cannot open the lock file {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

fn open_lock_file(db: &Path) -> Result<File, LockError> {
    let path = lock_path(db);
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::process::private_dir(dir).map_err(|source| LockError::Io {
            path: dir.display().to_string(),
            source,
        })?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(&path).map_err(|source| LockError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// What a daemon holds while it runs: a shared lock, so a restore can tell. It fails
/// at once (rather than waiting) while a restore holds the lock.
pub fn hold_for_daemon(db: &Path) -> Result<DbLock, LockError> {
    let file = open_lock_file(db)?;
    match file.try_lock_shared() {
        Ok(()) => Ok(DbLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(LockError::InUse(format!(
            "{}, by a restore",
            lock_path(db).display()
        ))),
        Err(std::fs::TryLockError::Error(source)) => Err(LockError::Io {
            path: lock_path(db).display().to_string(),
            source,
        }),
    }
}

/// What a restore takes: the lock alone, or [`LockError::InUse`] while any daemon runs
/// on this database.
pub fn hold_exclusive(db: &Path) -> Result<DbLock, LockError> {
    let file = open_lock_file(db)?;
    match file.try_lock() {
        Ok(()) => Ok(DbLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(LockError::InUse(lock_path(db).display().to_string()))
        }
        Err(std::fs::TryLockError::Error(source)) => Err(LockError::Io {
            path: lock_path(db).display().to_string(),
            source,
        }),
    }
}

/// What a database file is, seen without changing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    /// Migrations applied.
    pub schema_version: usize,
    /// `PRAGMA quick_check` answered `ok`.
    pub intact: bool,
}

impl Inspection {
    /// What [`super::Store::is_ready`] asks: the schema this binary expects.
    pub fn is_ready(&self) -> bool {
        self.intact && self.schema_version == latest_migration()
    }
}

/// Opens an existing database without creating it or its directory, without changing
/// file modes or journal mode (which [`super::Store::open`] does), and reports its schema
/// version and whether it is intact. Not a billd database (no inbox table, or a schema
/// newer than this binary knows) is an error.
pub fn inspect(path: &Path) -> Result<Inspection> {
    if !path.is_file() {
        return Err(StoreError::NotFound);
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    let intact: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let version = usize::try_from(version).unwrap_or(0);
    let has_inbox: bool = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = 'events')",
        [],
        |r| r.get(0),
    )?;
    if version == 0 || !has_inbox {
        return Err(StoreError::Conflict(format!(
            "{} is not a billd database (no schema version or no events table)",
            path.display()
        )));
    }
    if version > latest_migration() {
        return Err(StoreError::Conflict(format!(
            "{} has schema version {version}, newer than this billd knows ({})",
            path.display(),
            latest_migration()
        )));
    }
    Ok(Inspection {
        schema_version: version,
        intact: intact == "ok",
    })
}

/// How far a copy is, in pages.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub done: u64,
    pub total: u64,
    /// Bytes per page.
    pub page_size: u64,
}

/// Copies the database at `db` to `dest`, which must not exist: a snapshot of one
/// moment, taken while daemons keep writing (they are never blocked: in WAL mode a
/// reader does not hold up writers). The copy is written next to `dest` under a
/// temporary name, checked and synced, then renamed, so `dest` is never half a backup.
/// It is a single file in rollback-journal mode (no `-wal` to carry along), 0600. An
/// existing `dest` is refused unless `overwrite`.
pub fn backup(
    db: &Path,
    dest: &Path,
    overwrite: bool,
    mut progress: impl FnMut(Progress),
) -> Result<Progress> {
    if !db.is_file() {
        return Err(StoreError::NotFound);
    }
    if dest.exists() && !overwrite {
        return Err(StoreError::Conflict(format!(
            "{} exists (--force replaces it)",
            dest.display()
        )));
    }
    let source = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    source.busy_timeout(Duration::from_secs(5))?;
    let page_size = source.query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))?;
    let page_size = u64::try_from(page_size).unwrap_or(0);
    // One read transaction across every step: the backup sees one snapshot, and other
    // connections' commits meanwhile neither restart it nor enter the copy.
    source.execute_batch("BEGIN; SELECT count(*) FROM sqlite_schema;")?;
    let partial = sibling(dest, ".partial");
    let _ = std::fs::remove_file(&partial);
    create_private(&partial)?;
    let result = (|| {
        let mut target = Connection::open(&partial)?;
        let last = {
            let copy = rusqlite::backup::Backup::new(&source, &mut target)?;
            copy_all(&copy, page_size, &mut progress)?
        };
        target.pragma_update(None, "journal_mode", "DELETE")?;
        let check: String = target.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
        if check != "ok" {
            return Err(StoreError::Conflict(format!(
                "the copy failed its integrity check: {check}"
            )));
        }
        drop(target);
        File::open(&partial)
            .and_then(|f| f.sync_all())
            .map_err(|e| io_error(&partial, e))?;
        std::fs::rename(&partial, dest).map_err(|e| io_error(dest, e))?;
        sync_parent(dest);
        Ok(last)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    source.execute_batch("COMMIT")?;
    result
}

/// Replaces the content of the database at `db` with the backup at `from`, in one
/// transaction of SQLite's backup API (a reader sees the old or the new database, and
/// `-wal`/`-shm` stay consistent). The caller holds [`hold_exclusive`] and has checked
/// `from` with [`inspect`].
pub fn restore(from: &Path, db: &Path, mut progress: impl FnMut(Progress)) -> Result<Progress> {
    let source = Connection::open_with_flags(from, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let page_size = source.query_row("PRAGMA page_size", [], |r| r.get::<_, i64>(0))?;
    let page_size = u64::try_from(page_size).unwrap_or(0);
    if let Some(dir) = db.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::process::private_dir(dir).map_err(|source| StoreError::Directory {
            path: dir.display().to_string(),
            source,
        })?;
    }
    if !db.exists() {
        create_private(db)?;
    }
    let mut target = Connection::open(db)?;
    target.busy_timeout(Duration::from_secs(5))?;
    let last = {
        let copy = rusqlite::backup::Backup::new(&source, &mut target)?;
        copy_all(&copy, page_size, &mut progress)?
    };
    // The backup is in rollback-journal mode and its header came along: billd runs in WAL.
    target.pragma_update(None, "journal_mode", "WAL")?;
    target.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(last)
}

fn copy_all(
    copy: &rusqlite::backup::Backup<'_, '_>,
    page_size: u64,
    progress: &mut impl FnMut(Progress),
) -> Result<Progress> {
    let mut busy = 0;
    loop {
        let step = copy.step(PAGES_PER_STEP)?;
        let p = copy.progress();
        let total = u64::try_from(p.pagecount).unwrap_or(0);
        let remaining = u64::try_from(p.remaining).unwrap_or(0);
        let now = Progress {
            done: total.saturating_sub(remaining),
            total,
            page_size,
        };
        match step {
            StepResult::Done => return Ok(now),
            StepResult::More => progress(now),
            StepResult::Busy | StepResult::Locked => {
                busy += 1;
                if busy > 50 {
                    return Err(StoreError::Conflict(
                        "the database stayed locked during the copy".into(),
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            _ => progress(now),
        }
    }
}

/// `path` with `suffix` added to its file name.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    PathBuf::from(p)
}

/// Creates `path` (which must not exist) readable by its owner only.
fn create_private(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path).map_err(|e| io_error(path, e))?;
    Ok(())
}

fn io_error(path: &Path, source: std::io::Error) -> StoreError {
    StoreError::Directory {
        path: path.display().to_string(),
        source,
    }
}

/// So the rename survives a power cut. Best effort: not every platform syncs directories.
fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = File::open(dir).and_then(|d| d.sync_all());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_is_a_billd_database_and_restores_into_another() {
        let (dir, store) = super::super::test_store();
        let dest = dir.path().join("copy.sqlite");
        backup(store.sqlite_path().unwrap(), &dest, false, |_| {}).unwrap();
        assert!(matches!(
            backup(store.sqlite_path().unwrap(), &dest, false, |_| {}),
            Err(StoreError::Conflict(_))
        ));
        backup(store.sqlite_path().unwrap(), &dest, true, |_| {}).unwrap();
        let seen = inspect(&dest).unwrap();
        assert!(seen.is_ready(), "{seen:?}");
        let other = dir.path().join("other/billd.sqlite");
        let _lock = hold_exclusive(&other).unwrap_or_else(|e| panic!("{e}"));
        restore(&dest, &other, |_| {}).unwrap();
        assert!(inspect(&other).unwrap().is_ready());
    }

    #[test]
    fn a_daemons_shared_lock_refuses_an_exclusive_one_and_vice_versa() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("billd.sqlite");
        let daemon = hold_for_daemon(&db).unwrap();
        let second = hold_for_daemon(&db).unwrap();
        assert!(matches!(hold_exclusive(&db), Err(LockError::InUse(_))));
        drop((daemon, second));
        let restore = hold_exclusive(&db).unwrap();
        assert!(matches!(hold_for_daemon(&db), Err(LockError::InUse(_))));
        drop(restore);
    }

    #[test]
    fn a_file_that_is_not_a_billd_database_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.sqlite");
        Connection::open(&path)
            .unwrap()
            .execute_batch("CREATE TABLE t (x)")
            .unwrap();
        assert!(matches!(inspect(&path), Err(StoreError::Conflict(_))));
        std::fs::write(dir.path().join("junk"), b"not sqlite at all, not at all").unwrap();
        assert!(inspect(&dir.path().join("junk")).is_err());
        assert!(matches!(
            inspect(&dir.path().join("missing")),
            Err(StoreError::NotFound)
        ));
    }
}

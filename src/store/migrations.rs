//! The schema's numbered migrations, one file per number and backend
//! (`migrations/NNNN_*.sql` for SQLite, `migrations/postgres/NNNN_*.sql`), applied in
//! order by one process at a time.
//!
//! SQLite counts applied migrations in `PRAGMA user_version` and serialises appliers
//! with its write lock (`BEGIN IMMEDIATE`); PostgreSQL counts them in
//! `billd_migrations` and serialises appliers with a transaction-scoped advisory lock,
//! so N nodes starting together apply each migration once.

use super::{Backend, Connection, Result, StoreError, db};

struct Migration {
    sqlite: &'static str,
    postgres: &'static str,
    /// Work after the SQL on SQLite (backfills of data an old database already holds;
    /// a PostgreSQL database is always new when it migrates, so has nothing to backfill).
    sqlite_hook: Option<fn(&Connection) -> Result<()>>,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        sqlite: include_str!("../../migrations/0001_init.sql"),
        postgres: include_str!("../../migrations/postgres/0001_init.sql"),
        sqlite_hook: None,
    },
    // The hook derives the timelines of the subscription history it backfills.
    Migration {
        sqlite: include_str!("../../migrations/0002_reports.sql"),
        postgres: include_str!("../../migrations/postgres/0002_reports.sql"),
        sqlite_hook: Some(super::reports::migration_hook),
    },
    Migration {
        sqlite: include_str!("../../migrations/0003_subscription_history_order.sql"),
        postgres: include_str!("../../migrations/postgres/0003_subscription_history_order.sql"),
        sqlite_hook: None,
    },
    Migration {
        sqlite: include_str!("../../migrations/0004_idempotency.sql"),
        postgres: include_str!("../../migrations/postgres/0004_idempotency.sql"),
        sqlite_hook: None,
    },
    Migration {
        sqlite: include_str!("../../migrations/0005_alerts.sql"),
        postgres: include_str!("../../migrations/postgres/0005_alerts.sql"),
        sqlite_hook: None,
    },
    Migration {
        sqlite: include_str!("../../migrations/0006_gap_repair.sql"),
        postgres: include_str!("../../migrations/postgres/0006_gap_repair.sql"),
        sqlite_hook: None,
    },
    Migration {
        sqlite: include_str!("../../migrations/0007_catalog_generation.sql"),
        postgres: include_str!("../../migrations/postgres/0007_catalog_generation.sql"),
        sqlite_hook: None,
    },
    Migration {
        sqlite: include_str!("../../migrations/0008_payment_charge_version.sql"),
        postgres: include_str!("../../migrations/postgres/0008_payment_charge_version.sql"),
        sqlite_hook: None,
    },
    Migration {
        sqlite: include_str!("../../migrations/0009_subscription_versions_customer.sql"),
        postgres: include_str!("../../migrations/postgres/0009_subscription_versions_customer.sql"),
        sqlite_hook: None,
    },
    Migration {
        sqlite: include_str!("../../migrations/0010_discounts.sql"),
        postgres: include_str!("../../migrations/postgres/0010_discounts.sql"),
        sqlite_hook: None,
    },
    Migration {
        sqlite: include_str!("../../migrations/0011_flag_kinds.sql"),
        postgres: include_str!("../../migrations/postgres/0011_flag_kinds.sql"),
        sqlite_hook: None,
    },
    Migration {
        sqlite: include_str!("../../migrations/0012_dashboard_sessions.sql"),
        postgres: include_str!("../../migrations/postgres/0012_dashboard_sessions.sql"),
        sqlite_hook: None,
    },
    Migration {
        sqlite: include_str!("../../migrations/0013_disputes.sql"),
        postgres: include_str!("../../migrations/postgres/0013_disputes.sql"),
        sqlite_hook: None,
    },
    Migration {
        sqlite: include_str!("../../migrations/0014_refund_dispute_account.sql"),
        postgres: include_str!("../../migrations/postgres/0014_refund_dispute_account.sql"),
        sqlite_hook: None,
    },
    Migration {
        sqlite: include_str!("../../migrations/0015_readiness_probe.sql"),
        postgres: include_str!("../../migrations/postgres/0015_readiness_probe.sql"),
        sqlite_hook: None,
    },
    Migration {
        sqlite: include_str!("../../migrations/0016_checkpoints.sql"),
        postgres: include_str!("../../migrations/postgres/0016_checkpoints.sql"),
        sqlite_hook: None,
    },
];

/// Number of the newest migration this binary knows.
pub fn latest_migration() -> usize {
    MIGRATIONS.len()
}

/// The advisory lock key PostgreSQL appliers take ("billd" in ASCII).
const MIGRATION_LOCK: i64 = 0x62_696c_6c64;

/// Applies every pending migration in one transaction; answers how many.
pub(super) fn migrate(conn: &mut Connection) -> Result<usize> {
    migrate_to(conn, latest_migration())
}

/// Applies the pending migrations up to number `target` in one transaction; answers how
/// many. ([`migrate`] for this binary's schema; a smaller `target` makes the database
/// of an older billd, for the upgrade tests.)
pub(super) fn migrate_to(conn: &mut Connection, target: usize) -> Result<usize> {
    let target = target.min(latest_migration());
    let backend = conn.backend();
    let tx = conn.transaction()?;
    if backend == Backend::Postgres {
        // Another node may be migrating a large table: wait for it longer than the
        // session's lock_timeout (the busy timeout) allows a statement.
        tx.execute_batch("SET LOCAL lock_timeout = '10min'")?;
        tx.query_row("SELECT pg_advisory_xact_lock(?1)", [MIGRATION_LOCK], |_| {
            Ok(())
        })?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS billd_migrations (
                 version       BIGINT PRIMARY KEY,
                 applied_at_ms BIGINT NOT NULL
             )",
        )?;
    }
    let before = applied(&tx)?;
    if before > latest_migration() {
        return Err(StoreError::Migration(format!(
            "the database has {before} migrations applied, newer than this billd ({}): \
             upgrade billd",
            latest_migration()
        )));
    }
    for (i, m) in MIGRATIONS.iter().enumerate().take(target).skip(before) {
        let version = i + 1;
        let run = |sql: &str| {
            tx.execute_batch(sql)
                .map_err(|e| StoreError::Migration(format!("migration {version}: {e}")))
        };
        match backend {
            Backend::Sqlite => {
                run(m.sqlite)?;
                if let Some(hook) = m.sqlite_hook {
                    hook(&tx)?;
                }
                run(&format!("PRAGMA user_version = {version}"))?;
            }
            Backend::Postgres => {
                run(m.postgres)?;
                tx.execute(
                    "INSERT INTO billd_migrations (version, applied_at_ms) VALUES (?1, ?2)",
                    crate::params![version as i64, crate::time::now_ms()],
                )?;
            }
        }
    }
    tx.commit()?;
    Ok(target.saturating_sub(before))
}

/// How many migrations the database has applied.
pub(super) fn applied(conn: &Connection) -> Result<usize> {
    let n: i64 = match conn.backend() {
        Backend::Sqlite => conn.query_row("PRAGMA user_version", (), |r| r.get(0))?,
        Backend::Postgres => {
            let exists: bool = conn.query_row(
                "SELECT to_regclass('billd_migrations') IS NOT NULL",
                (),
                |r| r.get(0),
            )?;
            if !exists {
                return Ok(0);
            }
            conn.query_row(
                "SELECT coalesce(max(version), 0) FROM billd_migrations",
                (),
                |r| r.get(0),
            )?
        }
    };
    usize::try_from(n)
        .map_err(|_| StoreError::Database(db::Error::Other(format!("bad schema version {n}"))))
}

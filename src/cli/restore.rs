//! `billd restore PATH [--yes]`: replaces the configured database with a backup.
//!
//! The backup is checked first (a billd database, intact, at a migration this binary
//! knows); then billd asks on a terminal unless `--yes` (without a terminal it never
//! asks and refuses without `--yes`); then it takes the database's lock exclusively,
//! which fails while any `billd serve` runs on it (`store::backup`), and copies.

use std::{
    io::{BufRead, IsTerminal, Write},
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::{Context, bail};

use crate::store::{StoreError, backup, latest_migration};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The backup to restore (made by `billd backup`).
    #[arg(value_name = "PATH")]
    path: PathBuf,
    /// Replace the database without asking (required when stdin is not a terminal).
    #[arg(long)]
    yes: bool,
}

impl Args {
    pub fn run(self, config_path: Option<&Path>) -> anyhow::Result<ExitCode> {
        let config = super::load_config(config_path)?;
        if config.database.url.is_some() {
            bail!(
                "billd restore replaces a SQLite database; on PostgreSQL (database.url) use \
                 pg_restore, or `billd db copy` from a SQLite backup into an empty database"
            );
        }
        let db = &config.database.path;
        let from = &self.path;
        if same_file(from, db) {
            bail!("{} is the configured database itself", from.display());
        }
        let seen = match backup::inspect(from) {
            Ok(seen) => seen,
            Err(StoreError::NotFound) => bail!("no backup at {}", from.display()),
            Err(e) => {
                return Err(e).with_context(|| format!("{} is not a billd backup", from.display()));
            }
        };
        if !seen.intact {
            bail!(
                "{} fails SQLite's integrity check: not restoring it",
                from.display()
            );
        }
        if !self.yes && !confirm(from, db)? {
            eprintln!("not restored");
            return Ok(ExitCode::FAILURE);
        }
        let _lock = backup::hold_exclusive(db).map_err(|e| match e {
            backup::LockError::InUse(_) => {
                anyhow::anyhow!("not restoring: {e}; stop the daemon first (systemctl stop billd)")
            }
            other => anyhow::Error::new(other),
        })?;
        let mut shown = super::backup::Shown::default();
        let done = backup::restore(from, db, |p| shown.show("restore", p))
            .with_context(|| format!("cannot restore {} into {}", from.display(), db.display()))?;
        let pending = latest_migration().saturating_sub(seen.schema_version);
        println!(
            "restored {} from {} ({}, schema version {}{})",
            db.display(),
            from.display(),
            super::backup::size(done.total * done.page_size),
            seen.schema_version,
            if pending > 0 {
                format!(
                    "; {pending} migration(s) pending: billd serve or billd migrate applies them"
                )
            } else {
                String::new()
            }
        );
        Ok(ExitCode::SUCCESS)
    }
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Asks on the terminal; never without one.
fn confirm(from: &Path, db: &Path) -> anyhow::Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "not restoring: stdin is not a terminal, so billd will not ask; pass --yes to replace the database without asking"
        );
    }
    eprint!(
        "replace {} with {}? Everything written since the backup is lost. [y/N] ",
        db.display(),
        from.display()
    );
    std::io::stderr().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

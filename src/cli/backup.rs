//! `billd backup PATH [--force]`: a consistent copy of the database while daemons keep
//! serving (SQLite's online backup API, `store::backup`), created 0600.

use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;

use crate::store::{StoreError, backup};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to write the copy (a single SQLite file, readable by its owner only).
    #[arg(value_name = "PATH")]
    path: PathBuf,
    /// Replace PATH if it exists.
    #[arg(long)]
    force: bool,
}

impl Args {
    pub fn run(self, config_path: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
        let config = super::load_config(config_path)?;
        if config.database.url.is_some() {
            anyhow::bail!(
                "billd backup copies a SQLite database; on PostgreSQL (database.url) use \
                 pg_dump, or `billd db copy --to PATH.sqlite` for a SQLite copy"
            );
        }
        let db = &config.database.path;
        let mut shown = Shown::default();
        let done = match backup::backup(db, &self.path, self.force, |p| shown.show("backup", p)) {
            Ok(done) => done,
            Err(StoreError::NotFound) => {
                anyhow::bail!("no database at {} (database.path)", db.display())
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot back up {} to {}", db.display(), self.path.display())
                });
            }
        };
        println!(
            "backed up {} to {} ({})",
            db.display(),
            self.path.display(),
            size(done.total * done.page_size)
        );
        Ok(ExitCode::SUCCESS)
    }
}

/// Progress on stderr, every tenth, for copies large enough to take a while.
#[derive(Default)]
pub(super) struct Shown {
    tenths: u64,
}

/// Below this a copy takes about a second: no progress lines.
const SHOW_FROM_BYTES: u64 = 64 << 20;

impl Shown {
    pub(super) fn show(&mut self, what: &str, p: backup::Progress) {
        let bytes = p.total * p.page_size;
        if bytes < SHOW_FROM_BYTES || p.total == 0 {
            return;
        }
        let tenths = p.done * 10 / p.total;
        if tenths > self.tenths {
            self.tenths = tenths;
            eprintln!(
                "{what}: {}% ({} of {})",
                tenths * 10,
                size(p.done * p.page_size),
                size(bytes)
            );
        }
    }
}

pub(super) fn size(bytes: u64) -> String {
    const MIB: u64 = 1 << 20;
    if bytes >= MIB {
        format!("{:.1} MiB", bytes as f64 / MIB as f64)
    } else {
        format!("{:.1} KiB", bytes as f64 / 1024.0)
    }
}

//! `billd db copy --to URL`: moves an installation between backends (DESIGN §9).

use std::{path::Path, process::ExitCode, time::Duration};

use anyhow::Context;
use serde::Serialize;

use super::output::{self, Format};
use crate::store::{Store, backup, copy};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Copy every event, mirror row, token, flag and audit row of the configured database
    /// into another (a `postgres://…` URL, or a SQLite file path), keeping event
    /// sequence numbers. Stop every `billd serve` on the source first: what arrives
    /// during the copy is not in it.
    Copy(CopyArgs),
}

#[derive(Debug, clap::Args)]
pub struct CopyArgs {
    /// The target: `postgres://user@host:port/db?sslmode=…` (its password from the
    /// variable `[database] password_env` names) or a SQLite file path.
    #[arg(long, value_name = "URL")]
    to: String,
    /// Empty a target that already holds data before copying into it.
    #[arg(long)]
    replace: bool,
}

#[derive(Serialize)]
struct Copied {
    table: &'static str,
    rows: u64,
}

impl Command {
    pub fn run(self, config_path: Option<&Path>, format: Format) -> anyhow::Result<ExitCode> {
        let Command::Copy(args) = self;
        let config = super::load_config(config_path)?;
        if config.database.url.is_none() && !config.database.path.is_file() {
            anyhow::bail!(
                "no database at {} (database.path)",
                config.database.path.display()
            );
        }
        let source = crate::app::open_store(&config)?;
        let busy = Duration::from_millis(config.database.busy_timeout_ms);
        let (target, target_path) = match args.to.strip_prefix("sqlite:") {
            None if args.to.starts_with("postgres://") || args.to.starts_with("postgresql://") => {
                let password = std::env::var(&config.database.password_env).ok();
                let store = Store::open_postgres(&args.to, password.as_deref(), 2, busy)
                    .with_context(|| {
                        format!(
                            "cannot open the target {}",
                            crate::config::without_credentials(&args.to)
                        )
                    })?;
                (store, None)
            }
            other => {
                let path =
                    Path::new(other.map_or(args.to.as_str(), |p| p.trim_start_matches("//")));
                let store = Store::open(path, 2, busy)
                    .with_context(|| format!("cannot open the target {}", path.display()))?;
                (store, Some(path.to_path_buf()))
            }
        };
        if source.describe() == target.describe() {
            anyhow::bail!("the target is the configured database itself");
        }
        // A daemon writing to a SQLite side would write past the copy (the source) or
        // under it (the target).
        let locks = [source.sqlite_path().map(Path::to_path_buf), target_path]
            .into_iter()
            .flatten()
            .map(|p| {
                backup::hold_exclusive(&p).map_err(|e| match e {
                    backup::LockError::InUse(_) => anyhow::anyhow!(
                        "not copying: {e}; stop the daemon first (systemctl stop billd)"
                    ),
                    other => anyhow::Error::new(other),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        eprintln!("copying {} to {}", source.describe(), target.describe());
        let mut shown_table = "";
        let mut shown_tenths = 0;
        let copied = copy::copy(&source, &target, args.replace, |p| {
            // A line per table, and one per tenth of a large one.
            let tenths = (p.done * 10).checked_div(p.total).unwrap_or(10);
            if p.table != shown_table {
                shown_table = p.table;
                shown_tenths = 0;
                if p.total >= 10_000 {
                    eprintln!("{}: {} rows…", p.table, p.total);
                }
            } else if p.total >= 10_000 && tenths > shown_tenths {
                shown_tenths = tenths;
                eprintln!("{}: {}% ({} of {})", p.table, tenths * 10, p.done, p.total);
            }
        })
        .context("the copy failed (the target may hold part of it: rerun with --replace)")?;
        drop(locks);
        let total: u64 = copied.iter().map(|(_, n)| n).sum();
        eprintln!("copied {total} rows; point [database] at the target to use it");
        let rows: Vec<Copied> = copied
            .into_iter()
            .map(|(table, rows)| Copied { table, rows })
            .collect();
        let table = rows
            .iter()
            .map(|c| vec![c.table.to_string(), c.rows.to_string()])
            .collect();
        output::print_list(
            format,
            &rows,
            output::Rows {
                header: vec!["table", "rows"],
                rows: table,
            },
        )?;
        Ok(ExitCode::SUCCESS)
    }
}

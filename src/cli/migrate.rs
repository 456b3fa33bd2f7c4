//! `billd migrate [--status]`.

use std::{path::Path, process::ExitCode};

use crate::store::latest_migration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only show the schema version; apply nothing.
    #[arg(long)]
    status: bool,
}

impl Args {
    pub fn run(self, config_path: Option<&Path>) -> anyhow::Result<ExitCode> {
        let config = super::load_config(config_path)?;
        let store = crate::app::open_store(&config)?;
        let path = store.describe();
        if self.status {
            let applied = store.applied_migrations()?;
            let latest = latest_migration();
            let state = if applied == latest {
                "up to date".to_string()
            } else if applied < latest {
                format!("{} pending", latest - applied)
            } else {
                "newer than this billd".to_string()
            };
            println!("{path}: schema version {applied} of {latest} ({state})");
            return Ok(ExitCode::SUCCESS);
        }
        let applied = store.migrate()?;
        println!(
            "{path}: applied {applied} migration(s); schema version {}",
            store.applied_migrations()?
        );
        Ok(ExitCode::SUCCESS)
    }
}

//! The command line: one file per subcommand, each an args struct with `run`.
//! Output goes to stdout (table, JSON or CSV), errors to stderr; exit 0 on success,
//! 1 on failure, 2 on a usage error. Nothing asks a question without a terminal.

mod alerts;
mod backup;
mod config_check;
mod db;
mod doctor;
mod events;
mod flags;
pub mod man;
mod migrate;
mod output;
mod plans;
mod refund;
mod report;
mod restore;
mod serve;
mod sync;
mod token;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

pub use output::Format;

/// Stripe billing daemon
///
/// billd receives Stripe webhooks, verifies and stores them durably, applies them to a
/// local SQLite mirror of customers, subscriptions, invoices, payments and more, and
/// serves an authenticated JSON API. Its subcommands are for people and cron jobs.
#[derive(Debug, Parser)]
#[command(
    name = "billd",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    /// Config file (default: $BILLD_CONFIG, ./config/billd.toml, /etc/billd/billd.toml).
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Output format (default: table).
    #[arg(long, global = true, value_enum)]
    pub format: Option<Format>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: webhook endpoint, workers and JSON API (applies pending migrations first).
    Serve(serve::Args),
    /// Apply pending database migrations, or show the schema version with --status.
    Migrate(migrate::Args),
    /// Configuration commands.
    #[command(subcommand)]
    Config(config_check::Command),
    /// Manage API tokens (shown once when made, stored only as hashes).
    #[command(subcommand)]
    Token(token::Command),
    /// Inspect and replay the event inbox.
    #[command(subcommand)]
    Events(events::Command),
    /// Failed payments and risk signals to follow up.
    #[command(subcommand)]
    Flags(flags::Command),
    /// Financial reports from the local mirror: revenue, MRR, subscriptions, failed payments.
    #[command(subcommand)]
    Report(report::Command),
    /// Refund a payment, in full or in part, through Stripe (asks first unless --yes).
    Refund(refund::Args),
    /// Products and prices: copy them from Stripe into the mirror.
    #[command(subcommand)]
    Plans(plans::Command),
    /// Backfill the mirror from Stripe's API: customers, subscriptions, invoices.
    Sync(sync::Args),
    /// Alerts: check that the configured sinks reach a person.
    #[command(subcommand)]
    Alerts(alerts::Command),
    /// Check config, database, disk, clock and the Stripe webhook endpoint (exit 1 on a problem).
    Doctor(doctor::Args),
    /// Copy the database to PATH, consistently, while billd keeps serving.
    Backup(backup::Args),
    /// Replace the database with a backup (refused while a daemon uses it; asks unless --yes).
    Restore(restore::Args),
    /// Move the database between SQLite and PostgreSQL.
    #[command(subcommand)]
    Db(db::Command),
}

/// Parses the command line, runs the command, maps the result to an exit code.
pub fn main() -> ExitCode {
    crate::process::private_umask();
    let cli = Cli::parse();
    let format = cli.format.unwrap_or(Format::Table);
    let result = match cli.command {
        Command::Serve(args) => args.run(cli.config.as_deref()),
        other => {
            crate::telemetry::init_cli();
            match other {
                Command::Serve(_) => unreachable!("handled above"),
                Command::Migrate(args) => args.run(cli.config.as_deref()),
                Command::Config(cmd) => cmd.run(cli.config.as_deref(), format),
                Command::Token(cmd) => cmd.run(cli.config.as_deref(), format),
                Command::Events(cmd) => cmd.run(cli.config.as_deref(), format),
                Command::Flags(cmd) => cmd.run(cli.config.as_deref(), format),
                Command::Report(cmd) => cmd.run(cli.config.as_deref(), format),
                Command::Refund(args) => args.run(cli.config.as_deref(), format),
                Command::Plans(cmd) => cmd.run(cli.config.as_deref(), format),
                Command::Sync(args) => args.run(cli.config.as_deref(), format),
                Command::Alerts(cmd) => cmd.run(cli.config.as_deref(), format),
                Command::Doctor(args) => args.run(cli.config.as_deref(), format),
                Command::Backup(args) => args.run(cli.config.as_deref()),
                Command::Restore(args) => args.run(cli.config.as_deref()),
                Command::Db(cmd) => cmd.run(cli.config.as_deref(), format),
            }
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Loads the config for a subcommand, with the path at fault in the error.
fn load_config(path: Option<&std::path::Path>) -> anyhow::Result<crate::config::Config> {
    Ok(crate::config::Config::load(path)?)
}

/// Opens and migrates the configured database for a one-shot command.
fn open_store(config: &crate::config::Config) -> anyhow::Result<crate::store::Store> {
    let store = crate::app::open_store(config)?;
    store.migrate()?;
    Ok(store)
}

/// The Stripe client of a subcommand that calls Stripe: `[stripe]` from the config,
/// the API key from the environment (no webhook secret needed).
fn stripe_client(config: &crate::config::Config) -> anyhow::Result<crate::stripe::Client> {
    let key = config.stripe_key_from_env()?;
    Ok(crate::stripe::Client::from_config(&config.stripe, &key)?)
}

/// The async runtime of a subcommand that calls Stripe (one thread is plenty).
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    use anyhow::Context;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// A Stripe failure for the operator: the kind, and Stripe's own message and request
/// id when it answered (the terminal may see what the logs must not).
fn stripe_failure(what: &str, e: crate::stripe::StripeError) -> anyhow::Error {
    let mut text = format!("{what}: {e}");
    if let Some(message) = e.message() {
        text.push_str(": ");
        text.push_str(message);
    }
    if let Some(id) = e.request_id() {
        text.push_str(&format!(" (Stripe request {id})"));
    }
    anyhow::anyhow!(text)
}

//! `billd alerts test`: one test alert to every configured sink, and what each answered.

use std::{path::Path, process::ExitCode};

use serde_json::json;

use super::{Format, output};
use crate::alerts::{Alert, Sinks};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Send one test alert to every configured sink ([alerts] webhook_url or
    /// webhook_url_env, command) and print what each answered. Exit 0 only if every
    /// configured sink accepted it; 1 if one did not, or if no sink is configured.
    Test,
}

impl Command {
    pub fn run(self, config_path: Option<&Path>, format: Format) -> anyhow::Result<ExitCode> {
        let config = super::load_config(config_path)?;
        let url = config.alerts.webhook_url(|name| std::env::var(name).ok())?;
        let sinks = Sinks::new(&config.alerts, url)?;
        if sinks.is_empty() {
            anyhow::bail!(
                "no alert sink is configured: set [alerts] webhook_url, webhook_url_env or command"
            );
        }
        // One attempt each, no retries: the operator wants to know now.
        let answers = super::runtime()?.block_on(sinks.send_once(&Alert::test()));
        let rows: Vec<Vec<String>> = answers
            .iter()
            .map(|a| {
                vec![
                    a.sink.to_string(),
                    if a.accepted { "accepted" } else { "failed" }.to_string(),
                    a.detail.clone(),
                ]
            })
            .collect();
        let items: Vec<_> = answers
            .iter()
            .map(|a| json!({ "sink": a.sink, "accepted": a.accepted, "answer": a.detail }))
            .collect();
        output::print_list(
            format,
            &items,
            output::Rows {
                header: vec!["sink", "result", "answer"],
                rows,
            },
        )?;
        if answers.iter().all(|a| a.accepted) {
            Ok(ExitCode::SUCCESS)
        } else {
            eprintln!("error: not every configured alert sink accepted the test alert");
            Ok(ExitCode::FAILURE)
        }
    }
}

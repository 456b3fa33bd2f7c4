//! `billd config check`: validates the file and the environment, prints what billd would
//! use (secrets masked).

use std::{path::Path, process::ExitCode};

use secrecy::ExposeSecret;
use serde_json::json;

use super::{Format, output};
use crate::config::Config;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Validate the config file and environment; print the settings in use (secrets masked).
    Check,
}

impl Command {
    pub fn run(self, config_path: Option<&Path>, format: Format) -> anyhow::Result<ExitCode> {
        let config = Config::load(config_path)?;
        let secrets = config.secrets_from_env()?;
        let source = config
            .source
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let fields = vec![
            ("config file", source),
            ("server.listen", config.server.listen.to_string()),
            match &config.database.url {
                // The user and password of a URL are never shown.
                Some(url) => ("database.url", crate::config::without_credentials(url)),
                None => ("database.path", config.database.path.display().to_string()),
            },
            (
                "stripe.mode",
                format!("{:?}", config.stripe.mode).to_lowercase(),
            ),
            (
                "stripe.api_base",
                crate::config::without_credentials(&config.stripe.api_base),
            ),
            (
                "stripe secret key",
                format!(
                    "{} = {}",
                    config.stripe.secret_key_env,
                    secrets.describe_key()
                ),
            ),
            (
                "webhook secrets",
                format!(
                    "{} = {}",
                    config.stripe.webhook_secret_env,
                    secrets.describe_webhook_secrets()
                ),
            ),
            (
                "stripe.webhook_tolerance_secs",
                config.stripe.webhook_tolerance_secs.to_string(),
            ),
            ("workers.count", config.workers.count.to_string()),
            (
                "workers.max_attempts",
                config.workers.max_attempts.to_string(),
            ),
            (
                "alerts.webhook",
                match (
                    &secrets.alert_webhook_url,
                    config.alerts.webhook_url_env.as_str(),
                ) {
                    (None, _) => "none".to_string(),
                    (Some(url), "") => crate::config::mask_url(url.expose_secret()),
                    (Some(url), var) => {
                        format!("{var} = {}", crate::config::mask_url(url.expose_secret()))
                    }
                },
            ),
            (
                "alerts.command",
                config
                    .alerts
                    .command
                    .first()
                    .map_or("none".to_string(), |p| p.clone()),
            ),
            ("log.level", config.log.level.clone()),
            ("log.dir", config.log.dir.display().to_string()),
        ];
        let json = json!(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone())))
                .collect::<serde_json::Map<_, _>>()
        );
        output::print_one(format, &json, fields)?;
        eprintln!("config OK");
        Ok(ExitCode::SUCCESS)
    }
}

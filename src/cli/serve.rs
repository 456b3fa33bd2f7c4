//! `billd serve`.

use std::{path::Path, process::ExitCode};

use anyhow::Context;

use crate::{app::App, config::Config};

#[derive(Debug, clap::Args)]
pub struct Args {}

impl Args {
    pub fn run(self, config_path: Option<&Path>) -> anyhow::Result<ExitCode> {
        let config = Config::load(config_path)?;
        let secrets = config.secrets_from_env()?;
        // Still one thread: logging and the runtime start theirs below.
        let names = [
            config.stripe.secret_key_env.as_str(),
            config.stripe.webhook_secret_env.as_str(),
            config.alerts.webhook_url_env.as_str(),
        ];
        // An unset `webhook_url_env` is "": removing "" would panic.
        let names: Vec<&str> = names.into_iter().filter(|n| !n.is_empty()).collect();
        crate::process::clear_env(&names);
        let _guard = crate::telemetry::init_daemon(&config.log)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("billd")
            .build()
            .context("cannot start the async runtime")?;
        runtime.block_on(async move {
            let app = App::build(config, &secrets).await?;
            app.run_until(crate::app::shutdown_signal()).await
        })?;
        Ok(ExitCode::SUCCESS)
    }
}

//! `billd token create|list|revoke`.

use std::{path::Path, process::ExitCode};

use anyhow::Context;
use serde::Serialize;

use super::{Format, output};
use crate::{
    store::{
        StoreError, audit,
        tokens::{self, Scope},
    },
    time::{now_secs, rfc3339},
};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ScopeArg {
    Read,
    Write,
    Admin,
}

impl From<ScopeArg> for Scope {
    fn from(s: ScopeArg) -> Scope {
        match s {
            ScopeArg::Read => Scope::Read,
            ScopeArg::Write => Scope::Write,
            ScopeArg::Admin => Scope::Admin,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Make a token; it is printed once and stored only as a hash.
    Create {
        /// A name saying who or what uses the token.
        #[arg(long, value_parser = non_empty)]
        name: String,
        /// read: GET routes; write: also creates and updates; admin: also refunds, replays, tokens.
        #[arg(long, value_enum)]
        scope: ScopeArg,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id; it stops working at once.
    Revoke {
        /// The token id (tok_…).
        id: String,
    },
}

fn non_empty(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(s.to_string())
    }
}

#[derive(Serialize)]
struct Created<'a> {
    id: &'a str,
    name: &'a str,
    scope: Scope,
    token: &'a str,
}

impl Command {
    pub fn run(self, config_path: Option<&Path>, format: Format) -> anyhow::Result<ExitCode> {
        let config = super::load_config(config_path)?;
        let store = super::open_store(&config)?;
        let mut conn = store.conn()?;
        let operator = audit::operator();
        match self {
            Command::Create { name, scope } => {
                let tx = conn.transaction()?;
                let made = tokens::create(&tx, &name, scope.into(), now_secs())?;
                audit::record(
                    &tx,
                    &operator,
                    "token.create",
                    Some(&made.info.id),
                    Some(made.info.scope.as_str()),
                    now_secs(),
                )?;
                tx.commit()?;
                let created = Created {
                    id: &made.info.id,
                    name: &made.info.name,
                    scope: made.info.scope,
                    token: &made.token,
                };
                output::print_one(
                    format,
                    &created,
                    vec![
                        ("id", made.info.id.clone()),
                        ("name", made.info.name.clone()),
                        ("scope", made.info.scope.as_str().into()),
                        ("token", made.token.clone()),
                    ],
                )?;
                eprintln!("Store the token now: it cannot be shown again.");
            }
            Command::List => {
                let list = tokens::list(&conn)?;
                let rows = list
                    .iter()
                    .map(|t| {
                        vec![
                            t.id.clone(),
                            t.name.clone(),
                            t.scope.as_str().into(),
                            rfc3339(t.created_at),
                            t.revoked_at.map(rfc3339).unwrap_or_default(),
                        ]
                    })
                    .collect();
                output::print_list(
                    format,
                    &list,
                    output::Rows {
                        header: vec!["id", "name", "scope", "created_at", "revoked_at"],
                        rows,
                    },
                )?;
            }
            Command::Revoke { id } => {
                let tx = conn.transaction()?;
                match tokens::revoke(&tx, &id, now_secs()) {
                    Err(StoreError::NotFound) => anyhow::bail!("no token with id {id}"),
                    other => other.context("cannot revoke the token")?,
                }
                audit::record(&tx, &operator, "token.revoke", Some(&id), None, now_secs())?;
                tx.commit()?;
                eprintln!("revoked {id}");
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

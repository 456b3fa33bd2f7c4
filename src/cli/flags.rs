//! `billd flags list [--status open|resolved] [--kind K]` and `billd flags resolve ID`.

use std::{path::Path, process::ExitCode};

use super::{Format, output};
use crate::{
    store::{StoreError, audit, flags},
    time::{now_secs, rfc3339},
};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum FlagStatus {
    Open,
    Resolved,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List flags, newest first.
    List {
        /// Only flags with this status.
        #[arg(long, value_enum)]
        status: Option<FlagStatus>,
        /// Only flags of this kind.
        #[arg(long, value_parser = parse_kind)]
        kind: Option<flags::Kind>,
        /// How many flags (1 to 100).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=100))]
        limit: u16,
    },
    /// Mark a flag as followed up.
    Resolve {
        /// The flag id.
        id: i64,
    },
}

fn parse_kind(s: &str) -> Result<flags::Kind, String> {
    flags::Kind::parse(s).ok_or_else(|| {
        let kinds: Vec<&str> = flags::Kind::ALL.iter().map(|k| k.as_str()).collect();
        format!("expected one of {}", kinds.join(", "))
    })
}

impl Command {
    pub fn run(self, config_path: Option<&Path>, format: Format) -> anyhow::Result<ExitCode> {
        let config = super::load_config(config_path)?;
        let store = super::open_store(&config)?;
        let mut conn = store.conn()?;
        match self {
            Command::List {
                status,
                kind,
                limit,
            } => {
                let status = status.map(|s| match s {
                    FlagStatus::Open => "open",
                    FlagStatus::Resolved => "resolved",
                });
                let (list, _) = flags::list_of_kind(&conn, status, kind, usize::from(limit), None)?;
                let rows = list
                    .iter()
                    .map(|f| {
                        vec![
                            f.id.to_string(),
                            f.kind.clone(),
                            f.object_id.clone(),
                            output::cell(&f.customer),
                            f.status.clone(),
                            rfc3339(f.created),
                            f.detail.clone(),
                        ]
                    })
                    .collect();
                output::print_list(
                    format,
                    &list,
                    output::Rows {
                        header: vec![
                            "id",
                            "kind",
                            "object_id",
                            "customer",
                            "status",
                            "created",
                            "detail",
                        ],
                        rows,
                    },
                )?;
            }
            Command::Resolve { id } => {
                let operator = audit::operator();
                let tx = conn.transaction()?;
                let flag = match flags::resolve(&tx, id, &operator, now_secs()) {
                    Err(StoreError::NotFound) => anyhow::bail!("no flag with id {id}"),
                    other => other?,
                };
                audit::record(
                    &tx,
                    &operator,
                    "flag.resolve",
                    Some(&id.to_string()),
                    None,
                    now_secs(),
                )?;
                tx.commit()?;
                output::print_one(
                    format,
                    &flag,
                    vec![
                        ("id", flag.id.to_string()),
                        ("kind", flag.kind.clone()),
                        ("object_id", flag.object_id.clone()),
                        ("status", flag.status.clone()),
                        ("resolved_by", output::cell(&flag.resolved_by)),
                    ],
                )?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

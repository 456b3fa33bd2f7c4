//! `billd sync customers|subscriptions|invoices|all`: backfills the mirror from
//! Stripe's list endpoints, a page (100 objects) per transaction, with progress on
//! stderr.
//!
//! Safe to interrupt and run again: a run continues after the last page an interrupted
//! run committed (its checkpoint, saved with the page; `--restart` starts over), and
//! every object is an upsert by id through the same
//! `write_*` functions as the webhooks and the write-through, under the ordering rule
//! with the version of an API answer of now (`created` = now, `seq` = 0). What Stripe
//! lists now is at least as new as any event created before now, so a late or replayed
//! older event cannot regress it, while the webhook of a change made after the listing
//! (created at or after now, with a positive inbox sequence) still applies. The
//! objects' own `created` would not do: it is when the object was made, older than
//! every update since. Deleted (and ended) objects stay so. Subscriptions are listed
//! with `status=all`, canceled ones included; one without a history gets the one the
//! reports need (from its start date, as the migration does for mirrored rows).

use std::{path::Path, process::ExitCode};

use crate::store::db::Connection;
use anyhow::Context;
use serde::Serialize;

use super::{Format, output};
use crate::{
    events::{self, ApplyError, Origin},
    objects::parse_json,
    store::{
        checkpoints,
        mirror::{self, Table},
        reports,
    },
    stripe::list::{self, Listed, Query},
    time::now_secs,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum What {
    Customers,
    Subscriptions,
    Invoices,
    /// Customers, then subscriptions, then invoices.
    All,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to copy from Stripe into the mirror.
    #[arg(value_enum)]
    what: What,
    /// Start from the first page, not after the last page an interrupted run wrote.
    #[arg(long)]
    restart: bool,
}

/// One resource billd can backfill.
struct Resource {
    name: &'static str,
    op: &'static str,
    path: &'static str,
    status: Option<&'static str>,
    table: Table,
    write: fn(&Connection, &str, Origin<'_>) -> Result<(), ApplyError>,
}

const CUSTOMERS: Resource = Resource {
    name: "customers",
    op: "customers.list",
    path: "/customers",
    status: None,
    table: Table::Customers,
    write: events::write_customer,
};

const SUBSCRIPTIONS: Resource = Resource {
    name: "subscriptions",
    op: "subscriptions.list",
    path: "/subscriptions",
    status: Some("all"),
    table: Table::Subscriptions,
    write: write_subscription,
};

/// A subscription, and a history for the reports when it has none: without one, a
/// subscription known only from the backfill would be missing from `report mrr`.
fn write_subscription(conn: &Connection, raw: &str, origin: Origin<'_>) -> Result<(), ApplyError> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: String,
    }
    events::write_subscription(conn, raw, origin)?;
    let Id { id } = parse_json(raw, "subscription")?;
    reports::seed_history(conn, &id)?;
    Ok(())
}

const INVOICES: Resource = Resource {
    name: "invoices",
    op: "invoices.list",
    path: "/invoices",
    status: None,
    table: Table::Invoices,
    write: events::write_invoice,
};

/// What one resource's backfill did.
#[derive(Debug, Serialize)]
struct Synced {
    resource: &'static str,
    /// Objects listed and written.
    synced: u64,
    /// Of those, the ones the mirror did not have.
    new: u64,
}

impl Args {
    pub fn run(self, config_path: Option<&Path>, format: Format) -> anyhow::Result<ExitCode> {
        let config = super::load_config(config_path)?;
        let client = super::stripe_client(&config)?;
        let store = super::open_store(&config)?;
        let runtime = super::runtime()?;
        let resources = match self.what {
            What::Customers => vec![CUSTOMERS],
            What::Subscriptions => vec![SUBSCRIPTIONS],
            What::Invoices => vec![INVOICES],
            What::All => vec![CUSTOMERS, SUBSCRIPTIONS, INVOICES],
        };
        let mut results = Vec::new();
        for r in resources {
            let mut done = Synced {
                resource: r.name,
                synced: 0,
                new: 0,
            };
            let mut query = Query {
                status: r.status,
                ..Query::default()
            };
            let job = format!("sync {}", r.name);
            let resumed = {
                let conn = store.conn()?;
                if self.restart {
                    checkpoints::clear(&conn, &job)?;
                }
                checkpoints::get(&conn, &job)?
            };
            if let Some(at) = resumed {
                eprintln!(
                    "continuing an interrupted sync of {} after {} already synced \
                     (--restart starts over)",
                    r.name, at.done
                );
                done.synced = at.done;
                query.starting_after = Some(at.cursor);
            }
            let listed = runtime.block_on(list::each_page(&client, r.op, r.path, query, |page| {
                let origin = Origin::api_response(now_secs(), client.livemode());
                let total = done.synced + page.len() as u64;
                // Blocking database work inside the async listing: on a thread of its own.
                let new = crate::store::db::off_runtime(|| {
                    write_page(&store, &r, &page, origin, (&job, total))
                })
                .with_context(|| format!("cannot write {} to the mirror", r.name))?;
                done.synced = total;
                done.new += new;
                if !page.is_empty() {
                    eprintln!("synced {} {}…", done.synced, r.name);
                }
                Ok(true)
            }));
            if let Err(e) = listed {
                eprintln!(
                    "stopped after {} {} (run it again to continue from there)",
                    done.synced, r.name
                );
                return Err(e.context(format!("cannot sync {}", r.name)));
            }
            checkpoints::clear(&*store.conn()?, &job)?;
            eprintln!("synced {} {} ({} new)", done.synced, r.name, done.new);
            results.push(done);
        }
        let rows = results
            .iter()
            .map(|s| {
                vec![
                    s.resource.to_string(),
                    s.synced.to_string(),
                    s.new.to_string(),
                ]
            })
            .collect();
        output::print_list(
            format,
            &results,
            output::Rows {
                header: vec!["resource", "synced", "new"],
                rows,
            },
        )?;
        Ok(ExitCode::SUCCESS)
    }
}

/// Writes one page and the job's checkpoint after it (`job`, the objects written with
/// this page) in one transaction; answers how many objects were new.
fn write_page(
    store: &crate::store::Store,
    r: &Resource,
    page: &[Listed],
    origin: Origin<'static>,
    (job, total): (&str, u64),
) -> anyhow::Result<u64> {
    let mut conn = store.conn()?;
    let tx = conn.transaction_with_behavior(crate::store::TransactionBehavior::Immediate)?;
    let mut new = 0;
    for object in page {
        if mirror::column(&tx, r.table, &object.id, "id")?.is_none() {
            new += 1;
        }
        (r.write)(&tx, &object.raw, origin)?;
    }
    if let Some(last) = page.last() {
        checkpoints::save(&tx, job, &last.id, total, crate::time::now_ms())?;
    }
    tx.commit()?;
    Ok(new)
}

//! `billd events list` and `billd events replay`.

use std::{io::IsTerminal, path::Path, process::ExitCode};

use serde::Serialize;

use super::{Format, output};
use crate::{
    events::EnvelopeHeader,
    http::api::events::EventView,
    store::{
        StoreError, audit, checkpoints,
        events::{self as inbox, Filter, Inserted, Status},
    },
    stripe::list::{self, Created, Query},
    time::{now_ms, parse_time, rfc3339, rfc3339_ms},
    worker::{Step, Worker},
};

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum StatusArg {
    Pending,
    Processed,
    Failed,
    Dead,
    Ignored,
}

impl From<StatusArg> for Status {
    fn from(s: StatusArg) -> Status {
        match s {
            StatusArg::Pending => Status::Pending,
            StatusArg::Processed => Status::Processed,
            StatusArg::Failed => Status::Failed,
            StatusArg::Dead => Status::Dead,
            StatusArg::Ignored => Status::Ignored,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List stored events, newest first.
    List {
        /// Only events with this status.
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        /// Only events of this type (e.g. invoice.paid).
        #[arg(long = "type", value_name = "TYPE")]
        type_: Option<String>,
        /// How many events (1 to 100).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=100))]
        limit: u16,
        /// Print the list again every SECS seconds (2 if not given) until interrupted:
        /// for watching an incident.
        #[arg(long, value_name = "SECS", num_args = 0..=1, default_missing_value = "2",
              value_parser = clap::value_parser!(u64).range(1..=3600))]
        watch: Option<u64>,
    },
    /// Apply stored events again, now. Replaying an applied event never doubles its
    /// effect: newer state is kept, and a payment is one row however often it is applied.
    Replay(ReplayArgs),
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("which").required(true).multiple(true).args(["ids", "failed", "dead", "since", "from_stripe"])))]
pub struct ReplayArgs {
    /// Event ids (evt_…).
    #[arg(conflicts_with_all = ["failed", "dead", "since", "from_stripe"])]
    ids: Vec<String>,
    /// Every event that failed and is waiting for a retry.
    #[arg(long, conflicts_with_all = ["dead", "from_stripe"])]
    failed: bool,
    /// Every dead event (failed workers.max_attempts times).
    #[arg(long, conflicts_with = "from_stripe")]
    dead: bool,
    /// Every event received at or after TIME (RFC 3339, a date, or unix seconds);
    /// with --failed or --dead, only those; with --from-stripe, the events Stripe
    /// created at or after TIME.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    since: Option<i64>,
    /// Fetch the events from Stripe's API (it keeps 30 days), store those the inbox
    /// lacks and apply them: recovery after webhooks were missed.
    #[arg(long)]
    from_stripe: bool,
}

/// A `--from-stripe` event the inbox lacked.
#[derive(Serialize)]
struct Fetched {
    id: String,
    #[serde(rename = "type")]
    type_: String,
    result: String,
    last_error: Option<String>,
}

#[derive(Serialize)]
struct FromStripe {
    fetched: usize,
    new: usize,
    already_present: usize,
    events: Vec<Fetched>,
}

#[derive(Serialize)]
struct Replayed {
    id: String,
    result: String,
    last_error: Option<String>,
}

impl Command {
    pub fn run(self, config_path: Option<&Path>, format: Format) -> anyhow::Result<ExitCode> {
        let config = super::load_config(config_path)?;
        let store = super::open_store(&config)?;
        match self {
            Command::List {
                status,
                type_,
                limit,
                watch,
            } => {
                let filter = Filter {
                    status: status.map(Status::from),
                    type_,
                    account: None,
                    since_ms: None,
                    limit: usize::from(limit),
                    starting_after: None,
                };
                let Some(every) = watch else {
                    print_events(&store, &filter, format)?;
                    return Ok(ExitCode::SUCCESS);
                };
                let terminal = std::io::stdout().is_terminal();
                loop {
                    if terminal {
                        // Clear the screen and go home, so the list replaces itself.
                        print!("\x1b[2J\x1b[H");
                    }
                    println!(
                        "billd events list, every {every} s: {}",
                        rfc3339(now_ms() / 1000)
                    );
                    print_events(&store, &filter, format)?;
                    std::io::Write::flush(&mut std::io::stdout())?;
                    std::thread::sleep(std::time::Duration::from_secs(every));
                }
            }
            Command::Replay(args) if args.from_stripe => {
                from_stripe(&config, &store, args.since, format)
            }
            Command::Replay(args) => {
                let ids = if args.ids.is_empty() {
                    let status = if args.failed {
                        Some(Status::Failed)
                    } else if args.dead {
                        Some(Status::Dead)
                    } else {
                        None
                    };
                    inbox::select_for_replay(&*store.conn()?, status, args.since.map(|s| s * 1000))?
                } else {
                    args.ids
                };
                let worker = Worker::new(store.clone(), config.workers.clone(), config.stripe.mode);
                let operator = audit::operator();
                let progress = std::io::stderr().is_terminal() && ids.len() > 20;
                let mut results = Vec::with_capacity(ids.len());
                let mut ok = true;
                for (i, id) in ids.iter().enumerate() {
                    let result = replay_one(&store, &worker, &operator, id);
                    let (result, last_error) = match result {
                        Ok(pair) => pair,
                        Err(StoreError::NotFound) => ("not found".to_string(), None),
                        Err(e) => return Err(e.into()),
                    };
                    ok &= matches!(result.as_str(), "processed" | "ignored" | "queued");
                    results.push(Replayed {
                        id: id.clone(),
                        result,
                        last_error,
                    });
                    if progress && (i + 1) % 100 == 0 {
                        eprintln!("replayed {}/{}", i + 1, ids.len());
                    }
                }
                let rows = results
                    .iter()
                    .map(|r| vec![r.id.clone(), r.result.clone(), output::cell(&r.last_error)])
                    .collect();
                output::print_list(
                    format,
                    &results,
                    output::Rows {
                        header: vec!["id", "result", "last_error"],
                        rows,
                    },
                )?;
                eprintln!("replayed {} event(s)", results.len());
                Ok(if ok {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                })
            }
        }
    }
}

/// Requeues one event and applies it at once; if a running daemon claims it first,
/// it is reported as `queued`.
fn replay_one(
    store: &crate::store::Store,
    worker: &Worker,
    operator: &str,
    id: &str,
) -> Result<(String, Option<String>), StoreError> {
    let seq = {
        let mut conn = store.conn()?;
        let tx = conn.transaction()?;
        let seq = inbox::requeue(&tx, id, now_ms())?;
        audit::record(
            &tx,
            operator,
            "event.replay",
            Some(id),
            None,
            now_ms() / 1000,
        )?;
        tx.commit()?;
        seq
    };
    let step = worker.apply_seq(seq)?;
    let row = inbox::get(&*store.conn()?, id)?;
    Ok(match step {
        // A running daemon claimed it first, or is applying an event of its object.
        Step::Idle | Step::Busy { .. } => ("queued".into(), None),
        _ => (row.status.as_str().into(), row.last_error),
    })
}

/// `events replay --from-stripe`: pages through Stripe's `/v1/events` (`created[gte]`
/// = `since`), stores the events the inbox lacks (skipping ids it has, the raw
/// event as the payload: it came from Stripe over TLS with billd's key, so there is no
/// signature to check), oldest first, and applies the new ones at once (a running
/// daemon may claim some first: `queued`).
fn from_stripe(
    config: &crate::config::Config,
    store: &crate::store::Store,
    since: Option<i64>,
    format: Format,
) -> anyhow::Result<ExitCode> {
    let client = super::stripe_client(config)?;
    let runtime = super::runtime()?;
    let mut query = Query {
        created: since.map(|gte| Created { gte }),
        ..Query::default()
    };
    // An interrupted run of the same fetch continues after the last page it stored.
    let job = format!("events from stripe since {}", since.unwrap_or(0));
    let mut fetched = 0;
    let resumed = checkpoints::get(&*store.conn()?, &job)?;
    if let Some(at) = &resumed {
        eprintln!(
            "continuing an interrupted fetch after {} event(s) already fetched",
            at.done
        );
        fetched = at.done as usize;
        query.starting_after = Some(at.cursor.clone());
    }
    // Stripe lists newest first, a page at a time; each page is stored (oldest first,
    // so that events of one second keep their order) with the checkpoint after it.
    let mut new = Vec::new();
    let listed = runtime.block_on(list::each_page(
        &client,
        "events.list",
        "/events",
        query,
        |page| {
            let Some(cursor) = page.last().map(|e| e.id.clone()) else {
                return Ok(true);
            };
            let mut events = page
                .into_iter()
                .map(|e| {
                    let header: EnvelopeHeader = crate::objects::parse_json(&e.raw, "event")?;
                    Ok((header, e.raw))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            events.sort_by_key(|(header, _)| header.created);
            fetched += events.len();
            let total = fetched as u64;
            let stored = crate::store::db::off_runtime(|| {
                let mut conn = store.conn()?;
                let tx =
                    conn.transaction_with_behavior(crate::store::TransactionBehavior::Immediate)?;
                let mut stored = Vec::new();
                for (header, payload) in events {
                    let event = header.into_new_event(payload);
                    if inbox::insert(&tx, &event, now_ms())? == Inserted::New {
                        stored.push((event.id, event.type_));
                    }
                }
                checkpoints::save(&tx, &job, &cursor, total, now_ms())?;
                tx.commit()?;
                Ok::<_, StoreError>(stored)
            })?;
            new.extend(stored);
            eprintln!("fetched {fetched} event(s)…");
            Ok(true)
        },
    ));
    if let Err(e) = listed {
        eprintln!(
            "stopped after {fetched} event(s) (run the same command again to continue from there)"
        );
        return Err(e.context("cannot list Stripe's events"));
    }
    {
        let mut conn = store.conn()?;
        let tx = conn.transaction_with_behavior(crate::store::TransactionBehavior::Immediate)?;
        checkpoints::clear(&tx, &job)?;
        audit::record(
            &tx,
            &audit::operator(),
            "events.from_stripe",
            None,
            Some(&format!(
                "fetched {fetched}, {} new{}{}",
                new.len(),
                since
                    .map(|s| format!(", since {}", rfc3339(s)))
                    .unwrap_or_default(),
                if resumed.is_some() {
                    ", continuing an interrupted fetch"
                } else {
                    ""
                }
            )),
            now_ms() / 1000,
        )?;
        tx.commit()?;
    }

    let worker = Worker::new(store.clone(), config.workers.clone(), config.stripe.mode);
    let mut ok = true;
    let mut results = Vec::with_capacity(new.len());
    for (id, type_) in new {
        let seq = inbox::get(&*store.conn()?, &id)?.seq;
        let step = worker.apply_seq(seq)?;
        let row = inbox::get(&*store.conn()?, &id)?;
        let (result, last_error) = match step {
            Step::Idle | Step::Busy { .. } => ("queued".to_string(), None),
            _ => (row.status.as_str().to_string(), row.last_error),
        };
        ok &= matches!(result.as_str(), "processed" | "ignored" | "queued");
        results.push(Fetched {
            id,
            type_,
            result,
            last_error,
        });
    }
    if resumed.is_some() {
        // What the interrupted run stored and nobody applied yet (a running daemon may
        // have): applied now, as a daemon would.
        let mut applied = 0;
        loop {
            let steps = worker.step_batch(64)?;
            if steps.is_empty() {
                break;
            }
            applied += steps.len();
        }
        eprintln!("applied {applied} waiting event(s), including those the interrupted run stored");
    }
    let summary = FromStripe {
        fetched,
        new: results.len(),
        already_present: fetched - results.len(),
        events: results,
    };
    match format {
        Format::Json => {
            println!("{}", serde_json::to_string_pretty(&summary)?);
        }
        _ => {
            let rows = summary
                .events
                .iter()
                .map(|e| {
                    vec![
                        e.id.clone(),
                        e.type_.clone(),
                        e.result.clone(),
                        output::cell(&e.last_error),
                    ]
                })
                .collect();
            output::print_list(
                format,
                &summary.events,
                output::Rows {
                    header: vec!["id", "type", "result", "last_error"],
                    rows,
                },
            )?;
        }
    }
    eprintln!(
        "fetched {} event(s) from Stripe: {} new, {} already present",
        summary.fetched, summary.new, summary.already_present
    );
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Prints one page of the inbox.
fn print_events(
    store: &crate::store::Store,
    filter: &Filter,
    format: Format,
) -> anyhow::Result<()> {
    let conn = store.conn()?;
    let (rows, _) = inbox::list(&conn, filter)?;
    let table = rows
        .iter()
        .map(|e| {
            vec![
                e.id.clone(),
                e.type_.clone(),
                e.status.as_str().into(),
                e.attempts.to_string(),
                rfc3339(e.created),
                rfc3339_ms(e.received_at_ms),
                output::cell(&e.account),
                output::cell(&e.last_error),
            ]
        })
        .collect();
    let views: Vec<EventView> = rows.into_iter().map(EventView::from).collect();
    output::print_list(
        format,
        &views,
        output::Rows {
            header: vec![
                "id",
                "type",
                "status",
                "attempts",
                "created",
                "received_at",
                "account",
                "last_error",
            ],
            rows: table,
        },
    )
}

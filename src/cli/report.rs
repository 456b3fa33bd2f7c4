//! `billd report revenue|mrr|subscriptions|failed-payments|mrr-movements|retention`: the financial reports for
//! people and cron, read from the local database (the daemon need not run).
//!
//! Tables and CSV show amounts in major units with the currency's own decimals
//! (12.50, 1200 for JPY) and the upper-case currency; `--format json` prints the API's
//! rows with integer minor units. An empty report exits 0: the table says "no data",
//! CSV prints its header.

use std::{path::Path, process::ExitCode};

use super::{Format, output};
use crate::{
    ids,
    report::{
        self, Basis, FailedPaymentsRow, Interval, MrrMovementRow, MrrRow, RangeQuery, RetentionRow,
        RevenueRow, SubscriptionsRow, money::format_major, parse_currency,
    },
    time::{now_secs, parse_time, rfc3339},
};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Gross, refunded and net revenue, succeeded and failed payments, per period and currency.
    Revenue(RangeArgs),
    /// MRR and ARR per currency at a time (default now), from active and past-due subscriptions.
    Mrr(MrrArgs),
    /// New and canceled subscriptions, net change and churn rate per period.
    Subscriptions(RangeArgs),
    /// Failed payments and open payment-failed flags per period, with the customers to follow up.
    FailedPayments(RangeArgs),
    /// MRR movements per period and currency: new, expansion, contraction, churned, reactivation.
    MrrMovements(MrrRangeArgs),
    /// Net and gross revenue retention, ARPA and paying customers per period and currency.
    Retention(MrrRangeArgs),
}

/// The range of a report made of MRR, which may also be asked before discounts.
#[derive(Debug, clap::Args)]
pub struct MrrRangeArgs {
    #[command(flatten)]
    range: RangeArgs,
    /// MRR before discounts (coupons) instead of net of them.
    #[arg(long)]
    gross: bool,
}

#[derive(Debug, clap::Args)]
pub struct RangeArgs {
    /// Start, inclusive: RFC 3339, a date (midnight UTC) or unix seconds [default: the first data].
    #[arg(long, value_name = "DATE", value_parser = parse_time)]
    from: Option<i64>,
    /// End, exclusive: RFC 3339, a date (midnight UTC) or unix seconds [default: now].
    #[arg(long, value_name = "DATE", value_parser = parse_time)]
    to: Option<i64>,
    /// Period length (UTC days, ISO weeks from Monday, or calendar months).
    #[arg(long, value_enum, default_value_t = Interval::Month)]
    interval: Interval,
    /// Only this currency (ISO code, e.g. eur).
    #[arg(long, value_name = "C", value_parser = parse_currency)]
    currency: Option<String>,
    /// Only this connected account's payments and subscriptions (acct_…).
    #[arg(long, value_name = "ACCOUNT", value_parser = parse_account)]
    account: Option<String>,
}

/// A connected account id, checked as the API checks it.
fn parse_account(s: &str) -> Result<String, String> {
    ids::check(ids::Kind::Account, "--account", s)
        .map(str::to_string)
        .map_err(|e| e.to_string())
}

#[derive(Debug, clap::Args)]
pub struct MrrArgs {
    /// The time to report: RFC 3339, a date (midnight UTC) or unix seconds [default: now].
    #[arg(long, visible_alias = "to", value_name = "DATE", value_parser = parse_time)]
    at: Option<i64>,
    /// Only this currency (ISO code, e.g. eur).
    #[arg(long, value_name = "C", value_parser = parse_currency)]
    currency: Option<String>,
    /// Only this connected account's payments and subscriptions (acct_…).
    #[arg(long, value_name = "ACCOUNT", value_parser = parse_account)]
    account: Option<String>,
    /// Table and CSV: one row per currency and price instead of one per currency.
    #[arg(long)]
    by_price: bool,
    /// MRR before discounts (coupons) instead of net of them.
    #[arg(long)]
    gross: bool,
}

impl RangeArgs {
    /// The query, or `None` (a usage error, reported) when the range is reversed.
    fn query(&self) -> Option<RangeQuery> {
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from >= to
        {
            eprintln!("error: --from must be before --to (--to is exclusive)");
            return None;
        }
        Some(RangeQuery {
            from: self.from,
            to: self.to,
            interval: self.interval,
            currency: self.currency.clone(),
            account: self.account.clone(),
            basis: Basis::Net,
        })
    }
}

fn basis(gross: bool) -> Basis {
    if gross { Basis::Gross } else { Basis::Net }
}

impl Command {
    pub fn run(self, config_path: Option<&Path>, format: Format) -> anyhow::Result<ExitCode> {
        // A reversed range is a usage error (exit 2), found before opening anything.
        let query = match &self {
            Command::Revenue(a) | Command::Subscriptions(a) | Command::FailedPayments(a) => {
                match a.query() {
                    Some(q) => q,
                    None => return Ok(ExitCode::from(2)),
                }
            }
            Command::MrrMovements(a) | Command::Retention(a) => match a.range.query() {
                Some(q) => RangeQuery {
                    basis: basis(a.gross),
                    ..q
                },
                None => return Ok(ExitCode::from(2)),
            },
            Command::Mrr(_) => RangeQuery::default(),
        };
        let config = super::load_config(config_path)?;
        let store = super::open_store(&config)?;
        let conn = store.conn()?;
        let now = now_secs();
        match self {
            Command::Revenue(_) => {
                let rows = report::revenue(&conn, &query, now)?;
                output::print_list(format, &rows, revenue_rows(&rows))?;
            }
            Command::Mrr(args) => {
                let rows = report::mrr(
                    &conn,
                    args.at.unwrap_or(now),
                    args.currency.as_deref(),
                    args.account.as_deref(),
                    basis(args.gross),
                )?;
                let table = if args.by_price {
                    mrr_price_rows(&rows)
                } else {
                    mrr_rows(&rows)
                };
                output::print_list(format, &rows, table)?;
            }
            Command::Subscriptions(_) => {
                let rows = report::subscriptions(&conn, &query, now)?;
                output::print_list(format, &rows, subscriptions_rows(&rows, format))?;
            }
            Command::FailedPayments(_) => {
                let rows = report::failed_payments(&conn, &query, now)?;
                output::print_list(format, &rows, failed_rows(&rows))?;
            }
            Command::MrrMovements(_) => {
                let rows = report::mrr_movements(&conn, &query, now)?;
                output::print_list(format, &rows, movement_rows(&rows))?;
            }
            Command::Retention(_) => {
                let rows = report::retention(&conn, &query, now)?;
                output::print_list(format, &rows, retention_rows(&rows, format))?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn code(currency: &str) -> String {
    currency.to_ascii_uppercase()
}

fn revenue_rows(rows: &[RevenueRow]) -> output::Rows {
    output::Rows {
        header: vec![
            "period",
            "currency",
            "gross",
            "refunded",
            "net",
            "payments",
            "failed",
            "disputed",
            "disputes_lost",
        ],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    r.period.clone(),
                    code(&r.currency),
                    format_major(r.gross, &r.currency),
                    format_major(r.refunded, &r.currency),
                    format_major(r.net, &r.currency),
                    r.payments.to_string(),
                    r.failed.to_string(),
                    format_major(r.disputed, &r.currency),
                    format_major(r.disputes_lost, &r.currency),
                ]
            })
            .collect(),
    }
}

fn mrr_rows(rows: &[MrrRow]) -> output::Rows {
    output::Rows {
        header: vec![
            "at",
            "currency",
            "mrr",
            "arr",
            "active_subscriptions",
            "past_due_subscriptions",
            "trialing_mrr",
            "trialing_subscriptions",
            "discounts",
        ],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    rfc3339(r.at),
                    code(&r.currency),
                    format_major(r.mrr, &r.currency),
                    format_major(r.arr, &r.currency),
                    r.active_subscriptions.to_string(),
                    r.past_due_subscriptions.to_string(),
                    format_major(r.trialing_mrr, &r.currency),
                    r.trialing_subscriptions.to_string(),
                    format_major(r.discounts, &r.currency),
                ]
            })
            .collect(),
    }
}

fn mrr_price_rows(rows: &[MrrRow]) -> output::Rows {
    output::Rows {
        header: vec![
            "at",
            "currency",
            "price",
            "mrr",
            "subscriptions",
            "quantity",
        ],
        rows: rows
            .iter()
            .flat_map(|r| {
                r.by_price.iter().map(|p| {
                    vec![
                        rfc3339(r.at),
                        code(&r.currency),
                        p.price.clone(),
                        format_major(p.mrr, &r.currency),
                        p.subscriptions.to_string(),
                        p.quantity.to_string(),
                    ]
                })
            })
            .collect(),
    }
}

fn subscriptions_rows(rows: &[SubscriptionsRow], format: Format) -> output::Rows {
    output::Rows {
        header: vec![
            "period",
            "active_start",
            "new",
            "canceled",
            "net_change",
            "churn_rate",
        ],
        rows: rows
            .iter()
            .map(|r| {
                // A person reads a percentage; a script gets the JSON's fraction.
                let churn = match (r.churn_rate, format) {
                    (None, _) => String::new(),
                    (Some(c), Format::Table) => format!("{:.2}%", c * 100.0),
                    (Some(c), _) => c.to_string(),
                };
                vec![
                    r.period.clone(),
                    r.active_start.to_string(),
                    r.new.to_string(),
                    r.canceled.to_string(),
                    r.net_change.to_string(),
                    churn,
                ]
            })
            .collect(),
    }
}

fn failed_rows(rows: &[FailedPaymentsRow]) -> output::Rows {
    output::Rows {
        header: vec![
            "period",
            "currency",
            "failed",
            "amount",
            "open_flags",
            "customers",
        ],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    r.period.clone(),
                    code(&r.currency),
                    r.failed.to_string(),
                    format_major(r.amount, &r.currency),
                    r.open_flags.to_string(),
                    r.customers.join(" "),
                ]
            })
            .collect(),
    }
}

fn movement_rows(rows: &[MrrMovementRow]) -> output::Rows {
    output::Rows {
        header: vec![
            "period",
            "currency",
            "starting_mrr",
            "new",
            "expansion",
            "contraction",
            "churned",
            "reactivation",
            "net_change",
            "ending_mrr",
        ],
        rows: rows
            .iter()
            .map(|r| {
                let m = |v: i64| format_major(v, &r.currency);
                vec![
                    r.period.clone(),
                    code(&r.currency),
                    m(r.starting_mrr),
                    m(r.new),
                    m(r.expansion),
                    m(r.contraction),
                    m(r.churned),
                    m(r.reactivation),
                    m(r.net_change),
                    m(r.ending_mrr),
                ]
            })
            .collect(),
    }
}

fn retention_rows(rows: &[RetentionRow], format: Format) -> output::Rows {
    // As the churn rate: a person reads a percentage, a script the JSON's fraction.
    let fraction = |f: Option<f64>| match (f, format) {
        (None, _) => String::new(),
        (Some(f), Format::Table) => format!("{:.2}%", f * 100.0),
        (Some(f), _) => f.to_string(),
    };
    output::Rows {
        header: vec![
            "period",
            "currency",
            "starting_mrr",
            "nrr",
            "grr",
            "arpa",
            "customers_start",
            "customers_end",
        ],
        rows: rows
            .iter()
            .map(|r| {
                vec![
                    r.period.clone(),
                    code(&r.currency),
                    format_major(r.starting_mrr, &r.currency),
                    fraction(r.nrr),
                    fraction(r.grr),
                    r.arpa
                        .map(|a| format_major(a, &r.currency))
                        .unwrap_or_default(),
                    r.customers_start.to_string(),
                    r.customers_end.to_string(),
                ]
            })
            .collect(),
    }
}

//! `billd plans sync [--dry-run]`: products and prices from Stripe into the mirror,
//! printing what changed.
//!
//! Every product and every price (active or not) is listed and written under the
//! ordering rule as an API answer of now (`created` = now, `seq` = 0), like the
//! write-through: a webhook about a later change still applies. Products and prices the
//! mirror has but Stripe no longer lists are marked deleted. A test double without the
//! Prices API (localstripe) answers 404 there: its plans are listed instead.
//!
//! A running daemon's plans cache is in another process: it shows the changes when its
//! TTL (`[stripe] plans_cache_ttl_secs`) runs out, or at once when Stripe's own
//! webhooks about them arrive.

use std::{collections::HashSet, path::Path, process::ExitCode};

use serde::Serialize;
use serde_json::Value;

use super::{Format, output};
use crate::{
    events::{self, Origin},
    report::money::format_with_code,
    store::catalog::{self, Change, Kind},
    stripe::list::{self, Listed, Query},
    time::now_secs,
};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Copy every product and price from Stripe into the mirror and print what changed.
    Sync {
        /// Print what would change, change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Serialize)]
struct Row {
    kind: &'static str,
    id: String,
    change: Change,
    /// The product's name; for a price, its amount, interval and product.
    detail: String,
}

impl Command {
    pub fn run(self, config_path: Option<&Path>, format: Format) -> anyhow::Result<ExitCode> {
        let Command::Sync { dry_run } = self;
        let config = super::load_config(config_path)?;
        let client = super::stripe_client(&config)?;
        let store = super::open_store(&config)?;
        let runtime = super::runtime()?;

        let (products, prices) = runtime.block_on(async {
            let products = list::all(&client, "products.list", "/products", Query::default())
                .await
                .map_err(|e| super::stripe_failure("cannot list products", e))?;
            let prices = match list::all(&client, "prices.list", "/prices", Query::default()).await
            {
                Err(e) if list::is_unknown_route(&e) => {
                    eprintln!("Stripe has no /v1/prices here: reading /v1/plans instead");
                    list::all(&client, "plans.list", "/plans", Query::default()).await
                }
                other => other,
            }
            .map_err(|e| super::stripe_failure("cannot list prices", e))?;
            anyhow::Ok((products, prices))
        })?;

        let origin = Origin::api_response(now_secs(), client.livemode());
        let mut conn = store.conn()?;
        let tx = conn.transaction_with_behavior(crate::store::TransactionBehavior::Immediate)?;
        let mut rows = Vec::with_capacity(products.len() + prices.len());
        for p in &products {
            let change = events::write_product(&tx, &p.raw, origin)?;
            rows.push(row("product", p, change, product_detail(&p.raw)));
        }
        for p in &prices {
            let change = events::write_price(&tx, &p.raw, origin)?;
            rows.push(row("price", p, change, price_detail(&p.raw)));
        }
        for (kind, name, listed) in [
            (Kind::Product, "product", &products),
            (Kind::Price, "price", &prices),
        ] {
            let in_stripe: HashSet<&str> = listed.iter().map(|o| o.id.as_str()).collect();
            for id in catalog::present_ids(&tx, kind)? {
                if !in_stripe.contains(id.as_str()) {
                    let change = catalog::mark_gone(&tx, kind, &id, origin.version)?;
                    rows.push(Row {
                        kind: name,
                        id,
                        change,
                        detail: "no longer in Stripe".into(),
                    });
                }
            }
        }
        if dry_run {
            tx.rollback()?;
        } else {
            tx.commit()?;
        }

        let table = rows
            .iter()
            .map(|r| {
                vec![
                    r.kind.to_string(),
                    r.id.clone(),
                    r.change.as_str().to_string(),
                    r.detail.clone(),
                ]
            })
            .collect();
        output::print_list(
            format,
            &rows,
            output::Rows {
                header: vec!["kind", "id", "change", "detail"],
                rows: table,
            },
        )?;
        for kind in ["product", "price"] {
            let count = |c: Change| {
                rows.iter()
                    .filter(|r| r.kind == kind && r.change == c)
                    .count()
            };
            eprintln!(
                "{kind}s: {} added, {} updated, {} unchanged, {} deactivated, {} deleted",
                count(Change::Added),
                count(Change::Updated),
                count(Change::Unchanged),
                count(Change::Deactivated),
                count(Change::Deleted),
            );
        }
        if dry_run {
            eprintln!("dry run: nothing was written");
        }
        Ok(ExitCode::SUCCESS)
    }
}

fn row(kind: &'static str, listed: &Listed, change: Change, detail: String) -> Row {
    Row {
        kind,
        id: listed.id.clone(),
        change,
        detail,
    }
}

fn product_detail(raw: &str) -> String {
    let v: Value = serde_json::from_str(raw).unwrap_or_default();
    v["name"].as_str().unwrap_or("").to_string()
}

/// "15.00 EUR / month of prod_…" (a plan says `amount` and has its interval on top).
fn price_detail(raw: &str) -> String {
    let v: Value = serde_json::from_str(raw).unwrap_or_default();
    let currency = v["currency"].as_str().unwrap_or("");
    let amount = v["unit_amount"].as_i64().or_else(|| v["amount"].as_i64());
    let mut text = match amount {
        Some(a) if !currency.is_empty() => format_with_code(a, currency),
        _ => "no fixed amount".into(),
    };
    let interval = v["recurring"]["interval"]
        .as_str()
        .or_else(|| v["interval"].as_str());
    if let Some(i) = interval {
        text.push_str(&format!(" / {i}"));
    }
    let product = v["product"]
        .as_str()
        .or_else(|| v["product"]["id"].as_str());
    if let Some(p) = product {
        text.push_str(&format!(" of {p}"));
    }
    text
}

//! Stripe's list endpoints, a page at a time: customers, subscriptions, invoices,
//! products, prices, plans and events, for the backfills and `--from-stripe`.
//!
//! One generic request (`GET /v1/<resource>?limit=&starting_after=&created[gte]=`)
//! rather than async-stripe's typed list requests: these take only the paging
//! parameters, a typed list of invoices would compile all of async-stripe's invoice
//! requests for them, and test doubles refuse parameters they do not know. Objects are
//! kept as raw JSON for the mirror's `write_*` functions.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use stripe_client_core::{RequestBuilder, StripeMethod};

use super::{Client, StripeError};

/// Stripe's largest page.
pub const MAX_LIMIT: u32 = 100;

/// What to list.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Query {
    pub limit: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub starting_after: Option<String>,
    /// Only objects created at or after this time (unix seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<Created>,
    /// Subscriptions: `all` lists canceled ones too (Stripe's default leaves them out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<&'static str>,
    /// Events: `false` lists those not yet delivered to every endpoint (pending, or
    /// failed every attempt).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_success: Option<bool>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Created {
    pub gte: i64,
}

/// One listed object: its id and its raw JSON.
#[derive(Debug, Clone)]
pub struct Listed {
    pub id: String,
    pub raw: String,
}

/// One page.
#[derive(Debug, Clone)]
pub struct Page {
    pub data: Vec<Listed>,
    pub has_more: bool,
}

#[derive(Deserialize)]
struct RawPage {
    #[serde(default)]
    data: Vec<Box<RawValue>>,
    #[serde(default)]
    has_more: bool,
}

#[derive(Deserialize)]
struct WithId {
    id: String,
}

/// One page of `path` (`/customers`, …). `op` names the call in the logs.
pub async fn page(
    client: &Client,
    op: &'static str,
    path: &str,
    query: &Query,
) -> Result<Page, StripeError> {
    let request = RequestBuilder::new(StripeMethod::Get, path).query(query);
    let answer = client.send_built::<RawPage>(op, request, None).await?;
    let data = answer
        .value
        .data
        .into_iter()
        .map(|raw| {
            let WithId { id } = crate::objects::parse_json(raw.get(), op)
                .map_err(|e| StripeError::Decode(e.to_string()))?;
            Ok(Listed {
                id,
                raw: raw.get().to_string(),
            })
        })
        .collect::<Result<_, StripeError>>()?;
    Ok(Page {
        data,
        has_more: answer.value.has_more,
    })
}

/// Every object of `path`, page after page.
pub async fn all(
    client: &Client,
    op: &'static str,
    path: &str,
    mut query: Query,
) -> Result<Vec<Listed>, StripeError> {
    if query.limit == 0 {
        query.limit = MAX_LIMIT;
    }
    let mut objects = Vec::new();
    loop {
        let page = page(client, op, path, &query).await?;
        let last = page.data.last().map(|o| o.id.clone());
        objects.extend(page.data);
        match last {
            Some(last) if page.has_more => query.starting_after = Some(last),
            _ => return Ok(objects),
        }
    }
}

/// Pages through `path` from the start, handing each page to `each` (which may
/// stop early by answering `false`).
pub async fn each_page(
    client: &Client,
    op: &'static str,
    path: &str,
    mut query: Query,
    mut each: impl FnMut(Vec<Listed>) -> anyhow::Result<bool>,
) -> anyhow::Result<()> {
    if query.limit == 0 {
        query.limit = MAX_LIMIT;
    }
    loop {
        let page = page(client, op, path, &query).await?;
        let last = page.data.last().map(|o| o.id.clone());
        let more = each(page.data)?;
        match last {
            Some(last) if page.has_more && more => query.starting_after = Some(last),
            _ => return Ok(()),
        }
    }
}

/// Whether an error says the resource does not exist on this server (a test double
/// without that API): Stripe's 404 for an unknown route.
pub fn is_unknown_route(e: &StripeError) -> bool {
    matches!(e, StripeError::InvalidRequest { status: 404, .. })
}

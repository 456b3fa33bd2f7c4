//! `GET /stripe/invoices?customer=&account=` from the mirror, newest first.

use crate::http::api::Query;
use axum::{Json, extract::State};
use serde::Deserialize;

use super::{List, page_limit};
use crate::{
    http::{AppState, error::ApiResult},
    ids::{self, Kind},
    store::mirror::{self, Invoice, Paging},
};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    customer: Option<String>,
    /// Only the invoices of this connected account.
    account: Option<String>,
    limit: Option<usize>,
    starting_after: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<List<Invoice>>> {
    ids::check_opt(Kind::Account, "account", q.account.as_deref())?;
    let paging = Paging {
        limit: page_limit(q.limit)?,
        starting_after: q.starting_after,
    };
    let page = state
        .store
        .run(move |c| {
            mirror::list_invoices(c, q.customer.as_deref(), q.account.as_deref(), &paging)
        })
        .await?;
    Ok(Json(page.into()))
}

//! `GET /stripe/invoices?customer=` from the mirror, newest first.

use crate::http::api::Query;
use axum::{Json, extract::State};
use serde::Deserialize;

use super::{List, page_limit};
use crate::{
    http::{AppState, error::ApiResult},
    store::mirror::{self, Invoice, Paging},
};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    customer: Option<String>,
    limit: Option<usize>,
    starting_after: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<List<Invoice>>> {
    let paging = Paging {
        limit: page_limit(q.limit)?,
        starting_after: q.starting_after,
    };
    let page = state
        .store
        .run(move |c| mirror::list_invoices(c, q.customer.as_deref(), &paging))
        .await?;
    Ok(Json(page.into()))
}

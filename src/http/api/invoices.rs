//! `GET /stripe/invoices?customer=` from the mirror, newest first.

use axum::{
    Json,
    extract::{Query, State},
};
use serde::Deserialize;

use super::{List, PageQuery};
use crate::{
    http::{AppState, error::ApiResult},
    store::mirror::{self, Invoice, Paging},
};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    customer: Option<String>,
    #[serde(flatten)]
    page: PageQuery,
}

pub async fn list(State(state): State<AppState>, Query(q): Query<ListQuery>) -> ApiResult<Json<List<Invoice>>> {
    let paging = Paging {
        limit: q.page.limit()?,
        starting_after: q.page.starting_after,
    };
    let page = state
        .store
        .run(move |c| mirror::list_invoices(c, q.customer.as_deref(), &paging))
        .await?;
    Ok(Json(page.into()))
}

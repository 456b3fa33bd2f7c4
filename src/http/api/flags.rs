//! `GET /stripe/flags`, `POST /stripe/flags/{id}/resolve`.

use crate::http::api::{Path, Query};
use axum::{Json, extract::State};
use serde::Deserialize;

use super::{List, page_limit};
use crate::{
    http::{
        AppState,
        error::{ApiError, ApiResult},
    },
    store::{
        audit,
        flags::{self, Flag},
    },
    time::now_secs,
};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    limit: Option<usize>,
    starting_after: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<List<Flag>>> {
    if let Some(s) = q.status.as_deref()
        && s != "open"
        && s != "resolved"
    {
        return Err(ApiError::invalid(format!(
            "status must be open or resolved, got `{s}`"
        )));
    }
    let limit = page_limit(q.limit)?;
    let after = q
        .starting_after
        .as_deref()
        .map(|s| {
            s.parse::<i64>()
                .map_err(|_| ApiError::invalid("starting_after must be a flag id"))
        })
        .transpose()?;
    let page = state
        .store
        .run(move |c| flags::list(c, q.status.as_deref(), limit, after))
        .await?;
    Ok(Json(page.into()))
}

#[derive(Debug, Default, Deserialize)]
pub struct ResolveBody {
    /// Who resolved it, for the audit log (defaults to "api").
    by: Option<String>,
}

pub async fn resolve(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    body: Option<Json<ResolveBody>>,
) -> ApiResult<Json<Flag>> {
    let by = body
        .and_then(|Json(b)| b.by)
        .filter(|b| !b.trim().is_empty())
        .unwrap_or_else(|| "api".into());
    let flag = state
        .store
        .run(move |c| {
            let tx = c.transaction()?;
            let flag = flags::resolve(&tx, id, &by, now_secs())?;
            audit::record(
                &tx,
                &by,
                "flag.resolve",
                Some(&id.to_string()),
                None,
                now_secs(),
            )?;
            tx.commit()?;
            Ok(flag)
        })
        .await?;
    Ok(Json(flag))
}

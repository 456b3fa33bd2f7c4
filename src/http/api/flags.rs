//! `GET /stripe/flags`, `POST /stripe/flags/{id}/resolve`.

use crate::http::api::{OptionalBody, Path, Query};
use axum::{Extension, Json, extract::State};
use serde::Deserialize;

use super::{List, page_limit};
use crate::{
    http::{
        AppState,
        auth::Caller,
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
    kind: Option<String>,
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
    let kind = q
        .kind
        .as_deref()
        .map(|k| {
            flags::Kind::parse(k).ok_or_else(|| {
                let kinds: Vec<&str> = flags::Kind::ALL.iter().map(|k| k.as_str()).collect();
                ApiError::invalid(format!("kind must be one of {}", kinds.join(", ")))
                    .with("param", "kind")
            })
        })
        .transpose()?;
    let limit = page_limit(q.limit)?;
    let after = q
        .starting_after
        .as_deref()
        .map(|s| {
            s.parse::<i64>().map_err(|_| {
                ApiError::invalid("starting_after must be a flag id")
                    .with("param", "starting_after")
            })
        })
        .transpose()?;
    let page = state
        .store
        .run(move |c| flags::list_of_kind(c, q.status.as_deref(), kind, limit, after))
        .await?;
    Ok(Json(page.into()))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResolveBody {
    /// Who the caller says resolved it: kept as audit detail only, since a token could
    /// claim any name (DESIGN §3).
    by: Option<String>,
}

pub async fn resolve(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    OptionalBody(body): OptionalBody<ResolveBody>,
) -> ApiResult<Json<Flag>> {
    let actor = format!("token:{}", caller.0);
    let detail = body
        .and_then(|b| b.by)
        .map(|b| b.trim().to_string())
        .filter(|b| !b.is_empty())
        .map(|b| format!("by: {b}"));
    let flag = state
        .store
        .run(move |c| {
            let tx = c.transaction()?;
            let flag = flags::resolve(&tx, id, &actor, now_secs())?;
            audit::record(
                &tx,
                &actor,
                "flag.resolve",
                Some(&id.to_string()),
                detail.as_deref(),
                now_secs(),
            )?;
            tx.commit()?;
            Ok(flag)
        })
        .await?;
    Ok(Json(flag))
}

//! `GET /stripe/events`, `GET /stripe/events/{id}`, `POST /stripe/events/{id}/replay`.

use crate::http::api::{Path, Query};
use axum::{Extension, Json, extract::State};
use serde::{Deserialize, Serialize};

use super::{List, page_limit};
use crate::{
    http::{
        AppState,
        auth::Caller,
        error::{ApiError, ApiResult},
    },
    ids::{self, Kind},
    store::{
        audit,
        events::{self as inbox, EventRow, Filter, Status},
    },
    time::{as_rfc3339, now_ms},
};

/// The event shape of DESIGN §3.
#[derive(Debug, Serialize)]
pub struct EventView {
    pub id: String,
    #[serde(rename = "type")]
    pub type_: String,
    pub status: &'static str,
    pub attempts: i64,
    #[serde(serialize_with = "as_rfc3339::secs")]
    pub created: i64,
    #[serde(serialize_with = "as_rfc3339::ms")]
    pub received_at: i64,
    #[serde(serialize_with = "as_rfc3339::opt_ms")]
    pub processed_at: Option<i64>,
    pub last_error: Option<String>,
    pub account: Option<String>,
    pub livemode: bool,
    pub api_version: Option<String>,
    /// When a failed event is tried again.
    #[serde(serialize_with = "as_rfc3339::opt_ms")]
    pub next_attempt_at: Option<i64>,
}

impl From<EventRow> for EventView {
    fn from(e: EventRow) -> Self {
        let waiting = matches!(e.status, Status::Pending | Status::Failed);
        EventView {
            id: e.id,
            type_: e.type_,
            status: e.status.as_str(),
            attempts: e.attempts,
            created: e.created,
            received_at: e.received_at_ms,
            processed_at: e.processed_at_ms,
            last_error: e.last_error,
            account: e.account,
            livemode: e.livemode,
            api_version: e.api_version,
            next_attempt_at: waiting.then_some(e.next_attempt_ms),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    status: Option<String>,
    #[serde(rename = "type")]
    type_: Option<String>,
    /// Only the events of this connected account.
    account: Option<String>,
    limit: Option<usize>,
    starting_after: Option<String>,
}

pub fn parse_status(s: &str) -> Result<Status, ApiError> {
    Status::parse(s).ok_or_else(|| {
        ApiError::invalid(format!(
            "status must be one of pending, processed, failed, dead, ignored; got `{s}`"
        ))
    })
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<List<EventView>>> {
    ids::check_opt(Kind::Account, "account", q.account.as_deref())?;
    let filter = Filter {
        status: q.status.as_deref().map(parse_status).transpose()?,
        type_: q.type_,
        account: q.account,
        since_ms: None,
        limit: page_limit(q.limit)?,
        starting_after: q.starting_after,
    };
    let (rows, more) = state.store.run(move |c| inbox::list(c, &filter)).await?;
    Ok(Json(List {
        data: rows.into_iter().map(EventView::from).collect(),
        has_more: more,
    }))
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<EventView>> {
    let row = state.store.run(move |c| inbox::get(c, &id)).await?;
    Ok(Json(row.into()))
}

/// Queues the event to be applied again. Handlers are idempotent under the ordering
/// rule, so replaying an applied event changes nothing that a newer event set.
pub async fn replay(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<EventView>> {
    let actor = format!("token:{}", caller.0);
    let row = state
        .store
        .run(move |c| {
            let tx = c.transaction()?;
            inbox::requeue(&tx, &id, now_ms())?;
            audit::record(
                &tx,
                &actor,
                "event.replay",
                Some(&id),
                None,
                now_ms() / 1000,
            )?;
            tx.commit()?;
            inbox::get(c, &id)
        })
        .await?;
    state.stored.notify_waiters();
    Ok(Json(row.into()))
}

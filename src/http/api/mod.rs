//! The authenticated JSON API, one module per resource.

pub mod checkout;
mod compliance;
pub mod connect;
pub mod customers;
pub mod events;
pub mod flags;
pub mod invoices;
pub mod payments;
pub mod plans;
pub mod reports;
pub mod subscriptions;
// Writes through Stripe (POST/PATCH/DELETE of DESIGN §3).
pub mod payment_methods;
pub mod refunds;

use crate::store::db::Connection;
use axum::{
    Json,
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request, rejection::JsonRejection},
    http::{StatusCode, request::Parts},
};
use serde::{Serialize, de::DeserializeOwned};

use super::{
    AppState,
    error::{ApiError, ApiResult},
};
use crate::{
    events::{ApplyError, Origin},
    store::{self, StoreError, mirror},
};

/// `{"data": [...], "has_more": bool}`.
#[derive(Debug, Serialize)]
pub struct List<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

impl<T> From<(Vec<T>, bool)> for List<T> {
    fn from((data, has_more): (Vec<T>, bool)) -> Self {
        List { data, has_more }
    }
}

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

/// The `limit` of a list: 20 when absent, at most 100. (Query structs name `limit` and
/// `starting_after` themselves: `serde(flatten)` breaks numbers in query strings.)
pub fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}, got {n}"
        ))),
    }
}

/// A JSON request body; a body that is not JSON or has the wrong shape is a 400 in
/// billd's error shape (axum's own rejection is plain text).
#[derive(Debug, Clone)]
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Body<T>, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(body)) => Ok(Body(body)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(not_json()),
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => Err(too_large()),
            Err(e) => Err(ApiError::invalid(e.body_text())),
        }
    }
}

/// A JSON request body that may be left out: an empty body is `None`; anything else
/// must be JSON of the right shape, as for [`Body`].
#[derive(Debug, Clone)]
pub struct OptionalBody<T>(pub Option<T>);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for OptionalBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<OptionalBody<T>, ApiError> {
        let json = super::error::is_json(request.headers());
        let bytes = match Bytes::from_request(request, state).await {
            Ok(bytes) => bytes,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => return Err(too_large()),
            Err(e) => return Err(ApiError::invalid(e.body_text())),
        };
        if bytes.is_empty() {
            return Ok(OptionalBody(None));
        }
        if !json {
            return Err(not_json());
        }
        match Json::<T>::from_bytes(&bytes) {
            Ok(Json(body)) => Ok(OptionalBody(Some(body))),
            Err(e) => Err(ApiError::invalid(e.body_text())),
        }
    }
}

fn not_json() -> ApiError {
    ApiError::invalid("send a JSON body with `Content-Type: application/json`")
}

fn too_large() -> ApiError {
    ApiError::from_status(StatusCode::PAYLOAD_TOO_LARGE)
}

/// `axum::extract::Query` whose rejection (a malformed query string) is billd's JSON
/// error, not axum's plain text.
#[derive(Debug, Clone)]
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Query<T>, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::invalid(e.body_text()))
    }
}

/// `axum::extract::Path` whose rejection (e.g. a flag id that is not a number) is
/// billd's JSON error.
#[derive(Debug, Clone)]
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Path<T>, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| ApiError::invalid(e.body_text()))
    }
}

/// The connected account to act for on the object `id` of `table`, and a Stripe
/// client acting for it: the account `given` in the request, else the one the mirror
/// records for the object (objects of a connected account live on that account, and
/// the platform's calls would not find them), else the platform's own.
pub(crate) async fn acting_for_object(
    state: &AppState,
    given: Option<String>,
    table: mirror::Table,
    id: &str,
) -> ApiResult<(Option<String>, crate::stripe::Client)> {
    let account = match given {
        Some(account) => Some(account),
        None => {
            let id = id.to_string();
            state
                .store
                .run(move |c| mirror::account_of(c, table, &id))
                .await?
        }
    };
    let client = state.stripe.acting_for(account.as_deref())?;
    Ok((account, client))
}

/// Write-through: after a successful Stripe call, `write` puts the objects Stripe
/// returned into the mirror (one transaction, under the ordering rule, versioned as an
/// API response: see [`Origin::api_response`]), then `read` reads the answer from it,
/// so the answer and a GET right after agree. A failure here is logged, not answered:
/// the change happened in Stripe (its webhook will bring it to the mirror), so the
/// handler answers from Stripe's object instead (`None`).
pub(crate) async fn write_through<T, W, R>(state: &AppState, write: W, read: R) -> Option<T>
where
    T: Send + 'static,
    W: for<'o> FnOnce(&Connection, Origin<'o>) -> Result<(), ApplyError> + Send + 'static,
    R: FnOnce(&Connection) -> store::Result<T> + Send + 'static,
{
    write_through_for(state, None, write, read).await
}

/// [`write_through`] of objects that belong to the connected account `account`: the
/// mirror rows keep it, as those its webhooks write do.
pub(crate) async fn write_through_for<T, W, R>(
    state: &AppState,
    account: Option<String>,
    write: W,
    read: R,
) -> Option<T>
where
    T: Send + 'static,
    W: for<'o> FnOnce(&Connection, Origin<'o>) -> Result<(), ApplyError> + Send + 'static,
    R: FnOnce(&Connection) -> store::Result<T> + Send + 'static,
{
    let livemode = state.stripe.livemode();
    let result = state
        .store
        .run(move |c| {
            let mut origin = Origin::api_response(crate::time::now_secs(), livemode);
            origin.account = account.as_deref();
            let tx = c.transaction_with_behavior(crate::store::TransactionBehavior::Immediate)?;
            write(&tx, origin).map_err(|e| match e {
                ApplyError::Store(e) => e,
                other => StoreError::Conflict(other.to_string()),
            })?;
            tx.commit()?;
            read(c)
        })
        .await;
    match result {
        Ok(answer) => Some(answer),
        Err(e) => {
            tracing::warn!(error = %e, "write-through to the mirror failed; the webhook will bring the change");
            None
        }
    }
}

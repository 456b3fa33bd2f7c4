//! `Idempotency-Key` on the API's writes: a request repeated with the same key (a
//! client retrying after a timeout, say) gets the first request's answer for 24 hours
//! and never runs twice, whichever billd process serves it and across restarts: the
//! records live in the database (`store::idempotency`), keyed by (token, key), so one
//! token's key never answers another's request. Concurrent requests with one key wait
//! for the first. A key reused (or still in use) for a different request (method,
//! path or body) answers 409, as Stripe does.
//!
//! Only answers of requests that ran are kept: 2xx and 402 (a declined card), as
//! Stripe keeps them. Errors a retry may cure (400, 409, 429, 5xx, Stripe unreachable)
//! are not: their record is deleted and the retry runs again. The handlers also send
//! the key to Stripe with the call's POST, so even a retry that takes over the claim of
//! a process that died mid-request is deduplicated by Stripe.

use std::time::Duration;

use crate::store::db::Connection;
use axum::{
    body::{Body, Bytes},
    extract::{FromRequestParts, Request, State},
    http::{HeaderName, HeaderValue, Method, StatusCode, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

use super::{AppState, BODY_LIMIT, auth::Caller, error::ApiError};
use crate::{
    store::idempotency::{self as records, Attempt, Claim, Kept},
    stripe::IdempotencyKey,
    time::now_ms,
};

pub static HEADER: HeaderName = HeaderName::from_static("idempotency-key");
/// On a replayed answer, as Stripe marks them.
pub static REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// How long a running request holds its key before a retry may take it over (its
/// process must have died): longer than any request's Stripe calls with their retries.
const LEASE: Duration = Duration::from_secs(600);
/// How long a retry waits for the same request running elsewhere before answering 409.
const WAIT: Duration = Duration::from_secs(60);
/// Largest answer kept (billd's answers are a few kB).
const MAX_KEPT: usize = 1024 * 1024;

/// The request's `Idempotency-Key`, for handlers to pass on to Stripe (the middleware
/// has already checked it).
#[derive(Debug, Clone)]
pub struct Key(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for Key {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Key, ApiError> {
        match parts.headers.get(&HEADER) {
            None => Ok(Key(None)),
            Some(v) => parse(v).map(|k| Key(Some(k))),
        }
    }
}

fn parse(v: &HeaderValue) -> Result<IdempotencyKey, ApiError> {
    let text = v
        .to_str()
        .map_err(|_| ApiError::invalid("Idempotency-Key must be visible ASCII"))?;
    IdempotencyKey::parse(text).map_err(ApiError::invalid)
}

/// The middleware, on the authenticated API routes (after `auth::layer`).
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let key = match request.headers().get(&HEADER).map(parse) {
        None => return next.run(request).await,
        Some(Err(e)) => return e.into_response(),
        Some(Ok(key)) => key,
    };
    let Some(Caller(token_id)) = request.extensions().get::<Caller>().cloned() else {
        // Only authenticated requests get here; without a caller there is no record.
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, BODY_LIMIT).await else {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "request body too large or unreadable",
        )
        .into_response();
    };
    let fingerprint = fingerprint(&parts.method, &parts.uri.to_string(), &body);
    let request = Request::from_parts(parts, Body::from(body));
    let record = Record {
        state: &state,
        token_id,
        key: key.as_str().to_string(),
        fingerprint,
    };
    match record.claim().await {
        Ok(Claim::Claimed) => record.run(next.run(request).await).await,
        Ok(Claim::Done(kept)) => replay(kept),
        Ok(Claim::Conflict) => conflict(),
        Ok(Claim::Running) => ApiError::new(
            StatusCode::CONFLICT,
            "idempotency_in_progress",
            "a request with this Idempotency-Key is still running; retry later with the same key",
        )
        .into_response(),
        Err(e) => e.into_response(),
    }
}

fn fingerprint(method: &Method, uri: &str, body: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(method.as_str());
    h.update([0]);
    h.update(uri);
    h.update([0]);
    h.update(body);
    h.finalize().into()
}

/// One request's claim on its (token, key).
struct Record<'a> {
    state: &'a AppState,
    token_id: String,
    key: String,
    fingerprint: [u8; 32],
}

impl Record<'_> {
    /// Runs `f` on this record's attempt off the async runtime.
    async fn with<T, F>(&self, f: F) -> crate::store::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, Attempt) -> crate::store::Result<T> + Send + 'static,
    {
        let (token_id, key, fingerprint) =
            (self.token_id.clone(), self.key.clone(), self.fingerprint);
        self.state
            .store
            .run(move |c| {
                let attempt = Attempt {
                    token_id: &token_id,
                    key: &key,
                    fingerprint: &fingerprint,
                };
                f(c, attempt)
            })
            .await
    }

    /// Claims the key, waiting while the same request runs elsewhere.
    async fn claim(&self) -> Result<Claim, ApiError> {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut pause = Duration::from_millis(10);
        loop {
            let claim = self
                .with(|c, attempt| records::claim(c, attempt, now_ms(), LEASE.as_millis() as i64))
                .await?;
            if claim != Claim::Running || tokio::time::Instant::now() >= deadline {
                return Ok(claim);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    /// Keeps the answer of the request that ran (or frees the key), and answers it.
    async fn run(self, response: Response) -> Response {
        let status = response.status();
        if !(status.is_success() || status == StatusCode::PAYMENT_REQUIRED) {
            self.release().await;
            return response;
        }
        let (parts, body) = response.into_parts();
        let Ok(body) = axum::body::to_bytes(body, MAX_KEPT).await else {
            self.release().await;
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the answer could not be read",
            )
            .into_response();
        };
        let kept = Kept {
            status: status.as_u16(),
            content_type: parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body: body.to_vec(),
        };
        if let Err(e) = self
            .with(move |c, attempt| records::complete(c, attempt, &kept))
            .await
        {
            // The request ran and its answer goes out; a retry runs it again, and Stripe
            // deduplicates its calls by the same key.
            tracing::error!(error = %e, "the answer of an Idempotency-Key request could not be kept");
        }
        Response::from_parts(parts, Body::from(body))
    }

    async fn release(&self) {
        if let Err(e) = self.with(|c, attempt| records::release(c, attempt)).await {
            // The key stays held until its lease ends; a retry then takes it over.
            tracing::warn!(error = %e, "an Idempotency-Key could not be released");
        }
    }
}

fn replay(kept: Kept) -> Response {
    tracing::info!(
        status = kept.status,
        "answered from an earlier request with the same Idempotency-Key"
    );
    let status = StatusCode::from_u16(kept.status).unwrap_or(StatusCode::OK);
    let mut response = (status, Bytes::from(kept.body)).into_response();
    let headers = response.headers_mut();
    if let Some(ct) = kept
        .content_type
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        headers.insert(header::CONTENT_TYPE, ct);
    }
    headers.insert(REPLAYED.clone(), HeaderValue::from_static("true"));
    response
}

fn conflict() -> Response {
    ApiError::new(
        StatusCode::CONFLICT,
        "idempotency_conflict",
        "this Idempotency-Key is in use, or was used in the last 24 hours, by a different \
         request; use a new key for a new request",
    )
    .into_response()
}

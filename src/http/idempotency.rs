//! `Idempotency-Key` on the API's writes: a request repeated with the same key (a
//! client retrying after a timeout, say) gets the first request's answer, replayed by
//! this process for 24 hours, and never runs twice. Concurrent requests with one key
//! wait for the first. A key reused (or still in use) for a different request (method, path or body)
//! answers 409, as Stripe does.
//!
//! Only answers of requests that ran are kept: 2xx and 402 (a declined card), as
//! Stripe keeps them. Errors a retry may cure (400, 409, 429, 5xx, Stripe unreachable)
//! are not: the retry runs again. The handlers also send the key to Stripe with the
//! call's POST, so a retry served by another billd process is deduplicated by Stripe.

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use axum::{
    body::{Body, Bytes},
    extract::{FromRequestParts, Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use super::{AppState, BODY_LIMIT, error::ApiError};
use crate::stripe::IdempotencyKey;

pub static HEADER: HeaderName = HeaderName::from_static("idempotency-key");
/// On a replayed answer, as Stripe marks them.
pub static REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

const KEEP: Duration = Duration::from_secs(24 * 3600);
const MAX_ENTRIES: usize = 10_000;

/// The kept answers, by key.
#[derive(Default)]
pub struct Replays {
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    fingerprint: [u8; 32],
    at: Instant,
    answer: Arc<OnceCell<Kept>>,
}

/// An answer as kept: enough to send it again.
#[derive(Debug, Clone)]
pub struct Kept {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

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

/// The middleware, on the authenticated API routes.
pub async fn layer(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD) {
        return next.run(request).await;
    }
    let key = match request.headers().get(&HEADER).map(parse) {
        None => return next.run(request).await,
        Some(Err(e)) => return e.into_response(),
        Some(Ok(key)) => key,
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
    state
        .replays
        .run(&key, fingerprint, || next.run(request))
        .await
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

impl Replays {
    /// Answers the kept answer of this request, or runs it (once at a time).
    pub async fn run<F, Fut>(&self, key: &IdempotencyKey, fingerprint: [u8; 32], run: F) -> Response
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Response>,
    {
        let cell = match self.cell(key, fingerprint) {
            Ok(cell) => cell,
            Err(e) => return e.into_response(),
        };
        let ran = AtomicBool::new(false);
        let outcome = cell
            .get_or_try_init(|| async {
                ran.store(true, Ordering::Relaxed);
                let response = run().await;
                let status = response.status();
                if !(status.is_success() || status == StatusCode::PAYMENT_REQUIRED) {
                    return Err(response);
                }
                let (parts, body) = response.into_parts();
                match axum::body::to_bytes(body, usize::MAX).await {
                    Ok(body) => Ok(Kept {
                        status: parts.status,
                        headers: parts.headers,
                        body,
                    }),
                    Err(_) => Err(ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "internal",
                        "the answer could not be read",
                    )
                    .into_response()),
                }
            })
            .await;
        match outcome {
            Ok(kept) => {
                let replayed = !ran.load(Ordering::Relaxed);
                if replayed {
                    tracing::info!(
                        status = kept.status.as_u16(),
                        "answered from an earlier request with the same Idempotency-Key"
                    );
                }
                let mut response =
                    (kept.status, kept.headers.clone(), kept.body.clone()).into_response();
                if replayed {
                    response
                        .headers_mut()
                        .insert(REPLAYED.clone(), HeaderValue::from_static("true"));
                }
                response
            }
            // Not kept: answered as it is.
            Err(response) => response,
        }
    }

    fn cell(
        &self,
        key: &IdempotencyKey,
        fingerprint: [u8; 32],
    ) -> Result<Arc<OnceCell<Kept>>, ApiError> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if let Some(e) = entries.get(key.as_str())
            && now.duration_since(e.at) < KEEP
        {
            if e.fingerprint == fingerprint {
                return Ok(e.answer.clone());
            }
            // Still held by a running request (the map holds one reference): in use.
            if e.answer.initialized() || Arc::strong_count(&e.answer) > 1 {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "idempotency_conflict",
                    "this Idempotency-Key is in use, or was used in the last 24 hours, by a \
                     different request; use a new key for a new request",
                ));
            }
            // The earlier request got no kept answer: the key is free again.
        }
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, e| now.duration_since(e.at) < KEEP);
            while entries.len() >= MAX_ENTRIES {
                let Some(oldest) = entries
                    .iter()
                    .min_by_key(|(_, e)| e.at)
                    .map(|(k, _)| k.clone())
                else {
                    break;
                };
                entries.remove(&oldest);
            }
        }
        let answer = Arc::new(OnceCell::new());
        entries.insert(
            key.as_str().to_string(),
            Entry {
                fingerprint,
                at: now,
                answer: answer.clone(),
            },
        );
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn key(k: &str) -> IdempotencyKey {
        IdempotencyKey::parse(k).unwrap()
    }

    async fn body(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_kept_answer_is_replayed_and_a_different_request_with_the_key_conflicts() {
        let replays = Replays::default();
        let runs = AtomicUsize::new(0);
        let run = || async {
            let n = runs.fetch_add(1, Ordering::SeqCst);
            (StatusCode::CREATED, format!("run {n}")).into_response()
        };
        let a = fingerprint(&Method::POST, "/stripe/refunds", b"{\"amount\":1}");
        let first = replays.run(&key("k1"), a, run).await;
        assert_eq!(body(first).await, "run 0");
        let again = replays.run(&key("k1"), a, run).await;
        assert_eq!(again.status(), StatusCode::CREATED);
        assert_eq!(again.headers().get(&REPLAYED).unwrap(), "true");
        assert_eq!(body(again).await, "run 0");
        let b = fingerprint(&Method::POST, "/stripe/refunds", b"{\"amount\":2}");
        let other = replays.run(&key("k1"), b, run).await;
        assert_eq!(other.status(), StatusCode::CONFLICT);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn answers_a_retry_may_change_are_not_kept() {
        let replays = Replays::default();
        let f = fingerprint(&Method::POST, "/stripe/customers", b"{}");
        for status in [StatusCode::SERVICE_UNAVAILABLE, StatusCode::BAD_REQUEST] {
            let r = replays
                .run(&key("k2"), f, || async { status.into_response() })
                .await;
            assert_eq!(r.status(), status);
        }
        // The key is free for a corrected request, whose answer is then kept.
        let g = fingerprint(&Method::POST, "/stripe/customers", b"{\"email\":null}");
        let r = replays
            .run(&key("k2"), g, || async {
                StatusCode::CREATED.into_response()
            })
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let r = replays
            .run(&key("k2"), g, || async {
                StatusCode::IM_A_TEAPOT.into_response()
            })
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        // A declined card is kept: retrying does not charge again.
        let h = fingerprint(&Method::POST, "/stripe/payments", b"{}");
        let r = replays
            .run(&key("k3"), h, || async {
                StatusCode::PAYMENT_REQUIRED.into_response()
            })
            .await;
        assert_eq!(r.status(), StatusCode::PAYMENT_REQUIRED);
        let r = replays
            .run(&key("k3"), h, || async { StatusCode::OK.into_response() })
            .await;
        assert_eq!(r.status(), StatusCode::PAYMENT_REQUIRED);
    }

    #[tokio::test]
    async fn concurrent_requests_with_one_key_run_once() {
        let replays = Arc::new(Replays::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let f = fingerprint(&Method::POST, "/stripe/payments", b"{}");
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (replays, runs) = (replays.clone(), runs.clone());
            tasks.push(tokio::spawn(async move {
                replays
                    .run(&key("k4"), f, || async {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        StatusCode::CREATED.into_response()
                    })
                    .await
                    .status()
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), StatusCode::CREATED);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_key_in_use_by_a_running_request_is_refused_to_a_different_one() {
        let replays = Arc::new(Replays::default());
        let first = fingerprint(&Method::POST, "/stripe/refunds", b"{\"amount\":1}");
        let other = fingerprint(&Method::POST, "/stripe/refunds", b"{\"amount\":2}");
        let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
        let (finish_tx, finish_rx) = tokio::sync::oneshot::channel::<()>();
        let running = {
            let replays = replays.clone();
            tokio::spawn(async move {
                replays
                    .run(&key("k5"), first, || async move {
                        let _ = started_tx.send(());
                        let _ = finish_rx.await;
                        StatusCode::CREATED.into_response()
                    })
                    .await
                    .status()
            })
        };
        started_rx.await.unwrap();
        let second = replays
            .run(&key("k5"), other, || async {
                panic!("a second request with the key in use must not run")
            })
            .await;
        assert_eq!(second.status(), StatusCode::CONFLICT);
        finish_tx.send(()).unwrap();
        assert_eq!(running.await.unwrap(), StatusCode::CREATED);
    }
}

//! HTTP: the only module that knows axum. Routes, shared state, middleware.

pub mod api;
pub mod auth;
pub mod error;
pub mod request_id;
pub mod webhook;

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, State},
    middleware,
    response::IntoResponse,
    routing::{get, post},
};
use serde_json::json;
use tokio::sync::Notify;

use crate::{ingest::Ingest, signature::Verifier, store::Store};

/// Largest accepted request body (Stripe events are far smaller).
const BODY_LIMIT: usize = 1024 * 1024;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub ingest: Ingest,
    pub verifier: Arc<Verifier>,
    /// Woken when events are stored or queued for replay.
    pub stored: Arc<Notify>,
    /// Unix seconds now; injected so tests can fix the verifier's clock.
    pub clock: Arc<dyn Fn() -> i64 + Send + Sync>,
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/stripe/customers/{id}", get(api::customers::get))
        .route("/stripe/subscriptions/{id}", get(api::subscriptions::get))
        .route("/stripe/invoices", get(api::invoices::list))
        .route("/stripe/payments", get(api::payments::list))
        .route("/stripe/events", get(api::events::list))
        .route("/stripe/events/{id}", get(api::events::get))
        .route("/stripe/events/{id}/replay", post(api::events::replay))
        .route("/stripe/flags", get(api::flags::list))
        .route("/stripe/flags/{id}/resolve", post(api::flags::resolve))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::layer));
    Router::new()
        .route("/stripe/webhook", post(webhook::receive))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(api)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(request_id::layer))
        .with_state(state)
}

async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> axum::response::Response {
    let store = state.store.clone();
    match tokio::task::spawn_blocking(move || store.is_ready()).await {
        Ok(Ok(true)) => Json(json!({"status": "ready"})).into_response(),
        Ok(Ok(false)) => error::ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "not_migrated",
            "the database schema is not up to date; run `billd migrate`",
        )
        .into_response(),
        Ok(Err(e)) => error::ApiError::from(e).into_response(),
        Err(_) => error::ApiError::unavailable("readiness check failed").into_response(),
    }
}

async fn not_found() -> impl IntoResponse {
    error::ApiError::not_found("no such route")
}

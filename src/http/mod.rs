//! HTTP: the only module that knows axum. Routes, shared state, middleware.

pub mod api;
pub mod auth;
pub mod dashboard;
pub mod error;
pub mod idempotency;
pub mod limits;
pub mod metrics;
pub mod openapi;
pub mod readiness;
pub mod request_id;
pub mod server;
pub mod webhook;

use std::sync::Arc;

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, State},
    middleware,
    response::IntoResponse,
    routing::{delete, get, post},
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
    /// `GET /metrics` without a token (`[server] metrics_public`).
    pub metrics_public: bool,
    /// The Stripe API, for the writes.
    pub stripe: crate::stripe::Client,
    /// `GET /stripe/plans`, cleared by the workers on catalog events.
    pub plans: Arc<api::plans::PlansCache>,
    /// This process's rate limits.
    pub limits: Arc<limits::Limits>,
    /// The `[compliance]` rules the money-taking routes check.
    pub compliance: Arc<crate::compliance::Rules>,
    /// This process's last readiness check (`GET /readyz`).
    pub readiness: Arc<readiness::Readiness>,
}

pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/stripe/customers", post(api::customers::create))
        .route(
            "/stripe/customers/{id}",
            get(api::customers::get)
                .patch(api::customers::update)
                .delete(api::customers::delete),
        )
        .route("/stripe/customers/{id}/mrr", get(api::customers::mrr))
        .route(
            "/stripe/customers/{id}/payment-methods",
            post(api::payment_methods::attach),
        )
        .route(
            "/stripe/customers/{id}/payment-methods/{pm}",
            delete(api::payment_methods::detach),
        )
        .route(
            "/stripe/customers/{id}/payment-methods/{pm}/default",
            post(api::payment_methods::set_default),
        )
        .route("/stripe/subscriptions", post(api::subscriptions::create))
        .route(
            "/stripe/subscriptions/{id}",
            get(api::subscriptions::get)
                .patch(api::subscriptions::update)
                .delete(api::subscriptions::cancel),
        )
        .route("/stripe/refunds", post(api::refunds::create))
        .route("/stripe/plans", get(api::plans::list))
        .route("/stripe/checkout/sessions", post(api::checkout::create))
        .route("/stripe/connect/accounts", post(api::connect::create))
        .route("/stripe/connect/accounts/{id}", get(api::connect::get))
        .route(
            "/stripe/connect/accounts/{id}/links",
            post(api::connect::link),
        )
        .route("/stripe/invoices", get(api::invoices::list))
        .route(
            "/stripe/payments",
            get(api::payments::list).post(api::payments::create),
        )
        .route("/stripe/events", get(api::events::list))
        .route("/stripe/events/{id}", get(api::events::get))
        .route("/stripe/events/{id}/replay", post(api::events::replay))
        .route("/stripe/flags", get(api::flags::list))
        .route("/stripe/flags/{id}/resolve", post(api::flags::resolve))
        .route("/stripe/reports/revenue", get(api::reports::revenue))
        .route("/stripe/reports/mrr", get(api::reports::mrr))
        .route(
            "/stripe/reports/subscriptions",
            get(api::reports::subscriptions),
        )
        .route(
            "/stripe/reports/failed-payments",
            get(api::reports::failed_payments),
        )
        .route(
            "/stripe/reports/mrr-movements",
            get(api::reports::mrr_movements),
        )
        .route("/stripe/reports/retention", get(api::reports::retention))
        // Innermost first: replays are only for authenticated requests, and a request
        // refused by its token's rate limit never reaches them.
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::layer,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            limits::money_layer,
        ))
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::layer));
    // Prometheus needs `read` unless the config opens it.
    let metrics = Router::new().route("/metrics", get(metrics::render));
    let metrics = if state.metrics_public {
        metrics
    } else {
        metrics.route_layer(middleware::from_fn_with_state(state.clone(), auth::layer))
    };
    Router::new()
        .route(
            "/stripe/webhook",
            post(webhook::receive).route_layer(middleware::from_fn_with_state(
                state.clone(),
                webhook::guard,
            )),
        )
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        // Public: it documents the API and holds no data.
        .route("/openapi.json", get(openapi::serve))
        .route("/docs", get(openapi::docs))
        // The operator's web pages: sessions of their own (token typed into a login
        // form), the same scopes as the API.
        .merge(dashboard::router())
        .merge(api)
        .merge(metrics)
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            limits::in_flight_layer,
        ))
        // Inside the request-id layer, so the error bodies it writes carry the id.
        .layer(middleware::from_fn(error::layer))
        .layer(middleware::from_fn(request_id::layer))
        .with_state(state)
}

async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> axum::response::Response {
    match state.readiness.check(&state.store).await {
        readiness::Answer::Ready => Json(json!({"status": "ready"})).into_response(),
        readiness::Answer::NotMigrated => error::ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "not_migrated",
            "the database schema is not up to date; run `billd migrate`",
        )
        .into_response(),
        readiness::Answer::Unavailable => {
            error::ApiError::unavailable("the database does not take writes now (see the log)")
                .into_response()
        }
    }
}

async fn not_found() -> impl IntoResponse {
    error::ApiError::not_found("no such route")
}

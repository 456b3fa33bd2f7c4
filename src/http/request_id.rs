//! `x-request-id`: taken from the request when it is a sane token, made otherwise,
//! returned on every response, put in the request's tracing span and in error bodies.

use axum::{
    extract::{MatchedPath, Request},
    http::{HeaderName, HeaderValue},
    middleware::Next,
    response::Response,
};
use tracing::Instrument;

pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The route of a request that matched none.
const UNMATCHED: &str = "(no route)";

/// Put in a response's extensions by a handler that has logged the request's outcome
/// itself (a stored webhook's `webhook received`): the request line then goes to
/// `debug`, so the busiest route logs one line per request, not two.
#[derive(Debug, Clone, Copy)]
pub struct OutcomeLogged;

/// A method as logged: the standard ones by name, anything else (a caller may send
/// any token as a method) as `OTHER`.
fn bounded_method(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being served, or "" outside a request.
pub fn current() -> String {
    REQUEST_ID.try_with(Clone::clone).unwrap_or_default()
}

fn acceptable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn fresh() -> String {
    let mut buf = [0u8; 12];
    // Without randomness the id is still unique enough from the clock.
    if getrandom::fill(&mut buf).is_err() {
        return format!("req_{}", crate::time::now_ms());
    }
    format!("req_{}", hex::encode(buf))
}

pub async fn layer(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map(String::from)
        .unwrap_or_else(fresh);
    // The route template (`/stripe/customers/{id}`), never the path as sent: an
    // unauthenticated caller chooses the path, its length and what it holds. Query
    // strings and headers may carry personal data: never logged either.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED.to_string(), |p| p.as_str().to_string());
    let method = bounded_method(request.method());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        route = %route,
        path_len = request.uri().path().len(),
    );
    let started = std::time::Instant::now();
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(request))
        .instrument(span.clone())
        .await;
    let status = response.status().as_u16();
    crate::metrics::count(
        "billd_http_requests_total",
        &[
            ("route", route.as_str()),
            ("method", method),
            ("status", response.status().as_str()),
        ],
    );
    let duration_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| {
        if response.extensions().get::<OutcomeLogged>().is_some() {
            tracing::debug!(status, duration_ms, "request")
        } else {
            tracing::info!(status, duration_ms, "request")
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER.clone(), value);
    }
    response
}

//! The one API error type: `{"error": {"type", "message", "request_id"}}` with a status.
//! Internal causes are logged, never put in a response body. [`layer`] gives the same
//! shape to the rejections axum and tower make themselves (405, 413, ...).

use axum::{
    Json,
    extract::Request,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::json;

use super::request_id;
use crate::{
    ids::IdError,
    store::StoreError,
    stripe::{StripeError, refunds::RefundRefused},
};

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    retry_after: Option<u64>,
    /// More members of the error object (e.g. `decline_code`, `param`).
    details: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            kind,
            message: message.into(),
            retry_after: None,
            details: serde_json::Map::new(),
        }
    }

    /// Adds a member to the error object (skipped when `value` is null).
    pub fn with(mut self, name: &str, value: impl Into<serde_json::Value>) -> ApiError {
        let value = value.into();
        if !value.is_null() {
            self.details.insert(name.to_string(), value);
        }
        self
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// Storage could not answer: 503, so clients (and Stripe) retry.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            message,
        );
        e.retry_after = Some(1);
        e
    }

    /// A rate limit refused the request: 429 with `Retry-After`.
    pub fn rate_limited(retry_after_secs: u64) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; retry after the seconds in Retry-After",
        );
        e.retry_after = Some(retry_after_secs.max(1));
        e
    }

    /// The server is at its cap of requests in flight: 503, retry soon.
    pub fn overloaded() -> ApiError {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the server is handling as many requests as it may; retry shortly",
        );
        e.retry_after = Some(1);
        e
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message for the caller (never an internal cause).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The seconds of `Retry-After`, for a refusal that has one.
    pub fn retry_after(&self) -> Option<u64> {
        self.retry_after
    }

    /// The error for a bare status, when nothing more specific is known. The message is
    /// fixed: the framework's own text may quote the request.
    pub fn from_status(status: StatusCode) -> ApiError {
        let (kind, message) = match status.as_u16() {
            400 => ("invalid_request", "the request is malformed"),
            401 => ("unauthorized", "authentication is required"),
            403 => ("forbidden", "this request is not allowed"),
            404 => ("not_found", "no such route"),
            405 => (
                "method_not_allowed",
                "this route does not take this method; the Allow header lists those it takes",
            ),
            408 => ("request_timeout", "the request took too long to arrive"),
            409 => ("conflict", "the request conflicts with another"),
            411 => ("length_required", "send a Content-Length"),
            413 => (
                "payload_too_large",
                "the request body is larger than billd accepts",
            ),
            414 => ("uri_too_long", "the request URI is too long"),
            415 => (
                "unsupported_media_type",
                "send a JSON body with `Content-Type: application/json`",
            ),
            422 => ("unprocessable", "the request could not be processed"),
            429 => ("rate_limited", "too many requests; retry later"),
            431 => (
                "headers_too_large",
                "the request headers are larger than billd accepts",
            ),
            502 => ("bad_gateway", "an upstream service failed"),
            503 => ("unavailable", "the service is unavailable; retry later"),
            504 => ("timeout", "the request took too long to answer"),
            500..=599 => ("internal_error", "the server failed to answer"),
            _ => ("invalid_request", "the request was refused"),
        };
        ApiError::new(status, kind, message)
    }
}

/// Whether a message's `Content-Type` is JSON (`application/json` or a `+json` type).
pub fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Marks an answer as a page billd rendered itself for people (the dashboard's error
/// pages): [`layer`] leaves it as it is.
#[derive(Debug, Clone, Copy)]
pub struct Rendered;

/// Middleware over the whole router: any 4xx/5xx answer that is not JSON (axum's
/// plain-text rejections, an empty 405, a timeout layer's 408) becomes billd's error
/// shape, keeping the headers a client acts on. It must run inside the request-id
/// layer, so the body can name the request.
pub async fn layer(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error())
        || is_json(response.headers())
        || response.extensions().get::<Rendered>().is_some()
    {
        return response;
    }
    let mut answer = ApiError::from_status(status).into_response();
    for name in [header::ALLOW, header::RETRY_AFTER] {
        if let Some(value) = response.headers().get(&name) {
            answer.headers_mut().insert(name, value.clone());
        }
    }
    answer
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found("no such object"),
            StoreError::Conflict(message) => ApiError::invalid(message),
            e @ StoreError::UnknownCursor(_) => {
                ApiError::invalid(e.to_string()).with("param", "starting_after")
            }
            other => {
                tracing::error!(error = %other, "storage error");
                ApiError::unavailable("storage is unavailable; try again")
            }
        }
    }
}

/// Stripe's failures: what the caller can do about each.
impl From<StripeError> for ApiError {
    fn from(e: StripeError) -> Self {
        let stripe_request_id = e.request_id().map(str::to_string);
        let message = e.message().map(str::to_string);
        let error = match e {
            StripeError::CardDeclined {
                code, decline_code, ..
            } => ApiError::new(
                StatusCode::PAYMENT_REQUIRED,
                "card_declined",
                message.unwrap_or_else(|| "the card was declined".into()),
            )
            // Stripe names the reason; a decline without one (as test doubles send) is
            // Stripe's generic decline.
            .with(
                "decline_code",
                decline_code.unwrap_or_else(|| "generic_decline".into()),
            )
            .with("code", code),
            StripeError::InvalidRequest {
                status: 404,
                code,
                param,
                ..
            } => ApiError::not_found(message.unwrap_or_else(|| "no such object in Stripe".into()))
                .with("code", code)
                .with("param", param),
            // A parameter at fault: the caller's input. Otherwise Stripe refused a
            // well-formed request (the object's state does not allow it).
            StripeError::InvalidRequest {
                code,
                param: Some(param),
                ..
            } => ApiError::invalid(message.unwrap_or_default())
                .with("param", param)
                .with("code", code),
            StripeError::InvalidRequest { code, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "refused_by_stripe",
                message.unwrap_or_else(|| "Stripe refused the request".into()),
            )
            .with("code", code),
            StripeError::Authentication { .. } | StripeError::Permission { .. } => {
                tracing::error!(error = %e, alert = true, "Stripe refused billd's API key");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "stripe_auth_failed",
                    "Stripe refused billd's API key (a configuration problem of this server)",
                )
            }
            StripeError::RateLimited { retry_after, .. } => {
                let mut error = ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    "Stripe is rate limiting requests; retry later",
                );
                error.retry_after = Some(retry_after.unwrap_or(2).max(1));
                error
            }
            StripeError::IdempotencyConflict { .. } => ApiError::new(
                StatusCode::CONFLICT,
                "idempotency_conflict",
                message
                    .unwrap_or_else(|| "the Idempotency-Key was used for another request".into()),
            ),
            StripeError::Connection(_) | StripeError::Timeout => {
                tracing::warn!(error = %e, "Stripe is unreachable");
                let mut error = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "stripe_unavailable",
                    "Stripe cannot be reached; retry later (with the same Idempotency-Key)",
                );
                error.retry_after = Some(5);
                error
            }
            StripeError::Server { status, .. } => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "stripe_error",
                format!(
                    "Stripe failed (HTTP {status}); retry later (with the same Idempotency-Key)"
                ),
            ),
            // Refused before sending: the caller's input, not Stripe's failure.
            StripeError::Request(reason) => {
                ApiError::invalid(format!("billd did not send this to Stripe: {reason}"))
            }
            StripeError::Decode(_) | StripeError::Config(_) => {
                tracing::error!(error = %e, "unusable Stripe answer");
                ApiError::new(
                    StatusCode::BAD_GATEWAY,
                    "stripe_error",
                    "Stripe's answer could not be used",
                )
            }
        };
        error.with("stripe_request_id", stripe_request_id)
    }
}

impl From<IdError> for ApiError {
    fn from(e: IdError) -> Self {
        let param = e.param().to_string();
        ApiError::invalid(e.to_string()).with("param", param)
    }
}

impl From<RefundRefused> for ApiError {
    fn from(e: RefundRefused) -> Self {
        match e {
            RefundRefused::NotPositive(_) => {
                ApiError::invalid(e.to_string()).with("param", "amount")
            }
            RefundRefused::MoreThanLeft { remaining, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "refund_exceeds_remainder",
                e.to_string(),
            )
            .with("param", "amount")
            .with("refundable", remaining),
            RefundRefused::NothingLeft { .. } | RefundRefused::NotPaid { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not_refundable",
                e.to_string(),
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::Map::new();
        error.insert("type".into(), self.kind.into());
        error.insert("message".into(), self.message.into());
        error.insert("request_id".into(), request_id::current().into());
        for (name, value) in self.details {
            error.entry(name).or_insert(value);
        }
        let body = json!({ "error": error });
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

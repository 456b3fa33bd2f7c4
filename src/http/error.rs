//! The one API error type: `{"error": {"type", "message", "request_id"}}` with a status.
//! Internal causes are logged, never put in a response body.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
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

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::not_found("no such object"),
            StoreError::Conflict(message) => ApiError::invalid(message),
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

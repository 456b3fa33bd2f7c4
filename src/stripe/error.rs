//! Stripe's failures, by what a caller can do about them.
//!
//! `Display` names the kind, status, code and parameter only: Stripe's messages may
//! quote what was sent (an email address, say), so they are kept for the answer to the
//! caller ([`StripeError::message`]) and never logged.

use serde::Deserialize;

use super::Answer;

#[derive(Debug, thiserror::Error)]
pub enum StripeError {
    /// The card was declined (HTTP 402, a `card_error`).
    #[error("the card was declined ({})", decline_label(code, decline_code))]
    CardDeclined {
        code: Option<String>,
        decline_code: Option<String>,
        message: String,
        request_id: Option<String>,
    },
    /// Stripe refused the request as invalid (400, 404 …): a bad or missing parameter,
    /// an unknown object, or a request the object's state does not allow.
    #[error(
        "Stripe refused the request (HTTP {status}{}{})",
        code.as_deref().map(|c| format!(", code {c}")).unwrap_or_default(),
        param.as_deref().map(|p| format!(", parameter {p}")).unwrap_or_default()
    )]
    InvalidRequest {
        status: u16,
        code: Option<String>,
        param: Option<String>,
        message: String,
        request_id: Option<String>,
    },
    /// Stripe refused billd's API key (401).
    #[error("Stripe refused billd's API key (HTTP 401)")]
    Authentication { request_id: Option<String> },
    /// billd's key may not do this (403; e.g. a restricted key).
    #[error("billd's Stripe API key is not allowed to do this (HTTP 403)")]
    Permission { request_id: Option<String> },
    /// Too many requests (429), after the retries.
    #[error("Stripe is rate limiting billd (HTTP 429)")]
    RateLimited {
        retry_after: Option<u64>,
        request_id: Option<String>,
    },
    /// The idempotency key was used before with other parameters, or is in use by a
    /// concurrent request.
    #[error("the idempotency key was already used for a different request")]
    IdempotencyConflict {
        message: String,
        request_id: Option<String>,
    },
    /// Stripe could not be reached (connection refused, DNS, TLS, reset).
    #[error("cannot reach Stripe: {0}")]
    Connection(String),
    /// No answer within the timeout, after the retries.
    #[error("Stripe did not answer in time")]
    Timeout,
    /// Stripe failed (5xx), after the retries.
    #[error("Stripe failed (HTTP {status})")]
    Server {
        status: u16,
        request_id: Option<String>,
    },
    /// An answer billd cannot read.
    #[error("unexpected answer from Stripe: {0}")]
    Decode(String),
    /// billd refused to send a request it could not build safely (a path with an
    /// empty, `.` or `..` segment, a header value with a control byte): caller input,
    /// never sent and never retried. The text names what is wrong, never the value.
    #[error("request not sent: {0}")]
    Request(String),
    /// The client is misconfigured (key or URL).
    #[error("Stripe client: {0}")]
    Config(String),
}

fn decline_label(code: &Option<String>, decline_code: &Option<String>) -> String {
    decline_code
        .as_deref()
        .or(code.as_deref())
        .unwrap_or("no reason given")
        .to_string()
}

impl StripeError {
    /// True when the request may have taken effect in Stripe although billd got no
    /// answer it could read (a cut connection, a timeout, a 5xx): a write must then be
    /// retried with the same idempotency key, never with a fresh one.
    pub fn outcome_unknown(&self) -> bool {
        matches!(
            self,
            StripeError::Connection(_)
                | StripeError::Timeout
                | StripeError::Server { .. }
                | StripeError::Decode(_)
        )
    }

    /// Stripe's own message, for the caller (never for the logs).
    pub fn message(&self) -> Option<&str> {
        match self {
            StripeError::CardDeclined { message, .. }
            | StripeError::InvalidRequest { message, .. }
            | StripeError::IdempotencyConflict { message, .. } => Some(message),
            _ => None,
        }
    }

    /// Stripe's request id of the failed call, when it answered.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            StripeError::CardDeclined { request_id, .. }
            | StripeError::InvalidRequest { request_id, .. }
            | StripeError::Authentication { request_id }
            | StripeError::Permission { request_id }
            | StripeError::RateLimited { request_id, .. }
            | StripeError::IdempotencyConflict { request_id, .. }
            | StripeError::Server { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }
}

impl stripe_client_core::StripeClientErr for StripeError {
    fn deserialize_err(msg: impl std::fmt::Display) -> Self {
        StripeError::Decode(msg.to_string())
    }
}

/// `{"error": {...}}`, leniently: every field may be missing (test doubles send less).
#[derive(Debug, Default, Deserialize)]
pub struct ErrorBody {
    #[serde(default)]
    pub error: ErrorObject,
}

#[derive(Debug, Default, Deserialize)]
pub struct ErrorObject {
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub decline_code: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// The error a non-2xx answer stands for.
pub(super) fn from_answer(op: &'static str, answer: &Answer) -> StripeError {
    let status = answer.status.as_u16();
    let body: ErrorBody = serde_json::from_slice(&answer.body).unwrap_or_default();
    let e = body.error;
    let request_id = answer.request_id.clone();
    // Kind, code and parameter only: the message may quote personal data.
    tracing::warn!(
        stripe_op = op,
        status,
        stripe_request_id = request_id.as_deref().unwrap_or(""),
        error_type = e.type_.as_deref().unwrap_or(""),
        code = e.code.as_deref().unwrap_or(""),
        decline_code = e.decline_code.as_deref().unwrap_or(""),
        param = e.param.as_deref().unwrap_or(""),
        "stripe call refused"
    );
    let message = e
        .message
        .clone()
        .unwrap_or_else(|| format!("Stripe answered HTTP {status}"));
    match (status, e.type_.as_deref()) {
        (401, _) => StripeError::Authentication { request_id },
        (403, _) => StripeError::Permission { request_id },
        (429, _) => StripeError::RateLimited {
            retry_after: answer.retry_after,
            request_id,
        },
        (_, Some("idempotency_error")) | (409, _) => StripeError::IdempotencyConflict {
            message,
            request_id,
        },
        (402, _) | (_, Some("card_error")) => StripeError::CardDeclined {
            code: e.code,
            decline_code: e.decline_code,
            message,
            request_id,
        },
        (500..=599, _) => StripeError::Server { status, request_id },
        _ => StripeError::InvalidRequest {
            status,
            code: e.code,
            param: e.param,
            message,
            request_id,
        },
    }
}

/// A transport error and its causes, on one line.
pub(super) fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use hyper::StatusCode;
    use hyper::body::Bytes;

    use super::*;

    fn answer(status: u16, body: &str) -> Answer {
        Answer {
            status: StatusCode::from_u16(status).unwrap(),
            body: Bytes::from(body.to_string()),
            request_id: Some("req_1".into()),
            retry_after: Some(3),
            should_retry: None,
        }
    }

    #[test]
    fn stripe_errors_are_classified_by_status_and_type() {
        let declined = from_answer(
            "t",
            &answer(
                402,
                r#"{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds."}}"#,
            ),
        );
        assert!(matches!(
            &declined,
            StripeError::CardDeclined { decline_code: Some(d), .. } if d == "insufficient_funds"
        ));
        assert_eq!(declined.request_id(), Some("req_1"));

        let invalid = from_answer(
            "t",
            &answer(
                400,
                r#"{"error":{"type":"invalid_request_error","param":"email","message":"Invalid email address: a@b"}}"#,
            ),
        );
        assert!(
            matches!(&invalid, StripeError::InvalidRequest { param: Some(p), status: 400, .. } if p == "email")
        );
        // The message (which may quote personal data) is not in the Display.
        assert!(!invalid.to_string().contains("a@b"), "{invalid}");
        assert_eq!(invalid.message(), Some("Invalid email address: a@b"));

        assert!(matches!(
            from_answer("t", &answer(401, "{}")),
            StripeError::Authentication { .. }
        ));
        assert!(matches!(
            from_answer("t", &answer(403, "")),
            StripeError::Permission { .. }
        ));
        assert!(matches!(
            from_answer("t", &answer(429, "not json")),
            StripeError::RateLimited {
                retry_after: Some(3),
                ..
            }
        ));
        assert!(matches!(
            from_answer(
                "t",
                &answer(
                    400,
                    r#"{"error":{"type":"idempotency_error","message":"Keys for idempotent requests can only be used with the same parameters they were first used with."}}"#
                )
            ),
            StripeError::IdempotencyConflict { .. }
        ));
        assert!(matches!(
            from_answer("t", &answer(503, "<html>")),
            StripeError::Server { status: 503, .. }
        ));
        // localstripe's shape: a type and a message, no code.
        assert!(matches!(
            from_answer(
                "t",
                &answer(
                    404,
                    r#"{"error":{"type":"invalid_request_error","message":"Not Found"}}"#
                )
            ),
            StripeError::InvalidRequest { status: 404, .. }
        ));
    }
}

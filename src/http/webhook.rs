//! `POST /stripe/webhook`: verify the signature on the raw bytes, read the envelope,
//! store the event durably, answer. No handler work happens here (DESIGN §5.3).

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Request, State},
    http::HeaderMap,
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::Serialize;
use tracing::Instrument;

use super::{
    AppState,
    error::ApiError,
    limits::{ClientAddr, Limited},
    metrics,
    request_id::OutcomeLogged,
};
use crate::{
    events::EnvelopeHeader, ingest::IngestError, objects::parse_json, signature::SignatureError,
    store::events::Inserted,
};

#[derive(Debug, Serialize)]
pub struct Received {
    received: bool,
    duplicate: bool,
}

/// Runs before the body is read: a client past its failure or webhook limit, or a
/// `Stripe-Signature` header too large to be Stripe's, costs no body read and no HMAC.
pub async fn guard(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    request: Request,
    next: Next,
) -> Response {
    if let Err(limited) = state
        .limits
        .check_not_blocked(client)
        .and_then(|()| state.limits.webhook(client))
    {
        metrics::webhook("rate_limited");
        return ApiError::from(limited).into_response();
    }
    let oversized = request
        .headers()
        .get("stripe-signature")
        .is_some_and(|v| v.len() > crate::signature::MAX_HEADER_LEN);
    if oversized {
        return refused(&state, client, SignatureError::Oversized.into()).into_response();
    }
    next.run(request).await
}

pub async fn receive(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(Extension<OutcomeLogged>, Json<Received>), ApiError> {
    let Some(header) = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
    else {
        // No signature costs no HMAC and guesses nothing: answered, not counted.
        return Err(rejected(
            "missing signature",
            ApiError::invalid("missing Stripe-Signature header"),
        ));
    };
    if let Err(e) = state.verifier.verify(&body, header, (state.clock)()) {
        return Err(refused(&state, client, e.into()));
    }
    // Signed from here on: what follows is refused, but it is no client's failure.
    let Ok(text) = std::str::from_utf8(&body) else {
        return Err(rejected(
            "not UTF-8",
            ApiError::invalid("the body is not UTF-8 JSON"),
        ));
    };
    let envelope: EnvelopeHeader = parse_json(text, "event").map_err(|e| {
        rejected(
            &e.to_string(),
            ApiError::invalid(format!("malformed event: {e}")),
        )
    })?;
    if let Some(reason) = envelope.invalid() {
        return Err(rejected(
            reason,
            ApiError::invalid(format!("malformed event: {reason}")),
        ));
    }
    let span = tracing::info_span!(
        "webhook",
        event_id = %envelope.id,
        event_type = %envelope.type_,
        account = envelope.account.as_deref().unwrap_or(""),
        livemode = envelope.livemode,
    );
    let event_type = envelope.type_.clone();
    let event = envelope.into_new_event(text.to_string());
    let stored = state.ingest.submit(event).instrument(span.clone()).await;
    let _entered = span.enter();
    match stored {
        Ok(inserted) => {
            let duplicate = inserted == Inserted::Duplicate;
            let outcome = if duplicate { "duplicate" } else { "stored" };
            metrics::webhook(outcome);
            crate::metrics::count(
                "billd_webhook_deliveries_total",
                &[("type", &event_type), ("outcome", outcome)],
            );
            tracing::info!(outcome, "webhook received");
            Ok((
                Extension(OutcomeLogged),
                Json(Received {
                    received: true,
                    duplicate,
                }),
            ))
        }
        Err(e @ IngestError::Storage(_)) | Err(e @ IngestError::Closed) => {
            metrics::webhook("not_stored");
            tracing::error!(outcome = "not_stored", error = %e, "webhook could not be stored");
            Err(ApiError::unavailable(
                "the event could not be stored; Stripe will retry",
            ))
        }
    }
}

/// Counts and logs a rejected delivery. `reason` never holds body content. A signed
/// event with an unusable envelope ends here: it is Stripe's, so it is no failure of
/// the client's to count.
fn rejected(reason: &str, error: ApiError) -> ApiError {
    metrics::webhook("rejected");
    tracing::warn!(outcome = "rejected", reason, "webhook rejected");
    error
}

/// Why a delivery was refused (`reason` never holds body content) and its answer.
struct Refusal {
    reason: String,
    error: ApiError,
}

impl Refusal {
    fn new(reason: &str, error: ApiError) -> Refusal {
        Refusal {
            reason: reason.to_string(),
            error,
        }
    }
}

impl From<SignatureError> for Refusal {
    fn from(e: SignatureError) -> Refusal {
        Refusal::new(
            &e.to_string(),
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid_signature",
                format!("signature verification failed: {e}"),
            ),
        )
    }
}

/// Counts and logs a refused delivery, and counts it against the client's failure
/// limit: past it, the answer is 429 (and later deliveries are refused unread).
fn refused(state: &AppState, client: Option<std::net::IpAddr>, refusal: Refusal) -> ApiError {
    crate::alerts::signature_failed();
    let error = rejected(&refusal.reason, refusal.error);
    match state.limits.failed(client) {
        Ok(()) => error,
        Err(limited @ Limited(_)) => {
            metrics::protection("rate_limited");
            ApiError::from(limited)
        }
    }
}

//! `POST /stripe/webhook`: verify the signature on the raw bytes, read the envelope,
//! store the event durably, answer. No handler work happens here (DESIGN §5.3).

use axum::{Json, body::Bytes, extract::State, http::HeaderMap};
use serde::Serialize;
use tracing::Instrument;

use super::{AppState, error::ApiError, metrics};
use crate::{
    events::{EnvelopeHeader, parse_json},
    ingest::IngestError,
    store::events::{Inserted, NewEvent},
};

#[derive(Debug, Serialize)]
pub struct Received {
    received: bool,
    duplicate: bool,
}

pub async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Received>, ApiError> {
    let Some(header) = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
    else {
        return Err(rejected(
            "missing signature",
            ApiError::invalid("missing Stripe-Signature header"),
        ));
    };
    if let Err(e) = state.verifier.verify(&body, header, (state.clock)()) {
        return Err(rejected(
            &e.to_string(),
            ApiError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "invalid_signature",
                format!("signature verification failed: {e}"),
            ),
        ));
    }
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
    let event = NewEvent {
        id: envelope.id,
        type_: envelope.type_,
        account: envelope.account,
        livemode: envelope.livemode,
        api_version: envelope.api_version,
        created: envelope.created,
        payload: text.to_string(),
    };
    let stored = state.ingest.submit(event).instrument(span.clone()).await;
    let _entered = span.enter();
    match stored {
        Ok(inserted) => {
            let duplicate = inserted == Inserted::Duplicate;
            let outcome = if duplicate { "duplicate" } else { "stored" };
            metrics::webhook(outcome);
            tracing::info!(outcome, "webhook received");
            Ok(Json(Received {
                received: true,
                duplicate,
            }))
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

/// Counts and logs a rejected delivery. `reason` never holds body content.
fn rejected(reason: &str, error: ApiError) -> ApiError {
    metrics::webhook("rejected");
    tracing::warn!(outcome = "rejected", reason, "webhook rejected");
    error
}

//! `POST /stripe/refunds`: a full or partial refund of a payment intent or a charge,
//! never more than what is left to refund (read from Stripe first), honouring
//! `Idempotency-Key`; written through to the mirror with the charge's new refunded
//! amount.

use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};

use super::{Body, write_through};
use crate::{
    events,
    http::{
        AppState,
        error::{ApiError, ApiResult},
        idempotency::Key,
    },
    stripe::{
        self,
        refunds::{Reason, Target},
    },
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    payment_intent: Option<String>,
    charge: Option<String>,
    /// A payment id as `GET /stripe/payments` lists it (a payment intent or a charge).
    payment: Option<String>,
    /// In the currency's minor unit; absent: all that is left.
    amount: Option<i64>,
    /// `requested_by_customer`, `duplicate` or `fraudulent`.
    reason: Option<String>,
}

/// DESIGN §3's refund.
#[derive(Debug, Serialize)]
pub struct Refund {
    id: String,
    /// The payment intent, or the charge of a payment without one.
    payment: String,
    charge: Option<String>,
    amount: i64,
    currency: String,
    status: Option<String>,
    reason: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    Key(key): Key,
    Body(body): Body<CreateBody>,
) -> ApiResult<(StatusCode, Json<Refund>)> {
    let target = target(&body)?;
    let reason = body
        .reason
        .as_deref()
        .map(|r| {
            Reason::parse(r).ok_or_else(|| {
                ApiError::invalid(format!(
                    "reason must be requested_by_customer, duplicate or fraudulent, got {r:?}"
                ))
                .with("param", "reason")
            })
        })
        .transpose()?;
    let refundable = stripe::refunds::refundable(&state.stripe, &target).await?;
    let amount = refundable.check(body.amount)?;
    let refund =
        stripe::refunds::create(&state.stripe, &target, amount, reason, key.as_ref()).await?;

    // The charge's refunded amount changed: read it again for the mirror.
    let charge_id = refundable
        .charge
        .as_ref()
        .map(|c| c.value.id.clone())
        .or_else(|| refund.value.charge.clone());
    let charge = match &charge_id {
        Some(id) => match stripe::refunds::retrieve_charge(&state.stripe, id).await {
            Ok(charge) => Some(charge.raw),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the refunded charge; its webhook will update the mirror");
                None
            }
        },
        None => None,
    };
    let raw = refund.raw.clone();
    write_through(
        &state,
        move |conn, origin| {
            if let Some(charge) = &charge {
                events::write_charge(conn, charge, origin)?;
            }
            events::write_refund(conn, &raw, origin)?;
            Ok(())
        },
        |_| Ok(()),
    )
    .await;

    let v = refund.value;
    let payment_intent = v
        .payment_intent
        .clone()
        .or_else(|| match &target {
            Target::PaymentIntent(id) => Some(id.clone()),
            Target::Charge(_) => None,
        })
        .or_else(|| {
            refundable
                .charge
                .as_ref()
                .and_then(|c| c.value.payment_intent.clone())
        });
    let charge = v.charge.clone().or(charge_id);
    Ok((
        StatusCode::CREATED,
        Json(Refund {
            payment: payment_intent
                .or_else(|| charge.clone())
                .unwrap_or_else(|| target.id().to_string()),
            charge,
            amount: v.amount.unwrap_or(amount),
            currency: v.currency.unwrap_or(refundable.currency),
            status: v.status,
            reason: v.reason,
            id: v.id,
        }),
    ))
}

/// Exactly one of `payment_intent`, `charge`, `payment`.
fn target(body: &CreateBody) -> Result<Target, ApiError> {
    let given = [
        ("payment_intent", &body.payment_intent),
        ("charge", &body.charge),
        ("payment", &body.payment),
    ];
    let mut named = given
        .iter()
        .filter_map(|(name, v)| v.as_deref().map(|v| (*name, v)));
    let (Some((name, id)), None) = (named.next(), named.next()) else {
        return Err(ApiError::invalid(
            "name what to refund with exactly one of payment_intent, charge or payment",
        ));
    };
    let target = Target::parse(id).ok_or_else(|| {
        ApiError::invalid(format!(
            "{name}: {id:?} is not a payment intent (pi_…) or a charge (ch_…)"
        ))
        .with("param", name)
    })?;
    match (name, &target) {
        ("payment_intent", Target::Charge(_)) | ("charge", Target::PaymentIntent(_)) => {
            Err(ApiError::invalid(format!(
                "{name}: {id:?} is not a {}",
                name.replace('_', " ")
            ))
            .with("param", name))
        }
        _ => Ok(target),
    }
}

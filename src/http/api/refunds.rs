//! `POST /stripe/refunds`: a full or partial refund of a payment intent or a charge,
//! never more than what is left to refund (read from Stripe first), honouring
//! `Idempotency-Key`; written through to the mirror with the charge's new refunded
//! amount.

use axum::{Extension, Json, extract::State, http::StatusCode};
use serde::Deserialize;

use super::{Body, write_through_for};
use crate::{
    events,
    http::{
        AppState,
        auth::Caller,
        error::{ApiError, ApiResult},
        idempotency::Key,
    },
    ids::{self, Kind},
    store::audit,
    stripe::{
        self, IdempotencyKey,
        refunds::{Made, Reason, RefundView, Target},
    },
    time::now_secs,
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
    /// The connected account the payment was made on (a direct charge), sent as
    /// `Stripe-Account`.
    account: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Key(key): Key,
    Body(body): Body<CreateBody>,
) -> ApiResult<(StatusCode, Json<RefundView>)> {
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
    ids::check_opt(Kind::Account, "account", body.account.as_deref())?;
    let stripe = state.stripe.acting_for(body.account.as_deref())?;
    let refundable = stripe::refunds::refundable(&stripe, &target).await?;
    let amount = refundable.check(body.amount)?;
    // Always a key, so that a refund whose outcome is unknown can be checked by
    // retrying with it: Stripe answers a key it has seen with the first refund.
    let key = key.unwrap_or_else(IdempotencyKey::generate);
    let made = stripe::refunds::refund(&stripe, &refundable, amount, reason, Some(&key)).await;
    let Made {
        view,
        refund_raw,
        charge_raw,
    } = match made {
        Ok(made) => made,
        Err(e) if e.outcome_unknown() => {
            return Err(outcome_unknown(&state, &caller, &refundable, amount, &key, e).await);
        }
        Err(e) => return Err(e.into()),
    };

    // Who refunded what is recorded whatever happens to the write-through below.
    let detail = format!(
        "payment {} amount {} {}",
        view.payment, view.amount, view.currency
    );
    let refund_id = view.id.clone();
    let actor = format!("token:{}", caller.0);
    if let Err(e) = state
        .store
        .run(move |c| {
            audit::record(
                c,
                &actor,
                "refund.create",
                Some(&refund_id),
                Some(&detail),
                now_secs(),
            )
        })
        .await
    {
        tracing::error!(error = %e, refund = %view.id, "the refund was made but its audit entry could not be written");
    }
    write_through_for(
        &state,
        body.account,
        move |conn, origin| {
            if let Some(charge) = &charge_raw {
                events::write_charge(conn, charge, origin)?;
            }
            events::write_refund(conn, &refund_raw, origin)?;
            Ok(())
        },
        |_| Ok(()),
    )
    .await;
    Ok((StatusCode::CREATED, Json(view)))
}

/// A refund Stripe may or may not have made (no answer, a timeout, a 5xx): nothing is
/// mirrored (nothing claims what Stripe never confirmed), the audit log records it as
/// unknown with its key, and the answer says how to find out: the same request again
/// with `Idempotency-Key: <key>`, which Stripe answers with the first attempt's refund
/// if there was one, and makes it if there was not.
async fn outcome_unknown(
    state: &AppState,
    caller: &Caller,
    refundable: &stripe::refunds::Refundable,
    amount: i64,
    key: &IdempotencyKey,
    e: stripe::StripeError,
) -> ApiError {
    let (payment, currency, key_text) = (
        refundable.target.id().to_string(),
        refundable.currency.clone(),
        key.as_str().to_string(),
    );
    let detail = format!(
        "payment {payment} amount {amount} {currency}: outcome unknown ({e}); check by \
         retrying with Idempotency-Key {key_text}"
    );
    let actor = format!("token:{}", caller.0);
    let target = payment.clone();
    if let Err(e) = state
        .store
        .run(move |c| {
            audit::record(
                c,
                &actor,
                "refund.unknown",
                Some(&target),
                Some(&detail),
                now_secs(),
            )
        })
        .await
    {
        tracing::error!(error = %e, payment = %payment, "a refund's unknown outcome could not be audited");
    }
    tracing::warn!(payment = %payment, "the outcome of a refund is unknown");
    ApiError::from(e)
        .with("outcome", "unknown")
        .with("idempotency_key", key.as_str())
        .with(
            "check",
            format!(
                "the refund may or may not have been made: send this request again with \
                 the header Idempotency-Key: {}; Stripe answers it with the refund if one \
                 was made, and makes it once if not",
                key.as_str()
            ),
        )
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
    let kind = match name {
        "payment_intent" => Kind::PaymentIntent,
        "charge" => Kind::Charge,
        _ => Kind::Payment,
    };
    let id = ids::check(kind, name, id)?;
    // A checked id of these kinds is always one or the other.
    Target::parse(id).ok_or_else(|| {
        ApiError::invalid(format!("{name} must be a payment intent or charge id"))
            .with("param", name)
    })
}

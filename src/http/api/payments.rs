//! `GET /stripe/payments?customer=&status=` from the mirror, newest first, and
//! `POST /stripe/payments`: a one-time payment, a PaymentIntent created and confirmed
//! in Stripe, written through to the mirror.

use crate::http::api::Query;
use axum::{Extension, Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};

use super::{
    Body, List,
    compliance::{self, Ask},
    page_limit, write_through_for,
};
use crate::{
    events,
    http::{
        AppState,
        auth::Caller,
        error::{ApiError, ApiResult},
        idempotency::Key,
    },
    ids::{self, Kind},
    store::mirror::{self, Paging, Payment},
    stripe::{self, payments::NewPayment},
};

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    customer: Option<String>,
    status: Option<String>,
    /// Only the payments of this connected account.
    account: Option<String>,
    limit: Option<usize>,
    starting_after: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    Query(q): Query<ListQuery>,
) -> ApiResult<Json<List<Payment>>> {
    ids::check_opt(Kind::Account, "account", q.account.as_deref())?;
    let paging = Paging {
        limit: page_limit(q.limit)?,
        starting_after: q.starting_after,
    };
    let page = state
        .store
        .run(move |c| {
            mirror::list_payments(
                c,
                q.customer.as_deref(),
                q.status.as_deref(),
                q.account.as_deref(),
                &paging,
            )
        })
        .await?;
    Ok(Json(page.into()))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    customer: Option<String>,
    /// In the currency's minor unit (cents; yen for JPY).
    amount: i64,
    /// Lowercase ISO code.
    currency: String,
    payment_method: String,
    description: Option<String>,
    /// Where a payment method that redirects (3-D Secure, bank redirects) sends the
    /// customer back to.
    return_url: Option<String>,
    /// Charge a saved payment method without the customer present.
    #[serde(default)]
    off_session: bool,
    /// Make the payment on the connected account itself (a direct charge, sent with
    /// `Stripe-Account`); its customer and payment method are that account's.
    account: Option<String>,
    /// A destination charge on the platform: the funds go to this connected account...
    transfer_data: Option<TransferData>,
    /// ...less what the platform keeps (minor units).
    application_fee_amount: Option<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferData {
    destination: String,
}

/// A payment as `GET /stripe/payments` lists it, plus what the customer's browser
/// needs when Stripe asks for more (`requires_action`): the client secret.
#[derive(Debug, Serialize)]
pub struct PaymentAnswer {
    #[serde(flatten)]
    payment: Payment,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_secret: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_action: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Key(key): Key,
    Body(body): Body<CreateBody>,
) -> ApiResult<(StatusCode, Json<PaymentAnswer>)> {
    if body.amount <= 0 {
        return Err(
            ApiError::invalid("amount must be a positive number of minor units")
                .with("param", "amount"),
        );
    }
    let currency = body.currency.to_ascii_lowercase();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
        return Err(
            ApiError::invalid("currency must be a three-letter ISO code such as \"eur\"")
                .with("param", "currency"),
        );
    }
    ids::check_opt(Kind::Customer, "customer", body.customer.as_deref())?;
    ids::check(Kind::PaymentMethod, "payment_method", &body.payment_method)?;
    ids::check_opt(Kind::Account, "account", body.account.as_deref())?;
    let destination = body.transfer_data.map(|t| t.destination);
    ids::check_opt(
        Kind::Account,
        "transfer_data.destination",
        destination.as_deref(),
    )?;
    if let Some(fee) = body.application_fee_amount {
        if fee < 0 || fee > body.amount {
            return Err(ApiError::invalid(
                "application_fee_amount must be between 0 and the amount",
            )
            .with("param", "application_fee_amount"));
        }
        if destination.is_none() && body.account.is_none() {
            return Err(ApiError::invalid(
                "application_fee_amount needs a connected account: account or \
                 transfer_data.destination",
            )
            .with("param", "application_fee_amount"));
        }
    }
    if destination.is_some() && body.account.is_some() {
        return Err(ApiError::invalid(
            "give account (a direct charge) or transfer_data.destination (a destination \
             charge), not both",
        ));
    }
    compliance::check(
        &state,
        &caller,
        Ask {
            action: "payment.create",
            customer: body.customer.clone(),
            payment_method: Some(body.payment_method.clone()),
            amounts: vec![(body.amount, currency.clone())],
            ..Ask::default()
        },
    )
    .await?;
    let new = NewPayment {
        customer: body.customer,
        amount: body.amount,
        currency,
        payment_method: body.payment_method,
        description: body.description,
        return_url: body.return_url,
        off_session: body.off_session,
        destination,
        application_fee_amount: body.application_fee_amount,
    };
    let stripe = state.stripe.acting_for(body.account.as_deref())?;
    let pi = stripe::payments::create(&stripe, &new, key.as_ref()).await?;
    let v = &pi.value;
    let status = v.status.clone().unwrap_or_else(|| "unknown".into());
    let requires_action = status == "requires_action";
    let client_secret = v.client_secret.clone().filter(|_| requires_action);
    let next_action = v.next_action.as_ref().and_then(|a| a.type_.clone());
    let fallback = Payment {
        id: v.id.clone(),
        charge: None,
        customer: v.customer.clone(),
        invoice: None,
        amount: v.amount.unwrap_or(body.amount),
        amount_refunded: 0,
        currency: v.currency.clone().unwrap_or_else(|| new.currency.clone()),
        status,
        failure_code: None,
        created: v.created.unwrap_or_else(crate::time::now_secs),
    };
    let id = v.id.clone();
    let charge = v.latest_charge_object().map(str::to_string);
    let raw = pi.raw;
    let payment = write_through_for(
        &state,
        body.account,
        move |conn, origin| {
            // The intent last: its status sums the payment up (a charge says
            // `succeeded` before it is captured).
            if let Some(charge) = &charge {
                events::write_charge(conn, charge, origin)?;
            }
            events::write_payment_intent(conn, &raw, origin)?;
            Ok(())
        },
        move |conn| mirror::get_payment(conn, &id),
    )
    .await
    .unwrap_or(fallback);
    Ok((
        StatusCode::CREATED,
        Json(PaymentAnswer {
            payment,
            client_secret,
            next_action,
        }),
    ))
}

//! A customer's payment methods through Stripe: `POST
//! /stripe/customers/{id}/payment-methods` (attach `{payment_method}`), `DELETE
//! …/{pm}` (detach), `POST …/{pm}/default` (make it the default for invoices and
//! subscriptions). Each is written through to the mirror.

use crate::http::api::Path;
use axum::{Json, extract::State};
use serde::Deserialize;

use super::{Body, acting_for_object, customers, write_through_for};
use crate::{
    events,
    http::{
        AppState,
        error::{ApiError, ApiResult},
        idempotency::Key,
    },
    ids::{self, Kind},
    objects,
    store::mirror::{Customer, PaymentMethod, Table},
    stripe::{self, Object},
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachBody {
    /// A payment method id (`pm_…`) made by Stripe.js or the API.
    payment_method: String,
}

pub async fn attach(
    State(state): State<AppState>,
    Path(customer): Path<String>,
    Key(key): Key,
    Body(body): Body<AttachBody>,
) -> ApiResult<Json<PaymentMethod>> {
    ids::check(Kind::Customer, "id", &customer)?;
    ids::check(Kind::PaymentMethod, "payment_method", &body.payment_method)?;
    // A connected account's customer's payment methods are on that account.
    let (account, stripe) = acting_for_object(&state, None, Table::Customers, &customer).await?;
    let pm =
        stripe::payment_methods::attach(&stripe, &body.payment_method, &customer, key.as_ref())
            .await?;
    Ok(Json(write_payment_method(&state, account, pm, false).await))
}

pub async fn detach(
    State(state): State<AppState>,
    Path((customer, pm)): Path<(String, String)>,
    Key(key): Key,
) -> ApiResult<Json<PaymentMethod>> {
    ids::check(Kind::Customer, "id", &customer)?;
    ids::check(Kind::PaymentMethod, "pm", &pm)?;
    let (account, stripe) = acting_for_object(&state, None, Table::Customers, &customer).await?;
    // Stripe detaches by id alone: make sure the path's customer owns it.
    let current = stripe::payment_methods::retrieve(&stripe, &pm).await?;
    if current.value.customer.as_deref() != Some(customer.as_str()) {
        return Err(ApiError::not_found(format!(
            "payment method {pm} is not attached to customer {customer}"
        )));
    }
    let detached = stripe::payment_methods::detach(&stripe, &pm, key.as_ref()).await?;
    Ok(Json(
        write_payment_method(&state, account, detached, true).await,
    ))
}

pub async fn set_default(
    State(state): State<AppState>,
    Path((customer, pm)): Path<(String, String)>,
    Key(key): Key,
) -> ApiResult<Json<Customer>> {
    ids::check(Kind::Customer, "id", &customer)?;
    ids::check(Kind::PaymentMethod, "pm", &pm)?;
    let (account, stripe) = acting_for_object(&state, None, Table::Customers, &customer).await?;
    let updated =
        stripe::customers::set_default_payment_method(&stripe, &customer, &pm, key.as_ref())
            .await?;
    Ok(Json(customers::answer(&state, account, updated).await))
}

async fn write_payment_method(
    state: &AppState,
    account: Option<String>,
    pm: Object<objects::payment_method::PaymentMethod>,
    detached: bool,
) -> PaymentMethod {
    let raw = pm.raw;
    write_through_for(
        state,
        account,
        move |conn, origin| {
            events::write_payment_method(conn, &raw, origin, detached)?;
            Ok(())
        },
        |_| Ok(()),
    )
    .await;
    let v = pm.value;
    let card = v.card.as_ref();
    PaymentMethod {
        type_: v.type_.clone(),
        card_brand: card.and_then(|c| c.brand.clone()),
        card_last4: card.and_then(|c| c.last4.clone()),
        exp_month: card.and_then(|c| c.exp_month),
        exp_year: card.and_then(|c| c.exp_year),
        id: v.id,
    }
}

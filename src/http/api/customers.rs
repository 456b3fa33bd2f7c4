//! Customers: `POST /stripe/customers`, `PATCH` and `DELETE /stripe/customers/{id}`
//! through Stripe (then written through to the mirror), and `GET
//! /stripe/customers/{id}`: the mirrored customer with its subscriptions, payment
//! methods, open flags and MRR now; `GET /stripe/customers/{id}/mrr`: its MRR
//! movements, the rows of the MRR movements report over its subscriptions only.

use std::collections::HashMap;

use crate::http::api::{Path, Query};
use axum::{Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};

use super::{
    Body, List, acting_for_object,
    reports::{RangeParams, api_error},
    write_through_for,
};
use crate::{
    events,
    http::{
        AppState,
        error::{ApiError, ApiResult},
        idempotency::Key,
    },
    ids::{self, Kind},
    report::{self, MrrMovementRow, MrrRow, ReportError},
    store::{
        Result as StoreResult,
        mirror::{self, Customer, Table},
    },
    stripe::{self, Object, customers::CustomerFields},
    time::now_secs,
};

/// `GET /stripe/customers/{id}`: the mirrored customer and its MRR now.
#[derive(Debug, Serialize)]
pub struct CustomerWithMrr {
    #[serde(flatten)]
    customer: Customer,
    /// Per currency, the MRR report's rows over this customer's subscriptions; empty
    /// when none is active, past due or trialing.
    mrr: Vec<MrrRow>,
}

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<CustomerWithMrr>> {
    let now = now_secs();
    let answer: StoreResult<Result<CustomerWithMrr, ReportError>> = state
        .store
        .run(move |c| {
            let customer = mirror::get_customer(c, &id)?;
            Ok(report::customer_mrr(c, &id, now, report::Basis::Net)
                .map(|mrr| CustomerWithMrr { customer, mrr }))
        })
        .await;
    Ok(Json(answer?.map_err(api_error)?))
}

/// `GET /stripe/customers/{id}/mrr?from=&to=&interval=&currency=`: the customer's MRR
/// movements, as the MRR movements report shows them with only this customer.
pub async fn mrr(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(p): Query<RangeParams>,
) -> ApiResult<Json<List<MrrMovementRow>>> {
    ids::check(Kind::Customer, "id", &id)?;
    let q = p.parse()?;
    let now = now_secs();
    let rows: StoreResult<Result<Vec<MrrMovementRow>, ReportError>> = state
        .store
        .run(move |c| {
            // An unknown customer is a 404, not an empty history.
            mirror::get_customer(c, &id)?;
            Ok(report::customer_mrr_movements(c, &id, &q, now))
        })
        .await;
    Ok(Json(List {
        data: rows?.map_err(api_error)?,
        has_more: false,
    }))
}

/// `POST /stripe/customers` and `PATCH /stripe/customers/{id}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerBody {
    email: Option<String>,
    name: Option<String>,
    description: Option<String>,
    phone: Option<String>,
    metadata: Option<HashMap<String, String>>,
    /// On create only: a payment method to attach and make the default.
    payment_method: Option<String>,
    /// On create only: make the customer on this connected account (`Stripe-Account`).
    account: Option<String>,
}

impl CustomerBody {
    fn fields(self) -> CustomerFields {
        CustomerFields {
            email: self.email,
            name: self.name,
            description: self.description,
            phone: self.phone,
            metadata: self.metadata,
        }
    }
}

pub async fn create(
    State(state): State<AppState>,
    Key(key): Key,
    Body(body): Body<CustomerBody>,
) -> ApiResult<(StatusCode, Json<Customer>)> {
    ids::check_opt(
        Kind::PaymentMethod,
        "payment_method",
        body.payment_method.as_deref(),
    )?;
    ids::check_opt(Kind::Account, "account", body.account.as_deref())?;
    let payment_method = body.payment_method.clone();
    let account = body.account.clone();
    let stripe = state.stripe.acting_for(account.as_deref())?;
    let created = stripe::customers::create(
        &stripe,
        &body.fields(),
        payment_method.as_deref(),
        key.as_ref(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(answer(&state, account, created).await),
    ))
}

pub async fn update(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Key(key): Key,
    Body(body): Body<CustomerBody>,
) -> ApiResult<Json<Customer>> {
    ids::check(Kind::Customer, "id", &id)?;
    if body.payment_method.is_some() {
        return Err(ApiError::invalid(
            "payment_method: attach with POST /stripe/customers/{id}/payment-methods and make it \
             the default with POST …/payment-methods/{pm}/default",
        )
        .with("param", "payment_method"));
    }
    if body.account.is_some() {
        return Err(ApiError::invalid(
            "account: a customer's account is set when it is created, not changed",
        )
        .with("param", "account"));
    }
    let fields = body.fields();
    if fields.email.is_none()
        && fields.name.is_none()
        && fields.description.is_none()
        && fields.phone.is_none()
        && fields.metadata.is_none()
    {
        return Err(ApiError::invalid(
            "nothing to change: send one of email, name, description, phone, metadata",
        ));
    }
    // A connected account's customer lives on that account.
    let (account, stripe) = acting_for_object(&state, None, Table::Customers, &id).await?;
    let updated = stripe::customers::update(&stripe, &id, &fields, key.as_ref()).await?;
    Ok(Json(answer(&state, account, updated).await))
}

/// Deletes the customer in Stripe (Stripe cancels its subscriptions); the mirror keeps
/// it, marked deleted.
pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Customer>> {
    ids::check(Kind::Customer, "id", &id)?;
    let (account, stripe) = acting_for_object(&state, None, Table::Customers, &id).await?;
    let deleted = stripe::customers::delete(&stripe, &id).await?;
    Ok(Json(answer(&state, account, deleted).await))
}

/// Writes the customer Stripe returned (on the connected `account`, if any) through to
/// the mirror and answers the mirror's view of it (or, if that fails, Stripe's).
pub(super) async fn answer(
    state: &AppState,
    account: Option<String>,
    c: Object<stripe::customers::Customer>,
) -> Customer {
    let id = c.value.id.clone();
    let raw = c.raw;
    let read = write_through_for(
        state,
        account,
        move |conn, origin| events::write_customer(conn, &raw, origin),
        move |conn| mirror::get_customer(conn, &id),
    )
    .await;
    read.unwrap_or_else(|| {
        let v = c.value;
        Customer {
            default_payment_method: v.default_payment_method().map(str::to_string),
            id: v.id,
            email: v.email,
            name: v.name,
            deleted: v.deleted,
            subscriptions: Vec::new(),
            payment_methods: Vec::new(),
            flags: Vec::new(),
        }
    })
}

//! Subscriptions: `POST /stripe/subscriptions` (price, quantity, trial),
//! `PATCH /stripe/subscriptions/{id}` (price or quantity with a proration choice,
//! cancel at period end, resume), `DELETE /stripe/subscriptions/{id}` (now, or
//! `?at_period_end=true`) through Stripe, written through to the mirror; and `GET
//! /stripe/subscriptions/{id}` from the mirror.

use crate::http::api::{Path, Query};
use axum::{Extension, Json, extract::State, http::StatusCode};
use serde::Deserialize;

use super::{
    Body, acting_for_object,
    compliance::{self, Ask},
    write_through_for,
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
    store::mirror::{self, Subscription, Table},
    stripe::{
        self, IdempotencyKey, Object,
        subscriptions::{Changes, NewSubscription, Proration},
    },
};

pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Subscription>> {
    Ok(Json(
        state
            .store
            .run(move |c| mirror::get_subscription(c, &id))
            .await?,
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    customer: String,
    /// A recurring price (or legacy plan) id.
    price: String,
    quantity: Option<u64>,
    trial_days: Option<u32>,
    proration_behavior: Option<String>,
    /// Make it on this connected account (`Stripe-Account`); by default, the account
    /// the mirror records for the customer (the platform for its own customers).
    account: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Key(key): Key,
    Body(body): Body<CreateBody>,
) -> ApiResult<(StatusCode, Json<Subscription>)> {
    ids::check(Kind::Customer, "customer", &body.customer)?;
    ids::check(Kind::Price, "price", &body.price)?;
    ids::check_opt(Kind::Account, "account", body.account.as_deref())?;
    if body.quantity == Some(0) {
        return Err(ApiError::invalid("quantity must be at least 1").with("param", "quantity"));
    }
    let proration = proration(body.proration_behavior.as_deref())?;
    let (account, stripe) =
        acting_for_object(&state, body.account, Table::Customers, &body.customer).await?;
    // Checked with its full price even with a trial: it will take that money.
    compliance::check(
        &state,
        &caller,
        Ask {
            action: "subscription.create",
            customer: Some(body.customer.clone()),
            prices: vec![(body.price.clone(), body.quantity.unwrap_or(1))],
            ..Ask::default()
        },
    )
    .await?;
    let new = NewSubscription {
        customer: body.customer,
        price: body.price,
        quantity: body.quantity,
        trial_days: body.trial_days,
    };
    let created = stripe::subscriptions::create(&stripe, &new, proration, key.as_ref()).await?;
    Ok((
        StatusCode::CREATED,
        Json(answer(&state, account, created).await),
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBody {
    price: Option<String>,
    quantity: Option<u64>,
    /// `create_prorations` (Stripe's default), `none` or `always_invoice`.
    proration_behavior: Option<String>,
    cancel_at_period_end: Option<bool>,
    /// Undo a cancellation at period end, or resume a paused subscription.
    resume: Option<bool>,
    /// The connected account the subscription is on, when the mirror does not know it
    /// yet (by default, the account the mirror records for it).
    account: Option<String>,
}

pub async fn update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Key(key): Key,
    Body(body): Body<UpdateBody>,
) -> ApiResult<Json<Subscription>> {
    ids::check(Kind::Subscription, "id", &id)?;
    ids::check_opt(Kind::Price, "price", body.price.as_deref())?;
    ids::check_opt(Kind::Account, "account", body.account.as_deref())?;
    if body.quantity == Some(0) {
        return Err(ApiError::invalid("quantity must be at least 1").with("param", "quantity"));
    }
    let (account, stripe) =
        acting_for_object(&state, body.account.clone(), Table::Subscriptions, &id).await?;
    if body.price.is_some() || body.quantity.is_some() {
        // A change of price or quantity is checked as what the subscription will then
        // charge, with what the mirror knows of it for the part the body leaves out.
        let sub_id = id.clone();
        let known = state
            .store
            .run(move |c| match mirror::get_subscription(c, &sub_id) {
                Ok(s) => Ok(Some(s)),
                Err(crate::store::StoreError::NotFound) => Ok(None),
                Err(e) => Err(e),
            })
            .await?;
        let price = body
            .price
            .clone()
            .or_else(|| known.as_ref().and_then(|s| s.price.clone()));
        let quantity = body.quantity.unwrap_or_else(|| {
            known
                .as_ref()
                .and_then(|s| s.quantity)
                .and_then(|q| u64::try_from(q).ok())
                .unwrap_or(1)
        });
        compliance::check(
            &state,
            &caller,
            Ask {
                action: "subscription.update",
                customer: known.and_then(|s| s.customer),
                prices: price.map(|p| (p, quantity)).into_iter().collect(),
                ..Ask::default()
            },
        )
        .await?;
    }
    let mut changes = Changes {
        price: body.price,
        quantity: body.quantity,
        proration: proration(body.proration_behavior.as_deref())?,
        cancel_at_period_end: body.cancel_at_period_end,
    };
    if body.resume == Some(true) {
        if changes.cancel_at_period_end == Some(true) {
            return Err(ApiError::invalid(
                "resume and cancel_at_period_end: true contradict each other",
            ));
        }
        let paused = resume_if_paused(&stripe, &id, key.as_ref()).await?;
        if let Some(resumed) = paused {
            if changes.price.is_none() && changes.quantity.is_none() {
                return Ok(Json(answer(&state, account, resumed).await));
            }
            write(&state, account.clone(), resumed).await;
        } else {
            changes.cancel_at_period_end = Some(false);
        }
    }
    if changes.price.is_none()
        && changes.quantity.is_none()
        && changes.cancel_at_period_end.is_none()
    {
        return Err(ApiError::invalid(
            "nothing to change: send price, quantity, cancel_at_period_end or resume",
        ));
    }
    let key = key.map(|k| {
        if body.resume == Some(true) {
            k.derived("update")
        } else {
            k
        }
    });
    let updated = stripe::subscriptions::update(&stripe, &id, &changes, key.as_ref()).await?;
    Ok(Json(answer(&state, account, updated).await))
}

/// Resumes `id` if Stripe says it is paused; `None` if it is not.
async fn resume_if_paused(
    stripe: &stripe::Client,
    id: &str,
    key: Option<&IdempotencyKey>,
) -> Result<Option<Object<stripe::subscriptions::Subscription>>, ApiError> {
    let current = stripe::subscriptions::retrieve(stripe, id).await?;
    if current.value.status.as_deref() != Some("paused") {
        return Ok(None);
    }
    Ok(Some(stripe::subscriptions::resume(stripe, id, key).await?))
}

#[derive(Debug, Default, Deserialize)]
pub struct CancelQuery {
    /// Cancel when the paid period ends instead of now.
    #[serde(default)]
    at_period_end: bool,
    /// The connected account the subscription is on, when the mirror does not know it
    /// yet (by default, the account the mirror records for it).
    account: Option<String>,
}

pub async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<CancelQuery>,
    Key(key): Key,
) -> ApiResult<Json<Subscription>> {
    ids::check(Kind::Subscription, "id", &id)?;
    ids::check_opt(Kind::Account, "account", q.account.as_deref())?;
    let (account, stripe) = acting_for_object(&state, q.account, Table::Subscriptions, &id).await?;
    let canceled = if q.at_period_end {
        let changes = Changes {
            cancel_at_period_end: Some(true),
            ..Changes::default()
        };
        stripe::subscriptions::update(&stripe, &id, &changes, key.as_ref()).await?
    } else {
        stripe::subscriptions::cancel(&stripe, &id).await?
    };
    Ok(Json(answer(&state, account, canceled).await))
}

fn proration(value: Option<&str>) -> Result<Option<Proration>, ApiError> {
    value
        .map(|v| {
            Proration::parse(v).ok_or_else(|| {
                ApiError::invalid(format!(
                    "proration_behavior must be create_prorations, none or always_invoice, got {v:?}"
                ))
                .with("param", "proration_behavior")
            })
        })
        .transpose()
}

async fn write(
    state: &AppState,
    account: Option<String>,
    s: Object<stripe::subscriptions::Subscription>,
) {
    let raw = s.raw;
    write_through_for(
        state,
        account,
        move |conn, origin| events::write_subscription(conn, &raw, origin),
        |_| Ok(()),
    )
    .await;
}

/// Writes the subscription Stripe returned (on the connected `account`, if any)
/// through to the mirror and answers the mirror's view of it (or, if that fails,
/// Stripe's).
async fn answer(
    state: &AppState,
    account: Option<String>,
    s: Object<stripe::subscriptions::Subscription>,
) -> Subscription {
    let id = s.value.id.clone();
    let raw = s.raw;
    let read = write_through_for(
        state,
        account,
        move |conn, origin| events::write_subscription(conn, &raw, origin),
        move |conn| mirror::get_subscription(conn, &id),
    )
    .await;
    read.unwrap_or_else(|| {
        let v = s.value;
        Subscription {
            id: v.id,
            customer: v.customer,
            status: v.status,
            price: None,
            quantity: None,
            current_period_end: None,
            cancel_at_period_end: v.cancel_at_period_end.unwrap_or(false),
            canceled_at: None,
            trial_end: None,
            ended_at: None,
            currency: None,
            items: Vec::new(),
        }
    })
}

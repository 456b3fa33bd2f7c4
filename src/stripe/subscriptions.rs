//! Subscriptions: create, change price or quantity, cancel (now or at period end),
//! resume.
//!
//! Prices are sent as the items' `plan`: Stripe takes a recurring price's id there as
//! well as a plan's, and test doubles without the Prices API (localstripe) only know
//! `plan`.

use serde::Deserialize;
use stripe_billing::subscription::{
    CancelSubscription, CreateSubscription, CreateSubscriptionItems,
    CreateSubscriptionProrationBehavior, ResumeSubscription, RetrieveSubscription,
    UpdateSubscription, UpdateSubscriptionItems, UpdateSubscriptionProrationBehavior,
};

use super::{Client, IdempotencyKey, Object, StripeError};
use crate::objects::{List, expandable};

/// billd's view of a subscription.
#[derive(Debug, Deserialize)]
pub struct Subscription {
    pub id: String,
    #[serde(default, deserialize_with = "expandable")]
    pub customer: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub cancel_at_period_end: Option<bool>,
    #[serde(default)]
    pub livemode: bool,
    #[serde(default)]
    pub items: List<Item>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Item {
    pub id: String,
}

/// How Stripe bills a change of price or quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proration {
    CreateProrations,
    None,
    AlwaysInvoice,
}

impl Proration {
    pub fn parse(s: &str) -> Option<Proration> {
        match s {
            "create_prorations" => Some(Proration::CreateProrations),
            "none" => Some(Proration::None),
            "always_invoice" => Some(Proration::AlwaysInvoice),
            _ => None,
        }
    }

    fn for_create(self) -> CreateSubscriptionProrationBehavior {
        match self {
            Proration::CreateProrations => CreateSubscriptionProrationBehavior::CreateProrations,
            Proration::None => CreateSubscriptionProrationBehavior::None,
            Proration::AlwaysInvoice => CreateSubscriptionProrationBehavior::AlwaysInvoice,
        }
    }

    fn for_update(self) -> UpdateSubscriptionProrationBehavior {
        match self {
            Proration::CreateProrations => UpdateSubscriptionProrationBehavior::CreateProrations,
            Proration::None => UpdateSubscriptionProrationBehavior::None,
            Proration::AlwaysInvoice => UpdateSubscriptionProrationBehavior::AlwaysInvoice,
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewSubscription {
    pub customer: String,
    pub price: String,
    pub quantity: Option<u64>,
    pub trial_days: Option<u32>,
}

/// A change; absent fields are left as they are.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    pub price: Option<String>,
    pub quantity: Option<u64>,
    pub proration: Option<Proration>,
    pub cancel_at_period_end: Option<bool>,
}

pub async fn create(
    client: &Client,
    new: &NewSubscription,
    proration: Option<Proration>,
    key: Option<&IdempotencyKey>,
) -> Result<Object<Subscription>, StripeError> {
    let mut item = CreateSubscriptionItems::new();
    item.plan = Some(new.price.clone());
    item.quantity = new.quantity;
    let mut request = CreateSubscription::new()
        .customer(&new.customer)
        .items(vec![item]);
    if let Some(days) = new.trial_days {
        request = request.trial_period_days(days);
    }
    if let Some(p) = proration {
        request = request.proration_behavior(p.for_create());
    }
    client.send("subscriptions.create", &request, key).await
}

pub async fn retrieve(client: &Client, id: &str) -> Result<Object<Subscription>, StripeError> {
    client
        .send(
            "subscriptions.retrieve",
            &RetrieveSubscription::new(id),
            None,
        )
        .await
}

/// Changes the price and/or quantity (of the first item: billd's subscriptions have
/// one price), the proration, and whether it cancels at the period's end.
pub async fn update(
    client: &Client,
    id: &str,
    changes: &Changes,
    key: Option<&IdempotencyKey>,
) -> Result<Object<Subscription>, StripeError> {
    let mut request = UpdateSubscription::new(id);
    if changes.price.is_some() || changes.quantity.is_some() {
        let current = retrieve(client, id).await?;
        let Some(first) = current.value.items.data.first() else {
            return Err(StripeError::InvalidRequest {
                status: 400,
                code: None,
                param: Some("items".into()),
                message: format!(
                    "subscription {id} has no item whose price or quantity could change"
                ),
                request_id: None,
            });
        };
        let mut item = UpdateSubscriptionItems::new();
        item.id = Some(first.id.clone());
        item.plan = changes.price.clone();
        item.quantity = changes.quantity;
        request = request.items(vec![item]);
    }
    if let Some(p) = changes.proration {
        request = request.proration_behavior(p.for_update());
    }
    if let Some(at_end) = changes.cancel_at_period_end {
        request = request.cancel_at_period_end(at_end);
    }
    client.send("subscriptions.update", &request, key).await
}

/// Cancels now (Stripe's `DELETE /v1/subscriptions/{id}`).
pub async fn cancel(client: &Client, id: &str) -> Result<Object<Subscription>, StripeError> {
    client
        .send("subscriptions.cancel", &CancelSubscription::new(id), None)
        .await
}

/// Resumes a paused subscription.
pub async fn resume(
    client: &Client,
    id: &str,
    key: Option<&IdempotencyKey>,
) -> Result<Object<Subscription>, StripeError> {
    client
        .send("subscriptions.resume", &ResumeSubscription::new(id), key)
        .await
}

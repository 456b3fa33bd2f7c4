//! Payment methods: attach to a customer, detach.

use serde::Deserialize;
use stripe_payment::payment_method::{
    AttachPaymentMethod, DetachPaymentMethod, RetrievePaymentMethod,
};

use super::{Client, IdempotencyKey, Object, StripeError};
use crate::objects::expandable;

/// billd's view of a payment method (no card numbers or billing details: billd never
/// reads them).
#[derive(Debug, Clone, Deserialize)]
pub struct PaymentMethod {
    pub id: String,
    #[serde(default, deserialize_with = "expandable")]
    pub customer: Option<String>,
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    #[serde(default)]
    pub card: Option<Card>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Card {
    #[serde(default)]
    pub brand: Option<String>,
    #[serde(default)]
    pub last4: Option<String>,
    #[serde(default)]
    pub exp_month: Option<i64>,
    #[serde(default)]
    pub exp_year: Option<i64>,
}

pub async fn retrieve(client: &Client, id: &str) -> Result<Object<PaymentMethod>, StripeError> {
    client
        .send(
            "payment_methods.retrieve",
            &RetrievePaymentMethod::new(id),
            None,
        )
        .await
}

pub async fn attach(
    client: &Client,
    payment_method: &str,
    customer: &str,
    key: Option<&IdempotencyKey>,
) -> Result<Object<PaymentMethod>, StripeError> {
    let request = AttachPaymentMethod::new(payment_method).customer(customer);
    client.send("payment_methods.attach", &request, key).await
}

pub async fn detach(
    client: &Client,
    payment_method: &str,
    key: Option<&IdempotencyKey>,
) -> Result<Object<PaymentMethod>, StripeError> {
    let request = DetachPaymentMethod::new(payment_method);
    client.send("payment_methods.detach", &request, key).await
}

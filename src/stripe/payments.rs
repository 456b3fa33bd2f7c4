//! One-time payments: a PaymentIntent created and confirmed in one call.

use serde::Deserialize;
use serde_json::value::RawValue;
use stripe_core::payment_intent::{
    CreatePaymentIntent, CreatePaymentIntentAutomaticPaymentMethods,
    CreatePaymentIntentAutomaticPaymentMethodsAllowRedirects, CreatePaymentIntentOffSession,
    CreatePaymentIntentTransferData, RetrievePaymentIntent,
};

use super::{Client, IdempotencyKey, Object, StripeError};
use crate::objects::expandable;

/// billd's view of a payment intent.
#[derive(Debug, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default, deserialize_with = "expandable")]
    pub customer: Option<String>,
    /// Lets the customer's browser finish a payment that `requires_action`.
    #[serde(default)]
    pub client_secret: Option<String>,
    #[serde(default)]
    pub next_action: Option<NextAction>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub livemode: bool,
    /// An id, or the charge itself when expanded (billd asks for it expanded).
    #[serde(default)]
    pub latest_charge: Option<Box<RawValue>>,
}

#[derive(Debug, Deserialize)]
pub struct NextAction {
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
}

impl PaymentIntent {
    /// The raw JSON of the latest charge, when Stripe sent it expanded.
    pub fn latest_charge_object(&self) -> Option<&str> {
        self.latest_charge
            .as_deref()
            .map(RawValue::get)
            .filter(|raw| raw.trim_start().starts_with('{'))
    }
}

#[derive(Debug, Clone)]
pub struct NewPayment {
    pub customer: Option<String>,
    /// In the currency's minor unit.
    pub amount: i64,
    /// Lowercase ISO code.
    pub currency: String,
    pub payment_method: String,
    pub description: Option<String>,
    /// Where a redirect-based payment method sends the customer back to.
    pub return_url: Option<String>,
    /// The customer is not there to authenticate (a saved card charged later).
    pub off_session: bool,
    /// A destination charge: the connected account the funds go to...
    pub destination: Option<String>,
    /// ...and what the platform keeps of them.
    pub application_fee_amount: Option<i64>,
}

/// Creates and confirms a payment intent. Without a `return_url`, and unless the
/// client is configured otherwise, it asks for payment methods that need no redirect
/// (Stripe requires one of the two to confirm on the server).
pub async fn create(
    client: &Client,
    new: &NewPayment,
    key: Option<&IdempotencyKey>,
) -> Result<Object<PaymentIntent>, StripeError> {
    let currency: stripe_types::Currency = new.currency.parse().unwrap_or_else(|e| match e {});
    let mut request = CreatePaymentIntent::new(new.amount, currency)
        .payment_method(&new.payment_method)
        .confirm(true)
        .expand(vec!["latest_charge".to_string()]);
    if let Some(customer) = &new.customer {
        request = request.customer(customer);
    }
    if let Some(description) = &new.description {
        request = request.description(description);
    }
    if new.off_session {
        request = request.off_session(CreatePaymentIntentOffSession::Bool(true));
    }
    if let Some(destination) = &new.destination {
        request = request.transfer_data(CreatePaymentIntentTransferData::new(destination));
    }
    if let Some(fee) = new.application_fee_amount {
        request = request.application_fee_amount(fee);
    }
    match &new.return_url {
        Some(url) => request = request.return_url(url),
        None if client.settings().payments_without_redirects => {
            let mut automatic = CreatePaymentIntentAutomaticPaymentMethods::new(true);
            automatic.allow_redirects =
                Some(CreatePaymentIntentAutomaticPaymentMethodsAllowRedirects::Never);
            request = request.automatic_payment_methods(automatic);
        }
        None => {}
    }
    client.send("payment_intents.create", &request, key).await
}

pub async fn retrieve(client: &Client, id: &str) -> Result<Object<PaymentIntent>, StripeError> {
    let request = RetrievePaymentIntent::new(id).expand(vec!["latest_charge".to_string()]);
    client
        .send("payment_intents.retrieve", &request, None)
        .await
}

//! Checkout sessions: Stripe's hosted payment page, for a one-time payment or a
//! subscription. billd creates the session and answers its URL; the outcome arrives by
//! `checkout.session.*` webhooks.

use serde::Deserialize;
use stripe_checkout::{
    CheckoutSessionMode,
    checkout_session::{
        CreateCheckoutSession, CreateCheckoutSessionLineItems,
        CreateCheckoutSessionLineItemsPriceData, ProductData,
    },
};

use super::{Client, IdempotencyKey, Object, StripeError};
use crate::objects::expandable;

/// billd's view of a checkout session.
#[derive(Debug, Clone, Deserialize)]
pub struct Session {
    pub id: String,
    /// The page to send the customer to (absent once the session is complete).
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "expandable")]
    pub customer: Option<String>,
    #[serde(default)]
    pub expires_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Payment,
    Subscription,
}

/// One line of the session: an existing price, or (payment mode) an amount made up
/// on the spot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    Price {
        price: String,
        quantity: u64,
    },
    Amount {
        /// In the currency's minor unit.
        amount: i64,
        currency: String,
        name: String,
        quantity: u64,
    },
}

#[derive(Debug, Clone)]
pub struct NewSession {
    pub mode: Mode,
    pub customer: Option<String>,
    pub customer_email: Option<String>,
    pub lines: Vec<Line>,
    pub success_url: String,
    pub cancel_url: Option<String>,
    pub client_reference_id: Option<String>,
}

pub async fn create(
    client: &Client,
    new: &NewSession,
    key: Option<&IdempotencyKey>,
) -> Result<Object<Session>, StripeError> {
    let items: Vec<CreateCheckoutSessionLineItems> = new
        .lines
        .iter()
        .map(|line| {
            let mut item = CreateCheckoutSessionLineItems::new();
            match line {
                Line::Price { price, quantity } => {
                    item.price = Some(price.clone());
                    item.quantity = Some(*quantity);
                }
                Line::Amount {
                    amount,
                    currency,
                    name,
                    quantity,
                } => {
                    let currency: stripe_types::Currency =
                        currency.parse().unwrap_or_else(|e| match e {});
                    let mut data = CreateCheckoutSessionLineItemsPriceData::new(currency);
                    data.unit_amount = Some(*amount);
                    data.product_data = Some(ProductData::new(name.clone()));
                    item.price_data = Some(data);
                    item.quantity = Some(*quantity);
                }
            }
            item
        })
        .collect();
    let mut request = CreateCheckoutSession::new()
        .mode(match new.mode {
            Mode::Payment => CheckoutSessionMode::Payment,
            Mode::Subscription => CheckoutSessionMode::Subscription,
        })
        .line_items(items)
        .success_url(&new.success_url);
    if let Some(url) = &new.cancel_url {
        request = request.cancel_url(url);
    }
    if let Some(customer) = &new.customer {
        request = request.customer(customer);
    }
    if let Some(email) = &new.customer_email {
        request = request.customer_email(email);
    }
    if let Some(reference) = &new.client_reference_id {
        request = request.client_reference_id(reference);
    }
    client.send("checkout.sessions.create", &request, key).await
}

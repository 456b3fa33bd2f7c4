//! An invoice, and where each API version puts its subscription and payment intent.

use serde::Deserialize;

use super::{List, expandable};

#[derive(Debug, Deserialize)]
pub struct Invoice {
    /// Missing only on upcoming (preview) invoices.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "expandable")]
    pub customer: Option<String>,
    /// Before the 2025-03-31 (basil) API version.
    #[serde(default, deserialize_with = "expandable")]
    pub subscription: Option<String>,
    /// From basil on.
    #[serde(default)]
    pub parent: Option<Parent>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub number: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub amount_due: Option<i64>,
    #[serde(default)]
    pub amount_paid: Option<i64>,
    #[serde(default)]
    pub amount_remaining: Option<i64>,
    #[serde(default)]
    pub total: Option<i64>,
    /// Before basil; from basil on, only in `payments` when that is included.
    #[serde(default, deserialize_with = "expandable")]
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub payments: Option<List<InvoicePayment>>,
    #[serde(default)]
    pub period_start: Option<i64>,
    #[serde(default)]
    pub period_end: Option<i64>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub attempt_count: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct Parent {
    #[serde(default)]
    pub subscription_details: Option<SubscriptionDetails>,
}

#[derive(Debug, Deserialize)]
pub struct SubscriptionDetails {
    #[serde(default, deserialize_with = "expandable")]
    pub subscription: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct InvoicePayment {
    #[serde(default)]
    pub payment: Option<PaymentRef>,
}

#[derive(Debug, Deserialize)]
pub struct PaymentRef {
    #[serde(default, deserialize_with = "expandable")]
    pub payment_intent: Option<String>,
}

impl Invoice {
    pub fn subscription(&self) -> Option<String> {
        self.subscription.clone().or_else(|| {
            self.parent
                .as_ref()?
                .subscription_details
                .as_ref()?
                .subscription
                .clone()
        })
    }

    pub fn payment_intent(&self) -> Option<String> {
        self.payment_intent.clone().or_else(|| {
            self.payments
                .as_ref()?
                .data
                .iter()
                .find_map(|p| p.payment.as_ref()?.payment_intent.clone())
        })
    }
}

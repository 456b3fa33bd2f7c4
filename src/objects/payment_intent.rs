//! A payment intent and its last payment error.

use serde::Deserialize;

use super::expandable;

#[derive(Debug, Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    #[serde(default, deserialize_with = "expandable")]
    pub customer: Option<String>,
    /// Removed in the 2025-03-31 (basil) API version.
    #[serde(default, deserialize_with = "expandable")]
    pub invoice: Option<String>,
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub last_payment_error: Option<PaymentError>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub livemode: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct PaymentError {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub decline_code: Option<String>,
}

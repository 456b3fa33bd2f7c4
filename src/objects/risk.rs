//! Disputes, early fraud warnings and reviews.

use serde::Deserialize;

use super::expandable;

#[derive(Debug, Deserialize)]
pub struct Dispute {
    pub id: String,
    #[serde(default, deserialize_with = "expandable")]
    pub charge: Option<String>,
    #[serde(default, deserialize_with = "expandable")]
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct EarlyFraudWarning {
    pub id: String,
    #[serde(default, deserialize_with = "expandable")]
    pub charge: Option<String>,
    #[serde(default, deserialize_with = "expandable")]
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub fraud_type: Option<String>,
    #[serde(default)]
    pub actionable: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct Review {
    pub id: String,
    #[serde(default, deserialize_with = "expandable")]
    pub charge: Option<String>,
    #[serde(default, deserialize_with = "expandable")]
    pub payment_intent: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub closed_reason: Option<String>,
}

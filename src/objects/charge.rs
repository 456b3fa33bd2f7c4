//! A charge and its risk outcome.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{List, expandable};

#[derive(Debug, Deserialize)]
pub struct Charge {
    pub id: String,
    #[serde(default, deserialize_with = "expandable")]
    pub payment_intent: Option<String>,
    #[serde(default, deserialize_with = "expandable")]
    pub customer: Option<String>,
    /// Removed in the 2025-03-31 (basil) API version.
    #[serde(default, deserialize_with = "expandable")]
    pub invoice: Option<String>,
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub amount_refunded: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub failure_code: Option<String>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub livemode: Option<bool>,
    #[serde(default)]
    pub outcome: Option<RiskOutcome>,
    /// Listed by default only before the 2022-11-15 API version; kept raw so each refund
    /// row keeps its own JSON.
    #[serde(default)]
    pub refunds: Option<List<Box<RawValue>>>,
}

#[derive(Debug, Deserialize)]
pub struct RiskOutcome {
    #[serde(default)]
    pub risk_level: Option<String>,
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
}

impl Charge {
    /// The payment row this charge belongs to.
    pub fn payment_id(&self) -> &str {
        self.payment_intent.as_deref().unwrap_or(&self.id)
    }
}

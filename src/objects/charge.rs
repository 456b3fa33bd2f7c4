//! A charge and its risk outcome.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{List, expandable, list_or_array};

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
    /// `paid` instead of `succeeded` before 2015-02-18 (see [`Charge::status`]).
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
    /// Listed by default only before the 2022-11-15 API version, and a bare array before
    /// 2014-06-17; kept raw so each refund row keeps its own JSON.
    #[serde(default, deserialize_with = "list_or_array")]
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
    /// Its status in today's words: versions before 2015-02-18 say `paid` for
    /// `succeeded`.
    pub fn status(&self) -> Option<&str> {
        match self.status.as_deref() {
            Some("paid") => Some("succeeded"),
            other => other,
        }
    }

    /// The payment row this charge belongs to.
    pub fn payment_id(&self) -> &str {
        self.payment_intent.as_deref().unwrap_or(&self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_of_2013_lists_its_refunds_in_an_array_and_says_paid_for_succeeded() {
        let old: Charge = serde_json::from_str(
            r#"{"id":"ch_1","status":"paid","refunds":[{"id":"re_1","amount":5}]}"#,
        )
        .unwrap();
        assert_eq!(old.status(), Some("succeeded"));
        assert_eq!(old.refunds.map(|l| l.data.len()), Some(1));
        let new: Charge = serde_json::from_str(r#"{"id":"ch_2","status":"failed"}"#).unwrap();
        assert_eq!(new.status(), Some("failed"));
        assert!(new.refunds.is_none());
    }
}

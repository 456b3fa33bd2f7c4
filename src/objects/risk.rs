//! Disputes, early fraud warnings and reviews.

use serde::Deserialize;

use super::expandable;

#[derive(Debug, Deserialize)]
pub struct Dispute {
    /// Absent in API versions before 2014 (a dispute was then known by its charge).
    #[serde(default)]
    pub id: Option<String>,
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
    #[serde(default)]
    pub evidence_details: Option<EvidenceDetails>,
    /// `evidence_details.due_by` before 2014-12-08.
    #[serde(default)]
    pub evidence_due_by: Option<i64>,
    #[serde(default)]
    pub created: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct EvidenceDetails {
    /// When the evidence must be in (unix seconds).
    #[serde(default)]
    pub due_by: Option<i64>,
}

impl Dispute {
    /// The key of its flag: its id, or for a dispute of an old API version its charge.
    pub fn key(&self) -> Option<&str> {
        self.id.as_deref().or(self.charge.as_deref())
    }

    /// When the evidence must be in, wherever this version of the API says it.
    pub fn due_by(&self) -> Option<i64> {
        self.evidence_details
            .as_ref()
            .and_then(|e| e.due_by)
            .or(self.evidence_due_by)
    }
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

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
    /// Some statuses had other names before 2019-02-11 (see [`PaymentIntent::status`]).
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

impl PaymentIntent {
    /// Its status in today's words: before 2019-02-11 `requires_payment_method` was
    /// `requires_source` and `requires_action` was `requires_source_action`.
    pub fn status(&self) -> Option<&str> {
        match self.status.as_deref() {
            Some("requires_source") => Some("requires_payment_method"),
            Some("requires_source_action") => Some("requires_action"),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_renamed_in_2019_read_as_their_new_names() {
        let status = |s: &str| {
            let pi: PaymentIntent =
                serde_json::from_str(&format!(r#"{{"id":"pi_1","status":"{s}"}}"#)).unwrap();
            pi.status().map(str::to_string)
        };
        assert_eq!(
            status("requires_source").as_deref(),
            Some("requires_payment_method")
        );
        assert_eq!(
            status("requires_source_action").as_deref(),
            Some("requires_action")
        );
        assert_eq!(status("processing").as_deref(), Some("processing"));
    }
}

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
    /// Absent from the oldest API versions, which say `paid` and `forgiven` instead
    /// (see [`Invoice::status`]).
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub paid: Option<bool>,
    /// Replaced by the `uncollectible` status in 2018-11-08.
    #[serde(default)]
    pub forgiven: Option<bool>,
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
    /// `created` before 2019-03-14.
    #[serde(default)]
    pub date: Option<i64>,
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
    /// Its status, or for an invoice of an API version without one, what `forgiven` and
    /// `paid` say: uncollectible (forgiving marked it paid), paid, or open.
    pub fn status(&self) -> Option<String> {
        self.status.clone().or_else(|| {
            let status = match (self.forgiven, self.paid?) {
                (Some(true), _) => "uncollectible",
                (_, true) => "paid",
                (_, false) => "open",
            };
            Some(status.to_string())
        })
    }

    /// When it was created, wherever this version of the API says it.
    pub fn created(&self) -> Option<i64> {
        self.created.or(self.date)
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invoice_of_2013_has_its_status_and_creation_time_under_old_names() {
        let read = |json: &str| serde_json::from_str::<Invoice>(json).unwrap();
        let old = read(r#"{"id":"in_1","date":100,"paid":true,"closed":true,"forgiven":false}"#);
        assert_eq!(old.status().as_deref(), Some("paid"));
        assert_eq!(old.created(), Some(100));
        let forgiven = read(r#"{"id":"in_2","paid":true,"forgiven":true}"#);
        assert_eq!(forgiven.status().as_deref(), Some("uncollectible"));
        assert_eq!(
            read(r#"{"id":"in_3","paid":false}"#).status().as_deref(),
            Some("open")
        );
        assert_eq!(read(r#"{"id":"in_4"}"#).status(), None);
        let new = read(r#"{"id":"in_5","status":"void","paid":false,"created":5}"#);
        assert_eq!(new.status().as_deref(), Some("void"));
        assert_eq!(new.created(), Some(5));
    }
}

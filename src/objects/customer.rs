//! A customer, and the subscriptions old API versions embed in it.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{List, expandable, list_or_array};

#[derive(Debug, Deserialize)]
pub struct Customer {
    pub id: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub livemode: bool,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub invoice_settings: InvoiceSettings,
    /// Older API versions name the default source here instead.
    #[serde(default, deserialize_with = "expandable")]
    pub default_source: Option<String>,
    /// `default_source` before 2015-02-18. Those versions now send both names, so this
    /// is a field of its own, not an alias (a duplicate would fail the parse).
    #[serde(default, deserialize_with = "expandable")]
    pub default_card: Option<String>,
    /// Before 2014-01-31 a customer had at most one subscription, embedded here (in the
    /// old shape: `plan` and `quantity` on it, and no `id`). Kept raw: it is applied as
    /// its own object.
    #[serde(default)]
    pub subscription: Option<Box<RawValue>>,
    /// From 2014-01-31 until 2020-08-27 stopped including it by default: the customer's
    /// subscriptions, a list Stripe may truncate (`has_more`).
    #[serde(default, deserialize_with = "list_or_array")]
    pub subscriptions: Option<List<Box<RawValue>>>,
}

#[derive(Debug, Default, Deserialize)]
pub struct InvoiceSettings {
    #[serde(default, deserialize_with = "expandable")]
    pub default_payment_method: Option<String>,
}

impl Customer {
    /// The default payment method, wherever this version of the API names it.
    pub fn default_payment_method(&self) -> Option<String> {
        self.invoice_settings
            .default_payment_method
            .clone()
            .or_else(|| self.default_source.clone())
            .or_else(|| self.default_card.clone())
    }

    /// The subscription objects the customer embeds (raw), in either shape; ids or
    /// anything else that is not an object are left out.
    pub fn embedded_subscriptions(&self) -> impl Iterator<Item = &str> {
        self.subscription
            .iter()
            .chain(self.subscriptions.iter().flat_map(|l| l.data.iter()))
            .map(|raw| raw.get())
            .filter(|raw| raw.starts_with('{'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_customers_name_the_default_card_and_embed_their_subscriptions() {
        let old: Customer = serde_json::from_str(
            r#"{"id":"cus_1","default_card":"card_1","cards":{"object":"list","data":[]},
                "subscription":{"object":"subscription","plan":{"id":"gold"},"quantity":2}}"#,
        )
        .unwrap();
        assert_eq!(old.default_payment_method().as_deref(), Some("card_1"));
        let embedded: Vec<&str> = old.embedded_subscriptions().collect();
        assert_eq!(embedded.len(), 1);
        assert!(embedded[0].contains(r#""quantity":2"#));

        // A pre-2015 version rendered today sends both names; the newer one wins.
        let both: Customer = serde_json::from_str(
            r#"{"id":"cus_2","default_card":"card_old","default_source":"card_new",
                "subscription":null,
                "subscriptions":{"object":"list","has_more":true,"data":[{"id":"sub_1"},"sub_2"]}}"#,
        )
        .unwrap();
        assert_eq!(both.default_payment_method().as_deref(), Some("card_new"));
        assert_eq!(
            both.embedded_subscriptions().collect::<Vec<_>>(),
            [r#"{"id":"sub_1"}"#]
        );

        let new: Customer = serde_json::from_str(
            r#"{"id":"cus_3","invoice_settings":{"default_payment_method":"pm_1"},"default_source":null}"#,
        )
        .unwrap();
        assert_eq!(new.default_payment_method().as_deref(), Some("pm_1"));
        assert_eq!(new.embedded_subscriptions().count(), 0);
    }
}

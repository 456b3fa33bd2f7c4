//! A customer.

use serde::Deserialize;

use super::expandable;

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
}

#[derive(Debug, Default, Deserialize)]
pub struct InvoiceSettings {
    #[serde(default, deserialize_with = "expandable")]
    pub default_payment_method: Option<String>,
}

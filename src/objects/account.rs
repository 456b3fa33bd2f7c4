//! A connected account (Stripe Connect), and the application of a deauthorization.

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct Account {
    pub id: String,
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    #[serde(default)]
    pub country: Option<String>,
    #[serde(default)]
    pub charges_enabled: Option<bool>,
    #[serde(default)]
    pub payouts_enabled: Option<bool>,
    #[serde(default)]
    pub details_submitted: Option<bool>,
    #[serde(default)]
    pub requirements: Option<Requirements>,
}

#[derive(Debug, Deserialize)]
pub struct Requirements {
    #[serde(default)]
    pub currently_due: Option<Vec<String>>,
    #[serde(default)]
    pub past_due: Option<Vec<String>>,
    #[serde(default)]
    pub disabled_reason: Option<String>,
}

/// The object of account.application.deauthorized is the application, not the account.
#[derive(Debug, Deserialize)]
pub struct Deauthorized {
    #[serde(default)]
    pub id: Option<String>,
}

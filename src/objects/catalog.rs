//! Products, and prices or legacy plans (one type: a plan names its amount `amount`
//! and has its interval at the top level).

use serde::Deserialize;

use super::expandable;

#[derive(Debug, Deserialize)]
pub struct Product {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default)]
    pub created: Option<i64>,
}

/// A price or a plan: the union of the fields billd reads from either.
#[derive(Debug, Deserialize)]
pub struct Price {
    pub id: String,
    /// `"price"` or `"plan"`.
    #[serde(default)]
    pub object: Option<String>,
    #[serde(default, deserialize_with = "expandable")]
    pub product: Option<String>,
    #[serde(default)]
    pub active: Option<bool>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub unit_amount: Option<i64>,
    /// The plan's name for `unit_amount`.
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default, rename = "type")]
    pub type_: Option<String>,
    #[serde(default)]
    pub recurring: Option<Recurring>,
    /// A plan's interval, at the top level.
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub interval_count: Option<i64>,
    #[serde(default)]
    pub nickname: Option<String>,
    /// A plan's name before 2018-02-05, when it moved to the plan's product and plans
    /// got a `nickname` instead.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub created: Option<i64>,
}

impl Price {
    /// The nickname, or the name of a plan of an API version before 2018-02-05.
    pub fn nickname(&self) -> Option<String> {
        self.nickname.clone().or_else(|| self.name.clone())
    }
}

#[derive(Debug, Deserialize)]
pub struct Recurring {
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub interval_count: Option<i64>,
}

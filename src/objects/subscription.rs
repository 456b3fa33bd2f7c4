//! A subscription, its items, and the prices or legacy plans they name.

use serde::{Deserialize, de::IgnoredAny};

use super::{
    List,
    discount::{Discount, DiscountRef, lenient_discount},
    expandable,
};

#[derive(Debug, Deserialize)]
pub struct Subscription {
    /// Absent from the single subscription of API versions before 2014-01-31 (see
    /// [`Subscription::key`]).
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "expandable")]
    pub customer: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    /// Absent before 2022-ish API versions; the items' prices carry it there.
    #[serde(default)]
    pub currency: Option<String>,
    /// Moved onto the items in 2025 API versions.
    #[serde(default)]
    pub current_period_start: Option<i64>,
    #[serde(default)]
    pub current_period_end: Option<i64>,
    #[serde(default)]
    pub cancel_at_period_end: Option<bool>,
    #[serde(default)]
    pub canceled_at: Option<i64>,
    #[serde(default)]
    pub ended_at: Option<i64>,
    #[serde(default)]
    pub trial_start: Option<i64>,
    #[serde(default)]
    pub trial_end: Option<i64>,
    #[serde(default)]
    pub start_date: Option<i64>,
    /// `start_date` before 2019-10-17 (strictly, when the current plan started).
    #[serde(default)]
    pub start: Option<i64>,
    #[serde(default)]
    pub created: Option<i64>,
    #[serde(default)]
    pub items: List<Item>,
    /// Single-plan subscriptions of old API versions.
    #[serde(default)]
    pub plan: Option<PriceRef>,
    #[serde(default)]
    pub quantity: Option<i64>,
    /// The one discount of API versions before 2025-03-31 (embedding its coupon).
    #[serde(default, deserialize_with = "lenient_discount")]
    pub discount: Option<Discount>,
    /// The discounts, in the order Stripe applies them (ids in events; 2022+).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub discounts: Vec<DiscountRef>,
}

/// A list of discounts; null or any other shape reads as none.
fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<DiscountRef>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Maybe {
        List(Vec<DiscountRef>),
        Other(IgnoredAny),
    }
    Ok(match Option::<Maybe>::deserialize(d)? {
        Some(Maybe::List(list)) => list,
        _ => Vec::new(),
    })
}

#[derive(Debug, Deserialize)]
pub struct Item {
    pub id: String,
    #[serde(default)]
    pub price: Option<PriceRef>,
    /// Old API versions have only the plan; new ones have both, and then the price wins.
    #[serde(default)]
    pub plan: Option<PriceRef>,
    #[serde(default)]
    pub quantity: Option<i64>,
    #[serde(default)]
    pub current_period_start: Option<i64>,
    #[serde(default)]
    pub current_period_end: Option<i64>,
}

/// A price or a legacy plan, expanded or not.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum PriceRef {
    Id(String),
    Object(PriceObject),
    Other(IgnoredAny),
}

/// The union of the price and plan fields billd reads (a plan says `amount` and has its
/// interval at the top level).
#[derive(Debug, Deserialize)]
pub struct PriceObject {
    pub id: String,
    #[serde(default)]
    pub unit_amount: Option<i64>,
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub recurring: Option<Recurring>,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub interval_count: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct Recurring {
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub interval_count: Option<i64>,
}

impl PriceRef {
    pub fn id(&self) -> Option<&str> {
        match self {
            PriceRef::Id(id) => Some(id),
            PriceRef::Object(p) => Some(&p.id),
            PriceRef::Other(_) => None,
        }
    }

    pub fn object(&self) -> Option<&PriceObject> {
        match self {
            PriceRef::Object(p) => Some(p),
            _ => None,
        }
    }
}

impl Subscription {
    /// Its id, or for the single subscription of API versions before 2014-01-31, which
    /// had none (a customer had at most one), its customer's id.
    pub fn key(&self) -> Option<&str> {
        self.id.as_deref().or(self.customer.as_deref())
    }

    /// When it started, wherever this version of the API says it.
    pub fn start_date(&self) -> Option<i64> {
        self.start_date.or(self.start)
    }
}

impl Item {
    /// The price an item names, or its legacy plan when the price names nothing.
    pub fn price_ref(&self) -> Option<&PriceRef> {
        self.price
            .as_ref()
            .filter(|p| p.id().is_some())
            .or(self.plan.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscription_of_2013_without_an_id_is_known_by_its_customer() {
        let old: Subscription = serde_json::from_str(
            r#"{"object":"subscription","customer":"cus_1","status":"active","start":100,
                "plan":{"id":"gold","object":"plan","amount":500,"interval":"month"},
                "quantity":2,"current_period_end":200}"#,
        )
        .unwrap();
        assert_eq!(old.key(), Some("cus_1"));
        assert_eq!(old.start_date(), Some(100));
        assert!(old.items.data.is_empty());
        assert_eq!(old.plan.as_ref().and_then(PriceRef::id), Some("gold"));

        let new: Subscription =
            serde_json::from_str(r#"{"id":"sub_1","customer":"cus_1","start_date":5}"#).unwrap();
        assert_eq!(new.key(), Some("sub_1"));
        assert_eq!(new.start_date(), Some(5));
        let orphan: Subscription = serde_json::from_str(r#"{"status":"active"}"#).unwrap();
        assert_eq!(orphan.key(), None);
    }
}

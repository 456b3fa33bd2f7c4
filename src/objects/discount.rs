//! Coupons and discounts: what MRR net of discounts is computed from.
//!
//! A discount applies a coupon to a customer or a subscription from `start` to `end`.
//! Before 2025 API versions a discount embeds its coupon (`coupon`); from 2025-03-31 on
//! it names it under `source.coupon`, usually as a bare id. Discounts of old API versions
//! have no `id` at all (see [`Discount::key`]).

use serde::{Deserialize, Deserializer};

/// A coupon, lenient about versions.
#[derive(Debug, Deserialize)]
pub struct Coupon {
    pub id: String,
    /// A percentage with up to two decimals (`25.5`).
    #[serde(default)]
    pub percent_off: Option<f64>,
    #[serde(default)]
    pub amount_off: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub duration: Option<String>,
    #[serde(default)]
    pub duration_in_months: Option<i64>,
}

impl Coupon {
    /// `percent_off` in hundredths of a percent (25.5 % is 2550), the exact form billd
    /// keeps; `None` unless it is a percentage in (0, 100].
    pub fn percent_off_bp(&self) -> Option<i64> {
        self.percent_off
            .filter(|p| p.is_finite() && *p > 0.0 && *p <= 100.0)
            .map(|p| (p * 100.0).round() as i64)
    }
}

/// A coupon as a discount names it: embedded or an id.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum CouponRef {
    Object(Coupon),
    Id(String),
    Other(serde::de::IgnoredAny),
}

impl CouponRef {
    pub fn id(&self) -> Option<&str> {
        match self {
            CouponRef::Object(c) => Some(&c.id),
            CouponRef::Id(id) => Some(id),
            CouponRef::Other(_) => None,
        }
    }

    pub fn object(&self) -> Option<&Coupon> {
        match self {
            CouponRef::Object(c) => Some(c),
            _ => None,
        }
    }
}

/// `source` of a 2025+ discount: `{"type": "coupon", "coupon": …}`.
#[derive(Debug, Deserialize)]
pub struct DiscountSource {
    #[serde(default)]
    pub coupon: Option<CouponRef>,
}

#[derive(Debug, Deserialize)]
pub struct Discount {
    /// Absent before 2020-ish API versions.
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub coupon: Option<CouponRef>,
    #[serde(default)]
    pub source: Option<DiscountSource>,
    #[serde(default, deserialize_with = "super::expandable")]
    pub customer: Option<String>,
    #[serde(default, deserialize_with = "super::expandable")]
    pub subscription: Option<String>,
    #[serde(default)]
    pub start: Option<i64>,
    #[serde(default)]
    pub end: Option<i64>,
}

impl Discount {
    /// The coupon, wherever this version of the API put it.
    pub fn coupon(&self) -> Option<&CouponRef> {
        self.coupon
            .as_ref()
            .filter(|c| c.id().is_some())
            .or_else(|| self.source.as_ref().and_then(|s| s.coupon.as_ref()))
    }

    /// The discount's id, or for an old discount without one a key made of what names
    /// it (its subscription, coupon and start), stable across the events that carry it.
    pub fn key(&self, subscription: &str) -> Option<String> {
        if let Some(id) = &self.id {
            return Some(id.clone());
        }
        let coupon = self.coupon()?.id()?;
        Some(format!(
            "{subscription}_{coupon}_{}",
            self.start.unwrap_or_default()
        ))
    }
}

/// A subscription's `discounts` entry: an id (what events carry) or an expanded
/// discount.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum DiscountRef {
    Id(String),
    Object(Box<Discount>),
    Other(serde::de::IgnoredAny),
}

/// Reads a field that is a discount object or null, tolerating any other shape as none.
pub fn lenient_discount<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Discount>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Maybe {
        Discount(Box<Discount>),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Option::<Maybe>::deserialize(d)? {
        Some(Maybe::Discount(x)) => Some(*x),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coupon_is_found_in_either_place_and_percentages_are_kept_exactly() {
        let old: Discount = serde_json::from_str(
            r#"{"object":"discount","coupon":{"id":"HALF","percent_off":25.5,"duration":"forever"},
                "start":100,"end":null}"#,
        )
        .unwrap();
        assert_eq!(old.coupon().and_then(CouponRef::id), Some("HALF"));
        assert_eq!(old.key("sub_1").as_deref(), Some("sub_1_HALF_100"));
        let c = old.coupon().and_then(CouponRef::object).unwrap();
        assert_eq!(c.percent_off_bp(), Some(2550));

        let new: Discount = serde_json::from_str(
            r#"{"id":"di_1","source":{"type":"coupon","coupon":"TENOFF"},"start":5,"end":9}"#,
        )
        .unwrap();
        assert_eq!(new.coupon().and_then(CouponRef::id), Some("TENOFF"));
        assert!(new.coupon().and_then(CouponRef::object).is_none());
        assert_eq!(new.key("sub_1").as_deref(), Some("di_1"));

        for bad in ["0", "-5", "100.5", "1000"] {
            let c: Coupon =
                serde_json::from_str(&format!(r#"{{"id":"x","percent_off":{bad}}}"#)).unwrap();
            assert_eq!(c.percent_off_bp(), None, "{bad}");
        }
    }
}

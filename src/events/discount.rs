//! coupon.* and customer.discount.*: the coupons and discounts that MRR is told net of
//! (docs/reports.md, "Discounts"), also written from the discounts a subscription
//! embeds.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::store::db::Connection;

use super::{ApplyError, Event, Outcome};
use crate::objects::{
    discount::{Coupon, CouponRef, Discount, DiscountRef},
    parse_json,
    subscription::Subscription,
};
use crate::store::mirror::{self, Table, Version};

pub(super) fn apply(conn: &Connection, event: &Event<'_>) -> Result<Outcome, ApplyError> {
    let deleted = event.type_.ends_with(".deleted");
    match event.type_ {
        "coupon.created" | "coupon.updated" | "coupon.deleted" => {
            let c: Coupon = event.parse("coupon")?;
            store_coupon(conn, &c, event.raw(), event.version())?;
            if deleted {
                mirror::mark_deleted(conn, Table::Coupons, &c.id, event.raw(), event.version())?;
            }
        }
        "customer.discount.created" | "customer.discount.updated" | "customer.discount.deleted" => {
            let d: Discount = event.parse("discount")?;
            // An old discount without an id is named by what it applies to: its
            // subscription, or for a customer's own discount the customer (two
            // customers may hold the same coupon from the same second).
            let holder = d
                .subscription
                .clone()
                .or_else(|| d.customer.clone())
                .unwrap_or_default();
            let Some(key) = d.key(&holder) else {
                // Neither an id nor a coupon: nothing to keep.
                return Ok(Outcome::Applied);
            };
            store_discount(conn, &d, &key, event.raw(), event.version())?;
            if deleted {
                // Kept for the history: the versions that carried it still did.
                mirror::mark_deleted(conn, Table::Discounts, &key, event.raw(), event.version())?;
            }
        }
        _ => return Ok(Outcome::Unhandled),
    }
    Ok(Outcome::Applied)
}

/// The discount ids a subscription (mirrored as `key`) carries, in Stripe's order,
/// space-separated, after writing those it embeds (and their coupons) under the event's
/// version. `raw` is the subscription's own JSON.
pub(super) fn subscription_discounts(
    conn: &Connection,
    key: &str,
    s: &Subscription,
    raw: &str,
    v: Version,
) -> Result<String, ApplyError> {
    let embedded = s.discount.is_some()
        || s.discounts
            .iter()
            .any(|d| matches!(d, DiscountRef::Object(_)));
    if embedded {
        store_embedded(conn, key, raw, v)?;
    }
    let mut ids: Vec<String> = s
        .discounts
        .iter()
        .filter_map(|d| match d {
            DiscountRef::Id(id) => Some(id.clone()),
            DiscountRef::Object(d) => d.key(key),
            DiscountRef::Other(_) => None,
        })
        .collect();
    // Before `discounts` existed, the one `discount` was the list.
    if ids.is_empty()
        && let Some(id) = s.discount.as_ref().and_then(|d| d.key(key))
    {
        ids.push(id);
    }
    // Ids are Stripe's (`di_…`, no spaces); anything else would break the list.
    ids.retain(|id| !id.is_empty() && !id.contains(' '));
    Ok(ids.join(" "))
}

/// Writes the discount objects a subscription embeds, each with its own JSON.
fn store_embedded(
    conn: &Connection,
    subscription: &str,
    raw: &str,
    v: Version,
) -> Result<(), ApplyError> {
    #[derive(Deserialize)]
    struct Embedded<'a> {
        #[serde(borrow, default)]
        discount: Option<&'a RawValue>,
        #[serde(borrow, default)]
        discounts: Option<Vec<&'a RawValue>>,
    }
    let e: Embedded<'_> = parse_json(raw, "subscription")?;
    let objects = e
        .discount
        .into_iter()
        .chain(e.discounts.into_iter().flatten());
    for object in objects.filter(|o| o.get().starts_with('{')) {
        let d: Discount = parse_json(object.get(), "discount")?;
        if let Some(key) = d.key(subscription) {
            store_discount(conn, &d, &key, object.get(), v)?;
        }
    }
    Ok(())
}

fn store_discount(
    conn: &Connection,
    d: &Discount,
    key: &str,
    raw: &str,
    v: Version,
) -> Result<(), ApplyError> {
    let coupon = d.coupon();
    if let Some(c) = coupon.and_then(CouponRef::object) {
        // The coupon as the discount embeds it; its own events may know it newer.
        store_coupon(conn, c, "{}", v)?;
    }
    let coupon_id = coupon.and_then(CouponRef::id);
    mirror::upsert(
        conn,
        Table::Discounts,
        &[
            ("id", &key),
            ("coupon", &coupon_id),
            ("customer", &d.customer),
            ("subscription", &d.subscription),
            ("starts_at", &d.start),
            ("ends_at", &d.end),
            ("raw", &raw),
        ],
        v,
    )?;
    Ok(())
}

fn store_coupon(conn: &Connection, c: &Coupon, raw: &str, v: Version) -> Result<(), ApplyError> {
    mirror::upsert(
        conn,
        Table::Coupons,
        &[
            ("id", &c.id),
            ("percent_off_bp", &c.percent_off_bp()),
            ("amount_off", &c.amount_off),
            ("currency", &c.currency),
            ("duration", &c.duration),
            ("duration_in_months", &c.duration_in_months),
            ("raw", &raw),
        ],
        v,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::events::{Outcome, testing::*};
    use crate::store::mirror::{self, Table};

    #[test]
    fn customer_discounts_of_2013_without_ids_are_told_apart_by_their_customer() {
        let mut h = Harness::new();
        let old = |event: &str, customer: &str| {
            serde_json::json!({
                "id": event, "type": "customer.discount.created", "created": 1_380_000_000,
                "livemode": false, "api_version": "2013-08-13",
                "data": {"object": {
                    "object": "discount", "customer": customer, "start": 1_380_000_000,
                    "end": null, "coupon": {"id": "SPRING", "object": "coupon",
                    "percent_off": 20, "duration": "forever"}}}
            })
            .to_string()
        };
        assert_eq!(h.apply_json(&old("evt_d1", "cus_a")), Outcome::Applied);
        assert_eq!(h.apply_json(&old("evt_d2", "cus_b")), Outcome::Applied);
        let conn = h.conn();
        for customer in ["cus_a", "cus_b"] {
            let key = format!("{customer}_SPRING_1380000000");
            let stored = mirror::column(&conn, Table::Discounts, &key, "customer").unwrap();
            assert_eq!(stored.as_deref(), Some(customer));
        }
    }
}

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
            let subscription = d.subscription.clone().unwrap_or_default();
            let Some(key) = d.key(&subscription) else {
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

/// The discount ids a subscription carries, in Stripe's order, space-separated, after
/// writing those it embeds (and their coupons) under the event's version.
pub(super) fn subscription_discounts(
    conn: &Connection,
    s: &Subscription,
    raw: &str,
    v: Version,
) -> Result<String, ApplyError> {
    let embedded = s.discount.is_some()
        || s.discounts
            .iter()
            .any(|d| matches!(d, DiscountRef::Object(_)));
    if embedded {
        store_embedded(conn, s, raw, v)?;
    }
    let mut ids: Vec<String> = s
        .discounts
        .iter()
        .filter_map(|d| match d {
            DiscountRef::Id(id) => Some(id.clone()),
            DiscountRef::Object(d) => d.key(&s.id),
            DiscountRef::Other(_) => None,
        })
        .collect();
    // Before `discounts` existed, the one `discount` was the list.
    if ids.is_empty()
        && let Some(key) = s.discount.as_ref().and_then(|d| d.key(&s.id))
    {
        ids.push(key);
    }
    // Ids are Stripe's (`di_…`, no spaces); anything else would break the list.
    ids.retain(|id| !id.is_empty() && !id.contains(' '));
    Ok(ids.join(" "))
}

/// Writes the discount objects a subscription embeds, each with its own JSON.
fn store_embedded(
    conn: &Connection,
    s: &Subscription,
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
        if let Some(key) = d.key(&s.id) {
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

//! customer.subscription.*: the subscription row and its items; also the subscriptions
//! a customer event embeds (`subscription` before 2014-01-31, `subscriptions` after).

use crate::store::db::Connection;

use super::{ApplyError, Event, Origin, Outcome};
use crate::objects::{
    parse_json,
    subscription::{Item, PriceObject, PriceRef, Subscription},
};
use crate::store::{
    mirror::{self, ItemRow, Table},
    reports,
};

/// The item row of a price or plan with its quantity.
fn item_row(id: &str, price: Option<&PriceRef>, quantity: Option<i64>) -> ItemRow {
    let p: Option<&PriceObject> = price.and_then(PriceRef::object);
    let recurring = p.and_then(|p| p.recurring.as_ref());
    ItemRow {
        id: id.to_string(),
        price: price.and_then(PriceRef::id).map(str::to_string),
        quantity,
        unit_amount: p.and_then(|p| p.unit_amount.or(p.amount)),
        currency: p.and_then(|p| p.currency.clone()),
        interval: recurring
            .and_then(|r| r.interval.clone())
            .or_else(|| p.and_then(|p| p.interval.clone())),
        interval_count: recurring
            .and_then(|r| r.interval_count)
            .or_else(|| p.and_then(|p| p.interval_count)),
    }
}

/// The subscription's items as the mirror keeps them. A subscription of an old API
/// version without items has its top-level plan and quantity as its one item, named
/// by the subscription's key: the same row for the mirror and for the history.
fn items(s: &Subscription, key: &str) -> Vec<ItemRow> {
    if s.items.data.is_empty()
        && let Some(plan) = &s.plan
    {
        return vec![item_row(key, Some(plan), s.quantity)];
    }
    s.items
        .data
        .iter()
        .map(|i: &Item| item_row(&i.id, i.price_ref(), i.quantity))
        .collect()
}

/// The key a subscription is mirrored under, or why there is none.
fn key_of(s: &Subscription) -> Result<String, ApplyError> {
    s.key()
        .map(str::to_string)
        .ok_or_else(|| ApplyError::Parse {
            what: "subscription".into(),
            message: "neither an id nor a customer names it".into(),
        })
}

pub(super) fn apply(conn: &Connection, event: &Event<'_>) -> Result<Outcome, ApplyError> {
    match event.type_ {
        "customer.subscription.created"
        | "customer.subscription.updated"
        | "customer.subscription.deleted"
        | "customer.subscription.trial_will_end"
        | "customer.subscription.paused"
        | "customer.subscription.resumed"
        | "customer.subscription.pending_update_applied"
        | "customer.subscription.pending_update_expired" => {}
        _ => return Ok(Outcome::Unhandled),
    }
    let s: Subscription = event.parse("subscription")?;
    let deleted = event.type_ == "customer.subscription.deleted";
    apply_object(conn, event, &s, event.raw(), deleted)?;
    Ok(Outcome::Applied)
}

/// Applies a subscription that a customer event embeds, exactly as a
/// customer.subscription.updated event of the same time would: under the customer
/// event's version (an older event never overwrites newer state), with its state added
/// to the history. `raw` is the subscription's own JSON; `customer` names it when the
/// object does not.
pub(super) fn apply_embedded(
    conn: &Connection,
    event: &Event<'_>,
    raw: &str,
    customer: &str,
) -> Result<(), ApplyError> {
    let mut s: Subscription = parse_json(raw, "customer's subscription")?;
    s.customer.get_or_insert_with(|| customer.to_string());
    apply_object(conn, event, &s, raw, false)
}

fn apply_object(
    conn: &Connection,
    event: &Event<'_>,
    s: &Subscription,
    raw: &str,
    deleted: bool,
) -> Result<(), ApplyError> {
    let key = key_of(s)?;
    let items = items(s, &key);
    let ended = store(conn, &key, s, &items, raw, event.origin(), deleted)?;
    record_history(conn, event, &key, s, raw, &items, ended)
}

/// Writes a subscription object (as Stripe returned it to a call) and its items under
/// the ordering rule; a canceled one is terminal. (The history that reports read is
/// left to the events, which carry the time of the change.)
pub(crate) fn write_subscription(
    conn: &Connection,
    raw: &str,
    origin: Origin<'_>,
) -> Result<(), ApplyError> {
    let s: Subscription = parse_json(raw, "subscription")?;
    let key = key_of(&s)?;
    let items = items(&s, &key);
    store(conn, &key, &s, &items, raw, origin, false)?;
    Ok(())
}

/// The row, its items and the terminal mark; returns whether the subscription ended.
fn store(
    conn: &Connection,
    key: &str,
    s: &Subscription,
    items: &[ItemRow],
    raw: &str,
    origin: Origin<'_>,
    deleted: bool,
) -> Result<bool, ApplyError> {
    if write(conn, origin, key, s, items, raw)? {
        mirror::replace_items(conn, key, items)?;
    }
    // After the write, so the final state is kept; the deleted mark (here: terminal)
    // then stops any late event from bringing a finished subscription back.
    let terminal = matches!(s.status.as_deref(), Some("canceled" | "incomplete_expired"));
    let ended = deleted || terminal;
    if ended {
        mirror::mark_deleted(conn, Table::Subscriptions, key, raw, origin.version)?;
    }
    Ok(ended)
}

/// Adds this event's state to the subscription history that reports read (MRR at a
/// past time, churn), whether or not the mirror row took it: a late event is still
/// true of its own time.
fn record_history(
    conn: &Connection,
    event: &Event<'_>,
    key: &str,
    s: &Subscription,
    raw: &str,
    items: &[ItemRow],
    ended: bool,
) -> Result<(), ApplyError> {
    let currency = s
        .currency
        .clone()
        .or_else(|| items.iter().find_map(|i| i.currency.clone()));
    let discounts = super::discount::subscription_discounts(conn, key, s, raw, event.version())?;
    let version = reports::SubscriptionVersion {
        subscription: key,
        customer: s.customer.as_deref(),
        status: s.status.as_deref(),
        currency: currency.as_deref(),
        terminal: ended,
        items,
        discounts: &discounts,
    };
    reports::record_subscription_version(conn, &version, event.version())?;
    Ok(())
}

fn write(
    conn: &Connection,
    origin: Origin<'_>,
    key: &str,
    s: &Subscription,
    items: &[ItemRow],
    raw: &str,
) -> Result<bool, ApplyError> {
    let first = items.first();
    let price = first.and_then(|r| r.price.clone());
    let quantity = first.and_then(|r| r.quantity).or(s.quantity);
    let currency = s
        .currency
        .clone()
        .or_else(|| first.and_then(|r| r.currency.clone()));
    // Moved onto the items in 2025-03-31 (basil).
    let first_item = s.items.data.first();
    let period_start = s
        .current_period_start
        .or_else(|| first_item.and_then(|i| i.current_period_start));
    let period_end = s
        .current_period_end
        .or_else(|| first_item.and_then(|i| i.current_period_end));
    Ok(mirror::upsert(
        conn,
        Table::Subscriptions,
        &[
            ("id", &key),
            ("customer", &s.customer),
            ("status", &s.status),
            ("price", &price),
            ("quantity", &quantity),
            ("currency", &currency),
            ("current_period_start", &period_start),
            ("current_period_end", &period_end),
            (
                "cancel_at_period_end",
                &s.cancel_at_period_end.unwrap_or(false),
            ),
            ("canceled_at", &s.canceled_at),
            ("ended_at", &s.ended_at),
            ("trial_start", &s.trial_start),
            ("trial_end", &s.trial_end),
            ("start_date", &s.start_date()),
            ("created", &s.created),
            ("account", &origin.account),
            ("raw", &raw),
        ],
        origin.version,
    )?)
}

#[cfg(test)]
mod tests {
    use crate::events::{Outcome, testing::*};
    use crate::store::mirror::{self, Table};

    const SUB: &str = "sub_JdIzvfy6o5GZRd";

    #[test]
    fn subscription_created_fixture_is_mirrored_with_its_first_price_and_items() {
        let mut h = Harness::new();
        assert_eq!(
            h.apply_fixture("customer.subscription.created.json"),
            Outcome::Applied
        );
        let s = mirror::get_subscription(&h.conn(), SUB).unwrap();
        assert_eq!(s.status.as_deref(), Some("active"));
        assert_eq!(s.customer.as_deref(), Some("cus_IhGfebO16cMIGN"));
        assert_eq!(s.price.as_deref(), Some("price_1IDQm5JDPojXS6LNM31hxKzp"));
        assert_eq!(s.quantity, Some(1));
        assert_eq!(s.currency.as_deref(), Some("usd"));
        assert_eq!(s.current_period_end, Some(1625740918));
        assert_eq!(s.items.len(), 2);
        let item = &s.items[0];
        assert_eq!(item.unit_amount, Some(0));
        assert_eq!(item.interval.as_deref(), Some("month"));
        assert_eq!(item.interval_count, Some(1));
    }

    #[test]
    fn new_api_versions_take_the_period_from_the_first_item() {
        let mut h = Harness::new();
        assert_eq!(
            h.apply_fixture("customer.subscription.resumed.json"),
            Outcome::Applied
        );
        let conn = h.conn();
        let s = mirror::get_subscription(&conn, "sub_1Pgc6rB7WZ01zgkWNy0Cn5nw").unwrap();
        assert_eq!(s.price.as_deref(), Some("price_1PgafmB7WZ01zgkW6dKueIc5"));
        assert_eq!(s.current_period_end, Some(976287773));
        let start =
            mirror::column(&conn, Table::Subscriptions, &s.id, "current_period_start").unwrap();
        assert_eq!(start.as_deref(), Some("1896570518"));
        // The price wins over the (made-up) plan that the same item carries.
        assert_eq!(s.items[0].unit_amount, Some(2000));
        assert_eq!(s.items[0].interval_count, Some(1));
        assert!(s.cancel_at_period_end);
    }

    #[test]
    fn old_api_versions_without_items_use_the_top_level_plan_as_the_one_item() {
        let mut h = Harness::new();
        h.apply_json(&fixture_with("customer.subscription.updated.json", |v| {
            let o = &mut v["data"]["object"];
            o.as_object_mut().unwrap().remove("items");
            o["quantity"] = 3.into();
        }));
        let s = mirror::get_subscription(&h.conn(), "sub_JLEPMp81LApOJl").unwrap();
        assert_eq!(s.price.as_deref(), Some("price_1IDQm5JDPojXS6LNM31hxKzp"));
        assert_eq!(s.quantity, Some(3));
        assert_eq!(s.currency.as_deref(), Some("usd"));
        // The plan is the item, in the mirror as in the history the reports read.
        assert_eq!(s.items.len(), 1);
        assert_eq!(s.items[0].id, "sub_JLEPMp81LApOJl");
        assert_eq!(s.items[0].quantity, Some(3));
        assert_eq!(s.items[0].interval.as_deref(), Some("month"));
        let quantity: i64 = h
            .conn()
            .query_row(
                "SELECT i.quantity FROM subscription_version_items i
                 JOIN subscription_versions v ON v.id = i.version
                 WHERE v.subscription = 'sub_JLEPMp81LApOJl'",
                (),
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(quantity, 3);
    }

    #[test]
    fn a_2013_subscription_without_an_id_is_keyed_by_its_customer() {
        let mut h = Harness::new();
        let old = |id: &str, created: i64, quantity: i64| {
            fixture_with("customer.subscription.updated.json", |v| {
                v["id"] = id.into();
                v["created"] = created.into();
                v["api_version"] = "2013-08-13".into();
                let o = v["data"]["object"].as_object_mut().unwrap();
                for gone in ["id", "items", "start_date"] {
                    o.remove(gone);
                }
                o.insert("customer".into(), "cus_single".into());
                o.insert("start".into(), 1_370_000_000i64.into());
                o.insert("quantity".into(), quantity.into());
            })
        };
        assert_eq!(h.apply_json(&old("evt_2013_b", 200, 4)), Outcome::Applied);
        assert_eq!(h.apply_json(&old("evt_2013_a", 100, 2)), Outcome::Applied);
        let conn = h.conn();
        let s = mirror::get_subscription(&conn, "cus_single").unwrap();
        assert_eq!(s.customer.as_deref(), Some("cus_single"));
        assert_eq!(s.quantity, Some(4), "the older event did not overwrite");
        let start = mirror::column(&conn, Table::Subscriptions, "cus_single", "start_date");
        assert_eq!(start.unwrap().as_deref(), Some("1370000000"));

        // Neither an id nor a customer: nothing can name it.
        let orphan = fixture_with("customer.subscription.updated.json", |v| {
            v["id"] = "evt_orphan".into();
            let o = v["data"]["object"].as_object_mut().unwrap();
            o.remove("id");
            o.remove("customer");
        });
        let e = h.try_apply_json(&orphan).unwrap_err();
        assert!(
            e.to_string().contains("neither an id nor a customer"),
            "{e}"
        );
    }

    #[test]
    fn a_deleted_subscription_is_terminal_and_a_late_update_does_not_revive_it() {
        let mut h = Harness::new();
        h.apply_fixture("customer.subscription.created.json");
        h.apply_fixture("customer.subscription.deleted.json");
        h.apply_json(&fixture_with("customer.subscription.created.json", |v| {
            v["id"] = "evt_late".into();
            v["type"] = "customer.subscription.updated".into();
            v["created"] = 4_000_000_000i64.into();
            v["data"]["object"]["items"]["data"][0]["quantity"] = 9.into();
        }));
        let conn = h.conn();
        let s = mirror::get_subscription(&conn, SUB).unwrap();
        assert_eq!(s.status.as_deref(), Some("canceled"));
        assert_eq!(s.ended_at, Some(1623149102));
        assert_eq!(s.quantity, Some(1));
        assert_eq!(s.items[0].quantity, Some(1));
        let deleted = mirror::column(&conn, Table::Subscriptions, SUB, "deleted").unwrap();
        assert_eq!(deleted.as_deref(), Some("1"));
    }

    #[test]
    fn an_incomplete_expired_update_is_terminal_too() {
        let mut h = Harness::new();
        h.apply_json(&fixture_with("customer.subscription.updated.json", |v| {
            v["data"]["object"]["status"] = "incomplete_expired".into();
        }));
        let deleted = mirror::column(
            &h.conn(),
            Table::Subscriptions,
            "sub_JLEPMp81LApOJl",
            "deleted",
        )
        .unwrap();
        assert_eq!(deleted.as_deref(), Some("1"));
    }

    #[test]
    fn out_of_order_updates_keep_the_newest_state_and_its_items() {
        let mut h = Harness::new();
        let with_quantity = |id: &str, created: i64, q: i64| {
            fixture_with("customer.subscription.updated.json", |v| {
                v["id"] = id.into();
                v["created"] = created.into();
                v["data"]["object"]["items"]["data"][0]["quantity"] = q.into();
            })
        };
        h.apply_json(&with_quantity("evt_new", 200, 5));
        h.apply_json(&with_quantity("evt_old", 100, 2));
        let s = mirror::get_subscription(&h.conn(), "sub_JLEPMp81LApOJl").unwrap();
        assert_eq!(s.quantity, Some(5));
        assert_eq!(s.items[0].quantity, Some(5));
        h.apply_json(&with_quantity("evt_same_second", 200, 7));
        let s = mirror::get_subscription(&h.conn(), "sub_JLEPMp81LApOJl").unwrap();
        assert_eq!(s.quantity, Some(7));
        assert_eq!(s.items[0].quantity, Some(7));
    }

    #[test]
    fn other_subscription_types_are_unhandled() {
        let mut h = Harness::new();
        let text = fixture_with("customer.subscription.updated.json", |v| {
            v["type"] = "customer.subscription.something_new".into();
        });
        assert_eq!(h.apply_json(&text), Outcome::Unhandled);
    }
}

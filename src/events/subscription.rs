//! customer.subscription.*: the subscription row and its items.

use crate::store::db::Connection;

use super::{ApplyError, Event, Origin, Outcome};
use crate::objects::{
    parse_json,
    subscription::{Item, PriceRef, Subscription},
};
use crate::store::{
    mirror::{self, ItemRow, Table},
    reports,
};

// The row is the mirror's shape, so it is built here, beside the store it names.
impl Item {
    fn row(&self) -> ItemRow {
        let p = self.price_ref().and_then(PriceRef::object);
        let recurring = p.and_then(|p| p.recurring.as_ref());
        ItemRow {
            id: self.id.clone(),
            price: self.price_ref().and_then(PriceRef::id).map(str::to_string),
            quantity: self.quantity,
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
    let items: Vec<ItemRow> = s.items.data.iter().map(Item::row).collect();
    let deleted = event.type_ == "customer.subscription.deleted";
    let ended = store(conn, &s, &items, event.raw(), event.origin(), deleted)?;
    record_history(conn, event, &s, items, ended)?;
    Ok(Outcome::Applied)
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
    let items: Vec<ItemRow> = s.items.data.iter().map(Item::row).collect();
    store(conn, &s, &items, raw, origin, false)?;
    Ok(())
}

/// The row, its items and the terminal mark; returns whether the subscription ended.
fn store(
    conn: &Connection,
    s: &Subscription,
    items: &[ItemRow],
    raw: &str,
    origin: Origin<'_>,
    deleted: bool,
) -> Result<bool, ApplyError> {
    if write(conn, origin, s, raw)? {
        mirror::replace_items(conn, &s.id, items)?;
    }
    // After the write, so the final state is kept; the deleted mark (here: terminal)
    // then stops any late event from bringing a finished subscription back.
    let terminal = matches!(s.status.as_deref(), Some("canceled" | "incomplete_expired"));
    let ended = deleted || terminal;
    if ended {
        mirror::mark_deleted(conn, Table::Subscriptions, &s.id, raw, origin.version)?;
    }
    Ok(ended)
}

/// Adds this event's state to the subscription history that reports read (MRR at a
/// past time, churn), whether or not the mirror row took it: a late event is still
/// true of its own time.
fn record_history(
    conn: &Connection,
    event: &Event<'_>,
    s: &Subscription,
    mut items: Vec<ItemRow>,
    ended: bool,
) -> Result<(), ApplyError> {
    // Old API versions without items: the top-level plan and quantity are the item.
    if items.is_empty()
        && let Some(plan) = &s.plan
    {
        let p = plan.object();
        let recurring = p.and_then(|p| p.recurring.as_ref());
        items.push(ItemRow {
            id: s.id.clone(),
            price: plan.id().map(str::to_string),
            quantity: s.quantity,
            unit_amount: p.and_then(|p| p.unit_amount.or(p.amount)),
            currency: p.and_then(|p| p.currency.clone()),
            interval: recurring
                .and_then(|r| r.interval.clone())
                .or_else(|| p.and_then(|p| p.interval.clone())),
            interval_count: recurring
                .and_then(|r| r.interval_count)
                .or_else(|| p.and_then(|p| p.interval_count)),
        });
    }
    let currency = s
        .currency
        .clone()
        .or_else(|| items.iter().find_map(|i| i.currency.clone()));
    let discounts = super::discount::subscription_discounts(conn, s, event.raw(), event.version())?;
    let version = reports::SubscriptionVersion {
        subscription: &s.id,
        customer: s.customer.as_deref(),
        status: s.status.as_deref(),
        currency: currency.as_deref(),
        terminal: ended,
        items: &items,
        discounts: &discounts,
    };
    reports::record_subscription_version(conn, &version, event.version())?;
    Ok(())
}

fn write(
    conn: &Connection,
    origin: Origin<'_>,
    s: &Subscription,
    raw: &str,
) -> Result<bool, ApplyError> {
    let first = s.items.data.first();
    let first_row = first.map(Item::row);
    let price = first_row
        .as_ref()
        .and_then(|r| r.price.clone())
        .or_else(|| s.plan.as_ref().and_then(PriceRef::id).map(str::to_string));
    let quantity = first.and_then(|i| i.quantity).or(s.quantity);
    let currency = s.currency.clone().or_else(|| {
        first_row
            .as_ref()
            .and_then(|r| r.currency.clone())
            .or_else(|| s.plan.as_ref().and_then(PriceRef::object)?.currency.clone())
    });
    let period_start = s
        .current_period_start
        .or_else(|| first.and_then(|i| i.current_period_start));
    let period_end = s
        .current_period_end
        .or_else(|| first.and_then(|i| i.current_period_end));
    Ok(mirror::upsert(
        conn,
        Table::Subscriptions,
        &[
            ("id", &s.id),
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
            ("start_date", &s.start_date),
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
    fn old_api_versions_without_items_use_the_top_level_plan() {
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
        assert!(s.items.is_empty());
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

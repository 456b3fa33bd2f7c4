//! customer.created / updated / deleted, and the subscriptions a customer embeds in
//! old API versions.

use crate::store::db::Connection;

use super::{ApplyError, Event, Origin, Outcome};
use crate::objects::{customer::Customer, parse_json};
use crate::store::mirror::{self, Table};

pub(super) fn apply(conn: &Connection, event: &Event<'_>) -> Result<Outcome, ApplyError> {
    match event.type_ {
        "customer.created" | "customer.updated" | "customer.deleted" => {}
        _ => return Ok(Outcome::Unhandled),
    }
    let c: Customer = event.parse("customer")?;
    let deleted = event.type_ == "customer.deleted";
    store(conn, &c, event.raw(), event.origin(), deleted)?;
    // Before 2014-01-31 a customer carried its one subscription, and until 2020-08-27
    // the list of them: each is what a subscription event of the same time would say,
    // so it is applied the same way (docs/decisions.md, "Subscriptions a customer
    // embeds"). The list may be truncated: one absent is left as it is.
    for raw in c.embedded_subscriptions() {
        super::subscription::apply_embedded(conn, event, raw, &c.id)?;
    }
    Ok(Outcome::Applied)
}

/// Writes a customer object (as Stripe returned it to a call) under the ordering rule;
/// a deleted customer (`"deleted": true`) is marked deleted for good.
pub(crate) fn write_customer(
    conn: &Connection,
    raw: &str,
    origin: Origin<'_>,
) -> Result<(), ApplyError> {
    let c: Customer = parse_json(raw, "customer")?;
    store(conn, &c, raw, origin, false)
}

fn store(
    conn: &Connection,
    c: &Customer,
    raw: &str,
    origin: Origin<'_>,
    deleted: bool,
) -> Result<(), ApplyError> {
    if deleted || c.deleted {
        // A full customer in the event brings the last state; a stub only deletes.
        if c.created.is_some() {
            write(conn, c, raw, origin)?;
        }
        mirror::mark_deleted(conn, Table::Customers, &c.id, raw, origin.version)?;
        return Ok(());
    }
    write(conn, c, raw, origin)?;
    Ok(())
}

fn write(
    conn: &Connection,
    c: &Customer,
    raw: &str,
    origin: Origin<'_>,
) -> Result<bool, ApplyError> {
    let default_pm = c.default_payment_method();
    Ok(mirror::upsert(
        conn,
        Table::Customers,
        &[
            ("id", &c.id),
            ("email", &c.email),
            ("name", &c.name),
            ("default_payment_method", &default_pm),
            ("currency", &c.currency),
            ("livemode", &c.livemode),
            ("account", &origin.account),
            ("created", &c.created),
            ("raw", &raw),
        ],
        origin.version,
    )?)
}

#[cfg(test)]
mod tests {
    use crate::events::{Outcome, testing::*};
    use crate::store::mirror;

    #[test]
    fn customer_created_fixture_is_mirrored() {
        let mut h = Harness::new();
        assert_eq!(h.apply_fixture("customer.created.json"), Outcome::Applied);
        let c = mirror::get_customer(&h.conn(), "cus_IhGfebO16cMIGN").unwrap();
        assert!(!c.deleted);
        assert!(c.email.is_some());
    }

    #[test]
    fn customer_deleted_stub_marks_the_customer_deleted_and_late_updates_do_not_revive_it() {
        let mut h = Harness::new();
        h.apply_fixture("customer.created.json");
        h.apply_fixture("customer.deleted.json");
        h.apply_json(&fixture_with("customer.updated.json", |v| {
            v["id"] = "evt_late_update".into();
            v["created"] = 4_000_000_000i64.into();
            v["data"]["object"]["name"] = "Revived".into();
        }));
        let c = mirror::get_customer(&h.conn(), "cus_IhGfebO16cMIGN").unwrap();
        assert!(c.deleted);
        assert_ne!(c.name.as_deref(), Some("Revived"));
    }

    /// A customer of before 2014-01-31 with its one subscription (no id, a plan and a
    /// quantity on it, no items).
    fn customer_2013(event: &str, created: i64, quantity: i64, status: &str) -> String {
        serde_json::json!({
            "id": event, "object": "event", "type": "customer.updated", "created": created,
            "livemode": false, "api_version": "2013-08-13",
            "data": {"object": {
                "id": "cus_2013", "object": "customer", "created": 1_370_000_000,
                "livemode": false, "default_card": "card_2013", "account_balance": 0,
                "cards": {"object": "list", "count": 0, "data": []},
                "subscription": {
                    "object": "subscription", "customer": "cus_2013", "status": status,
                    "start": 1_370_000_000, "current_period_start": 1_380_000_000,
                    "current_period_end": 1_382_592_000, "cancel_at_period_end": false,
                    "quantity": quantity, "trial_start": null, "trial_end": null,
                    "plan": {"id": "gold", "object": "plan", "amount": 2500, "currency": "usd",
                             "interval": "month", "interval_count": 1, "name": "Gold"}
                }
            }}
        })
        .to_string()
    }

    #[test]
    fn a_2013_customer_mirrors_its_one_subscription_like_a_subscription_event() {
        let mut h = Harness::new();
        assert_eq!(
            h.apply_json(&customer_2013("evt_c1", 1_380_000_100, 3, "active")),
            Outcome::Applied
        );
        let conn = h.conn();
        let c = mirror::get_customer(&conn, "cus_2013").unwrap();
        assert_eq!(c.default_payment_method.as_deref(), Some("card_2013"));
        assert_eq!(c.subscriptions.len(), 1);
        let s = &c.subscriptions[0];
        assert_eq!(s.id, "cus_2013", "keyed by its customer: it had no id");
        assert_eq!(s.price.as_deref(), Some("gold"));
        assert_eq!(s.quantity, Some(3));
        assert_eq!(s.current_period_end, Some(1_382_592_000));
        assert_eq!(s.items[0].unit_amount, Some(2500));
        // In the history the reports read, as a subscription event would have put it.
        let (quantity, amount): (i64, i64) = conn
            .query_row(
                "SELECT i.quantity, i.unit_amount FROM subscription_version_items i
                 JOIN subscription_versions v ON v.id = i.version
                 WHERE v.subscription = 'cus_2013'",
                (),
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!((quantity, amount), (3, 2500));
    }

    #[test]
    fn an_embedded_subscription_follows_the_ordering_rule_against_subscription_events() {
        let mut h = Harness::new();
        let subscription_event = |event: &str, created: i64, quantity: i64| {
            fixture_with("customer.subscription.updated.json", |v| {
                v["id"] = event.into();
                v["created"] = created.into();
                let o = v["data"]["object"].as_object_mut().unwrap();
                for gone in ["id", "items"] {
                    o.remove(gone);
                }
                o.insert("customer".into(), "cus_2013".into());
                o.insert("quantity".into(), quantity.into());
            })
        };
        let quantity = |h: &Harness| {
            mirror::get_subscription(&h.conn(), "cus_2013")
                .unwrap()
                .quantity
        };
        // A newer subscription event, then an older customer event: the newer stays.
        h.apply_json(&subscription_event("evt_s_new", 1_380_000_500, 7));
        h.apply_json(&customer_2013("evt_c_old", 1_380_000_100, 3, "active"));
        assert_eq!(quantity(&h), Some(7));
        // A newer customer event wins, and an older subscription event changes nothing.
        h.apply_json(&customer_2013("evt_c_new", 1_380_000_900, 5, "active"));
        assert_eq!(quantity(&h), Some(5));
        h.apply_json(&subscription_event("evt_s_old", 1_380_000_200, 9));
        assert_eq!(quantity(&h), Some(5));
        // A canceled embedded subscription is terminal, as it is from its own event.
        h.apply_json(&customer_2013("evt_c_cancel", 1_380_001_000, 5, "canceled"));
        h.apply_json(&customer_2013("evt_c_late", 1_380_002_000, 8, "active"));
        let s = mirror::get_subscription(&h.conn(), "cus_2013").unwrap();
        assert_eq!(s.status.as_deref(), Some("canceled"));
        assert_eq!(s.quantity, Some(5));
    }

    #[test]
    fn a_listed_subscription_is_mirrored_and_one_absent_from_the_list_is_kept() {
        let mut h = Harness::new();
        let with_list = |event: &str, created: i64, ids: &[&str]| {
            let data: Vec<serde_json::Value> = ids
                .iter()
                .map(|id| {
                    serde_json::json!({
                        "id": id, "object": "subscription", "customer": "cus_list",
                        "status": "active", "current_period_end": 1_560_000_000,
                        "items": {"object": "list", "data": [{"id": format!("si_{id}"),
                            "object": "subscription_item", "quantity": 1,
                            "plan": {"id": "silver", "object": "plan", "amount": 900,
                                     "currency": "eur", "interval": "month"}}]}
                    })
                })
                .collect();
            fixture_with("customer.updated.json", |v| {
                v["id"] = event.into();
                v["created"] = created.into();
                v["data"]["object"]["id"] = "cus_list".into();
                v["data"]["object"]["subscriptions"] = serde_json::json!({
                    "object": "list", "has_more": true, "data": data});
            })
        };
        h.apply_json(&with_list("evt_l1", 1_560_000_000, &["sub_a", "sub_b"]));
        h.apply_json(&with_list("evt_l2", 1_560_000_100, &["sub_b"]));
        let c = mirror::get_customer(&h.conn(), "cus_list").unwrap();
        let ids: Vec<&str> = c.subscriptions.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids.len(), 2, "{ids:?}");
        assert!(
            c.subscriptions
                .iter()
                .all(|s| s.status.as_deref() == Some("active"))
        );
        assert_eq!(c.subscriptions[0].price.as_deref(), Some("silver"));
    }

    #[test]
    fn an_older_update_never_overwrites_newer_state_and_equal_created_later_arrival_wins() {
        let mut h = Harness::new();
        let with_name = |id: &str, created: i64, name: &str| {
            fixture_with("customer.updated.json", |v| {
                v["id"] = id.into();
                v["created"] = created.into();
                v["data"]["object"]["name"] = name.into();
            })
        };
        h.apply_json(&with_name("evt_a", 200, "New"));
        h.apply_json(&with_name("evt_b", 100, "Old"));
        let name = |h: &Harness| {
            mirror::get_customer(&h.conn(), "cus_IhGfebO16cMIGN")
                .unwrap()
                .name
        };
        assert_eq!(name(&h).as_deref(), Some("New"));
        h.apply_json(&with_name("evt_c", 200, "Same second, later"));
        assert_eq!(name(&h).as_deref(), Some("Same second, later"));
    }
}

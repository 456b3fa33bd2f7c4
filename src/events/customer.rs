//! customer.created / updated / deleted.

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
    let default_pm = c
        .invoice_settings
        .default_payment_method
        .clone()
        .or_else(|| c.default_source.clone());
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

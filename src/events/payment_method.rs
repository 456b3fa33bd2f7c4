//! payment_method.attached / updated / automatically_updated / detached.
//!
//! The stored raw JSON leaves out the card fingerprint and the billing details: billd
//! shows brand, last four digits and expiry, and has no use for anything that identifies
//! a card across customers or a person.

use crate::store::db::Connection;
use serde_json::Value;

use super::{ApplyError, Event, Origin, Outcome};
use crate::objects::{parse_json, payment_method::PaymentMethod};
use crate::store::mirror::{self, Table};

/// Members of the raw object that are never stored.
const NOT_STORED: &[&[&str]] = &[
    &["card", "fingerprint"],
    &["card", "number"],
    &["card", "cvc"],
    &["billing_details"],
];

pub(super) fn apply(conn: &Connection, event: &Event<'_>) -> Result<Outcome, ApplyError> {
    match event.type_ {
        "payment_method.attached"
        | "payment_method.updated"
        | "payment_method.automatically_updated"
        | "payment_method.detached" => {}
        _ => return Ok(Outcome::Unhandled),
    }
    let detached = event.type_ == "payment_method.detached";
    write_payment_method(conn, event.raw(), event.origin(), detached)?;
    Ok(Outcome::Applied)
}

/// Writes a payment method under the ordering rule, without the members billd never
/// keeps. `detached`: it belongs to no one, whatever the object says.
pub(crate) fn write_payment_method(
    conn: &Connection,
    raw: &str,
    origin: Origin<'_>,
    detached: bool,
) -> Result<bool, ApplyError> {
    let pm: PaymentMethod = parse_json(raw, "payment_method")?;
    // A detached method belongs to no one, whatever an older rendering said.
    let customer = if detached { None } else { pm.customer.clone() };
    let card = pm.card.as_ref();
    let raw = redacted(raw, NOT_STORED)?;
    Ok(mirror::upsert(
        conn,
        Table::PaymentMethods,
        &[
            ("id", &pm.id),
            ("customer", &customer),
            ("type", &pm.type_),
            ("card_brand", &card.and_then(|c| c.brand.clone())),
            ("card_last4", &card.and_then(|c| c.last4.clone())),
            ("exp_month", &card.and_then(|c| c.exp_month)),
            ("exp_year", &card.and_then(|c| c.exp_year)),
            ("created", &pm.created),
            ("raw", &raw),
        ],
        origin.version,
    )?)
}

/// `raw` without the members at `paths` (each a path of object keys), for objects that
/// carry data billd must not keep.
pub(super) fn redacted(raw: &str, paths: &[&[&str]]) -> Result<String, ApplyError> {
    let mut value: Value = parse_json(raw, "object")?;
    for path in paths {
        let Some((last, parents)) = path.split_last() else {
            continue;
        };
        let mut node = Some(&mut value);
        for key in parents {
            node = node.and_then(|n| n.get_mut(*key));
        }
        if let Some(Value::Object(map)) = node {
            map.remove(*last);
        }
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use crate::events::{Outcome, testing::*};
    use crate::store::mirror::{self, Table};

    const PM: &str = "pm_1MKlmhJDPojXS6LNV8Rcj3WO";
    const CUS: &str = "cus_N4vaPItLFHBqRE";

    fn with_customer(h: &mut Harness) {
        h.apply_json(&fixture_with("customer.created.json", |v| {
            v["data"]["object"]["id"] = CUS.into();
        }));
    }

    #[test]
    fn an_attached_card_is_listed_with_its_customer_without_fingerprint() {
        let mut h = Harness::new();
        with_customer(&mut h);
        assert_eq!(
            h.apply_fixture("payment_method.attached.json"),
            Outcome::Applied
        );
        let conn = h.conn();
        let pms = mirror::get_customer(&conn, CUS).unwrap().payment_methods;
        assert_eq!(pms.len(), 1);
        assert_eq!(pms[0].id, PM);
        assert_eq!(pms[0].type_.as_deref(), Some("card"));
        assert_eq!(pms[0].card_brand.as_deref(), Some("visa"));
        assert_eq!(pms[0].card_last4.as_deref(), Some("4242"));
        assert_eq!(pms[0].exp_month, Some(4));
        assert_eq!(pms[0].exp_year, Some(2024));
        let raw = mirror::column(&conn, Table::PaymentMethods, PM, "raw")
            .unwrap()
            .unwrap();
        assert!(!raw.contains("fingerprint"));
        assert!(!raw.contains("billing_details"));
        assert!(raw.contains("\"last4\":\"4242\""));
    }

    #[test]
    fn a_detached_card_no_longer_belongs_to_the_customer() {
        let mut h = Harness::new();
        with_customer(&mut h);
        h.apply_fixture("payment_method.attached.json");
        h.apply_json(&fixture_with("payment_method.detached.json", |v| {
            v["id"] = "evt_detached".into();
            v["created"] = 1_700_000_000i64.into();
            v["data"]["object"]["id"] = PM.into();
            // Even if the object still named the customer.
            v["data"]["object"]["customer"] = CUS.into();
        }));
        let conn = h.conn();
        assert!(
            mirror::get_customer(&conn, CUS)
                .unwrap()
                .payment_methods
                .is_empty()
        );
        assert_eq!(
            mirror::column(&conn, Table::PaymentMethods, PM, "customer").unwrap(),
            None
        );
    }

    #[test]
    fn redaction_removes_nested_members_and_ignores_missing_ones() {
        let raw = r#"{"id":"pm_1","card":{"last4":"4242","fingerprint":"abc"},"billing_details":{"email":"a@b.c"}}"#;
        let redact = |raw: &str| -> serde_json::Value {
            serde_json::from_str(&super::redacted(raw, super::NOT_STORED).unwrap()).unwrap()
        };
        assert_eq!(
            redact(raw),
            serde_json::json!({"id": "pm_1", "card": {"last4": "4242"}})
        );
        assert_eq!(
            redact(r#"{"id":"pm_2","card":null}"#),
            serde_json::json!({"id": "pm_2", "card": null})
        );
    }
}

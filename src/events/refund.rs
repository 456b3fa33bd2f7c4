//! refund.created / updated / failed and charge.refund.updated: the refund rows (also
//! written for the refunds listed in a charge.refunded event, see `charge.rs`).

use crate::store::db::Connection;

use super::{ApplyError, Event, Origin, Outcome};
use crate::objects::{parse_json, refund::Refund};
use crate::store::mirror::{self, Table};

pub(super) fn apply(conn: &Connection, event: &Event<'_>) -> Result<Outcome, ApplyError> {
    // refund.failed states the outcome, whatever status the object was rendered with.
    let stated = match event.type_ {
        "refund.failed" => Some("failed"),
        "refund.created" | "refund.updated" | "charge.refund.updated" => None,
        _ => return Ok(Outcome::Unhandled),
    };
    let r: Refund = event.parse("refund")?;
    write(conn, event.origin(), &r, event.raw(), stated)?;
    Ok(Outcome::Applied)
}

/// Writes a refund object (as Stripe returned it to a call) under the ordering rule.
pub(crate) fn write_refund(
    conn: &Connection,
    raw: &str,
    origin: Origin<'_>,
) -> Result<bool, ApplyError> {
    let r: Refund = parse_json(raw, "refund")?;
    write(conn, origin, &r, raw, None)
}

/// Writes one refund under the ordering rule of `origin`; `raw` is the refund's own JSON.
pub(super) fn write(
    conn: &Connection,
    origin: Origin<'_>,
    r: &Refund,
    raw: &str,
    stated_status: Option<&str>,
) -> Result<bool, ApplyError> {
    // The payment row is the intent's, or for a charge without one, the charge's own;
    // it may not be mirrored yet, and then the charge id is the best name for it.
    let payment = match (&r.payment_intent, &r.charge) {
        (Some(pi), _) => Some(pi.clone()),
        (None, Some(ch)) => {
            Some(mirror::payment_for_charge(conn, ch)?.unwrap_or_else(|| ch.clone()))
        }
        (None, None) => None,
    };
    let status = stated_status
        .map(str::to_string)
        .or_else(|| r.status.clone());
    let amount = r.amount.unwrap_or(0);
    let currency = r.currency.clone().unwrap_or_default();
    let created = r.created.unwrap_or(origin.version.created);
    Ok(mirror::upsert(
        conn,
        Table::Refunds,
        &[
            ("id", &r.id),
            ("payment", &payment),
            ("charge", &r.charge),
            ("amount", &amount),
            ("currency", &currency),
            ("status", &status),
            ("reason", &r.reason),
            ("created", &created),
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

    const RE: &str = "re_1Nispe2eZvKYlo2Cd31jOCgZ";

    fn col(h: &Harness, column: &'static str) -> Option<String> {
        mirror::column(&h.conn(), Table::Refunds, RE, column).unwrap()
    }

    #[test]
    fn refund_created_fixture_is_mirrored_against_its_payment_intent() {
        let mut h = Harness::new();
        assert_eq!(h.apply_fixture("refund.created.json"), Outcome::Applied);
        assert_eq!(
            col(&h, "payment").as_deref(),
            Some("pi_1GszsK2eZvKYlo2CfhZyoZLp")
        );
        assert_eq!(
            col(&h, "charge").as_deref(),
            Some("ch_1NirD82eZvKYlo2CIvbtLWuY")
        );
        assert_eq!(col(&h, "amount").as_deref(), Some("1000"));
        assert_eq!(col(&h, "currency").as_deref(), Some("usd"));
        assert_eq!(col(&h, "status").as_deref(), Some("succeeded"));
    }

    #[test]
    fn refund_failed_is_failed_whatever_the_object_says() {
        let mut h = Harness::new();
        h.apply_fixture("refund.failed.json");
        assert_eq!(col(&h, "status").as_deref(), Some("failed"));
    }

    #[test]
    fn a_refund_without_payment_intent_belongs_to_its_charges_payment() {
        let mut h = Harness::new();
        h.apply_json(&fixture_with("charge.succeeded.json", |v| {
            v["data"]["object"]["id"] = "ch_1NirD82eZvKYlo2CIvbtLWuY".into();
            v["data"]["object"]["payment_intent"] = "pi_of_charge".into();
        }));
        h.apply_json(&fixture_with("charge.refund.updated.json", |v| {
            v["data"]["object"]["payment_intent"] = serde_json::Value::Null;
        }));
        assert_eq!(col(&h, "payment").as_deref(), Some("pi_of_charge"));
    }

    #[test]
    fn an_unknown_charge_names_the_payment_by_the_charge_id() {
        let mut h = Harness::new();
        h.apply_json(&fixture_with("charge.refund.updated.json", |v| {
            v["data"]["object"]["payment_intent"] = serde_json::Value::Null;
        }));
        assert_eq!(
            col(&h, "payment").as_deref(),
            Some("ch_1NirD82eZvKYlo2CIvbtLWuY")
        );
    }
}

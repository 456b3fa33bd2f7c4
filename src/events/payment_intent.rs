//! payment_intent.*: the payment row keyed by the payment intent, and its
//! payment-failed flag.
//!
//! Charge events write the same row (see `charge.rs`); the columns only a charge knows
//! (`charge`, `amount_refunded`) are never written here.

use crate::store::db::Connection;

use super::{
    ApplyError, Event, Origin, Outcome,
    payment::{self, PaymentRow},
};
use crate::objects::{parse_json, payment_intent::PaymentIntent};
use crate::store::{
    flags::{self, Kind},
    mirror::{self, Table},
};

pub(super) fn apply(conn: &Connection, event: &Event<'_>, now: i64) -> Result<Outcome, ApplyError> {
    // Where the type states the outcome it wins over the object's status: a failed
    // intent goes back to `requires_payment_method`, which says nothing of the failure.
    let stated = match event.type_ {
        "payment_intent.succeeded" => Some("succeeded"),
        "payment_intent.payment_failed" => Some("failed"),
        "payment_intent.canceled" => Some("canceled"),
        "payment_intent.created"
        | "payment_intent.processing"
        | "payment_intent.requires_action"
        | "payment_intent.amount_capturable_updated"
        | "payment_intent.partially_funded" => None,
        _ => return Ok(Outcome::Unhandled),
    };
    let pi: PaymentIntent = event.parse("payment_intent")?;
    let status = stated
        .or_else(|| pi.status())
        .unwrap_or("unknown")
        .to_string();
    write(conn, event.origin(), &pi, event.raw(), &status)?;

    // The invoice is absent from new API versions; a charge event may have stored it.
    let invoice = match pi.invoice.clone() {
        Some(invoice) => Some(invoice),
        None => mirror::column(conn, Table::Payments, &pi.id, "invoice")?,
    };
    match event.type_ {
        "payment_intent.payment_failed" => {
            // As for invoices: a failure older than the stored success is recorded
            // resolved.
            let stored = mirror::column(conn, Table::Payments, &pi.id, "status")?;
            {
                let code = failure_code(&pi);
                let detail = format!(
                    "payment {} failed: {}, amount {} {}",
                    pi.id,
                    code.as_deref().unwrap_or("unknown"),
                    pi.amount.unwrap_or(0),
                    pi.currency.as_deref().unwrap_or("")
                );
                let object = invoice.as_deref().unwrap_or(&pi.id);
                flags::open(
                    conn,
                    Kind::PaymentFailed,
                    object,
                    pi.customer.as_deref(),
                    detail.trim_end(),
                    event.created,
                )?;
                if stored.as_deref() == Some("succeeded") {
                    flags::resolve_by_event(
                        conn,
                        Kind::PaymentFailed,
                        object,
                        flags::ALREADY_SUCCEEDED,
                        event.created,
                        now,
                    )?;
                }
            }
        }
        "payment_intent.succeeded" => {
            flags::resolve_paid(
                conn,
                &pi.id,
                invoice.as_deref(),
                event.type_,
                event.created,
                now,
            )?;
        }
        _ => {}
    }
    Ok(Outcome::Applied)
}

fn failure_code(pi: &PaymentIntent) -> Option<String> {
    let e = pi.last_payment_error.as_ref()?;
    e.code.clone().or_else(|| e.decline_code.clone())
}

/// Writes a payment intent object (as Stripe returned it to a call) to its payment row
/// under the ordering rule. Its status is the object's own.
pub(crate) fn write_payment_intent(
    conn: &Connection,
    raw: &str,
    origin: Origin<'_>,
) -> Result<bool, ApplyError> {
    let pi: PaymentIntent = parse_json(raw, "payment_intent")?;
    let status = pi.status().unwrap_or("unknown").to_string();
    write(conn, origin, &pi, raw, &status)
}

fn write(
    conn: &Connection,
    origin: Origin<'_>,
    pi: &PaymentIntent,
    raw: &str,
    status: &str,
) -> Result<bool, ApplyError> {
    let failure_code = failure_code(pi);
    payment::write(
        conn,
        origin,
        &PaymentRow {
            id: &pi.id,
            charge: None,
            amount: pi.amount.unwrap_or(0),
            amount_refunded: None,
            currency: pi.currency.as_deref().unwrap_or_default(),
            status,
            failure_code: failure_code.as_deref(),
            // `created` of a payment is when the money moved, which the charge knows;
            // the intent's own time only stands in for a new row.
            created: pi.created.unwrap_or(origin.version.created),
            created_is_provisional: true,
            livemode: pi.livemode.unwrap_or(origin.livemode),
            customer: pi.customer.as_deref(),
            invoice: pi.invoice.as_deref(),
            raw,
        },
    )
}

#[cfg(test)]
mod tests {
    use crate::events::{Outcome, testing::*};
    use crate::store::{
        flags::{self, Kind},
        mirror::{self, Paging},
    };

    const PI: &str = "pi_1IqxJOJDPojXS6LN9uOebAea";

    fn payment_count(h: &Harness) -> usize {
        let paging = Paging {
            limit: 100,
            starting_after: None,
        };
        mirror::list_payments(&h.conn(), None, None, None, &paging)
            .unwrap()
            .0
            .len()
    }

    #[test]
    fn payment_intent_succeeded_takes_its_status_from_the_event_type() {
        let mut h = Harness::new();
        assert_eq!(
            h.apply_fixture("payment_intent.succeeded.json"),
            Outcome::Applied
        );
        let p = mirror::get_payment(&h.conn(), PI).unwrap();
        assert_eq!(p.status, "succeeded");
        assert_eq!(p.amount, 1000);
        assert_eq!(p.currency, "usd");
        assert_eq!(p.created, 1620984482);
        assert_eq!(p.amount_refunded, 0);
        assert!(p.charge.is_none());
    }

    #[test]
    fn other_payment_intent_types_keep_the_objects_status() {
        let mut h = Harness::new();
        h.apply_fixture("payment_intent.processing.json");
        let p = mirror::get_payment(&h.conn(), PI).unwrap();
        assert_eq!(p.status, "requires_payment_method");
    }

    #[test]
    fn a_replayed_event_does_not_create_a_second_payment() {
        let mut h = Harness::new();
        let text = fixture("payment_intent.created.json");
        h.apply_json(&text);
        h.apply_json(&text);
        assert_eq!(payment_count(&h), 1);
    }

    #[test]
    fn a_failed_payment_intent_opens_a_flag_and_its_success_resolves_it() {
        let mut h = Harness::new();
        h.apply_json(&fixture_with("payment_intent.payment_failed.json", |v| {
            v["data"]["object"]["last_payment_error"] =
                serde_json::json!({"code": "card_declined", "decline_code": "insufficient_funds"});
            v["data"]["object"]["customer"] = "cus_1".into();
        }));
        let conn = h.conn();
        let flag = flags::find(&conn, Kind::PaymentFailed, PI)
            .unwrap()
            .unwrap();
        assert_eq!(flag.status, "open");
        assert_eq!(flag.customer.as_deref(), Some("cus_1"));
        assert_eq!(
            flag.detail,
            format!("payment {PI} failed: card_declined, amount 1000 usd")
        );
        let p = mirror::get_payment(&conn, PI).unwrap();
        assert_eq!(p.status, "failed");
        assert_eq!(p.failure_code.as_deref(), Some("card_declined"));

        h.apply_json(&fixture_with("payment_intent.succeeded.json", |v| {
            v["id"] = "evt_pi_ok".into();
            v["created"] = 1_619_700_000i64.into();
        }));
        let flag = flags::find(&conn, Kind::PaymentFailed, PI)
            .unwrap()
            .unwrap();
        assert_eq!(flag.status, "resolved");
        // The customer named by the failure is kept when a later event omits it.
        let p = mirror::get_payment(&conn, PI).unwrap();
        assert_eq!(p.customer.as_deref(), Some("cus_1"));
        assert_eq!(p.status, "succeeded");
    }

    #[test]
    fn a_payment_intent_of_an_invoice_flags_the_invoice() {
        let mut h = Harness::new();
        h.apply_json(&fixture_with("payment_intent.payment_failed.json", |v| {
            v["data"]["object"]["invoice"] = "in_1".into();
        }));
        let conn = h.conn();
        assert!(
            flags::find(&conn, Kind::PaymentFailed, "in_1")
                .unwrap()
                .is_some()
        );
        assert!(
            flags::find(&conn, Kind::PaymentFailed, PI)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_late_failure_after_success_is_recorded_resolved() {
        let mut h = Harness::new();
        h.apply_json(&fixture_with("payment_intent.succeeded.json", |v| {
            v["created"] = 1_619_700_000i64.into();
        }));
        h.apply_fixture("payment_intent.payment_failed.json");
        assert_eq!(
            flags::find(&h.conn(), Kind::PaymentFailed, PI)
                .unwrap()
                .unwrap()
                .status,
            "resolved"
        );
        assert_eq!(
            mirror::get_payment(&h.conn(), PI).unwrap().status,
            "succeeded"
        );
    }
}

//! invoice.*: the invoice row, and payment-failed flags opened and resolved by it.

use crate::store::db::{Connection, ToSql};

use super::{ApplyError, Event, Origin, Outcome};
use crate::objects::{invoice::Invoice, parse_json};
use crate::store::{
    flags::{self, Kind},
    mirror::{self, Table},
};

pub(super) fn apply(conn: &Connection, event: &Event<'_>, now: i64) -> Result<Outcome, ApplyError> {
    match event.type_ {
        "invoice.created"
        | "invoice.updated"
        | "invoice.finalized"
        | "invoice.paid"
        | "invoice.payment_succeeded"
        | "invoice.payment_failed"
        | "invoice.voided"
        | "invoice.marked_uncollectible"
        | "invoice.deleted"
        | "invoice.finalization_failed"
        | "invoice.upcoming"
        | "invoice.sent"
        | "invoice.overdue"
        | "invoice.overpaid"
        | "invoice.will_be_due"
        | "invoice.payment_action_required"
        | "invoice.payment_attempt_required" => {}
        _ => return Ok(Outcome::Unhandled),
    }
    let inv: Invoice = event.parse("invoice")?;
    // An upcoming invoice is a preview that does not exist yet: nothing to mirror,
    // whether its version renders it without an id or with a preview's own.
    let Some(id) = inv
        .id
        .as_deref()
        .filter(|_| event.type_ != "invoice.upcoming")
    else {
        return Ok(Outcome::Applied);
    };
    let v = event.version();
    if event.type_ == "invoice.deleted" {
        // A full invoice in the event brings the last state; a stub only deletes.
        if inv.created().is_some() {
            write(conn, event.raw(), event.origin(), id, &inv)?;
        }
        mirror::mark_deleted(conn, Table::Invoices, id, event.raw(), v)?;
        return Ok(Outcome::Applied);
    }
    write(conn, event.raw(), event.origin(), id, &inv)?;
    match event.type_ {
        "invoice.payment_failed" => {
            // Every failure leaves a flag, whatever the order events were applied in; a
            // late failure of an invoice already paid (by a newer event) leaves it
            // resolved at once: no follow-up, but the failure is on record.
            let status = mirror::column(conn, Table::Invoices, id, "status")?;
            {
                let detail = format!(
                    "invoice {id} payment failed: attempt {}, amount_due {} {}",
                    inv.attempt_count.unwrap_or(0),
                    inv.amount_due.unwrap_or(0),
                    inv.currency.as_deref().unwrap_or("")
                );
                flags::open(
                    conn,
                    Kind::PaymentFailed,
                    id,
                    inv.customer.as_deref(),
                    detail.trim_end(),
                    event.created,
                )?;
                if status.as_deref() == Some("paid") {
                    flags::resolve_by_event(
                        conn,
                        Kind::PaymentFailed,
                        id,
                        flags::ALREADY_SUCCEEDED,
                        event.created,
                        now,
                    )?;
                }
            }
        }
        "invoice.payment_action_required" => {
            // The customer must confirm the payment (3-D Secure, a bank's check): someone
            // should tell them. Resolved like a failure, once the invoice is paid.
            let detail = format!(
                "invoice {id} payment needs the customer's action: amount_due {} {}",
                inv.amount_due.unwrap_or(0),
                inv.currency.as_deref().unwrap_or("")
            );
            flags::open(
                conn,
                Kind::PaymentActionRequired,
                id,
                inv.customer.as_deref(),
                detail.trim_end(),
                event.created,
            )?;
            let status = mirror::column(conn, Table::Invoices, id, "status")?;
            if status.as_deref() == Some("paid") {
                flags::resolve_by_event(
                    conn,
                    Kind::PaymentActionRequired,
                    id,
                    flags::ALREADY_SUCCEEDED,
                    event.created,
                    now,
                )?;
            }
        }
        "invoice.paid" | "invoice.payment_succeeded" => {
            flags::resolve_by_event(
                conn,
                Kind::PaymentActionRequired,
                id,
                event.type_,
                event.created,
                now,
            )?;
            let pi = match inv.payment_intent() {
                Some(pi) => Some(pi),
                None => mirror::column(conn, Table::Invoices, id, "payment_intent")?,
            };
            flags::resolve_paid(conn, id, pi.as_deref(), event.type_, event.created, now)?;
        }
        _ => {}
    }
    Ok(Outcome::Applied)
}

/// Writes an invoice object (as Stripe listed or returned it) under the ordering rule.
/// Flags are left to the events, which say what happened to a payment and when.
pub(crate) fn write_invoice(
    conn: &Connection,
    raw: &str,
    origin: Origin<'_>,
) -> Result<(), ApplyError> {
    let inv: Invoice = parse_json(raw, "invoice")?;
    if let Some(id) = inv.id.as_deref() {
        write(conn, raw, origin, id, &inv)?;
    }
    Ok(())
}

fn write(
    conn: &Connection,
    raw: &str,
    origin: Origin<'_>,
    id: &str,
    inv: &Invoice,
) -> Result<bool, ApplyError> {
    let subscription = inv.subscription();
    let payment_intent = inv.payment_intent();
    let status = inv.status();
    let created = inv.created();
    let mut columns: Vec<(&str, &dyn ToSql)> = vec![
        ("id", &id),
        ("customer", &inv.customer),
        ("subscription", &subscription),
        ("status", &status),
        ("number", &inv.number),
        ("currency", &inv.currency),
        ("amount_due", &inv.amount_due),
        ("amount_paid", &inv.amount_paid),
        ("amount_remaining", &inv.amount_remaining),
        ("total", &inv.total),
        ("period_start", &inv.period_start),
        ("period_end", &inv.period_end),
        ("created", &created),
        ("account", &origin.account),
        ("raw", &raw),
    ];
    // New API versions name the payment intent only when `payments` is included, so an
    // absent one keeps what an earlier event said rather than erasing it.
    if payment_intent.is_some() {
        columns.push(("payment_intent", &payment_intent));
    }
    Ok(mirror::upsert(
        conn,
        Table::Invoices,
        &columns,
        origin.version,
    )?)
}

#[cfg(test)]
mod tests {
    use crate::events::{Outcome, testing::*};
    use crate::store::{
        flags::{self, Kind},
        mirror::{self, Paging, Table},
    };

    fn invoices(h: &Harness, customer: &str) -> Vec<mirror::Invoice> {
        let paging = Paging {
            limit: 10,
            starting_after: None,
        };
        mirror::list_invoices(&h.conn(), Some(customer), None, &paging)
            .unwrap()
            .0
    }

    #[test]
    fn invoice_paid_fixture_is_mirrored() {
        let mut h = Harness::new();
        assert_eq!(h.apply_fixture("invoice.paid.json"), Outcome::Applied);
        let list = invoices(&h, "cus_JsuO3bmrj0QlAw");
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].id, "in_1KJqKBJDPojXS6LNJbvLUgEy");
        assert_eq!(list[0].status.as_deref(), Some("paid"));
        assert_eq!(list[0].subscription.as_deref(), Some("sub_JsuPyCPhXWfZar"));
        assert_eq!(list[0].number.as_deref(), Some("60229DE7-0007"));
    }

    #[test]
    fn a_failed_payment_opens_a_flag_and_a_later_paid_event_resolves_it() {
        let mut h = Harness::new();
        h.apply_fixture("invoice.payment_failed.json");
        let conn = h.conn();
        // basil: the subscription is under parent.subscription_details.
        let sub = mirror::column(&conn, Table::Invoices, "in_1234", "subscription").unwrap();
        assert_eq!(sub.as_deref(), Some("sub_1234"));
        let flag = flags::find(&conn, Kind::PaymentFailed, "in_1234")
            .unwrap()
            .unwrap();
        assert_eq!(flag.status, "open");
        assert_eq!(flag.customer.as_deref(), Some("cus_1234"));
        assert_eq!(
            flag.detail,
            "invoice in_1234 payment failed: attempt 1, amount_due 24900 usd"
        );
        assert!(!flag.detail.contains('@'));

        h.apply_json(&fixture_with("invoice.paid.json", |v| {
            v["created"] = 1_745_500_000i64.into();
            v["data"]["object"]["id"] = "in_1234".into();
            v["data"]["object"]["customer"] = "cus_1234".into();
        }));
        let flag = flags::find(&conn, Kind::PaymentFailed, "in_1234")
            .unwrap()
            .unwrap();
        assert_eq!(flag.status, "resolved");
        assert_eq!(flag.resolved_by.as_deref(), Some("invoice.paid"));
        let status = mirror::column(&conn, Table::Invoices, "in_1234", "status").unwrap();
        assert_eq!(status.as_deref(), Some("paid"));
    }

    #[test]
    fn a_late_failure_of_an_invoice_already_paid_is_recorded_resolved() {
        let mut h = Harness::new();
        h.apply_json(&fixture_with("invoice.paid.json", |v| {
            v["created"] = 1_745_500_000i64.into();
            v["data"]["object"]["id"] = "in_1234".into();
        }));
        h.apply_fixture("invoice.payment_failed.json");
        // The same flag as in the order Stripe sent them, with nothing to follow up.
        let flag = flags::find(&h.conn(), Kind::PaymentFailed, "in_1234")
            .unwrap()
            .unwrap();
        assert_eq!(flag.status, "resolved");
        assert_eq!(flag.resolved_by.as_deref(), Some(flags::ALREADY_SUCCEEDED));
    }

    #[test]
    fn the_payment_intent_is_read_from_payments_in_new_versions_and_its_flag_resolved() {
        let mut h = Harness::new();
        let conn = h.conn();
        flags::open(&conn, Kind::PaymentFailed, "pi_basil", None, "failed", 100).unwrap();
        h.apply_json(&fixture_with("invoice.paid.json", |v| {
            let o = &mut v["data"]["object"];
            o["payment_intent"] = serde_json::Value::Null;
            o["payments"] = serde_json::json!({
                "object": "list",
                "data": [{"object": "invoice_payment", "payment": {"type": "payment_intent", "payment_intent": "pi_basil"}}]
            });
        }));
        let pi = mirror::column(
            &conn,
            Table::Invoices,
            "in_1KJqKBJDPojXS6LNJbvLUgEy",
            "payment_intent",
        )
        .unwrap();
        assert_eq!(pi.as_deref(), Some("pi_basil"));
        let flag = flags::find(&conn, Kind::PaymentFailed, "pi_basil")
            .unwrap()
            .unwrap();
        assert_eq!(flag.status, "resolved");
    }

    #[test]
    fn invoice_deleted_marks_the_invoice_deleted() {
        let mut h = Harness::new();
        h.apply_fixture("invoice.deleted.json");
        assert!(invoices(&h, "cus_123").is_empty());
        let deleted = mirror::column(&h.conn(), Table::Invoices, "in_xyz", "deleted").unwrap();
        assert_eq!(deleted.as_deref(), Some("1"));
    }

    #[test]
    fn an_upcoming_invoice_with_a_preview_id_is_not_mirrored_either() {
        let mut h = Harness::new();
        let text = fixture_with("invoice.created.json", |v| {
            v["type"] = "invoice.upcoming".into();
            v["data"]["object"]["id"] = "upcoming_in_1Abc".into();
        });
        assert_eq!(h.apply_json(&text), Outcome::Applied);
        assert_eq!(
            mirror::column(&h.conn(), Table::Invoices, "upcoming_in_1Abc", "id").unwrap(),
            None
        );
    }

    #[test]
    fn an_invoice_of_2013_is_mirrored_with_its_date_and_a_status_from_paid() {
        let mut h = Harness::new();
        let text = fixture_with("invoice.paid.json", |v| {
            v["api_version"] = "2013-08-13".into();
            let o = v["data"]["object"].as_object_mut().unwrap();
            let created = o.remove("created").unwrap();
            o.remove("status");
            o.insert("date".into(), created);
            o.insert("paid".into(), true.into());
            o.insert("closed".into(), true.into());
            o.insert("forgiven".into(), false.into());
        });
        assert_eq!(h.apply_json(&text), Outcome::Applied);
        let list = invoices(&h, "cus_JsuO3bmrj0QlAw");
        assert_eq!(list[0].status.as_deref(), Some("paid"));
        assert!(list[0].created.is_some());
    }

    #[test]
    fn an_upcoming_invoice_without_id_is_applied_without_a_write() {
        let mut h = Harness::new();
        let text = fixture_with("invoice.created.json", |v| {
            v["type"] = "invoice.upcoming".into();
            v["data"]["object"].as_object_mut().unwrap().remove("id");
        });
        assert_eq!(h.apply_json(&text), Outcome::Applied);
        assert!(invoices(&h, "cus_QXg1o8vcGmoR32").is_empty());
    }

    #[test]
    fn payment_action_required_opens_a_follow_up_that_the_payment_resolves() {
        use crate::events::testing::fixture_with;
        use crate::store::flags::{Kind, find};
        let mut h = Harness::new();
        let action = fixture_with("invoice.payment_failed.json", |v| {
            v["id"] = "evt_inv_action".into();
            v["type"] = "invoice.payment_action_required".into();
        });
        assert_eq!(h.apply_json(&action), Outcome::Applied);
        let id =
            serde_json::from_str::<serde_json::Value>(&action).unwrap()["data"]["object"]["id"]
                .as_str()
                .unwrap()
                .to_string();
        let flag = find(&h.conn(), Kind::PaymentActionRequired, &id)
            .unwrap()
            .unwrap();
        assert_eq!(flag.status, "open");
        assert!(
            flag.detail.contains("needs the customer's action"),
            "{}",
            flag.detail
        );
        // The other invoice events of newer API versions update the invoice too.
        for type_ in ["invoice.sent", "invoice.overdue", "invoice.will_be_due"] {
            let e = fixture_with("invoice.payment_failed.json", |v| {
                v["id"] = format!("evt_{type_}").into();
                v["type"] = type_.into();
            });
            assert_eq!(h.apply_json(&e), Outcome::Applied, "{type_}");
        }
        let paid = fixture_with("invoice.payment_failed.json", |v| {
            v["id"] = "evt_inv_paid".into();
            v["type"] = "invoice.paid".into();
            v["created"] = (v["created"].as_i64().unwrap() + 60).into();
            v["data"]["object"]["status"] = "paid".into();
        });
        assert_eq!(h.apply_json(&paid), Outcome::Applied);
        let flag = find(&h.conn(), Kind::PaymentActionRequired, &id)
            .unwrap()
            .unwrap();
        assert_eq!(flag.status, "resolved");
    }
}

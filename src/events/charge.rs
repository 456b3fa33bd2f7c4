//! charge.*: the payment row (keyed by the payment intent when there is one, so a
//! payment is one row whichever family reports it), its refunds, and the flags a charge
//! raises: failed payments and risky outcomes.

use crate::store::db::Connection;

use super::{
    ApplyError, Event, Origin, Outcome,
    payment::{self, PaymentRow},
    refund,
};
use crate::objects::{charge::Charge, parse_json, refund::Refund};
use crate::store::{
    flags::{self, Kind},
    mirror::{self, Table},
};

pub(super) fn apply(conn: &Connection, event: &Event<'_>, now: i64) -> Result<Outcome, ApplyError> {
    // Where the type states the outcome it wins over the object's status.
    let stated = match event.type_ {
        "charge.succeeded" | "charge.captured" => Some("succeeded"),
        "charge.failed" => Some("failed"),
        "charge.refunded" | "charge.updated" | "charge.pending" | "charge.expired" => None,
        _ => return Ok(Outcome::Unhandled),
    };
    let ch: Charge = event.parse("charge")?;
    let status = stated
        .or_else(|| ch.status())
        .unwrap_or("unknown")
        .to_string();
    write(conn, event.origin(), &ch, event.raw(), &status)?;

    if event.type_ == "charge.refunded" {
        write_refunds(conn, event.origin(), &ch)?;
    }

    let payment = ch.payment_id();
    let invoice = match ch.invoice.clone() {
        Some(invoice) => Some(invoice),
        None => mirror::column(conn, Table::Payments, payment, "invoice")?,
    };
    match event.type_ {
        "charge.failed" => {
            // Every failure leaves a flag; a late failure of a payment that has since
            // succeeded (another attempt of the same intent) leaves it resolved at once.
            let stored = mirror::column(conn, Table::Payments, payment, "status")?;
            {
                let detail = format!(
                    "payment {payment} failed: {}, amount {} {}",
                    ch.failure_code.as_deref().unwrap_or("unknown"),
                    ch.amount.unwrap_or(0),
                    ch.currency.as_deref().unwrap_or("")
                );
                let object = invoice.as_deref().unwrap_or(payment);
                flags::open(
                    conn,
                    Kind::PaymentFailed,
                    object,
                    ch.customer.as_deref(),
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
        "charge.succeeded" | "charge.captured" => {
            flags::resolve_paid(
                conn,
                payment,
                invoice.as_deref(),
                event.type_,
                event.created,
                now,
            )?;
        }
        _ => {}
    }
    flag_high_risk(conn, event, &ch)?;
    Ok(Outcome::Applied)
}

/// Opens a high-risk flag the first time a charge is seen with a risky outcome. The
/// outcome never changes, so later events of the charge must not reopen a flag a person
/// has resolved.
fn flag_high_risk(conn: &Connection, event: &Event<'_>, ch: &Charge) -> Result<(), ApplyError> {
    let Some(outcome) = &ch.outcome else {
        return Ok(());
    };
    let level = outcome.risk_level.as_deref();
    let kind = outcome.type_.as_deref();
    let risky = level == Some("highest") || matches!(kind, Some("blocked" | "manual_review"));
    if !risky || flags::find(conn, Kind::HighRisk, &ch.id)?.is_some() {
        return Ok(());
    }
    let detail = format!(
        "risk level {}, outcome {}",
        level.unwrap_or("unknown"),
        kind.unwrap_or("unknown")
    );
    flags::open(
        conn,
        Kind::HighRisk,
        &ch.id,
        ch.customer.as_deref(),
        &detail,
        event.created,
    )?;
    Ok(())
}

/// Writes a charge object (as Stripe returned it to a call) to its payment row, and
/// the refunds it lists, under the ordering rule. Its status is the object's own.
pub(crate) fn write_charge(
    conn: &Connection,
    raw: &str,
    origin: Origin<'_>,
) -> Result<bool, ApplyError> {
    let ch: Charge = parse_json(raw, "charge")?;
    let status = ch.status().unwrap_or("unknown").to_string();
    let written = write(conn, origin, &ch, raw, &status)?;
    write_refunds(conn, origin, &ch)?;
    Ok(written)
}

/// The refunds a charge lists (each row keeps its own JSON). A listed refund belongs
/// to this charge whether or not it says so; one without an id cannot be keyed and is
/// left out (the payment's `amount_refunded` still counts it).
fn write_refunds(conn: &Connection, origin: Origin<'_>, ch: &Charge) -> Result<(), ApplyError> {
    #[derive(serde::Deserialize)]
    struct Keyed {
        #[serde(default)]
        id: Option<serde::de::IgnoredAny>,
    }
    let Some(refunds) = &ch.refunds else {
        return Ok(());
    };
    for raw in refunds.data.iter().filter(|r| r.get().starts_with('{')) {
        if parse_json::<Keyed>(raw.get(), "charge refund")?
            .id
            .is_none()
        {
            continue;
        }
        let mut r: Refund = parse_json(raw.get(), "charge refund")?;
        r.charge.get_or_insert_with(|| ch.id.clone());
        if r.payment_intent.is_none() {
            r.payment_intent = ch.payment_intent.clone();
        }
        refund::write(conn, origin, &r, raw.get(), None)?;
    }
    Ok(())
}

fn write(
    conn: &Connection,
    origin: Origin<'_>,
    ch: &Charge,
    raw: &str,
    status: &str,
) -> Result<bool, ApplyError> {
    payment::write(
        conn,
        origin,
        &PaymentRow {
            id: ch.payment_id(),
            charge: Some(&ch.id),
            amount: ch.amount.unwrap_or(0),
            amount_refunded: Some(ch.amount_refunded.unwrap_or(0)),
            currency: ch.currency.as_deref().unwrap_or_default(),
            status,
            failure_code: ch.failure_code.as_deref(),
            created: ch.created.unwrap_or(origin.version.created),
            created_is_provisional: false,
            livemode: ch.livemode.unwrap_or(origin.livemode),
            customer: ch.customer.as_deref(),
            invoice: ch.invoice.as_deref(),
            raw,
        },
    )
}

#[cfg(test)]
mod tests {
    use crate::events::{Outcome, testing::*};
    use crate::store::{
        flags::{self, Kind},
        mirror::{self, Paging, Table},
    };

    fn payments(h: &Harness) -> Vec<mirror::Payment> {
        let paging = Paging {
            limit: 100,
            starting_after: None,
        };
        mirror::list_payments(&h.conn(), None, None, None, &paging)
            .unwrap()
            .0
    }

    #[test]
    fn charge_succeeded_writes_the_payment_row_of_its_intent() {
        let mut h = Harness::new();
        assert_eq!(h.apply_fixture("charge.succeeded.json"), Outcome::Applied);
        let p = mirror::get_payment(&h.conn(), "pi_3KtQThJDPojXS6LN0H9EfsjV").unwrap();
        assert_eq!(p.charge.as_deref(), Some("ch_3KtQThJDPojXS6LN0YmgbxGj"));
        assert_eq!(p.status, "succeeded");
        assert_eq!(p.amount, 3000);
        assert_eq!(p.customer.as_deref(), Some("cus_J7Mkgr8mvbl1eK"));
        assert_eq!(p.invoice.as_deref(), Some("in_1KJdKkJDPojXS6LNSwSWkZSN"));
        // Found by its charge id too.
        let by_charge = mirror::get_payment(&h.conn(), "ch_3KtQThJDPojXS6LN0YmgbxGj").unwrap();
        assert_eq!(by_charge.id, p.id);
    }

    #[test]
    fn charge_refunded_records_the_amount_refunded_and_its_refunds() {
        let mut h = Harness::new();
        h.apply_fixture("charge.refunded.json");
        let conn = h.conn();
        let p = mirror::get_payment(&conn, "pi_3Kl36gJDPojXS6LN02fQVtKR").unwrap();
        assert_eq!(p.amount_refunded, 2500);
        assert_eq!(p.status, "succeeded");
        let re = "re_3Kl36gJDPojXS6LN0eP4yPDz";
        let payment = mirror::column(&conn, Table::Refunds, re, "payment").unwrap();
        assert_eq!(payment.as_deref(), Some("pi_3Kl36gJDPojXS6LN02fQVtKR"));
        let amount = mirror::column(&conn, Table::Refunds, re, "amount").unwrap();
        assert_eq!(amount.as_deref(), Some("2500"));
    }

    #[test]
    fn a_2013_charge_lists_its_refunds_in_an_array_and_is_paid_for_succeeded() {
        let mut h = Harness::new();
        h.apply_json(&fixture_with("charge.refunded.json", |v| {
            v["api_version"] = "2013-08-13".into();
            let o = v["data"]["object"].as_object_mut().unwrap();
            o.insert("status".into(), "paid".into());
            o.remove("payment_intent");
            o.insert(
                "refunds".into(),
                serde_json::json!([
                    {"id": "re_2013", "object": "refund", "amount": 700, "currency": "usd",
                     "created": 1_380_000_000},
                    {"object": "refund", "amount": 100, "currency": "usd"}
                ]),
            );
        }));
        let conn = h.conn();
        let ch = "ch_3Kl36gJDPojXS6LN0DCM4A8l";
        let p = mirror::get_payment(&conn, ch).unwrap();
        assert_eq!(p.status, "succeeded");
        assert_eq!(p.amount_refunded, 2500);
        // The refund names no charge: it is this charge's, on this payment.
        let payment = mirror::column(&conn, Table::Refunds, "re_2013", "payment").unwrap();
        assert_eq!(payment.as_deref(), Some(ch));
        let charge = mirror::column(&conn, Table::Refunds, "re_2013", "charge").unwrap();
        assert_eq!(charge.as_deref(), Some(ch));
        let n: i64 = conn
            .query_row("SELECT count(*) FROM refunds", (), |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "the refund without an id is left out");
    }

    #[test]
    fn charge_and_payment_intent_events_of_one_payment_share_a_row_and_replays_add_none() {
        let mut h = Harness::new();
        let charge = fixture_with("charge.succeeded.json", |v| {
            v["data"]["object"]["payment_intent"] = "pi_1IqxJOJDPojXS6LN9uOebAea".into();
        });
        h.apply_fixture("payment_intent.succeeded.json");
        h.apply_json(&charge);
        h.apply_json(&charge);
        let rows = payments(&h);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].charge.as_deref(),
            Some("ch_3KtQThJDPojXS6LN0YmgbxGj")
        );
        // The charge's time is the payment's time.
        assert_eq!(rows[0].created, 1651125926);
    }

    #[test]
    fn a_payment_intent_event_never_erases_what_only_the_charge_knows() {
        let mut h = Harness::new();
        h.apply_fixture("charge.refunded.json");
        h.apply_json(&fixture_with("payment_intent.succeeded.json", |v| {
            v["created"] = 1_700_000_000i64.into();
            v["data"]["object"]["id"] = "pi_3Kl36gJDPojXS6LN02fQVtKR".into();
        }));
        let p = mirror::get_payment(&h.conn(), "pi_3Kl36gJDPojXS6LN02fQVtKR").unwrap();
        assert_eq!(p.amount_refunded, 2500);
        assert_eq!(p.charge.as_deref(), Some("ch_3Kl36gJDPojXS6LN0DCM4A8l"));
        assert_eq!(p.customer.as_deref(), Some("cus_J7Mkgr8mvbl1eK"));
        assert_eq!(p.invoice.as_deref(), Some("in_1KJdKkJDPojXS6LNSwSWkZSN"));
        assert_eq!(p.created, 1649129463);
    }

    #[test]
    fn a_newer_intent_event_applied_first_keeps_the_charge_and_replays_count_nothing_twice() {
        // The order two workers (or a late delivery) may apply them in: the intent's
        // event is newer than the refunded charge's, and lands first.
        let pi = "pi_3Kl36gJDPojXS6LN02fQVtKR";
        let mut h = Harness::new();
        h.apply_json(&fixture_with("payment_intent.succeeded.json", |v| {
            v["created"] = 1_700_000_000i64.into();
            v["data"]["object"]["id"] = pi.into();
        }));
        let refunded = fixture("charge.refunded.json");
        h.apply_json(&refunded);
        h.apply_json(&refunded);
        let p = mirror::get_payment(&h.conn(), pi).unwrap();
        assert_eq!(p.charge.as_deref(), Some("ch_3Kl36gJDPojXS6LN0DCM4A8l"));
        assert_eq!(p.amount_refunded, 2500, "the refund is counted once");
        assert_eq!(p.created, 1649129463, "the charge's time, not the intent's");
        assert_eq!(payments(&h).len(), 1);
        // Found by its charge, as a refund by charge looks it up.
        assert_eq!(
            mirror::get_payment(&h.conn(), "ch_3Kl36gJDPojXS6LN0DCM4A8l")
                .unwrap()
                .id,
            pi
        );
    }

    #[test]
    fn the_latest_attempt_is_the_payments_charge_whatever_the_order() {
        let pi = "pi_attempts";
        let attempt = |id: &str, created: i64, fixture_name: &str| {
            fixture_with(fixture_name, |v| {
                v["created"] = (created + 1).into();
                v["data"]["object"]["id"] = id.into();
                v["data"]["object"]["created"] = created.into();
                v["data"]["object"]["payment_intent"] = pi.into();
            })
        };
        let failed = attempt("ch_first", 1_700_000_000, "charge.failed.json");
        let succeeded = attempt("ch_second", 1_700_000_100, "charge.succeeded.json");
        for order in [[&failed, &succeeded], [&succeeded, &failed]] {
            let mut h = Harness::new();
            for event in order {
                h.apply_json(event);
            }
            let p = mirror::get_payment(&h.conn(), pi).unwrap();
            assert_eq!(p.charge.as_deref(), Some("ch_second"));
            assert_eq!(p.status, "succeeded");
            assert_eq!(p.created, 1_700_000_100);
        }
    }

    #[test]
    fn charge_failed_flags_the_invoice_and_a_later_success_resolves_it() {
        let mut h = Harness::new();
        h.apply_fixture("charge.failed.json");
        let conn = h.conn();
        let flag = flags::find(&conn, Kind::PaymentFailed, "in_1KJdKkJDPojXS6LNSwSWkZSN")
            .unwrap()
            .unwrap();
        assert_eq!(flag.status, "open");
        assert_eq!(flag.customer.as_deref(), Some("cus_J7Mkgr8mvbl1eK"));
        assert_eq!(
            flag.detail,
            "payment pi_3KtoMeJDPojXS6LN0XnGDnI3 failed: card_declined, amount 2500 usd"
        );
        let p = mirror::get_payment(&conn, "pi_3KtoMeJDPojXS6LN0XnGDnI3").unwrap();
        assert_eq!(p.status, "failed");
        assert_eq!(p.failure_code.as_deref(), Some("card_declined"));

        h.apply_json(&fixture_with("charge.captured.json", |v| {
            v["id"] = "evt_captured".into();
            v["created"] = 1_700_000_000i64.into();
        }));
        let flag = flags::find(&conn, Kind::PaymentFailed, "in_1KJdKkJDPojXS6LNSwSWkZSN")
            .unwrap()
            .unwrap();
        assert_eq!(flag.status, "resolved");
        let p = mirror::get_payment(&conn, "pi_3KtoMeJDPojXS6LN0XnGDnI3").unwrap();
        assert_eq!(p.status, "succeeded");
    }

    #[test]
    fn a_charge_without_intent_or_invoice_is_its_own_payment_and_flag() {
        let mut h = Harness::new();
        h.apply_json(&fixture_with("charge.failed.json", |v| {
            v["data"]["object"]["payment_intent"] = serde_json::Value::Null;
            v["data"]["object"]["invoice"] = serde_json::Value::Null;
        }));
        let conn = h.conn();
        let p = mirror::get_payment(&conn, "ch_3KtoMeJDPojXS6LN0igeffJ6").unwrap();
        assert_eq!(p.id, "ch_3KtoMeJDPojXS6LN0igeffJ6");
        let flag = flags::find(&conn, Kind::PaymentFailed, "ch_3KtoMeJDPojXS6LN0igeffJ6").unwrap();
        assert!(flag.is_some());
    }

    #[test]
    fn a_risky_outcome_opens_one_high_risk_flag_that_later_events_do_not_reopen() {
        let mut h = Harness::new();
        let risky = |id: &str, created: i64| {
            fixture_with("charge.succeeded.json", |v| {
                v["id"] = id.into();
                v["created"] = created.into();
                v["data"]["object"]["outcome"]["risk_level"] = "highest".into();
                v["data"]["object"]["outcome"]["type"] = "manual_review".into();
            })
        };
        h.apply_json(&risky("evt_1", 100));
        let conn = h.conn();
        let ch = "ch_3KtQThJDPojXS6LN0YmgbxGj";
        let flag = flags::find(&conn, Kind::HighRisk, ch).unwrap().unwrap();
        assert_eq!(flag.detail, "risk level highest, outcome manual_review");
        flags::resolve(&conn, flag.id, "alice", 5).unwrap();
        h.apply_json(&risky("evt_2", 200));
        let flag = flags::find(&conn, Kind::HighRisk, ch).unwrap().unwrap();
        assert_eq!(flag.status, "resolved");
    }

    #[test]
    fn a_normal_outcome_opens_no_high_risk_flag() {
        let mut h = Harness::new();
        h.apply_fixture("charge.succeeded.json");
        let flag = flags::find(&h.conn(), Kind::HighRisk, "ch_3KtQThJDPojXS6LN0YmgbxGj").unwrap();
        assert!(flag.is_none());
    }
}

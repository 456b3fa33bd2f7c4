//! charge.dispute.*, radar.early_fraud_warning.* and review.*: flags for a person to
//! follow up. Nothing is mirrored; the customer is found through the payment row.

use crate::store::db::Connection;

use super::{ApplyError, Event, Outcome};
use crate::objects::risk::{Dispute, EarlyFraudWarning, Review};
use crate::store::{
    flags::{self, Kind},
    mirror::{self, Table},
};

pub(super) fn apply(conn: &Connection, event: &Event<'_>, now: i64) -> Result<Outcome, ApplyError> {
    match event.type_ {
        "charge.dispute.created"
        | "charge.dispute.updated"
        | "charge.dispute.closed"
        | "charge.dispute.funds_withdrawn"
        | "charge.dispute.funds_reinstated" => dispute(conn, event, now)?,
        "radar.early_fraud_warning.created" | "radar.early_fraud_warning.updated" => {
            let w: EarlyFraudWarning = event.parse("early fraud warning")?;
            let customer = customer_of(conn, w.payment_intent.as_deref(), w.charge.as_deref())?;
            let detail = format!(
                "{}, actionable: {}",
                w.fraud_type.as_deref().unwrap_or("unknown"),
                w.actionable
                    .map_or("unknown", |a| if a { "yes" } else { "no" })
            );
            flags::open(
                conn,
                Kind::EarlyFraudWarning,
                &w.id,
                customer.as_deref(),
                &detail,
                event.created,
            )?;
        }
        "review.opened" | "review.closed" => {
            let r: Review = event.parse("review")?;
            let customer = customer_of(conn, r.payment_intent.as_deref(), r.charge.as_deref())?;
            if event.type_ == "review.opened" {
                let detail = r.reason.as_deref().unwrap_or("unknown");
                flags::open(
                    conn,
                    Kind::Review,
                    &r.id,
                    customer.as_deref(),
                    detail,
                    event.created,
                )?;
            } else {
                let detail = format!(
                    "closed: {}",
                    r.closed_reason.as_deref().unwrap_or("unknown")
                );
                close(
                    conn,
                    Kind::Review,
                    &r.id,
                    customer.as_deref(),
                    &detail,
                    event,
                    now,
                )?;
            }
        }
        _ => return Ok(Outcome::Unhandled),
    }
    Ok(Outcome::Applied)
}

fn dispute(conn: &Connection, event: &Event<'_>, now: i64) -> Result<(), ApplyError> {
    let d: Dispute = event.parse("dispute")?;
    let Some(key) = d.key().map(str::to_string) else {
        return Err(ApplyError::Parse {
            what: "dispute".into(),
            message: "neither an id nor a charge names it".into(),
        });
    };
    let customer = customer_of(conn, d.payment_intent.as_deref(), d.charge.as_deref())?;
    let mut detail = format!(
        "{}, {}, {} {}",
        d.reason.as_deref().unwrap_or("unknown"),
        d.status.as_deref().unwrap_or("unknown"),
        d.amount.unwrap_or(0),
        d.currency.as_deref().unwrap_or("")
    )
    .trim_end()
    .to_string();
    // What support needs to answer in time.
    if let Some(due) = d.due_by() {
        detail.push_str(&format!(", evidence due by {}", crate::time::rfc3339(due)));
    }
    let detail = detail.as_str();
    // The money, for the revenue report, under the ordering rule.
    mirror::upsert(
        conn,
        Table::Disputes,
        &[
            ("id", &key),
            ("charge", &d.charge),
            ("payment_intent", &d.payment_intent),
            ("amount", &d.amount),
            (
                "currency",
                &d.currency.as_deref().map(str::to_ascii_lowercase),
            ),
            ("status", &d.status),
            ("reason", &d.reason),
            ("created", &d.created.or(Some(event.created))),
            ("account", &event.account),
            ("raw", &event.raw()),
        ],
        event.version(),
    )?;
    let d_id = key;
    if event.type_ == "charge.dispute.closed" && d.status.as_deref() == Some("won") {
        close(
            conn,
            Kind::Dispute,
            &d_id,
            customer.as_deref(),
            detail,
            event,
            now,
        )?;
    } else {
        flags::open(
            conn,
            Kind::Dispute,
            &d_id,
            customer.as_deref(),
            detail,
            event.created,
        )?;
    }
    Ok(())
}

/// Resolves the flag of a matter that ended well. A flag is made first if none exists,
/// so that a late, older opening event finds it resolved instead of opening it.
fn close(
    conn: &Connection,
    kind: Kind,
    object_id: &str,
    customer: Option<&str>,
    detail: &str,
    event: &Event<'_>,
    now: i64,
) -> Result<(), ApplyError> {
    if flags::find(conn, kind, object_id)?.is_none() {
        flags::open(conn, kind, object_id, customer, detail, event.created)?;
    }
    flags::resolve_by_event(conn, kind, object_id, event.type_, event.created, now)?;
    Ok(())
}

/// The customer of the payment a risk object is about, if that payment is mirrored.
fn customer_of(
    conn: &Connection,
    payment_intent: Option<&str>,
    charge: Option<&str>,
) -> Result<Option<String>, ApplyError> {
    if let Some(pi) = payment_intent
        && let Some(customer) = mirror::column(conn, Table::Payments, pi, "customer")?
    {
        return Ok(Some(customer));
    }
    // Older objects name only the charge, whose payment row may be keyed by its intent.
    let Some(charge) = charge else {
        return Ok(None);
    };
    match mirror::payment_for_charge(conn, charge)? {
        Some(payment) => Ok(mirror::column(conn, Table::Payments, &payment, "customer")?),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use crate::events::{Outcome, testing::*};
    use crate::store::flags::{self, Kind};

    const DP: &str = "dp_1MLuxQJDPojXS6LNrukJCBBG";

    /// The dispute's payment, mirrored with a customer.
    fn with_payment(h: &mut Harness) {
        h.apply_json(&fixture_with("charge.succeeded.json", |v| {
            v["id"] = "evt_charge".into();
            v["data"]["object"]["id"] = "ch_1IqtGAJDPojXS6LNstgEfUji".into();
            v["data"]["object"]["payment_intent"] = "pi_1IqtG9JDPojXS6LNOGnYrIqq".into();
            v["data"]["object"]["customer"] = "cus_disputer".into();
        }));
    }

    #[test]
    fn a_dispute_of_an_old_api_version_without_an_id_is_flagged_by_its_charge() {
        let mut h = Harness::new();
        with_payment(&mut h);
        let old = fixture_with("charge.dispute.created.json", |v| {
            v["id"] = "evt_old_dispute".into();
            v["api_version"] = "2013-08-13".into();
            let o = v["data"]["object"].as_object_mut().unwrap();
            o.remove("id");
            o.remove("payment_intent");
        });
        assert_eq!(h.apply_json(&old), Outcome::Applied);
        let flag = flags::find(&h.conn(), Kind::Dispute, "ch_1IqtGAJDPojXS6LNstgEfUji")
            .unwrap()
            .unwrap();
        assert_eq!(flag.status, "open");
        assert_eq!(flag.customer.as_deref(), Some("cus_disputer"));
    }

    #[test]
    fn a_dispute_of_before_2014_12_08_says_when_evidence_is_due_at_the_top_level() {
        let mut h = Harness::new();
        let old = fixture_with("charge.dispute.created.json", |v| {
            v["api_version"] = "2014-03-28".into();
            let o = v["data"]["object"].as_object_mut().unwrap();
            let due = o.remove("evidence_details").unwrap()["due_by"].clone();
            o.insert("evidence_due_by".into(), due);
        });
        h.apply_json(&old);
        let flag = flags::find(&h.conn(), Kind::Dispute, DP).unwrap().unwrap();
        assert!(
            flag.detail
                .ends_with("evidence due by 2023-01-21T23:59:59Z"),
            "{}",
            flag.detail
        );
    }

    #[test]
    fn a_dispute_opens_a_flag_with_the_customer_of_its_payment() {
        let mut h = Harness::new();
        with_payment(&mut h);
        assert_eq!(
            h.apply_fixture("charge.dispute.created.json"),
            Outcome::Applied
        );
        let flag = flags::find(&h.conn(), Kind::Dispute, DP).unwrap().unwrap();
        assert_eq!(flag.status, "open");
        assert_eq!(flag.customer.as_deref(), Some("cus_disputer"));
        assert_eq!(
            flag.detail,
            "general, warning_needs_response, 1000 usd, evidence due by 2023-01-21T23:59:59Z"
        );
    }

    #[test]
    fn a_dispute_won_resolves_its_flag_and_a_late_update_does_not_reopen_it() {
        let mut h = Harness::new();
        h.apply_fixture("charge.dispute.created.json");
        h.apply_json(&fixture_with("charge.dispute.closed.json", |v| {
            v["id"] = "evt_won".into();
            v["created"] = 1_700_000_000i64.into();
            v["data"]["object"]["status"] = "won".into();
        }));
        let flag = flags::find(&h.conn(), Kind::Dispute, DP).unwrap().unwrap();
        assert_eq!(flag.status, "resolved");
        h.apply_json(&fixture_with("charge.dispute.updated.json", |v| {
            v["id"] = "evt_late".into()
        }));
        let flag = flags::find(&h.conn(), Kind::Dispute, DP).unwrap().unwrap();
        assert_eq!(flag.status, "resolved");
    }

    #[test]
    fn a_dispute_lost_stays_open() {
        let mut h = Harness::new();
        h.apply_json(&fixture_with("charge.dispute.closed.json", |v| {
            v["data"]["object"]["status"] = "lost".into();
        }));
        let flag = flags::find(&h.conn(), Kind::Dispute, DP).unwrap().unwrap();
        assert_eq!(flag.status, "open");
        assert_eq!(
            flag.detail,
            "general, lost, 1000 usd, evidence due by 2023-01-21T23:59:59Z"
        );
    }

    #[test]
    fn an_early_fraud_warning_opens_a_flag() {
        let mut h = Harness::new();
        assert_eq!(
            h.apply_fixture("radar.early_fraud_warning.created.json"),
            Outcome::Applied
        );
        let flag = flags::find(
            &h.conn(),
            Kind::EarlyFraudWarning,
            "issfr_1NnrwHBw2dPENLoi9lnhV3RQ",
        )
        .unwrap()
        .unwrap();
        assert_eq!(flag.status, "open");
        assert_eq!(flag.detail, "misc, actionable: yes");
        assert_eq!(flag.customer, None);
    }

    #[test]
    fn a_review_opens_a_flag_and_its_closing_resolves_it() {
        let mut h = Harness::new();
        let review = "prv_1NVyFt2eZvKYlo2CjubqF1xm";
        h.apply_fixture("review.opened.json");
        let flag = flags::find(&h.conn(), Kind::Review, review)
            .unwrap()
            .unwrap();
        assert_eq!(flag.status, "open");
        assert_eq!(flag.detail, "rule");
        h.apply_json(&fixture_with("review.closed.json", |v| {
            v["id"] = "evt_closed".into();
            v["data"]["object"]["open"] = false.into();
            v["data"]["object"]["closed_reason"] = "approved".into();
        }));
        let flag = flags::find(&h.conn(), Kind::Review, review)
            .unwrap()
            .unwrap();
        assert_eq!(flag.status, "resolved");
        assert_eq!(flag.resolved_by.as_deref(), Some("review.closed"));
    }

    #[test]
    fn a_review_closed_before_it_was_seen_opened_stays_resolved() {
        let mut h = Harness::new();
        let review = "prv_1NVyFt2eZvKYlo2CjubqF1xm";
        h.apply_json(&fixture_with("review.closed.json", |v| {
            v["id"] = "evt_closed".into();
            v["created"] = 1_700_000_000i64.into();
        }));
        h.apply_fixture("review.opened.json");
        let flag = flags::find(&h.conn(), Kind::Review, review)
            .unwrap()
            .unwrap();
        assert_eq!(flag.status, "resolved");
    }
}

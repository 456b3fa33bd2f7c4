//! checkout.session.*: the session row, and a payment-failed flag when a delayed
//! payment (bank debit, voucher) fails after the customer left Checkout.

use crate::store::db::Connection;

use super::{ApplyError, Event, Origin, Outcome};
use crate::objects::{checkout::Session, parse_json};
use crate::store::{
    flags::{self, Kind},
    mirror::{self, Table},
};

pub(super) fn apply(conn: &Connection, event: &Event<'_>) -> Result<Outcome, ApplyError> {
    match event.type_ {
        "checkout.session.completed"
        | "checkout.session.expired"
        | "checkout.session.async_payment_succeeded"
        | "checkout.session.async_payment_failed" => {}
        _ => return Ok(Outcome::Unhandled),
    }
    let s: Session = event.parse("checkout session")?;
    store(conn, &s, event.raw(), event.origin())?;
    if event.type_ == "checkout.session.async_payment_failed" {
        let object = s.payment_intent.as_deref().unwrap_or(&s.id);
        let detail = format!(
            "checkout session async payment failed, amount {} {}",
            s.amount_total.unwrap_or(0),
            s.currency.as_deref().unwrap_or("")
        );
        flags::open(
            conn,
            Kind::PaymentFailed,
            object,
            s.customer.as_deref(),
            detail.trim_end(),
            event.created,
        )?;
    }
    Ok(Outcome::Applied)
}

/// Writes a checkout session object as Stripe returned it to a call (billd created it)
/// under the ordering rule.
pub(crate) fn write_checkout_session(
    conn: &Connection,
    raw: &str,
    origin: Origin<'_>,
) -> Result<bool, ApplyError> {
    let s: Session = parse_json(raw, "checkout session")?;
    store(conn, &s, raw, origin)
}

fn store(
    conn: &Connection,
    s: &Session,
    raw: &str,
    origin: Origin<'_>,
) -> Result<bool, ApplyError> {
    Ok(mirror::upsert(
        conn,
        Table::CheckoutSessions,
        &[
            ("id", &s.id),
            ("mode", &s.mode),
            ("status", &s.status),
            ("payment_status", &s.payment_status),
            ("customer", &s.customer),
            ("subscription", &s.subscription),
            ("payment_intent", &s.payment_intent),
            ("amount_total", &s.amount_total),
            ("currency", &s.currency),
            ("created", &s.created),
            ("raw", &raw),
        ],
        origin.version,
    )?)
}

#[cfg(test)]
mod tests {
    use crate::events::{Outcome, testing::*};
    use crate::store::{
        flags::{self, Kind},
        mirror::{self, Table},
    };

    const CS: &str = "cs_live_9RBjcHiy2i5p99Tf1MYM90c3SHK1grU0E6Ae6pKWR2KPA4ZiuKiB2X1Y3X";
    const PI: &str = "pi_1IqxJOJDPojXS6LN9uOebAea";

    fn col(h: &Harness, column: &'static str) -> Option<String> {
        mirror::column(&h.conn(), Table::CheckoutSessions, CS, column).unwrap()
    }

    #[test]
    fn a_completed_session_is_mirrored() {
        let mut h = Harness::new();
        assert_eq!(
            h.apply_fixture("checkout.session.completed.json"),
            Outcome::Applied
        );
        assert_eq!(col(&h, "mode").as_deref(), Some("payment"));
        assert_eq!(col(&h, "status").as_deref(), Some("complete"));
        assert_eq!(col(&h, "payment_status").as_deref(), Some("paid"));
        assert_eq!(col(&h, "customer").as_deref(), Some("cus_IhGfebO16cMIGN"));
        assert_eq!(col(&h, "payment_intent").as_deref(), Some(PI));
        assert_eq!(col(&h, "amount_total").as_deref(), Some("999"));
        assert_eq!(col(&h, "currency").as_deref(), Some("eur"));
        // Nothing to follow up on a paid session.
        assert!(
            flags::find(&h.conn(), Kind::PaymentFailed, PI)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn an_async_payment_failure_flags_the_payment_intent() {
        let mut h = Harness::new();
        h.apply_fixture("checkout.session.completed.json");
        h.apply_json(&fixture_with("checkout.session.completed.json", |v| {
            v["id"] = "evt_async_failed".into();
            v["type"] = "checkout.session.async_payment_failed".into();
            v["created"] = 1_619_800_000i64.into();
            v["data"]["object"]["payment_status"] = "unpaid".into();
        }));
        assert_eq!(col(&h, "payment_status").as_deref(), Some("unpaid"));
        let flag = flags::find(&h.conn(), Kind::PaymentFailed, PI)
            .unwrap()
            .unwrap();
        assert_eq!(flag.status, "open");
        assert_eq!(flag.customer.as_deref(), Some("cus_IhGfebO16cMIGN"));
        assert_eq!(
            flag.detail,
            "checkout session async payment failed, amount 999 eur"
        );
    }
}

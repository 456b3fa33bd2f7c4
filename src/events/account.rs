//! account.*: connected accounts (Stripe Connect) and their verification state.
//!
//! The stored raw JSON leaves out the account's contact and identity details (email,
//! the person or company behind it, the ToS acceptance IP, payout accounts): billd shows
//! whether an account can take charges and what it still owes Stripe, nothing more.

use crate::store::db::Connection;

use super::{ApplyError, Event, Origin, Outcome, payment_method::redacted};
use crate::objects::{
    account::{Account, Deauthorized},
    parse_json,
};
use crate::store::{
    flags::{self, Kind},
    mirror::{self, Table},
};

/// Members of the raw account that are never stored: today's, and what older API
/// versions called them (`legal_entity` before `individual` and `company` in
/// 2019-02-19, the business and support fields before `business_profile`, the
/// `bank_accounts` before `external_accounts`).
const NOT_STORED: &[&[&str]] = &[
    &["email"],
    &["individual"],
    &["company"],
    &["business_profile"],
    &["tos_acceptance"],
    &["external_accounts"],
    &["legal_entity"],
    &["bank_accounts"],
    &["business_name"],
    &["business_url"],
    &["display_name"],
    &["product_description"],
    &["support_email"],
    &["support_phone"],
    &["support_address"],
    &["support_url"],
];

pub(super) fn apply(conn: &Connection, event: &Event<'_>, now: i64) -> Result<Outcome, ApplyError> {
    match event.type_ {
        "account.updated" => {}
        "account.application.deauthorized" => return deauthorized(conn, event),
        // The account itself arrives in `account.updated` (which Stripe also sends when
        // a capability or a person changes what the account may do); the application,
        // capability and person objects add nothing billd shows, and persons are
        // personal data best not copied.
        "account.application.authorized"
        | "capability.updated"
        | "person.created"
        | "person.updated"
        | "person.deleted" => return Ok(Outcome::Applied),
        // Payout bank accounts and cards of connected accounts: billd neither shows nor
        // decides anything on them, and they are financial details best not copied. The
        // events are expected on a Connect endpoint, so they are applied, not ignored.
        "account.external_account.created"
        | "account.external_account.updated"
        | "account.external_account.deleted" => return Ok(Outcome::Applied),
        _ => return Ok(Outcome::Unhandled),
    }
    if write_account(conn, event.raw(), event.origin())? {
        // Only the newest state of the account decides its flag, whatever order the
        // events arrive in.
        restricted_flag(conn, event, now)?;
    }
    Ok(Outcome::Applied)
}

/// Opens `account_restricted` for an account Stripe disabled or that has requirements
/// past due, and resolves it once neither holds.
fn restricted_flag(conn: &Connection, event: &Event<'_>, now: i64) -> Result<(), ApplyError> {
    let a: Account = event.parse("account")?;
    let disabled = a.disabled_reason();
    let past_due = a.past_due();
    if disabled.is_none() && past_due.is_empty() {
        flags::resolve_by_event(
            conn,
            Kind::AccountRestricted,
            &a.id,
            event.type_,
            event.created,
            now,
        )?;
        return Ok(());
    }
    let mut detail = format!("account {} restricted", a.id);
    if let Some(reason) = disabled {
        detail.push_str(&format!(": disabled_reason {reason}"));
    }
    if !past_due.is_empty() {
        // Requirement names (`individual.verification.document`), not their values.
        detail.push_str(&format!("; past due: {}", past_due.join(", ")));
    }
    flags::open(
        conn,
        Kind::AccountRestricted,
        &a.id,
        None,
        &detail,
        event.created,
    )?;
    Ok(())
}

/// Writes an account object (from an event, or as Stripe returned it to a call) under
/// the ordering rule, without its contact and identity details.
pub(crate) fn write_account(
    conn: &Connection,
    raw: &str,
    origin: Origin<'_>,
) -> Result<bool, ApplyError> {
    let a: Account = parse_json(raw, "account")?;
    let currently_due = a
        .currently_due()
        .map(|due| serde_json::Value::from(due.to_vec()).to_string());
    let disabled_reason = a.disabled_reason().map(str::to_string);
    let raw = redacted(raw, NOT_STORED)?;
    Ok(mirror::upsert(
        conn,
        Table::Accounts,
        &[
            ("id", &a.id),
            ("type", &a.type_()),
            ("country", &a.country),
            ("charges_enabled", &a.charges_enabled()),
            ("payouts_enabled", &a.payouts_enabled()),
            ("details_submitted", &a.details_submitted),
            ("currently_due", &currently_due),
            ("disabled_reason", &disabled_reason),
            ("raw", &raw),
        ],
        origin.version,
    )?)
}

/// The platform lost access to the account: deletion is final in the mirror.
fn deauthorized(conn: &Connection, event: &Event<'_>) -> Result<Outcome, ApplyError> {
    let object: Deauthorized = event.parse("application")?;
    // The account is named by the envelope; the object is the application, whose id is
    // an account id only in events rendered without `account`, if at all.
    let account = event
        .account
        .map(str::to_string)
        .or(object.id.filter(|id| id.starts_with("acct_")));
    if let Some(account) = account {
        mirror::mark_deleted(
            conn,
            Table::Accounts,
            &account,
            event.raw(),
            event.version(),
        )?;
    }
    Ok(Outcome::Applied)
}

#[cfg(test)]
mod tests {
    use crate::events::{EnvelopeHeader, Event, Outcome, testing::*};
    use crate::store::mirror::{self, Table};

    const ACCT: &str = "acct_1Fg9jUA3kq9o1aTc";

    fn col(h: &Harness, id: &str, column: &'static str) -> Option<String> {
        mirror::column(&h.conn(), Table::Accounts, id, column).unwrap()
    }

    /// Calls this module's handler directly, as some account.* types are not routed here
    /// by the dispatcher's family rule.
    fn apply_here(h: &Harness, text: &str, seq: i64) -> Outcome {
        let header: EnvelopeHeader = serde_json::from_str(text).unwrap();
        let event = Event {
            seq,
            id: &header.id,
            type_: &header.type_,
            created: header.created,
            account: header.account.as_deref(),
            livemode: header.livemode,
            object: Event::object_of(text).unwrap(),
        };
        super::apply(&h.conn(), &event, 0).unwrap()
    }

    #[test]
    fn account_updated_stores_the_verification_state_without_contact_details() {
        let mut h = Harness::new();
        assert_eq!(h.apply_fixture("account.updated.json"), Outcome::Applied);
        assert_eq!(col(&h, ACCT, "type").as_deref(), Some("standard"));
        assert_eq!(col(&h, ACCT, "country").as_deref(), Some("US"));
        assert_eq!(col(&h, ACCT, "charges_enabled").as_deref(), Some("0"));
        assert_eq!(
            col(&h, ACCT, "disabled_reason").as_deref(),
            Some("requirements.past_due")
        );
        let due: Vec<String> =
            serde_json::from_str(&col(&h, ACCT, "currently_due").unwrap()).unwrap();
        assert_eq!(due.len(), 7);
        assert!(due.contains(&"external_account".to_string()));

        let custom = "acct_1IuHosQveW0ONQsd";
        h.apply_fixture("variants/account.updated.custom_account.json");
        assert_eq!(col(&h, custom, "payouts_enabled").as_deref(), Some("1"));
        assert_eq!(col(&h, custom, "currently_due").as_deref(), Some("[]"));
        let raw = col(&h, custom, "raw").unwrap();
        assert!(!raw.contains("djstripe@example.com"));
        assert!(raw.contains("\"charges_enabled\":true"));
    }

    #[test]
    fn an_account_of_2016_is_read_from_its_old_fields_and_stored_without_its_legal_entity() {
        let mut h = Harness::new();
        let old = serde_json::json!({
            "id": "evt_acct_2016", "type": "account.updated", "created": 1_470_000_000,
            "livemode": false, "api_version": "2016-07-06", "user_id": "acct_2016",
            "data": {"object": {
                "id": "acct_2016", "object": "account", "managed": true, "country": "DE",
                "charges_enabled": true, "transfers_enabled": false, "details_submitted": true,
                "display_name": "Shop", "support_phone": "+10000000000",
                "legal_entity": {"first_name": "Jane", "dob": {"day": 1, "month": 2, "year": 1990}},
                "bank_accounts": {"object": "list", "data": []},
                "verification": {"fields_needed": ["legal_entity.dob.day"], "due_by": null,
                                 "disabled_reason": "fields_needed"}
            }}
        })
        .to_string();
        assert_eq!(h.apply_json(&old), Outcome::Applied);
        let id = "acct_2016";
        assert_eq!(col(&h, id, "type").as_deref(), Some("custom"));
        assert_eq!(col(&h, id, "charges_enabled").as_deref(), Some("1"));
        assert_eq!(col(&h, id, "payouts_enabled").as_deref(), Some("0"));
        assert_eq!(
            col(&h, id, "disabled_reason").as_deref(),
            Some("fields_needed")
        );
        assert_eq!(
            col(&h, id, "currently_due").as_deref(),
            Some(r#"["legal_entity.dob.day"]"#)
        );
        let raw = col(&h, id, "raw").unwrap();
        for gone in [
            "Jane",
            "legal_entity\"",
            "support_phone",
            "display_name",
            "bank_accounts",
        ] {
            assert!(!raw.contains(gone), "{gone} in {raw}");
        }
        let flag =
            crate::store::flags::find(&h.conn(), crate::store::flags::Kind::AccountRestricted, id)
                .unwrap()
                .unwrap();
        assert_eq!(
            flag.detail,
            "account acct_2016 restricted: disabled_reason fields_needed"
        );
    }

    #[test]
    fn a_deauthorized_application_marks_the_account_deleted() {
        let mut h = Harness::new();
        h.apply_fixture("account.updated.json");
        let text = fixture("account.application.deauthorized.json");
        assert_eq!(apply_here(&h, &text, 10), Outcome::Applied);
        assert_eq!(col(&h, ACCT, "deleted").as_deref(), Some("1"));
        // The application is not an account.
        assert_eq!(
            col(&h, "ca_JWVN6vOJJs3RKsff0VUwIUfmUmN0VYqe", "deleted"),
            None
        );
    }

    #[test]
    fn external_account_events_are_applied_without_a_write() {
        let h = Harness::new();
        for name in [
            "account.external_account.created.json",
            "variants/account.external_account.deleted.card.json",
        ] {
            assert_eq!(apply_here(&h, &fixture(name), 1), Outcome::Applied);
        }
        assert_eq!(col(&h, "acct_1IuHosQveW0ONQsd", "id"), None);
    }

    #[test]
    fn a_restricted_account_opens_a_flag_that_its_newest_state_resolves_in_any_order() {
        use crate::events::testing::fixture_with;
        use crate::store::flags::{Kind, find};
        let restricted = fixture_with("account.updated.json", |v| {
            v["id"] = "evt_acct_restricted".into();
        });
        let fine = fixture_with("account.updated.json", |v| {
            v["id"] = "evt_acct_fine".into();
            v["created"] = 1_621_683_400.into();
            let r = &mut v["data"]["object"]["requirements"];
            r["disabled_reason"] = serde_json::Value::Null;
            r["past_due"] = serde_json::json!([]);
        });
        // In order: opened, then resolved by the newer state.
        let mut h = Harness::new();
        assert_eq!(h.apply_json(&restricted), Outcome::Applied);
        let flag = find(&h.conn(), Kind::AccountRestricted, ACCT)
            .unwrap()
            .unwrap();
        assert_eq!(flag.status, "open");
        assert!(
            flag.detail
                .contains("disabled_reason requirements.past_due")
                && flag
                    .detail
                    .contains("past due: external_account, tos_acceptance.date"),
            "{}",
            flag.detail
        );
        assert_eq!(h.apply_json(&fine), Outcome::Applied);
        let flag = find(&h.conn(), Kind::AccountRestricted, ACCT)
            .unwrap()
            .unwrap();
        assert_eq!(flag.status, "resolved");
        // Replayed, the old state changes nothing.
        assert_eq!(h.apply_json(&restricted), Outcome::Applied);
        let flag = find(&h.conn(), Kind::AccountRestricted, ACCT)
            .unwrap()
            .unwrap();
        assert_eq!(flag.status, "resolved");

        // Out of order: the older restricted state arrives after the newer fine one.
        let mut h = Harness::new();
        h.apply_json(&fine);
        h.apply_json(&restricted);
        assert!(
            find(&h.conn(), Kind::AccountRestricted, ACCT)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn capability_person_and_authorization_events_are_applied_without_copying_persons() {
        let mut h = Harness::new();
        for type_ in [
            "capability.updated",
            "person.created",
            "person.updated",
            "person.deleted",
            "account.application.authorized",
        ] {
            let text = format!(
                r#"{{"id":"evt_{}","type":"{type_}","created":1,"livemode":false,
                    "account":"{ACCT}","data":{{"object":{{"id":"x_1","first_name":"Jane"}}}}}}"#,
                type_.replace('.', "_")
            );
            assert_eq!(h.apply_json(&text), Outcome::Applied, "{type_}");
        }
        let n: i64 = h
            .conn()
            .query_row("SELECT count(*) FROM accounts", (), |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
    }
}

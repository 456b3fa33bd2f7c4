//! Stripe events: the envelope, and per object family a lenient parse of the fields
//! billd uses plus the change it makes to the mirror.
//!
//! Handlers never call the network and never write SQL themselves: they parse, decide,
//! and call `store::mirror` / `store::flags` inside the transaction the worker gives
//! them. The objects they parse, and how leniently, are `crate::objects`.

mod account;
mod catalog;
mod charge;
mod checkout;
mod customer;
mod discount;
mod invoice;
mod payment;
mod payment_intent;
mod payment_method;
mod refund;
mod risk;
mod subscription;

// The parse-and-write of single objects, shared by the handlers, the write-through of
// the API (`http::api`) and the CLI's backfills (`billd sync`, `billd plans sync`,
// `billd refund`), so all put the same columns under the same rule.
pub(crate) use account::write_account;
pub(crate) use catalog::{write_price, write_product};
pub(crate) use charge::write_charge;
pub(crate) use checkout::write_checkout_session;
pub(crate) use customer::write_customer;
pub(crate) use invoice::write_invoice;
pub(crate) use payment_intent::write_payment_intent;
pub(crate) use payment_method::write_payment_method;
pub(crate) use refund::write_refund;
pub(crate) use subscription::write_subscription;

use crate::store::db::Connection;
use serde::{Deserialize, Deserializer, de::DeserializeOwned};
use serde_json::value::RawValue;

use crate::{
    objects::{ParseError, parse_json},
    store::{StoreError, mirror::Version},
};

/// The part of an event envelope read at ingest, before anything is stored.
#[derive(Debug, Deserialize)]
#[serde(from = "WireHeader")]
pub struct EnvelopeHeader {
    pub id: String,
    pub type_: String,
    pub created: i64,
    pub livemode: bool,
    /// The connected account, `account` or (before 2017-05-25) `user_id`.
    pub account: Option<String>,
    pub api_version: Option<String>,
    pub data: HeaderData,
}

/// The envelope as sent, in any API version.
#[derive(Deserialize)]
struct WireHeader {
    id: String,
    #[serde(rename = "type")]
    type_: String,
    created: i64,
    #[serde(default)]
    livemode: bool,
    #[serde(default)]
    account: Option<String>,
    /// `account` before 2017-05-25 (a field of its own, not an alias: a duplicate
    /// would make the envelope unreadable).
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    api_version: Option<String>,
    data: HeaderData,
}

impl EnvelopeHeader {
    /// The event to store: this header's fields and the whole body it came in.
    pub fn into_new_event(self, payload: String) -> crate::store::events::NewEvent {
        crate::store::events::NewEvent {
            id: self.id,
            type_: self.type_,
            account: self.account,
            livemode: self.livemode,
            api_version: self.api_version,
            created: self.created,
            payload,
        }
    }
}

impl From<WireHeader> for EnvelopeHeader {
    fn from(w: WireHeader) -> Self {
        EnvelopeHeader {
            id: w.id,
            type_: w.type_,
            created: w.created,
            livemode: w.livemode,
            account: w.account.or(w.user_id),
            api_version: w.api_version,
            data: w.data,
        }
    }
}

/// The largest `created` billd stores: 9999-12-31T23:59:59Z, the last second an RFC 3339
/// time can name.
pub const MAX_CREATED: i64 = 253_402_300_799;

impl EnvelopeHeader {
    /// What makes a well-signed envelope unusable, checked before it is stored (a bad
    /// row would only fail in the worker). The reason names a field, never its value.
    pub fn invalid(&self) -> Option<&'static str> {
        if self.id.trim().is_empty() {
            Some("the event id is empty")
        } else if self.type_.trim().is_empty() {
            Some("the event type is empty")
        } else if !(0..=MAX_CREATED).contains(&self.created) {
            Some("`created` is not a time between 1970 and 9999")
        } else if !self.data.object.0 {
            Some("`data.object` is missing or not a JSON object")
        } else {
            None
        }
    }
}

/// `data` of an envelope at ingest: only whether `object` is a JSON object.
#[derive(Debug, Deserialize)]
pub struct HeaderData {
    #[serde(default)]
    pub object: IsObject,
}

/// Whether a JSON value is an object, read without keeping it.
#[derive(Debug, Default, Clone, Copy)]
pub struct IsObject(pub bool);

impl<'de> Deserialize<'de> for IsObject {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = IsObject;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("any JSON value")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<IsObject, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(IsObject(true))
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<IsObject, A::Error> {
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(IsObject(false))
            }

            fn visit_bool<E>(self, _: bool) -> Result<IsObject, E> {
                Ok(IsObject(false))
            }
            fn visit_i64<E>(self, _: i64) -> Result<IsObject, E> {
                Ok(IsObject(false))
            }
            fn visit_u64<E>(self, _: u64) -> Result<IsObject, E> {
                Ok(IsObject(false))
            }
            fn visit_f64<E>(self, _: f64) -> Result<IsObject, E> {
                Ok(IsObject(false))
            }
            fn visit_str<E>(self, _: &str) -> Result<IsObject, E> {
                Ok(IsObject(false))
            }
            fn visit_unit<E>(self) -> Result<IsObject, E> {
                Ok(IsObject(false))
            }
            fn visit_none<E>(self) -> Result<IsObject, E> {
                Ok(IsObject(false))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    data: Data<'a>,
}

#[derive(Deserialize)]
struct Data<'a> {
    #[serde(borrow)]
    object: &'a RawValue,
}

/// A stored event, ready to apply.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// Inbox sequence number (arrival order).
    pub seq: i64,
    pub id: &'a str,
    pub type_: &'a str,
    pub created: i64,
    pub account: Option<&'a str>,
    pub livemode: bool,
    /// `data.object`, raw.
    pub object: &'a RawValue,
}

impl<'a> Event<'a> {
    /// Reads `data.object` out of a stored webhook body.
    pub fn object_of(payload: &'a str) -> Result<&'a RawValue, ApplyError> {
        let envelope: Envelope<'a> = parse_json(payload, "event envelope")?;
        Ok(envelope.data.object)
    }

    /// The version the ordering rule compares.
    pub fn version(&self) -> Version {
        Version {
            created: self.created,
            seq: self.seq,
        }
    }

    /// Parses `data.object` into a handler's lenient view of it.
    pub fn parse<T: DeserializeOwned>(&self, what: &str) -> Result<T, ApplyError> {
        Ok(parse_json(self.object.get(), what)?)
    }

    /// The raw object JSON, kept beside the queried columns.
    pub fn raw(&self) -> &'a str {
        self.object.get()
    }

    /// Where the objects of this event come from, for the mirror writes.
    pub fn origin(&self) -> Origin<'a> {
        Origin {
            version: self.version(),
            account: self.account,
            livemode: self.livemode,
        }
    }
}

/// What a mirror write knows about where its object came from, beyond the object: the
/// version the ordering rule compares, the connected account, and the livemode to
/// assume when the object omits it. An event gives all three; so does an API response
/// (write-through, see [`Origin::api_response`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin<'a> {
    pub version: Version,
    pub account: Option<&'a str>,
    pub livemode: bool,
}

impl Origin<'static> {
    /// An object Stripe returned to a call billd made (on its own account) at `now`.
    /// Its version is `created = now`, `seq = 0`: the webhook about the same change
    /// (created at or after the call's second, arriving later with a positive
    /// sequence number) still applies, and any older event cannot regress it.
    pub fn api_response(now: i64, livemode: bool) -> Origin<'static> {
        Origin {
            version: Version {
                created: now,
                seq: 0,
            },
            account: None,
            livemode,
        }
    }
}

/// What applying an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The mirror was brought up to date (which includes "already newer": the ordering
    /// rule kept newer state).
    Applied,
    /// No handler for this type: stored and marked `ignored`.
    Unhandled,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The object could not be read. The message names the position and the kind of
    /// problem only, never the offending value (it may be personal data).
    #[error("cannot parse {what}: {message}")]
    Parse { what: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<ParseError> for ApplyError {
    fn from(ParseError { what, message }: ParseError) -> Self {
        ApplyError::Parse { what, message }
    }
}

impl From<crate::store::db::Error> for ApplyError {
    fn from(e: crate::store::db::Error) -> Self {
        ApplyError::Store(e.into())
    }
}

/// Applies one event to the mirror inside the caller's transaction.
pub fn apply(conn: &Connection, event: &Event<'_>, now: i64) -> Result<Outcome, ApplyError> {
    let t = event.type_;
    let family = t.rsplit_once('.').map_or(t, |(family, _)| family);
    match family {
        "customer" => customer::apply(conn, event),
        "customer.subscription" => subscription::apply(conn, event),
        "customer.discount" | "coupon" => discount::apply(conn, event),
        "invoice" => invoice::apply(conn, event, now),
        "charge" => charge::apply(conn, event, now),
        "charge.refund" | "refund" => refund::apply(conn, event),
        "payment_intent" => payment_intent::apply(conn, event, now),
        "payment_method" => payment_method::apply(conn, event),
        "product" | "price" | "plan" => catalog::apply(conn, event),
        "checkout.session" => checkout::apply(conn, event),
        "account"
        | "account.application"
        | "account.external_account"
        | "capability"
        | "person" => account::apply(conn, event, now),
        "charge.dispute" | "radar.early_fraud_warning" | "review" => risk::apply(conn, event, now),
        _ => Ok(Outcome::Unhandled),
    }
}

/// Every event type [`apply`] hands to a handler, sorted: the events to enable on
/// Stripe's webhook endpoint. Any other type is stored and marked `ignored`. The docs
/// (`docs/webhooks.md`, `docs/events/`) are generated from this list, and a unit test
/// checks it against the dispatch both ways, so neither can drift.
pub fn handled_types() -> &'static [&'static str] {
    HANDLED_TYPES
}

const HANDLED_TYPES: &[&str] = &[
    "account.application.authorized",
    "account.application.deauthorized",
    "account.external_account.created",
    "account.external_account.deleted",
    "account.external_account.updated",
    "account.updated",
    "capability.updated",
    "charge.captured",
    "charge.dispute.closed",
    "charge.dispute.created",
    "charge.dispute.funds_reinstated",
    "charge.dispute.funds_withdrawn",
    "charge.dispute.updated",
    "charge.expired",
    "charge.failed",
    "charge.pending",
    "charge.refund.updated",
    "charge.refunded",
    "charge.succeeded",
    "charge.updated",
    "checkout.session.async_payment_failed",
    "checkout.session.async_payment_succeeded",
    "checkout.session.completed",
    "checkout.session.expired",
    "coupon.created",
    "coupon.deleted",
    "coupon.updated",
    "customer.created",
    "customer.deleted",
    "customer.discount.created",
    "customer.discount.deleted",
    "customer.discount.updated",
    "customer.subscription.created",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.pending_update_applied",
    "customer.subscription.pending_update_expired",
    "customer.subscription.resumed",
    "customer.subscription.trial_will_end",
    "customer.subscription.updated",
    "customer.updated",
    "invoice.created",
    "invoice.deleted",
    "invoice.finalization_failed",
    "invoice.finalized",
    "invoice.marked_uncollectible",
    "invoice.overdue",
    "invoice.overpaid",
    "invoice.paid",
    "invoice.payment_action_required",
    "invoice.payment_attempt_required",
    "invoice.payment_failed",
    "invoice.payment_succeeded",
    "invoice.sent",
    "invoice.upcoming",
    "invoice.updated",
    "invoice.voided",
    "invoice.will_be_due",
    "payment_intent.amount_capturable_updated",
    "payment_intent.canceled",
    "payment_intent.created",
    "payment_intent.partially_funded",
    "payment_intent.payment_failed",
    "payment_intent.processing",
    "payment_intent.requires_action",
    "payment_intent.succeeded",
    "payment_method.attached",
    "payment_method.automatically_updated",
    "payment_method.detached",
    "payment_method.updated",
    "person.created",
    "person.deleted",
    "person.updated",
    "plan.created",
    "plan.deleted",
    "plan.updated",
    "price.created",
    "price.deleted",
    "price.updated",
    "product.created",
    "product.deleted",
    "product.updated",
    "radar.early_fraud_warning.created",
    "radar.early_fraud_warning.updated",
    "refund.created",
    "refund.failed",
    "refund.updated",
    "review.closed",
    "review.opened",
];

/// True for event types that change products, prices or plans (the plans cache).
pub fn touches_catalog(type_: &str) -> bool {
    ["product.", "price.", "plan."]
        .iter()
        .any(|p| type_.starts_with(p))
}

/// Reads `object` (an event's `data.object`) with the lenient types the handler of
/// `type_` reads it with, in the same steps, without a database and without writing
/// anything: `Unhandled` for a type no handler takes, `Applied` when every parse the
/// handler starts with succeeds. For the fuzz target `handlers` (`fuzz/`), which also
/// checks that [`apply`] fails whenever this does; not part of billd's interface.
#[doc(hidden)]
pub fn parse_object(type_: &str, object: &str) -> Result<Outcome, ApplyError> {
    use crate::objects::{
        account, catalog, charge, checkout, customer, discount, invoice, payment_intent,
        payment_method, refund, risk, subscription,
    };
    fn read<'a, T: Deserialize<'a>>(object: &'a str, what: &str) -> Result<T, ApplyError> {
        Ok(parse_json(object, what)?)
    }
    if !HANDLED_TYPES.contains(&type_) {
        return Ok(Outcome::Unhandled);
    }
    let family = type_.rsplit_once('.').map_or(type_, |(family, _)| family);
    match family {
        "customer" => {
            let c: customer::Customer = read(object, "customer")?;
            for raw in c.embedded_subscriptions() {
                read::<subscription::Subscription>(raw, "customer's subscription")?;
            }
        }
        "customer.subscription" => {
            read::<subscription::Subscription>(object, "subscription")?;
        }
        "customer.discount" => {
            read::<discount::Discount>(object, "discount")?;
        }
        "coupon" => {
            read::<discount::Coupon>(object, "coupon")?;
        }
        "invoice" => {
            read::<invoice::Invoice>(object, "invoice")?;
        }
        "charge" => {
            let ch: charge::Charge = read(object, "charge")?;
            // The refunds it lists, as `charge.refunded` writes them: those with an id.
            #[derive(Deserialize)]
            struct Keyed {
                #[serde(default)]
                id: Option<serde::de::IgnoredAny>,
            }
            if type_ == "charge.refunded" {
                for raw in ch.refunds.iter().flat_map(|l| l.data.iter()) {
                    let raw = raw.get();
                    if raw.starts_with('{') && read::<Keyed>(raw, "charge refund")?.id.is_some() {
                        read::<refund::Refund>(raw, "charge refund")?;
                    }
                }
            }
        }
        "charge.refund" | "refund" => {
            read::<refund::Refund>(object, "refund")?;
        }
        "payment_intent" => {
            read::<payment_intent::PaymentIntent>(object, "payment_intent")?;
        }
        "payment_method" => {
            read::<payment_method::PaymentMethod>(object, "payment_method")?;
            read::<serde_json::Value>(object, "object")?;
        }
        "product" => {
            read::<catalog::Product>(object, "product")?;
        }
        "price" | "plan" => {
            read::<catalog::Price>(object, "price")?;
        }
        "checkout.session" => {
            read::<checkout::Session>(object, "checkout session")?;
        }
        "account" if type_ == "account.updated" => {
            read::<account::Account>(object, "account")?;
            read::<serde_json::Value>(object, "object")?;
        }
        "account.application" if type_ == "account.application.deauthorized" => {
            read::<account::Deauthorized>(object, "application")?;
        }
        "charge.dispute" => {
            read::<risk::Dispute>(object, "dispute")?;
        }
        "radar.early_fraud_warning" => {
            read::<risk::EarlyFraudWarning>(object, "early fraud warning")?;
        }
        "review" => {
            read::<risk::Review>(object, "review")?;
        }
        // Applied without reading the object (capabilities, persons, payout accounts,
        // an application authorized).
        _ => {}
    }
    Ok(Outcome::Applied)
}

#[cfg(test)]
pub(crate) mod testing {
    //! Feeds fixture events through `apply` against a fresh store.

    use super::*;
    use crate::store::{Store, test_store};

    pub struct Harness {
        pub _dir: tempfile::TempDir,
        pub store: Store,
        next_seq: i64,
    }

    impl Harness {
        pub fn new() -> Harness {
            let (_dir, store) = test_store();
            Harness {
                _dir,
                store,
                next_seq: 1,
            }
        }

        /// Applies a fixture event (file name under tests/fixtures/events/) as-is.
        pub fn apply_fixture(&mut self, name: &str) -> Outcome {
            let text = fixture(name);
            self.apply_json(&text)
        }

        /// Applies an event body, giving it the next inbox sequence number.
        pub fn apply_json(&mut self, text: &str) -> Outcome {
            self.try_apply_json(text).expect("apply")
        }

        /// Like [`Harness::apply_json`], with the handler's error.
        pub fn try_apply_json(&mut self, text: &str) -> Result<Outcome, ApplyError> {
            let header: EnvelopeHeader = serde_json::from_str(text).expect("envelope");
            let object = Event::object_of(text)?;
            let event = Event {
                seq: self.next_seq,
                id: &header.id,
                type_: &header.type_,
                created: header.created,
                account: header.account.as_deref(),
                livemode: header.livemode,
                object,
            };
            self.next_seq += 1;
            let conn = self.store.conn().unwrap();
            apply(&conn, &event, 1_800_000_000)
        }

        pub fn conn(&self) -> crate::store::PooledConnection {
            self.store.conn().unwrap()
        }
    }

    pub fn fixture(name: &str) -> String {
        let path = format!(
            "{}/tests/fixtures/events/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// A fixture event with some fields of its envelope or object replaced.
    pub fn fixture_with(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut v: serde_json::Value = serde_json::from_str(&fixture(name)).unwrap();
        edit(&mut v);
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{Outcome, testing::Harness};

    #[test]
    fn a_connect_event_of_before_2017_names_its_account_user_id() {
        let read = |json: &str| serde_json::from_str::<super::EnvelopeHeader>(json).unwrap();
        let old = read(
            r#"{"id":"evt_1","type":"account.updated","created":1,"user_id":"acct_old",
                "data":{"object":{"id":"acct_old"}}}"#,
        );
        assert_eq!(old.account.as_deref(), Some("acct_old"));
        let new = read(
            r#"{"id":"evt_2","type":"account.updated","created":1,"account":"acct_new",
                "data":{"object":{"id":"acct_new"}}}"#,
        );
        assert_eq!(new.account.as_deref(), Some("acct_new"));
        let none = read(r#"{"id":"evt_3","type":"x","created":1,"data":{"object":{}}}"#);
        assert_eq!(none.account, None);
        // What a missing field is called stays readable.
        let e = crate::objects::parse_json::<super::EnvelopeHeader>(
            r#"{"type":"x","created":1,"data":{}}"#,
            "event",
        )
        .unwrap_err();
        assert!(e.message.ends_with("missing field `id`"), "{}", e.message);
    }

    /// Every fixture event, of every API version from 2020-03-02 to 2026-07-29.dahlia,
    /// applies without error when fed in one database (each with its own event id, as
    /// the fixtures share some).
    #[test]
    fn every_fixture_event_applies_without_error() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .chain(std::fs::read_dir(dir.join("variants")).unwrap())
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        assert!(files.len() >= 80, "only {} fixtures found", files.len());

        // Types that must reach a handler (the others are answered `Unhandled`).
        let handled = [
            "charge.",
            "checkout.session.",
            "customer.created",
            "customer.updated",
            "customer.deleted",
            "customer.subscription.",
            "invoice.",
            "payment_intent.",
            "payment_method.",
            "plan.",
            "price.",
            "product.",
            "radar.early_fraud_warning.",
            "refund.",
            "review.",
            "account.",
        ];
        let mut h = Harness::new();
        let mut failures = Vec::new();
        for (i, path) in files.iter().enumerate() {
            let name = path.strip_prefix(&dir).unwrap().display().to_string();
            let mut v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
            v["id"] = format!("evt_every_{i}").into();
            let text = v.to_string();
            let type_ = v["type"].as_str().unwrap_or_default();
            match h.try_apply_json(&text) {
                Ok(outcome) => {
                    let expected = if handled.iter().any(|p| type_.starts_with(p)) {
                        Outcome::Applied
                    } else {
                        outcome
                    };
                    if outcome != expected {
                        failures.push(format!("{name}: {outcome:?}"));
                    }
                }
                Err(e) => failures.push(format!("{name}: {e}")),
            }
        }
        assert!(
            failures.is_empty(),
            "fixtures failing:\n{}",
            failures.join("\n")
        );
    }

    /// Each listed type reaches a handler (a made-up object may fail to parse, which
    /// is a handler's answer, never `Unhandled`), and each fixture type left out of the
    /// list, or a near miss of a listed one, is answered `Unhandled`.
    #[test]
    fn handled_types_are_exactly_the_types_that_reach_a_handler() {
        let listed = super::handled_types();
        assert!(
            listed.windows(2).all(|w| w[0] < w[1]),
            "not sorted or not unique"
        );
        let mut h = Harness::new();
        let event = |type_: &str| {
            serde_json::json!({
                "id": format!("evt_list_{type_}"), "type": type_, "created": 1_700_000_000,
                "livemode": false, "data": {"object": {"id": "x_list", "object": "unknown"}},
            })
            .to_string()
        };
        for type_ in listed {
            let outcome = h.try_apply_json(&event(type_));
            assert!(
                !matches!(outcome, Ok(Outcome::Unhandled)),
                "{type_} is listed but has no handler"
            );
        }
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events");
        let mut others: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().ok()?;
                Some(name.strip_suffix(".json")?.to_string())
            })
            .filter(|t| !listed.contains(&t.as_str()))
            .collect();
        others.extend(listed.iter().map(|t| format!("{t}_not")));
        assert!(others.len() > listed.len());
        for type_ in &others {
            assert_eq!(
                h.try_apply_json(&event(type_)).ok(),
                Some(Outcome::Unhandled),
                "{type_} reaches a handler but is not in handled_types()"
            );
        }
    }

    /// The parse alone (what the fuzz target `handlers` drives) reads every fixture, and
    /// takes exactly the types `apply` hands to a handler.
    #[test]
    fn parse_object_reads_every_fixture_and_knows_the_handled_types() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events");
        let files = std::fs::read_dir(&dir)
            .unwrap()
            .chain(std::fs::read_dir(dir.join("variants")).unwrap())
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"));
        for path in files {
            let text = std::fs::read_to_string(&path).unwrap();
            let header: super::EnvelopeHeader = serde_json::from_str(&text).unwrap();
            let object = super::Event::object_of(&text).unwrap();
            let outcome = super::parse_object(&header.type_, object.get());
            let handled = super::handled_types().contains(&header.type_.as_str());
            let expected = if handled {
                Outcome::Applied
            } else {
                Outcome::Unhandled
            };
            assert_eq!(outcome.ok(), Some(expected), "{}", path.display());
        }
        // A type's parse fails where its handler's does.
        let mut h = Harness::new();
        let mut failing = 0;
        for type_ in super::handled_types() {
            let object = r#"{"id": 7, "object": [], "created": "x", "status": {}}"#;
            if super::parse_object(type_, object).is_err() {
                failing += 1;
                let event = serde_json::json!({
                    "id": format!("evt_parse_{type_}"), "type": type_, "created": 1,
                    "data": {"object": serde_json::from_str::<serde_json::Value>(object).unwrap()},
                });
                assert!(
                    matches!(
                        h.try_apply_json(&event.to_string()),
                        Err(super::ApplyError::Parse { .. })
                    ),
                    "{type_}"
                );
            }
        }
        assert!(
            failing > 60,
            "only {failing} types refused a malformed object"
        );
    }
}

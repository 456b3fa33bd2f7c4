//! Property tests: generated inputs, each failure shrunk to a smallest case.
//!
//! - The ordering rule (DESIGN §5.4): whatever order the versions of a customer, a
//!   subscription, an invoice or a payment intent arrive in, and whatever order the
//!   workers then apply them in, the mirror row is the newest version: the greatest
//!   `created`, and of equal ones the later arrival (and a deleted customer stays
//!   deleted).
//! - Money: the revenue report's sums per period and currency are the sums of the
//!   generated payments and refunds, and replaying every event changes no report row
//!   and no mirror row.
//! - Signatures: a header made the way Stripe makes it verifies, with any number of
//!   decoys, `v0` and unknown elements; no single-character change of the body, the
//!   signature or the timestamp does; the tolerance is kept; no header makes it panic;
//!   and the verdicts of `tests/fixtures/signatures.json` (Stripe's library's) survive
//!   shuffling their elements and adding unknown ones.
//!
//! The database tests run on SQLite, or on PostgreSQL when `BILLD_TEST_POSTGRES` is
//! set: one database per test, each case with object ids (and, for the reports, a
//! year) of its own.

mod common;

use std::{
    collections::BTreeMap,
    sync::atomic::{AtomicI64, Ordering},
};

use billd::{
    config::{StripeMode, WorkerConfig},
    report::{self, Interval, RangeQuery},
    signature::{SignatureError, Verifier},
    store::{
        Store,
        db::Connection,
        events::{self as inbox, Inserted, NewEvent},
        mirror,
    },
    worker::{Step, Worker},
};
use hmac::{Hmac, Mac};
use proptest::{
    prelude::*,
    test_runner::{Config, TestCaseError, TestRunner},
};
use secrecy::SecretString;
use serde_json::{Value, json};

/// Cases of the database tests: each applies a handful of events through the worker.
const DB_CASES: u32 = 40;
/// Shrinking steps of a failing database test (each step uses a fresh case number).
const DB_SHRINK: u32 = 200;
/// Cases of the signature tests (pure: fast).
const SIGNATURE_CASES: u32 = 256;

/// `default` cases, or as many as `PROPTEST_CASES` asks for (a longer run by hand).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A number no other case of this test run has drawn: object ids and report years.
fn case_number() -> i64 {
    static NEXT: AtomicI64 = AtomicI64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Runs `test` on `cases` values of `strategy`; a failure panics with the shrunk input.
fn check<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let config = Config {
        cases: self::cases(cases),
        max_shrink_iters: DB_SHRINK,
        failure_persistence: None,
        ..Config::default()
    };
    if let Err(e) = TestRunner::new(config).run(&strategy, test) {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------------------
// Events through the inbox and the worker, as webhooks reach them.

struct Db {
    _dir: tempfile::TempDir,
    store: Store,
    worker: Worker,
}

impl Db {
    fn new() -> Db {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = common::open_store(dir.path());
        let worker = Worker::new(store.clone(), WorkerConfig::default(), StripeMode::Test);
        Db {
            _dir: dir,
            store,
            worker,
        }
    }

    fn conn(&self) -> billd::store::PooledConnection {
        self.store.conn().expect("a connection")
    }

    /// Stores `events` in this order (their inbox sequence numbers follow it), as the
    /// webhook does; answers each one's sequence number.
    fn deliver(&self, events: &[&NewEvent]) -> Vec<i64> {
        let conn = self.conn();
        events
            .iter()
            .map(|e| {
                let inserted = inbox::insert(&conn, e, billd::time::now_ms()).expect("store");
                assert_eq!(inserted, Inserted::New, "{}", e.id);
                inbox::get(&conn, &e.id).expect("stored").seq
            })
            .collect()
    }

    /// Applies the events `seqs` in this order, each its own worker step.
    fn apply(&self, seqs: &[i64]) -> Result<(), TestCaseError> {
        for &seq in seqs {
            let step = self.worker.apply_seq(seq).expect("a worker step");
            prop_assert!(
                matches!(step, Step::Applied { .. }),
                "event {seq}: {step:?}"
            );
        }
        Ok(())
    }
}

/// A webhook body around `object`, whose JSON text the mirror's `raw` must keep as is.
fn event(id: &str, type_: &str, created: i64, object: &str) -> NewEvent {
    NewEvent {
        id: id.to_string(),
        type_: type_.to_string(),
        account: None,
        livemode: false,
        api_version: Some("2024-06-20".into()),
        created,
        payload: format!(
            r#"{{"id":"{id}","object":"event","api_version":"2024-06-20","created":{created},"type":"{type_}","livemode":false,"pending_webhooks":1,"data":{{"object":{object}}}}}"#
        ),
    }
}

// ---------------------------------------------------------------------------------------
// The ordering rule.

/// Versions of one object (`created` offsets drawn from a few seconds, so equal times
/// are common), the order they arrive in and the order they are applied in.
type Versions<T> = (Vec<(i64, T)>, Vec<usize>, Vec<usize>);

fn versions<T: std::fmt::Debug + Clone>(
    fields: impl Strategy<Value = T>,
) -> impl Strategy<Value = Versions<T>> {
    prop::collection::vec((0..5i64, fields), 2..=6).prop_flat_map(|v| {
        let order: Vec<usize> = (0..v.len()).collect();
        (
            Just(v),
            Just(order.clone()).prop_shuffle(),
            Just(order).prop_shuffle(),
        )
    })
}

/// The version the mirror must hold: the greatest `created`, and of equal ones the one
/// that arrived last (`arrival` lists version indexes in arrival order).
fn newest<T>(versions: &[(i64, T)], arrival: &[usize]) -> usize {
    let position = |i: usize| arrival.iter().position(|&a| a == i).expect("arrives");
    (0..versions.len())
        .max_by_key(|&i| (versions[i].0, position(i)))
        .expect("at least one version")
}

/// Delivers the versions (`object(v)` the JSON of version `v`, `type_(v)` its event
/// type, `created` T0 and its offset) in arrival order, applies them in their applied
/// order and answers the index of the version the mirror must hold and the events'
/// (created, seq) per version.
fn deliver_versions<T>(
    db: &Db,
    prefix: &str,
    (versions, arrival, applied): &Versions<T>,
    type_: impl Fn(&T) -> &'static str,
    object: impl Fn(&T) -> String,
) -> Result<(usize, Vec<(i64, i64)>), TestCaseError> {
    let created = T0;
    let events: Vec<NewEvent> = versions
        .iter()
        .enumerate()
        .map(|(i, (offset, v))| {
            event(
                &format!("evt_{prefix}_{i}"),
                type_(v),
                created + offset,
                &object(v),
            )
        })
        .collect();
    let arriving: Vec<&NewEvent> = arrival.iter().map(|&i| &events[i]).collect();
    let seqs = db.deliver(&arriving);
    let mut seq_of = vec![0; versions.len()];
    for (&i, &seq) in arrival.iter().zip(&seqs) {
        seq_of[i] = seq;
    }
    let order: Vec<i64> = applied.iter().map(|&i| seq_of[i]).collect();
    db.apply(&order)?;
    let stamps = versions
        .iter()
        .zip(&seq_of)
        .map(|((offset, _), &seq)| (created + offset, seq))
        .collect();
    Ok((newest(versions, arrival), stamps))
}

/// `raw`, `ev_created` and `ev_seq` of a mirror row.
fn stamp(conn: &Connection, table: &str, id: &str) -> (String, i64, i64) {
    conn.query_row(
        &format!("SELECT raw, ev_created, ev_seq FROM {table} WHERE id = ?1"),
        [id],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
    .expect("the mirror row")
}

const T0: i64 = 1_767_225_600;

#[derive(Debug, Clone)]
struct CustomerVersion {
    type_: &'static str,
    email: Option<String>,
    name: Option<String>,
}

#[test]
fn any_arrival_and_apply_order_leaves_a_customer_at_its_newest_version() {
    let db = Db::new();
    let fields = (
        prop_oneof![
            4 => Just("customer.updated"),
            1 => Just("customer.created"),
            1 => Just("customer.deleted"),
        ],
        proptest::option::of("[a-z]{1,8}@example\\.com"),
        proptest::option::of("[A-Z][a-z]{0,8}( [A-Z][a-z]{0,8})?"),
    )
        .prop_map(|(type_, email, name)| CustomerVersion { type_, email, name });
    check(DB_CASES, versions(fields), |case| {
        let id = format!("cus_prop{}", case_number());
        let object = |v: &CustomerVersion| {
            json!({
                "id": id, "object": "customer", "created": T0 - 86_400, "livemode": false,
                "email": v.email, "name": v.name, "currency": "eur",
                "invoice_settings": {"default_payment_method": null},
            })
            .to_string()
        };
        let (newest, stamps) = deliver_versions(&db, &id, &case, |v| v.type_, object)?;
        let versions = &case.0;
        let conn = db.conn();
        let row = mirror::get_customer(&conn, &id).expect("the customer");
        let deleted = versions.iter().any(|(_, v)| v.type_ == "customer.deleted");
        // Deletion is final whichever order: a late update never brings it back.
        prop_assert_eq!(row.deleted, deleted);
        if !deleted {
            let want = &versions[newest].1;
            prop_assert_eq!(&row.email, &want.email);
            prop_assert_eq!(&row.name, &want.name);
            let (raw, created, seq) = stamp(&conn, "customers", &id);
            prop_assert_eq!(raw, object(want));
            prop_assert_eq!((created, seq), stamps[newest]);
        }
        Ok(())
    });
}

/// A subscription item as compared: id, price, unit amount, quantity.
type ItemView = (String, Option<String>, Option<i64>, Option<i64>);

#[derive(Debug, Clone)]
struct SubscriptionVersion {
    type_: &'static str,
    status: &'static str,
    cancel_at_period_end: bool,
    period_end: i64,
    /// (price, unit amount, quantity) per item.
    items: Vec<(&'static str, i64, i64)>,
}

#[test]
fn any_arrival_and_apply_order_leaves_a_subscription_and_its_items_at_the_newest_version() {
    let db = Db::new();
    let fields = (
        prop::sample::select(vec![
            "customer.subscription.created",
            "customer.subscription.updated",
            "customer.subscription.trial_will_end",
            "customer.subscription.paused",
            "customer.subscription.resumed",
            "customer.subscription.pending_update_applied",
        ]),
        // Not the terminal ones (`canceled`, `incomplete_expired`): those end it for good.
        prop::sample::select(vec![
            "active",
            "trialing",
            "past_due",
            "unpaid",
            "paused",
            "incomplete",
        ]),
        any::<bool>(),
        0..90i64,
        prop::collection::vec(
            (
                prop::sample::select(vec!["price_basic", "price_pro", "price_team"]),
                0..100_000i64,
                1..50i64,
            ),
            1..=2,
        ),
    )
        .prop_map(
            |(type_, status, cancel_at_period_end, days, items)| SubscriptionVersion {
                type_,
                status,
                cancel_at_period_end,
                period_end: T0 + days * 86_400,
                items,
            },
        );
    check(DB_CASES, versions(fields), |case| {
        let n = case_number();
        let id = format!("sub_prop{n}");
        let item_id = |k: usize| format!("si_prop{n}_{k}");
        let object = |v: &SubscriptionVersion| {
            let items: Vec<Value> = v
                .items
                .iter()
                .enumerate()
                .map(|(k, (price, amount, quantity))| {
                    json!({
                        "id": item_id(k), "object": "subscription_item", "quantity": quantity,
                        "price": {"id": price, "object": "price", "unit_amount": amount,
                                  "currency": "eur", "recurring": {"interval": "month", "interval_count": 1}},
                    })
                })
                .collect();
            json!({
                "id": id, "object": "subscription", "customer": format!("cus_prop{n}"),
                "status": v.status, "currency": "eur", "created": T0 - 86_400,
                "cancel_at_period_end": v.cancel_at_period_end,
                "current_period_start": T0 - 86_400, "current_period_end": v.period_end,
                "items": {"object": "list", "data": items},
            })
            .to_string()
        };
        let (newest, stamps) = deliver_versions(&db, &id, &case, |v| v.type_, object)?;
        let versions = &case.0;
        let conn = db.conn();
        let want = &versions[newest].1;
        let row = mirror::get_subscription(&conn, &id).expect("the subscription");
        prop_assert_eq!(row.status.as_deref(), Some(want.status));
        prop_assert_eq!(row.cancel_at_period_end, want.cancel_at_period_end);
        prop_assert_eq!(row.current_period_end, Some(want.period_end));
        prop_assert_eq!(row.price.as_deref(), Some(want.items[0].0));
        prop_assert_eq!(row.quantity, Some(want.items[0].2));
        let items: Vec<ItemView> = row
            .items
            .iter()
            .map(|i| (i.id.clone(), i.price.clone(), i.unit_amount, i.quantity))
            .collect();
        let expected: Vec<ItemView> = want
            .items
            .iter()
            .enumerate()
            .map(|(k, (price, amount, quantity))| {
                (
                    item_id(k),
                    Some(price.to_string()),
                    Some(*amount),
                    Some(*quantity),
                )
            })
            .collect();
        prop_assert_eq!(items, expected);
        let (raw, created, seq) = stamp(&conn, "subscriptions", &id);
        prop_assert_eq!(raw, object(want));
        prop_assert_eq!((created, seq), stamps[newest]);
        Ok(())
    });
}

#[derive(Debug, Clone)]
struct InvoiceVersion {
    type_: &'static str,
    status: &'static str,
    amount_due: i64,
    amount_paid: i64,
    attempt: i64,
}

#[test]
fn any_arrival_and_apply_order_leaves_an_invoice_at_its_newest_version() {
    let db = Db::new();
    let fields = (
        prop::sample::select(vec![
            "invoice.created",
            "invoice.updated",
            "invoice.finalized",
            "invoice.paid",
            "invoice.payment_succeeded",
            "invoice.payment_failed",
            "invoice.payment_action_required",
            "invoice.voided",
            "invoice.marked_uncollectible",
            "invoice.sent",
            "invoice.overdue",
        ]),
        prop::sample::select(vec!["draft", "open", "paid", "void", "uncollectible"]),
        0..1_000_000i64,
        0..1_000_000i64,
        0..5i64,
    )
        .prop_map(
            |(type_, status, amount_due, amount_paid, attempt)| InvoiceVersion {
                type_,
                status,
                amount_due,
                amount_paid,
                attempt,
            },
        );
    check(DB_CASES, versions(fields), |case| {
        let n = case_number();
        let id = format!("in_prop{n}");
        let object = |v: &InvoiceVersion| {
            json!({
                "id": id, "object": "invoice", "customer": format!("cus_prop{n}"),
                "status": v.status, "currency": "usd", "number": format!("PROP-{n}"),
                "amount_due": v.amount_due, "amount_paid": v.amount_paid,
                "amount_remaining": v.amount_due - v.amount_paid.min(v.amount_due),
                "total": v.amount_due, "attempt_count": v.attempt, "created": T0 - 3_600,
            })
            .to_string()
        };
        let (newest, stamps) = deliver_versions(&db, &id, &case, |v| v.type_, object)?;
        let versions = &case.0;
        let conn = db.conn();
        let want = &versions[newest].1;
        let column = |c: &'static str| {
            mirror::column(&conn, mirror::Table::Invoices, &id, c).expect("the invoice")
        };
        prop_assert_eq!(column("status"), Some(want.status.to_string()));
        prop_assert_eq!(column("amount_due"), Some(want.amount_due.to_string()));
        prop_assert_eq!(column("amount_paid"), Some(want.amount_paid.to_string()));
        let (raw, created, seq) = stamp(&conn, "invoices", &id);
        prop_assert_eq!(raw, object(want));
        prop_assert_eq!((created, seq), stamps[newest]);
        Ok(())
    });
}

#[derive(Debug, Clone)]
struct IntentVersion {
    type_: &'static str,
    /// The object's own status (the type's, where it states one, wins).
    status: &'static str,
    amount: i64,
    currency: &'static str,
}

impl IntentVersion {
    fn mirrored_status(&self) -> &'static str {
        match self.type_ {
            "payment_intent.succeeded" => "succeeded",
            "payment_intent.payment_failed" => "failed",
            "payment_intent.canceled" => "canceled",
            _ => self.status,
        }
    }
}

#[test]
fn any_arrival_and_apply_order_leaves_a_payment_intent_at_its_newest_version() {
    let db = Db::new();
    let fields = (
        prop::sample::select(vec![
            "payment_intent.created",
            "payment_intent.processing",
            "payment_intent.requires_action",
            "payment_intent.amount_capturable_updated",
            "payment_intent.succeeded",
            "payment_intent.payment_failed",
            "payment_intent.canceled",
        ]),
        prop::sample::select(vec![
            "requires_payment_method",
            "requires_confirmation",
            "requires_action",
            "processing",
            "requires_capture",
            "succeeded",
            "canceled",
        ]),
        1..10_000_000i64,
        prop::sample::select(vec!["eur", "usd", "jpy"]),
    )
        .prop_map(|(type_, status, amount, currency)| IntentVersion {
            type_,
            status,
            amount,
            currency,
        });
    check(DB_CASES, versions(fields), |case| {
        let n = case_number();
        let id = format!("pi_prop{n}");
        let object = |v: &IntentVersion| {
            json!({
                "id": id, "object": "payment_intent", "customer": format!("cus_prop{n}"),
                "amount": v.amount, "currency": v.currency, "status": v.status,
                "created": T0 - 60, "livemode": false,
            })
            .to_string()
        };
        let (newest, stamps) = deliver_versions(&db, &id, &case, |v| v.type_, object)?;
        let versions = &case.0;
        let conn = db.conn();
        let want = &versions[newest].1;
        let row = mirror::get_payment(&conn, &id).expect("the payment");
        prop_assert_eq!(row.amount, want.amount);
        prop_assert_eq!(row.currency.as_str(), want.currency);
        prop_assert_eq!(row.status.as_str(), want.mirrored_status());
        prop_assert_eq!(row.created, T0 - 60);
        let (raw, created, seq) = stamp(&conn, "payments", &id);
        prop_assert_eq!(raw, object(want));
        prop_assert_eq!((created, seq), stamps[newest]);
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------
// Money.

#[derive(Debug, Clone)]
struct PaymentCase {
    currency: &'static str,
    amount: i64,
    /// The final event's type.
    outcome: &'static str,
    /// Seconds into the case's year when the intent was created.
    at: i64,
    /// Whether a `payment_intent.created` event comes first.
    with_created_event: bool,
    refunds: Vec<RefundCase>,
}

#[derive(Debug, Clone)]
struct RefundCase {
    amount: i64,
    /// Seconds after the payment.
    after: i64,
    status: &'static str,
    /// A later `refund.updated` with this status.
    then: Option<&'static str>,
}

fn payment_case() -> impl Strategy<Value = PaymentCase> {
    let refund = (
        1..100_000i64,
        0..90 * 86_400i64,
        prop::sample::select(vec!["succeeded", "pending", "failed", "canceled"]),
        proptest::option::of(prop::sample::select(vec![
            "succeeded",
            "failed",
            "canceled",
        ])),
    )
        .prop_map(|(amount, after, status, then)| RefundCase {
            amount,
            after,
            status,
            then,
        });
    (
        prop::sample::select(vec!["eur", "usd", "jpy"]),
        1..1_000_000i64,
        prop_oneof![
            3 => Just("payment_intent.succeeded"),
            2 => Just("payment_intent.payment_failed"),
            1 => Just("payment_intent.canceled"),
        ],
        0..240 * 86_400i64,
        any::<bool>(),
        prop::collection::vec(refund, 0..3),
    )
        .prop_map(
            |(currency, amount, outcome, at, with_created_event, refunds)| PaymentCase {
                currency,
                amount,
                refunds: if outcome == "payment_intent.succeeded" {
                    refunds
                } else {
                    Vec::new()
                },
                outcome,
                at,
                with_created_event,
            },
        )
}

/// What one revenue row says, as the comparison reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Sums {
    gross: i64,
    refunded: i64,
    net: i64,
    payments: u64,
    failed: u64,
}

/// Unix time of 1 January of `year`, UTC.
fn year_start(year: i32) -> i64 {
    time::Date::from_calendar_date(year, time::Month::January, 1)
        .expect("a date")
        .midnight()
        .assume_utc()
        .unix_timestamp()
}

/// The start of the period holding `t` (days, ISO weeks from Monday, calendar months,
/// all UTC), computed with the calendar rather than the report's arithmetic.
fn period_of(t: i64, interval: Interval) -> i64 {
    let date = time::OffsetDateTime::from_unix_timestamp(t)
        .expect("a time")
        .date();
    let start = match interval {
        Interval::Day => date,
        Interval::Week => {
            date - time::Duration::days(date.weekday().number_days_from_monday().into())
        }
        Interval::Month => date.replace_day(1).expect("the first"),
    };
    start.midnight().assume_utc().unix_timestamp()
}

fn revenue(
    conn: &Connection,
    q: &RangeQuery,
) -> Result<BTreeMap<(i64, String), Sums>, TestCaseError> {
    let rows = report::revenue(conn, q, T0).map_err(|e| TestCaseError::fail(e.to_string()))?;
    Ok(rows
        .into_iter()
        .map(|r| {
            assert_eq!((r.disputed, r.disputes_lost), (0, 0), "{r:?}");
            (
                (r.period_start, r.currency),
                Sums {
                    gross: r.gross,
                    refunded: r.refunded,
                    net: r.net,
                    payments: r.payments,
                    failed: r.failed,
                },
            )
        })
        .collect())
}

#[test]
fn revenue_sums_are_the_sums_of_the_payments_and_a_replay_changes_nothing() {
    let db = Db::new();
    let strategy = (
        prop::collection::vec(payment_case(), 1..10),
        prop::sample::select(vec![Interval::Day, Interval::Week, Interval::Month]),
        // Sort keys of the events: the order they arrive in.
        prop::collection::vec(any::<u32>(), 96),
    );
    check(DB_CASES, strategy, |(payments, interval, keys)| {
        let n = case_number();
        // A year of its own per case: the report's range holds this case's rows alone.
        let year = 2001 + i32::try_from(n).expect("a small case number");
        assert!(
            year < 9999,
            "more revenue cases (with shrinking) than years to give them"
        );
        let (from, to) = (year_start(year), year_start(year + 1));
        let key = |t: i64, currency: &str| (period_of(t, interval).max(from), currency.to_string());

        let mut events = Vec::new();
        let mut expected: BTreeMap<(i64, String), Sums> = BTreeMap::new();
        for (i, p) in payments.iter().enumerate() {
            let pi = format!("pi_money{n}_{i}");
            let at = from + p.at;
            let intent = |status: &str| {
                json!({
                    "id": pi, "object": "payment_intent", "amount": p.amount,
                    "currency": p.currency, "status": status, "created": at,
                    "customer": format!("cus_money{n}"), "livemode": false,
                })
                .to_string()
            };
            if p.with_created_event {
                events.push(event(
                    &format!("evt_{pi}_created"),
                    "payment_intent.created",
                    at,
                    &intent("requires_payment_method"),
                ));
            }
            let status = match p.outcome {
                "payment_intent.succeeded" => "succeeded",
                "payment_intent.payment_failed" => "requires_payment_method",
                _ => "canceled",
            };
            events.push(event(
                &format!("evt_{pi}_final"),
                p.outcome,
                at + 1,
                &intent(status),
            ));
            let sums = expected.entry(key(at, p.currency)).or_default();
            match p.outcome {
                "payment_intent.succeeded" => {
                    sums.gross += p.amount;
                    sums.net += p.amount;
                    sums.payments += 1;
                }
                "payment_intent.payment_failed" => sums.failed += 1,
                _ => {}
            }
            for (k, r) in p.refunds.iter().enumerate() {
                let re = format!("re_money{n}_{i}_{k}");
                let created = at + 1 + r.after;
                let refund = |status: &str| {
                    json!({
                        "id": re, "object": "refund", "amount": r.amount,
                        "currency": p.currency, "status": status, "created": created,
                        "payment_intent": pi, "charge": null, "reason": null,
                    })
                    .to_string()
                };
                events.push(event(
                    &format!("evt_{re}_created"),
                    "refund.created",
                    created,
                    &refund(r.status),
                ));
                if let Some(then) = r.then {
                    events.push(event(
                        &format!("evt_{re}_updated"),
                        "refund.updated",
                        created + 60,
                        &refund(then),
                    ));
                }
                // Money that left or is leaving; a failed or canceled refund gave nothing.
                if matches!(r.then.unwrap_or(r.status), "succeeded" | "pending") {
                    let sums = expected.entry(key(created, p.currency)).or_default();
                    sums.refunded += r.amount;
                    sums.net -= r.amount;
                }
            }
        }
        // The report has a row where something happened: a payment, a failure, a refund.
        expected.retain(|_, s| s.payments > 0 || s.failed > 0 || s.refunded > 0);

        let mut arrival: Vec<usize> = (0..events.len()).collect();
        arrival.sort_by_key(|&i| (keys[i % keys.len()], i));
        let arriving: Vec<&NewEvent> = arrival.iter().map(|&i| &events[i]).collect();
        let seqs = db.deliver(&arriving);
        db.apply(&seqs)?;

        let q = RangeQuery {
            from: Some(from),
            to: Some(to),
            interval,
            ..RangeQuery::default()
        };
        let conn = db.conn();
        let first = revenue(&conn, &q)?;
        prop_assert_eq!(&first, &expected);

        // The same webhooks again are duplicates; every event replayed (newest arrival
        // first) changes no report row and no mirror row.
        let mirror_before = common::mirror_dump(&db.store);
        for e in &events {
            let inserted = inbox::insert(&conn, e, billd::time::now_ms()).expect("store");
            prop_assert_eq!(inserted, Inserted::Duplicate);
        }
        let replayed: Vec<i64> = arriving
            .iter()
            .rev()
            .map(|e| inbox::requeue(&conn, &e.id, billd::time::now_ms()).expect("requeue"))
            .collect();
        db.apply(&replayed)?;
        prop_assert_eq!(&revenue(&conn, &q)?, &first);
        common::assert_same_mirror(&mirror_before, &common::mirror_dump(&db.store), "a replay");
        Ok(())
    });
}

// ---------------------------------------------------------------------------------------
// Signatures.

fn hmac_hex(secret: &str, t: &str, payload: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

fn verifier(secrets: &[String], tolerance: u64) -> Verifier {
    Verifier::new(
        secrets
            .iter()
            .map(|s| SecretString::from(s.clone()))
            .collect(),
        tolerance,
    )
}

/// A `Stripe-Signature` header as Stripe sends it, with what a header may also carry.
#[derive(Debug, Clone)]
struct Signed {
    payload: Vec<u8>,
    /// The configured secrets; the body is signed with `secrets[signer]`.
    secrets: Vec<String>,
    signer: usize,
    t: i64,
    /// The header's elements; `good` indexes the matching `v1`.
    elements: Vec<String>,
    good: usize,
}

impl Signed {
    fn header(&self) -> String {
        self.elements.join(",")
    }

    /// Byte range of the timestamp's digits in the header.
    fn t_range(&self) -> std::ops::Range<usize> {
        let index = self
            .elements
            .iter()
            .position(|e| e.starts_with("t="))
            .expect("a t element");
        let start: usize = self.elements[..index]
            .iter()
            .map(|e| e.len() + 1)
            .sum::<usize>()
            + 2;
        start..start + self.elements[index].len() - 2
    }

    /// Byte range of the matching signature's hex digits in the header.
    fn signature_range(&self) -> std::ops::Range<usize> {
        let start: usize = self.elements[..self.good]
            .iter()
            .map(|e| e.len() + 1)
            .sum::<usize>()
            + 3;
        start..start + 64
    }
}

fn signed() -> impl Strategy<Value = Signed> {
    let hex64 = "[0-9a-f]{64}";
    (
        prop::collection::vec(any::<u8>(), 0..512),
        prop::collection::vec("whsec_[A-Za-z0-9]{1,40}", 1..=3),
        any::<prop::sample::Index>(),
        1_000_000_000..2_000_000_000i64,
        prop::collection::vec(hex64, 0..4),
        prop::collection::vec(hex64, 0..3),
        // Unknown elements: keys Stripe may add, values with spaces (never commas).
        prop::collection::vec(("x[a-z0-9]{0,4}", "[ -+\\--~]{0,24}"), 0..3),
        any::<bool>(),
    )
        .prop_flat_map(
            |(payload, secrets, signer, t, decoys, v0s, unknown, spaced)| {
                let signer = signer.index(secrets.len());
                let good = hmac_hex(&secrets[signer], &t.to_string(), &payload);
                let mut elements = vec![format!("t={t}"), format!("v1={good}")];
                elements.extend(decoys.iter().map(|d| format!("v1={d}")));
                elements.extend(v0s.iter().map(|d| format!("v0={d}")));
                elements.extend(unknown.iter().map(|(k, v)| format!("{k}={v}")));
                if spaced {
                    // Stripe's libraries split without trimming: ` v1` is another key.
                    elements.push(format!(" v1={good}"));
                }
                (
                    Just((payload, secrets, signer, t, good)),
                    Just(elements).prop_shuffle(),
                )
            },
        )
        .prop_map(|((payload, secrets, signer, t, good), elements)| {
            let good = elements
                .iter()
                .position(|e| *e == format!("v1={good}"))
                .expect("the signature");
            Signed {
                payload,
                secrets,
                signer,
                t,
                elements,
                good,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(SIGNATURE_CASES),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_header_made_as_stripe_makes_it_verifies(s in signed(), age in -600..=300i64) {
        prop_assert!(s.signer < s.secrets.len());
        let v = verifier(&s.secrets, 300);
        prop_assert_eq!(v.verify(&s.payload, &s.header(), s.t + age), Ok(s.t));
    }

    #[test]
    fn no_single_change_of_body_signature_or_timestamp_verifies(
        s in signed(),
        which in 0..3u8,
        at in any::<prop::sample::Index>(),
        by in any::<char>(),
        flip in 1..=255u8,
    ) {
        let v = verifier(&s.secrets, 0);
        let header = s.header();
        match which {
            0 => {
                let mut payload = s.payload.clone();
                if payload.is_empty() {
                    payload.push(flip);
                } else {
                    let i = at.index(payload.len());
                    payload[i] ^= flip;
                }
                prop_assert_eq!(v.verify(&payload, &header, s.t), Err(SignatureError::Mismatch));
            }
            _ => {
                let range = if which == 1 { s.signature_range() } else { s.t_range() };
                let i = range.start + at.index(range.len());
                let old = header[i..].chars().next().expect("an ASCII character");
                prop_assume!(by != old);
                let changed = format!("{}{by}{}", &header[..i], &header[i + 1..]);
                let verdict = v.verify(&s.payload, &changed, s.t);
                if which == 1 {
                    prop_assert_eq!(verdict, Err(SignatureError::Mismatch), "{}", changed);
                } else {
                    prop_assert!(verdict.is_err(), "{changed}: {verdict:?}");
                }
            }
        }
    }

    #[test]
    fn only_a_timestamp_older_than_the_tolerance_is_stale(
        s in signed(),
        tolerance in 0..=3_600u64,
        age in -100_000..=100_000i64,
    ) {
        let verdict = verifier(&s.secrets, tolerance).verify(&s.payload, &s.header(), s.t + age);
        // Stripe's libraries: a future timestamp is not stale, and a tolerance of 0
        // turns the age check off.
        let tolerance = i64::try_from(tolerance).expect("small");
        if tolerance == 0 || age <= tolerance {
            prop_assert_eq!(verdict, Ok(s.t));
        } else {
            prop_assert_eq!(verdict, Err(SignatureError::Stale));
        }
    }

    #[test]
    fn no_header_makes_the_verifier_panic(
        header in prop_oneof![
            ".{0,300}",
            prop::collection::vec(("( ?t| ?v1|v0|x|)", "[0-9a-fA-F= -]{0,70}"), 0..20)
                .prop_map(|e| e.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")),
            // Long headers, many signatures: refused before any HMAC.
            (0..40usize, 0..300usize).prop_map(|(m, k)| {
                format!("t=1{}", format!(",v1={}", "0".repeat(k)).repeat(m))
            }),
        ],
        payload in prop::collection::vec(any::<u8>(), 0..64),
        now in any::<i64>(),
        tolerance in any::<u64>(),
    ) {
        let v = verifier(&["whsec_a".to_string(), String::new()], tolerance);
        let verdict = v.verify(&payload, &header, now);
        // No made-up header carries a valid signature, and none costs more than one
        // HMAC per secret.
        prop_assert!(verdict.is_err(), "{verdict:?}");
        prop_assert!(v.hmac_count() <= 2);
    }

    #[test]
    fn every_vector_keeps_its_verdict_with_its_elements_shuffled_and_unknown_ones_added(
        case in prop::sample::select(vectors()),
        added in prop::collection::vec(("x[a-z0-9]{0,4}", "[ -+\\--~]{0,24}"), 0..3),
        rotate in any::<prop::sample::Index>(),
        swap in any::<prop::sample::Index>(),
    ) {
        let mut elements: Vec<String> = case.header.split(',').map(String::from).collect();
        elements.extend(added.iter().map(|(k, v)| format!("{k}={v}")));
        // A rotation and a swap: orders Stripe's libraries do not care about (the
        // vectors name at most one `t`).
        let n = elements.len();
        elements.rotate_left(rotate.index(n));
        elements.swap(0, swap.index(n));
        let header = elements.join(",");
        let verdict = verifier(&case.secrets, case.tolerance).verify(case.payload.as_bytes(), &header, case.now);
        prop_assert_eq!(verdict.is_ok(), case.valid, "{}: {} → {:?}", case.name, header, verdict);
    }
}

/// `tests/fixtures/signatures.json` (verdicts of Stripe's own library), each with at
/// most one timestamp.
fn vectors() -> Vec<common::SignatureVector> {
    let vectors = common::signature_vectors();
    for v in &vectors {
        let ts = v.header.split(',').filter(|e| e.starts_with("t=")).count();
        assert!(ts <= 1, "{}: more than one t", v.name);
    }
    vectors
}

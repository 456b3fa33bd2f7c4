//! Every handled event type in at least three API-version shapes, over the real webhook.
//!
//! Stripe renders an event in the API version pinned on the endpoint, which may be
//! years old. For each type of `handled_types()` this sends signed events shaped as
//! Stripe shipped the object in three or more versions, from 2013-08-13 to
//! 2026-07-29.dahlia (ids absent, fields renamed or moved: see docs/webhooks.md, "API
//! versions"), waits for the workers, and checks that each event ended `processed` and
//! that the mirror holds what its shape carried (an amount, a status, a period end, a
//! price), through the API (customers, subscriptions, invoices, payments, events,
//! flags, Connect accounts, the MRR report) or, where the API shows nothing of it, the
//! store.
//!
//! One builder per object family takes the case (type, version, a number that makes
//! its ids and values its own) and answers the event and what the mirror must then
//! hold. `FAMILIES` lists every type with its versions; a test holds it equal to
//! `handled_types()`, so a type added there fails here until it has shapes.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use billd::{
    store::{
        mirror::{self, Table},
        tokens::Scope,
    },
    time::rfc3339,
};
use common::*;
use serde_json::{Value, json};

const V2013: &str = "2013-08-13";
const V2014: &str = "2014-06-17";
const V2016: &str = "2016-07-06";
const V2018: &str = "2018-09-24";
const V2019: &str = "2019-05-16";
const V2020: &str = "2020-08-27";
const V2022: &str = "2022-11-15";
const BASIL: &str = "2025-03-31.basil";
const DAHLIA: &str = "2026-07-29.dahlia";

/// The versions in which a field moved, as the builders compare them (dates compare
/// as strings).
const MULTIPLE_SUBSCRIPTIONS: &str = "2014-01-31";
const EVENT_ACCOUNT: &str = "2017-05-25";
const PI_STATUSES_RENAMED: &str = "2019-02-11";
const INVOICE_CREATED: &str = "2019-03-14";
const NO_EMBEDDED_LISTS: &str = "2020-08-27";
const LATEST_CHARGE: &str = "2022-11-15";
const REFUNDS_LISTED: &str = "2014-06-17";
const ACCOUNT_FIELDS_RENAMED: &str = "2014-11-05";
const EVIDENCE_DETAILS: &str = "2014-12-08";
const PLANS_OF_PRODUCTS: &str = "2018-02-05";

const DAY: i64 = 86_400;
/// When the events happen (2025-06-15): any version's events arrive today.
const NOW: i64 = 1_750_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Customer,
    Subscription,
    Coupon,
    Discount,
    Invoice,
    Charge,
    Refund,
    PaymentIntent,
    PaymentMethod,
    Product,
    Price,
    Plan,
    Checkout,
    Account,
    Deauthorized,
    /// Connect events billd applies without copying anything.
    ConnectOnly,
    Dispute,
    FraudWarning,
    Review,
}

/// Every handled type, by family, with the API versions it is sent in.
const FAMILIES: &[(Family, &[&str], &[&str])] = &[
    (
        Family::Customer,
        &["customer.created", "customer.updated", "customer.deleted"],
        &[V2013, V2019, BASIL],
    ),
    (
        Family::Subscription,
        &[
            "customer.subscription.created",
            "customer.subscription.updated",
            "customer.subscription.deleted",
            "customer.subscription.trial_will_end",
            "customer.subscription.paused",
            "customer.subscription.resumed",
            "customer.subscription.pending_update_applied",
            "customer.subscription.pending_update_expired",
        ],
        &[V2013, V2019, V2022, BASIL],
    ),
    (
        Family::Coupon,
        &["coupon.created", "coupon.updated", "coupon.deleted"],
        &[V2013, V2019, BASIL],
    ),
    (
        Family::Discount,
        &[
            "customer.discount.created",
            "customer.discount.updated",
            "customer.discount.deleted",
        ],
        &[V2013, V2019, V2022, BASIL],
    ),
    (
        Family::Invoice,
        &[
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
        ],
        &[V2013, V2019, BASIL],
    ),
    (
        Family::Charge,
        &[
            "charge.captured",
            "charge.expired",
            "charge.failed",
            "charge.pending",
            "charge.refunded",
            "charge.succeeded",
            "charge.updated",
        ],
        &[V2013, V2019, V2022, BASIL],
    ),
    (
        Family::Refund,
        &[
            "charge.refund.updated",
            "refund.created",
            "refund.failed",
            "refund.updated",
        ],
        &[V2014, V2019, BASIL],
    ),
    (
        Family::PaymentIntent,
        &[
            "payment_intent.amount_capturable_updated",
            "payment_intent.canceled",
            "payment_intent.created",
            "payment_intent.partially_funded",
            "payment_intent.payment_failed",
            "payment_intent.processing",
            "payment_intent.requires_action",
            "payment_intent.succeeded",
        ],
        &[V2018, V2019, V2022, BASIL],
    ),
    (
        Family::PaymentMethod,
        &[
            "payment_method.attached",
            "payment_method.automatically_updated",
            "payment_method.detached",
            "payment_method.updated",
        ],
        &[V2018, V2020, DAHLIA],
    ),
    (
        Family::Product,
        &["product.created", "product.updated", "product.deleted"],
        &[V2016, V2019, DAHLIA],
    ),
    (
        Family::Price,
        &["price.created", "price.updated", "price.deleted"],
        &[V2020, V2022, DAHLIA],
    ),
    (
        Family::Plan,
        &["plan.created", "plan.updated", "plan.deleted"],
        &[V2013, V2019, DAHLIA],
    ),
    (
        Family::Checkout,
        &[
            "checkout.session.async_payment_failed",
            "checkout.session.async_payment_succeeded",
            "checkout.session.completed",
            "checkout.session.expired",
        ],
        &[V2019, V2020, DAHLIA],
    ),
    (
        Family::Account,
        &["account.updated"],
        &[V2013, V2016, V2019, DAHLIA],
    ),
    (
        Family::Deauthorized,
        &["account.application.deauthorized"],
        &[V2013, V2019, DAHLIA],
    ),
    (
        Family::ConnectOnly,
        &["account.application.authorized"],
        &[V2013, V2019, DAHLIA],
    ),
    (
        Family::ConnectOnly,
        &[
            "account.external_account.created",
            "account.external_account.deleted",
            "account.external_account.updated",
        ],
        &[V2016, V2019, DAHLIA],
    ),
    (
        Family::ConnectOnly,
        &["capability.updated"],
        &[V2019, V2020, DAHLIA],
    ),
    (
        Family::ConnectOnly,
        &["person.created", "person.deleted", "person.updated"],
        &[V2019, V2022, DAHLIA],
    ),
    (
        Family::Dispute,
        &[
            "charge.dispute.closed",
            "charge.dispute.created",
            "charge.dispute.funds_reinstated",
            "charge.dispute.funds_withdrawn",
            "charge.dispute.updated",
        ],
        &[V2013, V2019, BASIL],
    ),
    (
        Family::FraudWarning,
        &[
            "radar.early_fraud_warning.created",
            "radar.early_fraud_warning.updated",
        ],
        &[V2019, V2022, DAHLIA],
    ),
    (
        Family::Review,
        &["review.closed", "review.opened"],
        &[V2016, V2019, DAHLIA],
    ),
];

/// One event to send: a type in one API version.
struct Case {
    family: Family,
    type_: &'static str,
    version: &'static str,
    /// Unique per case: its values differ from every other case's.
    n: i64,
}

impl Case {
    /// `invoice_paid_20130813`: what this case's ids end in.
    fn tag(&self) -> String {
        format!(
            "{}_{}",
            self.type_.replace('.', "_"),
            self.version[..10].replace('-', "")
        )
    }

    fn id(&self, prefix: &str) -> String {
        format!("{prefix}_{}", self.tag())
    }

    fn before(&self, version: &str) -> bool {
        self.version < version
    }

    /// The last word of the type (`paid` of `invoice.paid`).
    fn verb(&self) -> &'static str {
        self.type_.rsplit('.').next().unwrap_or_default()
    }

    fn amount(&self) -> i64 {
        1_000 + 10 * self.n
    }

    fn quantity(&self) -> i64 {
        1 + self.n % 4
    }

    fn created(&self) -> i64 {
        NOW + self.n
    }

    fn period_end(&self) -> i64 {
        NOW + 30 * DAY + self.n
    }
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();
    for (family, types, versions) in FAMILIES {
        for type_ in *types {
            for version in *versions {
                cases.push(Case {
                    family: *family,
                    type_,
                    version,
                    n: cases.len() as i64,
                });
            }
        }
    }
    cases
}

/// What the mirror must hold once a case's event is applied.
enum Expect {
    Customer {
        id: String,
        name: String,
        default_pm: String,
        deleted: bool,
        subscription: Option<Sub>,
    },
    Subscription(Sub),
    Coupon {
        id: String,
        percent_off_bp: Option<i64>,
        amount_off: Option<i64>,
        deleted: bool,
    },
    Discount {
        key: String,
        coupon: String,
        customer: String,
        deleted: bool,
    },
    Invoice {
        id: String,
        customer: String,
        status: &'static str,
        amount_due: i64,
        subscription: String,
        payment_intent: Option<String>,
        created: i64,
    },
    /// A preview: nothing mirrored for its customer.
    NoInvoice {
        customer: String,
    },
    DeletedInvoice {
        id: String,
        customer: String,
    },
    Payment {
        customer: String,
        id: String,
        status: &'static str,
        amount: i64,
        amount_refunded: i64,
        charge: Option<String>,
        invoice: Option<String>,
        failure_code: Option<&'static str>,
        /// A refund the charge lists: (id, amount).
        refund: Option<(String, i64)>,
    },
    Refund {
        id: String,
        payment: String,
        amount: i64,
        status: Option<&'static str>,
    },
    PaymentMethod {
        id: String,
        customer: Option<String>,
        last4: String,
        exp_year: i64,
    },
    Product {
        id: String,
        name: String,
        deleted: bool,
    },
    Price {
        id: String,
        unit_amount: Option<i64>,
        nickname: Option<String>,
        product: Option<String>,
        deleted: bool,
    },
    Checkout {
        id: String,
        customer: String,
        payment_intent: String,
        amount_total: Option<i64>,
        payment_status: Option<&'static str>,
    },
    Account {
        id: String,
        type_: Option<&'static str>,
        charges_enabled: bool,
        payouts_enabled: bool,
        currently_due: Vec<&'static str>,
        disabled_reason: Option<&'static str>,
    },
    AccountDeleted {
        id: String,
    },
    /// The event names an account, and billd copies nothing of its object.
    NothingCopied {
        account: String,
    },
    /// Only the flag below.
    Flagged,
}

/// A subscription as the mirror must hold it, and its MRR when it counts.
struct Sub {
    key: String,
    customer: String,
    status: &'static str,
    price: String,
    quantity: i64,
    period_end: i64,
    /// Read from the store: a subscription of 2013 is keyed by its customer, which the
    /// subscription routes do not take for an id.
    in_store: bool,
}

/// A flag the event must have left.
struct Flag {
    kind: &'static str,
    object: String,
    status: &'static str,
    detail: String,
}

/// A case's event, what it must leave, and the account its envelope names.
struct Shape {
    object: Value,
    expect: Expect,
    flag: Option<Flag>,
    account: Option<String>,
}

impl Shape {
    fn new(object: Value, expect: Expect) -> Shape {
        Shape {
            object,
            expect,
            flag: None,
            account: None,
        }
    }

    fn flag(mut self, flag: Option<Flag>) -> Shape {
        self.flag = flag;
        self
    }

    fn of_account(mut self, account: String) -> Shape {
        self.account = Some(account);
        self
    }
}

fn shape(case: &Case) -> Shape {
    match case.family {
        Family::Customer => customer(case),
        Family::Subscription => subscription(case),
        Family::Coupon => coupon(case),
        Family::Discount => discount(case),
        Family::Invoice => invoice(case),
        Family::Charge => charge(case),
        Family::Refund => refund(case),
        Family::PaymentIntent => payment_intent(case),
        Family::PaymentMethod => payment_method(case),
        Family::Product => product(case),
        Family::Price | Family::Plan => price(case),
        Family::Checkout => checkout(case),
        Family::Account => account(case),
        Family::Deauthorized | Family::ConnectOnly => connect_only(case),
        Family::Dispute => dispute(case),
        Family::FraudWarning => fraud_warning(case),
        Family::Review => review(case),
    }
}

/// The signed envelope of a case: `user_id` names a connected account before
/// 2017-05-25, `account` after, when `request` also became an object.
fn envelope(case: &Case, shape: &Shape) -> Value {
    let old = case.before(EVENT_ACCOUNT);
    let mut event = json!({
        "id": case.id("evt"), "object": "event", "type": case.type_,
        "created": case.created(), "livemode": false, "api_version": case.version,
        "pending_webhooks": 1, "data": {"object": shape.object},
        "request": if old { Value::Null } else { json!({"id": null, "idempotency_key": null}) },
    });
    if let Some(account) = &shape.account {
        event[if old { "user_id" } else { "account" }] = account.clone().into();
    }
    event
}

/// `base` with the members of `extra` added or replaced.
fn with(mut base: Value, extra: Value) -> Value {
    if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
        b.extend(e);
    }
    base
}

/// A list object as each era sent it (with a `count` until 2014-03-28).
fn list(version: &str, url: String, data: Vec<Value>) -> Value {
    let mut list = json!({"object": "list", "has_more": false, "url": url});
    if version < "2014-03-28" {
        list["count"] = data.len().into();
    }
    list["data"] = data.into();
    list
}

// ---- customers and subscriptions ---------------------------------------------------

/// A subscription object as `version` shapes it: before 2014-01-31 without an id, a
/// plan and quantity on it and no items; until 2020 items with plans; then prices, and
/// from basil the period on the items only.
fn subscription_object(version: &str, sub: &Sub, amount: i64, created: i64) -> Value {
    let plan = json!({
        "id": sub.price, "object": "plan", "amount": amount, "currency": "usd",
        "interval": "month", "interval_count": 1, "livemode": false,
    });
    let period = json!({
        "current_period_start": sub.period_end - 30 * DAY,
        "current_period_end": sub.period_end,
    });
    let mut o = json!({
        "object": "subscription", "customer": sub.customer, "status": sub.status,
        "cancel_at_period_end": false, "created": created, "livemode": false,
        "metadata": {}, "canceled_at": null, "ended_at": null,
        "trial_start": null, "trial_end": null,
    });
    match sub.status {
        "canceled" => {
            o["canceled_at"] = created.into();
            o["ended_at"] = created.into();
        }
        "trialing" => {
            o["trial_start"] = (sub.period_end - 30 * DAY).into();
            o["trial_end"] = sub.period_end.into();
        }
        _ => {}
    }
    if version < MULTIPLE_SUBSCRIPTIONS {
        let plan = with(plan, json!({"name": "Gold", "trial_period_days": null}));
        return with(
            with(o, period),
            json!({"plan": plan, "quantity": sub.quantity, "start": created}),
        );
    }
    o["id"] = sub.key.clone().into();
    let item_id = format!("si_{}", &sub.key[4..]);
    let product = format!("prod_{}", &sub.key[4..]);
    let items_url = format!("/v1/subscription_items?subscription={}", sub.key);
    if version < NO_EMBEDDED_LISTS {
        let plan = with(
            plan,
            json!({"product": product, "nickname": null, "usage_type": "licensed"}),
        );
        let item = json!({"id": item_id, "object": "subscription_item", "created": created,
                          "plan": plan, "quantity": sub.quantity});
        return with(
            with(o, period),
            json!({"plan": plan, "quantity": sub.quantity, "start": created,
                   "billing": "charge_automatically", "discount": null,
                   "items": list(version, items_url, vec![item])}),
        );
    }
    let price = json!({
        "id": sub.price, "object": "price", "unit_amount": amount, "currency": "usd",
        "recurring": {"interval": "month", "interval_count": 1, "usage_type": "licensed"},
        "type": "recurring", "product": product, "active": true,
    });
    let mut item = json!({"id": item_id, "object": "subscription_item", "created": created,
                          "price": price, "plan": with(plan, json!({"product": product})),
                          "quantity": sub.quantity});
    let o = with(
        o,
        json!({"start_date": created, "currency": "usd", "discounts": [],
               "collection_method": "charge_automatically"}),
    );
    if version < BASIL {
        let o = with(o, json!({"discount": null}));
        return with(
            with(o, period),
            json!({"items": list(version, items_url, vec![item])}),
        );
    }
    item = with(item, period);
    with(
        o,
        json!({"items": list(version, items_url, vec![item]),
               "billing_mode": {"type": "flexible"}}),
    )
}

fn customer(case: &Case) -> Shape {
    let id = case.id("cus");
    let name = format!("Shape {}", case.tag());
    let deleted = case.verb() == "deleted";
    let sub = Sub {
        key: if case.before(MULTIPLE_SUBSCRIPTIONS) {
            id.clone()
        } else {
            case.id("sub")
        },
        customer: id.clone(),
        status: if deleted { "canceled" } else { "active" },
        price: case.id("plan"),
        quantity: case.quantity(),
        period_end: case.period_end(),
        in_store: false,
    };
    let embedded = subscription_object(case.version, &sub, case.amount(), case.created());
    let o = json!({
        "id": id, "object": "customer", "created": case.created() - DAY, "livemode": false,
        "name": name, "email": null, "currency": "usd", "delinquent": false, "metadata": {},
    });
    let card = json!({"id": case.id("card"), "object": "card", "last4": "4242",
                      "exp_month": 12, "exp_year": 2030, "customer": id});
    let (o, default_pm, subscription) = if case.before(MULTIPLE_SUBSCRIPTIONS) {
        // One subscription, embedded; cards, not sources.
        let cards = list(
            case.version,
            format!("/v1/customers/{id}/cards"),
            vec![card],
        );
        let o = with(
            o,
            json!({"default_card": case.id("card"), "cards": cards, "account_balance": 0,
                   "subscription": embedded}),
        );
        (o, case.id("card"), Some(sub))
    } else if case.before(NO_EMBEDDED_LISTS) {
        // The list of subscriptions, sources, and the default source.
        let sources = list(
            case.version,
            format!("/v1/customers/{id}/sources"),
            vec![card],
        );
        let subscriptions = list(
            case.version,
            format!("/v1/customers/{id}/subscriptions"),
            vec![embedded],
        );
        let o = with(
            o,
            json!({"default_source": case.id("card"), "sources": sources,
                   "subscriptions": subscriptions, "account_balance": 0,
                   "invoice_settings": {"default_payment_method": null}}),
        );
        (o, case.id("card"), Some(sub))
    } else {
        // No lists any more; the default payment method in the invoice settings.
        let o = with(
            o,
            json!({"default_source": null, "balance": 0, "invoice_prefix": "SHAPE",
                   "invoice_settings": {"default_payment_method": case.id("pm"),
                                        "custom_fields": null, "footer": null}}),
        );
        (o, case.id("pm"), None)
    };
    Shape::new(
        o,
        Expect::Customer {
            id,
            name,
            default_pm,
            deleted,
            subscription,
        },
    )
}

fn subscription(case: &Case) -> Shape {
    let status = match case.verb() {
        "deleted" => "canceled",
        "trial_will_end" => "trialing",
        "paused" => "paused",
        _ => "active",
    };
    let old = case.before(MULTIPLE_SUBSCRIPTIONS);
    let customer = case.id("cus");
    let sub = Sub {
        key: if old {
            customer.clone()
        } else {
            case.id("sub")
        },
        customer,
        status,
        price: if case.before(NO_EMBEDDED_LISTS) {
            case.id("plan")
        } else {
            case.id("price")
        },
        quantity: case.quantity(),
        period_end: case.period_end(),
        in_store: old,
    };
    let object = subscription_object(case.version, &sub, case.amount(), case.created());
    Shape::new(object, Expect::Subscription(sub))
}

// ---- coupons and discounts ---------------------------------------------------------

/// A coupon: a whole percentage in 2013, a name and a fraction later, an amount off in
/// basil.
fn coupon_object(version: &str, id: &str, created: i64) -> (Value, Option<i64>, Option<i64>) {
    let o = json!({"id": id, "object": "coupon", "livemode": false, "metadata": {},
                   "max_redemptions": null, "redeem_by": null, "times_redeemed": 0,
                   "valid": true});
    if version < V2014 {
        let o = with(
            o,
            json!({"percent_off": 25, "amount_off": null, "currency": null,
                   "duration": "repeating", "duration_in_months": 3}),
        );
        (o, Some(2500), None)
    } else if version < BASIL {
        let o = with(
            o,
            json!({"name": "Spring", "created": created, "percent_off": 12.5,
                   "amount_off": null, "currency": null, "duration": "forever",
                   "duration_in_months": null}),
        );
        (o, Some(1250), None)
    } else {
        let o = with(
            o,
            json!({"name": "Ten off", "created": created, "percent_off": null,
                   "amount_off": 1000, "currency": "usd", "duration": "once",
                   "duration_in_months": null, "applies_to": {"products": []}}),
        );
        (o, None, Some(1000))
    }
}

fn coupon(case: &Case) -> Shape {
    let id = case.id("coupon");
    let (o, percent_off_bp, amount_off) = coupon_object(case.version, &id, case.created());
    Shape::new(
        o,
        Expect::Coupon {
            id,
            percent_off_bp,
            amount_off,
            deleted: case.verb() == "deleted",
        },
    )
}

/// A discount: without an id and with its coupon embedded until ids came (a customer's
/// own before subscriptions were many, then a subscription's); from basil it names its
/// coupon under `source`.
fn discount(case: &Case) -> Shape {
    let (customer, subscription, coupon) = (case.id("cus"), case.id("sub"), case.id("coupon"));
    let start = case.created();
    let (embedded, _, _) = coupon_object(case.version, &coupon, start);
    let o = json!({"object": "discount", "customer": customer, "start": start, "end": null});
    let (o, key) = if case.before(MULTIPLE_SUBSCRIPTIONS) {
        let key = format!("{customer}_{coupon}_{start}");
        (with(o, json!({"coupon": embedded})), key)
    } else if case.before(V2022) {
        let key = format!("{subscription}_{coupon}_{start}");
        (
            with(o, json!({"coupon": embedded, "subscription": subscription})),
            key,
        )
    } else if case.before(BASIL) {
        let o = with(
            o,
            json!({"id": case.id("di"), "coupon": embedded, "subscription": subscription,
                   "promotion_code": null, "invoice": null, "invoice_item": null}),
        );
        (o, case.id("di"))
    } else {
        let o = with(
            o,
            json!({"id": case.id("di"), "source": {"type": "coupon", "coupon": coupon},
                   "subscription": subscription, "promotion_code": null,
                   "invoice": null, "invoice_item": null, "subscription_item": null}),
        );
        (o, case.id("di"))
    };
    Shape::new(
        o,
        Expect::Discount {
            key,
            coupon,
            customer,
            deleted: case.verb() == "deleted",
        },
    )
}

// ---- invoices ----------------------------------------------------------------------

fn invoice_status(verb: &str) -> &'static str {
    match verb {
        "paid" | "payment_succeeded" | "overpaid" => "paid",
        "voided" => "void",
        "marked_uncollectible" => "uncollectible",
        "created" | "deleted" | "finalization_failed" | "upcoming" => "draft",
        _ => "open",
    }
}

/// An invoice: `date`, `paid`, `closed` and `forgiven` but no status in 2013; `created`,
/// a status and its payment intent from 2019; its subscription under `parent` from
/// basil.
fn invoice(case: &Case) -> Shape {
    let (id, customer, subscription) = (case.id("in"), case.id("cus"), case.id("sub"));
    let status = invoice_status(case.verb());
    let amount = case.amount();
    let paid = status == "paid";
    let attempts = i64::from(status != "draft");
    let line = json!({"id": format!("il_{}", case.tag()), "object": "line_item",
                      "amount": amount, "currency": "usd", "quantity": 1,
                      "period": {"start": NOW, "end": NOW + 30 * DAY}});
    let o = json!({
        "object": "invoice", "customer": customer, "currency": "usd",
        "amount_due": amount, "subtotal": amount, "total": amount,
        "attempt_count": attempts, "attempted": attempts > 0, "livemode": false,
        "period_start": NOW, "period_end": NOW + 30 * DAY, "metadata": {},
        "lines": list(case.version, format!("/v1/invoices/{id}/lines"), vec![line]),
    });
    let upcoming = case.verb() == "upcoming";
    let (o, stored_status, payment_intent) = if case.before(INVOICE_CREATED) {
        // 2013: no status; what the flags say of it.
        let forgiven = status == "uncollectible";
        let o = with(
            o,
            json!({"date": case.created(), "paid": paid || forgiven, "forgiven": forgiven,
                   "closed": paid || forgiven || status == "void",
                   "subscription": subscription, "charge": null,
                   "next_payment_attempt": null}),
        );
        let stored = match status {
            "paid" | "uncollectible" => status,
            _ => "open",
        };
        (o, stored, None)
    } else if case.before(BASIL) {
        let o = with(
            o,
            json!({"created": case.created(), "status": status, "number": format!("SHAPE-{}", case.n),
                   "paid": paid, "amount_paid": if paid { amount } else { 0 },
                   "amount_remaining": if paid { 0 } else { amount },
                   "subscription": subscription, "payment_intent": case.id("pi"),
                   "charge": null, "auto_advance": true,
                   "billing_reason": "subscription_cycle"}),
        );
        (o, status, Some(case.id("pi")))
    } else {
        let o = with(
            o,
            json!({"created": case.created(), "status": status, "number": format!("SHAPE-{}", case.n),
                   "amount_paid": if paid { amount } else { 0 },
                   "amount_remaining": if paid { 0 } else { amount },
                   "parent": {"type": "subscription_details", "quote_details": null,
                              "subscription_details": {"subscription": subscription,
                                                       "metadata": {}}},
                   "auto_advance": true, "billing_reason": "subscription_cycle"}),
        );
        (o, status, None)
    };
    let mut o = o;
    if upcoming {
        // A preview: no id in the older versions, a preview's own from basil.
        if !case.before(BASIL) {
            o["id"] = format!("upcoming_{id}").into();
        }
        return Shape::new(o, Expect::NoInvoice { customer });
    }
    o["id"] = id.clone().into();
    if case.verb() == "deleted" {
        return Shape::new(o, Expect::DeletedInvoice { id, customer });
    }
    let flag = match case.verb() {
        "payment_failed" => Some(Flag {
            kind: "payment_failed",
            object: id.clone(),
            status: "open",
            detail: format!("invoice {id} payment failed: attempt 1, amount_due {amount} usd"),
        }),
        "payment_action_required" => Some(Flag {
            kind: "payment_action_required",
            object: id.clone(),
            status: "open",
            detail: format!(
                "invoice {id} payment needs the customer's action: amount_due {amount} usd"
            ),
        }),
        _ => None,
    };
    Shape::new(
        o,
        Expect::Invoice {
            id,
            customer,
            status: stored_status,
            amount_due: amount,
            subscription,
            payment_intent,
            created: case.created(),
        },
    )
    .flag(flag)
}

// ---- payments: charges, refunds, payment intents -----------------------------------

/// A charge: `status: paid` for succeeded, a card and its refunds in an array in 2013; a
/// source, a payment intent and a refund list in 2019; no refunds from 2022-11-15; no
/// invoice from basil.
fn charge(case: &Case) -> Shape {
    let (ch, customer, invoice, pi) = (case.id("ch"), case.id("cus"), case.id("in"), case.id("pi"));
    let amount = case.amount();
    let status = match case.verb() {
        "failed" => "failed",
        "pending" => "pending",
        _ => "succeeded",
    };
    let amount_refunded = match case.verb() {
        "refunded" => amount / 2,
        "expired" => amount,
        _ => 0,
    };
    let failure_code = (status == "failed").then_some("card_declined");
    let refund = json!({"id": case.id("re"), "object": "refund", "amount": amount_refunded,
                        "currency": "usd", "created": case.created(),
                        "balance_transaction": case.id("txn"), "metadata": {}});
    let refunds = if case.verb() == "refunded" {
        vec![refund]
    } else {
        Vec::new()
    };
    let o = json!({
        "id": ch, "object": "charge", "amount": amount, "amount_refunded": amount_refunded,
        "currency": "usd", "created": case.created(), "livemode": false,
        "paid": status == "succeeded", "captured": !matches!(case.verb(), "pending" | "expired"),
        "refunded": amount_refunded == amount, "customer": customer,
        "failure_code": failure_code, "failure_message": failure_code.map(|_| "Your card was declined."),
        "description": null, "metadata": {}, "dispute": null,
    });
    let card = json!({"id": case.id("card"), "object": "card", "last4": "4242",
                      "exp_month": 12, "exp_year": 2030});
    let url = format!("/v1/charges/{ch}/refunds");
    let outcome = json!({"type": if status == "failed" { "issuer_declined" } else { "authorized" },
                         "risk_level": "normal", "network_status": "approved_by_network"});
    let (o, payment, has_invoice) = if case.before(REFUNDS_LISTED) {
        // The refunds in a bare array, naming no charge: the parent's.
        let o = with(
            o,
            json!({"status": if status == "succeeded" { "paid" } else { status },
                   "card": with(card, json!({"type": "Visa"})), "invoice": invoice,
                   "refunds": refunds}),
        );
        (o, ch.clone(), true)
    } else if case.before(LATEST_CHARGE) {
        let refunds: Vec<Value> = refunds
            .into_iter()
            .map(|r| with(r, json!({"charge": ch, "payment_intent": pi})))
            .collect();
        let o = with(
            o,
            json!({"status": status, "source": with(card, json!({"brand": "Visa"})),
                   "payment_method": case.id("card"), "payment_intent": pi,
                   "invoice": invoice, "outcome": outcome,
                   "refunds": list(case.version, url, refunds)}),
        );
        (o, pi.clone(), true)
    } else {
        let details = json!({"type": "card", "card": {"brand": "visa", "last4": "4242",
                             "exp_month": 12, "exp_year": 2030}});
        let mut o = with(
            o,
            json!({"status": status, "payment_method": case.id("pm"), "payment_intent": pi,
                   "payment_method_details": details, "outcome": outcome,
                   "amount_captured": if status == "succeeded" { amount } else { 0 }}),
        );
        if case.before(BASIL) {
            o["invoice"] = invoice.clone().into();
        }
        (o, pi.clone(), case.before(BASIL))
    };
    let listed_refund = (case.verb() == "refunded" && case.before(LATEST_CHARGE))
        .then(|| (case.id("re"), amount_refunded));
    let flag = (status == "failed").then(|| Flag {
        kind: "payment_failed",
        object: if has_invoice {
            invoice.clone()
        } else {
            payment.clone()
        },
        status: "open",
        detail: format!("payment {payment} failed: card_declined, amount {amount} usd"),
    });
    Shape::new(
        o,
        Expect::Payment {
            customer,
            id: payment,
            status,
            amount,
            amount_refunded,
            charge: Some(ch),
            invoice: has_invoice.then_some(invoice),
            failure_code,
            refund: listed_refund,
        },
    )
    .flag(flag)
}

/// A refund: of a charge only and without a status in 2014; with its payment intent and
/// status from 2019; with its destination's details in basil.
fn refund(case: &Case) -> Shape {
    let (id, ch, pi) = (case.id("re"), case.id("ch"), case.id("pi"));
    let status = if case.verb() == "failed" {
        "failed"
    } else {
        "succeeded"
    };
    let o = json!({"id": id, "object": "refund", "amount": case.amount(), "currency": "usd",
                   "created": case.created(), "charge": ch, "metadata": {},
                   "balance_transaction": case.id("txn"), "receipt_number": null});
    let (o, payment, stored) = if case.before(V2019) {
        // No status yet; refund.failed states it.
        let stored = (status == "failed").then_some("failed");
        (o, ch, stored)
    } else {
        let mut o = with(
            o,
            json!({"status": status, "payment_intent": pi, "reason": "requested_by_customer"}),
        );
        if !case.before(BASIL) {
            o["destination_details"] = json!({"type": "card", "card": {"type": "refund",
                "reference": null, "reference_status": "pending", "reference_type": "acquirer_reference_number"}});
        }
        (o, pi, Some(status))
    };
    Shape::new(
        o,
        Expect::Refund {
            id,
            payment,
            amount: case.amount(),
            status: stored,
        },
    )
}

/// A payment intent: old status names, sources and its charges listed before
/// 2019-02-11; payment methods and the charge list until 2022-11-15, `latest_charge`
/// after; no invoice from basil.
fn payment_intent(case: &Case) -> Shape {
    let (pi, customer, invoice, ch) = (case.id("pi"), case.id("cus"), case.id("in"), case.id("ch"));
    let amount = case.amount();
    let (object_status, stored) = match case.verb() {
        "created" => ("requires_payment_method", "requires_payment_method"),
        "processing" => ("processing", "processing"),
        "requires_action" | "partially_funded" => ("requires_action", "requires_action"),
        "amount_capturable_updated" => ("requires_capture", "requires_capture"),
        "succeeded" => ("succeeded", "succeeded"),
        "payment_failed" => ("requires_payment_method", "failed"),
        _ => ("canceled", "canceled"),
    };
    let failed = case.verb() == "payment_failed";
    let error = failed.then(|| {
        json!({"type": "card_error", "code": "card_declined",
               "decline_code": "insufficient_funds", "message": "Your card has insufficient funds."})
    });
    let charge = json!({"id": ch, "object": "charge", "amount": amount, "currency": "usd",
                        "status": "succeeded", "payment_intent": pi});
    let charges = if object_status == "succeeded" {
        vec![charge]
    } else {
        Vec::new()
    };
    let o = json!({
        "id": pi, "object": "payment_intent", "amount": amount, "currency": "usd",
        "customer": customer, "created": case.created(), "livemode": false,
        "last_payment_error": error, "metadata": {}, "capture_method": "automatic",
        "canceled_at": if object_status == "canceled" { json!(case.created()) } else { Value::Null },
        "cancellation_reason": if object_status == "canceled" { json!("requested_by_customer") } else { Value::Null },
    });
    let charges_url = format!("/v1/charges?payment_intent={pi}");
    let o = if case.before(PI_STATUSES_RENAMED) {
        let old_status = match object_status {
            "requires_payment_method" => "requires_source",
            "requires_action" => "requires_source_action",
            other => other,
        };
        with(
            o,
            json!({"status": old_status, "allowed_source_types": ["card"], "source": null,
                   "next_source_action": null, "invoice": invoice,
                   "charges": list(case.version, charges_url, charges)}),
        )
    } else if case.before(LATEST_CHARGE) {
        with(
            o,
            json!({"status": object_status, "payment_method_types": ["card"],
                   "payment_method": null, "next_action": null, "invoice": invoice,
                   "charges": list(case.version, charges_url, charges)}),
        )
    } else {
        let latest = if charges.is_empty() {
            Value::Null
        } else {
            ch.into()
        };
        let o = with(
            o,
            json!({"status": object_status, "payment_method_types": ["card"],
                   "automatic_payment_methods": {"enabled": true}, "latest_charge": latest}),
        );
        if case.before(BASIL) {
            with(o, json!({"invoice": invoice}))
        } else {
            with(o, json!({"amount_details": {"tip": {}}}))
        }
    };
    let has_invoice = case.before(BASIL);
    let flag = failed.then(|| Flag {
        kind: "payment_failed",
        object: if has_invoice {
            invoice.clone()
        } else {
            pi.clone()
        },
        status: "open",
        detail: format!("payment {pi} failed: card_declined, amount {amount} usd"),
    });
    Shape::new(
        o,
        Expect::Payment {
            customer,
            id: pi,
            status: stored,
            amount,
            amount_refunded: 0,
            charge: None,
            invoice: has_invoice.then_some(invoice),
            failure_code: failed.then_some("card_declined"),
            refund: None,
        },
    )
    .flag(flag)
}

/// A payment method: the read fields never moved; each version adds its own around
/// them (3-D Secure usage in 2018, networks in 2020, the display brand and redisplay
/// consent in dahlia).
fn payment_method(case: &Case) -> Shape {
    let (id, customer) = (case.id("pm"), case.id("cus"));
    let detached = case.verb() == "detached";
    let last4 = format!("{:04}", case.n % 10_000);
    let exp_year = 2030 + case.n % 5;
    let card = json!({"brand": "visa", "last4": last4, "exp_month": 8, "exp_year": exp_year,
                      "fingerprint": case.id("fp"), "country": "US", "funding": "credit",
                      "checks": {"cvc_check": "pass"}});
    let card = if case.before(V2020) {
        with(card, json!({"three_d_secure_usage": {"supported": true}}))
    } else if case.before(DAHLIA) {
        with(
            card,
            json!({"networks": {"available": ["visa"], "preferred": null}, "wallet": null}),
        )
    } else {
        with(
            card,
            json!({"display_brand": "visa", "regulated_status": "unregulated",
                   "networks": {"available": ["visa"], "preferred": null}}),
        )
    };
    let mut o = json!({
        "id": id, "object": "payment_method", "type": "card", "card": card,
        "customer": if detached { Value::Null } else { customer.clone().into() },
        "created": case.created(), "livemode": false, "metadata": {},
        "billing_details": {"address": {"city": null, "country": null, "line1": null,
                            "line2": null, "postal_code": null, "state": null},
                            "email": null, "name": null, "phone": null},
    });
    if !case.before(DAHLIA) {
        o["allow_redisplay"] = "unspecified".into();
    }
    Shape::new(
        o,
        Expect::PaymentMethod {
            id,
            customer: (!detached).then_some(customer),
            last4,
            exp_year,
        },
    )
}

// ---- the catalog -------------------------------------------------------------------

/// A product: a good with SKUs in 2016, a service from 2018-02-05, with a default price
/// in dahlia.
fn product(case: &Case) -> Shape {
    let id = case.id("prod");
    let name = format!("Product {}", case.n);
    let deleted = case.verb() == "deleted";
    let o = json!({"id": id, "object": "product", "name": name, "active": !deleted,
                   "created": case.created(), "updated": case.created(), "livemode": false,
                   "description": null, "images": [], "metadata": {}});
    let o = if case.before(PLANS_OF_PRODUCTS) {
        with(
            o,
            json!({"type": "good", "shippable": true, "attributes": ["size"], "caption": null,
                   "package_dimensions": null, "url": null,
                   "skus": list(case.version, format!("/v1/skus?product={id}"), vec![])}),
        )
    } else if case.before(DAHLIA) {
        with(
            o,
            json!({"type": "service", "statement_descriptor": null, "unit_label": null}),
        )
    } else {
        with(
            o,
            json!({"default_price": case.id("price"), "marketing_features": [],
                   "tax_code": null, "unit_label": null}),
        )
    };
    Shape::new(o, Expect::Product { id, name, deleted })
}

/// A price, or a legacy plan: a plan of 2013 has a name, no product and no `created`;
/// from 2018-02-05 a product and a nickname; prices lose `aggregate_usage` in basil.
fn price(case: &Case) -> Shape {
    let is_plan = case.family == Family::Plan;
    let id = case.id(if is_plan { "plan" } else { "price" });
    let product = case.id("prod");
    let nickname = format!("Nick {}", case.n);
    let deleted = case.verb() == "deleted";
    let amount = case.amount();
    let base = json!({"id": id, "currency": "usd", "livemode": false, "metadata": {}});
    let old_plan = is_plan && case.before(PLANS_OF_PRODUCTS);
    let o = if old_plan {
        with(
            base,
            json!({"object": "plan", "amount": amount, "interval": "month",
                   "interval_count": 1, "name": nickname, "trial_period_days": null}),
        )
    } else if is_plan {
        let mut o = with(
            base,
            json!({"object": "plan", "amount": amount, "interval": "month",
                   "interval_count": 1, "product": product, "nickname": nickname,
                   "active": !deleted, "created": case.created(), "billing_scheme": "per_unit",
                   "usage_type": "licensed", "tiers_mode": null, "transform_usage": null}),
        );
        if case.before(BASIL) {
            o["aggregate_usage"] = Value::Null;
        } else {
            o["meter"] = Value::Null;
            o["amount_decimal"] = amount.to_string().into();
        }
        o
    } else {
        let recurring = if case.before(BASIL) {
            json!({"interval": "month", "interval_count": 1, "usage_type": "licensed",
                   "aggregate_usage": null, "trial_period_days": null})
        } else {
            json!({"interval": "month", "interval_count": 1, "usage_type": "licensed",
                   "meter": null})
        };
        let mut o = with(
            base,
            json!({"object": "price", "unit_amount": amount,
                   "unit_amount_decimal": amount.to_string(), "type": "recurring",
                   "recurring": recurring, "product": product, "nickname": nickname,
                   "active": !deleted, "created": case.created(), "billing_scheme": "per_unit",
                   "lookup_key": null, "tiers_mode": null, "transform_quantity": null}),
        );
        if !case.before(V2022) {
            o["tax_behavior"] = "unspecified".into();
            o["custom_unit_amount"] = Value::Null;
        }
        o
    };
    // A deleted stub (a plan of 2013 has no `created`) only deletes.
    let written = !deleted || !old_plan;
    Shape::new(
        o,
        Expect::Price {
            id,
            unit_amount: written.then_some(amount),
            // A plan of 2013 names itself `name`: read as the nickname.
            nickname: written.then_some(nickname),
            product: (written && !old_plan).then_some(product),
            deleted,
        },
    )
}

// ---- Checkout ----------------------------------------------------------------------

/// A Checkout session: display items and no amounts or payment status in 2019; the
/// total and payment status from 2020-08-27; a status of its own in dahlia.
fn checkout(case: &Case) -> Shape {
    let (id, customer, pi) = (case.id("cs_test"), case.id("cus"), case.id("pi"));
    let amount = case.amount();
    let (status, payment_status) = match case.verb() {
        "expired" => ("expired", "unpaid"),
        "async_payment_failed" => ("complete", "unpaid"),
        _ => ("complete", "paid"),
    };
    let o = json!({"id": id, "object": "checkout.session", "mode": "payment",
                   "customer": customer, "payment_intent": pi, "subscription": null,
                   "livemode": false, "client_reference_id": null, "metadata": {},
                   "payment_method_types": ["card"], "success_url": "https://example.com/ok",
                   "cancel_url": "https://example.com/back"});
    let (o, amount_total, stored_payment_status) = if case.before(V2020) {
        let item = json!({"amount": amount, "currency": "usd", "quantity": 1, "type": "custom",
                          "custom": {"name": "Shape", "description": null, "images": null}});
        let o = with(
            o,
            json!({"display_items": [item], "customer_email": null, "locale": null,
                   "billing_address_collection": null, "submit_type": null}),
        );
        (o, None, None)
    } else {
        let mut o = with(
            o,
            json!({"amount_total": amount, "amount_subtotal": amount, "currency": "usd",
                   "payment_status": payment_status, "allow_promotion_codes": null,
                   "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}}),
        );
        if !case.before(DAHLIA) {
            o = with(
                o,
                json!({"status": status, "created": case.created(),
                       "expires_at": case.created() + DAY, "ui_mode": "hosted", "url": null}),
            );
        }
        (o, Some(amount), Some(payment_status))
    };
    let flag = (case.verb() == "async_payment_failed").then(|| Flag {
        kind: "payment_failed",
        object: pi.clone(),
        status: "open",
        detail: match amount_total {
            Some(a) => format!("checkout session async payment failed, amount {a} usd"),
            None => "checkout session async payment failed, amount 0".to_string(),
        },
    });
    Shape::new(
        o,
        Expect::Checkout {
            id,
            customer,
            payment_intent: pi,
            amount_total,
            payment_status: stored_payment_status,
        },
    )
    .flag(flag)
}

// ---- Connect -----------------------------------------------------------------------

/// A connected account: `charge_enabled` and `transfer_enabled` in 2013; `managed`,
/// `transfers_enabled`, `verification` and a legal entity in 2016; `type`,
/// `payouts_enabled` and `requirements` from 2019; a controller in dahlia.
fn account(case: &Case) -> Shape {
    let id = case.id("acct");
    let o = json!({"id": id, "object": "account", "details_submitted": true,
                   "default_currency": "usd", "metadata": {}});
    let (o, expect, flag) = if case.before(ACCOUNT_FIELDS_RENAMED) {
        let o = with(
            o,
            json!({"charge_enabled": true, "transfer_enabled": false, "country": "US",
                   "currencies_supported": ["usd"], "statement_descriptor": "SHAPE",
                   "display_name": "Shop", "timezone": "Etc/UTC"}),
        );
        (o, (None, true, false, vec![], None), None)
    } else if case.before(V2019) {
        let due = ["legal_entity.dob.day", "legal_entity.first_name"];
        let o = with(
            o,
            json!({"managed": true, "charges_enabled": false, "transfers_enabled": true,
                   "country": "DE", "display_name": "Shop", "support_phone": null,
                   "legal_entity": {"type": "individual", "first_name": null, "last_name": null,
                                    "dob": {"day": null, "month": null, "year": null}},
                   "verification": {"fields_needed": due, "due_by": null,
                                    "disabled_reason": "fields_needed"},
                   "tos_acceptance": {"date": null, "ip": null},
                   "external_accounts": list(case.version, format!("/v1/accounts/{id}/external_accounts"), vec![])}),
        );
        let flag = format!("account {id} restricted: disabled_reason fields_needed");
        (
            o,
            (
                Some("custom"),
                false,
                true,
                due.to_vec(),
                Some("fields_needed"),
            ),
            Some(flag),
        )
    } else if case.before(DAHLIA) {
        let o = with(
            o,
            json!({"type": "express", "charges_enabled": true, "payouts_enabled": true,
                   "country": "FR", "capabilities": {"card_payments": "active", "transfers": "active"},
                   "business_profile": {"name": null, "url": null, "support_phone": null},
                   "requirements": {"currently_due": [], "eventually_due": [], "past_due": [],
                                    "current_deadline": null, "disabled_reason": null,
                                    "pending_verification": []}}),
        );
        (o, (Some("express"), true, true, vec![], None), None)
    } else {
        let requirements = json!({"currently_due": ["external_account"],
                                  "eventually_due": ["external_account"],
                                  "past_due": ["external_account"], "alternatives": [],
                                  "current_deadline": null, "errors": [],
                                  "disabled_reason": "requirements.past_due",
                                  "pending_verification": []});
        let o = with(
            o,
            json!({"type": "custom", "charges_enabled": false, "payouts_enabled": false,
                   "country": "NL", "controller": {"type": "application", "is_controller": true},
                   "requirements": requirements,
                   "future_requirements": {"currently_due": [], "past_due": [], "disabled_reason": null}}),
        );
        let flag = format!(
            "account {id} restricted: disabled_reason requirements.past_due; past due: external_account"
        );
        (
            o,
            (
                Some("custom"),
                false,
                false,
                vec!["external_account"],
                Some("requirements.past_due"),
            ),
            Some(flag),
        )
    };
    let (type_, charges_enabled, payouts_enabled, currently_due, disabled_reason) = expect;
    let flag = flag.map(|detail| Flag {
        kind: "account_restricted",
        object: id.clone(),
        status: "open",
        detail,
    });
    Shape::new(
        o,
        Expect::Account {
            id: id.clone(),
            type_,
            charges_enabled,
            payouts_enabled,
            currently_due,
            disabled_reason,
        },
    )
    .flag(flag)
    .of_account(id)
}

/// The Connect objects billd applies without copying: the application (authorized and
/// deauthorized), payout accounts, capabilities and persons, in their versions' shapes.
fn connect_only(case: &Case) -> Shape {
    let account = case.id("acct");
    let o = match case.type_ {
        "account.application.authorized" | "account.application.deauthorized" => {
            json!({"id": case.id("ca"), "object": "application", "name": "Shape platform"})
        }
        "capability.updated" => {
            let mut o = json!({"id": "card_payments", "object": "capability",
                               "account": account, "requested": true,
                               "requested_at": case.created(), "status": "active",
                               "requirements": {"currently_due": [], "past_due": [],
                                                "disabled_reason": null}});
            if !case.before(DAHLIA) {
                o["future_requirements"] = json!({"currently_due": [], "past_due": []});
            }
            o
        }
        t if t.starts_with("person.") => {
            let mut o = json!({"id": case.id("person"), "object": "person", "account": account,
                               "created": case.created(), "first_name": null, "last_name": null,
                               "relationship": {"representative": true, "owner": false},
                               "requirements": {"currently_due": [], "past_due": []},
                               "verification": {"status": "unverified"}});
            if !case.before(V2022) {
                o["future_requirements"] = json!({"currently_due": [], "past_due": []});
            }
            o
        }
        _ => {
            let mut o = json!({"id": case.id("ba"), "object": "bank_account", "account": account,
                               "bank_name": "SHAPE BANK", "country": "US", "currency": "usd",
                               "last4": "6789", "status": "new", "default_for_currency": true,
                               "metadata": {}});
            if !case.before(DAHLIA) {
                o["available_payout_methods"] = json!(["standard"]);
            }
            o
        }
    };
    let expect = if case.family == Family::Deauthorized {
        Expect::AccountDeleted {
            id: account.clone(),
        }
    } else {
        Expect::NothingCopied {
            account: account.clone(),
        }
    };
    Shape::new(o, expect).of_account(account)
}

// ---- risk --------------------------------------------------------------------------

/// A dispute: no id and `evidence_due_by` at the top level in 2013 (known by its
/// charge); an id and `evidence_details` from 2014-12-08; its payment intent in basil.
fn dispute(case: &Case) -> Shape {
    let (ch, pi) = (case.id("ch"), case.id("pi"));
    let amount = case.amount();
    let due = case.created() + 7 * DAY;
    let status = match case.verb() {
        "closed" | "funds_reinstated" => "won",
        "updated" => "under_review",
        _ => "needs_response",
    };
    let o = json!({"object": "dispute", "charge": ch, "amount": amount, "currency": "usd",
                   "created": case.created(), "livemode": false, "reason": "fraudulent",
                   "status": status});
    let (o, key) = if case.before(EVIDENCE_DETAILS) {
        let o = with(
            o,
            json!({"evidence_due_by": due, "evidence": null,
                   "balance_transaction": case.id("txn")}),
        );
        (o, ch)
    } else {
        let mut o = with(
            o,
            json!({"id": case.id("dp"), "is_charge_refundable": false, "metadata": {},
                   "balance_transactions": [], "evidence": {"uncategorized_text": null},
                   "evidence_details": {"due_by": due, "has_evidence": false,
                                        "past_due": false, "submission_count": 0},
                   "payment_intent": null}),
        );
        if !case.before(BASIL) {
            o["payment_intent"] = pi.into();
            o["enhanced_eligibility_types"] = json!([]);
            o["payment_method_details"] = json!({"type": "card", "card": {"brand": "visa",
                "case_type": "chargeback", "network_reason_code": "10.4"}});
        }
        (o, case.id("dp"))
    };
    let resolved = case.verb() == "closed" && status == "won";
    let flag = Flag {
        kind: "dispute",
        object: key,
        status: if resolved { "resolved" } else { "open" },
        detail: format!(
            "fraudulent, {status}, {amount} usd, evidence due by {}",
            rfc3339(due)
        ),
    };
    Shape::new(o, Expect::Flagged).flag(Some(flag))
}

/// An early fraud warning: of a charge only in 2019, naming its payment intent too from
/// 2020.
fn fraud_warning(case: &Case) -> Shape {
    let id = case.id("issfr");
    let actionable = case.verb() == "created";
    let mut o = json!({"id": id, "object": "radar.early_fraud_warning",
                       "actionable": actionable, "charge": case.id("ch"),
                       "created": case.created(), "fraud_type": "made_with_stolen_card",
                       "livemode": false});
    if !case.before(V2020) {
        o["payment_intent"] = case.id("pi").into();
    }
    let flag = Flag {
        kind: "early_fraud_warning",
        object: id,
        status: "open",
        detail: format!(
            "made_with_stolen_card, actionable: {}",
            if actionable { "yes" } else { "no" }
        ),
    };
    Shape::new(o, Expect::Flagged).flag(Some(flag))
}

/// A review: of a charge and without a closed reason in 2016; with its payment intent,
/// why it opened and why it closed from 2019.
fn review(case: &Case) -> Shape {
    let id = case.id("prv");
    let closed = case.verb() == "closed";
    let mut o = json!({"id": id, "object": "review", "charge": case.id("ch"),
                       "created": case.created(), "livemode": false, "open": !closed,
                       "reason": if closed { "approved" } else { "rule" }});
    if !case.before(V2019) {
        o = with(
            o,
            json!({"payment_intent": case.id("pi"), "opened_reason": "rule",
                   "closed_reason": if closed { json!("approved") } else { Value::Null },
                   "ip_address": null, "session": null}),
        );
    }
    let (status, detail) = match (closed, case.before(V2019)) {
        (false, _) => ("open", "rule".to_string()),
        (true, true) => ("resolved", "closed: unknown".to_string()),
        (true, false) => ("resolved", "closed: approved".to_string()),
    };
    let flag = Flag {
        kind: "review",
        object: id,
        status,
        detail,
    };
    Shape::new(o, Expect::Flagged).flag(Some(flag))
}

// ---- the checks --------------------------------------------------------------------

/// Reads through the API and the store of one running app.
struct Reader<'a> {
    app: &'a TestApp,
    token: String,
}

impl Reader<'_> {
    async fn get(&self, path: &str) -> (u16, Value) {
        let response = self.app.get(path, &self.token).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// The one row of a list route, or why there is not exactly one.
    async fn only(&self, path: &str) -> Result<Value, String> {
        let (status, body) = self.get(path).await;
        match body["data"].as_array().map(Vec::as_slice) {
            Some([row]) if status == 200 => Ok(row.clone()),
            _ => Err(format!("GET {path}: {status} {body}")),
        }
    }

    /// Columns of a mirror row as text (the store's `CAST … AS TEXT`), `null` when
    /// absent.
    async fn columns(&self, table: Table, id: &str, names: &[&'static str]) -> Value {
        let (id, names) = (id.to_string(), names.to_vec());
        let values = self
            .app
            .store
            .run(move |c| {
                names
                    .iter()
                    .map(|n| Ok((*n, mirror::column(c, table, &id, n)?)))
                    .collect::<billd::store::Result<Vec<_>>>()
            })
            .await
            .unwrap();
        values
            .into_iter()
            .map(|(n, v)| (n.to_string(), v.map_or(Value::Null, Value::String)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    }

    /// Every flag, all pages.
    async fn flags(&self) -> BTreeMap<(String, String), Value> {
        let mut flags = BTreeMap::new();
        let mut after = String::new();
        loop {
            let (_, page) = self.get(&format!("/stripe/flags?limit=100{after}")).await;
            let rows = page["data"].as_array().cloned().unwrap_or_default();
            for f in &rows {
                let key = (text(&f["kind"]), text(&f["object_id"]));
                flags.insert(key, f.clone());
            }
            match rows.last() {
                Some(last) if page["has_more"] == true => {
                    after = format!("&starting_after={}", last["id"]);
                }
                _ => return flags,
            }
        }
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// The members of `got` that differ from `want`.
fn differences(got: &Value, want: &[(&str, Value)]) -> Vec<String> {
    want.iter()
        .filter(|(k, v)| &got[*k] != v)
        .map(|(k, v)| format!("{k}: {} (want {v})", got[*k]))
        .collect()
}

fn fail_on(problems: Vec<String>) -> Result<(), String> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn opt<T: Into<Value>>(v: Option<T>) -> Value {
    v.map_or(Value::Null, Into::into)
}

fn s(v: impl ToString) -> Value {
    Value::String(v.to_string())
}

/// The MRR a subscription counts for: a month of its price times its quantity, only
/// while active.
fn check_mrr(sub: &Sub, amount: i64, by_price: &BTreeMap<String, Value>) -> Vec<String> {
    let row = by_price.get(&sub.price);
    match (sub.status == "active", row) {
        (true, Some(row)) => differences(
            row,
            &[
                ("mrr", json!(amount * sub.quantity)),
                ("quantity", json!(sub.quantity)),
                ("subscriptions", json!(1)),
            ],
        ),
        (true, None) => vec![format!("price {} is not in the MRR report", sub.price)],
        (false, Some(row)) => vec![format!("{} subscription counted in MRR: {row}", sub.status)],
        (false, None) => vec![],
    }
}

fn check_subscription(got: &Value, sub: &Sub) -> Vec<String> {
    differences(
        got,
        &[
            ("id", s(&sub.key)),
            ("customer", s(&sub.customer)),
            ("status", s(sub.status)),
            ("price", s(&sub.price)),
            ("quantity", json!(sub.quantity)),
            ("current_period_end", s(rfc3339(sub.period_end))),
        ],
    )
}

async fn verify(
    r: &Reader<'_>,
    case: &Case,
    shape: &Shape,
    flags: &BTreeMap<(String, String), Value>,
    by_price: &BTreeMap<String, Value>,
) -> Result<(), String> {
    // The event itself: processed, with its version and account as sent.
    let (_, event) = r.get(&format!("/stripe/events/{}", case.id("evt"))).await;
    let mut problems = differences(
        &event,
        &[
            ("status", s("processed")),
            ("api_version", s(case.version)),
            ("account", opt(shape.account.clone())),
        ],
    );
    if let Some(flag) = &shape.flag {
        match flags.get(&(flag.kind.to_string(), flag.object.clone())) {
            Some(got) => problems.extend(differences(
                got,
                &[("status", s(flag.status)), ("detail", s(&flag.detail))],
            )),
            None => problems.push(format!("no {} flag on {}", flag.kind, flag.object)),
        }
    }
    let amount = case.amount();
    match &shape.expect {
        Expect::Customer {
            id,
            name,
            default_pm,
            deleted,
            subscription,
        } => {
            let (status, c) = r.get(&format!("/stripe/customers/{id}")).await;
            problems.extend(differences(
                &c,
                &[
                    ("name", s(name)),
                    ("deleted", json!(deleted)),
                    ("default_payment_method", s(default_pm)),
                ],
            ));
            let listed = c["subscriptions"].as_array().cloned().unwrap_or_default();
            match (subscription, listed.as_slice()) {
                (Some(sub), [got]) => {
                    problems.extend(check_subscription(got, sub));
                    problems.extend(check_mrr(sub, amount, by_price));
                    // The customer's own MRR now, from the same history.
                    let mrr = &c["mrr"][0]["mrr"];
                    let want = if sub.status == "active" {
                        json!(amount * sub.quantity)
                    } else {
                        Value::Null
                    };
                    if *mrr != want {
                        problems.push(format!("customer mrr: {mrr} (want {want})"));
                    }
                }
                (None, []) => {}
                _ => problems.push(format!("GET customer: {status}: subscriptions {listed:?}")),
            }
        }
        Expect::Subscription(sub) => {
            let got = if sub.in_store {
                let key = sub.key.clone();
                let row = r
                    .app
                    .store
                    .run(move |c| mirror::get_subscription(c, &key))
                    .await;
                row.map(|row| serde_json::to_value(row).unwrap())
                    .unwrap_or(Value::Null)
            } else {
                r.get(&format!("/stripe/subscriptions/{}", sub.key)).await.1
            };
            problems.extend(check_subscription(&got, sub));
            problems.extend(check_mrr(sub, amount, by_price));
        }
        Expect::Coupon {
            id,
            percent_off_bp,
            amount_off,
            deleted,
        } => {
            let got = r
                .columns(
                    Table::Coupons,
                    id,
                    &["percent_off_bp", "amount_off", "deleted"],
                )
                .await;
            problems.extend(differences(
                &got,
                &[
                    ("percent_off_bp", opt(percent_off_bp.map(s))),
                    ("amount_off", opt(amount_off.map(s))),
                    ("deleted", s(u8::from(*deleted))),
                ],
            ));
        }
        Expect::Discount {
            key,
            coupon,
            customer,
            deleted,
        } => {
            let got = r
                .columns(Table::Discounts, key, &["coupon", "customer", "deleted"])
                .await;
            problems.extend(differences(
                &got,
                &[
                    ("coupon", s(coupon)),
                    ("customer", s(customer)),
                    ("deleted", s(u8::from(*deleted))),
                ],
            ));
        }
        Expect::Invoice {
            id,
            customer,
            status,
            amount_due,
            subscription,
            payment_intent,
            created,
        } => match r
            .only(&format!("/stripe/invoices?customer={customer}"))
            .await
        {
            Ok(got) => problems.extend(differences(
                &got,
                &[
                    ("id", s(id)),
                    ("status", s(status)),
                    ("amount_due", json!(amount_due)),
                    ("subscription", s(subscription)),
                    ("payment_intent", opt(payment_intent.clone())),
                    ("created", s(rfc3339(*created))),
                ],
            )),
            Err(e) => problems.push(e),
        },
        Expect::NoInvoice { customer } => {
            let (_, list) = r
                .get(&format!("/stripe/invoices?customer={customer}"))
                .await;
            if list["data"] != json!([]) {
                problems.push(format!("a preview was mirrored: {list}"));
            }
        }
        Expect::DeletedInvoice { id, customer } => {
            let (_, list) = r
                .get(&format!("/stripe/invoices?customer={customer}"))
                .await;
            if list["data"] != json!([]) {
                problems.push(format!("a deleted invoice is listed: {list}"));
            }
            let got = r.columns(Table::Invoices, id, &["deleted"]).await;
            problems.extend(differences(&got, &[("deleted", s(1))]));
        }
        Expect::Payment {
            customer,
            id,
            status,
            amount,
            amount_refunded,
            charge,
            invoice,
            failure_code,
            refund,
        } => {
            match r
                .only(&format!("/stripe/payments?customer={customer}"))
                .await
            {
                Ok(got) => problems.extend(differences(
                    &got,
                    &[
                        ("id", s(id)),
                        ("status", s(status)),
                        ("amount", json!(amount)),
                        ("amount_refunded", json!(amount_refunded)),
                        ("currency", s("usd")),
                        ("charge", opt(charge.clone())),
                        ("invoice", opt(invoice.clone())),
                        ("failure_code", opt(*failure_code)),
                    ],
                )),
                Err(e) => problems.push(e),
            }
            if let Some((re, refunded)) = refund {
                let got = r
                    .columns(Table::Refunds, re, &["payment", "charge", "amount"])
                    .await;
                problems.extend(differences(
                    &got,
                    &[
                        ("payment", s(id)),
                        ("charge", opt(charge.clone())),
                        ("amount", s(refunded)),
                    ],
                ));
            }
        }
        Expect::Refund {
            id,
            payment,
            amount,
            status,
        } => {
            let got = r
                .columns(Table::Refunds, id, &["payment", "amount", "status"])
                .await;
            problems.extend(differences(
                &got,
                &[
                    ("payment", s(payment)),
                    ("amount", s(amount)),
                    ("status", opt(*status)),
                ],
            ));
        }
        Expect::PaymentMethod {
            id,
            customer,
            last4,
            exp_year,
        } => {
            let got = r
                .columns(
                    Table::PaymentMethods,
                    id,
                    &["customer", "card_brand", "card_last4", "exp_year", "raw"],
                )
                .await;
            problems.extend(differences(
                &got,
                &[
                    ("customer", opt(customer.clone())),
                    ("card_brand", s("visa")),
                    ("card_last4", s(last4)),
                    ("exp_year", s(exp_year)),
                ],
            ));
            let raw = text(&got["raw"]);
            if raw.contains("fingerprint") || raw.contains("billing_details") {
                problems.push(format!("kept what it must not: {raw}"));
            }
        }
        Expect::Product { id, name, deleted } => {
            let got = r
                .columns(Table::Products, id, &["name", "active", "deleted"])
                .await;
            problems.extend(differences(
                &got,
                &[
                    ("name", s(name)),
                    ("active", s(u8::from(!deleted))),
                    ("deleted", s(u8::from(*deleted))),
                ],
            ));
        }
        Expect::Price {
            id,
            unit_amount,
            nickname,
            product,
            deleted,
        } => {
            let names = [
                "unit_amount",
                "nickname",
                "product",
                "interval",
                "type",
                "deleted",
            ];
            let got = r.columns(Table::Prices, id, &names).await;
            let written = unit_amount.is_some();
            problems.extend(differences(
                &got,
                &[
                    ("unit_amount", opt(unit_amount.map(s))),
                    ("nickname", opt(nickname.clone())),
                    ("product", opt(product.clone())),
                    ("interval", opt(written.then(|| s("month")))),
                    ("type", opt(written.then(|| s("recurring")))),
                    ("deleted", s(u8::from(*deleted))),
                ],
            ));
        }
        Expect::Checkout {
            id,
            customer,
            payment_intent,
            amount_total,
            payment_status,
        } => {
            let names = [
                "mode",
                "customer",
                "payment_intent",
                "amount_total",
                "payment_status",
            ];
            let got = r.columns(Table::CheckoutSessions, id, &names).await;
            problems.extend(differences(
                &got,
                &[
                    ("mode", s("payment")),
                    ("customer", s(customer)),
                    ("payment_intent", s(payment_intent)),
                    ("amount_total", opt(amount_total.map(s))),
                    ("payment_status", opt(*payment_status)),
                ],
            ));
        }
        Expect::Account {
            id,
            type_,
            charges_enabled,
            payouts_enabled,
            currently_due,
            disabled_reason,
        } => {
            let (_, got) = r.get(&format!("/stripe/connect/accounts/{id}")).await;
            problems.extend(differences(
                &got,
                &[
                    ("type", opt(*type_)),
                    ("charges_enabled", json!(charges_enabled)),
                    ("payouts_enabled", json!(payouts_enabled)),
                    ("currently_due", json!(currently_due)),
                    ("disabled_reason", opt(*disabled_reason)),
                    ("deleted", json!(false)),
                ],
            ));
            // Contact and identity details are not kept, whatever a version names them.
            let raw = text(&r.columns(Table::Accounts, id, &["raw"]).await["raw"]);
            for gone in [
                "legal_entity\"",
                "display_name",
                "business_profile",
                "tos_acceptance",
            ] {
                if raw.contains(gone) {
                    problems.push(format!("the stored account keeps {gone}"));
                }
            }
        }
        Expect::AccountDeleted { id } => {
            let (_, got) = r.get(&format!("/stripe/connect/accounts/{id}")).await;
            problems.extend(differences(&got, &[("deleted", json!(true))]));
        }
        Expect::NothingCopied { account } => {
            let (status, _) = r.get(&format!("/stripe/connect/accounts/{account}")).await;
            if status != 404 {
                problems.push(format!("the account was written: GET answered {status}"));
            }
        }
        Expect::Flagged => {}
    }
    fail_on(problems)
}

#[test]
fn the_shapes_cover_exactly_the_handled_types() {
    let handled: BTreeSet<&str> = billd::events::handled_types().iter().copied().collect();
    let mut covered = BTreeSet::new();
    for (_, types, versions) in FAMILIES {
        assert!(versions.len() >= 3, "{types:?}: fewer than three versions");
        for t in *types {
            assert!(covered.insert(*t), "{t} is listed twice");
        }
    }
    let missing: Vec<_> = handled.difference(&covered).collect();
    let extra: Vec<_> = covered.difference(&handled).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "handled types without shapes: {missing:?}; shapes of types not handled: {extra:?}"
    );
    // Every case's event is well formed and its ids are its own.
    let mut ids = BTreeSet::new();
    for case in cases() {
        let shape = shape(&case);
        let event = envelope(&case, &shape);
        assert!(ids.insert(case.id("evt")), "{} repeats", case.id("evt"));
        assert!(event["data"]["object"].is_object(), "{}", case.tag());
        assert!(case.tag().len() < 200);
    }
}

#[tokio::test]
async fn every_handled_type_in_three_api_version_shapes_is_processed_and_mirrored() {
    let app = spawn_app().await;
    let cases = cases();
    let shapes: Vec<Shape> = cases.iter().map(shape).collect();
    for (case, shape) in cases.iter().zip(&shapes) {
        let response = app.post_event(&envelope(case, shape)).await;
        assert_eq!(response.status(), 200, "{}", case.tag());
    }
    app.drained().await;

    let reader = Reader {
        app: &app,
        token: app.token(Scope::Read).await,
    };
    let flags = reader.flags().await;
    let (_, mrr) = reader.get("/stripe/reports/mrr?currency=usd").await;
    let by_price: BTreeMap<String, Value> = mrr["data"][0]["by_price"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|row| (text(&row["price"]), row))
        .collect();

    let mut failures = Vec::new();
    for (case, shape) in cases.iter().zip(&shapes) {
        if let Err(e) = verify(&reader, case, shape, &flags, &by_price).await {
            failures.push(format!("{} ({}): {e}", case.type_, case.version));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    app.shutdown().await;
}

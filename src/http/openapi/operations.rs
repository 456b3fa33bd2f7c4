//! Every route of the API as an operation: the data of the document's `paths`.

use axum::http::Method;
use serde_json::{Value, json};

use super::op::*;

/// Errors of a call to Stripe: its 404, a parameter at fault, a refusal, rate limits,
/// its failures and its absence (503, added with the token's).
pub(super) const STRIPE: [u16; 5] = [400, 404, 422, 429, 502];

pub(super) fn operations() -> Vec<Op> {
    use Method as M;
    let customer_id = || path_param("id", "A customer id (`cus_…`).");
    let pm_id = || path_param("pm", "A payment method id (`pm_…`).");
    let subscription_id = || path_param("id", "A subscription id (`sub_…`).");
    let account_id = || path_param("id", "A connected account id (`acct_…`).");
    let event_id = || path_param("id", "An event id (`evt_…`).");
    vec![
        // ---- unauthenticated ----------------------------------------------------
        op(M::POST, "/stripe/webhook", "receiveWebhook", "webhook")
            .summary("Receive a Stripe event")
            .describe(
                "Stripe's webhook endpoint. Verifies `Stripe-Signature` over the raw body \
                 with the configured secret(s), stores the event durably (the 200 goes out \
                 only after it is on disk) and answers; workers apply it later. A redelivery \
                 answers `duplicate: true`. 400 `invalid_signature` for a bad signature or a \
                 stale timestamp, 400 `invalid_request` for a missing header or a body that \
                 is not an event; 413 over 1 MiB; 503 `storage_unavailable` when the event \
                 could not be stored (Stripe retries).",
            )
            .access(Access::Public)
            .params(vec![json!({
                "name": "Stripe-Signature", "in": "header", "required": true,
                "description": "Stripe's signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256 of \"t.body\">[,v1=…]`.",
                "schema": {"type": "string"},
                "example": "t=1700000000,v1=5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd",
            })])
            .body("StripeEvent", true)
            .answers(200, "WebhookReceived", "Stored (or already stored).")
            // 429: the per-address webhook limit, or too many failed signatures.
            .errors(&[400, 413, 429, 503]),
        op(M::GET, "/healthz", "healthz", "operations")
            .summary("Liveness")
            .describe("The process is alive.")
            .access(Access::Public)
            .answers(200, "Health", "Alive: `{\"status\": \"ok\"}`."),
        op(M::GET, "/readyz", "readyz", "operations")
            .summary("Readiness")
            .describe(
                "The database is reachable and migrated. 503 `not_migrated` when the schema \
                 is behind (run `billd migrate`), 503 `storage_unavailable` when the \
                 database cannot be reached.",
            )
            .access(Access::Public)
            .answers(200, "Health", "Ready: `{\"status\": \"ready\"}`.")
            .errors(&[503]),
        op(M::GET, "/openapi.json", "openapi", "operations")
            .summary("This document")
            .describe("The OpenAPI 3.1 document of billd's HTTP API.")
            .access(Access::Public)
            .answers_with(
                200,
                "The OpenAPI document.",
                json!({"application/json": {"schema": {"type": "object"}}}),
            ),
        op(M::GET, "/docs", "docs", "operations")
            .summary("This document, as a web page")
            .describe(
                "An HTML page that renders `/openapi.json` in the browser: every operation \
                 with its scope, parameters, request body and answers. It loads nothing \
                 from other hosts (`Content-Security-Policy` allows its own inline script \
                 and style by hash, and fetches from the same origin only).",
            )
            .access(Access::Public)
            .answers_with(
                200,
                "The page.",
                json!({"text/html": {"schema": {"type": "string"}}}),
            ),
        op(M::GET, "/metrics", "metrics", "operations")
            .summary("Prometheus metrics")
            .describe(
                "Prometheus text format: `billd_events{status}`, \
                 `billd_events_oldest_waiting_seconds`, `billd_flags_open{kind}`, \
                 `billd_webhooks_total{outcome}`. Inbox and flag figures are read from \
                 the database, so every process sharing it reports the same numbers.",
            )
            .access(Access::TokenUnlessConfigured)
            .answers_with(
                200,
                "The metrics.",
                json!({"text/plain; version=0.0.4": {"schema": {"type": "string"}}}),
            ),
        // ---- customers ----------------------------------------------------------
        op(M::POST, "/stripe/customers", "createCustomer", "customers")
            .summary("Create a customer")
            .describe(
                "Creates the customer in Stripe (with `payment_method`: attached and made \
                 the default), writes it through to the mirror and answers it as `GET` \
                 shows it. 402 when Stripe declines the payment method.",
            )
            .body("CustomerCreate", true)
            .answers(201, "Customer", "Created.")
            .errors(&STRIPE)
            .errors(&[402]),
        op(M::GET, "/stripe/customers/{id}", "getCustomer", "customers")
            .summary("A customer, from the mirror")
            .describe(
                "With its subscriptions, payment methods, open flags and `mrr`: its MRR \
                 now per currency, the rows `/stripe/reports/mrr` would answer if it were \
                 the only customer (trialing subscriptions apart, in `trialing_mrr`); \
                 empty when no subscription of it is active, past due or trialing.",
            )
            .params(vec![customer_id()])
            .answers(200, "CustomerWithMrr", "The customer.")
            .errors(&[404]),
        op(M::GET, "/stripe/customers/{id}/mrr", "customerMrrMovements", "customers")
            .summary("A customer's MRR movements per period and currency")
            .describe(
                "The rows of `/stripe/reports/mrr-movements`, with the same parameters, \
                 computed over this customer's subscriptions only: each row shows its \
                 one movement in the period (`new`, `expansion`, `contraction`, \
                 `churned` or `reactivation`), or none. Without `from`, the range \
                 starts with the customer's own history. 404 for a customer the mirror \
                 does not have. Never paged.",
            )
            .params(vec![customer_id()])
            .params(range_params())
            .params(vec![gross()])
            .answers(200, "MrrMovementsReport", "One row per period and currency in which the customer pays at the start or the end.")
            .errors(&[400, 404]),
        op(M::PATCH, "/stripe/customers/{id}", "updateCustomer", "customers")
            .summary("Update a customer")
            .describe(
                "Changes the given fields in Stripe (at least one), writes the customer \
                 through and answers it as `GET` shows it. `payment_method` is refused \
                 here: use the payment-methods routes.",
            )
            .params(vec![customer_id()])
            .body("CustomerUpdate", true)
            .answers(200, "Customer", "Updated.")
            .errors(&STRIPE),
        op(M::DELETE, "/stripe/customers/{id}", "deleteCustomer", "customers")
            .summary("Delete a customer")
            .describe(
                "Deletes the customer in Stripe (Stripe cancels its subscriptions); the \
                 mirror keeps it with `deleted: true`, which is answered.",
            )
            .params(vec![customer_id()])
            .answers(200, "Customer", "Deleted.")
            .errors(&STRIPE),
        op(
            M::POST,
            "/stripe/customers/{id}/payment-methods",
            "attachPaymentMethod",
            "customers",
        )
        .summary("Attach a payment method")
        .describe("Attaches a payment method made by Stripe.js or the API to the customer. 402 when Stripe declines the card.")
        .params(vec![customer_id()])
        .body("AttachPaymentMethod", true)
        .answers(200, "PaymentMethod", "Attached.")
        .errors(&STRIPE)
        .errors(&[402]),
        op(
            M::DELETE,
            "/stripe/customers/{id}/payment-methods/{pm}",
            "detachPaymentMethod",
            "customers",
        )
        .summary("Detach a payment method")
        .describe("404 when the payment method is not attached to this customer.")
        .params(vec![customer_id(), pm_id()])
        .answers(200, "PaymentMethod", "Detached.")
        .errors(&STRIPE),
        op(
            M::POST,
            "/stripe/customers/{id}/payment-methods/{pm}/default",
            "setDefaultPaymentMethod",
            "customers",
        )
        .summary("Make a payment method the default")
        .describe("The default for the customer's invoices and subscriptions.")
        .params(vec![customer_id(), pm_id()])
        .answers(200, "Customer", "The customer, as `GET` shows it.")
        .errors(&STRIPE),
        // ---- subscriptions ------------------------------------------------------
        op(M::POST, "/stripe/subscriptions", "createSubscription", "subscriptions")
            .summary("Create a subscription")
            .describe(
                "A customer, a recurring price, a quantity and an optional trial. 422 \
                 `compliance_refused` (with `rule`) when a `[compliance]` rule forbids it; \
                 nothing is sent to Stripe then.",
            )
            .body("SubscriptionCreate", true)
            .answers(201, "Subscription", "Created, as `GET` shows it.")
            .errors(&STRIPE),
        op(M::GET, "/stripe/subscriptions/{id}", "getSubscription", "subscriptions")
            .summary("A subscription, from the mirror")
            .params(vec![subscription_id()])
            .answers(200, "Subscription", "The subscription.")
            .errors(&[404]),
        op(M::PATCH, "/stripe/subscriptions/{id}", "updateSubscription", "subscriptions")
            .summary("Change a subscription")
            .describe(
                "Price or quantity (with a proration choice), cancel at period end, or \
                 `resume` (a paused subscription, or one set to cancel at period end). \
                 Price and quantity changes apply to the first item.",
            )
            .params(vec![subscription_id()])
            .body("SubscriptionUpdate", true)
            .answers(200, "Subscription", "Changed.")
            .errors(&STRIPE),
        op(M::DELETE, "/stripe/subscriptions/{id}", "cancelSubscription", "subscriptions")
            .summary("Cancel a subscription")
            .describe("Now, or with `at_period_end=true` when the paid period ends.")
            .params(vec![
                subscription_id(),
                query(
                    "at_period_end",
                    json!({"type": "boolean", "default": false}),
                    "Cancel when the paid period ends instead of now.",
                ),
                query(
                    "account",
                    json!({"type": "string", "pattern": "^acct_[A-Za-z0-9_]+$"}),
                    "The connected account the subscription is on, when the mirror has not seen it yet. Default: the account the mirror records for it.",
                ),
            ])
            .answers(200, "Subscription", "Canceled (or set to cancel).")
            .errors(&STRIPE),
        // ---- payments, refunds, invoices ----------------------------------------
        op(M::GET, "/stripe/payments", "listPayments", "payments")
            .summary("Payments, from the mirror")
            .describe("Newest first.")
            .params(vec![
                query("customer", json!({"type": "string"}), "Only this customer's."),
                query(
                    "status",
                    json!({"type": "string"}),
                    "Only payments with this status (e.g. `succeeded`, `failed`).",
                ),
                account_filter(),
            ])
            .params(paging())
            .answers(200, "PaymentList", "A page of payments.")
            .errors(&[400]),
        op(M::POST, "/stripe/payments", "createPayment", "payments")
            .summary("A one-time payment")
            .describe(
                "Creates and confirms a PaymentIntent in Stripe and writes it through. 402 \
                 `card_declined` with `decline_code` when the card is declined. When Stripe \
                 asks for more (`status: requires_action`), the answer carries \
                 `client_secret` and `next_action` for the customer's browser. 422 \
                 `compliance_refused` (with `rule`) when a `[compliance]` rule forbids it; \
                 nothing is sent to Stripe then.",
            )
            .body("PaymentCreate", true)
            .answers(201, "PaymentCreated", "Created.")
            .errors(&STRIPE)
            .errors(&[402]),
        op(M::POST, "/stripe/refunds", "createRefund", "payments")
            .summary("Refund a payment")
            .describe(
                "A full or partial refund of a payment intent or a charge, never more than \
                 what is left (read from Stripe first): 422 `refund_exceeds_remainder` \
                 (with `refundable`) or `not_refundable`. Send an `Idempotency-Key`: a \
                 retry then never refunds twice.",
            )
            .body("RefundCreate", true)
            .answers(201, "Refund", "Created.")
            .errors(&STRIPE),
        op(M::GET, "/stripe/invoices", "listInvoices", "payments")
            .summary("Invoices, from the mirror")
            .describe("Newest first.")
            .params(vec![
                query("customer", json!({"type": "string"}), "Only this customer's."),
                account_filter(),
            ])
            .params(paging())
            .answers(200, "InvoiceList", "A page of invoices.")
            .errors(&[400]),
        // ---- catalog, checkout --------------------------------------------------
        op(M::GET, "/stripe/plans", "listPlans", "catalog")
            .summary("Active products with their active prices")
            .describe(
                "From a cache (`[stripe] plans_cache_ttl_secs`) that product, price and \
                 plan webhooks clear. Never paged: `has_more` is false.",
            )
            .answers(200, "PlanList", "The plans."),
        op(
            M::POST,
            "/stripe/checkout/sessions",
            "createCheckoutSession",
            "catalog",
        )
        .summary("A Stripe Checkout session")
        .describe(
            "Mode `payment` or `subscription`; what is sold is one `price` (+`quantity`), \
             `line_items`, or (payment mode only) an `amount` with `currency` and `name`. \
             Send the customer to `url`; the outcome arrives by webhook. 422 \
             `compliance_refused` (with `rule`) when a `[compliance]` rule forbids it; \
             nothing is sent to Stripe then.",
        )
        .body("CheckoutSessionCreate", true)
        .answers(201, "CheckoutSession", "Created.")
        .errors(&STRIPE),
        // ---- connect ------------------------------------------------------------
        op(
            M::POST,
            "/stripe/connect/accounts",
            "createConnectAccount",
            "connect",
        )
        .summary("Create a connected account")
        .body("ConnectAccountCreate", true)
        .answers(201, "ConnectAccount", "Created, with its verification status.")
        .errors(&STRIPE),
        op(
            M::GET,
            "/stripe/connect/accounts/{id}",
            "getConnectAccount",
            "connect",
        )
        .summary("A connected account's verification status, from the mirror")
        .describe("Kept current by `account.updated` webhooks; 404 if billd never saw the account.")
        .params(vec![account_id()])
        .answers(200, "ConnectAccount", "The account.")
        .errors(&[404]),
        op(
            M::POST,
            "/stripe/connect/accounts/{id}/links",
            "createAccountLink",
            "connect",
        )
        .summary("An onboarding (or update) link")
        .params(vec![account_id()])
        .body("AccountLinkCreate", true)
        .answers(201, "AccountLink", "Created.")
        .errors(&STRIPE),
        // ---- events -------------------------------------------------------------
        op(M::GET, "/stripe/events", "listEvents", "events")
            .summary("The events inbox")
            .describe("Newest first.")
            .params(vec![
                query(
                    "status",
                    json!({"type": "string", "enum": EVENT_STATUSES}),
                    "Only events with this status.",
                ),
                query(
                    "type",
                    json!({"type": "string"}),
                    "Only events of this type (e.g. `invoice.paid`).",
                ),
                account_filter(),
            ])
            .params(paging())
            .answers(200, "EventList", "A page of events.")
            .errors(&[400]),
        op(M::GET, "/stripe/events/{id}", "getEvent", "events")
            .summary("One event")
            .params(vec![event_id()])
            .answers(200, "Event", "The event.")
            .errors(&[404]),
        op(M::POST, "/stripe/events/{id}/replay", "replayEvent", "events")
            .summary("Apply an event again")
            .describe(
                "Sets the event back to `pending` with its attempts starting over and \
                 records it in the audit log; a worker applies it. Handlers are \
                 idempotent: replaying an applied event changes nothing a newer event set.",
            )
            .params(vec![event_id()])
            .answers(200, "Event", "Queued.")
            .errors(&[404]),
        // ---- flags --------------------------------------------------------------
        op(M::GET, "/stripe/flags", "listFlags", "flags")
            .summary("Flags to follow up")
            .params(vec![
                query(
                    "status",
                    json!({"type": "string", "enum": ["open", "resolved"]}),
                    "Only flags with this status.",
                ),
                query(
                    "kind",
                    json!({"type": "string", "enum": FLAG_KINDS}),
                    "Only flags of this kind.",
                ),
                param_ref("Limit"),
                query(
                    "starting_after",
                    json!({"type": "integer"}),
                    "The id of the last flag of the previous page.",
                ),
            ])
            .answers(200, "FlagList", "A page of flags.")
            .errors(&[400]),
        op(M::POST, "/stripe/flags/{id}/resolve", "resolveFlag", "flags")
            .summary("Resolve a flag")
            .describe("Resolving a resolved flag changes nothing and succeeds. Recorded in the audit log with the token (`token:<id>`) as actor, which is also the flag's `resolved_by`; a `by` in the body is kept in the audit entry's detail only.")
            .params(vec![json!({
                "name": "id", "in": "path", "required": true,
                "description": "A flag id.", "schema": {"type": "integer"},
            })])
            .body("FlagResolve", false)
            .answers(200, "Flag", "The flag, resolved.")
            .errors(&[404]),
        // ---- reports ------------------------------------------------------------
        op(M::GET, "/stripe/reports/revenue", "revenueReport", "reports")
            .summary("Revenue per period and currency")
            .describe(
                "Gross (succeeded payments), refunded (refunds in the period they \
                 happened), net, counts. Never paged.",
            )
            .params(range_params())
            .answers(200, "RevenueReport", "One row per period and currency.")
            .errors(&[400]),
        op(M::GET, "/stripe/reports/mrr", "mrrReport", "reports")
            .summary("MRR at a time")
            .describe(
                "MRR, ARR, active subscriptions and the part of each price, per currency, \
                 at any past time. Trialing subscriptions are reported apart, not in `mrr`. \
                 Net of discounts (forever and repeating coupons while they run; \
                 `discounts` says how much they take off) unless `gross=true`.",
            )
            .params(vec![
                query(
                    "at",
                    json!({"type": "string"}),
                    "When: RFC 3339, a date (midnight UTC) or unix seconds. Default: now.",
                ),
                query(
                    "currency",
                    json!({"type": "string", "pattern": "^[A-Za-z]{3}$"}),
                    "Only this ISO currency (any case).",
                ),
                account_filter(),
                gross(),
            ])
            .answers(200, "MrrReport", "One row per currency.")
            .errors(&[400]),
        op(
            M::GET,
            "/stripe/reports/subscriptions",
            "subscriptionsReport",
            "reports",
        )
        .summary("New and canceled subscriptions, churn rate, per period")
        .params(range_params())
        .answers(200, "SubscriptionsReport", "One row per period.")
        .errors(&[400]),
        op(
            M::GET,
            "/stripe/reports/failed-payments",
            "failedPaymentsReport",
            "reports",
        )
        .summary("Failed payments and open payment-failed flags, per period and currency")
        .params(range_params())
        .answers(200, "FailedPaymentsReport", "One row per period and currency.")
        .errors(&[400]),
        op(
            M::GET,
            "/stripe/reports/mrr-movements",
            "mrrMovementsReport",
            "reports",
        )
        .summary("MRR movements per period and currency")
        .describe(
            "Each customer's MRR at the period's start against its MRR at the end: new, \
             expansion, contraction, churned, reactivation. `starting_mrr + new + expansion \
             + reactivation - contraction - churned = ending_mrr`. Never paged.",
        )
        .params(range_params())
        .params(vec![gross()])
        .answers(200, "MrrMovementsReport", "One row per period and currency with MRR at its start or end.")
        .errors(&[400]),
        op(M::GET, "/stripe/reports/retention", "retentionReport", "reports")
            .summary("Net and gross revenue retention, ARPA and paying customers per period")
            .describe(
                "From the same movements as `/stripe/reports/mrr-movements`; the \
                 retention fractions are over the customers paying at the period's start.",
            )
            .params(range_params())
            .params(vec![gross()])
            .answers(200, "RetentionReport", "One row per period and currency with MRR at its start or end.")
            .errors(&[400]),
    ]
}

/// `account` of the mirror reads: the rows of one connected account.
fn account_filter() -> Value {
    query(
        "account",
        json!({"type": "string", "pattern": "^acct_[A-Za-z0-9_]+$"}),
        "Only the connected account's (`acct_…`), as its events and billd's calls for it wrote them.",
    )
}

/// `gross` of the reports made of MRR.
fn gross() -> Value {
    query(
        "gross",
        json!({"type": "string", "enum": ["true", "false"], "default": "false"}),
        "`true`: MRR before discounts. Default: net of them (docs/reports.md).",
    )
}

pub(super) const EVENT_STATUSES: [&str; 5] = ["pending", "processed", "failed", "dead", "ignored"];
pub(super) const FLAG_KINDS: [&str; 7] = [
    "payment_failed",
    "payment_action_required",
    "dispute",
    "early_fraud_warning",
    "review",
    "high_risk",
    "account_restricted",
];

//! The document's `components`: shared headers, parameters, error answers and the
//! schemas of every body billd reads or answers.

use serde_json::{Map, Value, json};

use super::op::*;
use super::operations::{EVENT_STATUSES, FLAG_KINDS};

pub(super) fn headers() -> Value {
    json!({
        "RequestId": {
            "description": "The request's id: the client's `x-request-id` when it is 1–64 characters of `[A-Za-z0-9._-]`, else one billd made (`req_…`). Also in error bodies and in the logs.",
            "required": true,
            "schema": {"type": "string"},
        },
        "Allow": {
            "description": "The methods the path takes.",
            "required": true,
            "schema": {"type": "string"},
        },
        "RetryAfter": {
            "description": "Seconds to wait before trying again.",
            "schema": {"type": "integer", "minimum": 1},
        },
        "IdempotentReplayed": {
            "description": "`true` when this is the kept answer of an earlier request with the same `Idempotency-Key`.",
            "schema": {"type": "string", "enum": ["true"]},
        },
    })
}

pub(super) fn parameters() -> Value {
    json!({
        "IdempotencyKey": {
            "name": "Idempotency-Key", "in": "header", "required": false,
            "description": "Makes the write safe to retry: the same request with the same key within 24 hours answers the first one's result (2xx, or 402) without running again. Also sent to Stripe.",
            "schema": {"type": "string", "pattern": "^[!-~]{1,255}$"},
        },
        "RequestId": {
            "name": "x-request-id", "in": "header", "required": false,
            "description": "A request id to keep (1–64 characters of `[A-Za-z0-9._-]`); otherwise billd makes one.",
            "schema": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
        },
        "Limit": {
            "name": "limit", "in": "query", "required": false,
            "description": "Page size.",
            "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
        },
        "StartingAfter": {
            "name": "starting_after", "in": "query", "required": false,
            "description": "The id of the last object of the previous page.",
            "schema": {"type": "string"},
        },
    })
}

pub(super) fn responses() -> Value {
    let error = |description: &str, types: &[&str], retry_after: bool| {
        let mut headers = json!({"x-request-id": header_ref("RequestId")});
        if retry_after {
            headers["Retry-After"] = header_ref("RetryAfter");
        }
        let types = types
            .iter()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(", ");
        json!({
            "description": format!("{description} (`error.type`: {types})."),
            "headers": headers,
            "content": {"application/json": {"schema": schema_ref("Error")}},
        })
    };
    let bad_request = error(
        "Invalid input: a body, query string, path parameter or header; `param` names the field when one is at fault",
        &["invalid_request", "invalid_signature"],
        false,
    );
    let too_large = error("The body is over 1 MiB", &["payload_too_large"], false);
    let mut method_not_allowed = error(
        "The path exists but does not take this method; `Allow` lists those it takes",
        &["method_not_allowed"],
        false,
    );
    method_not_allowed["headers"]["Allow"] = header_ref("Allow");
    json!({
        "BadRequest": bad_request,
        "Unauthorized": error("No bearer token, or an unknown or revoked one", &["unauthorized"], false),
        "CardDeclined": error("The card was declined; `decline_code` says why (`generic_decline` when Stripe names none), `code` is Stripe's", &["card_declined"], false),
        "Forbidden": error("The token's scope is too small for this route", &["forbidden"], false),
        "NotFound": error("No such object (in the mirror, or in Stripe)", &["not_found"], false),
        "Conflict": error("The Idempotency-Key is in use, or was used, by a different request", &["idempotency_conflict"], false),
        "PayloadTooLarge": too_large,
        "MethodNotAllowed": method_not_allowed,
        "Unprocessable": error("Refused by Stripe (the object's state does not allow it) or by a rule of billd's", &["refused_by_stripe", "refund_exceeds_remainder", "not_refundable"], false),
        "RateLimited": error("A rate limit ([limits]: failed authentication or signature checks per client address, the money routes per token, the webhook per client address) or Stripe's own; retry after `Retry-After` seconds", &["rate_limited"], true),
        "BadGateway": error("Stripe failed, its answer was unusable, or it refused billd's API key", &["stripe_error", "stripe_auth_failed"], false),
        "Unavailable": error("Storage or Stripe unavailable, the schema not migrated, or the server at its cap of requests in flight (`overloaded`); retry (with the same Idempotency-Key)", &["storage_unavailable", "stripe_unavailable", "not_migrated", "overloaded"], true),
    })
}

// ---- schemas ------------------------------------------------------------------------

pub(super) fn string() -> Value {
    json!({"type": "string"})
}

pub(super) fn opt_string() -> Value {
    json!({"type": ["string", "null"]})
}

pub(super) fn integer() -> Value {
    json!({"type": "integer"})
}

pub(super) fn opt_integer() -> Value {
    json!({"type": ["integer", "null"]})
}

pub(super) fn count() -> Value {
    json!({"type": "integer", "minimum": 0})
}

pub(super) fn boolean() -> Value {
    json!({"type": "boolean"})
}

pub(super) fn time() -> Value {
    json!({"type": "string", "format": "date-time"})
}

pub(super) fn opt_time() -> Value {
    json!({"type": ["string", "null"], "format": "date-time"})
}

pub(super) fn array_of(name: &str) -> Value {
    json!({"type": "array", "items": schema_ref(name)})
}

pub(super) fn describe(mut schema: Value, description: &str) -> Value {
    schema["description"] = description.into();
    schema
}

/// An answer's object: every property is always present (null when unknown).
pub(super) fn answer(description: &str, properties: Value) -> Value {
    let required: Vec<&String> = properties
        .as_object()
        .expect("properties are an object")
        .keys()
        .collect();
    json!({
        "type": "object",
        "description": description,
        "required": required,
        "properties": properties,
    })
}

/// A request body: unknown fields are refused.
pub(super) fn request(description: &str, required: &[&str], properties: Value) -> Value {
    json!({
        "type": "object",
        "description": description,
        "required": required,
        "properties": properties,
        "additionalProperties": false,
    })
}

/// `{"data": [item], "has_more": bool}`.
pub(super) fn list(item: &str, description: &str) -> Value {
    answer(
        description,
        json!({"data": array_of(item), "has_more": boolean()}),
    )
}

pub(super) fn schemas() -> Value {
    let mut all = Map::new();
    for part in [objects(), reports(), requests()] {
        let Value::Object(part) = part else {
            unreachable!("schemas are objects")
        };
        all.extend(part);
    }
    all.into()
}

pub(super) fn amount() -> Value {
    describe(integer(), "In the currency's minor unit.")
}

pub(super) fn currency() -> Value {
    describe(string(), "Lowercase ISO currency.")
}

/// What the API answers (one `json!` per group: the macro's recursion limit).
pub(super) fn objects() -> Value {
    json!({
        "Error": answer("An error.", json!({
            "error": {
                "type": "object",
                "required": ["type", "message", "request_id"],
                "properties": {
                    "type": describe(string(), "What went wrong, for programs (see each response)."),
                    "message": describe(string(), "What went wrong, for people."),
                    "request_id": describe(string(), "The `x-request-id` of this request."),
                    "param": describe(string(), "The request field at fault."),
                    "code": describe(string(), "Stripe's error code."),
                    "decline_code": describe(string(), "Why the card was declined (402)."),
                    "stripe_request_id": describe(string(), "Stripe's request id, when Stripe answered."),
                    "refundable": describe(integer(), "What is left to refund, in minor units (`refund_exceeds_remainder`)."),
                },
            },
        })),
        "Health": answer("Liveness or readiness.", json!({
            "status": {"type": "string", "enum": ["ok", "ready"]},
        })),
        "StripeEvent": {
            "type": "object",
            "description": "A Stripe event as Stripe sends it; the signature is over these exact bytes.",
            "required": ["id", "type", "created", "data"],
            "properties": {
                "id": string(),
                "type": string(),
                "created": describe(integer(), "Unix seconds."),
                "livemode": boolean(),
                "account": opt_string(),
                "api_version": opt_string(),
                "data": {"type": "object"},
            },
        },
        "WebhookReceived": answer("A stored delivery.", json!({
            "received": {"type": "boolean", "const": true},
            "duplicate": describe(boolean(), "The event was already stored (a redelivery)."),
        })),
        "Customer": answer("A customer from the mirror.", json!({
            "id": string(),
            "email": opt_string(),
            "name": opt_string(),
            "deleted": boolean(),
            "default_payment_method": opt_string(),
            "subscriptions": array_of("Subscription"),
            "payment_methods": array_of("PaymentMethod"),
            "flags": describe(array_of("Flag"), "The customer's open flags."),
        })),
        "CustomerWithMrr": {
            "description": "A customer from the mirror, with its MRR now.",
            "allOf": [
                schema_ref("Customer"),
                {
                    "type": "object",
                    "required": ["mrr"],
                    "properties": {
                        "mrr": describe(array_of("Mrr"), "Its MRR now, one row per currency, as the MRR report counts it; empty when it has no active, past-due or trialing subscription."),
                    },
                },
            ],
        },
        "PaymentMethod": answer("A payment method.", json!({
            "id": string(),
            "type": opt_string(),
            "card_brand": opt_string(),
            "card_last4": opt_string(),
            "exp_month": opt_integer(),
            "exp_year": opt_integer(),
        })),
        "Subscription": answer("A subscription from the mirror.", json!({
            "id": string(),
            "customer": opt_string(),
            "status": describe(opt_string(), "Stripe's status: `active`, `trialing`, `past_due`, `canceled`, …"),
            "price": describe(opt_string(), "The first item's price."),
            "quantity": describe(opt_integer(), "The first item's quantity."),
            "current_period_end": opt_time(),
            "cancel_at_period_end": boolean(),
            "canceled_at": opt_time(),
            "trial_end": opt_time(),
            "ended_at": opt_time(),
            "currency": opt_string(),
            "items": array_of("SubscriptionItem"),
        })),
        "SubscriptionItem": answer("An item of a subscription.", json!({
            "id": string(),
            "price": opt_string(),
            "quantity": opt_integer(),
            "unit_amount": describe(opt_integer(), "In the currency's minor unit."),
            "currency": opt_string(),
            "interval": describe(opt_string(), "`day`, `week`, `month` or `year`."),
            "interval_count": opt_integer(),
        })),
        "Payment": answer("A payment from the mirror.", json!({
            "id": describe(string(), "The payment intent id, or the charge id of a payment without one."),
            "charge": opt_string(),
            "customer": opt_string(),
            "invoice": opt_string(),
            "amount": amount(),
            "amount_refunded": amount(),
            "currency": currency(),
            "status": describe(string(), "e.g. `succeeded`, `failed`, `processing`, `requires_action`, `canceled`."),
            "failure_code": opt_string(),
            "created": time(),
        })),
        "PaymentCreated": {
            "description": "A payment as listed, plus what the customer's browser needs when Stripe asks for more.",
            "allOf": [
                schema_ref("Payment"),
                {
                    "type": "object",
                    "properties": {
                        "client_secret": describe(string(), "Only when `status` is `requires_action`."),
                        "next_action": describe(string(), "Stripe's next action type, e.g. `redirect_to_url`."),
                    },
                },
            ],
        },
        "Refund": answer("A refund.", json!({
            "id": string(),
            "payment": describe(string(), "The payment intent, or the charge of a payment without one."),
            "charge": opt_string(),
            "amount": amount(),
            "currency": currency(),
            "status": opt_string(),
            "reason": opt_string(),
        })),
        "Invoice": answer("An invoice from the mirror.", json!({
            "id": string(),
            "customer": opt_string(),
            "subscription": opt_string(),
            "status": opt_string(),
            "number": opt_string(),
            "currency": opt_string(),
            "amount_due": opt_integer(),
            "amount_paid": opt_integer(),
            "amount_remaining": opt_integer(),
            "total": opt_integer(),
            "payment_intent": opt_string(),
            "created": opt_time(),
        })),
        "Event": answer("An event of the inbox.", json!({
            "id": string(),
            "type": string(),
            "status": {"type": "string", "enum": EVENT_STATUSES},
            "attempts": count(),
            "created": describe(time(), "When Stripe created the event."),
            "received_at": describe(time(), "When billd stored it."),
            "processed_at": opt_time(),
            "last_error": opt_string(),
            "account": describe(opt_string(), "The connected account, for Connect events."),
            "livemode": boolean(),
            "api_version": opt_string(),
            "next_attempt_at": describe(opt_time(), "When a pending or failed event is tried (again); null otherwise."),
        })),
        "Flag": answer("Something to follow up.", json!({
            "id": integer(),
            "kind": {"type": "string", "enum": FLAG_KINDS},
            "object_id": describe(string(), "The invoice, payment, dispute, review… flagged."),
            "customer": opt_string(),
            "status": {"type": "string", "enum": ["open", "resolved"]},
            "created": time(),
            "detail": string(),
            "resolved_at": opt_time(),
            "resolved_by": describe(opt_string(), "Who resolved it: `token:<id>` (the API token), the CLI's `$USER`, or the event type that did."),
        })),
        "Plan": answer("An active product with its active prices.", json!({
            "id": string(),
            "name": opt_string(),
            "description": opt_string(),
            "prices": array_of("PlanPrice"),
        })),
        "PlanPrice": answer("An active price (or legacy plan).", json!({
            "id": string(),
            "currency": opt_string(),
            "unit_amount": describe(opt_integer(), "In the currency's minor unit."),
            "type": describe(opt_string(), "`recurring` or `one_time`."),
            "interval": opt_string(),
            "interval_count": opt_integer(),
            "nickname": opt_string(),
        })),
        "CheckoutSession": answer("A Checkout session: send the customer to `url`.", json!({
            "id": string(),
            "url": opt_string(),
            "mode": opt_string(),
            "status": opt_string(),
            "customer": opt_string(),
            "expires_at": opt_time(),
        })),
        "ConnectAccount": answer("A connected account and its verification status.", json!({
            "id": string(),
            "type": describe(opt_string(), "`express`, `standard` or `custom`."),
            "country": opt_string(),
            "charges_enabled": boolean(),
            "payouts_enabled": boolean(),
            "details_submitted": boolean(),
            "currently_due": {"type": "array", "items": string(), "description": "Requirements to meet now, or the account is (or will be) disabled."},
            "disabled_reason": opt_string(),
            "deleted": describe(boolean(), "The platform lost access to it (deauthorized)."),
        })),
        "AccountLink": answer("An onboarding link: send the person to `url`.", json!({
            "url": string(),
            "expires_at": opt_time(),
            "created": opt_time(),
        })),
    })
}

/// The reports' rows and every list.
pub(super) fn reports() -> Value {
    json!({
        "RevenueRow": answer("Revenue of one currency in one period.", json!({
            "period": describe(string(), "The period's name, e.g. `2026-01` or `2026-01-31`."),
            "period_start": time(),
            "period_end": describe(time(), "Exclusive."),
            "currency": currency(),
            "gross": describe(integer(), "Succeeded payments created in the period."),
            "refunded": describe(integer(), "Refunds created in the period, whenever the payment was."),
            "net": describe(integer(), "`gross - refunded - disputes_lost`."),
            "payments": describe(count(), "How many succeeded payments."),
            "failed": describe(count(), "How many payments created in the period are failed."),
            "disputed": describe(integer(), "Disputes opened in the period, whatever their outcome."),
            "disputes_lost": describe(integer(), "Of `disputed`, the disputes lost: taken out of `net`."),
        })),
        "Mrr": answer("The MRR of one currency at one time.", json!({
            "at": time(),
            "currency": currency(),
            "mrr": describe(integer(), "Of active and past-due subscriptions, normalised to a month, in minor units."),
            "arr": describe(integer(), "12 × `mrr`."),
            "active_subscriptions": describe(count(), "Subscriptions in `mrr`: active and past due."),
            "past_due_subscriptions": describe(count(), "Of `active_subscriptions`, those past due."),
            "trialing_mrr": describe(integer(), "What trialing subscriptions will bring once they convert (not in `mrr`)."),
            "trialing_subscriptions": count(),
            "discounts": describe(integer(), "What discounts take off the active subscriptions' MRR: `mrr` is net of it, or before it with `gross=true`."),
            "by_price": array_of("PriceMrr"),
        })),
        "PriceMrr": answer("The part of `mrr` from one price.", json!({
            "price": string(),
            "mrr": integer(),
            "subscriptions": count(),
            "quantity": integer(),
        })),
        "SubscriptionsRow": answer("Subscriptions of one period.", json!({
            "period": string(),
            "period_start": time(),
            "period_end": describe(time(), "Exclusive."),
            "active_start": describe(count(), "Counted subscriptions at the period's start."),
            "new": count(),
            "canceled": count(),
            "net_change": integer(),
            "churn_rate": describe(json!({"type": ["number", "null"]}), "`canceled / active_start`; null when nothing was active at the start."),
        })),
        "FailedPaymentsRow": answer("Failed payments of one currency in one period.", json!({
            "period": string(),
            "period_start": time(),
            "period_end": describe(time(), "Exclusive."),
            "currency": currency(),
            "failed": describe(count(), "Payments created in the period whose status is `failed`."),
            "amount": describe(integer(), "Their total, in minor units."),
            "open_flags": describe(count(), "`payment_failed` flags raised in the period and still open."),
            "customers": {"type": "array", "items": string(), "description": "Customers to follow up, sorted."},
        })),
        "MrrMovementRow": answer("MRR movements of one currency in one period.", json!({
            "period": string(),
            "period_start": time(),
            "period_end": describe(time(), "Exclusive."),
            "currency": currency(),
            "starting_mrr": describe(integer(), "MRR at the period's start, in minor units."),
            "new": describe(integer(), "End MRR of customers at 0 at the start who never had MRR before."),
            "expansion": describe(integer(), "Increases of customers paying at both ends."),
            "contraction": describe(integer(), "Decreases of customers paying at both ends (positive)."),
            "churned": describe(integer(), "Start MRR of customers at 0 at the end (positive)."),
            "reactivation": describe(integer(), "End MRR of customers at 0 at the start who had MRR before."),
            "net_change": describe(integer(), "`ending_mrr - starting_mrr`."),
            "ending_mrr": describe(integer(), "MRR at the period's end (the next period's start)."),
        })),
        "RetentionRow": answer("Retention of one currency in one period.", json!({
            "period": string(),
            "period_start": time(),
            "period_end": describe(time(), "Exclusive."),
            "currency": currency(),
            "starting_mrr": integer(),
            "nrr": describe(json!({"type": ["number", "null"]}), "`(starting + expansion - contraction - churned) / starting`; null when starting is 0."),
            "grr": describe(json!({"type": ["number", "null"]}), "`(starting - contraction - churned) / starting`; null when starting is 0."),
            "arpa": describe(opt_integer(), "`ending_mrr / customers_end` in minor units, rounded; null when no customer pays at the end."),
            "customers_start": describe(count(), "Customers with MRR above 0 at the start."),
            "customers_end": describe(count(), "Customers with MRR above 0 at the end."),
        })),
        "EventList": list("Event", "A page of events."),
        "FlagList": list("Flag", "A page of flags."),
        "InvoiceList": list("Invoice", "A page of invoices."),
        "PaymentList": list("Payment", "A page of payments."),
        "PlanList": list("Plan", "The plans (never paged)."),
        "RevenueReport": list("RevenueRow", "The revenue report (never paged)."),
        "MrrReport": list("Mrr", "The MRR report: one row per currency (never paged)."),
        "SubscriptionsReport": list("SubscriptionsRow", "The subscriptions report (never paged)."),
        "FailedPaymentsReport": list("FailedPaymentsRow", "The failed-payments report (never paged)."),
        "MrrMovementsReport": list("MrrMovementRow", "The MRR movements report (never paged)."),
        "RetentionReport": list("RetentionRow", "The retention report (never paged)."),
    })
}

/// Request bodies.
pub(super) fn requests() -> Value {
    json!({
        "CustomerCreate": request("A new customer.", &[], json!({
            "email": string(),
            "name": string(),
            "description": string(),
            "phone": string(),
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            "payment_method": describe(string(), "A payment method (`pm_…`) to attach and make the default."),
            "account": describe(string(), "A connected account (`acct_…`) to act for: the request is sent with `Stripe-Account` (docs/connect.md)."),
        })),
        "CustomerUpdate": request("What to change: at least one field.", &[], json!({
            "email": string(),
            "name": string(),
            "description": string(),
            "phone": string(),
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
        })),
        "AttachPaymentMethod": request("A payment method to attach.", &["payment_method"], json!({
            "payment_method": describe(string(), "A payment method id (`pm_…`) made by Stripe.js or the API."),
        })),
        "SubscriptionCreate": request("A new subscription.", &["customer", "price"], json!({
            "customer": string(),
            "price": describe(string(), "A recurring price (or legacy plan) id."),
            "quantity": {"type": "integer", "minimum": 1},
            "trial_days": {"type": "integer", "minimum": 0},
            "proration_behavior": {"type": "string", "enum": PRORATIONS},
            "account": describe(string(), "Make it on this connected account (`acct_…`), sent with `Stripe-Account`. Default: the account the mirror records for the customer (docs/connect.md)."),
        })),
        "SubscriptionUpdate": request("What to change: at least one of price, quantity, cancel_at_period_end, resume.", &[], json!({
            "price": string(),
            "quantity": {"type": "integer", "minimum": 1},
            "proration_behavior": describe(json!({"type": "string", "enum": PRORATIONS}), "Default: Stripe's (`create_prorations`)."),
            "cancel_at_period_end": boolean(),
            "resume": describe(boolean(), "Resume a paused subscription, or undo a cancellation at period end."),
            "account": describe(string(), "The connected account the subscription is on, when the mirror has not seen it yet. Default: the account the mirror records for it."),
        })),
        "PaymentCreate": request("A one-time payment.", &["amount", "currency", "payment_method"], json!({
            "customer": string(),
            "amount": {"type": "integer", "minimum": 1, "description": "In the currency's minor unit (cents; yen for JPY)."},
            "currency": {"type": "string", "pattern": "^[A-Za-z]{3}$", "description": "ISO currency."},
            "payment_method": string(),
            "description": string(),
            "return_url": describe(string(), "Where a payment method that redirects (3-D Secure, bank redirects) sends the customer back to."),
            "off_session": {"type": "boolean", "default": false, "description": "Charge a saved payment method without the customer present."},
            "account": describe(string(), "A direct charge on this connected account (`acct_…`), sent with `Stripe-Account`; not with `transfer_data`."),
            "transfer_data": {
                "type": "object", "required": ["destination"], "additionalProperties": false,
                "description": "A destination charge: the funds go to this connected account.",
                "properties": {"destination": describe(string(), "`acct_…`")},
            },
            "application_fee_amount": {"type": "integer", "minimum": 0, "description": "What the platform keeps, at most `amount`; needs `account` or `transfer_data`."},
        })),
        "RefundCreate": request("Exactly one of `payment_intent`, `charge`, `payment`.", &[], json!({
            "payment_intent": describe(string(), "`pi_…`"),
            "charge": describe(string(), "`ch_…`"),
            "payment": describe(string(), "A payment id as listed: `pi_…` or `ch_…`."),
            "amount": {"type": "integer", "minimum": 1, "description": "In the currency's minor unit; absent: all that is left."},
            "reason": {"type": "string", "enum": ["requested_by_customer", "duplicate", "fraudulent"]},
            "account": describe(string(), "The connected account the payment was made on (a direct charge), sent with `Stripe-Account`."),
        })),
        "CheckoutSessionCreate": request(
            "A Checkout session: what is sold is `price` (+`quantity`), `line_items`, or (payment mode) `amount` with `currency` and `name`. `customer` or `customer_email`, not both.",
            &["mode", "success_url"],
            json!({
                "mode": {"type": "string", "enum": ["payment", "subscription"]},
                "customer": string(),
                "customer_email": describe(string(), "Prefills the email of a customer Checkout creates."),
                "price": string(),
                "quantity": {"type": "integer", "minimum": 1, "default": 1},
                "line_items": {"type": "array", "minItems": 1, "items": schema_ref("CheckoutLineItem")},
                "amount": {"type": "integer", "minimum": 1, "description": "In the currency's minor unit (payment mode only)."},
                "currency": string(),
                "name": describe(string(), "What the customer pays for (with `amount`)."),
                "success_url": string(),
                "cancel_url": string(),
                "client_reference_id": string(),
                "account": describe(string(), "A connected account (`acct_…`) to act for: the request is sent with `Stripe-Account` (docs/connect.md)."),
            }),
        ),
        "CheckoutLineItem": request("A price, or an amount with currency and name.", &[], json!({
            "price": string(),
            "quantity": {"type": "integer", "minimum": 1, "default": 1},
            "amount": {"type": "integer", "minimum": 1},
            "currency": string(),
            "name": string(),
        })),
        "ConnectAccountCreate": request("A new connected account.", &["type"], json!({
            "type": {"type": "string", "enum": ["express", "standard", "custom"]},
            "country": {"type": "string", "pattern": "^[A-Za-z]{2}$", "description": "Two-letter ISO country."},
            "email": string(),
        })),
        "AccountLinkCreate": request("An account link.", &["refresh_url", "return_url"], json!({
            "refresh_url": describe(string(), "Where Stripe sends the person when the link expired or was used: make a new link there."),
            "return_url": describe(string(), "Where Stripe sends the person after onboarding (which may be unfinished)."),
            "type": {"type": "string", "enum": ["account_onboarding", "account_update"], "default": "account_onboarding"},
        })),
        "FlagResolve": {
            "type": "object",
            "description": "Optional.",
            "properties": {
                "by": describe(string(), "Who says they resolved it: kept as detail in the audit log; the actor is the token."),
            },
        },
    })
}

pub(super) const PRORATIONS: [&str; 3] = ["create_prorations", "none", "always_invoice"];

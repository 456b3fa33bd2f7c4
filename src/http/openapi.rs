//! `GET /openapi.json`: the OpenAPI 3.1 document of the HTTP API (DESIGN §3), and
//! `GET /docs`, its HTML rendering.
//!
//! Written by hand as data (`serde_json::json!`) and serialised once. utoipa would
//! derive it from the types, but it brings proc-macro crates and an attribute on every
//! handler and view struct for one static document: we keep the build lean instead.
//! What keeps the document true is `tests/openapi.rs`: every route of [`super::router`]
//! must be documented (and nothing else), every `$ref` must resolve, and real answers
//! must fit their schemas. The scope of each operation is not written here but asked
//! of [`required_scope`], the function the auth middleware uses.
//!
//! Field names are exactly those the view structs serialise (`store::mirror`,
//! `store::flags`, `store::catalog`, `store::accounts`, `report`, `http::api::*`).

use std::{collections::BTreeSet, sync::LazyLock};

use axum::{
    http::{Method, header},
    response::IntoResponse,
};
use serde_json::{Map, Value, json};

use super::auth::required_scope;

static DOCUMENT: LazyLock<String> = LazyLock::new(|| document().to_string());

/// `GET /openapi.json`: public, it documents the API and holds no data.
pub async fn serve() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
}

/// The page of `GET /docs`: one static file whose script renders `/openapi.json`, so
/// the page cannot drift from the document and needs nothing from another host.
pub const DOCS_PAGE: &str = include_str!("docs.html");

/// The page's `Content-Security-Policy`: its one inline script and one inline style
/// are allowed by hash, it may fetch from its own origin only, and nothing else loads.
/// Hashed from the bundled page itself, so editing the page cannot break the policy.
pub static DOCS_CSP: LazyLock<String> = LazyLock::new(|| {
    format!(
        "default-src 'none'; script-src '{}'; style-src '{}'; connect-src 'self'; \
         img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        csp_hash(inline(DOCS_PAGE, "script")),
        csp_hash(inline(DOCS_PAGE, "style")),
    )
});

/// The text of the first `<tag>…</tag>` element of a page (empty when there is none,
/// which yields a hash no element matches).
fn inline<'a>(page: &'a str, tag: &str) -> &'a str {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    page.split_once(open.as_str())
        .and_then(|(_, rest)| rest.split_once(close.as_str()))
        .map_or("", |(body, _)| body)
}

/// A CSP source expression for an inline element: `sha256-` and the base64 digest.
fn csp_hash(text: &str) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "sha256-{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// `GET /docs`: public like the document it renders.
pub async fn docs() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, DOCS_CSP.as_str()),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        DOCS_PAGE,
    )
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in operations() {
        let method = op.method.as_str().to_ascii_lowercase();
        let path = op.path;
        let item = paths
            .entry(path)
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("a path item is an object");
        item.insert(method, op.render());
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "billd",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "Stripe billing daemon: verified webhooks, a durable event inbox, a SQLite mirror and a JSON API.",
            "description": INFO,
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "jsonSchemaDialect": "https://spec.openapis.org/oas/3.1/dialect/base",
        "servers": [{"url": "/", "description": "the billd daemon (`[server] listen`)"}],
        "security": [{"bearer": []}],
        "tags": [
            {"name": "webhook", "description": "Stripe's deliveries (authenticated by their signature)."},
            {"name": "customers", "description": "Customers and their payment methods: writes through Stripe, reads from the mirror."},
            {"name": "subscriptions", "description": "Subscriptions: writes through Stripe, reads from the mirror."},
            {"name": "payments", "description": "One-time payments, refunds, invoices."},
            {"name": "catalog", "description": "Products and prices (plans), Checkout sessions."},
            {"name": "connect", "description": "Stripe Connect accounts and onboarding links."},
            {"name": "events", "description": "The events inbox."},
            {"name": "flags", "description": "Failed payments, disputes, fraud warnings, risky charges to follow up."},
            {"name": "reports", "description": "Financial reports computed from the mirror."},
            {"name": "operations", "description": "Health, readiness, metrics, this document."},
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`Authorization: Bearer <token>`; tokens are made with `billd token create --scope read|write|admin` and stored only as hashes. Scopes: `read` (GET), `write` (creates and updates), `admin` (refunds, replays, tokens); a higher scope includes the lower ones. Each operation names the scope it needs in its security requirement and in `x-billd-scope`.",
                }
            },
            "headers": headers(),
            "parameters": parameters(),
            "responses": responses(),
            "schemas": schemas(),
        },
    })
}

const INFO: &str = "\
JSON in and out. Amounts are integers in the currency's minor unit with a lowercase ISO \
currency; times are RFC 3339 UTC strings. Errors are \
`{\"error\": {\"type\", \"message\", \"request_id\"}}` with a fitting status. Every response \
carries `x-request-id` (the client's, when it sends a sane one). Lists are \
`{\"data\": [...], \"has_more\": bool}` paged with `limit` (default 20, at most 100) and \
`starting_after`.

Writes (POST, PATCH, DELETE) accept an `Idempotency-Key` header: a request repeated \
with the same key within 24 hours gets the first one's answer (marked \
`Idempotent-Replayed: true`) and never runs twice; the key reused for a different \
request answers 409 `idempotency_conflict`.

Every refusal has the error shape, also those made before a handler runs: a method a \
documented path does not take answers 405 `method_not_allowed` with an `Allow` header \
(`#/components/responses/MethodNotAllowed`), a body over 1 MiB 413 `payload_too_large`, \
an unknown path 404 `not_found`; any other status billd's framework answers by itself \
takes an `error.type` named after the status (e.g. `request_timeout`).";

/// Who may call an operation.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// No token.
    Public,
    /// A bearer token with the scope [`required_scope`] names.
    Token,
    /// A `read` token, unless `[server] metrics_public` opens it.
    TokenUnlessConfigured,
}

struct Op {
    method: Method,
    path: &'static str,
    id: &'static str,
    tag: &'static str,
    summary: &'static str,
    description: String,
    access: Access,
    params: Vec<Value>,
    body: Option<Value>,
    ok: (u16, &'static str, Value),
    errors: Vec<u16>,
}

fn op(method: Method, path: &'static str, id: &'static str, tag: &'static str) -> Op {
    Op {
        method,
        path,
        id,
        tag,
        summary: "",
        description: String::new(),
        access: Access::Token,
        params: Vec::new(),
        body: None,
        ok: (200, "OK", json!({})),
        errors: Vec::new(),
    }
}

impl Op {
    fn summary(mut self, summary: &'static str) -> Op {
        self.summary = summary;
        self
    }

    fn describe(mut self, text: &str) -> Op {
        self.description = text.to_string();
        self
    }

    fn access(mut self, access: Access) -> Op {
        self.access = access;
        self
    }

    fn params(mut self, params: Vec<Value>) -> Op {
        self.params.extend(params);
        self
    }

    /// A JSON request body of the named schema.
    fn body(mut self, schema: &str, required: bool) -> Op {
        self.body = Some(json!({
            "required": required,
            "content": {"application/json": {"schema": schema_ref(schema)}},
        }));
        self
    }

    /// The success answer: a JSON body of the named schema.
    fn answers(self, status: u16, schema: &str, description: &'static str) -> Op {
        self.answers_with(
            status,
            description,
            json!({"application/json": {"schema": schema_ref(schema)}}),
        )
    }

    fn answers_with(mut self, status: u16, description: &'static str, content: Value) -> Op {
        self.ok = (status, description, content);
        self
    }

    fn errors(mut self, codes: &[u16]) -> Op {
        self.errors.extend_from_slice(codes);
        self
    }

    fn render(self) -> Value {
        let mut description = self.description;
        let mut params = self.params;
        let mut errors: BTreeSet<u16> = self.errors.into_iter().collect();
        if self.body.is_some() {
            // A body that is not the right JSON, or too long to read.
            errors.extend([400, 413]);
        }
        if self.path != "/healthz" {
            // `[limits] max_in_flight`: every route but liveness answers 503 past it.
            errors.insert(503);
        }
        let mut o = Map::new();
        o.insert("operationId".into(), self.id.into());
        o.insert("tags".into(), json!([self.tag]));
        o.insert("summary".into(), self.summary.into());
        let write = self.method != Method::GET;
        match self.access {
            Access::Public => {
                o.insert("security".into(), json!([]));
                add_paragraph(&mut description, "No token needed.");
            }
            Access::Token | Access::TokenUnlessConfigured => {
                let scope = required_scope(&self.method, self.path).as_str();
                let mut security = vec![json!({"bearer": [scope]})];
                if self.access == Access::TokenUnlessConfigured {
                    security.push(json!({}));
                    add_paragraph(
                        &mut description,
                        &format!(
                            "Needs a bearer token with scope `{scope}` (or higher), unless \
                             `[server] metrics_public = true` opens it."
                        ),
                    );
                } else {
                    add_paragraph(
                        &mut description,
                        &format!("Needs a bearer token with scope `{scope}` (or higher)."),
                    );
                }
                o.insert("security".into(), json!(security));
                o.insert("x-billd-scope".into(), scope.into());
                // The token is checked against the database; failed checks are rate
                // limited per client address, the money routes per token.
                errors.extend([401, 403, 429, 503]);
                if write && self.access == Access::Token {
                    // The idempotency middleware: a malformed key, a key reused.
                    params.push(param_ref("IdempotencyKey"));
                    errors.extend([400, 409]);
                }
            }
        }
        params.push(param_ref("RequestId"));
        o.insert("description".into(), description.into());
        o.insert("parameters".into(), json!(params));
        if let Some(body) = self.body {
            o.insert("requestBody".into(), body);
        }
        let (status, ok_description, content) = self.ok;
        let mut ok_headers = Map::new();
        ok_headers.insert("x-request-id".into(), header_ref("RequestId"));
        if write && self.access == Access::Token {
            ok_headers.insert(
                "Idempotent-Replayed".into(),
                header_ref("IdempotentReplayed"),
            );
        }
        let mut responses = Map::new();
        responses.insert(
            status.to_string(),
            json!({"description": ok_description, "headers": ok_headers, "content": content}),
        );
        for code in errors {
            responses.insert(
                code.to_string(),
                json!({"$ref": format!("#/components/responses/{}", error_response(code))}),
            );
        }
        o.insert("responses".into(), responses.into());
        o.into()
    }
}

fn add_paragraph(text: &mut String, paragraph: &str) {
    if !text.is_empty() {
        text.push_str("\n\n");
    }
    text.push_str(paragraph);
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn param_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/parameters/{name}")})
}

fn header_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/headers/{name}")})
}

/// The component response of an error status.
fn error_response(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        402 => "CardDeclined",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        413 => "PayloadTooLarge",
        422 => "Unprocessable",
        429 => "RateLimited",
        502 => "BadGateway",
        503 => "Unavailable",
        other => panic!("no error response for {other}"),
    }
}

fn path_param(name: &str, description: &str) -> Value {
    json!({
        "name": name, "in": "path", "required": true,
        "description": description, "schema": {"type": "string"},
    })
}

fn query(name: &str, schema: Value, description: &str) -> Value {
    json!({
        "name": name, "in": "query", "required": false,
        "description": description, "schema": schema,
    })
}

fn paging() -> Vec<Value> {
    vec![param_ref("Limit"), param_ref("StartingAfter")]
}

fn range_params() -> Vec<Value> {
    vec![
        query(
            "from",
            json!({"type": "string"}),
            "Start of the range, inclusive: RFC 3339, a date (midnight UTC) or unix seconds. Default: the start of the period holding the first data.",
        ),
        query(
            "to",
            json!({"type": "string"}),
            "End of the range, exclusive (same forms as `from`). Default: now (or after the last data, if later).",
        ),
        query(
            "interval",
            json!({"type": "string", "enum": ["day", "week", "month"], "default": "month"}),
            "Period length: UTC days, ISO weeks (from Monday) or calendar months.",
        ),
        query(
            "currency",
            json!({"type": "string", "pattern": "^[A-Za-z]{3}$"}),
            "Only this ISO currency (any case).",
        ),
    ]
}

/// Errors of a call to Stripe: its 404, a parameter at fault, a refusal, rate limits,
/// its failures and its absence (503, added with the token's).
const STRIPE: [u16; 5] = [400, 404, 422, 429, 502];

fn operations() -> Vec<Op> {
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
            .describe("With its subscriptions, payment methods and open flags.")
            .params(vec![customer_id()])
            .answers(200, "Customer", "The customer.")
            .errors(&[404]),
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
            .describe("A customer, a recurring price, a quantity and an optional trial.")
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
                 `client_secret` and `next_action` for the customer's browser.",
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
            .params(vec![query(
                "customer",
                json!({"type": "string"}),
                "Only this customer's.",
            )])
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
             Send the customer to `url`; the outcome arrives by webhook.",
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
                 at any past time. Trialing subscriptions are reported apart, not in `mrr`.",
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
        .answers(200, "MrrMovementsReport", "One row per period and currency with MRR at its start or end.")
        .errors(&[400]),
        op(M::GET, "/stripe/reports/retention", "retentionReport", "reports")
            .summary("Net and gross revenue retention, ARPA and paying customers per period")
            .describe(
                "From the same movements as `/stripe/reports/mrr-movements`; the \
                 retention fractions are over the customers paying at the period's start.",
            )
            .params(range_params())
            .answers(200, "RetentionReport", "One row per period and currency with MRR at its start or end.")
            .errors(&[400]),
    ]
}

const EVENT_STATUSES: [&str; 5] = ["pending", "processed", "failed", "dead", "ignored"];
const FLAG_KINDS: [&str; 5] = [
    "payment_failed",
    "dispute",
    "early_fraud_warning",
    "review",
    "high_risk",
];

fn headers() -> Value {
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

fn parameters() -> Value {
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

fn responses() -> Value {
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

fn string() -> Value {
    json!({"type": "string"})
}

fn opt_string() -> Value {
    json!({"type": ["string", "null"]})
}

fn integer() -> Value {
    json!({"type": "integer"})
}

fn opt_integer() -> Value {
    json!({"type": ["integer", "null"]})
}

fn count() -> Value {
    json!({"type": "integer", "minimum": 0})
}

fn boolean() -> Value {
    json!({"type": "boolean"})
}

fn time() -> Value {
    json!({"type": "string", "format": "date-time"})
}

fn opt_time() -> Value {
    json!({"type": ["string", "null"], "format": "date-time"})
}

fn array_of(name: &str) -> Value {
    json!({"type": "array", "items": schema_ref(name)})
}

fn describe(mut schema: Value, description: &str) -> Value {
    schema["description"] = description.into();
    schema
}

/// An answer's object: every property is always present (null when unknown).
fn answer(description: &str, properties: Value) -> Value {
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
fn request(description: &str, required: &[&str], properties: Value) -> Value {
    json!({
        "type": "object",
        "description": description,
        "required": required,
        "properties": properties,
        "additionalProperties": false,
    })
}

/// `{"data": [item], "has_more": bool}`.
fn list(item: &str, description: &str) -> Value {
    answer(
        description,
        json!({"data": array_of(item), "has_more": boolean()}),
    )
}

fn schemas() -> Value {
    let mut all = Map::new();
    for part in [objects(), reports(), requests()] {
        let Value::Object(part) = part else {
            unreachable!("schemas are objects")
        };
        all.extend(part);
    }
    all.into()
}

fn amount() -> Value {
    describe(integer(), "In the currency's minor unit.")
}

fn currency() -> Value {
    describe(string(), "Lowercase ISO currency.")
}

/// What the API answers (one `json!` per group: the macro's recursion limit).
fn objects() -> Value {
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
fn reports() -> Value {
    json!({
        "RevenueRow": answer("Revenue of one currency in one period.", json!({
            "period": describe(string(), "The period's name, e.g. `2026-01` or `2026-01-31`."),
            "period_start": time(),
            "period_end": describe(time(), "Exclusive."),
            "currency": currency(),
            "gross": describe(integer(), "Succeeded payments created in the period."),
            "refunded": describe(integer(), "Refunds created in the period, whenever the payment was."),
            "net": describe(integer(), "`gross - refunded`."),
            "payments": describe(count(), "How many succeeded payments."),
            "failed": describe(count(), "How many payments created in the period are failed."),
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
fn requests() -> Value {
    json!({
        "CustomerCreate": request("A new customer.", &[], json!({
            "email": string(),
            "name": string(),
            "description": string(),
            "phone": string(),
            "metadata": {"type": "object", "additionalProperties": {"type": "string"}},
            "payment_method": describe(string(), "A payment method (`pm_…`) to attach and make the default."),
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
        })),
        "SubscriptionUpdate": request("What to change: at least one of price, quantity, cancel_at_period_end, resume.", &[], json!({
            "price": string(),
            "quantity": {"type": "integer", "minimum": 1},
            "proration_behavior": describe(json!({"type": "string", "enum": PRORATIONS}), "Default: Stripe's (`create_prorations`)."),
            "cancel_at_period_end": boolean(),
            "resume": describe(boolean(), "Resume a paused subscription, or undo a cancellation at period end."),
        })),
        "PaymentCreate": request("A one-time payment.", &["amount", "currency", "payment_method"], json!({
            "customer": string(),
            "amount": {"type": "integer", "minimum": 1, "description": "In the currency's minor unit (cents; yen for JPY)."},
            "currency": {"type": "string", "pattern": "^[A-Za-z]{3}$", "description": "ISO currency."},
            "payment_method": string(),
            "description": string(),
            "return_url": describe(string(), "Where a payment method that redirects (3-D Secure, bank redirects) sends the customer back to."),
            "off_session": {"type": "boolean", "default": false, "description": "Charge a saved payment method without the customer present."},
        })),
        "RefundCreate": request("Exactly one of `payment_intent`, `charge`, `payment`.", &[], json!({
            "payment_intent": describe(string(), "`pi_…`"),
            "charge": describe(string(), "`ch_…`"),
            "payment": describe(string(), "A payment id as listed: `pi_…` or `ch_…`."),
            "amount": {"type": "integer", "minimum": 1, "description": "In the currency's minor unit; absent: all that is left."},
            "reason": {"type": "string", "enum": ["requested_by_customer", "duplicate", "fraudulent"]},
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

const PRORATIONS: [&str; 3] = ["create_prorations", "none", "always_invoice"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_are_unique_and_tokens_name_the_middlewares_scope() {
        let doc = document();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let mut ids = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let id = op["operationId"].as_str().unwrap();
                assert!(ids.insert(id.to_string()), "{id} twice");
                if op["security"] == json!([]) {
                    continue;
                }
                let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let scope = required_scope(&method, path).as_str();
                assert_eq!(op["x-billd-scope"], scope, "{method} {path}");
                assert_eq!(op["security"][0]["bearer"][0], scope, "{method} {path}");
            }
        }
        let refunds = &doc["paths"]["/stripe/refunds"]["post"];
        assert_eq!(refunds["x-billd-scope"], "admin");
        assert!(refunds["responses"]["409"].is_object());
        let webhook = &doc["paths"]["/stripe/webhook"]["post"];
        assert_eq!(webhook["security"], json!([]));
    }
}

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
//! Each operation carries an example request and answer recorded by a test run
//! (`examples`, from `docs/api-examples.json`).
//!
//! Field names are exactly those the view structs serialise (`store::mirror`,
//! `store::flags`, `store::catalog`, `store::accounts`, `report`, `http::api::*`).

use std::sync::LazyLock;

use axum::{http::header, response::IntoResponse};
use serde_json::{Map, Value, json};

mod components;
mod examples;
mod op;
mod operations;

use components::{headers, parameters, responses, schemas};
use operations::operations;

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
    examples::attach(&mut paths);
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::http::Method;

    use super::*;
    use crate::http::auth::required_scope;

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

//! `GET /openapi.json` (DESIGN §3): served publicly as JSON, documents every route the
//! router registers (read from `src/http/mod.rs` itself, so a new route without docs
//! fails here) and nothing else, every `$ref` resolves, and real answers fit the
//! schemas the document gives them.

mod common;

use std::collections::BTreeSet;

use billd::store::tokens::Scope;
use common::*;
use serde_json::{Value, json};

const METHODS: [&str; 8] = [
    "get", "post", "put", "patch", "delete", "head", "options", "trace",
];

async fn fetch_document(app: &TestApp) -> Value {
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_document_is_served_without_a_token_as_openapi_3_1_json() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert!(response.headers().contains_key("x-request-id"));
    let doc: Value = response.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert!(doc["paths"].as_object().is_some_and(|p| !p.is_empty()));
    // The same bytes every time (built once).
    let again = fetch_document(&app).await;
    assert_eq!(again, doc);
    app.shutdown().await;
}

// ---- the routes, read from the router's source ------------------------------------

/// The source without comments (strings and char literals kept as they are).
fn strip_comments(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == '"' {
            out.push(c);
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    out.push(chars[i]);
                    i += 1;
                }
                if i < chars.len() {
                    out.push(chars[i]);
                    i += 1;
                }
            }
            out.push('"');
            i += 1;
        } else if c == '\'' && chars.get(i + 2) == Some(&'\'') {
            // A char literal such as '"': copied whole.
            out.extend(&chars[i..i + 3]);
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The text up to the `)` closing an already opened `(`, and the text after it.
fn balanced(text: &str) -> (&str, &str) {
    let mut depth = 1;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => {
                depth -= 1;
                if depth == 0 {
                    return (&text[..i], &text[i + 1..]);
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses after: {text:.80}");
}

/// The names of the calls at the top level of a method-router expression:
/// `get(a).post(b)` gives `get`, `post`; `axum::routing::get(a)` gives `get`.
fn top_level_calls(expr: &str) -> Vec<String> {
    let mut calls = Vec::new();
    let mut depth = 0;
    let mut word = String::new();
    let mut in_string = false;
    for c in expr.chars() {
        if in_string {
            if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '[' | '{' => {
                if depth == 0 && !word.is_empty() {
                    let name = word.rsplit("::").next().unwrap_or(&word).to_string();
                    calls.push(name);
                }
                depth += 1;
            }
            ')' | ']' | '}' => depth -= 1,
            _ => {}
        }
        if c.is_alphanumeric() || c == '_' || c == ':' {
            word.push(c);
        } else {
            word.clear();
        }
    }
    calls
}

/// An axum path as OpenAPI writes it: `{id}` stays, `{*rest}`, `:id` and `*rest`
/// (older axum) become `{rest}`, `{id}`.
fn openapi_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if let Some(name) = segment.strip_prefix("{*").and_then(|s| s.strip_suffix('}')) {
                format!("{{{name}}}")
            } else if let Some(name) = segment
                .strip_prefix(':')
                .or_else(|| segment.strip_prefix('*'))
            {
                format!("{{{name}}}")
            } else {
                segment.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every `.route("PATH", METHOD(..)[.METHOD(..)]…)` of a router's source, as
/// (lowercase method, OpenAPI path).
fn routes_in(source: &str) -> BTreeSet<(String, String)> {
    let code = strip_comments(source);
    let mut routes = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find(".route(") {
        let (args, after) = balanced(&rest[at + ".route(".len()..]);
        rest = after;
        let args = args.trim_start();
        let path = args
            .strip_prefix('"')
            .and_then(|a| a.split_once('"'))
            .map(|(path, _)| path)
            .unwrap_or_else(|| panic!("a route whose path is not a string literal: {args:.80}"));
        let (_, methods) = args[path.len() + 2..]
            .split_once(',')
            .unwrap_or_else(|| panic!("no method router in .route({args})"));
        let mut found = 0;
        for call in top_level_calls(methods) {
            assert!(
                call != "any" && call != "on" && call != "any_service",
                "route {path} uses `{call}`: name its methods so they can be documented"
            );
            if METHODS.contains(&call.as_str()) {
                routes.insert((call, openapi_path(path)));
                found += 1;
            }
        }
        assert!(found > 0, "no method found for route {path}: {methods}");
    }
    routes
}

fn set(items: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect()
}

#[test]
fn the_route_reader_handles_chains_split_lines_comments_and_old_syntax() {
    let source = r#"
        Router::new()
            .route("/a", post(h::create)) // .route("/commented", get(x))
            /* .route("/block", get(y)) */
            .route(
                "/a/{id}",
                get(h::get)
                    .patch(h::update)
                    .delete(h::delete),
            )
            .route_layer(middleware::from_fn(auth))
            .route(
                "/b/:id/*rest",
                axum::routing::put(h::put).layer(limit(Some("(x)"))),
            )
            .route("/c/{*path}", get(files))
    "#;
    assert_eq!(
        routes_in(source),
        set(&[
            ("post", "/a"),
            ("get", "/a/{id}"),
            ("patch", "/a/{id}"),
            ("delete", "/a/{id}"),
            ("put", "/b/{id}/{rest}"),
            ("get", "/c/{path}"),
        ])
    );
}

fn router_routes() -> BTreeSet<(String, String)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/mod.rs");
    let source = std::fs::read_to_string(path).unwrap();
    let routes = routes_in(&source);
    // The reader must see the router, not nothing.
    for known in [
        ("post", "/stripe/webhook"),
        ("get", "/openapi.json"),
        ("get", "/metrics"),
        ("get", "/stripe/customers/{id}"),
        ("patch", "/stripe/customers/{id}"),
        ("delete", "/stripe/customers/{id}"),
        ("post", "/stripe/payments"),
        ("get", "/stripe/payments"),
    ] {
        assert!(
            routes.contains(&(known.0.to_string(), known.1.to_string())),
            "the route reader missed {known:?}: {routes:?}"
        );
    }
    routes
}

fn documented(doc: &Value) -> BTreeSet<(String, String)> {
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if METHODS.contains(&method.as_str()) {
                ops.insert((method.clone(), path.clone()));
            }
        }
    }
    ops
}

#[tokio::test]
async fn every_route_of_the_router_is_documented_and_nothing_else() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    app.shutdown().await;
    let routes = router_routes();
    let documented = documented(&doc);
    let missing: Vec<_> = routes.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes without an operation in /openapi.json (add them to src/http/openapi/operations.rs): {missing:?}"
    );
    let stale: Vec<_> = documented.difference(&routes).collect();
    assert!(
        stale.is_empty(),
        "operations in /openapi.json without a route: {stale:?}"
    );
}

/// Follows `$ref`s (local ones only) to what they name.
fn resolve<'a>(doc: &'a Value, mut v: &'a Value) -> &'a Value {
    for _ in 0..16 {
        let Some(r) = v.get("$ref").and_then(Value::as_str) else {
            return v;
        };
        let pointer = r
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("not a local $ref: {r}"));
        v = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("$ref {r} names nothing"));
    }
    panic!("a $ref cycle");
}

#[tokio::test]
async fn every_operation_names_its_scope_request_id_idempotency_key_and_params() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    app.shutdown().await;
    let public = set(&[
        ("post", "/stripe/webhook"),
        ("get", "/healthz"),
        ("get", "/readyz"),
        ("get", "/openapi.json"),
        ("get", "/docs"),
    ]);
    assert!(doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer");
    for (method, path) in documented(&doc) {
        let op = &doc["paths"][&path][&method];
        let name = format!("{method} {path}");
        assert!(op["operationId"].is_string(), "{name}");
        let params: Vec<&Value> = op["parameters"]
            .as_array()
            .map(|p| p.iter().map(|p| resolve(&doc, p)).collect())
            .unwrap_or_default();
        let has_param = |location: &str, param: &str| {
            params
                .iter()
                .any(|p| p["in"] == location && p["name"].as_str() == Some(param))
        };
        // Path templates and path parameters agree.
        for segment in path.split('/') {
            if let Some(param) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                assert!(
                    has_param("path", param),
                    "{name}: no path parameter {param}"
                );
            }
        }
        for p in params.iter().filter(|p| p["in"] == "path") {
            let template = format!("{{{}}}", p["name"].as_str().unwrap());
            assert!(path.contains(&template), "{name}: stray path parameter {p}");
            assert_eq!(p["required"], true, "{name}: {p}");
        }
        // Security: none on the public routes, a scope on the others.
        if public.contains(&(method.clone(), path.clone())) {
            assert_eq!(op["security"], serde_json::json!([]), "{name}");
        } else {
            let scope = op["x-billd-scope"]
                .as_str()
                .unwrap_or_else(|| panic!("{name}"));
            assert!(["read", "write", "admin"].contains(&scope), "{name}");
            assert_eq!(op["security"][0]["bearer"][0], scope, "{name}");
            assert!(
                op["description"].as_str().unwrap().contains(scope),
                "{name}"
            );
            for status in ["401", "403"] {
                assert!(op["responses"][status].is_object(), "{name}: no {status}");
            }
            if method != "get" && path.starts_with("/stripe/") {
                assert!(
                    has_param("header", "Idempotency-Key"),
                    "{name}: no Idempotency-Key"
                );
                assert!(op["responses"]["409"].is_object(), "{name}: no 409");
            }
        }
        // Every response names x-request-id, every error is the error shape.
        let responses = op["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{name}: no success answer"
        );
        for (status, response) in responses {
            let response = resolve(&doc, response);
            assert!(
                response["headers"]["x-request-id"].is_object(),
                "{name} {status}: no x-request-id header"
            );
            if !status.starts_with('2') {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/Error",
                    "{name} {status}"
                );
            }
        }
    }
    let webhook = &doc["paths"]["/stripe/webhook"]["post"];
    assert!(
        webhook["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == "Stripe-Signature"
                && p["in"] == "header"
                && p["required"] == true),
        "{webhook}"
    );
    assert_eq!(
        doc["paths"]["/stripe/refunds"]["post"]["x-billd-scope"],
        "admin"
    );
    assert_eq!(
        doc["paths"]["/stripe/events/{id}/replay"]["post"]["x-billd-scope"],
        "admin"
    );
    assert_eq!(
        doc["paths"]["/stripe/events"]["get"]["x-billd-scope"],
        "read"
    );
    assert_eq!(
        doc["paths"]["/stripe/payments"]["post"]["x-billd-scope"],
        "write"
    );
    for status in ["402", "409", "422", "429", "502", "503"] {
        assert!(
            doc["paths"]["/stripe/payments"]["post"]["responses"][status].is_object(),
            "POST /stripe/payments has no {status}"
        );
    }
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    out.push(v.as_str().expect("a $ref is a string").to_string());
                } else {
                    collect_refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_ref_resolves_to_a_component_and_every_schema_is_used() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    app.shutdown().await;
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(refs.len() > 50, "suspiciously few $refs: {}", refs.len());
    for r in &refs {
        assert!(r.starts_with("#/components/"), "{r}");
        assert!(
            doc.pointer(&r[1..]).is_some(),
            "$ref {r} resolves to nothing"
        );
    }
    let used: BTreeSet<&str> = refs
        .iter()
        .filter_map(|r| r.strip_prefix("#/components/schemas/"))
        .collect();
    for name in doc["components"]["schemas"].as_object().unwrap().keys() {
        assert!(used.contains(name.as_str()), "schema {name} is never used");
    }
}

// ---- real answers against their schemas ---------------------------------------------

/// Checks `value` against a schema of the subset the document uses: `$ref`, `allOf`,
/// `type` (one or a list), `enum`, `const`, `required`, `properties`, `items`,
/// `format: date-time`. With `strict`, an object may only have declared properties
/// (the document must name every field the code sends).
fn check(
    doc: &Value,
    schema: &Value,
    value: &Value,
    at: &str,
    strict: bool,
    errors: &mut Vec<String>,
) {
    let schema = resolve(doc, schema);
    if let Some(parts) = schema["allOf"].as_array() {
        for part in parts {
            check(doc, part, value, at, false, errors);
        }
    }
    if let Some(types) = schema.get("type") {
        let types: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            other => panic!("odd type {other}"),
        };
        let fits = types.iter().any(|t| match *t {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "string" => value.is_string(),
            "array" => value.is_array(),
            "object" => value.is_object(),
            other => panic!("odd type {other}"),
        });
        if !fits {
            errors.push(format!("{at}: {value} is not {types:?}"));
            return;
        }
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        errors.push(format!("{at}: {value} is not one of {allowed:?}"));
    }
    if let Some(c) = schema.get("const")
        && c != value
    {
        errors.push(format!("{at}: {value} is not {c}"));
    }
    if schema["format"] == "date-time"
        && let Some(s) = value.as_str()
        && !(s.len() >= 20 && s.as_bytes()[10] == b'T' && s.ends_with('Z'))
    {
        errors.push(format!("{at}: {s:?} is not an RFC 3339 UTC time"));
    }
    if let Some(object) = value.as_object() {
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap();
            if !object.contains_key(name) {
                errors.push(format!("{at}: required `{name}` is missing"));
            }
        }
        let mut declared = BTreeSet::new();
        let mut declares = false;
        let mut parts = vec![schema];
        parts.extend(
            schema["allOf"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| resolve(doc, p)),
        );
        for part in parts {
            if let Some(props) = part["properties"].as_object() {
                declares = true;
                declared.extend(props.keys().cloned());
            }
        }
        if let Some(props) = schema["properties"].as_object() {
            for (name, sub) in props {
                if let Some(v) = object.get(name) {
                    check(doc, sub, v, &format!("{at}.{name}"), true, errors);
                }
            }
        }
        if strict && declares {
            for name in object.keys() {
                if !declared.contains(name) {
                    errors.push(format!("{at}: `{name}` is sent but not documented"));
                }
            }
        }
    }
    if let (Some(items), Some(values)) = (schema.get("items"), value.as_array()) {
        for (i, v) in values.iter().enumerate() {
            check(doc, items, v, &format!("{at}[{i}]"), true, errors);
        }
    }
}

/// Checks a real answer against the operation's documented answer for its status.
async fn fits(
    doc: &Value,
    method: &str,
    template: &str,
    response: reqwest::Response,
    expected_status: u16,
) -> Value {
    let status = response.status().as_u16();
    assert!(
        response.headers().contains_key("x-request-id"),
        "{method} {template}: no x-request-id"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, expected_status, "{method} {template}: {body}");
    let op = &doc["paths"][template][method];
    assert!(op.is_object(), "{method} {template} is not documented");
    let documented = resolve(doc, &op["responses"][status.to_string()]);
    assert!(
        documented.is_object(),
        "{method} {template} answered {status}, which is not documented"
    );
    let schema = &documented["content"]["application/json"]["schema"];
    let mut errors = Vec::new();
    check(doc, schema, &body, "$", true, &mut errors);
    assert!(
        errors.is_empty(),
        "{method} {template} {status} does not fit its schema:\n{}\n{body}",
        errors.join("\n")
    );
    body
}

fn nonempty<'a>(body: &'a Value, what: &str) -> &'a Vec<Value> {
    let data = body["data"].as_array().unwrap();
    assert!(
        !data.is_empty(),
        "{what} is empty, so its items went unchecked"
    );
    data
}

#[tokio::test]
async fn real_answers_fit_the_documented_schemas() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    let read = app.token(Scope::Read).await;
    let admin = app.token(Scope::Admin).await;

    // Some of everything in the mirror.
    let mut failed = fixture_as("invoice.payment_failed.json", "evt_oa_failed");
    failed["livemode"] = false.into();
    let mut price = fixture_as("price.created.json", "evt_oa_price");
    price["data"]["object"]["product"] = "prod_JdJ6Wt7rsz4EPJ".into();
    price["data"]["object"]["active"] = true.into();
    // A paying subscription, so the movements and retention reports have rows to check.
    let mut subscription = fixture_as("customer.subscription.created.json", "evt_oa_sub");
    subscription["data"]["object"]["items"]["data"][0]["price"]["unit_amount"] = 1000.into();
    let events = [
        fixture_as("customer.created.json", "evt_oa_customer"),
        subscription,
        fixture_as("charge.succeeded.json", "evt_oa_charge"),
        fixture_as("charge.failed.json", "evt_oa_charge_failed"),
        fixture_as("invoice.paid.json", "evt_oa_invoice"),
        fixture_as("product.created.json", "evt_oa_product"),
        price,
        failed,
    ];
    for event in &events {
        let response = app.post_event(event).await;
        fits(&doc, "post", "/stripe/webhook", response, 200).await;
    }
    app.drained().await;

    let get = |path: &str, token: &str| {
        let request = app.client.get(app.url(path)).bearer_auth(token);
        async move { request.send().await.unwrap() }
    };
    let post = |path: &str, token: &str| {
        let request = app.client.post(app.url(path)).bearer_auth(token);
        async move { request.send().await.unwrap() }
    };

    fits(&doc, "get", "/healthz", get("/healthz", "").await, 200).await;
    fits(&doc, "get", "/readyz", get("/readyz", "").await, 200).await;

    let page = fits(
        &doc,
        "get",
        "/stripe/events",
        get("/stripe/events?limit=100", &read).await,
        200,
    )
    .await;
    assert_eq!(nonempty(&page, "events").len(), events.len());
    fits(
        &doc,
        "get",
        "/stripe/events/{id}",
        get("/stripe/events/evt_oa_sub", &read).await,
        200,
    )
    .await;
    fits(
        &doc,
        "post",
        "/stripe/events/{id}/replay",
        post("/stripe/events/evt_oa_customer/replay", &admin).await,
        200,
    )
    .await;
    app.drained().await;

    let customer = fits(
        &doc,
        "get",
        "/stripe/customers/{id}",
        get("/stripe/customers/cus_IhGfebO16cMIGN", &read).await,
        200,
    )
    .await;
    let subscription = customer["subscriptions"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no subscription in {customer}"))
        .to_string();
    fits(
        &doc,
        "get",
        "/stripe/subscriptions/{id}",
        get(&format!("/stripe/subscriptions/{subscription}"), &read).await,
        200,
    )
    .await;
    let payments = fits(
        &doc,
        "get",
        "/stripe/payments",
        get("/stripe/payments", &read).await,
        200,
    )
    .await;
    nonempty(&payments, "payments");
    let invoices = fits(
        &doc,
        "get",
        "/stripe/invoices",
        get("/stripe/invoices", &read).await,
        200,
    )
    .await;
    nonempty(&invoices, "invoices");
    let plans = fits(
        &doc,
        "get",
        "/stripe/plans",
        get("/stripe/plans", &read).await,
        200,
    )
    .await;
    assert!(
        !nonempty(&plans, "plans")[0]["prices"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{plans}"
    );

    let flags = fits(
        &doc,
        "get",
        "/stripe/flags",
        get("/stripe/flags", &read).await,
        200,
    )
    .await;
    let flag = nonempty(&flags, "flags")[0]["id"].as_i64().unwrap();
    fits(
        &doc,
        "post",
        "/stripe/flags/{id}/resolve",
        post(&format!("/stripe/flags/{flag}/resolve"), &admin).await,
        200,
    )
    .await;

    let revenue = fits(
        &doc,
        "get",
        "/stripe/reports/revenue",
        get("/stripe/reports/revenue?from=2015-01-01", &read).await,
        200,
    )
    .await;
    nonempty(&revenue, "the revenue report");
    let mrr = fits(
        &doc,
        "get",
        "/stripe/reports/mrr",
        get("/stripe/reports/mrr", &read).await,
        200,
    )
    .await;
    nonempty(&mrr, "the MRR report");
    let subs = fits(
        &doc,
        "get",
        "/stripe/reports/subscriptions",
        get("/stripe/reports/subscriptions?from=2015-01-01", &read).await,
        200,
    )
    .await;
    nonempty(&subs, "the subscriptions report");
    let failed = fits(
        &doc,
        "get",
        "/stripe/reports/failed-payments",
        get("/stripe/reports/failed-payments?from=2015-01-01", &read).await,
        200,
    )
    .await;
    nonempty(&failed, "the failed-payments report");
    let movements = fits(
        &doc,
        "get",
        "/stripe/reports/mrr-movements",
        get("/stripe/reports/mrr-movements?from=2015-01-01", &read).await,
        200,
    )
    .await;
    nonempty(&movements, "the MRR movements report");
    let retention = fits(
        &doc,
        "get",
        "/stripe/reports/retention",
        get(
            "/stripe/reports/retention?from=2015-01-01&interval=week",
            &read,
        )
        .await,
        200,
    )
    .await;
    nonempty(&retention, "the retention report");

    // Errors: the error shape under the documented statuses.
    fits(
        &doc,
        "get",
        "/stripe/events",
        get("/stripe/events", "").await,
        401,
    )
    .await;
    fits(
        &doc,
        "post",
        "/stripe/events/{id}/replay",
        post("/stripe/events/evt_oa_sub/replay", &read).await,
        403,
    )
    .await;
    fits(
        &doc,
        "get",
        "/stripe/events/{id}",
        get("/stripe/events/evt_nope", &read).await,
        404,
    )
    .await;
    fits(
        &doc,
        "get",
        "/stripe/events",
        get("/stripe/events?status=bogus", &read).await,
        400,
    )
    .await;
    fits(
        &doc,
        "get",
        "/stripe/reports/revenue",
        get("/stripe/reports/revenue?interval=fortnight", &read).await,
        400,
    )
    .await;
    // A query string or path parameter of the wrong type is billd's JSON error too.
    fits(
        &doc,
        "get",
        "/stripe/events",
        get("/stripe/events?limit=many", &read).await,
        400,
    )
    .await;
    let unsigned = app.post_webhook("{}", None).await;
    fits(&doc, "post", "/stripe/webhook", unsigned, 400).await;
    app.shutdown().await;
}

#[tokio::test]
async fn the_frameworks_own_refusals_fit_the_documented_error_responses() {
    let app = spawn_app().await;
    let doc = fetch_document(&app).await;
    let write = app.token(Scope::Write).await;

    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(1024 * 1024 + 1));
    let header = sign(&big, WEBHOOK_SECRET, billd::time::now_secs());
    let response = app.post_webhook(big, Some(&header)).await;
    let body = fits(&doc, "post", "/stripe/webhook", response, 413).await;
    assert_eq!(body["error"]["type"], "payload_too_large");

    let response = app
        .client
        .post(app.url("/stripe/flags/1/resolve"))
        .bearer_auth(&write)
        .header("content-type", "text/plain")
        .body("resolve it")
        .send()
        .await
        .unwrap();
    fits(&doc, "post", "/stripe/flags/{id}/resolve", response, 400).await;

    // 405 is documented once, as a component: any undocumented method of a path.
    let component = &doc["components"]["responses"]["MethodNotAllowed"];
    assert!(component["headers"]["Allow"].is_object(), "{component}");
    for (method, path) in [
        (reqwest::Method::PUT, "/stripe/customers"),
        (reqwest::Method::DELETE, "/healthz"),
    ] {
        let response = app
            .client
            .request(method, app.url(path))
            .bearer_auth(&write)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405);
        assert!(response.headers().contains_key("allow"));
        assert!(response.headers().contains_key("x-request-id"));
        let body: Value = response.json().await.unwrap();
        let mut errors = Vec::new();
        check(
            &doc,
            &component["content"]["application/json"]["schema"],
            &body,
            "$",
            true,
            &mut errors,
        );
        assert!(errors.is_empty(), "{path}: {errors:?} {body}");
        assert_eq!(body["error"]["type"], "method_not_allowed");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn the_limits_answers_fit_the_documented_error_responses() {
    let app = spawn_app_with(
        |c| {
            c.limits.failed_auth_burst = 1;
            c.limits.webhook_burst = 1;
            c.limits.webhook_per_sec = 1;
            c.limits.money_burst = 1;
            c.limits.money_per_sec = 1;
        },
        &[WEBHOOK_SECRET],
    )
    .await;
    let doc = fetch_document(&app).await;
    let admin = app.token(Scope::Admin).await;
    // Money routes per token.
    for expected in [400, 429] {
        let response = app
            .client
            .post(app.url("/stripe/refunds"))
            .bearer_auth(&admin)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let body = fits(&doc, "post", "/stripe/refunds", response, expected).await;
        if expected == 429 {
            assert_eq!(body["error"]["type"], "rate_limited");
        }
    }
    // The webhook per address.
    let event = fixture_as("customer.created.json", "evt_openapi_limit");
    assert_eq!(app.post_event(&event).await.status(), 200);
    let response = app.post_event(&event).await;
    let body = fits(&doc, "post", "/stripe/webhook", response, 429).await;
    assert_eq!(body["error"]["type"], "rate_limited");
    // Failed authentication per address.
    assert_eq!(app.get("/stripe/events", "nope").await.status(), 401);
    let response = app.get("/stripe/events", "nope").await;
    fits(&doc, "get", "/stripe/events", response, 429).await;
    app.shutdown().await;
}

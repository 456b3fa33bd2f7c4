//! The example of every operation in the API reference: each operation of the OpenAPI
//! document called once against the real server (Stripe's routes against localstripe,
//! Checkout and Connect, which localstripe lacks, against an HTTP mock with Stripe's
//! documented shapes), the request and the answer recorded, ids and clock times
//! replaced by placeholders, and the result compared with the committed
//! `docs/api-examples.json`, which the binary bundles into `/openapi.json` (and so
//! `/docs`). A stale example, a new operation without one, or an answer whose status
//! is not the documented success fails here; `BILLD_UPDATE_DOCS=1 cargo test --test
//! api_examples` rewrites the file (then the same with `--test docs` for
//! `docs/openapi.json`, which is built from it).

mod common;

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::PathBuf,
};

use billd::store::tokens::Scope;
use common::{localstripe::LocalStripe, *};
use reqwest::Method;
use serde_json::{Map, Value, json};
use time::{Date, Month, OffsetDateTime, format_description::well_known::Rfc3339};
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

const FILE: &str = "docs/api-examples.json";
const REGENERATE: &str = "BILLD_UPDATE_DOCS=1 cargo test --test api_examples";

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn updating() -> bool {
    std::env::var_os("BILLD_UPDATE_DOCS").is_some_and(|v| v == "1")
}

// ---- recording --------------------------------------------------------------------

/// One call as sent and as answered, before normalisation.
struct Call {
    method: Method,
    path: String,
    body: Option<Value>,
    status: u16,
    answer: Value,
}

/// Calls operations and keeps the first call of each, named by the document's
/// `operationId` for its method and path template.
struct Recorder {
    doc: Value,
    calls: BTreeMap<String, Call>,
}

impl Recorder {
    async fn new(app: &TestApp) -> Recorder {
        let doc = app
            .client
            .get(app.url("/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Recorder {
            doc,
            calls: BTreeMap::new(),
        }
    }

    /// The `operationId` of `method path` (query string ignored); panics if the
    /// document has no such operation.
    fn operation(&self, method: &Method, path: &str) -> String {
        let path = path.split('?').next().unwrap_or(path);
        let segments: Vec<&str> = path.split('/').collect();
        let method = method.as_str().to_ascii_lowercase();
        for (template, item) in self.doc["paths"].as_object().unwrap() {
            let parts: Vec<&str> = template.split('/').collect();
            let fits = parts.len() == segments.len()
                && parts
                    .iter()
                    .zip(&segments)
                    .all(|(t, s)| t == s || t.starts_with('{') && !s.is_empty());
            if let (true, Some(id)) = (fits, item[&method]["operationId"].as_str()) {
                return id.to_string();
            }
        }
        panic!("{method} {path}: no operation of the document");
    }

    /// Sends a request (with `token`, if any) and records it as its operation's
    /// example; asserts that it answered the documented success and returns the
    /// answer. Each operation is recorded once.
    async fn record(
        &mut self,
        app: &TestApp,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        let id = self.operation(&method, path);
        assert!(
            !self.calls.contains_key(&id),
            "{id} recorded twice: send other calls with `send`"
        );
        let (status, answer) = send(app, token, method.clone(), path, body.clone()).await;
        let success = success_status(&self.doc, &id);
        assert_eq!(status, success, "{id}: {method} {path} answered {answer}");
        self.calls.insert(
            id,
            Call {
                method,
                path: path.to_string(),
                body,
                status,
                answer: answer.clone(),
            },
        );
        answer
    }
}

/// Sends a request: the answer's status and body (JSON, or the text of any other
/// content type).
async fn send(
    app: &TestApp,
    token: Option<&str>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.client.request(method.clone(), app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = &body {
        request = request.json(body);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = response.status().as_u16();
    let json = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    let text = response.text().await.unwrap();
    let answer = if json {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
    } else {
        Value::String(text)
    };
    (status, answer)
}

/// A fixture event with its own id and no personal data, as billd receives it.
fn event(name: &str, id: &str) -> Value {
    let mut v = fixture_as(name, id);
    personal::scrub(&mut v);
    v
}

/// A webhook billd stores and applies before the next one is sent, so the order of
/// the inbox and of everything its workers number is the same in every run.
async fn deliver(app: &TestApp, event: &Value) {
    let response = app.post_event(event).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    app.settled(event["id"].as_str().unwrap()).await;
}

// ---- the Stripe double for Checkout and Connect ------------------------------------

/// Stripe's objects for Checkout and Connect (API reference shapes), mounted on `mock`.
async fn mount_checkout_and_connect(mock: &MockServer) {
    let account = "acct_1Fg9jUA3kq9o1aTc";
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": "cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY",
            "object": "checkout.session",
            "amount_subtotal": 2500,
            "amount_total": 2500,
            "cancel_url": "https://shop.example.com/cancel",
            "created": 1_735_000_000,
            "currency": "eur",
            "customer": null,
            "customer_email": personal::EXAMPLE_EMAIL,
            "expires_at": 1_735_086_400,
            "livemode": false,
            "mode": "payment",
            "payment_intent": null,
            "payment_status": "unpaid",
            "status": "open",
            "subscription": null,
            "success_url": "https://shop.example.com/ok",
            "url": "https://checkout.stripe.com/c/pay/cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY"
        })))
        .mount(mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/accounts"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "id": account,
            "object": "account",
            "business_type": null,
            "capabilities": {"card_payments": "inactive", "transfers": "inactive"},
            "charges_enabled": false,
            "country": "DE",
            "created": 1_735_000_000,
            "default_currency": "eur",
            "details_submitted": false,
            "email": "seller@example.com",
            "payouts_enabled": false,
            "requirements": {
                "currently_due": ["business_type", "external_account", "tos_acceptance.date"],
                "disabled_reason": "requirements.past_due",
                "eventually_due": ["business_type"],
                "past_due": ["business_type"]
            },
            "type": "express"
        })))
        .mount(mock)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/account_links"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "object": "account_link",
            "created": 1_735_000_000,
            "expires_at": 1_735_000_300,
            "url": format!("https://connect.stripe.com/setup/e/{account}/Kx8dXx2wG2Vh")
        })))
        .mount(mock)
        .await;
}

// ---- the run --------------------------------------------------------------------

/// Calls every operation once; `None` when localstripe is not installed (and `CI` is
/// unset: then `LocalStripe::start` panics instead).
async fn record_every_operation() -> Option<BTreeMap<String, Call>> {
    let ls = LocalStripe::start().await?;
    let mock = MockServer::start().await;
    mount_checkout_and_connect(&mock).await;

    // Stripe's routes against localstripe. Its webhooks are not sent back: what the
    // inbox holds (and so what the events routes answer) is only what this test posts.
    let api_base = ls.url.clone();
    let stripe = spawn_app_with(
        move |c| {
            c.stripe.api_base = api_base;
            // localstripe rejects automatic_payment_methods.
            c.stripe.payments_without_redirects = false;
            c.stripe.retry_backoff_ms = 10;
        },
        &[WEBHOOK_SECRET],
    )
    .await;
    // Everything else against the mirror of fixture events (fixed times), Checkout and
    // Connect against the mock.
    let mock_base = mock.uri();
    let app = spawn_app_with(
        move |c| {
            c.stripe.api_base = mock_base;
            c.stripe.max_retries = 0;
        },
        &[WEBHOOK_SECRET],
    )
    .await;
    let mut rec = Recorder::new(&app).await;
    stripe_operations(&mut rec, &stripe, &ls).await;
    mirror_operations(&mut rec, &app).await;
    stripe.shutdown().await;
    app.shutdown().await;
    Some(rec.calls)
}

fn id_of(answer: &Value) -> String {
    answer["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {answer}"))
        .to_string()
}

/// Customers, payment methods, subscriptions, payments and refunds through Stripe.
async fn stripe_operations(rec: &mut Recorder, app: &TestApp, ls: &LocalStripe) {
    let admin = app.token(Scope::Admin).await;
    let t = Some(admin.as_str());
    ls.plan("plan_pro_monthly", 1500, "eur").await;

    let c = rec
        .record(
            app,
            t,
            Method::POST,
            "/stripe/customers",
            Some(json!({
                "email": personal::EXAMPLE_EMAIL,
                "name": "Jenny Rosen",
                "metadata": {"crm_id": "4711"},
            })),
        )
        .await;
    let cus = id_of(&c);
    rec.record(
        app,
        t,
        Method::PATCH,
        &format!("/stripe/customers/{cus}"),
        Some(json!({"description": "Pro plan, billed monthly"})),
    )
    .await;
    let pm = rec
        .record(
            app,
            t,
            Method::POST,
            &format!("/stripe/customers/{cus}/payment-methods"),
            Some(json!({"payment_method": "pm_card_visa"})),
        )
        .await;
    let pm = id_of(&pm);
    rec.record(
        app,
        t,
        Method::POST,
        &format!("/stripe/customers/{cus}/payment-methods/{pm}/default"),
        None,
    )
    .await;

    let sub = rec
        .record(
            app,
            t,
            Method::POST,
            "/stripe/subscriptions",
            Some(json!({"customer": cus, "price": "plan_pro_monthly", "quantity": 2})),
        )
        .await;
    let sub = id_of(&sub);
    rec.record(
        app,
        t,
        Method::PATCH,
        &format!("/stripe/subscriptions/{sub}"),
        Some(json!({"quantity": 3})),
    )
    .await;
    rec.record(
        app,
        t,
        Method::GET,
        &format!("/stripe/subscriptions/{sub}"),
        None,
    )
    .await;
    rec.record(
        app,
        t,
        Method::GET,
        &format!("/stripe/customers/{cus}"),
        None,
    )
    .await;
    rec.record(
        app,
        t,
        Method::DELETE,
        &format!("/stripe/subscriptions/{sub}?at_period_end=true"),
        None,
    )
    .await;

    let p = rec
        .record(
            app,
            t,
            Method::POST,
            "/stripe/payments",
            Some(json!({
                "customer": cus, "amount": 2000, "currency": "eur", "payment_method": pm,
            })),
        )
        .await;
    let pi = id_of(&p);
    rec.record(
        app,
        t,
        Method::POST,
        "/stripe/refunds",
        Some(json!({"payment": pi, "amount": 500})),
    )
    .await;

    // A second card, detached again.
    let (status, other) = send(
        app,
        t,
        Method::POST,
        &format!("/stripe/customers/{cus}/payment-methods"),
        Some(json!({"payment_method": "pm_card_visa"})),
    )
    .await;
    assert_eq!(status, 200, "{other}");
    let other = id_of(&other);
    rec.record(
        app,
        t,
        Method::DELETE,
        &format!("/stripe/customers/{cus}/payment-methods/{other}"),
        None,
    )
    .await;
    rec.record(
        app,
        t,
        Method::DELETE,
        &format!("/stripe/customers/{cus}"),
        None,
    )
    .await;
}

/// The unauthenticated routes, the inbox, the mirror reads, flags, reports over a
/// fixed past range (so no row depends on today's date), Checkout and Connect.
async fn mirror_operations(rec: &mut Recorder, app: &TestApp) {
    let read = app.token(Scope::Read).await;
    let admin = app.token(Scope::Admin).await;
    let r = Some(read.as_str());
    let a = Some(admin.as_str());

    // The webhook's example is the first delivery, signed like Stripe signs it.
    let customer = event("customer.created.json", "evt_1OaTcdJDPojXS6LNhQe5vMxy");
    let body = customer.to_string();
    let signature = sign(&body, WEBHOOK_SECRET, billd::time::now_secs());
    let id = rec.operation(&Method::POST, "/stripe/webhook");
    let response = app.post_webhook(body, Some(&signature)).await;
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{answer}");
    rec.calls.insert(
        id,
        Call {
            method: Method::POST,
            path: "/stripe/webhook".into(),
            body: Some(customer.clone()),
            status,
            answer,
        },
    );
    app.settled(customer["id"].as_str().unwrap()).await;
    let mut subscription = event(
        "customer.subscription.created.json",
        "evt_1J02NfJDPojXS6LNawmt1X8q",
    );
    subscription["data"]["object"]["items"]["data"][0]["price"]["unit_amount"] = 1000.into();
    let mut price = event("price.created.json", "evt_1J02UqJDPojXS6LNNADUKUy8");
    price["data"]["object"]["product"] = "prod_JdJ6Wt7rsz4EPJ".into();
    price["data"]["object"]["active"] = true.into();
    let mut failed = event(
        "invoice.payment_failed.json",
        "evt_1RH3DpJDPojXS6LNx0YQ5Hbe",
    );
    failed["livemode"] = false.into();
    for e in [
        subscription,
        event("charge.succeeded.json", "evt_3KtQThJDPojXS6LN0E06aNxq"),
        event("charge.failed.json", "evt_3KtoMeJDPojXS6LN0kPq2Yv9"),
        event("invoice.paid.json", "evt_1KJrGtJDPojXS6LN15fcthM3"),
        event("product.created.json", "evt_1J02UNJDPojXS6LNR2rXzo3p"),
        price,
        failed,
    ] {
        deliver(app, &e).await;
    }

    for path in ["/healthz", "/readyz", "/openapi.json", "/docs"] {
        rec.record(app, None, Method::GET, path, None).await;
    }
    rec.record(app, r, Method::GET, "/metrics", None).await;

    rec.record(app, r, Method::GET, "/stripe/events?limit=2", None)
        .await;
    let event_path = format!("/stripe/events/{}", customer["id"].as_str().unwrap());
    rec.record(app, r, Method::GET, &event_path, None).await;
    rec.record(app, a, Method::POST, &format!("{event_path}/replay"), None)
        .await;
    app.drained().await;

    let cus = "cus_IhGfebO16cMIGN";
    rec.record(
        app,
        r,
        Method::GET,
        &format!("/stripe/customers/{cus}/mrr?from=2021-06-01&to=2021-09-01"),
        None,
    )
    .await;
    for path in [
        "/stripe/payments?limit=2",
        "/stripe/invoices?limit=2",
        "/stripe/plans",
    ] {
        rec.record(app, r, Method::GET, path, None).await;
    }
    let flags = rec
        .record(app, r, Method::GET, "/stripe/flags?status=open", None)
        .await;
    let flag = flags["data"][0]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no open flag: {flags}"));
    rec.record(
        app,
        a,
        Method::POST,
        &format!("/stripe/flags/{flag}/resolve"),
        Some(json!({"by": "support team"})),
    )
    .await;

    for path in [
        "/stripe/reports/revenue?from=2022-04-01&to=2022-05-01",
        "/stripe/reports/mrr?at=2021-07-01",
        "/stripe/reports/subscriptions?from=2021-06-01&to=2021-08-01",
        "/stripe/reports/failed-payments?from=2022-04-01&to=2022-05-01",
        "/stripe/reports/mrr-movements?from=2021-06-01&to=2021-08-01",
        "/stripe/reports/retention?from=2021-06-01&to=2021-08-01",
    ] {
        rec.record(app, r, Method::GET, path, None).await;
    }

    let write = app.token(Scope::Write).await;
    let w = Some(write.as_str());
    rec.record(
        app,
        w,
        Method::POST,
        "/stripe/checkout/sessions",
        Some(json!({
            "mode": "payment", "amount": 2500, "currency": "eur", "name": "Workshop ticket",
            "customer_email": personal::EXAMPLE_EMAIL,
            "success_url": "https://shop.example.com/ok",
            "cancel_url": "https://shop.example.com/cancel",
        })),
    )
    .await;
    let acct = rec
        .record(
            app,
            w,
            Method::POST,
            "/stripe/connect/accounts",
            Some(json!({"type": "express", "country": "de", "email": "seller@example.com"})),
        )
        .await;
    let acct = id_of(&acct);
    rec.record(
        app,
        w,
        Method::POST,
        &format!("/stripe/connect/accounts/{acct}/links"),
        Some(json!({
            "refresh_url": "https://shop.example.com/connect/retry",
            "return_url": "https://shop.example.com/connect/done",
        })),
    )
    .await;
    rec.record(
        app,
        r,
        Method::GET,
        &format!("/stripe/connect/accounts/{acct}"),
        None,
    )
    .await;
}

// ---- normalisation ------------------------------------------------------------------

/// Stripe's id prefixes (and billd's `req_` and `tok_`) whose random part is replaced.
const PREFIXES: [&str; 23] = [
    "acct", "ba", "card", "ch", "cs", "cus", "dp", "evt", "ii", "il", "in", "pi", "pm", "po",
    "price", "prod", "py", "re", "req", "seti", "si", "sub", "tok",
];

/// The random part of an id is at least this long (Stripe's are 14 to 24 characters;
/// words such as `in_progress` are shorter, and placeholders are too).
const MIN_RANDOM: usize = 10;

/// Where clock times go: the run's start becomes this instant.
const BASE: (i32, Month, u8) = (2025, Month::January, 1);

/// Makes a run's recording the same in every run: each distinct random id becomes
/// `<prefix>_example<n>` (numbered per prefix in order of first appearance, walking the
/// operations by id), and each time the run's clock made (at or after its start) becomes
/// [`BASE`] plus the same calendar offset from the run's start, in whole months and
/// days (a monthly period's end is a month later in every run). Times before the run
/// come from fixtures and stay.
struct Normaliser {
    ids: BTreeMap<String, String>,
    counts: BTreeMap<String, usize>,
    start: OffsetDateTime,
}

impl Normaliser {
    fn new(start_secs: i64) -> Normaliser {
        Normaliser {
            ids: BTreeMap::new(),
            counts: BTreeMap::new(),
            start: OffsetDateTime::from_unix_timestamp(start_secs).unwrap(),
        }
    }

    fn value(&mut self, v: &mut Value) {
        match v {
            Value::String(s) => *s = self.text(s),
            Value::Array(items) => items.iter_mut().for_each(|v| self.value(v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.value(v)),
            _ => {}
        }
    }

    fn text(&mut self, s: &str) -> String {
        if let Some(t) = self.clock_time(s) {
            return t;
        }
        // Ids are runs of `[A-Za-z0-9_]`: within one, `prefix_random` pairs are replaced.
        let mut out = String::with_capacity(s.len());
        let mut word = String::new();
        for c in s.chars().chain(std::iter::once('\0')) {
            if c.is_ascii_alphanumeric() || c == '_' {
                word.push(c);
                continue;
            }
            out.push_str(&self.word(&word));
            word.clear();
            if c != '\0' {
                out.push(c);
            }
        }
        out
    }

    fn word(&mut self, word: &str) -> String {
        let parts: Vec<&str> = word.split('_').collect();
        let mut out: Vec<String> = Vec::with_capacity(parts.len());
        let mut i = 0;
        while i < parts.len() {
            if let Some(random) = parts.get(i + 1)
                && PREFIXES.contains(&parts[i])
                && random.len() >= MIN_RANDOM
            {
                out.push(self.id(parts[i], random));
                i += 2;
            } else {
                out.push(parts[i].to_string());
                i += 1;
            }
        }
        out.join("_")
    }

    fn id(&mut self, prefix: &str, random: &str) -> String {
        let raw = format!("{prefix}_{random}");
        if let Some(known) = self.ids.get(&raw) {
            return known.clone();
        }
        let n = self.counts.entry(prefix.to_string()).or_default();
        *n += 1;
        let placeholder = format!("{prefix}_example{n}");
        self.ids.insert(raw, placeholder.clone());
        placeholder
    }

    /// The placeholder of an RFC 3339 time the run's clock made, in the same format.
    fn clock_time(&self, s: &str) -> Option<String> {
        let looks = s.len() >= 20 && s.as_bytes()[10] == b'T' && s.ends_with('Z');
        let t = OffsetDateTime::parse(s, &Rfc3339).ok().filter(|_| looks)?;
        if t < self.start {
            return None;
        }
        let (months, days) = calendar_offset(self.start, t);
        let (y, m, d) = BASE;
        let base = Date::from_calendar_date(y, m, d).unwrap();
        let shifted = add_months(base, months) + time::Duration::days(days);
        let date = shifted.to_string();
        Some(match s.split_once('.') {
            Some((_, fraction)) => format!("{date}T00:00:00.{}Z", "0".repeat(fraction.len() - 1)),
            None => format!("{date}T00:00:00Z"),
        })
    }
}

/// `date` plus `months` calendar months, the day clamped to the month's length (as
/// Stripe and localstripe count a monthly period).
fn add_months(date: Date, months: i64) -> Date {
    let index = i64::from(date.year()) * 12 + i64::from(u8::from(date.month())) - 1 + months;
    let year = i32::try_from(index.div_euclid(12)).unwrap();
    let month = Month::try_from(u8::try_from(index.rem_euclid(12) + 1).unwrap()).unwrap();
    let day = date.day().min(time::util::days_in_month(month, year));
    Date::from_calendar_date(year, month, day).unwrap()
}

/// How far `t` is from `start`: whole calendar months, then whole days (rounded).
fn calendar_offset(start: OffsetDateTime, t: OffsetDateTime) -> (i64, i64) {
    let month_of = |d: Date| i64::from(d.year()) * 12 + i64::from(u8::from(d.month()));
    let mut months = month_of(t.date()) - month_of(start.date());
    let at = |months: i64| {
        add_months(start.date(), months)
            .with_time(start.time())
            .assume_utc()
    };
    while months > 0 && at(months) > t + time::Duration::hours(12) {
        months -= 1;
    }
    let days = ((t - at(months)).whole_seconds() as f64 / 86_400.0).round() as i64;
    (months, days.max(0))
}

/// An answer as the reference shows it: the document itself shortened to its head,
/// other text to its first lines.
fn shown(id: &str, answer: &Value) -> Value {
    const LINES: usize = 8;
    match answer {
        _ if id == "openapi" => json!({
            "openapi": answer["openapi"],
            "info": {"title": answer["info"]["title"], "version": answer["info"]["version"]},
            "paths": {"…": "every operation of this document"},
        }),
        Value::String(text) => {
            let lines: Vec<&str> = text.lines().collect();
            let mut shown = lines[..lines.len().min(LINES)].join("\n");
            if lines.len() > LINES {
                shown.push_str("\n…");
            }
            shown.into()
        }
        other => other.clone(),
    }
}

/// The file: every call shown and normalised, walked in operation-id order.
fn render(calls: &BTreeMap<String, Call>, start_secs: i64) -> String {
    let mut norm = Normaliser::new(start_secs);
    let mut operations = Map::new();
    for (id, call) in calls {
        let mut request = json!({"method": call.method.as_str(), "path": call.path});
        if let Some(body) = &call.body {
            request["body"] = body.clone();
        }
        let mut example = json!({
            "request": request,
            "response": {"status": call.status, "body": shown(id, &call.answer)},
        });
        norm.value(&mut example);
        operations.insert(id.clone(), example);
    }
    let file = json!({
        "generated_by": REGENERATE,
        "operations": operations,
    });
    let mut text = serde_json::to_string_pretty(&file).unwrap();
    text.push('\n');
    text
}

/// Every `operationId` of the document.
fn operation_ids(doc: &Value) -> BTreeSet<String> {
    doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .map(|op| op["operationId"].as_str().unwrap().to_string())
        .collect()
}

/// The documented success status of an operation: its one 2xx answer.
fn success_status(doc: &Value, id: &str) -> u16 {
    doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .find(|op| op["operationId"] == id)
        .and_then(|op| {
            op["responses"]
                .as_object()?
                .keys()
                .filter_map(|k| k.parse::<u16>().ok())
                .find(|s| (200..300).contains(s))
        })
        .unwrap_or_else(|| panic!("{id}: no documented success answer"))
}

#[tokio::test]
async fn every_operation_has_a_fresh_example_recorded_from_this_run() {
    let start = billd::time::now_secs();
    let Some(calls) = record_every_operation().await else {
        return;
    };
    // Every call answered its documented success (`Recorder::record` asserts it).
    let documented = operation_ids(&billd::http::openapi::document());
    let recorded: BTreeSet<String> = calls.keys().cloned().collect();
    let missing: Vec<&String> = documented.difference(&recorded).collect();
    assert!(
        missing.is_empty(),
        "operations without an example (call them in record_every_operation): {missing:?}"
    );
    let text = render(&calls, start);
    assert!(
        personal::real_looking_emails(&text).is_empty(),
        "{:?}",
        personal::real_looking_emails(&text)
    );
    let file = repo(FILE);
    let committed = fs::read_to_string(&file).unwrap_or_default();
    if updating() {
        if committed != text {
            fs::write(&file, &text).unwrap();
            eprintln!(
                "{FILE} rewritten; the binary bundles it: now run \
                 `BILLD_UPDATE_DOCS=1 cargo test --test docs` for docs/openapi.json"
            );
        }
        return;
    }
    if committed != text {
        let fresh = serde_json::from_str::<Value>(&text).unwrap();
        let old = serde_json::from_str::<Value>(&committed).unwrap_or(Value::Null);
        let stale: Vec<&String> = fresh["operations"]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(id, v)| old["operations"].get(id.as_str()) != Some(v))
            .map(|(id, _)| id)
            .collect();
        panic!(
            "{FILE} is stale (operations {stale:?}); regenerate it with `{REGENERATE}` \
             and then docs/openapi.json with `BILLD_UPDATE_DOCS=1 cargo test --test docs`, \
             and commit both"
        );
    }
}

/// What the binary serves carries the committed example of every operation: the
/// request line and status, the request body and the answer, where `/docs` reads them.
#[test]
fn every_operation_of_the_document_carries_its_committed_example() {
    let committed: Value = serde_json::from_str(&fs::read_to_string(repo(FILE)).unwrap())
        .expect("docs/api-examples.json is JSON");
    let examples = committed["operations"].as_object().unwrap();
    let doc = billd::http::openapi::document();
    let mut ids = BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for op in item.as_object().unwrap().values() {
            let id = op["operationId"].as_str().unwrap();
            ids.insert(id.to_string());
            let example = examples
                .get(id)
                .unwrap_or_else(|| panic!("{id}: no example in {FILE}; run `{REGENERATE}`"));
            let line = &op["x-billd-example"];
            assert_eq!(line["method"], example["request"]["method"], "{id}");
            assert_eq!(line["path"], example["request"]["path"], "{id}");
            let status = &example["response"]["status"];
            assert_eq!(line["status"], *status, "{id}");
            let answer = &op["responses"][status.to_string()]["content"];
            let media = answer.as_object().unwrap().values().next().unwrap();
            assert_eq!(
                media["examples"]["recorded"]["value"], example["response"]["body"],
                "{id}"
            );
            if let Some(body) = example["request"].get("body") {
                let media = op["requestBody"]["content"]["application/json"].clone();
                assert_eq!(media["examples"]["recorded"]["value"], *body, "{id}");
            }
        }
    }
    let extra: Vec<&String> = examples.keys().filter(|k| !ids.contains(*k)).collect();
    assert!(extra.is_empty(), "examples of no operation: {extra:?}");
}

#[test]
fn committed_examples_hold_no_personal_data() {
    let text = fs::read_to_string(repo(FILE)).unwrap();
    assert_eq!(personal::real_looking_emails(&text), Vec::<String>::new());
    assert!(!text.contains("billz@"), "a fixture's email");
}

#[test]
fn ids_become_numbered_placeholders_and_words_stay() {
    let mut n = Normaliser::new(1_700_000_000);
    assert_eq!(n.text("cus_NffrFeUfNV2Hib"), "cus_example1");
    assert_eq!(
        n.text("/stripe/customers/cus_NffrFeUfNV2Hib/payment-methods/pm_1Q0PsIJvEtkwdCNYMSaVuRz6"),
        "/stripe/customers/cus_example1/payment-methods/pm_example1"
    );
    assert_eq!(n.text("cus_QWERTYUIOP12"), "cus_example2");
    assert_eq!(
        n.text("pi_3MtwBwLkdIwHu7ix28a3tqPa_secret_YrKJUKribcBjcG8HVhfZluoGH"),
        "pi_example1_secret_YrKJUKribcBjcG8HVhfZluoGH"
    );
    for word in [
        "in_progress",
        "requires_payment_method",
        "plan_pro_monthly",
        "cus_example1",
    ] {
        assert_eq!(n.text(word), word);
    }
}

#[test]
fn clock_times_keep_their_calendar_offset_from_the_run_and_fixture_times_stay() {
    // 2024-01-31T10:00:00Z: a month later is the end of February.
    let start = 1_706_695_200;
    let mut n = Normaliser::new(start);
    let at = |secs: i64| billd::time::rfc3339(secs);
    assert_eq!(n.text(&at(start + 3)), "2025-01-01T00:00:00Z");
    assert_eq!(
        n.clock_time("2024-02-29T10:00:02Z").as_deref(),
        Some("2025-02-01T00:00:00Z")
    );
    assert_eq!(
        n.clock_time(&at(start + 14 * 86_400)).as_deref(),
        Some("2025-01-15T00:00:00Z")
    );
    assert_eq!(
        n.clock_time("2025-01-31T10:00:00Z").as_deref(),
        Some("2026-01-01T00:00:00Z")
    );
    assert_eq!(
        n.clock_time("2024-01-31T10:00:00.250Z").as_deref(),
        Some("2025-01-01T00:00:00.000Z")
    );
    assert_eq!(n.clock_time("2021-06-08T10:41:58Z"), None);
    assert_eq!(n.clock_time("2021-06"), None);
}

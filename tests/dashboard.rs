//! `GET /dashboard` (issue 15, docs/dashboard.md): sessions, CSRF and scopes over plain
//! HTTP (these run without a browser), and an operator's round in headless Chromium:
//! log in with a token, find a dead event and replay it, resolve a flag, look at every
//! page (screenshots: `docs/screenshots/dashboard-*.png` with `BILLD_UPDATE_DOCS=1`),
//! with nothing in the console and nothing asked of another host.

mod common;

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use billd::store::{events::Status, tokens::Scope};
use common::{TestApp, browser::Browser, count, fixture_as, spawn_app, spawn_app_with};
use serde_json::Value;

// ---- helpers ----------------------------------------------------------------------

/// An HTTP client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The cookies a response sets, as `name=value; attributes` lines.
fn set_cookies(r: &reqwest::Response) -> Vec<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

/// The value of cookie `name` among `Set-Cookie` lines.
fn cookie_value(lines: &[String], name: &str) -> Option<String> {
    lines.iter().find_map(|l| {
        let (pair, _) = l.split_once(';').unwrap_or((l, ""));
        let (k, v) = pair.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

/// The first hidden CSRF field's value in a page.
fn csrf_of(page: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let at = page.find(marker).expect("a CSRF field") + marker.len();
    page[at..].split('"').next().unwrap().to_string()
}

fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// A logged-in dashboard session over plain HTTP.
struct Session {
    http: reqwest::Client,
    base: String,
    cookie: String,
    csrf: String,
    set_cookie: Vec<String>,
}

impl Session {
    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .header("cookie", format!("billd_session={}", self.cookie))
            .send()
            .await
            .unwrap()
    }

    async fn page(&self, path: &str) -> String {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "GET {path}");
        r.text().await.unwrap()
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header("cookie", format!("billd_session={}", self.cookie))
            .form(form)
            .send()
            .await
            .unwrap()
    }
}

/// The login form's CSRF token and its cookie.
async fn login_form(app: &TestApp) -> (String, String) {
    let r = client()
        .get(app.url("/dashboard/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let lines = set_cookies(&r);
    let cookie = cookie_value(&lines, "billd_login").expect("the login form's cookie");
    let page = r.text().await.unwrap();
    (csrf_of(&page), cookie)
}

async fn post_login(app: &TestApp, token: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let (csrf, cookie) = login_form(app).await;
    let mut request = client()
        .post(app.url("/dashboard/login"))
        .header("cookie", format!("billd_login={cookie}"))
        .form(&[("token", token), ("csrf", &csrf)]);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    request.send().await.unwrap()
}

async fn login(app: &TestApp, token: &str) -> Session {
    let r = post_login(app, token, &[]).await;
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    assert_eq!(location(&r), "/dashboard");
    let set_cookie = set_cookies(&r);
    let cookie = cookie_value(&set_cookie, "billd_session").expect("a session cookie");
    let mut session = Session {
        http: client(),
        base: app.address.clone(),
        cookie,
        csrf: String::new(),
        set_cookie,
    };
    session.csrf = csrf_of(&session.page("/dashboard").await);
    session
}

/// An event the customer handler cannot read: with one attempt it is dead at once.
fn broken_event(id: &str) -> Value {
    let mut event = fixture_as("customer.updated.json", id);
    event["livemode"] = false.into();
    event["data"]["object"]["id"] = 42.into();
    event
}

/// Gives a dead event a payload this billd reads (what a fixed billd would see).
async fn fix_payload(app: &TestApp, id: &str) {
    let mut event = fixture_as("customer.updated.json", id);
    event["livemode"] = false.into();
    let (payload, id) = (event.to_string(), id.to_string());
    app.store
        .run(move |c| {
            c.execute(
                "UPDATE events SET payload = ?1 WHERE id = ?2",
                billd::params![payload, id],
            )?;
            Ok(())
        })
        .await
        .unwrap();
}

async fn dead_app() -> TestApp {
    spawn_app_with(|c| c.workers.max_attempts = 1, &[common::WEBHOOK_SECRET]).await
}

async fn dead_event(app: &TestApp, id: &str) {
    assert!(
        app.post_event(&broken_event(id))
            .await
            .status()
            .is_success()
    );
    assert_eq!(app.settled(id).await, Status::Dead);
}

/// A failed invoice payment: opens a `payment_failed` flag. Answers the flag's id.
async fn open_flag(app: &TestApp) -> i64 {
    let mut event = fixture_as("invoice.payment_failed.json", "evt_dash_failed");
    event["livemode"] = false.into();
    assert!(app.post_event(&event).await.status().is_success());
    app.settled("evt_dash_failed").await;
    count(
        &app.store,
        "SELECT id FROM flags WHERE kind = 'payment_failed' AND status = 'open'",
    )
}

const PAGES: [&str; 7] = [
    "/dashboard",
    "/dashboard/events",
    "/dashboard/events/evt_none",
    "/dashboard/dead",
    "/dashboard/flags",
    "/dashboard/revenue",
    "/dashboard/accounts",
];

// ---- plain HTTP -------------------------------------------------------------------

#[tokio::test]
async fn pages_and_actions_without_a_session_redirect_to_the_login_page() {
    let app = spawn_app().await;
    let http = client();
    for path in PAGES {
        let r = http.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(location(&r), "/dashboard/login", "{path}");
    }
    for path in [
        "/dashboard/events/evt_1/replay",
        "/dashboard/dead/replay",
        "/dashboard/flags/1/resolve",
        "/dashboard/logout",
    ] {
        let r = http
            .post(app.url(path))
            .form(&[("csrf", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{path}");
        assert_eq!(location(&r), "/dashboard/login", "{path}");
    }
    // A cookie that names no session: to the login page, and the cookie is cleared.
    let r = http
        .get(app.url("/dashboard"))
        .header("cookie", format!("billd_session={}", "ab".repeat(32)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cleared = cookie_value(&set_cookies(&r), "billd_session");
    assert_eq!(cleared.as_deref(), Some(""));
    // The login page itself and the bundled files need no session.
    let r = http.get(app.url("/dashboard/login")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    for asset in ["style.css", "dashboard.js", "icon.svg"] {
        let r = http
            .get(app.url(&format!("/dashboard/assets/{asset}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{asset}");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_bad_token_shows_the_login_page_with_an_error_and_sets_no_cookie() {
    let app = spawn_app().await;
    for token in ["billd_not_a_token", "", &"x".repeat(400)] {
        let r = post_login(&app, token, &[]).await;
        assert_eq!(r.status(), 401, "{token:.20}");
        assert!(set_cookies(&r).is_empty(), "{:?}", set_cookies(&r));
        let page = r.text().await.unwrap();
        assert!(page.contains("Unknown or revoked token."), "{page}");
        assert!(page.contains("<form id=\"login\""));
    }
    // A revoked token is refused the same way.
    let token = app.token(Scope::Admin).await;
    app.store
        .run(|c| {
            c.execute("UPDATE api_tokens SET revoked_at = 1", ())?;
            Ok(())
        })
        .await
        .unwrap();
    let r = post_login(&app, &token, &[]).await;
    assert_eq!(r.status(), 401);
    assert!(set_cookies(&r).is_empty());
    // A login form posted without its cookie (from another site, say) is refused.
    let admin = app.token(Scope::Admin).await;
    let r = client()
        .post(app.url("/dashboard/login"))
        .form(&[("token", admin.as_str()), ("csrf", &"ab".repeat(32))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(cookie_value(&set_cookies(&r), "billd_session").is_none());
    app.shutdown().await;
}

#[tokio::test]
async fn the_session_cookie_is_http_only_strict_holds_no_token_and_is_secure_behind_tls() {
    let app = spawn_app().await;
    let token = app.token(Scope::Read).await;
    let s = login(&app, &token).await;
    let line = s
        .set_cookie
        .iter()
        .find(|l| l.starts_with("billd_session="))
        .unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/dashboard", "Max-Age="] {
        assert!(line.contains(attribute), "{line}");
    }
    assert!(!line.contains("Secure"), "plain HTTP: {line}");
    assert!(!line.contains(&token), "the token is not in the cookie");
    assert_eq!(s.cookie.len(), 64);
    // Stored only as a hash.
    let stored = count(
        &app.store,
        &format!(
            "SELECT count(*) FROM dashboard_sessions WHERE id = '{}'",
            s.cookie
        ),
    );
    assert_eq!(stored, 0);
    // An untrusted peer saying TLS is not believed.
    let r = post_login(&app, &token, &[("x-forwarded-proto", "https")]).await;
    assert!(!set_cookies(&r).iter().any(|l| l.contains("Secure")));
    // The login is audited as the token.
    let audited = count(
        &app.store,
        "SELECT count(*) FROM audit_log WHERE action = 'dashboard.login' AND actor LIKE 'token:tok_%'",
    );
    assert_eq!(audited, 2);
    app.shutdown().await;

    // Behind a trusted proxy that terminated TLS: Secure.
    let app = spawn_app_with(
        |c| c.server.trusted_proxies = vec!["127.0.0.1".into()],
        &[common::WEBHOOK_SECRET],
    )
    .await;
    let token = app.token(Scope::Read).await;
    let r = post_login(&app, &token, &[("x-forwarded-proto", "https")]).await;
    assert_eq!(r.status(), 303);
    let lines = set_cookies(&r);
    let line = lines
        .iter()
        .find(|l| l.starts_with("billd_session="))
        .unwrap();
    assert!(line.ends_with("; Secure"), "{line}");
    app.shutdown().await;
}

#[tokio::test]
async fn a_read_session_sees_no_replay_button_and_its_replay_is_forbidden() {
    let app = dead_app().await;
    dead_event(&app, "evt_dash_read").await;
    let flag = open_flag(&app).await;
    let read = login(&app, &app.token(Scope::Read).await).await;

    let dead = read.page("/dashboard/dead").await;
    assert!(dead.contains("evt_dash_read"), "{dead}");
    assert!(!dead.contains("class=\"replay\""), "{dead}");
    assert!(!dead.contains("Replay all dead"));
    let event = read.page("/dashboard/events/evt_dash_read").await;
    assert!(!event.contains("class=\"replay\""));
    assert!(event.contains("shown to sessions of the admin scope only"));
    let flags = read.page("/dashboard/flags").await;
    assert!(!flags.contains("class=\"resolve\""));

    let r = read
        .post(
            "/dashboard/events/evt_dash_read/replay",
            &[("csrf", &read.csrf)],
        )
        .await;
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("needs `admin`"));
    let r = read
        .post("/dashboard/dead/replay", &[("csrf", &read.csrf)])
        .await;
    assert_eq!(r.status(), 403);
    let r = read
        .post(
            &format!("/dashboard/flags/{flag}/resolve"),
            &[("csrf", &read.csrf)],
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(app.settled("evt_dash_read").await, Status::Dead);
    assert_eq!(
        count(
            &app.store,
            "SELECT count(*) FROM flags WHERE status = 'open'"
        ),
        1
    );

    // Write resolves flags but does not replay, exactly as on the API.
    let write = login(&app, &app.token(Scope::Write).await).await;
    assert!(
        write
            .page("/dashboard/flags")
            .await
            .contains("class=\"resolve\"")
    );
    assert!(
        !write
            .page("/dashboard/dead")
            .await
            .contains("class=\"replay\"")
    );
    let r = write
        .post(
            "/dashboard/events/evt_dash_read/replay",
            &[("csrf", &write.csrf)],
        )
        .await;
    assert_eq!(r.status(), 403);
    let r = write
        .post(
            &format!("/dashboard/flags/{flag}/resolve"),
            &[("csrf", &write.csrf)],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), format!("/dashboard/flags?resolved={flag}"));
    assert_eq!(
        count(
            &app.store,
            "SELECT count(*) FROM audit_log WHERE action = 'flag.resolve' AND detail = 'dashboard'"
        ),
        1
    );
    app.shutdown().await;
}

#[tokio::test]
async fn an_admin_session_replays_and_sees_the_payload_with_personal_data_masked() {
    let app = dead_app().await;
    dead_event(&app, "evt_dash_admin").await;
    let created = fixture_as("customer.created.json", "evt_dash_customer");
    assert!(app.post_event(&created).await.status().is_success());
    app.settled("evt_dash_customer").await;
    let admin = login(&app, &app.token(Scope::Admin).await).await;

    let page = admin.page("/dashboard/events/evt_dash_customer").await;
    assert!(page.contains("class=\"payload\""), "{page}");
    assert!(page.contains("cus_IhGfebO16cMIGN"), "ids stay");
    assert!(!page.contains("billz@supabase.io"), "the email is masked");
    assert!(common::personal::real_looking_emails(&page).is_empty());

    let dead = admin.page("/dashboard/dead").await;
    assert!(dead.contains("class=\"replay\"") && dead.contains("Replay all dead"));
    fix_payload(&app, "evt_dash_admin").await;
    let r = admin
        .post(
            "/dashboard/events/evt_dash_admin/replay",
            &[("csrf", admin.csrf.as_str()), ("from", "dead")],
        )
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/dashboard/dead?queued=1");
    assert_eq!(app.settled("evt_dash_admin").await, Status::Processed);
    assert!(
        admin
            .page("/dashboard/dead?queued=1")
            .await
            .contains("Queued 1 event for replay")
    );
    assert_eq!(
        count(
            &app.store,
            "SELECT count(*) FROM audit_log WHERE action = 'event.replay' \
             AND target = 'evt_dash_admin' AND actor LIKE 'token:tok_%'"
        ),
        1
    );

    // Replay all dead: every dead event queued in one go.
    dead_event(&app, "evt_dash_a").await;
    dead_event(&app, "evt_dash_b").await;
    let r = admin
        .post("/dashboard/dead/replay", &[("csrf", &admin.csrf)])
        .await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/dashboard/dead?queued=2");
    // Still unreadable: dead again once tried.
    assert_eq!(app.settled("evt_dash_a").await, Status::Dead);
    app.shutdown().await;
}

#[tokio::test]
async fn a_form_without_or_with_a_wrong_csrf_token_is_refused() {
    let app = dead_app().await;
    dead_event(&app, "evt_dash_csrf").await;
    let flag = open_flag(&app).await;
    let admin = login(&app, &app.token(Scope::Admin).await).await;
    let other = login(&app, &app.token(Scope::Admin).await).await;
    let resolve = format!("/dashboard/flags/{flag}/resolve");
    for path in [
        "/dashboard/events/evt_dash_csrf/replay",
        "/dashboard/dead/replay",
        resolve.as_str(),
        "/dashboard/logout",
    ] {
        let zeros = "0".repeat(64);
        for form in [
            vec![],
            vec![("csrf", "")],
            vec![("csrf", zeros.as_str())],
            // Another session's token is not this one's.
            vec![("csrf", other.csrf.as_str())],
        ] {
            let r = admin.post(path, &form).await;
            assert_eq!(r.status(), 403, "{path} {form:?}");
            let page = r.text().await.unwrap();
            assert!(page.contains("CSRF"), "{page}");
        }
    }
    assert_eq!(app.settled("evt_dash_csrf").await, Status::Dead);
    assert_eq!(
        count(
            &app.store,
            "SELECT count(*) FROM flags WHERE status = 'open'"
        ),
        1
    );
    // The session was not logged out by the forged logouts.
    admin.page("/dashboard").await;
    app.shutdown().await;
}

#[tokio::test]
async fn logout_ends_the_session_on_every_node() {
    let app = spawn_app().await;
    let s = login(&app, &app.token(Scope::Read).await).await;
    let r = s.post("/dashboard/logout", &[("csrf", &s.csrf)]).await;
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r), "/dashboard/login");
    let lines = set_cookies(&r);
    let cleared = lines
        .iter()
        .find(|l| l.starts_with("billd_session="))
        .unwrap();
    assert!(cleared.starts_with("billd_session=;") && cleared.contains("Max-Age=0"));
    // The old cookie, replayed (by a browser that kept it, or on another node: the
    // session is a row in the shared database), is no longer a session.
    let r = s.get("/dashboard").await;
    assert_eq!(r.status(), 303);
    assert_eq!(
        count(&app.store, "SELECT count(*) FROM dashboard_sessions"),
        0
    );
    app.shutdown().await;
}

#[tokio::test]
async fn bad_input_is_a_4xx_page_never_a_5xx() {
    let app = spawn_app().await;
    let s = login(&app, &app.token(Scope::Admin).await).await;
    for (path, status) in [
        ("/dashboard/events?status=nope", 400),
        ("/dashboard/events?type=%3Cscript%3E", 400),
        ("/dashboard/events?after=evt_unknown", 400),
        ("/dashboard/events?after=..%2F..", 400),
        ("/dashboard/events?limit=5&status=", 200),
        ("/dashboard/events/not_an_event", 400),
        ("/dashboard/events/evt_unknown", 404),
        ("/dashboard/dead?after=x", 400),
        ("/dashboard/flags?status=maybe", 400),
        ("/dashboard/flags?after=abc", 400),
        ("/dashboard/assets/secrets.txt", 404),
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status(), status, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        assert!(r.headers().contains_key("content-security-policy"));
    }
    for (path, status) in [
        ("/dashboard/flags/abc/resolve", 400),
        ("/dashboard/flags/99999/resolve", 404),
        ("/dashboard/events/not_an_event/replay", 400),
        ("/dashboard/events/evt_unknown/replay", 404),
    ] {
        let r = s.post(path, &[("csrf", &s.csrf)]).await;
        assert_eq!(r.status(), status, "{path}");
    }
    // Not a form.
    let r = s
        .http
        .post(app.url("/dashboard/dead/replay"))
        .header("cookie", format!("billd_session={}", s.cookie))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    app.shutdown().await;
}

#[tokio::test]
async fn every_page_is_html_under_a_strict_csp_with_only_bundled_assets() {
    let app = dead_app().await;
    dead_event(&app, "evt_dash_pages").await;
    open_flag(&app).await;
    let account = fixture_as("account.updated.json", "evt_dash_account");
    assert!(app.post_event(&account).await.status().is_success());
    app.settled("evt_dash_account").await;
    let s = login(&app, &app.token(Scope::Admin).await).await;
    for (path, shows) in [
        ("/dashboard", "backlog age"),
        ("/dashboard/events", "evt_dash_pages"),
        ("/dashboard/events?status=dead", "evt_dash_pages"),
        (
            "/dashboard/events?type=invoice.payment_failed",
            "evt_dash_failed",
        ),
        ("/dashboard/events/evt_dash_pages", "Last error"),
        ("/dashboard/dead", "evt_dash_pages"),
        ("/dashboard/flags", "payment_failed"),
        ("/dashboard/revenue", "twelve months"),
        ("/dashboard/accounts", "acct_1Fg9jUA3kq9o1aTc"),
    ] {
        let r = s.get(path).await;
        assert_eq!(r.status(), 200, "{path}");
        let csp = r.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("script-src 'self'"));
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        let page = r.text().await.unwrap();
        assert!(page.contains(shows), "{path} lacks {shows:?}");
        assert!(!page.contains("style="), "{path}: inline style");
        assert!(!page.contains("<script>"), "{path}: inline script");
        for attr in ["src=\"", "href=\""] {
            for url in page.split(attr).skip(1) {
                let url = url.split('"').next().unwrap();
                assert!(
                    url.starts_with('/') || url.starts_with('#'),
                    "{path}: {url}"
                );
            }
        }
    }
    let overview = s.page("/dashboard").await;
    assert!(overview.contains("accounts needing action"));
    app.shutdown().await;
}

// ---- in a browser -----------------------------------------------------------------

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Keeps a screenshot in the target directory, and in `docs/screenshots/` when the
/// docs are being regenerated; checks it is not blank.
fn keep(name: &str, png: &[u8], blank: &[u8]) {
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name}: not a PNG");
    assert!(
        png.len() > 10_000 && png.len() > 3 * blank.len(),
        "{name}: the screenshot looks blank: {} bytes (about:blank: {})",
        png.len(),
        blank.len()
    );
    let file = format!("dashboard-{name}.png");
    std::fs::write(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(&file), png).unwrap();
    if std::env::var_os("BILLD_UPDATE_DOCS").is_some() {
        let path = repo(&format!("docs/screenshots/{file}"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }
}

/// Unix seconds of the 15th of the month `back` months before this one.
fn months_ago(back: i64) -> i64 {
    let now = billd::time::now_secs();
    let mut t = billd::report::period::period_start(now, billd::report::Interval::Month);
    for _ in 0..back {
        t = billd::report::period::period_start(t - 1, billd::report::Interval::Month);
    }
    t + 14 * 86_400
}

/// A year of business for the charts: payments in two currencies each month, and
/// subscriptions starting through the year.
async fn a_year_of_business(app: &TestApp) {
    for back in 0..12i64 {
        let at = months_ago(back).min(billd::time::now_secs() - 60);
        for (currency, amount) in [
            ("usd", 42_000 + (11 - back) * 3_500),
            ("eur", 18_000 + back * 900),
        ] {
            let id = format!("{currency}{back}");
            let mut e = fixture_as("charge.succeeded.json", &format!("evt_dash_ch_{id}"));
            e["created"] = at.into();
            let o = &mut e["data"]["object"];
            o["id"] = format!("ch_dash_{id}").into();
            o["payment_intent"] = format!("pi_dash_{id}").into();
            o["amount"] = amount.into();
            o["amount_captured"] = amount.into();
            o["currency"] = currency.into();
            o["created"] = at.into();
            assert!(app.post_event(&e).await.status().is_success());
        }
        let mut s = fixture_as(
            "customer.subscription.created.json",
            &format!("evt_dash_sub_{back}"),
        );
        s["created"] = at.into();
        let o = &mut s["data"]["object"];
        o["id"] = format!("sub_dash_{back}").into();
        o["customer"] = format!("cus_dash_{back}").into();
        for k in [
            "created",
            "start_date",
            "current_period_start",
            "billing_cycle_anchor",
        ] {
            o[k] = at.into();
        }
        let item = &mut o["items"]["data"][0];
        item["id"] = format!("si_dash_{back}").into();
        item["price"]["unit_amount"] = (2_900 + back * 100).into();
        item["price"]["currency"] = "usd".into();
        item["plan"]["amount"] = (2_900 + back * 100).into();
        assert!(app.post_event(&s).await.status().is_success());
    }
    app.drained().await;
}

async fn wait_url(browser: &Browser, ends: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let url = browser.current_url().await;
        if url.ends_with(ends) {
            return url;
        }
        assert!(Instant::now() < deadline, "at {url}, not at …{ends}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The operator's round: log in, see the dead event, replay it, resolve the flag, look
/// at every page, log out — under the CSP, nothing from elsewhere, an empty console.
#[tokio::test]
async fn an_operator_replays_a_dead_event_and_resolves_a_flag_in_a_browser() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = dead_app().await;
    a_year_of_business(&app).await;
    let account = fixture_as("account.updated.json", "evt_dash_account");
    assert!(app.post_event(&account).await.status().is_success());
    let created = fixture_as("customer.created.json", "evt_dash_customer");
    assert!(app.post_event(&created).await.status().is_success());
    dead_event(&app, "evt_dash_browser").await;
    let flag = open_flag(&app).await;
    app.drained().await;
    let token = app.token(Scope::Admin).await;

    // A window of a laptop's size, for the screenshots.
    browser
        .try_session(
            reqwest::Method::POST,
            "/window/rect",
            Some(serde_json::json!({"width": 1280, "height": 900})),
        )
        .await
        .expect("a window size");
    browser.goto("about:blank").await;
    let blank = browser.screenshot().await;
    browser.log("performance").await;
    browser.log("browser").await;

    // No session: the login page. The token is typed in, never put in the URL.
    browser.goto(&app.url("/dashboard/dead")).await;
    wait_url(&browser, "/dashboard/login").await;
    keep("login", &browser.screenshot().await, &blank);
    let input = browser.find("#token").await.expect("the token input");
    browser.type_into(&input, &token).await;
    let submit = browser.find("#login button").await.unwrap();
    browser.click(&submit).await;
    let url = wait_url(&browser, "/dashboard").await;
    assert!(!url.contains(&token));
    let cookies = browser.cookies().await;
    let session = cookies
        .iter()
        .find(|c| c["name"] == "billd_session")
        .expect("a session cookie");
    assert_eq!(session["httpOnly"], true);
    assert_eq!(session["sameSite"], "Strict");
    assert_eq!(
        browser.execute("return document.cookie", vec![]).await,
        "",
        "scripts cannot read the session"
    );
    let dead_card = browser
        .find("a.card.alarm[data-status=dead]")
        .await
        .expect("the dead card, alarmed");
    assert!(browser.text(&dead_card).await.contains('1'));
    keep("overview", &browser.screenshot().await, &blank);

    // Events, filtered by the status select (the script submits it).
    browser.goto(&app.url("/dashboard/events")).await;
    keep("events", &browser.screenshot().await, &blank);
    browser
        .execute(
            "const s = document.querySelector('select[name=status]'); s.value = 'dead'; \
             s.dispatchEvent(new Event('change'));",
            vec![],
        )
        .await;
    wait_url(&browser, "status=dead&type=").await;
    let rows = browser.find_all("table.events tbody tr").await;
    assert_eq!(rows.len(), 1);

    // An event's detail: attempts, last error, the masked payload.
    browser
        .goto(&app.url("/dashboard/events/evt_dash_customer"))
        .await;
    let payload = browser.find("pre.payload").await.expect("the payload");
    let text = browser.text(&payload).await;
    assert!(text.contains("cus_IhGfebO16cMIGN") && !text.contains("billz@"));
    keep("event", &browser.screenshot().await, &blank);

    // The dead letter, replayed from the browser once its handler can read it.
    browser.goto(&app.url("/dashboard/dead")).await;
    let row = browser
        .find("tr[data-event=evt_dash_browser]")
        .await
        .expect("the dead event is listed");
    assert!(browser.text(&row).await.contains("dead"));
    keep("dead", &browser.screenshot().await, &blank);
    fix_payload(&app, "evt_dash_browser").await;
    let replay = browser
        .find("tr[data-event=evt_dash_browser] button.replay")
        .await
        .expect("a replay button");
    browser.click(&replay).await;
    wait_url(&browser, "/dashboard/dead?queued=1").await;
    let notice = browser.find(".notice").await.expect("a notice");
    assert!(browser.text(&notice).await.contains("Queued 1 event"));
    assert_eq!(app.settled("evt_dash_browser").await, Status::Processed);

    // The flag, resolved.
    browser.goto(&app.url("/dashboard/flags")).await;
    keep("flags", &browser.screenshot().await, &blank);
    let resolve = browser
        .find(&format!("tr[data-flag='{flag}'] button.resolve"))
        .await
        .expect("a resolve button");
    browser.click(&resolve).await;
    wait_url(&browser, &format!("/dashboard/flags?resolved={flag}")).await;
    assert_eq!(
        count(
            &app.store,
            &format!("SELECT count(*) FROM flags WHERE id = {flag} AND status = 'resolved'")
        ),
        1
    );
    assert!(
        browser
            .find(&format!("tr[data-flag='{flag}'] button.resolve"))
            .await
            .is_none()
    );

    // Revenue and MRR: SVG drawn on the server, per currency.
    browser.goto(&app.url("/dashboard/revenue")).await;
    let charts = browser.find_all("svg.chart").await;
    assert_eq!(charts.len(), 4, "two charts for each of usd and eur");
    assert_eq!(browser.find_all("svg.chart rect.bar").await.len(), 24);
    keep("revenue", &browser.screenshot().await, &blank);

    browser.goto(&app.url("/dashboard/accounts")).await;
    assert!(browser.find("table.accounts").await.is_some_and(|_| true));
    keep("accounts", &browser.screenshot().await, &blank);

    // Back on the overview, nothing is dead any more.
    browser.goto(&app.url("/dashboard")).await;
    assert!(browser.find("a.card[data-status=dead]").await.is_some());
    assert!(
        browser
            .find("a.card.alarm[data-status=dead]")
            .await
            .is_none()
    );

    let origin = app.url("/");
    let urls = browser.requested_urls().await;
    assert!(
        urls.iter()
            .any(|u| u.ends_with("/dashboard/assets/style.css"))
    );
    let elsewhere: Vec<&String> = urls.iter().filter(|u| !u.starts_with(&origin)).collect();
    assert!(
        elsewhere.is_empty(),
        "requests to other hosts: {elsewhere:?}"
    );
    let console = browser.log("browser").await;
    assert!(
        console.is_empty(),
        "console messages (JS errors, CSP violations): {console:#?}"
    );

    // Log out: the session ends, and the pages send the browser to the login again.
    let logout = browser.find("header form button").await.unwrap();
    browser.click(&logout).await;
    wait_url(&browser, "/dashboard/login").await;
    browser.goto(&app.url("/dashboard")).await;
    wait_url(&browser, "/dashboard/login").await;
    assert!(
        browser
            .cookies()
            .await
            .iter()
            .all(|c| c["name"] != "billd_session")
    );
    browser.quit().await;
    app.shutdown().await;
}

//! `GET /dashboard`: the operator's web pages (issue 15, docs/dashboard.md): the inbox,
//! dead letters, flags, revenue and MRR, connected accounts needing action.
//!
//! Server-rendered HTML (`pages`, maud) with SVG charts drawn here (`chart`); the
//! stylesheet, a small script and the icon are bundled into the binary and served from
//! `/dashboard/assets/`. Nothing comes from another host, and the CSP says so.
//!
//! Sessions: the login form takes a token, checked exactly as the API checks a bearer
//! token (`http::auth`: failure counting, rate limits, revocation). The browser then
//! holds only a random session id, in an `HttpOnly`, `SameSite=Strict` cookie (`Secure`
//! when a trusted proxy says the client came over TLS); the session's record, with its
//! CSRF token, lives in the database (`store::sessions`), so any node serves the next
//! page and a logout ends it everywhere. Each page asks the token's scope again, and
//! each action needs the scope its API route needs (`auth::required_scope`) and the
//! session's CSRF token, and is written to the audit log as the API writes it.
//!
//! Caller input never causes a 5xx: bad parameters are 400 pages, ids go through
//! `ids::check`, unknown ones are 404 pages.

mod chart;
mod mask;
mod pages;
mod session;

use axum::{
    Router,
    extract::{ConnectInfo, FromRequest, FromRequestParts, Request, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header, request::Parts},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use maud::Markup;
use serde::{Deserialize, de::DeserializeOwned};
use std::net::SocketAddr;
use subtle::ConstantTimeEq;

use super::{
    AppState, auth,
    error::{ApiError, Rendered},
    limits::ClientAddr,
    request_id,
};
use crate::{
    ids::{self, Kind},
    report::{self, Basis, Interval, RangeQuery, ReportError, period},
    store::{
        StoreError, accounts, alerts, audit,
        events::{self as inbox, Filter, Status},
        flags, sessions,
        tokens::Scope,
    },
    time::{now_ms, now_secs},
};
use pages::{Frame, Nav};
use session::{Authed, login, login_form, logout};

/// The session cookie: a random id, its record in `dashboard_sessions`.
const SESSION_COOKIE: &str = "billd_session";
/// The login form's CSRF token, double-submitted (cookie and form field).
const LOGIN_COOKIE: &str = "billd_login";
/// How long a session lasts from login (it does not slide: log in again after).
const SESSION_TTL_MS: i64 = 12 * 3_600_000;
/// Rows on a page of events or flags.
const PAGE: usize = 50;
/// The apply rate is measured over this long, among the newest `RATE_EVENTS` events.
const RATE_WINDOW_MS: i64 = 5 * 60_000;
const RATE_EVENTS: usize = 1_000;
/// Connected accounts listed at most.
const ACCOUNTS_SHOWN: usize = 200;

/// The API routes whose scope the dashboard's actions take.
const REPLAY_ROUTE: &str = "/stripe/events/{id}/replay";
const RESOLVE_ROUTE: &str = "/stripe/flags/{id}/resolve";

/// The pages' policy: everything from billd itself, no inline script or style, forms
/// posted only back here, never framed.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("dashboard.js");
const ICON: &str = include_str!("icon.svg");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(overview))
        .route("/dashboard/login", get(login_form).post(login))
        .route("/dashboard/logout", post(logout))
        .route("/dashboard/events", get(events))
        .route("/dashboard/events/{id}", get(event))
        .route("/dashboard/events/{id}/replay", post(replay))
        .route("/dashboard/dead", get(dead))
        .route("/dashboard/dead/replay", post(replay_dead))
        .route("/dashboard/flags", get(flag_list))
        .route("/dashboard/flags/{id}/resolve", post(resolve))
        .route("/dashboard/revenue", get(revenue))
        .route("/dashboard/accounts", get(connected_accounts))
        .route("/dashboard/assets/{name}", get(asset))
        .layer(middleware::from_fn(headers))
}

/// Every dashboard answer: the CSP and its companions; pages are never cached (they
/// hold billing data); HTML refusals are kept as pages by `error::layer`.
async fn headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    let html = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if html {
        response.extensions_mut().insert(Rendered);
    }
    response
}

// ---- answers ----------------------------------------------------------------------

fn html(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        markup.into_string(),
    )
        .into_response()
}

fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

fn to_login() -> Response {
    see_other("/dashboard/login")
}

/// A refusal or failure shown as a page, with the status the API would answer.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    message: String,
    retry_after: Option<u64>,
}

impl PageError {
    fn new(status: StatusCode, message: impl Into<String>) -> PageError {
        PageError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    fn invalid(message: impl Into<String>) -> PageError {
        PageError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        PageError {
            status: e.status(),
            message: e.message().to_string(),
            retry_after: e.retry_after(),
        }
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl From<ids::IdError> for PageError {
    fn from(e: ids::IdError) -> Self {
        PageError::invalid(e.to_string())
    }
}

impl From<ReportError> for PageError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::Invalid(message) => PageError::invalid(message),
            ReportError::Store(e) => e.into(),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let reason = self.status.canonical_reason().unwrap_or("Error");
        let page = pages::error(
            self.status.as_u16(),
            reason,
            &self.message,
            &request_id::current(),
        );
        let mut response = html(self.status, page);
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

type PageResult = Result<Response, PageError>;

// ---- extractors whose refusals are pages --------------------------------------------

/// A path parameter; one that does not parse is a 400 page.
struct PagePath<T>(T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for PagePath<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| PagePath(p.0))
            .map_err(|_| PageError::invalid("a part of this address is not of the right shape"))
    }
}

/// A query string; one that does not parse is a 400 page.
struct PageQuery<T>(T);

impl<T: DeserializeOwned> FromRequestParts<AppState> for PageQuery<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| PageQuery(q.0))
            .map_err(|_| PageError::invalid("the query string is malformed"))
    }
}

/// A submitted form (`application/x-www-form-urlencoded`); anything else is a 4xx page.
struct PageForm<T>(T);

impl<T: DeserializeOwned> FromRequest<AppState> for PageForm<T> {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, PageError> {
        axum::extract::Form::<T>::from_request(request, state)
            .await
            .map(|f| PageForm(f.0))
            .map_err(|e| match e.status() {
                StatusCode::UNSUPPORTED_MEDIA_TYPE => PageError::new(
                    e.status(),
                    "send the form as application/x-www-form-urlencoded",
                ),
                StatusCode::PAYLOAD_TOO_LARGE => {
                    PageError::new(e.status(), "the form is larger than billd accepts")
                }
                _ => PageError::invalid("the form is missing a field or has a malformed one"),
            })
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
    /// The page to go back to after a replay: `dead` or `event`.
    #[serde(default)]
    from: String,
}

// ---- pages --------------------------------------------------------------------------

async fn overview(State(state): State<AppState>, authed: Authed) -> PageResult {
    let now = now_ms();
    let data = state
        .store
        .run(move |c| {
            let (applied, window) = inbox::recently_applied(c, now - RATE_WINDOW_MS, RATE_EVENTS)?;
            Ok(pages::Overview {
                counts: inbox::counts(c)?,
                oldest_waiting_ms: inbox::oldest_waiting_ms(c)?,
                applied: (applied, window, RATE_WINDOW_MS),
                open_flags: flags::open_counts(c)?,
                firing: alerts::firing(c)?,
                accounts_needing_action: accounts::needing_action_count(c)?,
            })
        })
        .await?;
    let frame = authed.frame("Overview", Nav::Overview);
    Ok(html(
        StatusCode::OK,
        pages::layout(&frame, pages::overview(&data, now)),
    ))
}

#[derive(Deserialize)]
struct EventsQuery {
    status: Option<String>,
    #[serde(rename = "type")]
    type_: Option<String>,
    after: Option<String>,
}

fn status_param(s: Option<&str>) -> Result<Option<Status>, PageError> {
    match s.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => Status::parse(s).map(Some).ok_or_else(|| {
            PageError::invalid("status must be one of pending, processed, failed, dead, ignored")
        }),
    }
}

/// An event type as Stripe writes them: letters, digits, `_` and `.`.
fn type_param(s: Option<&str>) -> Result<Option<String>, PageError> {
    match s.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(t)
            if t.len() <= ids::MAX_LEN
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.') =>
        {
            Ok(Some(t.to_string()))
        }
        Some(_) => Err(PageError::invalid(
            "type must be an event type such as invoice.paid (letters, digits, `_` and `.`)",
        )),
    }
}

fn after_param(s: Option<&str>) -> Result<Option<String>, PageError> {
    s.filter(|s| !s.is_empty())
        .map(|s| ids::check(Kind::Event, "after", s).map(str::to_string))
        .transpose()
        .map_err(PageError::from)
}

/// A page of events; `Some(last id)` when more follow.
async fn event_page(
    state: &AppState,
    filter: Filter,
) -> Result<(Vec<inbox::EventRow>, Option<String>), PageError> {
    let (rows, more) = state.store.run(move |c| inbox::list(c, &filter)).await?;
    let next = more.then(|| rows.last().map(|e| e.id.clone())).flatten();
    Ok((rows, next))
}

async fn events(
    State(state): State<AppState>,
    authed: Authed,
    PageQuery(q): PageQuery<EventsQuery>,
) -> PageResult {
    let status = status_param(q.status.as_deref())?;
    let type_ = type_param(q.type_.as_deref())?;
    let filter = Filter {
        status,
        type_: type_.clone(),
        account: None,
        since_ms: None,
        limit: PAGE,
        starting_after: after_param(q.after.as_deref())?,
    };
    let (rows, next) = event_page(&state, filter).await?;
    let next = next.map(|after| {
        let mut href = format!("/dashboard/events?after={after}");
        if let Some(s) = status {
            href.push_str(&format!("&status={}", s.as_str()));
        }
        if let Some(t) = &type_ {
            href.push_str(&format!("&type={t}"));
        }
        href
    });
    let frame = authed.frame("Events", Nav::Events);
    Ok(html(
        StatusCode::OK,
        pages::layout(&frame, pages::events(&rows, status, type_.as_deref(), next)),
    ))
}

#[derive(Deserialize)]
struct NoticeQuery {
    queued: Option<String>,
    resolved: Option<String>,
    status: Option<String>,
    after: Option<String>,
}

async fn event(
    State(state): State<AppState>,
    authed: Authed,
    PagePath(id): PagePath<String>,
    PageQuery(q): PageQuery<NoticeQuery>,
) -> PageResult {
    ids::check(Kind::Event, "id", &id)?;
    let admin = authed.scope >= Scope::Admin;
    let (row, payload) = state
        .store
        .run(move |c| {
            let row = inbox::get(c, &id)?;
            let payload = if admin {
                Some(inbox::payload(c, &id)?)
            } else {
                None
            };
            Ok((row, payload))
        })
        .await?;
    let payload = payload.map(
        |text| match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(mut v) => {
                mask::mask(&mut v);
                serde_json::to_string_pretty(&v).unwrap_or_default()
            }
            Err(_) => "(not JSON)".to_string(),
        },
    );
    let title = format!("Event {}", row.id);
    let mut frame = authed.frame(&title, Nav::Events);
    if q.queued.is_some() {
        frame.notice = Some("Queued for replay: the workers apply it again shortly.".into());
    }
    Ok(html(
        StatusCode::OK,
        pages::layout(
            &frame,
            pages::event(&row, authed.may(REPLAY_ROUTE), payload.as_deref()),
        ),
    ))
}

async fn dead(
    State(state): State<AppState>,
    authed: Authed,
    PageQuery(q): PageQuery<NoticeQuery>,
) -> PageResult {
    let filter = Filter {
        status: Some(Status::Dead),
        limit: PAGE,
        starting_after: after_param(q.after.as_deref())?,
        ..Filter::default()
    };
    let total = state
        .store
        .run(|c| inbox::count_status(c, Status::Dead))
        .await?;
    let (rows, next) = event_page(&state, filter).await?;
    let next = next.map(|after| format!("/dashboard/dead?after={after}"));
    let mut frame = authed.frame("Dead letters", Nav::Dead);
    if let Some(n) = q.queued.as_deref().and_then(|n| n.parse::<u64>().ok()) {
        frame.notice = Some(format!(
            "Queued {n} {} for replay: the workers apply {} again shortly.",
            if n == 1 { "event" } else { "events" },
            if n == 1 { "it" } else { "them" },
        ));
    }
    Ok(html(
        StatusCode::OK,
        pages::layout(
            &frame,
            pages::dead(total, &rows, authed.may(REPLAY_ROUTE), next),
        ),
    ))
}

/// A dashboard replay is the API's: the same scope, the same per-token limit of the
/// money routes, the same audit entry (with where it came from as detail).
async fn replay(
    State(state): State<AppState>,
    authed: Authed,
    PagePath(id): PagePath<String>,
    PageForm(form): PageForm<CsrfForm>,
) -> PageResult {
    authed.check(&form.csrf, REPLAY_ROUTE)?;
    ids::check(Kind::Event, "id", &id)?;
    state
        .limits
        .money(&authed.token_id)
        .map_err(ApiError::from)?;
    let actor = authed.actor();
    let key = id.clone();
    state
        .store
        .run(move |c| {
            let tx = c.transaction()?;
            inbox::requeue(&tx, &key, now_ms())?;
            audit::record(
                &tx,
                &actor,
                "event.replay",
                Some(&key),
                Some("dashboard"),
                now_secs(),
            )?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    state.stored.notify_waiters();
    Ok(if form.from == "dead" {
        see_other("/dashboard/dead?queued=1")
    } else {
        see_other(&format!("/dashboard/events/{id}?queued=1"))
    })
}

async fn replay_dead(
    State(state): State<AppState>,
    authed: Authed,
    PageForm(form): PageForm<CsrfForm>,
) -> PageResult {
    authed.check(&form.csrf, REPLAY_ROUTE)?;
    state
        .limits
        .money(&authed.token_id)
        .map_err(ApiError::from)?;
    let actor = authed.actor();
    let queued = state
        .store
        .run(move |c| {
            let tx = c.transaction()?;
            let ids = inbox::select_for_replay(&tx, Some(Status::Dead), None)?;
            for id in &ids {
                inbox::requeue(&tx, id, now_ms())?;
                audit::record(
                    &tx,
                    &actor,
                    "event.replay",
                    Some(id),
                    Some("dashboard: all dead"),
                    now_secs(),
                )?;
            }
            tx.commit()?;
            Ok(ids.len())
        })
        .await?;
    state.stored.notify_waiters();
    Ok(see_other(&format!("/dashboard/dead?queued={queued}")))
}

async fn flag_list(
    State(state): State<AppState>,
    authed: Authed,
    PageQuery(q): PageQuery<NoticeQuery>,
) -> PageResult {
    let status = match q.status.as_deref().map(str::trim) {
        None | Some("") | Some("open") => "open",
        Some("resolved") => "resolved",
        Some(_) => return Err(PageError::invalid("status must be open or resolved")),
    };
    let after = q
        .after
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<i64>()
                .map_err(|_| PageError::invalid("after must be a flag id"))
        })
        .transpose()?;
    let (rows, more) = state
        .store
        .run(move |c| flags::list(c, Some(status), PAGE, after))
        .await?;
    let next = more
        .then(|| rows.last())
        .flatten()
        .map(|f| format!("/dashboard/flags?status={status}&after={}", f.id));
    let mut frame = authed.frame("Flags", Nav::Flags);
    if let Some(id) = q.resolved.as_deref().and_then(|n| n.parse::<i64>().ok()) {
        frame.notice = Some(format!("Flag {id} resolved."));
    }
    Ok(html(
        StatusCode::OK,
        pages::layout(
            &frame,
            pages::flags(&rows, status, authed.may(RESOLVE_ROUTE), next),
        ),
    ))
}

async fn resolve(
    State(state): State<AppState>,
    authed: Authed,
    PagePath(id): PagePath<i64>,
    PageForm(form): PageForm<CsrfForm>,
) -> PageResult {
    authed.check(&form.csrf, RESOLVE_ROUTE)?;
    let actor = authed.actor();
    state
        .store
        .run(move |c| {
            let tx = c.transaction()?;
            flags::resolve(&tx, id, &actor, now_secs())?;
            audit::record(
                &tx,
                &actor,
                "flag.resolve",
                Some(&id.to_string()),
                Some("dashboard"),
                now_secs(),
            )?;
            tx.commit()?;
            Ok(())
        })
        .await?;
    Ok(see_other(&format!("/dashboard/flags?resolved={id}")))
}

/// The first second of the month eleven months before this one: with this month, the
/// twelve months the charts show.
fn twelve_months_from(now: i64) -> i64 {
    let mut start = period::period_start(now, Interval::Month);
    for _ in 0..11 {
        start = period::period_start(start - 1, Interval::Month);
    }
    start
}

async fn revenue(State(state): State<AppState>, authed: Authed) -> PageResult {
    let now = now_secs();
    let from = twelve_months_from(now);
    let series = state
        .store
        .run(move |c| Ok(revenue_series(c, from, now)))
        .await??;
    let frame = authed.frame("Revenue & MRR", Nav::Revenue);
    Ok(html(
        StatusCode::OK,
        pages::layout(&frame, pages::revenue(&series)),
    ))
}

/// Each currency's twelve months from the revenue and MRR-movements reports, every
/// month present (a month a report has no row for had nothing: 0).
fn revenue_series(
    c: &crate::store::Connection,
    from: i64,
    now: i64,
) -> Result<Vec<pages::CurrencySeries>, ReportError> {
    let q = RangeQuery {
        from: Some(from),
        to: None,
        interval: Interval::Month,
        currency: None,
        account: None,
        basis: Basis::Net,
    };
    let revenue = report::revenue(c, &q, now)?;
    let mrr = report::mrr_movements(c, &q, now)?;
    let labels: Vec<String> = period::periods(from, now + 1, Interval::Month)?
        .into_iter()
        .map(|p| p.label)
        .collect();
    let mut currencies: Vec<String> = revenue
        .iter()
        .map(|r| r.currency.clone())
        .chain(mrr.iter().map(|m| m.currency.clone()))
        .collect();
    currencies.sort();
    currencies.dedup();
    Ok(currencies
        .into_iter()
        .map(|currency| pages::CurrencySeries {
            revenue: labels
                .iter()
                .map(|l| {
                    revenue
                        .iter()
                        .find(|r| &r.period == l && r.currency == currency)
                        .map_or((l.clone(), 0, 0, 0, 0), |r| {
                            (l.clone(), r.gross, r.refunded, r.net, r.payments)
                        })
                })
                .collect(),
            mrr: labels
                .iter()
                .map(|l| {
                    let m = mrr
                        .iter()
                        .find(|m| &m.period == l && m.currency == currency);
                    (l.clone(), m.map_or(0, |m| m.ending_mrr))
                })
                .collect(),
            currency,
        })
        .collect())
}

async fn connected_accounts(State(state): State<AppState>, authed: Authed) -> PageResult {
    let (rows, total) = state
        .store
        .run(|c| accounts::needing_action(c, ACCOUNTS_SHOWN))
        .await?;
    let frame = authed.frame("Connected accounts needing action", Nav::Accounts);
    Ok(html(
        StatusCode::OK,
        pages::layout(&frame, pages::accounts(&rows, total)),
    ))
}

/// The bundled files; public like `/docs` (they hold no data).
async fn asset(PagePath(name): PagePath<String>) -> PageResult {
    let (body, kind) = match name.as_str() {
        "style.css" => (STYLE, "text/css; charset=utf-8"),
        "dashboard.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "icon.svg" => (ICON, "image/svg+xml"),
        _ => return Err(PageError::new(StatusCode::NOT_FOUND, "no such file")),
    };
    Ok((
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_charts_cover_twelve_calendar_months() {
        let now = 1_795_000_000; // 2026-11-18
        let from = twelve_months_from(now);
        let months = period::periods(from, now + 1, Interval::Month).unwrap();
        assert_eq!(months.len(), 12);
        assert_eq!(months[0].label, "2025-12");
        assert_eq!(months[11].label, "2026-11");
    }
}

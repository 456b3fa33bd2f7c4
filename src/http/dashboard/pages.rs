//! The dashboard's HTML, as maud templates: escaped by default, checked when billd
//! compiles. No inline script or style anywhere (the CSP allows neither): the look is
//! `style.css`, the little behaviour `dashboard.js`, both served from
//! `/dashboard/assets/`.

use maud::{DOCTYPE, Markup, html};

use super::chart::{self, Point};
use crate::{
    report::money::format_with_code,
    store::{
        accounts::Account,
        events::{EventRow, Status},
        flags::Flag,
        tokens::Scope,
    },
    time::{rfc3339, rfc3339_ms},
};

/// The pages of the navigation bar.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Events,
    Dead,
    Flags,
    Revenue,
    Accounts,
}

const NAV: [(Nav, &str, &str); 6] = [
    (Nav::Overview, "/dashboard", "Overview"),
    (Nav::Events, "/dashboard/events", "Events"),
    (Nav::Dead, "/dashboard/dead", "Dead letters"),
    (Nav::Flags, "/dashboard/flags", "Flags"),
    (Nav::Revenue, "/dashboard/revenue", "Revenue & MRR"),
    (Nav::Accounts, "/dashboard/accounts", "Connected accounts"),
];

/// What every page of a session shows around its content.
pub struct Frame<'a> {
    pub title: &'a str,
    pub nav: Nav,
    pub token_id: &'a str,
    pub scope: Scope,
    pub csrf: &'a str,
    /// A line saying what the last action did.
    pub notice: Option<String>,
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · billd" }
            link rel="stylesheet" href="/dashboard/assets/style.css";
            link rel="icon" type="image/svg+xml" href="/dashboard/assets/icon.svg";
            script src="/dashboard/assets/dashboard.js" defer {}
        }
    }
}

pub fn layout(frame: &Frame<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(frame.title))
            body {
                header.top {
                    a.brand href="/dashboard" { "billd" }
                    nav {
                        @for (nav, href, label) in NAV {
                            a href=(href) class=[(nav == frame.nav).then_some("active")] { (label) }
                        }
                    }
                    div.who {
                        span.token { (frame.token_id) " · " (frame.scope.as_str()) }
                        form method="post" action="/dashboard/logout" {
                            (csrf_field(frame.csrf))
                            button.link type="submit" { "Log out" }
                        }
                    }
                }
                main {
                    h1 { (frame.title) }
                    @if let Some(notice) = &frame.notice {
                        p.notice role="status" { (notice) }
                    }
                    (body)
                }
            }
        }
    }
}

fn csrf_field(csrf: &str) -> Markup {
    html! { input type="hidden" name="csrf" value=(csrf); }
}

/// The login page (no session yet): the token typed in, never put in a URL.
pub fn login(csrf: &str, error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head("Log in"))
            body.login {
                main {
                    h1 { "billd" }
                    p.muted { "Log in with an API token (" code { "billd token create" } "). A read token sees; write resolves flags; admin replays events and sees payloads." }
                    @if let Some(error) = error {
                        p.error role="alert" { (error) }
                    }
                    form id="login" method="post" action="/dashboard/login" autocomplete="off" {
                        (csrf_field(csrf))
                        label for="token" { "Token" }
                        input id="token" type="password" name="token" required autofocus
                            spellcheck="false" autocomplete="off";
                        button type="submit" { "Log in" }
                    }
                }
            }
        }
    }
}

/// A refusal or failure, as a page.
pub fn error(status: u16, reason: &str, message: &str, request_id: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(reason))
            body {
                main {
                    h1 { (status) " " (reason) }
                    p.error { (message) }
                    @if !request_id.is_empty() {
                        p.muted { "Request id " code { (request_id) } }
                    }
                    p { a href="/dashboard" { "Back to the dashboard" } }
                }
            }
        }
    }
}

/// `1234567` as `1,234,567`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A duration for people: `42 s`, `5 min`, `3 h 20 min`, `2 d 4 h`.
pub fn duration(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3_600 => format!("{} min", s / 60),
        3_600..86_400 => format!("{} h {} min", s / 3_600, s % 3_600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3_600),
    }
}

fn status_badge(status: Status) -> Markup {
    html! { span class=(format!("badge {}", status.as_str())) { (status.as_str()) } }
}

fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// The overview's figures.
pub struct Overview {
    pub counts: Vec<(Status, i64)>,
    pub oldest_waiting_ms: Option<i64>,
    /// Applied in the window, events in the window, the window's length.
    pub applied: (i64, i64, i64),
    pub open_flags: Vec<(String, i64)>,
    pub firing: Vec<(String, i64)>,
    pub accounts_needing_action: i64,
}

pub fn overview(o: &Overview, now_ms: i64) -> Markup {
    let count = |s: Status| {
        o.counts
            .iter()
            .find(|(c, _)| *c == s)
            .map_or(0, |(_, n)| *n)
    };
    let total: i64 = o.counts.iter().map(|(_, n)| n).sum();
    let open: i64 = o.open_flags.iter().map(|(_, n)| n).sum();
    let (applied, window, window_ms) = o.applied;
    html! {
        section.cards {
            @for s in Status::ALL {
                a.card.alarm[s == Status::Dead && count(s) > 0]
                    href=(format!("/dashboard/events?status={}", s.as_str())) data-status=(s.as_str()) {
                    span.label { (s.as_str()) }
                    span.figure { (thousands(count(s))) }
                }
            }
            div.card {
                span.label { "in the inbox" }
                span.figure { (thousands(total)) }
            }
        }
        section.cards {
            div.card.alarm[o.oldest_waiting_ms.is_some_and(|t| now_ms - t > 300_000)] {
                span.label { "backlog age" }
                span.figure {
                    @match o.oldest_waiting_ms {
                        Some(t) => (duration(now_ms - t)),
                        None => "none waiting",
                    }
                }
                span.hint { "the oldest event not yet applied" }
            }
            div.card {
                span.label { "apply rate" }
                span.figure { (format!("{:.1}/s", applied as f64 * 1000.0 / window_ms as f64)) }
                span.hint { (thousands(applied)) " applied in the last " (duration(window_ms)) ", of the newest " (thousands(window)) " events" }
            }
            a.card.warn[open > 0] href="/dashboard/flags" {
                span.label { "open flags" }
                span.figure { (thousands(open)) }
                span.hint {
                    @for (i, (kind, n)) in o.open_flags.iter().enumerate() {
                        @if i > 0 { ", " }
                        (kind) " " (n)
                    }
                }
            }
            div.card.alarm[!o.firing.is_empty()] {
                span.label { "alerts firing" }
                span.figure { (o.firing.len()) }
                span.hint {
                    @for (i, (kind, since)) in o.firing.iter().enumerate() {
                        @if i > 0 { ", " }
                        (kind) " for " (duration(now_ms - since))
                    }
                }
            }
            a.card.warn[o.accounts_needing_action > 0] href="/dashboard/accounts" {
                span.label { "accounts needing action" }
                span.figure { (thousands(o.accounts_needing_action)) }
            }
        }
    }
}

/// The events page: the filter, a page of events and the link to the next.
pub fn events(
    rows: &[EventRow],
    status: Option<Status>,
    type_: Option<&str>,
    next: Option<String>,
) -> Markup {
    html! {
        form.filter method="get" action="/dashboard/events" {
            label { "Status "
                select name="status" data-autosubmit {
                    option value="" selected[status.is_none()] { "any" }
                    @for s in Status::ALL {
                        option value=(s.as_str()) selected[status == Some(s)] { (s.as_str()) }
                    }
                }
            }
            label { "Type "
                input type="text" name="type" value=[type_] placeholder="e.g. invoice.paid"
                    maxlength="255" spellcheck="false";
            }
            button type="submit" { "Filter" }
        }
        (event_table(rows, None, "event"))
        (pager(next))
    }
}

fn pager(next: Option<String>) -> Markup {
    html! {
        @if let Some(href) = next {
            p.pager { a rel="next" href=(href) { "Next page →" } }
        }
    }
}

/// A table of events; with `replay` (the session's CSRF token), a Replay button on each
/// row that comes back to `from`.
fn event_table(rows: &[EventRow], replay: Option<&str>, from: &str) -> Markup {
    html! {
        @if rows.is_empty() {
            p.empty { "No events." }
        } @else {
            table.events {
                thead { tr {
                    th { "Event" } th { "Type" } th { "Status" } th.num { "Attempts" }
                    th { "Received" } th { "Last error" }
                    @if replay.is_some() { th {} }
                } }
                tbody {
                    @for e in rows {
                        tr data-event=(e.id) {
                            td { a.id href=(format!("/dashboard/events/{}", e.id)) { (e.id) } }
                            td { code { (e.type_) } }
                            td { (status_badge(e.status)) }
                            td.num { (e.attempts) }
                            td.time { (rfc3339_ms(e.received_at_ms)) }
                            td.error { (short(e.last_error.as_deref().unwrap_or(""), 120)) }
                            @if let Some(csrf) = replay {
                                td { (replay_form(&e.id, csrf, from)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn replay_form(id: &str, csrf: &str, from: &str) -> Markup {
    html! {
        form.inline method="post" action=(format!("/dashboard/events/{id}/replay")) {
            (csrf_field(csrf))
            input type="hidden" name="from" value=(from);
            button.replay type="submit" { "Replay" }
        }
    }
}

/// One event: its fields, attempts and last error; a replay button for a session
/// allowed to replay (`replay`: its CSRF token); the masked payload for admins.
pub fn event(e: &EventRow, replay: Option<&str>, payload: Option<&str>) -> Markup {
    let waiting = matches!(e.status, Status::Pending | Status::Failed);
    html! {
        dl.fields {
            dt { "Id" } dd { code { (e.id) } }
            dt { "Type" } dd { code { (e.type_) } }
            dt { "Status" } dd { (status_badge(e.status)) }
            dt { "Attempts" } dd { (e.attempts) }
            dt { "Created (Stripe)" } dd.time { (rfc3339(e.created)) }
            dt { "Received" } dd.time { (rfc3339_ms(e.received_at_ms)) }
            dt { "Processed" } dd.time { (e.processed_at_ms.map(rfc3339_ms).unwrap_or_else(|| "—".into())) }
            @if waiting {
                dt { "Next attempt" } dd.time { (rfc3339_ms(e.next_attempt_ms)) }
            }
            dt { "Account" } dd { (e.account.as_deref().unwrap_or("—")) }
            dt { "Live mode" } dd { (if e.livemode { "yes" } else { "no" }) }
            dt { "API version" } dd { (e.api_version.as_deref().unwrap_or("—")) }
        }
        h2 { "Last error" }
        @match &e.last_error {
            Some(error) => pre.error { (error) },
            None => p.muted { "None." },
        }
        @match replay {
            Some(csrf) => (replay_form(&e.id, csrf, "event")),
            None => p.muted { "Replaying needs a session of the admin scope." },
        }
        h2 { "Payload" }
        @match payload {
            Some(json) => {
                p.muted { "Personal data (names, contacts, addresses, card details, metadata) masked." }
                pre.payload { (json) }
            }
            None => p.muted { "The payload is shown to sessions of the admin scope only." },
        }
    }
}

/// Dead letters: how many, replay all (`replay`: the CSRF token of a session allowed to
/// replay), and a page of them.
pub fn dead(total: i64, rows: &[EventRow], replay: Option<&str>, next: Option<String>) -> Markup {
    html! {
        p {
            (thousands(total)) " dead " (if total == 1 { "event" } else { "events" })
            ": tried " "until the attempts ran out, or unreadable by this version of billd. "
            "A replay queues an event to be applied again, with its attempts started over."
        }
        @if let (Some(csrf), true) = (replay, total > 0) {
            form.inline method="post" action="/dashboard/dead/replay" {
                (csrf_field(csrf))
                button.replay-all type="submit"
                    data-confirm=(format!("Replay all {} dead events?", thousands(total))) {
                    "Replay all dead"
                }
            }
        }
        @if replay.is_none() && total > 0 {
            p.muted { "Replaying needs a session of the admin scope." }
        }
        (event_table(rows, replay, "dead"))
        (pager(next))
    }
}

/// Flags of one status; a Resolve button on open ones for a session allowed to resolve
/// (`resolve`: its CSRF token).
pub fn flags(rows: &[Flag], status: &str, resolve: Option<&str>, next: Option<String>) -> Markup {
    html! {
        nav.tabs {
            @for s in ["open", "resolved"] {
                a href=(format!("/dashboard/flags?status={s}")) class=[(s == status).then_some("active")] { (s) }
            }
        }
        @if status == "open" && resolve.is_none() {
            p.muted { "Resolving needs a session of the write scope." }
        }
        @if rows.is_empty() {
            p.empty { "No " (status) " flags." }
        } @else {
            table.flags {
                thead { tr {
                    th.num { "Flag" } th { "Kind" } th { "Object" } th { "Customer" }
                    th { "Raised" } th { "Detail" }
                    @if status == "resolved" { th { "Resolved" } }
                    @if resolve.is_some() && status == "open" { th {} }
                } }
                tbody {
                    @for f in rows {
                        tr data-flag=(f.id) {
                            td.num { (f.id) }
                            td { span.kind { (f.kind) } }
                            td { code { (f.object_id) } }
                            td { code { (f.customer.as_deref().unwrap_or("—")) } }
                            td.time { (rfc3339(f.created)) }
                            td { (short(&f.detail, 160)) }
                            @if status == "resolved" {
                                td { (f.resolved_at.map(rfc3339).unwrap_or_default()) " " (f.resolved_by.as_deref().unwrap_or("")) }
                            }
                            @if let (Some(csrf), "open") = (resolve, f.status.as_str()) {
                                td {
                                    form.inline method="post" action=(format!("/dashboard/flags/{}/resolve", f.id)) {
                                        (csrf_field(csrf))
                                        button.resolve type="submit" { "Resolve" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (pager(next))
    }
}

/// One currency's last twelve months: revenue per month and MRR at each month's end.
pub struct CurrencySeries {
    pub currency: String,
    /// Per month: label, gross, refunded, net, succeeded payments.
    pub revenue: Vec<(String, i64, i64, i64, u64)>,
    /// Per month: label and MRR at its end (now, for this month).
    pub mrr: Vec<(String, i64)>,
}

pub fn revenue(series: &[CurrencySeries]) -> Markup {
    html! {
        p.muted { "The last twelve months, per currency: net revenue (succeeded payments less refunds) per month, and MRR at each month's end (this month: now), net of discounts. From the same reports as " code { "GET /stripe/reports/revenue" } " and " code { "/mrr-movements" } "." }
        @if series.is_empty() {
            p.empty { "No payments or subscriptions in the last twelve months." }
        }
        @for s in series {
            @let c = s.currency.as_str();
            @let fmt = |v: i64| format_with_code(v, c);
            section.currency data-currency=(c) {
                h2 { (c.to_ascii_uppercase()) }
                div.charts {
                    figure {
                        figcaption { "Net revenue per month" }
                        (chart::chart(chart::Kind::Bars, &format!("net revenue per month in {c}"),
                            &s.revenue.iter().map(|(label, gross, refunded, net, n)| Point {
                                label: label.clone(),
                                value: *net,
                                title: format!("{label}: net {} (gross {}, refunded {}, {n} payments)",
                                    fmt(*net), fmt(*gross), fmt(*refunded)),
                            }).collect::<Vec<_>>(), &fmt))
                    }
                    figure {
                        figcaption { "MRR at month end" }
                        (chart::chart(chart::Kind::Line, &format!("MRR at each month's end in {c}"),
                            &s.mrr.iter().map(|(label, mrr)| Point {
                                label: label.clone(),
                                value: *mrr,
                                title: format!("{label}: MRR {}", fmt(*mrr)),
                            }).collect::<Vec<_>>(), &fmt))
                    }
                }
            }
        }
    }
}

/// Connected accounts that need action.
pub fn accounts(rows: &[Account], total: i64) -> Markup {
    let yes_no = |b: bool| if b { "yes" } else { "no" };
    html! {
        p {
            (thousands(total)) " connected " (if total == 1 { "account needs" } else { "accounts need" })
            " action: charges or payouts not enabled, disabled, or requirements due. "
            "Send the account an onboarding link (" code { "POST /stripe/connect/accounts/{id}/links" } ")."
        }
        @if (rows.len() as i64) < total {
            p.muted { "The first " (rows.len()) " by id." }
        }
        @if !rows.is_empty() {
            table.accounts {
                thead { tr {
                    th { "Account" } th { "Type" } th { "Country" } th { "Charges" } th { "Payouts" }
                    th { "Details submitted" } th { "Disabled because" } th { "Currently due" }
                } }
                tbody {
                    @for a in rows {
                        tr {
                            td { code { (a.id) } }
                            td { (a.type_.as_deref().unwrap_or("—")) }
                            td { (a.country.as_deref().unwrap_or("—")) }
                            td class=[(!a.charges_enabled).then_some("bad")] { (yes_no(a.charges_enabled)) }
                            td class=[(!a.payouts_enabled).then_some("bad")] { (yes_no(a.payouts_enabled)) }
                            td { (yes_no(a.details_submitted)) }
                            td { (a.disabled_reason.as_deref().unwrap_or("—")) }
                            td {
                                @for (i, r) in a.currently_due.iter().enumerate() {
                                    @if i > 0 { ", " }
                                    code { (r) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_durations_read_as_people_write_them() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(-1_234_567), "-1,234,567");
        assert_eq!(duration(42_000), "42 s");
        assert_eq!(duration(5 * 60_000), "5 min");
        assert_eq!(duration(3 * 3_600_000 + 20 * 60_000), "3 h 20 min");
        assert_eq!(duration(2 * 86_400_000 + 4 * 3_600_000), "2 d 4 h");
    }

    #[test]
    fn what_a_caller_wrote_is_escaped() {
        let page = login("abc", Some("<script>alert(1)</script>")).into_string();
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("&lt;script&gt;"));
        assert!(!page.contains("style="), "no inline style");
        assert_eq!(
            page.matches("<script").count(),
            1,
            "only the bundled script"
        );
    }
}

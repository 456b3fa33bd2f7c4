//! The edge as an attacker sees it (issue 7): what an unauthenticated caller can cost is
//! bounded, limits bite and recover, and shutdown is not held by half-sent requests.
//! Each test configures short limits and waits on what the server does (a closed
//! connection, an answer), with generous outer bounds so a regression fails, not hangs.

mod common;

use std::time::{Duration, Instant};

use billd::store::tokens::Scope;
use common::{WEBHOOK_SECRET, spawn_app_with};
use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Longest a test waits for the server to act before it counts as not acting.
const PATIENCE: Duration = Duration::from_secs(15);

async fn connect(address: &str) -> TcpStream {
    TcpStream::connect(address.trim_start_matches("http://"))
        .await
        .expect("connects")
}

/// Reads until the server closes the connection; answers what it sent.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&got).into_owned()
}

async fn hmacs(app: &common::TestApp) -> u64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("billd_webhook_hmacs_total "))
        .expect("the HMAC counter is exported")
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_signature_header_of_thousands_of_signatures_is_refused_without_an_hmac() {
    let app = spawn_app_with(|c| c.server.metrics_public = true, &["whsec_a", "whsec_b"]).await;
    let body = "x".repeat(1024 * 1024 - 1024);
    let wrong = format!("v1={}", "0".repeat(64));
    // The attack of issue 7: 5,000 signatures over a 1 MiB body.
    let header = format!(
        "t={},{}",
        billd::time::now_secs(),
        vec![wrong.as_str(); 5_000].join(",")
    );
    let r = app.post_webhook(body.clone(), Some(&header)).await;
    assert_eq!(r.status(), 400);
    let error: Value = r.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_signature");
    assert_eq!(hmacs(&app).await, 0, "no HMAC for an oversized header");
    // Seventeen signatures fit in 8 KiB but are more than Stripe ever sends.
    let header = format!(
        "t={},{}",
        billd::time::now_secs(),
        vec![wrong.as_str(); 17].join(",")
    );
    assert_eq!(
        app.post_webhook(body.clone(), Some(&header)).await.status(),
        400
    );
    assert_eq!(hmacs(&app).await, 0);
    // Sixteen wrong ones cost one HMAC per secret, not sixteen.
    let header = format!(
        "t={},{}",
        billd::time::now_secs(),
        vec![wrong.as_str(); 16].join(",")
    );
    assert_eq!(app.post_webhook(body, Some(&header)).await.status(), 400);
    assert_eq!(hmacs(&app).await, 2);
    app.shutdown().await;
}

#[tokio::test]
async fn a_client_trickling_headers_is_disconnected() {
    let app = spawn_app_with(|c| c.limits.header_read_timeout_secs = 1, &[WEBHOOK_SECRET]).await;
    let mut slow = connect(&app.address).await;
    slow.write_all(b"POST /stripe/webhook HTTP/1.1\r\nHost: billd\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let answer = read_until_closed(&mut slow).await;
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "closed before its time"
    );
    // hyper answers a timed-out head with 408 or closes silently; either ends it.
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    // An idle keep-alive connection is closed the same way.
    let mut idle = connect(&app.address).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: billd\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut idle).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    app.shutdown().await;
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_answered_and_the_connection_closed() {
    let app = spawn_app_with(|c| c.limits.body_read_timeout_secs = 1, &[WEBHOOK_SECRET]).await;
    let mut slow = connect(&app.address).await;
    slow.write_all(
        b"POST /stripe/webhook HTTP/1.1\r\nHost: billd\r\nStripe-Signature: t=1,v1=00\r\n\
          Content-Length: 100000\r\n\r\n{\"id\":",
    )
    .await
    .unwrap();
    let answer = read_until_closed(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    app.shutdown().await;
}

#[tokio::test]
async fn connections_past_the_cap_are_closed_at_once_and_service_recovers() {
    let app = spawn_app_with(|c| c.limits.max_connections = 2, &[WEBHOOK_SECRET]).await;
    // Two keep-alive connections, each answered once, so both are accepted and held.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = connect(&app.address).await;
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: billd\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = s.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
        held.push(s);
    }
    let mut refused = connect(&app.address).await;
    let _ = refused
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: billd\r\n\r\n")
        .await;
    let answer = read_until_closed(&mut refused).await;
    assert!(answer.is_empty(), "{answer}");
    drop(held);
    let deadline = Instant::now() + PATIENCE;
    loop {
        let r = app.client.get(app.url("/healthz")).send().await;
        if r.is_ok_and(|r| r.status() == 200) {
            break;
        }
        assert!(Instant::now() < deadline, "service did not recover");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.shutdown().await;
}

/// Sends a request head announcing a body it never sends: a request in flight.
async fn half_sent_body(address: &str, path: &str) -> TcpStream {
    half_sent_body_from(address, path, "").await
}

async fn half_sent_body_from(address: &str, path: &str, extra_header: &str) -> TcpStream {
    let mut s = connect(address).await;
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: billd\r\nStripe-Signature: t=1,v1=00\r\n{extra_header}\
         Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{{"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s
}

#[tokio::test]
async fn requests_past_the_in_flight_cap_answer_503_and_service_recovers() {
    let app = spawn_app_with(|c| c.limits.max_in_flight = 2, &[WEBHOOK_SECRET]).await;
    let token = app.token(Scope::Read).await;
    let held = [
        half_sent_body(&app.address, "/stripe/webhook").await,
        half_sent_body(&app.address, "/stripe/webhook").await,
    ];
    let deadline = Instant::now() + PATIENCE;
    let refused = loop {
        let r = app.get("/stripe/events", &token).await;
        if r.status() == 503 {
            break r;
        }
        assert!(Instant::now() < deadline, "the cap never applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(refused.headers().contains_key("retry-after"));
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["error"]["type"], "overloaded");
    // Liveness is answered whatever the load.
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    drop(held);
    let deadline = Instant::now() + PATIENCE;
    while app.get("/stripe/events", &token).await.status() != 200 {
        assert!(Instant::now() < deadline, "service did not recover");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    app.shutdown().await;
}

#[tokio::test]
async fn one_address_holds_at_most_its_share_of_requests_in_flight() {
    let app = spawn_app_with(
        |c| {
            c.limits.max_in_flight_per_address = 2;
            c.server.trusted_proxies = vec!["127.0.0.1".into()];
        },
        &[WEBHOOK_SECRET],
    )
    .await;
    let token = app.token(Scope::Read).await;
    let attacker = "X-Forwarded-For: 203.0.113.9\r\n";
    let _held = [
        half_sent_body_from(&app.address, "/stripe/webhook", attacker).await,
        half_sent_body_from(&app.address, "/stripe/webhook", attacker).await,
    ];
    let from = |addr: &'static str| {
        app.client
            .get(app.url("/stripe/events"))
            .bearer_auth(&token)
            .header("x-forwarded-for", addr)
            .send()
    };
    let deadline = Instant::now() + PATIENCE;
    while from("203.0.113.9").await.unwrap().status() != 503 {
        assert!(
            Instant::now() < deadline,
            "the per-address cap never applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Everyone else is served.
    assert_eq!(from("198.51.100.1").await.unwrap().status(), 200);
    app.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_idle_and_half_sent_connections_at_once() {
    let app = spawn_app_with(|c| c.server.shutdown_grace_secs = 60, &[WEBHOOK_SECRET]).await;
    let mut idle = connect(&app.address).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: billd\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let mut half_head = connect(&app.address).await;
    half_head
        .write_all(b"POST /stripe/webhook HTTP/1.1\r\nHost: bil")
        .await
        .unwrap();
    let mut bodies = Vec::new();
    for _ in 0..5 {
        bodies.push(half_sent_body(&app.address, "/stripe/webhook").await);
    }
    // Nothing observable says a half-sent request has been read: give the server a moment.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    tokio::time::timeout(PATIENCE, app.shutdown())
        .await
        .expect("shutdown waited for half-sent requests");
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(read_until_closed(&mut idle).await.is_empty());
    read_until_closed(&mut half_head).await;
    for mut b in bodies {
        let answer = read_until_closed(&mut b).await;
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 4"),
            "{answer}"
        );
    }
}

fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn failed_authentication_is_limited_per_address_and_recovers() {
    let app = spawn_app_with(
        |c| {
            c.limits.failed_auth_burst = 3;
            c.limits.failed_auth_per_sec = 1;
        },
        &[WEBHOOK_SECRET],
    )
    .await;
    let good = app.token(Scope::Read).await;
    // No credentials at all guess at nothing: answered, never limited.
    for _ in 0..10 {
        let r = app
            .client
            .get(app.url("/stripe/events"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(app.post_webhook("{}", None).await.status(), 400);
    }
    for _ in 0..3 {
        assert_eq!(app.get("/stripe/events", "guess").await.status(), 401);
    }
    let limited = app.get("/stripe/events", "guess").await;
    assert_eq!(limited.status(), 429);
    let wait = retry_after(&limited);
    assert!((1..=2).contains(&wait), "{wait}");
    let error: Value = limited.json().await.unwrap();
    assert_eq!(error["error"]["type"], "rate_limited");
    assert!(error["error"]["request_id"].is_string());
    // The address is refused before its token is looked at, even a good one...
    assert_eq!(app.get("/stripe/events", &good).await.status(), 429);
    // ...and bad webhook signatures from it are refused without verification.
    let r = app.post_webhook("{}", Some("t=1,v1=00")).await;
    assert_eq!(r.status(), 429);
    // Once the bucket refills, the good token works again.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(app.get("/stripe/events", &good).await.status(), 200);
    app.shutdown().await;
}

#[tokio::test]
async fn a_trusted_proxy_s_forwarded_address_is_what_is_limited() {
    let app = spawn_app_with(
        |c| {
            c.limits.failed_auth_burst = 2;
            c.server.trusted_proxies = vec!["127.0.0.1".into()];
        },
        &[WEBHOOK_SECRET],
    )
    .await;
    let from = |addr: &str| {
        app.client
            .get(app.url("/stripe/events"))
            .bearer_auth("guess")
            .header("x-forwarded-for", addr)
            .send()
    };
    for _ in 0..2 {
        assert_eq!(from("203.0.113.7").await.unwrap().status(), 401);
    }
    assert_eq!(from("203.0.113.7").await.unwrap().status(), 429);
    // Another client behind the same proxy is not punished for it.
    assert_eq!(from("198.51.100.1").await.unwrap().status(), 401);
    app.shutdown().await;
}

#[tokio::test]
async fn money_routes_are_limited_per_token_and_recover() {
    let app = spawn_app_with(
        |c| {
            c.limits.money_burst = 2;
            c.limits.money_per_sec = 1;
        },
        &[WEBHOOK_SECRET],
    )
    .await;
    let admin = app.token(Scope::Admin).await;
    let other = app.token(Scope::Admin).await;
    let refund = |token: &str| {
        app.client
            .post(app.url("/stripe/refunds"))
            .bearer_auth(token)
            .json(&serde_json::json!({}))
            .send()
    };
    // Refused by billd itself (no payment named): cheap, but still a money request.
    for _ in 0..2 {
        assert_eq!(refund(&admin).await.unwrap().status(), 400);
    }
    let limited = refund(&admin).await.unwrap();
    assert_eq!(limited.status(), 429);
    let wait = retry_after(&limited);
    // Another token has its own bucket; reads are not limited.
    assert_eq!(refund(&other).await.unwrap().status(), 400);
    assert_eq!(app.get("/stripe/events", &admin).await.status(), 200);
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(refund(&admin).await.unwrap().status(), 400);
    app.shutdown().await;
}

#[tokio::test]
async fn the_webhook_is_limited_per_address_and_recovers() {
    let app = spawn_app_with(
        |c| {
            c.limits.webhook_burst = 2;
            c.limits.webhook_per_sec = 1;
        },
        &[WEBHOOK_SECRET],
    )
    .await;
    let event = |n: u32| common::fixture_as("customer.created.json", &format!("evt_limit_{n}"));
    for n in 0..2 {
        assert_eq!(app.post_event(&event(n)).await.status(), 200);
    }
    let limited = app.post_event(&event(2)).await;
    assert_eq!(limited.status(), 429);
    let wait = retry_after(&limited);
    // The limited delivery was not stored: Stripe retries it, and then it is.
    let id = "evt_limit_2".to_string();
    let stored = app
        .store
        .run(move |c| billd::store::events::get(c, &id))
        .await;
    assert!(stored.is_err());
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(app.post_event(&event(2)).await.status(), 200);
    app.shutdown().await;
}

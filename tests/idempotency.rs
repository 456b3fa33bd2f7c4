//! `Idempotency-Key` records live in the database (DESIGN §3): the same key answers the
//! first result from another billd process and after a restart, per token, and a
//! request refused before it reached Stripe keeps no record.

mod common;

use std::{path::Path, sync::Arc};

use billd::{
    app::App,
    store::{
        idempotency,
        tokens::{self, Scope},
    },
};
use common::{WEBHOOK_SECRET, test_config, test_secrets};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};

/// A billd process on the database in `dir`, talking to `stripe`.
struct Node {
    address: String,
    store: billd::store::Store,
    stop: oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn node(dir: &Path, stripe: &MockServer) -> Node {
    let mut config = test_config(dir);
    config.stripe.api_base = stripe.uri();
    config.stripe.max_retries = 0;
    let app = App::build(config, &test_secrets(&[WEBHOOK_SECRET]))
        .await
        .expect("app builds");
    let address = format!("http://{}", app.local_addr());
    let store = app.store();
    let (stop, rx) = oneshot::channel::<()>();
    let handle = tokio::spawn(app.run_until(async move {
        let _ = rx.await;
    }));
    Node {
        address,
        store,
        stop,
        handle,
    }
}

impl Node {
    async fn create_customer(&self, token: &str, key: &str, email: &str) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{}/stripe/customers", self.address))
            .bearer_auth(token)
            .header("Idempotency-Key", key)
            .json(&json!({ "email": email }))
            .send()
            .await
            .unwrap()
    }

    /// A new `write` token's secret.
    async fn write_token(&self, name: &'static str) -> String {
        self.store
            .run(move |c| tokens::create(c, name, Scope::Write, 0))
            .await
            .unwrap()
            .token
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.handle.await.unwrap().unwrap();
    }
}

async fn stripe() -> MockServer {
    let mock = MockServer::start().await;
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    Mock::given(method("POST"))
        .and(path("/v1/customers"))
        .respond_with(move |_: &wiremock::Request| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            ResponseTemplate::new(200).set_body_json(json!({
                "id": format!("cus_idem{n}"), "object": "customer", "created": 1_735_000_000,
                "email": null, "name": null, "livemode": false, "deleted": false,
            }))
        })
        .mount(&mock)
        .await;
    mock
}

async fn stripe_calls(mock: &MockServer) -> usize {
    mock.received_requests().await.unwrap_or_default().len()
}

#[tokio::test]
async fn a_retry_on_another_process_or_after_a_restart_answers_the_first_result() {
    let dir = tempfile::tempdir().unwrap();
    let mock = stripe().await;
    let a = node(dir.path(), &mock).await;
    let b = node(dir.path(), &mock).await;
    let token = a.write_token("t").await;
    let first = a.create_customer(&token, "order-1", "a@example.com").await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    // The retry reaches the other process: the same answer, marked as replayed.
    let again = b.create_customer(&token, "order-1", "a@example.com").await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap()["id"], first["id"]);
    assert_eq!(stripe_calls(&mock).await, 1);
    // A different request with the key is a conflict, on any process.
    let other = b.create_customer(&token, "order-1", "b@example.com").await;
    assert_eq!(other.status(), 409);
    a.stop().await;
    b.stop().await;
    // After a restart the record is still there.
    let c = node(dir.path(), &mock).await;
    let after = c.create_customer(&token, "order-1", "a@example.com").await;
    assert_eq!(after.status(), 201);
    assert_eq!(after.json::<Value>().await.unwrap()["id"], first["id"]);
    assert_eq!(stripe_calls(&mock).await, 1);
    c.stop().await;
}

#[tokio::test]
async fn the_same_key_from_another_token_is_another_request() {
    let dir = tempfile::tempdir().unwrap();
    let mock = stripe().await;
    let n = node(dir.path(), &mock).await;
    let (one, two) = (n.write_token("one").await, n.write_token("two").await);
    let a: Value = n
        .create_customer(&one, "k", "a@example.com")
        .await
        .json()
        .await
        .unwrap();
    let r = n.create_customer(&two, "k", "a@example.com").await;
    assert_eq!(r.status(), 201);
    assert!(r.headers().get("idempotent-replayed").is_none());
    assert_ne!(r.json::<Value>().await.unwrap()["id"], a["id"]);
    assert_eq!(stripe_calls(&mock).await, 2);
    n.stop().await;
}

#[tokio::test]
async fn refused_requests_keep_no_record_and_cannot_push_out_a_kept_one() {
    let dir = tempfile::tempdir().unwrap();
    let mock = stripe().await;
    let n = node(dir.path(), &mock).await;
    let token = n.write_token("t").await;
    let kept: Value = n
        .create_customer(&token, "keep-me", "a@example.com")
        .await
        .json()
        .await
        .unwrap();
    // Many requests with distinct keys that billd refuses (an unknown field): a 400
    // each, none reaches Stripe, none leaves a record behind.
    let client = reqwest::Client::new();
    for i in 0..300 {
        let r = client
            .post(format!("{}/stripe/customers", n.address))
            .bearer_auth(&token)
            .header("Idempotency-Key", format!("flood-{i}"))
            .json(&json!({ "nonsense": true }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
    }
    let records = n.store.run(|c| idempotency::count(c)).await.unwrap();
    assert_eq!(records, 1);
    let again = n.create_customer(&token, "keep-me", "a@example.com").await;
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap()["id"], kept["id"]);
    assert_eq!(stripe_calls(&mock).await, 1);
    n.stop().await;
}

#[tokio::test]
async fn concurrent_requests_with_one_key_reach_stripe_once() {
    let dir = tempfile::tempdir().unwrap();
    let mock = stripe().await;
    let (a, b) = (node(dir.path(), &mock).await, node(dir.path(), &mock).await);
    let token = a.write_token("t").await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let address = if i % 2 == 0 { &a.address } else { &b.address };
        let (url, token) = (format!("{address}/stripe/customers"), token.clone());
        tasks.push(tokio::spawn(async move {
            let r = reqwest::Client::new()
                .post(url)
                .bearer_auth(token)
                .header("Idempotency-Key", "together")
                .json(&json!({ "email": "a@example.com" }))
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap()["id"].to_string(),
            )
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let (status, id) = t.await.unwrap();
        assert_eq!(status, 201);
        ids.insert(id);
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(stripe_calls(&mock).await, 1);
    a.stop().await;
    b.stop().await;
}

//! The authenticated JSON API over real HTTP: auth and scopes, request ids, the inbox,
//! replay, flags and the mirror reads (DESIGN §3).

mod common;

use billd::store::{events::Status, tokens::Scope};
use common::*;
use serde_json::Value;

const API_ROUTES: [(&str, &str); 9] = [
    ("GET", "/stripe/customers/cus_1"),
    ("GET", "/stripe/subscriptions/sub_1"),
    ("GET", "/stripe/invoices"),
    ("GET", "/stripe/payments"),
    ("GET", "/stripe/events"),
    ("GET", "/stripe/events/evt_1"),
    ("POST", "/stripe/events/evt_1/replay"),
    ("GET", "/stripe/flags"),
    ("POST", "/stripe/flags/1/resolve"),
];

#[tokio::test]
async fn every_api_route_answers_401_without_a_token_and_with_an_unknown_one() {
    let app = spawn_app().await;
    for (method, path) in API_ROUTES {
        let request = match method {
            "GET" => app.client.get(app.url(path)),
            _ => app.client.post(app.url(path)),
        };
        let response = request.try_clone().unwrap().send().await.unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "unauthorized");
        let response = request
            .bearer_auth("billd_not_a_token")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {path} with a bad token");
    }
    app.shutdown().await;
}

#[tokio::test]
async fn a_token_with_too_small_a_scope_gets_403() {
    let app = spawn_app().await;
    let read = app.token(Scope::Read).await;
    let write = app.token(Scope::Write).await;
    assert_eq!(
        app.post("/stripe/flags/1/resolve", &read).await.status(),
        403
    );
    assert_eq!(
        app.post("/stripe/events/evt_1/replay", &write)
            .await
            .status(),
        403
    );
    // Admin includes everything.
    let admin = app.token(Scope::Admin).await;
    assert_eq!(
        app.post("/stripe/events/evt_1/replay", &admin)
            .await
            .status(),
        404
    );
    assert_eq!(app.get("/stripe/events", &read).await.status(), 200);
    app.shutdown().await;
}

#[tokio::test]
async fn a_revoked_token_stops_working() {
    let app = spawn_app().await;
    let made = app
        .store
        .run(|c| billd::store::tokens::create(c, "t", Scope::Read, 0))
        .await
        .unwrap();
    assert_eq!(app.get("/stripe/events", &made.token).await.status(), 200);
    let id = made.info.id.clone();
    app.store
        .run(move |c| billd::store::tokens::revoke(c, &id, 1))
        .await
        .unwrap();
    assert_eq!(app.get("/stripe/events", &made.token).await.status(), 401);
    app.shutdown().await;
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_a_given_one_is_kept() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(
        r.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    let r = app
        .client
        .get(app.url("/stripe/events"))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-abc-123");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["request_id"], "trace-abc-123");
    app.shutdown().await;
}

#[tokio::test]
async fn health_and_readiness_need_no_token() {
    let app = spawn_app().await;
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        app.client
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    app.shutdown().await;
}

#[tokio::test]
async fn events_are_listed_filtered_paged_and_shown_in_the_contract_shape() {
    let app = spawn_app().await;
    let token = app.token(Scope::Read).await;
    for i in 0..5 {
        app.post_event(&fixture_as(
            "customer.updated.json",
            &format!("evt_list_{i}"),
        ))
        .await;
    }
    let mut unknown = fixture_as("customer.updated.json", "evt_list_unknown");
    unknown["type"] = "something.unheard_of".into();
    app.post_event(&unknown).await;
    app.drained().await;

    let page: Value = app
        .get("/stripe/events?limit=2", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    assert_eq!(page["has_more"], true);
    assert_eq!(page["data"][0]["id"], "evt_list_unknown");
    let after = page["data"][1]["id"].as_str().unwrap().to_string();
    let next: Value = app
        .get(
            &format!("/stripe/events?limit=100&starting_after={after}"),
            &token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(next["data"].as_array().unwrap().len(), 4);
    assert_eq!(next["has_more"], false);

    let ignored: Value = app
        .get("/stripe/events?status=ignored", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ignored["data"].as_array().unwrap().len(), 1);
    let typed: Value = app
        .get("/stripe/events?type=customer.updated", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(typed["data"].as_array().unwrap().len(), 5);

    let one: Value = app
        .get("/stripe/events/evt_list_0", &token)
        .await
        .json()
        .await
        .unwrap();
    for field in [
        "id",
        "type",
        "status",
        "attempts",
        "created",
        "received_at",
        "processed_at",
        "last_error",
        "account",
        "livemode",
    ] {
        assert!(one.get(field).is_some(), "event has no `{field}`: {one}");
    }
    assert_eq!(one["status"], "processed");
    assert!(one["created"].as_str().unwrap().ends_with('Z'));

    assert_eq!(
        app.get("/stripe/events?limit=101", &token).await.status(),
        400
    );
    assert_eq!(
        app.get("/stripe/events?status=bogus", &token)
            .await
            .status(),
        400
    );
    assert_eq!(
        app.get("/stripe/events/evt_nope", &token).await.status(),
        404
    );
    app.shutdown().await;
}

#[tokio::test]
async fn replaying_an_applied_payment_does_not_count_it_twice() {
    let app = spawn_app().await;
    let admin = app.token(Scope::Admin).await;
    let mut charge = fixture_as("charge.succeeded.json", "evt_pay_1");
    charge["livemode"] = false.into();
    app.post_event(&charge).await;
    assert_eq!(app.settled("evt_pay_1").await, Status::Processed);
    let before: Value = app
        .get("/stripe/payments", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(before["data"].as_array().unwrap().len(), 1);

    let replayed = app.post("/stripe/events/evt_pay_1/replay", &admin).await;
    assert_eq!(replayed.status(), 200);
    app.wait_status("evt_pay_1", |s| s == Status::Processed)
        .await;
    app.drained().await;
    let after: Value = app
        .get("/stripe/payments", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(after["data"], before["data"]);
    app.shutdown().await;
}

#[tokio::test]
async fn a_failed_invoice_payment_opens_a_flag_that_can_be_resolved() {
    let app = spawn_app().await;
    let write = app.token(Scope::Write).await;
    let mut failed = fixture_as("invoice.payment_failed.json", "evt_inv_failed");
    failed["livemode"] = false.into();
    app.post_event(&failed).await;
    assert_eq!(app.settled("evt_inv_failed").await, Status::Processed);

    let open: Value = app
        .get("/stripe/flags?status=open", &write)
        .await
        .json()
        .await
        .unwrap();
    let flags = open["data"].as_array().unwrap();
    assert_eq!(flags.len(), 1, "{open}");
    let flag = &flags[0];
    assert_eq!(flag["kind"], "payment_failed");
    for field in [
        "id",
        "kind",
        "object_id",
        "customer",
        "status",
        "created",
        "detail",
    ] {
        assert!(flag.get(field).is_some(), "flag has no `{field}`");
    }
    let id = flag["id"].as_i64().unwrap();
    let resolved: Value = app
        .post(&format!("/stripe/flags/{id}/resolve"), &write)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resolved["status"], "resolved");
    let open: Value = app
        .get("/stripe/flags?status=open", &write)
        .await
        .json()
        .await
        .unwrap();
    assert!(open["data"].as_array().unwrap().is_empty());
    assert_eq!(
        app.post("/stripe/flags/9999/resolve", &write)
            .await
            .status(),
        404
    );
    app.shutdown().await;
}

#[tokio::test]
async fn the_mirror_serves_a_customer_with_subscriptions_and_payment_methods() {
    let app = spawn_app().await;
    let token = app.token(Scope::Read).await;
    app.post_event(&fixture_as("customer.created.json", "evt_m_1"))
        .await;
    app.post_event(&fixture_as("customer.subscription.created.json", "evt_m_2"))
        .await;
    app.drained().await;

    let customer: Value = app
        .get("/stripe/customers/cus_IhGfebO16cMIGN", &token)
        .await
        .json()
        .await
        .unwrap();
    for field in [
        "id",
        "email",
        "name",
        "deleted",
        "default_payment_method",
        "subscriptions",
        "payment_methods",
        "flags",
    ] {
        assert!(customer.get(field).is_some(), "customer has no `{field}`");
    }
    let subs = customer["subscriptions"].as_array().unwrap();
    assert_eq!(subs.len(), 1, "{customer}");
    let sub_id = subs[0]["id"].as_str().unwrap().to_string();
    let sub: Value = app
        .get(&format!("/stripe/subscriptions/{sub_id}"), &token)
        .await
        .json()
        .await
        .unwrap();
    for field in [
        "id",
        "customer",
        "status",
        "price",
        "quantity",
        "current_period_end",
        "cancel_at_period_end",
        "canceled_at",
    ] {
        assert!(sub.get(field).is_some(), "subscription has no `{field}`");
    }
    assert_eq!(sub["customer"], "cus_IhGfebO16cMIGN");
    assert_eq!(
        app.get("/stripe/customers/cus_nobody", &token)
            .await
            .status(),
        404
    );
    app.shutdown().await;
}

#[tokio::test]
async fn invoices_and_payments_are_listed_per_customer_with_paging() {
    let app = spawn_app().await;
    let token = app.token(Scope::Read).await;
    for i in 0..3 {
        let mut charge = fixture_as("charge.succeeded.json", &format!("evt_ch_{i}"));
        charge["livemode"] = false.into();
        charge["data"]["object"]["id"] = format!("ch_test_{i}").into();
        charge["data"]["object"]["payment_intent"] = format!("pi_test_{i}").into();
        charge["data"]["object"]["customer"] = "cus_pager".into();
        charge["data"]["object"]["created"] = (1_700_000_000 + i).into();
        app.post_event(&charge).await;
    }
    app.post_event(&fixture_as("invoice.paid.json", "evt_inv_1"))
        .await;
    app.drained().await;

    let page: Value = app
        .get("/stripe/payments?customer=cus_pager&limit=2", &token)
        .await
        .json()
        .await
        .unwrap();
    let data = page["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(page["has_more"], true);
    assert_eq!(data[0]["id"], "pi_test_2");
    for field in [
        "id",
        "customer",
        "amount",
        "amount_refunded",
        "currency",
        "status",
        "created",
    ] {
        assert!(data[0].get(field).is_some(), "payment has no `{field}`");
    }
    let rest: Value = app
        .get(
            "/stripe/payments?customer=cus_pager&starting_after=pi_test_1",
            &token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert_eq!(rest["data"][0]["id"], "pi_test_0");
    let succeeded: Value = app
        .get("/stripe/payments?status=failed", &token)
        .await
        .json()
        .await
        .unwrap();
    assert!(succeeded["data"].as_array().unwrap().is_empty());

    let invoices: Value = app
        .get("/stripe/invoices?customer=cus_JsuO3bmrj0QlAw", &token)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(invoices["data"].as_array().unwrap().len(), 1, "{invoices}");
    assert_eq!(invoices["data"][0]["id"], "in_1KJqKBJDPojXS6LNJbvLUgEy");
    app.shutdown().await;
}

#[tokio::test]
async fn a_broken_database_answers_503_for_webhooks_and_api() {
    let app = spawn_app().await;
    let token = app.token(Scope::Read).await;
    // Break the inbox on purpose: every insert now fails.
    app.store
        .run(|c| {
            // The same SQL on both backends: the inbox and the flags are gone.
            c.execute_batch("ALTER TABLE events RENAME TO events_on_fire; DROP TABLE flags;")?;
            Ok(())
        })
        .await
        .unwrap();
    let response = app
        .post_event(&fixture_as("customer.created.json", "evt_broken"))
        .await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert!(
        !body.to_string().contains("events"),
        "internals leaked: {body}"
    );
    let response = app.get("/stripe/flags", &token).await;
    assert_eq!(response.status(), 503);
    app.shutdown().await;
}

#[tokio::test]
async fn metrics_need_a_read_token_unless_opened_and_count_dead_events() {
    let app = spawn_app_with(|c| c.workers.max_attempts = 1, &[WEBHOOK_SECRET]).await;
    assert_eq!(
        app.client
            .get(app.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let token = app.token(Scope::Read).await;
    // An object the customer handler cannot read: it dies after its one attempt.
    let mut broken = fixture_as("customer.updated.json", "evt_metrics_dead");
    broken["data"]["object"]["id"] = 42.into();
    app.post_event(&broken).await;
    assert_eq!(app.settled("evt_metrics_dead").await, Status::Dead);
    let text = app.get("/metrics", &token).await.text().await.unwrap();
    assert!(text.contains("billd_events{status=\"dead\"} 1"), "{text}");
    assert!(
        text.contains("billd_webhooks_total{outcome=\"stored\"}"),
        "{text}"
    );
    app.shutdown().await;

    let open = spawn_app_with(|c| c.server.metrics_public = true, &[WEBHOOK_SECRET]).await;
    assert_eq!(
        open.client
            .get(open.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    open.shutdown().await;
}

#[tokio::test]
async fn a_malformed_query_or_path_parameter_is_a_json_400() {
    let app = spawn_app().await;
    let write = app.token(Scope::Write).await;
    for response in [
        app.get("/stripe/events?limit=many", &write).await,
        app.post("/stripe/flags/abc/resolve", &write).await,
    ] {
        assert_eq!(response.status(), 400);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "invalid_request", "{body}");
        assert!(body["error"]["request_id"].is_string());
    }
    app.shutdown().await;
}

/// A token and its id.
async fn token_with_id(app: &TestApp, scope: Scope) -> (String, String) {
    let made = app
        .store
        .run(move |c| billd::store::tokens::create(c, "audited", scope, 0))
        .await
        .unwrap();
    (made.token, made.info.id)
}

async fn audit_entries(app: &TestApp) -> Vec<billd::store::audit::Entry> {
    app.store
        .run(|c| billd::store::audit::recent(c, 100))
        .await
        .unwrap()
}

#[tokio::test]
async fn api_actions_are_audited_with_the_calling_token_and_a_claimed_name_is_only_detail() {
    let app = spawn_app().await;
    let (admin, admin_id) = token_with_id(&app, Scope::Admin).await;
    let mut failed = fixture_as("invoice.payment_failed.json", "evt_audit_failed");
    failed["livemode"] = false.into();
    app.post_event(&failed).await;
    assert_eq!(app.settled("evt_audit_failed").await, Status::Processed);
    let flags: Value = app.get("/stripe/flags", &admin).await.json().await.unwrap();
    let id = flags["data"][0]["id"].as_i64().unwrap();

    let resolved = app
        .client
        .post(app.url(&format!("/stripe/flags/{id}/resolve")))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"by": "the-ceo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resolved.status(), 200);
    let resolved: Value = resolved.json().await.unwrap();
    let actor = format!("token:{admin_id}");
    assert_eq!(resolved["resolved_by"], actor.as_str(), "{resolved}");

    let replayed = app
        .post("/stripe/events/evt_audit_failed/replay", &admin)
        .await;
    assert_eq!(replayed.status(), 200);

    let entries = audit_entries(&app).await;
    let resolve = entries
        .iter()
        .find(|e| e.action == "flag.resolve")
        .expect("a flag.resolve entry");
    assert_eq!(resolve.actor, actor);
    assert_eq!(resolve.target.as_deref(), Some(id.to_string().as_str()));
    assert!(
        resolve
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("the-ceo")),
        "{resolve:?}"
    );
    let replay = entries
        .iter()
        .find(|e| e.action == "event.replay")
        .expect("an event.replay entry");
    assert_eq!(replay.actor, actor);
    assert_eq!(replay.target.as_deref(), Some("evt_audit_failed"));
    assert!(entries.iter().all(|e| e.actor == actor), "{entries:?}");
    app.shutdown().await;
}

#[tokio::test]
async fn a_flag_resolve_body_that_is_not_the_right_json_is_a_json_400_and_an_empty_one_is_fine() {
    let app = spawn_app().await;
    let write = app.token(Scope::Write).await;
    let mut failed = fixture_as("invoice.payment_failed.json", "evt_body_failed");
    failed["livemode"] = false.into();
    app.post_event(&failed).await;
    assert_eq!(app.settled("evt_body_failed").await, Status::Processed);
    let flags: Value = app.get("/stripe/flags", &write).await.json().await.unwrap();
    let id = flags["data"][0]["id"].as_i64().unwrap();
    let path = format!("/stripe/flags/{id}/resolve");

    let bad = [
        ("application/json", r#"{"by": 5}"#),
        ("application/json", "{not json"),
        ("application/json", r#"{"who": "x"}"#),
        ("text/plain", r#"{"by": "x"}"#),
        ("application/x-www-form-urlencoded", "by=x"),
    ];
    for (content_type, body) in bad {
        let response = app
            .client
            .post(app.url(&path))
            .bearer_auth(&write)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{content_type} {body}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "invalid_request", "{body}");
        assert!(body["error"]["request_id"].is_string(), "{body}");
    }
    // No body at all, with or without a content type.
    let response = app
        .client
        .post(app.url(&path))
        .bearer_auth(&write)
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(app.post(&path, &write).await.status(), 200);
    app.shutdown().await;
}

#[tokio::test]
async fn an_unknown_method_is_a_json_405_that_keeps_the_allow_header() {
    let app = spawn_app().await;
    let admin = app.token(Scope::Admin).await;
    for (method, path) in [
        (reqwest::Method::PUT, "/stripe/customers"),
        (reqwest::Method::DELETE, "/healthz"),
        (reqwest::Method::PUT, "/stripe/webhook"),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        let allow = response
            .headers()
            .get("allow")
            .unwrap_or_else(|| panic!("{method} {path}: no Allow header"))
            .to_str()
            .unwrap()
            .to_string();
        assert!(!allow.is_empty(), "{method} {path}");
        let request_id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "method_not_allowed", "{body}");
        assert_eq!(body["error"]["request_id"], request_id.as_str());
        assert!(body["error"]["message"].is_string());
    }
    app.shutdown().await;
}

#[tokio::test]
async fn an_unknown_starting_after_is_a_400_naming_the_param_on_every_list() {
    let app = spawn_app().await;
    let read = app.token(Scope::Read).await;
    for path in [
        "/stripe/events?starting_after=evt_nope",
        "/stripe/flags?starting_after=4242",
        "/stripe/flags?starting_after=abc",
        "/stripe/invoices?starting_after=in_nope",
        "/stripe/payments?starting_after=pi_nope",
    ] {
        let response = app.get(path, &read).await;
        assert_eq!(response.status(), 400, "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "invalid_request", "{path}: {body}");
        assert_eq!(body["error"]["param"], "starting_after", "{path}: {body}");
    }
    app.shutdown().await;
}

//! `GET /stripe/plans`: active products with their active prices, served from an
//! in-memory cache that product, price and plan webhooks clear.

mod common;

use billd::store::tokens::Scope;
use common::*;
use serde_json::Value;

const PRODUCT: &str = "prod_JdJ6Wt7rsz4EPJ";
const PRICE: &str = "price_1J02UOJDPojXS6LNDao8fiaO";

/// The fixture price, made an active price of the fixture product.
fn price_event(id: &str, created: i64, unit_amount: i64, type_: &str) -> Value {
    let mut e = fixture_as("price.created.json", id);
    e["type"] = type_.into();
    e["created"] = created.into();
    let o = &mut e["data"]["object"];
    o["product"] = PRODUCT.into();
    o["active"] = true.into();
    o["unit_amount"] = unit_amount.into();
    e
}

async fn plans(app: &TestApp, token: &str) -> Value {
    let r = app.get("/stripe/plans", token).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn a_price_change_arriving_by_webhook_is_visible_on_the_next_get_plans() {
    let app = spawn_app().await;
    let token = app.token(Scope::Read).await;
    assert_eq!(
        plans(&app, &token).await,
        serde_json::json!({"data": [], "has_more": false})
    );

    for event in [
        fixture_as("product.created.json", "evt_product"),
        price_event("evt_price_1", 1_700_000_000, 400, "price.created"),
    ] {
        let id = event["id"].as_str().unwrap().to_string();
        assert_eq!(app.post_event(&event).await.status(), 200);
        app.settled(&id).await;
    }
    let listed = plans(&app, &token).await;
    assert_eq!(listed["data"][0]["id"], PRODUCT, "{listed}");
    assert_eq!(listed["data"][0]["name"], "fake product");
    let price = &listed["data"][0]["prices"][0];
    assert_eq!(price["id"], PRICE);
    assert_eq!(price["unit_amount"], 400);
    assert_eq!(price["currency"], "usd");
    assert_eq!(price["interval"], "month");
    assert_eq!(price["type"], "recurring");

    // A write by another process (here straight to the database, as `billd plans sync`
    // or another node's worker would write) shows on the next GET: it bumped the
    // catalog's generation, which every request compares with its cached list's.
    app.store
        .run(|c| {
            c.execute("UPDATE prices SET unit_amount = 1 WHERE id = ?1", [PRICE])?;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(
        plans(&app, &token).await["data"][0]["prices"][0]["unit_amount"],
        1
    );

    // So does a price change by webhook.
    let changed = price_event("evt_price_2", 1_700_000_100, 990, "price.updated");
    assert_eq!(app.post_event(&changed).await.status(), 200);
    app.settled("evt_price_2").await;
    let listed = plans(&app, &token).await;
    assert_eq!(
        listed["data"][0]["prices"][0]["unit_amount"], 990,
        "{listed}"
    );

    // A deactivated price leaves the list; the product stays, without prices.
    let mut off = price_event("evt_price_3", 1_700_000_200, 990, "price.updated");
    off["data"]["object"]["active"] = false.into();
    app.post_event(&off).await;
    app.settled("evt_price_3").await;
    let listed = plans(&app, &token).await;
    assert_eq!(
        listed["data"][0]["prices"],
        serde_json::json!([]),
        "{listed}"
    );

    // A deleted product leaves it too.
    let mut deleted = fixture_as("product.deleted.json", "evt_product_deleted");
    deleted["data"]["object"]["id"] = PRODUCT.into();
    app.post_event(&deleted).await;
    app.settled("evt_product_deleted").await;
    assert_eq!(plans(&app, &token).await["data"], serde_json::json!([]));
    app.shutdown().await;
}

#[tokio::test]
async fn get_plans_needs_a_token() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/stripe/plans"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    app.shutdown().await;
}

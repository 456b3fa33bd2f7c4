//! Logs never carry card data, personal data, secrets or tokens (DESIGN §6): feed such
//! data through the real daemon and search everything it wrote.

mod common;

use std::time::Duration;

use common::{daemon::*, fixture_as, sign};
use serde_json::Value;

const WEBHOOK_SECRET: &str = "whsec_logs_secret_value_123";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_numbers_emails_secrets_and_tokens_never_reach_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let store = common::open_store(dir.path());
    let token = common::blocking(|| {
        let conn = store.conn().unwrap();
        billd::store::tokens::create(&conn, "logs", billd::store::tokens::Scope::Admin, 0)
            .unwrap()
            .token
    });
    let daemon = Daemon::start(&config, WEBHOOK_SECRET);
    let client = reqwest::Client::new();
    let post = |body: String, secret: &str| {
        let header = sign(&body, secret, billd::time::now_secs());
        client
            .post(format!("{}/stripe/webhook", daemon.address))
            .header("Stripe-Signature", header)
            .body(body)
            .send()
    };

    let secret_things = [
        "4000056655665556",
        "4242424242424242",
        "cvc-987",
        "billz@supabase.io",
        "billing@supabase.io",
        "+6587498462",
        "pii.person@example.com",
        "Jane Q. Cardholder",
        WEBHOOK_SECRET,
        SECRET_KEY,
        token.as_str(),
    ];

    // A customer with contact data and card-like metadata.
    let mut customer = fixture_as("customer.created.json", "evt_logs_1");
    customer["data"]["object"]["metadata"] =
        serde_json::json!({"card": "4000056655665556", "cvc": "cvc-987"});
    customer["data"]["object"]["name"] = "Jane Q. Cardholder".into();
    assert_eq!(
        post(customer.to_string(), WEBHOOK_SECRET)
            .await
            .unwrap()
            .status(),
        200
    );
    // A payment method whose card carries a (fake) full number and CVC.
    let mut pm = fixture_as("payment_method.attached.json", "evt_logs_2");
    pm["data"]["object"]["card"]["number"] = "4242424242424242".into();
    pm["data"]["object"]["card"]["cvc"] = "cvc-987".into();
    assert_eq!(
        post(pm.to_string(), WEBHOOK_SECRET).await.unwrap().status(),
        200
    );
    // An object that cannot be parsed, with personal data where a number should be:
    // the parse error must not quote it.
    let mut broken = fixture_as("customer.updated.json", "evt_logs_3");
    broken["data"]["object"]["created"] = "pii.person@example.com".into();
    assert_eq!(
        post(broken.to_string(), WEBHOOK_SECRET)
            .await
            .unwrap()
            .status(),
        200
    );
    // A delivery signed with the wrong secret, and malformed JSON carrying an email.
    let rejected = post(customer.to_string(), "whsec_wrong").await.unwrap();
    assert_eq!(rejected.status(), 400);
    let malformed = post(
        "{\"email\": \"pii.person@example.com\"".into(),
        WEBHOOK_SECRET,
    )
    .await
    .unwrap();
    assert_eq!(malformed.status(), 400);
    // API calls with the bearer token, and with contact data in the query string.
    for path in [
        "/stripe/events",
        "/stripe/customers/cus_IhGfebO16cMIGN",
        "/stripe/payments?customer=pii.person@example.com",
    ] {
        let r = client
            .get(format!("{}{path}", daemon.address))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        let _: Value = r.json().await.unwrap();
    }

    // Wait until the three stored events were tried, then stop cleanly (flushes files).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let tried = common::count(&store, "SELECT count(*) FROM events WHERE attempts > 0");
        if tried == 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "events were not applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stdout = daemon.stop().join("\n");
    let mut files = String::new();
    for entry in std::fs::read_dir(dir.path().join("logs")).unwrap() {
        files.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    assert!(
        stdout.contains("evt_logs_1"),
        "stdout logs lack the event id: {stdout}"
    );
    assert!(
        files.contains("evt_logs_1"),
        "the log file lacks the event id"
    );
    // A stored delivery logs one line at info, with its outcome; the generic request
    // line of a webhook answered 2xx is at debug, while a rejected one keeps it. Both sinks hold
    // the same JSON lines.
    let received: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("evt_logs_1") && l.contains("webhook received"))
        .collect();
    assert_eq!(received.len(), 1, "{stdout}");
    assert!(
        received[0].contains(r#""outcome":"stored""#),
        "{}",
        received[0]
    );
    let webhook_request = |status: &str| {
        stdout.lines().any(|l| {
            l.contains(r#""level":"INFO""#)
                && l.contains(r#""message":"request""#)
                && l.contains(r#""route":"/stripe/webhook""#)
                && l.contains(&format!(r#""status":{status}"#))
        })
    };
    assert!(!webhook_request("200"), "{stdout}");
    assert!(webhook_request("400"), "{stdout}");
    for line in stdout.lines().filter(|l| l.contains("evt_logs_")) {
        assert!(files.contains(line), "not in the file: {line}");
    }
    assert!(
        files.contains("customer.created"),
        "the log file lacks the event type"
    );
    for thing in secret_things {
        assert!(
            !stdout.contains(thing),
            "stdout log contains {thing:?}: {}",
            stdout
                .lines()
                .filter(|l| l.contains(thing))
                .collect::<Vec<_>>()
                .join("\n")
        );
        assert!(!files.contains(thing), "log file contains {thing:?}");
    }
}

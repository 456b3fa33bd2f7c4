//! The documentation that is generated or served: `GET /docs` (the API reference page),
//! the committed `docs/openapi.json`, and the generated parts of `docs/webhooks.md` and
//! `docs/events/`. Generated files fail this test when stale;
//! `BILLD_UPDATE_DOCS=1 cargo test --test docs` rewrites them.

mod common;

use std::{fs, path::PathBuf};

use base64::Engine;
use common::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

const REGENERATE: &str = "BILLD_UPDATE_DOCS=1 cargo test --test docs";

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn updating() -> bool {
    std::env::var_os("BILLD_UPDATE_DOCS").is_some_and(|v| v == "1")
}

/// Writes `text` to `path` when updating; otherwise the problem, if it differs.
fn generated(path: &str, text: &str) -> Option<String> {
    let file = repo(path);
    if updating() {
        if fs::read_to_string(&file).ok().as_deref() != Some(text) {
            if let Some(dir) = file.parent() {
                fs::create_dir_all(dir).unwrap();
            }
            fs::write(&file, text).unwrap_or_else(|e| panic!("write {path}: {e}"));
        }
        return None;
    }
    match fs::read_to_string(&file) {
        Ok(committed) if committed == text => None,
        Ok(_) => Some(format!("{path} is out of date")),
        Err(_) => Some(format!("{path} is missing")),
    }
}

fn assert_fresh(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "generated docs are stale:\n  {}\nregenerate them with `{REGENERATE}` and commit them",
        problems.join("\n  ")
    );
}

// ---- GET /docs --------------------------------------------------------------------

struct Page {
    content_type: String,
    csp: String,
    body: String,
}

async fn fetch_page(app: &TestApp) -> Page {
    let response = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    Page {
        content_type: header("content-type"),
        csp: header("content-security-policy"),
        body: response.text().await.unwrap(),
    }
}

/// The text of the page's first `<tag>` element.
fn element<'a>(page: &'a str, tag: &str) -> &'a str {
    let (_, rest) = page
        .split_once(&format!("<{tag}>"))
        .unwrap_or_else(|| panic!("no <{tag}> in the page"));
    rest.split_once(&format!("</{tag}>")).unwrap().0
}

fn sha256_source(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The policy's directives by name.
fn directives(csp: &str) -> Vec<(String, Vec<String>)> {
    csp.split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            let mut words = d.split_whitespace().map(str::to_string);
            (words.next().unwrap(), words.collect())
        })
        .collect()
}

#[tokio::test]
async fn docs_page_is_served_without_a_token_as_html_with_a_strict_csp() {
    let app = spawn_app().await;
    let page = fetch_page(&app).await;
    app.shutdown().await;
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    let policy = directives(&page.csp);
    let directive = |name: &str| {
        policy
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in {}", page.csp))
    };
    assert_eq!(directive("default-src"), ["'none'"]);
    assert_eq!(directive("connect-src"), ["'self'"]);
    assert_eq!(directive("frame-ancestors"), ["'none'"]);
    // The inline script and style run because their hashes are allowed, nothing else.
    assert_eq!(
        directive("script-src"),
        [sha256_source(element(&page.body, "script"))]
    );
    assert_eq!(
        directive("style-src"),
        [sha256_source(element(&page.body, "style"))]
    );
    assert!(!page.csp.contains("unsafe"), "{}", page.csp);
    assert_eq!(page.body.matches("<script").count(), 1);
    assert_eq!(page.body.matches("<style").count(), 1);
}

#[tokio::test]
async fn docs_page_loads_nothing_from_other_hosts() {
    let app = spawn_app().await;
    let page = fetch_page(&app).await;
    app.shutdown().await;
    let body = page.body.to_ascii_lowercase();
    for scheme in ["http://", "https://", "//cdn", "src=", "@import", "url("] {
        assert!(!body.contains(scheme), "the page contains {scheme:?}");
    }
    for href in body.split("href=\"").skip(1) {
        assert!(
            href.starts_with('/') && !href.starts_with("//") || href.starts_with('#'),
            "a link off the origin: {}",
            &href[..href.find('"').unwrap_or(href.len())]
        );
    }
}

/// The page renders the document it fetches, so what it can show is what the document
/// holds: it fetches `/openapi.json` and walks every path with every method any
/// operation of the document uses.
#[tokio::test]
async fn docs_page_renders_every_operation_of_the_served_document() {
    let app = spawn_app().await;
    let page = fetch_page(&app).await;
    let doc: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    app.shutdown().await;
    let script = element(&page.body, "script");
    assert!(script.contains("fetch(\"/openapi.json\""), "{script}");
    assert!(script.contains("doc.paths"));
    let methods = script
        .split_once("var METHODS = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .expect("the renderer's METHODS list")
        .0;
    let methods: Vec<&str> = methods
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .collect();
    let mut ids = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                methods.contains(&method.as_str()),
                "{method} {path}: the page does not render {method}"
            );
            let id = op["operationId"].as_str().unwrap();
            ids.push(id.to_string());
        }
    }
    // The page anchors each operation by its id, so ids must be unique to be reachable.
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "duplicate operationIds");
    assert!(
        ids.contains(&"docs".to_string()),
        "GET /docs is not documented"
    );
}

// ---- docs/openapi.json ------------------------------------------------------------

/// The committed document, as `serde_json` pretty-prints it.
fn openapi_text() -> String {
    let mut text = serde_json::to_string_pretty(&billd::http::openapi::document()).unwrap();
    text.push('\n');
    text
}

#[test]
fn committed_openapi_json_matches_the_document() {
    assert_fresh(
        generated("docs/openapi.json", &openapi_text())
            .into_iter()
            .collect(),
    );
}

#[tokio::test]
async fn the_served_document_is_the_committed_one() {
    let app = spawn_app().await;
    let served: Value = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    app.shutdown().await;
    let built: Value = serde_json::from_str(&openapi_text()).unwrap();
    assert_eq!(served, built);
}

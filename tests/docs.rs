//! The documentation that is generated or served: `GET /docs` (the API reference page,
//! also loaded in headless Chromium when `scripts/test.sh` provides one), the committed
//! `docs/openapi.json`, and the generated parts of `docs/webhooks.md` and `docs/events/`.
//! Generated files fail this test when stale; `BILLD_UPDATE_DOCS=1 cargo test --test
//! docs` rewrites them (and the screenshot `docs/screenshots/docs.png`).

mod common;

use std::{
    fs,
    path::PathBuf,
    time::{Duration, Instant},
};

use base64::Engine;
use common::{browser::Browser, *};
use serde_json::{Value, json};
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

// ---- GET /docs in a browser -------------------------------------------------------

/// What the page shows of each operation, read in the browser after its script ran.
const RENDERED: &str = r#"
return Array.from(document.querySelectorAll("main section.op[id]")).map(function (s) {
  var text = function (css) { var e = s.querySelector(css); return e ? e.textContent : null; };
  return { id: s.id, title: text("h3"), request: text(".example-request"), answer: text(".example-answer") };
});"#;

/// Waits until the page's script has rendered the document (or reported that it could not).
async fn wait_rendered(browser: &Browser) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let done = "var s = document.getElementById('status');
                return s !== null && s.textContent === '' && document.querySelectorAll('section.op').length > 0;";
    while browser.execute(done, vec![]).await != true {
        assert!(
            Instant::now() < deadline,
            "/docs did not render within 20 s: {:?}",
            browser
                .execute(
                    "return document.getElementById('status').textContent;",
                    vec![]
                )
                .await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `/docs` in headless Chromium: the page's script renders every operation of the
/// served document with its recorded example, under its CSP, with nothing fetched from
/// another host and nothing in the console.
#[tokio::test]
async fn docs_page_renders_every_operation_and_its_example_in_a_browser() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = spawn_app().await;
    browser.goto("about:blank").await;
    let blank = browser.screenshot().await;
    browser.log("performance").await;

    browser.goto(&app.url("/docs")).await;
    wait_rendered(&browser).await;
    let doc = billd::http::openapi::document();
    let rendered = browser.execute(RENDERED, vec![]).await;
    let rendered: Vec<&Value> = rendered.as_array().unwrap().iter().collect();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            operations += 1;
            let id = op["operationId"].as_str().unwrap();
            let shown = rendered
                .iter()
                .find(|r| r["id"] == id)
                .unwrap_or_else(|| panic!("{method} {path} ({id}) is not on the page"));
            let title = shown["title"].as_str().unwrap();
            assert!(
                title.contains(method.as_str()) && title.contains(path.as_str()),
                "{id}: {title}"
            );
            let example = &op["x-billd-example"];
            let line = format!(
                "{} {}",
                example["method"].as_str().unwrap(),
                example["path"].as_str().unwrap()
            );
            let request = shown["request"]
                .as_str()
                .unwrap_or_else(|| panic!("{id}: no example shown"));
            assert!(request.starts_with(&line), "{id}: {request}");
            let status = example["status"].to_string();
            let answer = shown["answer"]
                .as_str()
                .unwrap_or_else(|| panic!("{id}: no answer shown"));
            assert!(
                answer.starts_with(&status) && answer.len() > status.len() + 2,
                "{id}: {answer}"
            );
        }
    }
    assert!(operations > 30, "only {operations} operations");

    // The example as a person sees it (rendered text), and a link that takes them there.
    let request = browser
        .find("#createCustomer .example-request")
        .await
        .expect("an example");
    let text = browser.text(&request).await;
    assert!(text.starts_with("POST /stripe/customers"), "{text}");
    assert!(text.contains("@example.com"), "{text}");
    let link = browser
        .find("nav a[href='#createCustomer']")
        .await
        .expect("a link to it");
    browser.click(&link).await;
    assert!(browser.current_url().await.ends_with("#createCustomer"));

    let origin = app.url("/");
    let urls = browser.requested_urls().await;
    assert!(urls.iter().any(|u| u.ends_with("/docs")), "{urls:?}");
    assert!(
        urls.iter().any(|u| u.ends_with("/openapi.json")),
        "{urls:?}"
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

    // An operation with its example, as a reader who followed a link sees it: committed
    // as docs/screenshots/docs.png when regenerating the docs; a blank or unstyled page
    // would compress to a fraction of this.
    browser.goto(&app.url("/docs#createCustomer")).await;
    wait_rendered(&browser).await;
    let png = browser.screenshot().await;
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(
        png.len() > 40_000 && png.len() > 8 * blank.len(),
        "the screenshot looks blank: {} bytes (about:blank: {})",
        png.len(),
        blank.len()
    );
    let kept = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("docs.png");
    fs::write(&kept, &png).unwrap();
    if updating() {
        let file = repo("docs/screenshots/docs.png");
        fs::create_dir_all(file.parent().unwrap()).unwrap();
        fs::write(&file, &png).unwrap();
    }
    assert_eq!(browser.log("browser").await, Vec::<Value>::new());
    browser.quit().await;
    app.shutdown().await;
}

/// The WebDriver client does what the dashboard's tests will need: type into an input,
/// click, read text, a property and the origin's cookies.
#[tokio::test]
async fn the_browser_client_types_clicks_and_reads_cookies() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = spawn_app().await;
    browser.goto(&app.url("/docs")).await;
    // A form made by WebDriver's script (the page's CSP allows no other script).
    browser
        .execute(
            "var input = document.createElement('input'); input.id = 'q';
             var button = document.createElement('button'); button.id = 'go'; button.textContent = 'Go';
             button.onclick = function () {
               document.cookie = 'seen=' + encodeURIComponent(input.value) + '; SameSite=Strict';
               button.textContent = 'Done: ' + input.value;
             };
             document.body.prepend(input, button);",
            vec![],
        )
        .await;
    let input = browser.find("#q").await.expect("the input");
    browser.type_into(&input, "jenny").await;
    browser.clear(&input).await;
    browser.type_into(&input, "jenny@example.com").await;
    assert_eq!(
        browser.property(&input, "value").await,
        json!("jenny@example.com")
    );
    let button = browser.find("#go").await.expect("the button");
    browser.click(&button).await;
    assert_eq!(browser.text(&button).await, "Done: jenny@example.com");
    let cookies = browser.cookies().await;
    let seen = cookies
        .iter()
        .find(|c| c["name"] == "seen")
        .unwrap_or_else(|| panic!("no cookie: {cookies:?}"));
    assert_eq!(seen["value"], "jenny%40example.com");
    assert!(browser.find("#nothing-here").await.is_none());
    assert_eq!(browser.find_all("#q, #go").await.len(), 2);

    // What the /docs test relies on: a load the page's CSP refuses reaches the log.
    assert_eq!(browser.log("browser").await, Vec::<Value>::new());
    browser
        .execute("new Image().src = '/nope.png';", vec![])
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut console = Vec::new();
    while console.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        console = browser.log("browser").await;
    }
    assert!(
        console.iter().any(|e| e["message"]
            .as_str()
            .is_some_and(|m| m.contains("Content Security Policy"))),
        "{console:#?}"
    );
    browser.quit().await;
    app.shutdown().await;
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

// ---- docs/events/ and the event list of docs/webhooks.md --------------------------

#[derive(serde::Deserialize)]
struct Source {
    family: Vec<Family>,
}

#[derive(serde::Deserialize)]
struct Family {
    slug: String,
    title: String,
    #[serde(default)]
    prefixes: Vec<String>,
    #[serde(default)]
    types: Vec<String>,
    example: String,
    reads: Vec<String>,
    writes: String,
    replay: String,
}

impl Family {
    fn covers(&self, type_: &str) -> bool {
        self.types.iter().any(|t| t == type_) || self.prefixes.iter().any(|p| type_.starts_with(p))
    }

    fn handled(&self) -> Vec<&'static str> {
        billd::events::handled_types()
            .iter()
            .copied()
            .filter(|t| self.covers(t))
            .collect()
    }
}

fn source() -> Source {
    let text = fs::read_to_string(repo("docs/events/families.toml")).unwrap();
    toml::from_str(&text).unwrap()
}

fn example(name: &str) -> String {
    let text = fs::read_to_string(repo(&format!("tests/fixtures/events/{name}"))).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    personal::scrub(&mut v);
    serde_json::to_string_pretty(&v).unwrap()
}

fn event_page(f: &Family) -> String {
    let mut out = format!(
        "<!-- Generated from docs/events/families.toml by `{REGENERATE}`; edit that file, not this one. -->\n\n# {}\n\n",
        f.title
    );
    out.push_str("## Types billd handles\n\n");
    for t in f.handled() {
        out.push_str(&format!("- `{t}`\n"));
    }
    out.push_str("\n## Fields billd reads\n\nFrom `data.object`; every field is optional unless Stripe always sends it, unknown fields are ignored, and the raw object is kept.\n\n");
    for r in &f.reads {
        out.push_str(&format!("- `{r}`\n"));
    }
    out.push_str(&format!(
        "\n## What it changes\n\n{}\n\nEvery write follows the ordering rule: an older event never overwrites newer state (docs/webhooks.md).\n\n## What a replay does\n\n{}\n\n",
        f.writes, f.replay
    ));
    out.push_str(&format!(
        "## Example\n\n`tests/fixtures/events/{}`, personal data replaced:\n\n```json\n{}\n```\n",
        f.example,
        example(&f.example)
    ));
    out
}

const BEGIN: &str = "<!-- BEGIN generated: events (docs/events/families.toml) -->";
const END: &str = "<!-- END generated: events -->";

fn event_list(source: &Source) -> String {
    let mut out = format!("{BEGIN}\n");
    for f in &source.family {
        let types: Vec<String> = f.handled().iter().map(|t| format!("`{t}`")).collect();
        out.push_str(&format!(
            "- [{}](events/{}.md): {}\n",
            f.title,
            f.slug,
            types.join(", ")
        ));
    }
    let all = billd::events::handled_types().join(",");
    out.push_str(&format!(
        "\nAll {} of them, comma-separated for `stripe listen --events` or a script:\n\n```\n{all}\n```\n{END}",
        billd::events::handled_types().len()
    ));
    out
}

#[test]
fn every_handled_type_is_in_exactly_one_documented_family() {
    let source = source();
    for t in billd::events::handled_types() {
        let families: Vec<&str> = source
            .family
            .iter()
            .filter(|f| f.covers(t))
            .map(|f| f.slug.as_str())
            .collect();
        assert_eq!(families.len(), 1, "{t} is in families {families:?}");
    }
    for f in &source.family {
        assert!(!f.handled().is_empty(), "{}: no handled type", f.slug);
        assert!(f.covers(f.example.trim_end_matches(".json")), "{}", f.slug);
    }
}

#[test]
fn event_pages_and_the_webhooks_event_list_are_fresh() {
    let source = source();
    let mut problems = Vec::new();
    let mut index = format!(
        "<!-- Generated from docs/events/families.toml by `{REGENERATE}`. -->\n\n# Events billd handles\n\nOne page per family; how to set up the endpoint: [webhooks.md](../webhooks.md).\n\n"
    );
    for f in &source.family {
        problems.extend(generated(
            &format!("docs/events/{}.md", f.slug),
            &event_page(f),
        ));
        index.push_str(&format!("- [{}]({}.md)\n", f.title, f.slug));
    }
    problems.extend(generated("docs/events/README.md", &index));

    let webhooks = fs::read_to_string(repo("docs/webhooks.md")).unwrap();
    let (before, rest) = webhooks
        .split_once(BEGIN)
        .expect("docs/webhooks.md: no BEGIN marker");
    let (_, after) = rest
        .split_once(END)
        .expect("docs/webhooks.md: no END marker");
    let fresh = format!("{before}{}{after}", event_list(&source));
    problems.extend(generated("docs/webhooks.md", &fresh));
    assert_fresh(problems);
}

/// Nothing that looks like a person's contact data reaches the generated pages.
#[test]
fn generated_event_pages_hold_no_personal_data() {
    for f in &source().family {
        let page = event_page(f);
        for word in page.split(|c: char| c.is_whitespace() || c == '"' || c == ',') {
            if word.contains('@') && word.contains('.') {
                assert!(word.ends_with("@example.com"), "{}: {word}", f.slug);
            }
        }
        let v: Value = serde_json::from_str(&example(&f.example)).unwrap();
        let mut stack = vec![&v];
        while let Some(v) = stack.pop() {
            match v {
                Value::Object(map) => {
                    for (k, value) in map {
                        if k.ends_with("phone") {
                            assert!(
                                value.is_null() || value == "+15555550123",
                                "{}: {k}",
                                f.slug
                            );
                        }
                        stack.push(value);
                    }
                }
                Value::Array(items) => stack.extend(items),
                _ => {}
            }
        }
    }
}

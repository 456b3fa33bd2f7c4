//! A small WebDriver client for tests: headless Chromium driven by chromedriver over
//! the W3C WebDriver protocol, on top of reqwest. `scripts/test.sh` installs Debian's
//! `chromium` and `chromium-driver` and names them in `BILLD_TEST_CHROMIUM` and
//! `BILLD_TEST_CHROMEDRIVER`; when they are unset, browser tests print a skip message
//! and return (and fail under `CI`).
//!
//! One [`Browser`] is one chromedriver process with one session and a fresh profile in
//! a temporary directory. Dropping it ends the session and kills chromedriver, also
//! when a test panics.

use std::{
    io::{Read, Write},
    net::TcpStream,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use base64::Engine;
use serde_json::{Value, json};

use super::localstripe::free_port;

pub const CHROMIUM_ENV: &str = "BILLD_TEST_CHROMIUM";
pub const CHROMEDRIVER_ENV: &str = "BILLD_TEST_CHROMEDRIVER";

/// The key under which WebDriver names an element (W3C WebDriver, "web element
/// identifier").
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long a command may take (a page load is one command).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// Chromium and chromedriver, from the environment.
pub struct Executables {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
}

impl Executables {
    /// Both paths, or `None` with a printed skip message when either is unset (a
    /// panic instead under `CI`, where a skipped browser test would hide a failure).
    pub fn from_env() -> Option<Executables> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        match (var(CHROMIUM_ENV), var(CHROMEDRIVER_ENV)) {
            (Some(chromium), Some(chromedriver)) => Some(Executables {
                chromium: chromium.into(),
                chromedriver: chromedriver.into(),
            }),
            _ => {
                let msg = format!(
                    "no browser: set {CHROMIUM_ENV} and {CHROMEDRIVER_ENV} (scripts/test.sh \
                     installs Debian's chromium and chromium-driver and sets them)"
                );
                if std::env::var_os("CI").is_some() {
                    panic!("{msg}");
                }
                eprintln!("\n*** SKIPPED: {msg} ***\n");
                None
            }
        }
    }
}

/// An element of the current page, as WebDriver names it.
#[derive(Clone, Debug)]
pub struct Element(String);

/// A WebDriver error answer: its `error` code (e.g. `no such element`) and message.
#[derive(Debug)]
pub struct WebDriverError {
    pub status: u16,
    pub error: String,
    pub message: String,
}

impl std::fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.error, self.status, self.message)
    }
}

pub struct Browser {
    http: reqwest::Client,
    /// `127.0.0.1:PORT` of chromedriver.
    driver_addr: String,
    session: Option<String>,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and opens a headless Chromium session; `None` when the
    /// executables are not configured (see [`Executables::from_env`]).
    pub async fn start() -> Option<Browser> {
        let exe = Executables::from_env()?;
        Some(Browser::start_with(&exe).await)
    }

    pub async fn start_with(exe: &Executables) -> Browser {
        let port = free_port();
        let driver = Command::new(&exe.chromedriver)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.chromedriver.display()));
        let profile = tempfile::tempdir().expect("a profile directory");
        let mut browser = Browser {
            http: reqwest::Client::builder()
                .timeout(COMMAND_TIMEOUT)
                .build()
                .expect("an HTTP client"),
            driver_addr: format!("127.0.0.1:{port}"),
            session: None,
            driver,
            _profile: profile,
        };
        browser.wait_until_ready().await;
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-dev-shm-usage".into(),
            "--window-size=1280,2000".into(),
            format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": exe.chromium, "args": args},
            // The console (JS errors, CSP violations) and the network events of the page.
            "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"},
        }}});
        let answer = browser
            .call(reqwest::Method::POST, "/session", Some(capabilities))
            .await
            .unwrap_or_else(|e| panic!("cannot open a Chromium session: {e}"));
        let id = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {answer}"));
        browser.session = Some(id.to_string());
        browser
    }

    async fn wait_until_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = self
                .call(reqwest::Method::GET, "/status", None)
                .await
                .is_ok_and(|v| v["ready"] == true);
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver did not get ready on {} within 20 s",
                self.driver_addr
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One WebDriver command: its `value`, or the error the driver answered.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WebDriverError> {
        let url = format!("http://{}{path}", self.driver_addr);
        let mut request = self.http.request(method, &url);
        // Commands without parameters still send an empty object (W3C WebDriver).
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| WebDriverError {
            status: 0,
            error: "no answer".into(),
            message: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        let value = answer.get("value").cloned().unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            return Ok(value);
        }
        Err(WebDriverError {
            status,
            error: value["error"].as_str().unwrap_or("unknown error").into(),
            message: value["message"].as_str().unwrap_or_default().into(),
        })
    }

    /// A command of the session; panics on an error (tests that expect one use
    /// [`Browser::try_session`]).
    async fn session_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Value {
        self.try_session(method.clone(), path, body)
            .await
            .unwrap_or_else(|e| panic!("WebDriver {method} {path}: {e}"))
    }

    pub async fn try_session(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, WebDriverError> {
        let session = self.session.as_deref().expect("an open session");
        self.call(method, &format!("/session/{session}{path}"), body)
            .await
    }

    /// Loads `url` and waits for the document to be loaded (not for what its scripts
    /// fetch afterwards: wait for that with [`Browser::wait_for`]).
    pub async fn goto(&self, url: &str) {
        self.session_call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    pub async fn current_url(&self) -> String {
        let v = self.session_call(reqwest::Method::GET, "/url", None).await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// The first element matching a CSS selector, if any.
    pub async fn find(&self, css: &str) -> Option<Element> {
        let body = json!({"using": "css selector", "value": css});
        match self
            .try_session(reqwest::Method::POST, "/element", Some(body))
            .await
        {
            Ok(v) => Some(element(&v)),
            Err(e) if e.error == "no such element" => None,
            Err(e) => panic!("find {css:?}: {e}"),
        }
    }

    /// Every element matching a CSS selector.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let body = json!({"using": "css selector", "value": css});
        let v = self
            .session_call(reqwest::Method::POST, "/elements", Some(body))
            .await;
        v.as_array().into_iter().flatten().map(element).collect()
    }

    /// Waits until an element matches a CSS selector (polling the page's state).
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.find(css).await {
                return e;
            }
            assert!(Instant::now() < deadline, "no {css:?} after {timeout:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The rendered text of an element.
    pub async fn text(&self, e: &Element) -> String {
        let v = self
            .session_call(
                reqwest::Method::GET,
                &format!("/element/{}/text", e.0),
                None,
            )
            .await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// A property of an element (`value` of an input, `href` of a link).
    pub async fn property(&self, e: &Element, name: &str) -> Value {
        self.session_call(
            reqwest::Method::GET,
            &format!("/element/{}/property/{name}", e.0),
            None,
        )
        .await
    }

    /// Types `text` into an input, as keystrokes.
    pub async fn type_into(&self, e: &Element, text: &str) {
        self.session_call(
            reqwest::Method::POST,
            &format!("/element/{}/value", e.0),
            Some(json!({"text": text})),
        )
        .await;
    }

    pub async fn clear(&self, e: &Element) {
        self.session_call(
            reqwest::Method::POST,
            &format!("/element/{}/clear", e.0),
            Some(json!({})),
        )
        .await;
    }

    pub async fn click(&self, e: &Element) {
        self.session_call(
            reqwest::Method::POST,
            &format!("/element/{}/click", e.0),
            Some(json!({})),
        )
        .await;
    }

    /// Runs a script in the page (its body, with `arguments`) and returns its value.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        self.session_call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
    }

    /// The cookies of the current page's origin, as WebDriver shows them (`name`,
    /// `value`, `httpOnly`, `secure`, `sameSite`, …).
    pub async fn cookies(&self) -> Vec<Value> {
        let v = self
            .session_call(reqwest::Method::GET, "/cookie", None)
            .await;
        v.as_array().cloned().unwrap_or_default()
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let v = self
            .session_call(reqwest::Method::GET, "/screenshot", None)
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().expect("a base64 screenshot"))
            .expect("a base64 screenshot")
    }

    /// The log entries of `kind` since the last read: `browser` (the console: JS
    /// errors, CSP violations, `console.*`) or `performance` (DevTools events, e.g.
    /// `Network.requestWillBeSent`, as JSON text in each entry's `message`).
    pub async fn log(&self, kind: &str) -> Vec<Value> {
        let v = self
            .session_call(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({"type": kind})),
            )
            .await;
        v.as_array().cloned().unwrap_or_default()
    }

    /// Every URL the page asked for since the last read of the performance log.
    pub async fn requested_urls(&self) -> Vec<String> {
        self.log("performance")
            .await
            .iter()
            .filter_map(|entry| serde_json::from_str::<Value>(entry["message"].as_str()?).ok())
            .filter(|m| m["message"]["method"] == "Network.requestWillBeSent")
            .filter_map(|m| {
                Some(
                    m["message"]["params"]["request"]["url"]
                        .as_str()?
                        .to_string(),
                )
            })
            .collect()
    }

    /// Ends the session (Chromium exits) and stops chromedriver.
    pub async fn quit(mut self) {
        if self.session.is_some() {
            let _ = self.try_session(reqwest::Method::DELETE, "", None).await;
            self.session = None;
        }
        // Drop kills chromedriver.
    }
}

fn element(v: &Value) -> Element {
    Element(
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("not an element: {v}"))
            .to_string(),
    )
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Drop cannot await: the session is ended with one plain HTTP/1.1 request, so
        // Chromium exits even when a test panicked before `quit`.
        if let Some(session) = self.session.take() {
            let _ = delete_session(&self.driver_addr, &session);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn delete_session(addr: &str, session: &str) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "DELETE /session/{session} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    // Read until chromedriver answers (it does once Chromium has quit) or closes.
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map(|_| ())
}

//! localstripe (a stateful fake Stripe on PyPI) as the Stripe double: one process per
//! test on a free port, killed when dropped. `scripts/test.sh` installs it into
//! `.venv-localstripe/`; `LOCALSTRIPE` may name another executable.
//!
//! When it is missing, tests that need it fail under CI (`CI` set) and are skipped,
//! loudly, elsewhere.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

/// The API key localstripe is called with (it accepts any `sk_…`).
pub const KEY: &str = "sk_test_billd";

pub struct LocalStripe {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub url: String,
    pub client: reqwest::Client,
    child: Child,
}

fn executable() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("LOCALSTRIPE").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv-localstripe/bin/localstripe");
    venv.is_file().then_some(venv)
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl LocalStripe {
    /// Starts localstripe and waits until it answers; `None` when it is not installed
    /// and `CI` is unset (the caller returns: the test is skipped).
    pub async fn start() -> Option<LocalStripe> {
        let Some(exe) = executable() else {
            let msg = "localstripe is not installed: run scripts/test.sh (it installs it into \
                       .venv-localstripe/) or set LOCALSTRIPE to its executable";
            if std::env::var_os("CI").is_some() {
                panic!("{msg}");
            }
            eprintln!("\n*** SKIPPED: {msg} ***\n");
            return None;
        };
        let port = free_port();
        let child = Command::new(&exe)
            .args(["--port", &port.to_string(), "--from-scratch"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("TEST_LOG").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let ls = LocalStripe {
            url: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            child,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = ls
                .client
                .get(ls.api("/v1/customers"))
                .bearer_auth(KEY)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                return Some(ls);
            }
            assert!(
                Instant::now() < deadline,
                "localstripe did not answer on port {port} within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn api(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// GET on localstripe's API directly: (status, JSON body).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .client
            .get(self.api(path))
            .bearer_auth(KEY)
            .send()
            .await
            .expect("localstripe GET");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// A form POST on localstripe's API directly.
    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> Value {
        let r = self
            .client
            .post(self.api(path))
            .bearer_auth(KEY)
            .form(form)
            .send()
            .await
            .expect("localstripe POST");
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "localstripe POST {path}: {status} {body}"
        );
        body
    }

    /// Makes localstripe send its events, signed with `secret`, to `url`.
    pub async fn send_webhooks_to(&self, url: &str, secret: &str) {
        let r = self
            .client
            .post(self.api("/_config/webhooks/billd"))
            .form(&[("url", url), ("secret", secret)])
            .send()
            .await
            .expect("localstripe webhook config");
        assert!(r.status().is_success(), "webhook config: {}", r.status());
    }

    /// A monthly plan (localstripe has plans, not prices; Stripe takes either id).
    pub async fn plan(&self, id: &str, amount: i64, currency: &str) {
        self.post(
            "/v1/plans",
            &[
                ("id", id),
                ("amount", &amount.to_string()),
                ("currency", currency),
                ("interval", "month"),
                ("product[name]", id),
            ],
        )
        .await;
    }
}

impl Drop for LocalStripe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Where alerts go: a Slack-compatible webhook (POSTed on billd's own hyper + rustls
//! stack) and a command given the alert as JSON on stdin, each retried with backoff.

use std::{
    io::Write,
    process::Stdio,
    time::{Duration, Instant},
};

use http_body_util::{BodyExt, Full};
use hyper::{Request, body::Bytes, header::CONTENT_TYPE};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client as HyperClient, connect::HttpConnector},
    rt::TokioExecutor,
};
use secrecy::{ExposeSecret, SecretString};
use tokio_util::sync::CancellationToken;

use super::{Alert, MAX_BACKOFF};
use crate::config::AlertsConfig;

/// Where alerts go.
#[derive(Clone)]
pub struct Sinks {
    webhook: Option<Webhook>,
    command: Option<CommandSink>,
}

#[derive(Clone)]
struct Webhook {
    url: SecretString,
    http: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    timeout: Duration,
}

#[derive(Clone)]
struct CommandSink {
    argv: Vec<String>,
    timeout: Duration,
}

/// What one sink answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub sink: &'static str,
    /// What it said ("HTTP 200: ok", "exit status 0"), or why it failed.
    pub detail: String,
    pub accepted: bool,
}

impl Sinks {
    /// The sinks of `[alerts]`; `url` is the webhook URL resolved with the secrets.
    pub fn new(config: &AlertsConfig, url: Option<SecretString>) -> anyhow::Result<Sinks> {
        let webhook = match url {
            Some(url) => {
                if url.expose_secret().parse::<hyper::Uri>().is_err() {
                    anyhow::bail!("alerts.webhook_url is not a URL");
                }
                let mut http = HttpConnector::new();
                http.enforce_http(false);
                http.set_connect_timeout(Some(Duration::from_secs(config.webhook_timeout_secs)));
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_webpki_roots()
                    .https_or_http()
                    .enable_http1()
                    .wrap_connector(http);
                Some(Webhook {
                    url,
                    http: HyperClient::builder(TokioExecutor::new()).build(connector),
                    timeout: Duration::from_secs(config.webhook_timeout_secs),
                })
            }
            None => None,
        };
        let command = (!config.command.is_empty()).then(|| CommandSink {
            argv: config.command.clone(),
            timeout: Duration::from_secs(config.command_timeout_secs),
        });
        Ok(Sinks { webhook, command })
    }

    pub fn is_empty(&self) -> bool {
        self.webhook.is_none() && self.command.is_none()
    }

    /// The names of the configured sinks.
    pub fn names(&self) -> Vec<&'static str> {
        let mut names = Vec::new();
        if self.webhook.is_some() {
            names.push("webhook");
        }
        if self.command.is_some() {
            names.push("command");
        }
        names
    }

    /// One attempt at every sink.
    pub async fn send_once(&self, alert: &Alert) -> Vec<Answer> {
        let mut answers = Vec::new();
        for sink in self.names() {
            answers.push(self.send_to(sink, alert).await);
        }
        answers
    }

    async fn send_to(&self, sink: &'static str, alert: &Alert) -> Answer {
        let result = match sink {
            "webhook" => match &self.webhook {
                Some(w) => w.send(alert).await,
                None => Err("not configured".into()),
            },
            _ => match &self.command {
                Some(c) => c.send(alert).await,
                None => Err("not configured".into()),
            },
        };
        match result {
            Ok(detail) => Answer {
                sink,
                detail,
                accepted: true,
            },
            Err(detail) => Answer {
                sink,
                detail,
                accepted: false,
            },
        }
    }

    /// Delivers `alert` to every sink, retrying each that fails with backoff; logs an
    /// alert that a sink never accepted at ERROR. Answers whether every sink took it.
    pub async fn deliver(
        &self,
        alert: &Alert,
        retries: u32,
        backoff: Duration,
        stop: &CancellationToken,
    ) -> bool {
        let mut all = true;
        for sink in self.names() {
            let mut attempt = 0;
            loop {
                let answer = self.send_to(sink, alert).await;
                if answer.accepted {
                    crate::metrics::count(
                        "billd_alerts_sent_total",
                        &[("kind", alert.kind), ("result", "delivered")],
                    );
                    tracing::info!(
                        alert_kind = alert.kind,
                        resolved = alert.resolved,
                        sink,
                        attempt = attempt + 1,
                        "alert delivered"
                    );
                    break;
                }
                if attempt >= retries || stop.is_cancelled() {
                    crate::metrics::count(
                        "billd_alerts_sent_total",
                        &[("kind", alert.kind), ("result", "given_up")],
                    );
                    tracing::error!(
                        alert_kind = alert.kind,
                        resolved = alert.resolved,
                        summary = %alert.summary,
                        sink,
                        attempts = attempt + 1,
                        error = %answer.detail,
                        "alert not delivered after its retries"
                    );
                    all = false;
                    break;
                }
                tracing::warn!(alert_kind = alert.kind, sink, attempt = attempt + 1, error = %answer.detail,
                    "alert delivery failed, will retry");
                let wait = backoff
                    .saturating_mul(1 << attempt.min(16))
                    .min(MAX_BACKOFF);
                attempt += 1;
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
        all
    }
}

impl Webhook {
    async fn send(&self, alert: &Alert) -> Result<String, String> {
        let body = serde_json::to_vec(alert).map_err(|e| e.to_string())?;
        let request = Request::post(self.url.expose_secret())
            .header(CONTENT_TYPE, "application/json")
            .header(
                hyper::header::USER_AGENT,
                concat!("billd/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(body)))
            // The error would name the URL: say only that it is not one.
            .map_err(|_| "the webhook URL is not a valid request URL".to_string())?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| connection_error(&e))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| connection_error(&e))?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        let (status, body) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| format!("no answer within {} s", self.timeout.as_secs()))??;
        let said: String = String::from_utf8_lossy(&body)
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        let detail = if said.is_empty() {
            format!("HTTP {}", status.as_u16())
        } else {
            format!("HTTP {}: {said}", status.as_u16())
        };
        if status.is_success() {
            Ok(detail)
        } else {
            Err(detail)
        }
    }
}

/// A client error without the URL it was for (hyper's messages can include it).
fn connection_error(e: &dyn std::error::Error) -> String {
    let mut source = e.source();
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    match last {
        Some(cause) => format!("cannot reach the webhook: {cause}"),
        None => "cannot reach the webhook".into(),
    }
}

impl CommandSink {
    /// Runs the program directly (no shell: nothing in an alert can become a command),
    /// the alert as JSON on its stdin.
    async fn send(&self, alert: &Alert) -> Result<String, String> {
        let body = serde_json::to_vec(alert).map_err(|e| e.to_string())?;
        let argv = self.argv.clone();
        let timeout = self.timeout;
        // tokio's process support is not built in; a blocking thread waits instead.
        tokio::task::spawn_blocking(move || run_command(&argv, &body, timeout))
            .await
            .map_err(|e| format!("command task failed: {e}"))?
    }
}

pub(super) fn run_command(
    argv: &[String],
    stdin: &[u8],
    timeout: Duration,
) -> Result<String, String> {
    let (program, args) = argv.split_first().ok_or("no command")?;
    let mut child = std::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(mut pipe) = child.stdin.take() {
        // A command may exit without reading its stdin: its exit status decides.
        let _ = pipe.write_all(stdin);
    }
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(format!("{program}: {status}")),
            Ok(Some(status)) => return Err(format!("{program}: {status}")),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{program}: killed after {} s", timeout.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => return Err(format!("{program}: {e}")),
        }
    }
}

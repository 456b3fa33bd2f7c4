//! The only module that talks to Stripe.
//!
//! Requests are built with async-stripe's request types (parameters, paths and form
//! encoding of the API version it pins, sent as `Stripe-Version`) and sent by billd's
//! own [`Client`] on hyper + rustls, which async-stripe uses too. billd sends them
//! itself because it needs what async-stripe's bundled client keeps to itself: the
//! `Request-Id`, `Retry-After` and `Stripe-Should-Retry` headers, retries that keep a
//! caller's idempotency key, and lenient parsing (test doubles and old accounts answer
//! thinner objects than async-stripe's strict types accept).
//!
//! Every call:
//! - is built once, before its first attempt, with every path segment percent-encoded
//!   and empty or dot segments refused (ids are checked at the edge too, `crate::ids`;
//!   this keeps a missed check from reaching another endpoint); a request that cannot
//!   be built is [`StripeError::Request`], never sent and never retried;
//! - has a per-attempt timeout and is retried with exponential backoff and jitter after
//!   a network error, a timeout, a 409, 429 or 5xx (a 429's `Retry-After` is honoured),
//!   unless Stripe answers `Stripe-Should-Retry: false`;
//! - sends an `Idempotency-Key` with every POST, the caller's when it gave one (so a
//!   retried API call never charges or refunds twice, whichever billd process serves
//!   the retry) or a fresh one, the same on every retry of the call;
//! - logs its operation, method, path, HTTP status, Stripe's request id, attempt and
//!   duration; never a body, a query string or a message (they may carry personal data).
//!
//! Answers are parsed into lean types of each resource module (serde, every field
//! optional unless Stripe always sends it), and the raw JSON is kept for the mirror.

pub mod checkout;
pub mod connect;
pub mod customers;
mod error;
pub mod list;
pub mod payment_methods;
pub mod payments;
pub mod refunds;
pub mod subscriptions;
pub mod webhook_endpoints;

use std::{num::NonZeroU32, sync::Arc, time::Duration};

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{
    Method, Request, StatusCode,
    header::{
        AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT,
    },
};
use hyper_rustls::HttpsConnector;
use hyper_util::{
    client::legacy::{Client as HyperClient, connect::HttpConnector},
    rt::TokioExecutor,
};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use stripe_client_core::{
    ConfigOverride, CustomizedStripeRequest, RequestBuilder, RequestStrategy, StripeClient,
    StripeMethod, StripeRequest,
};

pub use error::{ErrorBody, StripeError};

use crate::config::StripeConfig;

/// The longest wait between two attempts, whatever the backoff or `Retry-After` say.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

static STRIPE_VERSION: HeaderName = HeaderName::from_static("stripe-version");
static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
static STRIPE_ACCOUNT: HeaderName = HeaderName::from_static("stripe-account");
static SHOULD_RETRY: HeaderName = HeaderName::from_static("stripe-should-retry");
static REQUEST_ID: HeaderName = HeaderName::from_static("request-id");

/// How calls are timed and retried.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Per attempt.
    pub timeout: Duration,
    pub max_retries: u32,
    /// First backoff; doubled per retry, with jitter, at most [`MAX_BACKOFF`].
    pub backoff: Duration,
    /// Payments without a `return_url` ask for payment methods that need no redirect
    /// (`automatic_payment_methods[allow_redirects]=never`).
    pub payments_without_redirects: bool,
    /// Requests per second at most, every caller of this client together.
    pub max_requests_per_sec: u32,
}

impl Settings {
    pub fn from_config(config: &StripeConfig) -> Settings {
        Settings {
            timeout: Duration::from_secs(config.timeout_secs),
            max_retries: config.max_retries,
            backoff: Duration::from_millis(config.retry_backoff_ms),
            payments_without_redirects: config.payments_without_redirects,
            max_requests_per_sec: config.max_requests_per_sec,
        }
    }

    /// The wait before retry number `retry` (1-based): the doubled backoff, then a
    /// random point in its upper half, so clients retrying together spread out.
    fn backoff(&self, retry: u32) -> Duration {
        let full = self
            .backoff
            .saturating_mul(1 << retry.saturating_sub(1).min(16))
            .min(MAX_BACKOFF);
        let half = full / 2;
        half + half.mul_f64(fastrand::f64())
    }
}

/// An idempotency key: 1 to 255 visible ASCII characters (Stripe's rule).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(key: &str) -> Result<IdempotencyKey, String> {
        if key.is_empty() || key.len() > 255 {
            return Err("an Idempotency-Key has 1 to 255 characters".into());
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err("an Idempotency-Key has only visible ASCII characters".into());
        }
        Ok(IdempotencyKey(key.to_string()))
    }

    /// A fresh key for a call the caller gave none.
    pub fn generate() -> IdempotencyKey {
        IdempotencyKey(format!("billd-{}", uuid::Uuid::new_v4()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// This key with a suffix, for the second Stripe call that one API call makes
    /// (each Stripe call needs its own key; a retry of the API call makes the same).
    pub fn derived(&self, suffix: &str) -> IdempotencyKey {
        let mut key = self.0.clone();
        // Keys of at most 255 characters: cut the caller's part, never the suffix.
        key.truncate(255 - suffix.len() - 1);
        key.push(':');
        key.push_str(suffix);
        IdempotencyKey(key)
    }
}

// Keys come from callers and are opaque: never printed.
impl std::fmt::Debug for IdempotencyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdempotencyKey(..)")
    }
}

/// An object Stripe returned: billd's lean view of it and its raw JSON (for the mirror).
#[derive(Debug, Clone)]
pub struct Object<T> {
    pub value: T,
    pub raw: String,
}

/// One HTTP answer from Stripe.
#[derive(Debug, Clone)]
struct Answer {
    status: StatusCode,
    body: Bytes,
    request_id: Option<String>,
    retry_after: Option<u64>,
    should_retry: Option<bool>,
}

/// The Stripe API client. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// The connected account this client acts for (`Stripe-Account`), if any.
    account: Option<HeaderValue>,
}

struct Inner {
    http: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// Without a trailing slash.
    api_base: String,
    /// `Bearer <key>`, marked sensitive.
    authorization: HeaderValue,
    settings: Settings,
    /// A live key (`sk_live_…`, `rk_live_…`): objects it returns are live.
    livemode: bool,
    /// One bucket for every call this process makes, whoever makes it, so a backfill
    /// or gap repair cannot spend the API's share of Stripe's rate limit.
    limiter: governor::DefaultDirectRateLimiter,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("api_base", &self.inner.api_base)
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `api_base` (e.g. `https://api.stripe.com`) with the secret key.
    pub fn new(
        api_base: &str,
        secret_key: &SecretString,
        settings: Settings,
    ) -> Result<Client, StripeError> {
        let mut authorization =
            HeaderValue::try_from(format!("Bearer {}", secret_key.expose_secret())).map_err(
                |_| StripeError::Config("the Stripe secret key is not a valid header value".into()),
            )?;
        authorization.set_sensitive(true);
        let api_base = api_base.trim_end_matches('/').to_string();
        if api_base.parse::<hyper::Uri>().is_err() {
            return Err(StripeError::Config(format!(
                "stripe.api_base is not a URL: {api_base}"
            )));
        }
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let http = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        let per_sec =
            std::num::NonZeroU32::new(settings.max_requests_per_sec).unwrap_or(NonZeroU32::MIN);
        let limiter = governor::RateLimiter::direct(governor::Quota::per_second(per_sec));
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                api_base,
                authorization,
                settings,
                livemode: secret_key.expose_secret().contains("_live_"),
                limiter,
            }),
            account: None,
        })
    }

    /// The same client acting for the connected account `account` (an `acct_` id the
    /// caller has checked with `ids::check`): every request carries `Stripe-Account`.
    pub fn for_account(&self, account: &str) -> Result<Client, StripeError> {
        let value = HeaderValue::from_str(account).map_err(|_| {
            StripeError::Request("the account id is not a valid header value".into())
        })?;
        Ok(Client {
            inner: self.inner.clone(),
            account: Some(value),
        })
    }

    /// [`Client::for_account`] when `account` is given, else this client.
    pub fn acting_for(&self, account: Option<&str>) -> Result<Client, StripeError> {
        match account {
            Some(a) => self.for_account(a),
            None => Ok(self.clone()),
        }
    }

    /// A client from the `[stripe]` config.
    pub fn from_config(
        config: &StripeConfig,
        secret_key: &SecretString,
    ) -> Result<Client, StripeError> {
        Client::new(&config.api_base, secret_key, Settings::from_config(config))
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// Whether the key is a live one.
    pub fn livemode(&self) -> bool {
        self.inner.livemode
    }

    /// Sends `request` (an async-stripe request type) and parses the answer leniently
    /// into `T`. `op` names the operation in the logs (`customers.create`); `key` is the
    /// caller's idempotency key, for POSTs.
    pub async fn send<T: DeserializeOwned>(
        &self,
        op: &'static str,
        request: &impl StripeRequest,
        key: Option<&IdempotencyKey>,
    ) -> Result<Object<T>, StripeError> {
        self.send_built(op, request.build(), key).await
    }

    /// [`Client::send`] for a request already built (e.g. with parameters added by hand).
    pub async fn send_built<T: DeserializeOwned>(
        &self,
        op: &'static str,
        request: RequestBuilder,
        key: Option<&IdempotencyKey>,
    ) -> Result<Object<T>, StripeError> {
        let body = self.call(op, request, key).await?;
        let raw = String::from_utf8(body.to_vec())
            .map_err(|_| StripeError::Decode(format!("{op}: the answer is not UTF-8")))?;
        let value =
            crate::objects::parse_json(&raw, op).map_err(|e| StripeError::Decode(e.to_string()))?;
        Ok(Object { value, raw })
    }

    /// Sends one request (with its retries) and answers the body of a 2xx answer.
    async fn call(
        &self,
        op: &'static str,
        request: RequestBuilder,
        key: Option<&IdempotencyKey>,
    ) -> Result<Bytes, StripeError> {
        // GET and DELETE are idempotent by definition and take no key (Stripe's rule).
        let key = match (&request.method, key) {
            (StripeMethod::Post, Some(key)) => Some(key.clone()),
            (StripeMethod::Post, None) => Some(IdempotencyKey::generate()),
            _ => None,
        };
        // Built once, before any attempt: a request that cannot be built is the
        // caller's input, and no retry would change it.
        let call = self.build(op, request, key.as_ref()).inspect_err(|e| {
            tracing::warn!(stripe_op = op, error = %e, "stripe call not sent");
        })?;
        let answer = self.attempts(&call).await?;
        if answer.status.is_success() {
            Ok(answer.body)
        } else {
            Err(error::from_answer(op, &answer))
        }
    }

    /// The request as it goes out on every attempt: its path percent-encoded segment
    /// by segment, so an id can never name another endpoint or add parameters.
    fn build(
        &self,
        op: &'static str,
        request: RequestBuilder,
        key: Option<&IdempotencyKey>,
    ) -> Result<Call, StripeError> {
        let method = match request.method {
            StripeMethod::Get => Method::GET,
            StripeMethod::Post => Method::POST,
            StripeMethod::Delete => Method::DELETE,
        };
        let path = encode_path(&request.path)?;
        let mut url = format!("{}/v1{}", self.inner.api_base, path);
        if let Some(query) = request.query.as_deref().filter(|q| !q.is_empty()) {
            url.push('?');
            url.push_str(query);
        }
        let uri = url
            .parse::<hyper::Uri>()
            .map_err(|_| StripeError::Request(format!("{op}: the request URL is not valid")))?;
        let body = Bytes::from(request.body.unwrap_or_default());
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, self.inner.authorization.clone());
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("billd/", env!("CARGO_PKG_VERSION"))),
        );
        headers.insert(
            STRIPE_VERSION.clone(),
            HeaderValue::from_str(stripe_client_core::VERSION.as_str()).map_err(|_| {
                StripeError::Request(format!("{op}: the Stripe-Version is not a header value"))
            })?,
        );
        if let Some(key) = key {
            headers.insert(
                IDEMPOTENCY_KEY.clone(),
                HeaderValue::from_str(key.as_str()).map_err(|_| {
                    StripeError::Request(format!(
                        "{op}: the idempotency key is not a valid header value"
                    ))
                })?,
            );
        }
        if let Some(account) = &self.account {
            headers.insert(STRIPE_ACCOUNT.clone(), account.clone());
        }
        if !body.is_empty() {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
        }
        Ok(Call {
            op,
            method,
            path,
            uri,
            headers,
            body,
        })
    }

    /// Tries `call` until it gets an answer that is final (success, or an error a
    /// retry would not change) or runs out of retries. Network failures after the last
    /// retry are the error; HTTP answers of any status are returned.
    async fn attempts(&self, call: &Call) -> Result<Answer, StripeError> {
        let settings = &self.inner.settings;
        let mut retry = 0;
        loop {
            // Waiting for the shared bucket is not part of the attempt's timeout.
            self.inner.limiter.until_ready().await;
            let started = std::time::Instant::now();
            let outcome = tokio::time::timeout(settings.timeout, self.once(call)).await;
            let ms = started.elapsed().as_millis() as u64;
            let wait = match outcome {
                Ok(Ok(answer)) => {
                    let status = answer.status.as_u16();
                    tracing::info!(
                        stripe_op = call.op,
                        method = %call.method,
                        path = %call.path,
                        status,
                        stripe_request_id = answer.request_id.as_deref().unwrap_or(""),
                        attempt = retry + 1,
                        duration_ms = ms,
                        "stripe call"
                    );
                    crate::alerts::stripe_attempt(matches!(status, 429 | 500..=599));
                    crate::metrics::observe(
                        "billd_stripe_requests_duration_seconds",
                        &[("op", call.op), ("status", answer.status.as_str())],
                        started.elapsed().as_secs_f64(),
                    );
                    let retryable = match answer.should_retry {
                        Some(says) => says,
                        None => matches!(status, 409 | 429 | 500..=599),
                    };
                    if answer.status.is_success() || !retryable || retry >= settings.max_retries {
                        return Ok(answer);
                    }
                    let asked = Duration::from_secs(answer.retry_after.unwrap_or(0));
                    settings.backoff(retry + 1).max(asked.min(MAX_BACKOFF))
                }
                Ok(Err(e)) => {
                    crate::alerts::stripe_attempt(true);
                    crate::metrics::observe(
                        "billd_stripe_requests_duration_seconds",
                        &[("op", call.op), ("status", "error")],
                        started.elapsed().as_secs_f64(),
                    );
                    tracing::warn!(
                        stripe_op = call.op,
                        method = %call.method,
                        path = %call.path,
                        attempt = retry + 1,
                        duration_ms = ms,
                        error = %e,
                        "stripe call failed"
                    );
                    if retry >= settings.max_retries {
                        return Err(e);
                    }
                    settings.backoff(retry + 1)
                }
                Err(_) => {
                    crate::alerts::stripe_attempt(true);
                    crate::metrics::observe(
                        "billd_stripe_requests_duration_seconds",
                        &[("op", call.op), ("status", "timeout")],
                        started.elapsed().as_secs_f64(),
                    );
                    tracing::warn!(
                        stripe_op = call.op,
                        method = %call.method,
                        path = %call.path,
                        attempt = retry + 1,
                        duration_ms = ms,
                        "stripe call timed out"
                    );
                    if retry >= settings.max_retries {
                        return Err(StripeError::Timeout);
                    }
                    settings.backoff(retry + 1)
                }
            };
            retry += 1;
            tokio::time::sleep(wait).await;
        }
    }

    /// One HTTP exchange.
    async fn once(&self, call: &Call) -> Result<Answer, StripeError> {
        let mut request = Request::new(Full::new(call.body.clone()));
        *request.method_mut() = call.method.clone();
        *request.uri_mut() = call.uri.clone();
        *request.headers_mut() = call.headers.clone();
        let response = self
            .inner
            .http
            .request(request)
            .await
            .map_err(|e| StripeError::Connection(error::describe(&e)))?;
        let status = response.status();
        let header = |name: &HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let request_id = header(&REQUEST_ID);
        let retry_after = header(&RETRY_AFTER).and_then(|v| v.trim().parse().ok());
        let should_retry = header(&SHOULD_RETRY).and_then(|v| v.trim().parse().ok());
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| StripeError::Connection(error::describe(&e)))?
            .to_bytes();
        Ok(Answer {
            status,
            body,
            request_id,
            retry_after,
            should_retry,
        })
    }
}

struct Call {
    op: &'static str,
    method: Method,
    /// The API path (`/customers/cus_…`), encoded, for the logs: no query string.
    path: String,
    uri: hyper::Uri,
    headers: HeaderMap,
    body: Bytes,
}

/// `path` with every segment percent-encoded (bytes outside `A-Za-z0-9-._~` become
/// `%XX`); a path that does not start with `/` or has an empty, `.` or `..` segment is
/// refused, since a server would resolve it to another endpoint. The error never quotes
/// the path: it may hold a caller's hostile id.
fn encode_path(path: &str) -> Result<String, StripeError> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(StripeError::Request(
            "the request path does not start with /".into(),
        ));
    };
    let mut encoded = String::with_capacity(path.len() + 8);
    for segment in rest.split('/') {
        if matches!(segment, "" | "." | "..") {
            return Err(StripeError::Request(
                "the request path has an empty, . or .. segment".into(),
            ));
        }
        encoded.push('/');
        for b in segment.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                encoded.push(char::from(b));
            } else {
                encoded.push_str(&format!("%{b:02X}"));
            }
        }
    }
    Ok(encoded)
}

/// async-stripe's own sending interface, so its typed requests can also be sent as
/// `request.customize::<T>().send(&client)` into a `miniserde` type (e.g.
/// `miniserde::json::Value`). An `Idempotent` request strategy passes the caller's key.
impl StripeClient for Client {
    type Err = StripeError;

    async fn execute(&self, request: CustomizedStripeRequest) -> Result<Bytes, StripeError> {
        let (request, config): (RequestBuilder, ConfigOverride) = request.into_pieces();
        let key = match config.request_strategy {
            Some(RequestStrategy::Idempotent(key)) => {
                Some(IdempotencyKey::parse(key.as_str()).map_err(StripeError::Request)?)
            }
            _ => None,
        };
        self.call("request", request, key.as_ref()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let s = Settings {
            timeout: Duration::from_secs(1),
            max_retries: 3,
            backoff: Duration::from_millis(400),
            payments_without_redirects: true,
            max_requests_per_sec: 100,
        };
        for _ in 0..50 {
            let first = s.backoff(1);
            assert!((200..=400).contains(&first.as_millis()), "{first:?}");
            let second = s.backoff(2);
            assert!((400..=800).contains(&second.as_millis()), "{second:?}");
            assert!(s.backoff(30) <= MAX_BACKOFF);
        }
    }

    #[test]
    fn idempotency_keys_follow_stripes_rules_and_never_print() {
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(256)).is_err());
        assert!(IdempotencyKey::parse("has space").is_err());
        let key = IdempotencyKey::parse("order-42/refund").unwrap();
        assert_eq!(format!("{key:?}"), "IdempotencyKey(..)");
        let long = IdempotencyKey::parse(&"k".repeat(255)).unwrap();
        let derived = long.derived("charge");
        assert_eq!(derived.as_str().len(), 255);
        assert!(derived.as_str().ends_with(":charge"));
        assert_ne!(IdempotencyKey::generate(), IdempotencyKey::generate());
    }

    #[test]
    fn paths_are_encoded_segment_by_segment_and_dot_segments_refused() {
        assert_eq!(
            encode_path("/customers/cus_1/sources").unwrap(),
            "/customers/cus_1/sources"
        );
        assert_eq!(encode_path("/prices/a-b.c~d").unwrap(), "/prices/a-b.c~d");
        assert_eq!(
            encode_path("/customers/x?payment_intent=pi_1&amount=100#f%").unwrap(),
            "/customers/x%3Fpayment_intent%3Dpi_1%26amount%3D100%23f%25"
        );
        assert_eq!(
            encode_path("/customers/a\r\n\0\x7f b\u{e9}").unwrap(),
            "/customers/a%0D%0A%00%7F%20b%C3%A9"
        );
        assert_eq!(encode_path("/customers/...").unwrap(), "/customers/...");
        for bad in [
            "/customers/x/../../refunds",
            "/customers/./x",
            "/customers/..",
            "/customers//x",
            "/customers/",
            "/",
            "customers/x",
            "",
        ] {
            let e = encode_path(bad).unwrap_err();
            assert!(matches!(e, StripeError::Request(_)), "{bad:?}: {e:?}");
            assert!(!e.to_string().contains("refunds"), "{e}");
        }
    }

    #[tokio::test]
    async fn a_request_that_cannot_be_built_is_refused_before_any_attempt() {
        // Nothing listens here: an attempt would fail with a connection error (and be
        // retried), so only a refusal before sending answers `Request` at once.
        let client = Client::new(
            "http://127.0.0.1:9",
            &SecretString::from("sk_test_x"),
            Settings {
                timeout: Duration::from_secs(5),
                max_retries: 3,
                backoff: Duration::from_secs(5),
                payments_without_redirects: true,
                max_requests_per_sec: 100,
            },
        )
        .unwrap();
        let started = std::time::Instant::now();
        for path in ["/customers/x/../../refunds", "/customers/"] {
            let request = RequestBuilder::new(StripeMethod::Post, path);
            let e = client.call("t", request, None).await.unwrap_err();
            assert!(matches!(e, StripeError::Request(_)), "{e:?}");
            assert!(!e.outcome_unknown());
        }
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}

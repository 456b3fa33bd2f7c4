//! `GET /v1/webhook_endpoints` for `billd doctor`: the endpoints of the account, and
//! Stripe's clock (the `Date` header of the same answer) to measure the local clock's
//! skew, which matters because webhook signatures carry a timestamp.
//!
//! The first page is one attempt with the client's timeout and no retries: a doctor
//! reports a Stripe that does not answer at once rather than waiting through backoffs.

use http_body_util::{BodyExt, Full};
use hyper::{Request, header::DATE};
use serde::Deserialize;
use stripe_client_core::{RequestBuilder, StripeMethod};
use time::OffsetDateTime;

use super::{Answer, Client, StripeError, error, list};

const OP: &str = "webhook_endpoints.list";

/// A webhook endpoint, the fields a doctor looks at.
#[derive(Debug, Clone, Deserialize)]
pub struct WebhookEndpoint {
    pub id: String,
    #[serde(default)]
    pub url: String,
    /// `enabled` or `disabled`.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub enabled_events: Vec<String>,
    /// The API version its events are rendered in; none means the account's default.
    #[serde(default)]
    pub api_version: Option<String>,
}

/// The account's webhook endpoints, and when Stripe answered.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub endpoints: Vec<WebhookEndpoint>,
    /// Stripe's `Date` header (one-second resolution), when it sent a valid one.
    pub stripe_date: Option<OffsetDateTime>,
    /// The local clock halfway through the exchange, to compare with `stripe_date`.
    pub local_date: OffsetDateTime,
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    data: Vec<WebhookEndpoint>,
    #[serde(default)]
    has_more: bool,
}

/// Every webhook endpoint of the account (usually a handful: one page of 100).
pub async fn list_all(client: &Client) -> Result<Endpoints, StripeError> {
    let query = list::Query {
        limit: list::MAX_LIMIT,
        ..list::Query::default()
    };
    let request = RequestBuilder::new(StripeMethod::Get, "/webhook_endpoints").query(&query);
    let call = client.build(OP, request, None)?;
    let mut http = Request::new(Full::new(call.body.clone()));
    *http.method_mut() = call.method.clone();
    *http.uri_mut() = call.uri.clone();
    *http.headers_mut() = call.headers.clone();
    let sent = OffsetDateTime::now_utc();
    let exchange = async {
        let response = client
            .inner
            .http
            .request(http)
            .await
            .map_err(|e| StripeError::Connection(error::describe(&e)))?;
        let received = OffsetDateTime::now_utc();
        let status = response.status();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let date = header(DATE.as_str()).and_then(|d| parse_http_date(&d));
        let answer = Answer {
            status,
            request_id: header("request-id"),
            retry_after: None,
            should_retry: None,
            body: Default::default(),
        };
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| StripeError::Connection(error::describe(&e)))?
            .to_bytes();
        Ok::<_, StripeError>((Answer { body, ..answer }, date, received))
    };
    let (answer, stripe_date, received) = tokio::time::timeout(client.settings().timeout, exchange)
        .await
        .map_err(|_| StripeError::Timeout)??;
    tracing::info!(
        stripe_op = OP,
        status = answer.status.as_u16(),
        stripe_request_id = answer.request_id.as_deref().unwrap_or(""),
        "stripe call"
    );
    if !answer.status.is_success() {
        return Err(error::from_answer(OP, &answer));
    }
    let text = std::str::from_utf8(&answer.body)
        .map_err(|_| StripeError::Decode(format!("{OP}: the answer is not UTF-8")))?;
    let page: Page =
        crate::objects::parse_json(text, OP).map_err(|e| StripeError::Decode(e.to_string()))?;
    let mut endpoints = page.data;
    let mut more = page.has_more;
    while more && let Some(last) = endpoints.last().map(|e| e.id.clone()) {
        let query = list::Query {
            limit: list::MAX_LIMIT,
            starting_after: Some(last),
            ..list::Query::default()
        };
        let next = list::page(client, OP, "/webhook_endpoints", &query).await?;
        more = next.has_more && !next.data.is_empty();
        for listed in next.data {
            endpoints.push(
                crate::objects::parse_json(&listed.raw, OP)
                    .map_err(|e| StripeError::Decode(e.to_string()))?,
            );
        }
    }
    Ok(Endpoints {
        endpoints,
        stripe_date,
        local_date: sent + (received - sent) / 2,
    })
}

/// An HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110's preferred form).
pub fn parse_http_date(text: &str) -> Option<OffsetDateTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    time::PrimitiveDateTime::parse(text.trim(), &format)
        .ok()
        .map(time::PrimitiveDateTime::assume_utc)
}

#[cfg(test)]
mod tests {
    #[test]
    fn http_dates_parse_in_utc() {
        let d = super::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(d.unix_timestamp(), 784_111_777);
        assert!(super::parse_http_date("yesterday").is_none());
    }
}

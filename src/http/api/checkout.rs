//! `POST /stripe/checkout/sessions`: a Stripe Checkout session for a one-time payment
//! or a subscription, answered as `{id, url}` (send the customer to `url`). The
//! session is written through to the mirror; its outcome arrives by webhook.

use axum::{Extension, Json, extract::State, http::StatusCode};
use serde::{Deserialize, Serialize};

use super::{
    Body,
    compliance::{self, Ask},
    write_through_for,
};
use crate::{
    events,
    http::{
        AppState,
        auth::Caller,
        error::{ApiError, ApiResult},
        idempotency::Key,
    },
    ids::{self, Kind},
    report::parse_currency,
    stripe::{
        self,
        checkout::{Line, Mode, NewSession},
    },
    time::as_rfc3339,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// `payment` or `subscription`.
    mode: String,
    customer: Option<String>,
    /// Prefills the email of a customer Checkout creates (not with `customer`).
    customer_email: Option<String>,
    /// One price (or legacy plan) and its quantity...
    price: Option<String>,
    quantity: Option<u64>,
    /// ...or several lines...
    line_items: Option<Vec<LineBody>>,
    /// ...or, in payment mode, an amount (minor units) made up on the spot.
    amount: Option<i64>,
    currency: Option<String>,
    name: Option<String>,
    success_url: String,
    cancel_url: Option<String>,
    client_reference_id: Option<String>,
    /// The session is the connected account's (sent with `Stripe-Account`).
    account: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineBody {
    price: Option<String>,
    quantity: Option<u64>,
    amount: Option<i64>,
    currency: Option<String>,
    name: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Session {
    id: String,
    url: Option<String>,
    mode: Option<String>,
    status: Option<String>,
    customer: Option<String>,
    #[serde(serialize_with = "as_rfc3339::opt_secs")]
    expires_at: Option<i64>,
}

pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Key(key): Key,
    Body(body): Body<CreateBody>,
) -> ApiResult<(StatusCode, Json<Session>)> {
    ids::check_opt(Kind::Account, "account", body.account.as_deref())?;
    let account = body.account.clone();
    let new = new_session(body)?;
    let mut ask = Ask {
        action: "checkout.create",
        customer: new.customer.clone(),
        email: new.customer_email.clone(),
        ..Ask::default()
    };
    for line in &new.lines {
        match line {
            Line::Price { price, quantity } => ask.prices.push((price.clone(), *quantity)),
            Line::Amount {
                amount,
                currency,
                quantity,
                ..
            } => ask.amounts.push((
                amount.saturating_mul(i64::try_from(*quantity).unwrap_or(i64::MAX)),
                currency.clone(),
            )),
        }
    }
    compliance::check(&state, &caller, ask).await?;
    let stripe = state.stripe.acting_for(account.as_deref())?;
    let session = stripe::checkout::create(&stripe, &new, key.as_ref()).await?;
    let raw = session.raw.clone();
    write_through_for(
        &state,
        account,
        move |conn, origin| events::write_checkout_session(conn, &raw, origin).map(drop),
        |_| Ok(()),
    )
    .await;
    let s = session.value;
    Ok((
        StatusCode::CREATED,
        Json(Session {
            id: s.id,
            url: s.url,
            mode: s.mode,
            status: s.status,
            customer: s.customer,
            expires_at: s.expires_at,
        }),
    ))
}

/// Checks the body and says what to ask Stripe for.
fn new_session(body: CreateBody) -> Result<NewSession, ApiError> {
    let mode = match body.mode.as_str() {
        "payment" => Mode::Payment,
        "subscription" => Mode::Subscription,
        other => {
            return Err(ApiError::invalid(format!(
                "mode must be payment or subscription, got {other:?}"
            ))
            .with("param", "mode"));
        }
    };
    if body.success_url.trim().is_empty() {
        return Err(ApiError::invalid("success_url is required").with("param", "success_url"));
    }
    ids::check_opt(Kind::Customer, "customer", body.customer.as_deref())?;
    if body.customer.is_some() && body.customer_email.is_some() {
        return Err(ApiError::invalid(
            "give customer or customer_email, not both (an existing customer has an email)",
        ));
    }
    let single = LineBody {
        price: body.price,
        quantity: body.quantity,
        amount: body.amount,
        currency: body.currency,
        name: body.name,
    };
    let given_single = single.price.is_some() || single.amount.is_some();
    let lines = match (given_single, body.line_items) {
        (true, None) => vec![line(single, mode, "")?],
        (false, Some(items)) if !items.is_empty() => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| line(item, mode, &format!("line_items[{i}].")))
            .collect::<Result<_, _>>()?,
        (true, Some(_)) => {
            return Err(ApiError::invalid(
                "give price (or amount) or line_items, not both",
            ));
        }
        (false, _) => {
            return Err(ApiError::invalid(match mode {
                Mode::Payment => {
                    "say what is sold: price, line_items, or amount with currency and name"
                }
                Mode::Subscription => {
                    "say what is subscribed to: price or line_items (recurring prices)"
                }
            }));
        }
    };
    Ok(NewSession {
        mode,
        customer: body.customer,
        customer_email: body.customer_email,
        lines,
        success_url: body.success_url,
        cancel_url: body.cancel_url,
        client_reference_id: body.client_reference_id,
    })
}

fn line(item: LineBody, mode: Mode, prefix: &str) -> Result<Line, ApiError> {
    let param = |name: &str| format!("{prefix}{name}");
    let quantity = item.quantity.unwrap_or(1);
    if quantity == 0 {
        return Err(
            ApiError::invalid("quantity must be at least 1").with("param", param("quantity"))
        );
    }
    match (item.price, item.amount) {
        (Some(price), None) if item.currency.is_none() && item.name.is_none() => {
            ids::check(Kind::Price, &param("price"), &price)?;
            Ok(Line::Price { price, quantity })
        }
        (None, Some(amount)) => {
            if mode == Mode::Subscription {
                return Err(ApiError::invalid(
                    "a subscription needs recurring prices: give price, not amount",
                )
                .with("param", param("amount")));
            }
            if amount <= 0 {
                return Err(
                    ApiError::invalid("amount must be a positive number of minor units")
                        .with("param", param("amount")),
                );
            }
            let currency = item.currency.ok_or_else(|| {
                ApiError::invalid("an amount needs its currency").with("param", param("currency"))
            })?;
            let currency = parse_currency(&currency)
                .map_err(|e| ApiError::invalid(e.to_string()).with("param", param("currency")))?;
            let name = item.name.filter(|n| !n.trim().is_empty()).ok_or_else(|| {
                ApiError::invalid("an amount needs a name: what the customer pays for")
                    .with("param", param("name"))
            })?;
            Ok(Line::Amount {
                amount,
                currency,
                name,
                quantity,
            })
        }
        _ => Err(
            ApiError::invalid("each line is a price, or an amount with currency and name")
                .with("param", param("price")),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: serde_json::Value) -> CreateBody {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_session_is_a_price_lines_or_an_amount_and_amounts_only_for_payments() {
        let s = new_session(body(serde_json::json!({
            "mode": "subscription", "price": "price_1", "quantity": 2, "success_url": "https://x/ok"
        })))
        .unwrap();
        assert_eq!(
            s.lines,
            vec![Line::Price {
                price: "price_1".into(),
                quantity: 2
            }]
        );
        let s = new_session(body(serde_json::json!({
            "mode": "payment", "amount": 1250, "currency": "EUR", "name": "Consulting",
            "success_url": "https://x/ok"
        })))
        .unwrap();
        assert_eq!(
            s.lines,
            vec![Line::Amount {
                amount: 1250,
                currency: "eur".into(),
                name: "Consulting".into(),
                quantity: 1
            }]
        );
        for bad in [
            serde_json::json!({"mode": "setup", "price": "p", "success_url": "u"}),
            serde_json::json!({"mode": "payment", "success_url": "u"}),
            serde_json::json!({"mode": "subscription", "amount": 5, "currency": "eur", "name": "n", "success_url": "u"}),
            serde_json::json!({"mode": "payment", "amount": 5, "name": "n", "success_url": "u"}),
            serde_json::json!({"mode": "payment", "amount": 0, "currency": "eur", "name": "n", "success_url": "u"}),
            serde_json::json!({"mode": "payment", "price": "p", "line_items": [{"price": "q"}], "success_url": "u"}),
            serde_json::json!({"mode": "payment", "line_items": [{"price": "q", "quantity": 0}], "success_url": "u"}),
            serde_json::json!({"mode": "payment", "price": "p", "success_url": " "}),
        ] {
            assert!(new_session(body(bad.clone())).is_err(), "{bad}");
        }
    }
}

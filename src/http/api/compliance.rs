//! The compliance check the money-taking handlers make before calling Stripe (DESIGN
//! §2 `[compliance]`, docs/compliance.md): facts from the request and the mirror, the
//! rules of `crate::compliance`, and a refusal that is a 422 `compliance_refused`,
//! audited, with nothing sent to Stripe.

use axum::http::StatusCode;

use crate::{
    compliance::Facts,
    http::{
        AppState,
        auth::Caller,
        error::{ApiError, ApiResult},
    },
    store::{audit, compliance},
    time::now_secs,
};

/// What a request would charge and who would pay.
#[derive(Debug, Default)]
pub(super) struct Ask {
    /// The route's name for the audit log (`payment.create`, …).
    pub action: &'static str,
    pub customer: Option<String>,
    pub payment_method: Option<String>,
    /// An email the request itself carries (Checkout's `customer_email`).
    pub email: Option<String>,
    /// Amounts the request states.
    pub amounts: Vec<(i64, String)>,
    /// Prices and quantities, whose amounts the mirror knows. With `amounts`, each
    /// currency's lines add up to one payment.
    pub prices: Vec<(String, u64)>,
}

/// Refuses the request if a rule forbids it; passes at once when no rule is set.
pub(super) async fn check(state: &AppState, caller: &Caller, ask: Ask) -> ApiResult<()> {
    let rules = state.compliance.clone();
    if rules.is_empty() {
        return Ok(());
    }
    let actor = format!("token:{}", caller.0);
    let refusal = state
        .store
        .run(move |conn| {
            let mut facts = Facts {
                email: ask.email,
                ..Facts::default()
            };
            if rules.needs_parties() {
                let p = compliance::parties(
                    conn,
                    ask.customer.as_deref(),
                    ask.payment_method.as_deref(),
                )?;
                facts.email = facts.email.or(p.email);
                facts.address_country = p.address_country;
                facts.card_country = p.card_country;
            }
            let mut lines = ask.amounts;
            for (price, quantity) in &ask.prices {
                // A price the mirror does not know adds nothing (docs/compliance.md).
                if let Some((unit, currency)) = compliance::price_amount(conn, price)? {
                    let quantity = i64::try_from(*quantity).unwrap_or(i64::MAX);
                    lines.push((unit.saturating_mul(quantity), currency));
                }
            }
            for (amount, currency) in lines {
                let currency = currency.to_ascii_lowercase();
                match facts.amounts.iter_mut().find(|(_, c)| *c == currency) {
                    Some((total, _)) => *total = total.saturating_add(amount),
                    None => facts.amounts.push((amount, currency)),
                }
            }
            let Err(refusal) = rules.check(&facts) else {
                return Ok(None);
            };
            let detail = format!("{} refused by {}", ask.action, refusal.rule());
            audit::record(
                conn,
                &actor,
                "compliance.refused",
                ask.customer.as_deref(),
                Some(&detail),
                now_secs(),
            )?;
            Ok(Some(refusal))
        })
        .await?;
    match refusal {
        None => Ok(()),
        Some(r) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "compliance_refused",
            r.to_string(),
        )
        .with("rule", r.rule())),
    }
}

//! Refunds of a payment intent or a charge, full or partial, never more than what is
//! left: [`refundable`] reads the payment from Stripe and [`Refundable::check`] refuses
//! an amount above the remainder with a message that says what is left.

use serde::Deserialize;
use stripe_core::{
    charge::RetrieveCharge,
    refund::{CreateRefund, CreateRefundReason},
};

use super::{Client, IdempotencyKey, Object, StripeError, payments};
use crate::{
    ids,
    objects::{expandable, refund::Refund},
};

/// What is refunded: a payment intent (`pi_…`) or a charge (`ch_…`, `py_…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    PaymentIntent(String),
    Charge(String),
}

impl Target {
    /// Tells a payment intent from a charge by its id's prefix; `None` for anything
    /// that is not an id of either (ids::Kind::Payment).
    pub fn parse(id: &str) -> Option<Target> {
        if !ids::is_valid(ids::Kind::Payment, id) {
            None
        } else if id.starts_with("pi_") {
            Some(Target::PaymentIntent(id.to_string()))
        } else {
            Some(Target::Charge(id.to_string()))
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Target::PaymentIntent(id) | Target::Charge(id) => id,
        }
    }
}

/// Why a refund may be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    RequestedByCustomer,
    Duplicate,
    Fraudulent,
}

impl Reason {
    pub fn parse(s: &str) -> Option<Reason> {
        match s {
            "requested_by_customer" => Some(Reason::RequestedByCustomer),
            "duplicate" => Some(Reason::Duplicate),
            "fraudulent" => Some(Reason::Fraudulent),
            _ => None,
        }
    }
}

/// billd's view of a charge, for what is left to refund.
#[derive(Debug, Clone, Deserialize)]
pub struct Charge {
    pub id: String,
    #[serde(default, deserialize_with = "expandable")]
    pub payment_intent: Option<String>,
    #[serde(default, deserialize_with = "expandable")]
    pub customer: Option<String>,
    #[serde(default)]
    pub amount: Option<i64>,
    /// What was captured: at most this can be refunded (less than `amount` for a
    /// charge captured in part).
    #[serde(default)]
    pub amount_captured: Option<i64>,
    #[serde(default)]
    pub amount_refunded: Option<i64>,
    #[serde(default)]
    pub currency: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

/// A payment as far as refunds go.
#[derive(Debug, Clone)]
pub struct Refundable {
    pub target: Target,
    /// The charge that moved the money (`None`: the payment never got that far).
    pub charge: Option<Object<Charge>>,
    /// In the currency's minor unit.
    pub amount: i64,
    pub amount_refunded: i64,
    pub currency: String,
    /// The charge's status, or the payment intent's when there is no charge.
    pub status: Option<String>,
}

/// A refund billd will not ask Stripe for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RefundRefused {
    #[error("payment {payment} has not been paid (status {status}); there is nothing to refund")]
    NotPaid { payment: String, status: String },
    #[error("payment {payment} is already refunded in full ({refunded} {currency})")]
    NothingLeft {
        payment: String,
        refunded: i64,
        currency: String,
    },
    #[error(
        "a refund of {requested} {currency} is more than the {remaining} {currency} left to refund \
         on payment {payment} (paid {amount}, refunded {refunded}; amounts in minor units)"
    )]
    MoreThanLeft {
        payment: String,
        requested: i64,
        remaining: i64,
        amount: i64,
        refunded: i64,
        currency: String,
    },
    #[error("a refund amount must be a positive number of minor units, got {0}")]
    NotPositive(i64),
}

impl Refundable {
    /// What is left to refund, in minor units.
    pub fn remaining(&self) -> i64 {
        (self.amount - self.amount_refunded).max(0)
    }

    /// The amount to refund for a request of `amount` (`None`: all that is left), or
    /// why it cannot be refunded.
    pub fn check(&self, amount: Option<i64>) -> Result<i64, RefundRefused> {
        let payment = self.target.id().to_string();
        let paid =
            self.charge.is_some() && !matches!(self.status.as_deref(), Some("failed" | "canceled"));
        if !paid {
            return Err(RefundRefused::NotPaid {
                payment,
                status: self.status.clone().unwrap_or_else(|| "unknown".into()),
            });
        }
        let remaining = self.remaining();
        if remaining == 0 {
            return Err(RefundRefused::NothingLeft {
                payment,
                refunded: self.amount_refunded,
                currency: self.currency.clone(),
            });
        }
        match amount {
            None => Ok(remaining),
            Some(n) if n <= 0 => Err(RefundRefused::NotPositive(n)),
            Some(n) if n > remaining => Err(RefundRefused::MoreThanLeft {
                payment,
                requested: n,
                remaining,
                amount: self.amount,
                refunded: self.amount_refunded,
                currency: self.currency.clone(),
            }),
            Some(n) => Ok(n),
        }
    }
}

/// Reads from Stripe what has been paid and refunded on `target`.
pub async fn refundable(client: &Client, target: &Target) -> Result<Refundable, StripeError> {
    let (charge, pi_status) = match target {
        Target::Charge(id) => (Some(retrieve_charge(client, id).await?), None),
        Target::PaymentIntent(id) => {
            let pi = payments::retrieve(client, id).await?;
            let charge = match (pi.value.latest_charge_object(), &pi.value.latest_charge) {
                (Some(raw), _) => Some(Object {
                    value: crate::objects::parse_json(raw, "charge")
                        .map_err(|e| StripeError::Decode(e.to_string()))?,
                    raw: raw.to_string(),
                }),
                // Not expanded: an id.
                (None, Some(id)) => match serde_json::from_str::<Option<String>>(id.get()) {
                    Ok(Some(id)) => Some(retrieve_charge(client, &id).await?),
                    _ => None,
                },
                (None, None) => None,
            };
            (
                charge,
                Some((pi.value.status, pi.value.amount, pi.value.currency)),
            )
        }
    };
    let (amount, refunded, currency, status) = match (&charge, pi_status) {
        (Some(c), _) => (
            // An uncaptured charge cannot be refunded (Stripe refuses); a 0 here is
            // taken as "not told", as some test doubles send it.
            c.value
                .amount_captured
                .filter(|captured| *captured > 0)
                .or(c.value.amount)
                .unwrap_or(0),
            c.value.amount_refunded.unwrap_or(0),
            c.value.currency.clone().unwrap_or_default(),
            c.value.status.clone(),
        ),
        (None, Some((status, amount, currency))) => {
            (amount.unwrap_or(0), 0, currency.unwrap_or_default(), status)
        }
        (None, None) => (0, 0, String::new(), None),
    };
    Ok(Refundable {
        target: target.clone(),
        charge,
        amount,
        amount_refunded: refunded,
        currency,
        status,
    })
}

pub async fn retrieve_charge(client: &Client, id: &str) -> Result<Object<Charge>, StripeError> {
    client
        .send("charges.retrieve", &RetrieveCharge::new(id), None)
        .await
}

/// DESIGN §3's refund, plus the charge: what billd answers and prints.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RefundView {
    pub id: String,
    /// The payment intent, or the charge of a payment without one.
    pub payment: String,
    pub charge: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub status: Option<String>,
    pub reason: Option<String>,
}

/// A refund made: the answer, and the raw objects write-through puts in the mirror.
#[derive(Debug, Clone)]
pub struct Made {
    pub view: RefundView,
    pub refund_raw: String,
    /// The refunded charge as Stripe has it now (its refunded amount changed); `None`
    /// when it could not be read (its webhook will bring it).
    pub charge_raw: Option<String>,
}

/// Refunds `amount` (minor units, checked with [`Refundable::check`]) of `payment`,
/// then reads its charge back. The one refund flow of the API and the CLI.
pub async fn refund(
    client: &Client,
    payment: &Refundable,
    amount: i64,
    reason: Option<Reason>,
    key: Option<&IdempotencyKey>,
) -> Result<Made, StripeError> {
    let target = &payment.target;
    let refund = create(client, target, amount, reason, key).await?;
    let charge_id = payment
        .charge
        .as_ref()
        .map(|c| c.value.id.clone())
        .or_else(|| refund.value.charge.clone());
    let charge_raw = match &charge_id {
        Some(id) => match retrieve_charge(client, id).await {
            Ok(charge) => Some(charge.raw),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the refunded charge; its webhook will update the mirror");
                None
            }
        },
        None => None,
    };
    let v = refund.value;
    let payment_id = v
        .payment_intent
        .clone()
        .or_else(|| match target {
            Target::PaymentIntent(id) => Some(id.clone()),
            Target::Charge(_) => None,
        })
        .or_else(|| {
            payment
                .charge
                .as_ref()
                .and_then(|c| c.value.payment_intent.clone())
        })
        .or_else(|| charge_id.clone())
        .unwrap_or_else(|| target.id().to_string());
    Ok(Made {
        view: RefundView {
            id: v.id,
            payment: payment_id,
            charge: v.charge.or(charge_id),
            amount: v.amount.unwrap_or(amount),
            currency: v.currency.unwrap_or_else(|| payment.currency.clone()),
            status: v.status,
            reason: v.reason,
        },
        refund_raw: refund.raw,
        charge_raw,
    })
}

/// Refunds `amount` (minor units) of `target`. Check it against [`refundable`] first.
pub async fn create(
    client: &Client,
    target: &Target,
    amount: i64,
    reason: Option<Reason>,
    key: Option<&IdempotencyKey>,
) -> Result<Object<Refund>, StripeError> {
    let mut request = CreateRefund::new().amount(amount);
    request = match target {
        Target::PaymentIntent(id) => request.payment_intent(id),
        Target::Charge(id) => request.charge(id),
    };
    if let Some(reason) = reason {
        request = request.reason(match reason {
            Reason::RequestedByCustomer => CreateRefundReason::RequestedByCustomer,
            Reason::Duplicate => CreateRefundReason::Duplicate,
            Reason::Fraudulent => CreateRefundReason::Fraudulent,
        });
    }
    client.send("refunds.create", &request, key).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paid(amount: i64, refunded: i64) -> Refundable {
        Refundable {
            target: Target::PaymentIntent("pi_1".into()),
            charge: Some(Object {
                value: Charge {
                    id: "ch_1".into(),
                    payment_intent: Some("pi_1".into()),
                    customer: None,
                    amount: Some(amount),
                    amount_captured: Some(amount),
                    amount_refunded: Some(refunded),
                    currency: Some("eur".into()),
                    status: Some("succeeded".into()),
                },
                raw: "{}".into(),
            }),
            amount,
            amount_refunded: refunded,
            currency: "eur".into(),
            status: Some("succeeded".into()),
        }
    }

    #[test]
    fn refunds_never_exceed_what_is_left() {
        let p = paid(1000, 300);
        assert_eq!(p.check(None), Ok(700));
        assert_eq!(p.check(Some(700)), Ok(700));
        let err = p.check(Some(701)).unwrap_err();
        assert!(matches!(
            err,
            RefundRefused::MoreThanLeft { remaining: 700, .. }
        ));
        assert!(err.to_string().contains("700 eur left"), "{err}");
        assert_eq!(p.check(Some(0)), Err(RefundRefused::NotPositive(0)));
        assert!(matches!(
            paid(1000, 1000).check(None),
            Err(RefundRefused::NothingLeft { .. })
        ));
        let mut unpaid = paid(1000, 0);
        unpaid.charge = None;
        unpaid.status = Some("requires_payment_method".into());
        assert!(matches!(
            unpaid.check(None),
            Err(RefundRefused::NotPaid { .. })
        ));
    }

    #[test]
    fn targets_are_told_apart_by_prefix() {
        assert_eq!(
            Target::parse("pi_1"),
            Some(Target::PaymentIntent("pi_1".into()))
        );
        assert_eq!(Target::parse("ch_1"), Some(Target::Charge("ch_1".into())));
        assert_eq!(Target::parse("py_1"), Some(Target::Charge("py_1".into())));
        assert_eq!(Target::parse("cus_1"), None);
        assert_eq!(Target::parse("pi_1/../x"), None);
        assert_eq!(Target::parse("pi_1?amount=1"), None);
    }
}

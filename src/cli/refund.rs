//! `billd refund PAYMENT_ID [--amount 12.50] [--reason …] [--yes]`: a full or partial
//! refund through Stripe, for people.
//!
//! The amount is in major units of the payment's currency, converted by its exponent
//! (JPY has no minor unit, KWD three). billd reads the payment from Stripe first, shows
//! what it will do, refuses more than what is left, and asks on a terminal unless
//! `--yes`; without a terminal it never asks and refuses without `--yes`. The refund
//! carries a fresh idempotency key (kept across the client's retries), is written
//! through to the mirror like the API's, and is recorded with `$USER` in the audit log.

use std::{
    io::{BufRead, IsTerminal, Write},
    path::Path,
    process::ExitCode,
};

use anyhow::{Context, bail};

use super::{Format, output};
use crate::{
    events::{self, Origin},
    ids,
    report::money::{format_with_code, parse_major},
    store::audit,
    stripe::{
        IdempotencyKey,
        refunds::{self, Reason, RefundRefused, Refundable, Target},
    },
    time::now_secs,
};

/// Stripe's names, as DESIGN §4 spells them (`requested_by_customer`); the kebab-case
/// spelling clap would make is accepted too.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum ReasonArg {
    #[value(alias = "requested-by-customer")]
    RequestedByCustomer,
    Duplicate,
    Fraudulent,
}

impl From<ReasonArg> for Reason {
    fn from(r: ReasonArg) -> Reason {
        match r {
            ReasonArg::RequestedByCustomer => Reason::RequestedByCustomer,
            ReasonArg::Duplicate => Reason::Duplicate,
            ReasonArg::Fraudulent => Reason::Fraudulent,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The payment: a payment intent (pi_…) or a charge (ch_…, py_…), as `GET
    /// /stripe/payments` lists it.
    // Checked in `run`, so a bad id is a failure (exit 1) that sends nothing.
    #[arg(value_name = "PAYMENT_ID")]
    payment: String,
    /// How much, in major units of the payment's currency (12.50 for EUR, 1200 for JPY)
    /// [default: all that is left].
    #[arg(long, value_name = "AMOUNT")]
    amount: Option<String>,
    /// Why, as Stripe records it.
    #[arg(long, value_enum)]
    reason: Option<ReasonArg>,
    /// Refund without asking (required when stdin is not a terminal).
    #[arg(long)]
    yes: bool,
    /// The idempotency key to send (default: a fresh one). When a refund's outcome is
    /// unknown (a timeout, say), billd prints its key: run the command again with it,
    /// and Stripe answers with the first attempt's refund instead of making another.
    #[arg(long, value_name = "KEY", value_parser = parse_key)]
    idempotency_key: Option<IdempotencyKey>,
}

fn parse_key(key: &str) -> Result<IdempotencyKey, String> {
    IdempotencyKey::parse(key)
}

/// The payment to refund, checked before anything reaches Stripe. The message never
/// quotes the argument (it may be anything).
fn target(id: &str) -> anyhow::Result<Target> {
    let id = ids::check(ids::Kind::Payment, "PAYMENT_ID", id)?;
    Target::parse(id).context("PAYMENT_ID must be a payment intent or charge id")
}

impl Args {
    pub fn run(self, config_path: Option<&Path>, format: Format) -> anyhow::Result<ExitCode> {
        let target = target(&self.payment).context("not refunding")?;
        let config = super::load_config(config_path)?;
        let client = super::stripe_client(&config)?;
        let store = super::open_store(&config)?;
        let runtime = super::runtime()?;

        let payment = runtime
            .block_on(refunds::refundable(&client, &target))
            .map_err(|e| {
                super::stripe_failure(&format!("cannot read payment {}", target.id()), e)
            })?;
        let currency = payment.currency.clone();
        let requested = match &self.amount {
            Some(text) => Some(parse_major(text.trim(), &currency).context("--amount")?),
            None => None,
        };
        let amount = match payment.check(requested) {
            Ok(amount) => amount,
            Err(refused) => bail!("not refunding: {}", refused_message(&refused, &payment)),
        };
        let reason = self.reason.map(Reason::from);
        describe(&payment, amount, self.reason);

        if !self.yes && !confirm(amount, &currency)? {
            eprintln!("not refunded");
            return Ok(ExitCode::FAILURE);
        }

        let key = self
            .idempotency_key
            .clone()
            .unwrap_or_else(IdempotencyKey::generate);
        let made = runtime
            .block_on(refunds::refund(
                &client,
                &payment,
                amount,
                reason,
                Some(&key),
            ))
            .map_err(|e| {
                if e.outcome_unknown() {
                    // Nothing is mirrored; the audit log keeps the attempt and its key.
                    let detail = format!(
                        "payment {} amount {amount} {currency}: outcome unknown ({e}); check \
                         by running billd refund again with --idempotency-key {}",
                        payment.target.id(),
                        key.as_str()
                    );
                    let audited = store.conn().and_then(|conn| {
                        audit::record(
                            &conn,
                            &audit::operator(),
                            "refund.unknown",
                            Some(payment.target.id()),
                            Some(&detail),
                            crate::time::now_secs(),
                        )
                    });
                    if let Err(e) = audited {
                        eprintln!("warning: the unknown outcome could not be audited: {e}");
                    }
                    super::stripe_failure(
                        &format!(
                            "the refund may or may not have been made; do not run a new refund: \
                             run this command again with --idempotency-key {}, which Stripe \
                             answers with this attempt's refund if there was one",
                            key.as_str()
                        ),
                        e,
                    )
                } else {
                    super::stripe_failure("Stripe refused the refund", e)
                }
            })?;
        let view = &made.view;
        let operator = audit::operator();
        let detail = format!(
            "payment {} amount {} {} ({}){}",
            view.payment,
            view.amount,
            view.currency,
            format_with_code(view.amount, &view.currency),
            view.reason
                .as_deref()
                .map(|r| format!(" reason {r}"))
                .unwrap_or_default()
        );
        // The refund is made: a failure here must not look like a failed refund (a
        // script would run it again), so it warns, as the API logs it.
        let recorded = store.conn().and_then(|conn| {
            audit::record(
                &conn,
                &operator,
                "refund.create",
                Some(&view.id),
                Some(&detail),
                now_secs(),
            )
        });
        if let Err(e) = recorded {
            eprintln!(
                "warning: refund {} was made, but recording it in the audit log failed: {e}",
                view.id
            );
        }

        // Write-through, as the API does: the charge (its refunded amount changed) and
        // the refund. A failure leaves the change to the webhooks.
        let origin = Origin::api_response(now_secs(), client.livemode());
        let written = (|| -> anyhow::Result<()> {
            let mut conn = store.conn()?;
            let tx =
                conn.transaction_with_behavior(crate::store::TransactionBehavior::Immediate)?;
            if let Some(charge) = &made.charge_raw {
                events::write_charge(&tx, charge, origin)?;
            }
            events::write_refund(&tx, &made.refund_raw, origin)?;
            tx.commit()?;
            Ok(())
        })();
        if let Err(e) = written {
            eprintln!(
                "warning: the refund was made, but writing it to the mirror failed ({e:#}); its webhook will bring it"
            );
        }

        output::print_one(
            format,
            view,
            vec![
                ("id", view.id.clone()),
                ("payment", view.payment.clone()),
                ("charge", output::cell(&view.charge)),
                ("amount", format_with_code(view.amount, &view.currency)),
                ("status", output::cell(&view.status)),
                ("reason", output::cell(&view.reason)),
            ],
        )?;
        Ok(ExitCode::SUCCESS)
    }
}

/// What billd is about to do, on stderr (stdout is for the result).
fn describe(payment: &Refundable, amount: i64, reason: Option<ReasonArg>) {
    let c = &payment.currency;
    let customer = payment
        .charge
        .as_ref()
        .and_then(|ch| ch.value.customer.clone())
        .unwrap_or_else(|| "none".into());
    let reason = reason
        .map(|r| {
            let r: Reason = r.into();
            match r {
                Reason::RequestedByCustomer => "requested_by_customer",
                Reason::Duplicate => "duplicate",
                Reason::Fraudulent => "fraudulent",
            }
        })
        .unwrap_or("none given");
    eprintln!(
        "refund of payment {}\n  customer:    {customer}\n  paid:        {}\n  refunded:    {}\n  refundable:  {}\n  to refund:   {} (reason: {reason})",
        payment.target.id(),
        format_with_code(payment.amount, c),
        format_with_code(payment.amount_refunded, c),
        format_with_code(payment.remaining(), c),
        format_with_code(amount, c),
    );
}

/// Asks on the terminal; never without one.
fn confirm(amount: i64, currency: &str) -> anyhow::Result<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        bail!(
            "not refunding: stdin is not a terminal, so billd will not ask; pass --yes to refund without asking"
        );
    }
    eprint!("refund {}? [y/N] ", format_with_code(amount, currency));
    std::io::stderr().flush()?;
    let mut answer = String::new();
    stdin.lock().read_line(&mut answer)?;
    Ok(matches!(
        answer.trim().to_ascii_lowercase().as_str(),
        "y" | "yes"
    ))
}

/// Why billd refuses, in the payment's major units.
fn refused_message(refused: &RefundRefused, payment: &Refundable) -> String {
    let c = &payment.currency;
    match refused {
        RefundRefused::MoreThanLeft {
            payment: id,
            requested,
            remaining,
            amount,
            refunded,
            ..
        } => format!(
            "{} is more than the {} left to refund on payment {id} (paid {}, refunded {})",
            format_with_code(*requested, c),
            format_with_code(*remaining, c),
            format_with_code(*amount, c),
            format_with_code(*refunded, c),
        ),
        RefundRefused::NothingLeft {
            payment: id,
            refunded,
            ..
        } => format!(
            "payment {id} is already refunded in full ({})",
            format_with_code(*refunded, c)
        ),
        RefundRefused::NotPositive(_) => "the amount to refund must be more than zero".into(),
        other => other.to_string(),
    }
}

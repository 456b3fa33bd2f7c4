//! The payment row that charge and payment-intent events share (one row per payment:
//! keyed by the payment intent, or by the charge of a payment without one).

use crate::store::db::{Connection, ToSql};

use super::{ApplyError, Origin};
use crate::store::mirror::{self, Table};

/// What one object knows of a payment. `None` in an optional column keeps the stored
/// value: a payment intent never knows the charge's refunded amount, and newer API
/// versions leave out the customer or invoice another object may have named.
pub(super) struct PaymentRow<'a> {
    pub id: &'a str,
    pub charge: Option<&'a str>,
    pub amount: i64,
    pub amount_refunded: Option<i64>,
    pub currency: &'a str,
    pub status: &'a str,
    pub failure_code: Option<&'a str>,
    pub created: i64,
    /// `created` only stands in until another object (the charge) has set it.
    pub created_is_provisional: bool,
    pub livemode: bool,
    pub customer: Option<&'a str>,
    pub invoice: Option<&'a str>,
    pub raw: &'a str,
}

/// Writes the row under the ordering rule; returns whether it was written.
pub(super) fn write(
    conn: &Connection,
    origin: Origin<'_>,
    row: &PaymentRow<'_>,
) -> Result<bool, ApplyError> {
    let mut columns: Vec<(&str, &dyn ToSql)> = vec![
        ("id", &row.id),
        ("amount", &row.amount),
        ("currency", &row.currency),
        ("status", &row.status),
        ("failure_code", &row.failure_code),
        ("created", &row.created),
        ("livemode", &row.livemode),
        ("account", &origin.account),
        ("raw", &row.raw),
    ];
    // The charge's own columns are written below under the charge's version; here only
    // when the row is new (any value is better than none until then).
    let from_charge = row.charge.is_some() && !row.created_is_provisional;
    let known: [(&str, &dyn ToSql, bool); 4] = [
        ("charge", &row.charge, row.charge.is_some()),
        (
            "amount_refunded",
            &row.amount_refunded,
            row.amount_refunded.is_some(),
        ),
        ("customer", &row.customer, row.customer.is_some()),
        ("invoice", &row.invoice, row.invoice.is_some()),
    ];
    columns.extend(
        known
            .into_iter()
            .filter(|k| k.2)
            .map(|(name, value, _)| (name, value)),
    );
    let insert_only: &[&str] = match (row.created_is_provisional, from_charge) {
        (true, _) => &["created"],
        (false, true) => &["created", "charge", "amount_refunded"],
        (false, false) => &[],
    };
    let written =
        mirror::upsert_keeping(conn, Table::Payments, &columns, insert_only, origin.version)?;
    let charge_written = match (from_charge, row.charge) {
        (true, Some(charge)) => mirror::write_payment_charge(
            conn,
            row.id,
            charge,
            row.amount_refunded.unwrap_or(0),
            row.created,
            origin.version,
        )?,
        _ => false,
    };
    Ok(written || charge_written)
}

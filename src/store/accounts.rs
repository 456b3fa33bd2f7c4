//! Connected accounts (Stripe Connect) as the mirror knows them: whether each can take
//! charges and receive payouts, and what Stripe still needs from it.

use crate::store::db::Connection;
use serde::Serialize;

use super::{OptionalExt, Result};

/// DESIGN §3's Connect account, with its verification status.
#[derive(Debug, Clone, Serialize)]
pub struct Account {
    pub id: String,
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub country: Option<String>,
    pub charges_enabled: bool,
    pub payouts_enabled: bool,
    pub details_submitted: bool,
    /// Requirements to meet now, or the account is (or will be) disabled.
    pub currently_due: Vec<String>,
    pub disabled_reason: Option<String>,
    /// The platform lost access to it (deauthorized).
    pub deleted: bool,
}

pub fn get(conn: &Connection, id: &str) -> Result<Account> {
    let (row, currently_due): (Account, Option<String>) = conn
        .query_row(
            "SELECT id, type, country, charges_enabled, payouts_enabled, details_submitted,
                    disabled_reason, deleted, currently_due
             FROM accounts WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    Account {
                        id: r.get(0)?,
                        type_: r.get(1)?,
                        country: r.get(2)?,
                        charges_enabled: r.get::<_, Option<bool>>(3)?.unwrap_or(false),
                        payouts_enabled: r.get::<_, Option<bool>>(4)?.unwrap_or(false),
                        details_submitted: r.get::<_, Option<bool>>(5)?.unwrap_or(false),
                        currently_due: Vec::new(),
                        disabled_reason: r.get(6)?,
                        deleted: r.get(7)?,
                    },
                    r.get(8)?,
                ))
            },
        )
        .found()?;
    // Stored as a JSON array by the account handler.
    let currently_due = currently_due
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default();
    Ok(Account {
        currently_due,
        ..row
    })
}

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

/// The condition of an account that needs action: not (yet) able to take charges or
/// receive payouts, disabled, or with requirements due; deauthorized ones are gone.
const NEEDING_ACTION: &str = "deleted = 0
    AND (coalesce(charges_enabled, 0) = 0 OR coalesce(payouts_enabled, 0) = 0
         OR disabled_reason IS NOT NULL
         OR (currently_due IS NOT NULL AND currently_due <> '[]'))";

/// Up to `limit` accounts needing action, by id, and how many there are in all.
pub fn needing_action(conn: &Connection, limit: usize) -> Result<(Vec<Account>, i64)> {
    let total = needing_action_count(conn)?;
    let ids: Vec<String> = conn
        .prepare_cached(&format!(
            "SELECT id FROM accounts WHERE {NEEDING_ACTION} ORDER BY id LIMIT ?1"
        ))?
        .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |r| r.get(0))?
        .collect::<crate::store::db::Result<_>>()?;
    let accounts = ids
        .iter()
        .map(|id| get(conn, id))
        .collect::<Result<Vec<_>>>()?;
    Ok((accounts, total))
}

/// How many accounts need action (see [`needing_action`]).
pub fn needing_action_count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        &format!("SELECT count(*) FROM accounts WHERE {NEEDING_ACTION}"),
        (),
        |r| r.get(0),
    )?)
}

//! What the compliance checks read from the mirror (the rules are `crate::compliance`).

use serde::Deserialize;

use crate::store::db::{Connection, OptionalExtension};

use super::Result;

/// What the mirror knows of who pays: the customer's email and address country, and
/// the card's country. `None` where the mirror does not know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parties {
    pub email: Option<String>,
    pub address_country: Option<String>,
    pub card_country: Option<String>,
}

#[derive(Deserialize)]
struct WithAddress {
    #[serde(default)]
    address: Option<Address>,
}

#[derive(Deserialize)]
struct Address {
    #[serde(default)]
    country: Option<String>,
}

#[derive(Deserialize)]
struct WithCard {
    #[serde(default)]
    card: Option<Card>,
}

#[derive(Deserialize)]
struct Card {
    #[serde(default)]
    country: Option<String>,
}

/// The parties of a payment by `customer` with `payment_method` (the customer's
/// default one when none is named). The countries are read from the objects as Stripe
/// sent them; a raw object billd cannot read counts as unknown.
pub fn parties(
    conn: &Connection,
    customer: Option<&str>,
    payment_method: Option<&str>,
) -> Result<Parties> {
    let mut parties = Parties::default();
    let mut default_pm: Option<String> = None;
    if let Some(id) = customer {
        let row: Option<(Option<String>, Option<String>, String)> = conn
            .prepare_cached(
                "SELECT email, default_payment_method, raw FROM customers WHERE id = ?1",
            )?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        if let Some((email, pm, raw)) = row {
            parties.email = email;
            default_pm = pm;
            parties.address_country = serde_json::from_str::<WithAddress>(&raw)
                .ok()
                .and_then(|c| c.address?.country);
        }
    }
    if let Some(pm) = payment_method.map(str::to_owned).or(default_pm) {
        let raw: Option<String> = conn
            .prepare_cached("SELECT raw FROM payment_methods WHERE id = ?1")?
            .query_row([&pm], |r| r.get(0))
            .optional()?;
        parties.card_country = raw
            .and_then(|raw| serde_json::from_str::<WithCard>(&raw).ok())
            .and_then(|p| p.card?.country);
    }
    Ok(parties)
}

/// A price's unit amount and currency as mirrored, if known.
pub fn price_amount(conn: &Connection, price: &str) -> Result<Option<(i64, String)>> {
    let row: Option<(Option<i64>, Option<String>)> = conn
        .prepare_cached("SELECT unit_amount, currency FROM prices WHERE id = ?1")?
        .query_row([price], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row.and_then(|(amount, currency)| Some((amount?, currency?))))
}

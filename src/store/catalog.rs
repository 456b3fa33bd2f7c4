//! The catalog in the mirror: the active products and prices `GET /stripe/plans`
//! serves, and what `billd plans sync` compares to tell what it changed.

use crate::store::db::{Backend, Connection, OptionalExtension};
use serde::Serialize;

use super::{
    Result,
    mirror::{self, Table, Version},
};

/// Products or prices (legacy plans live with the prices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Product,
    Price,
}

impl Kind {
    fn table(self) -> Table {
        match self {
            Kind::Product => Table::Products,
            Kind::Price => Table::Prices,
        }
    }
}

/// What a row says, as far as a person reading the catalog cares: its columns other
/// than the raw JSON and the version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    fingerprint: String,
    active: bool,
    deleted: bool,
}

/// What writing one object did to the mirror.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Added,
    Updated,
    Unchanged,
    /// Active before, inactive now.
    Deactivated,
    /// No longer in Stripe: marked deleted.
    Deleted,
}

impl Change {
    pub fn between(before: Option<&State>, after: Option<&State>) -> Change {
        match (before, after) {
            (None, Some(_)) => Change::Added,
            (Some(b), Some(a)) if b == a => Change::Unchanged,
            (Some(b), Some(a)) if !b.deleted && a.deleted => Change::Deleted,
            (Some(b), Some(a)) if b.active && !a.active => Change::Deactivated,
            (None, None) => Change::Unchanged,
            _ => Change::Updated,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Updated => "updated",
            Change::Unchanged => "unchanged",
            Change::Deactivated => "deactivated",
            Change::Deleted => "deleted",
        }
    }
}

/// The state of one product or price, `None` if the mirror does not have it.
pub fn state(conn: &Connection, kind: Kind, id: &str) -> Result<Option<State>> {
    // The fingerprint is compared only with another read of the same database.
    let array = match conn.backend() {
        Backend::Sqlite => "json_array",
        Backend::Postgres => "json_build_array",
    };
    let sql = match kind {
        Kind::Product => format!(
            "SELECT CAST({array}(name, description, active, deleted) AS TEXT), active, deleted
             FROM products WHERE id = ?1"
        ),
        Kind::Price => format!(
            "SELECT CAST({array}(product, active, currency, unit_amount, type, interval,
                               interval_count, nickname, deleted) AS TEXT), active, deleted
             FROM prices WHERE id = ?1"
        ),
    };
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], |r| {
            Ok(State {
                fingerprint: r.get(0)?,
                active: r.get(1)?,
                deleted: r.get(2)?,
            })
        })
        .optional()?)
}

/// Ids of the products or prices the mirror has and does not hold deleted.
pub fn present_ids(conn: &Connection, kind: Kind) -> Result<Vec<String>> {
    let sql = match kind {
        Kind::Product => "SELECT id FROM products WHERE deleted = 0 ORDER BY id",
        Kind::Price => "SELECT id FROM prices WHERE deleted = 0 ORDER BY id",
    };
    Ok(conn
        .prepare_cached(sql)?
        .query_map((), |r| r.get(0))?
        .collect::<crate::store::db::Result<_>>()?)
}

/// Marks a product or price deleted (it is gone from Stripe); reports the change.
pub fn mark_gone(conn: &Connection, kind: Kind, id: &str, v: Version) -> Result<Change> {
    let before = state(conn, kind, id)?;
    mirror::mark_deleted(conn, kind.table(), id, "{}", v)?;
    let after = state(conn, kind, id)?;
    Ok(Change::between(before.as_ref(), after.as_ref()))
}

/// An active product with its active prices.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub prices: Vec<PlanPrice>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanPrice {
    pub id: String,
    pub currency: Option<String>,
    /// In the currency's minor unit.
    pub unit_amount: Option<i64>,
    /// `recurring` or `one_time`.
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub interval: Option<String>,
    pub interval_count: Option<i64>,
    pub nickname: Option<String>,
}

/// The active, not deleted products (oldest first) with their active, not deleted
/// prices (cheapest first).
/// The catalog's generation: changes whenever a product or price row is written.
pub fn generation(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT generation FROM catalog_generation WHERE id = 1",
        (),
        |r| r.get(0),
    )?)
}

pub fn plans(conn: &Connection) -> Result<Vec<Plan>> {
    let mut products: Vec<Plan> = conn
        .prepare_cached(
            "SELECT id, name, description FROM products
             WHERE active = 1 AND deleted = 0 ORDER BY coalesce(created, 0), id",
        )?
        .query_map((), |r| {
            Ok(Plan {
                id: r.get(0)?,
                name: r.get(1)?,
                description: r.get(2)?,
                prices: Vec::new(),
            })
        })?
        .collect::<crate::store::db::Result<_>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT id, currency, unit_amount, type, interval, interval_count, nickname
         FROM prices WHERE product = ?1 AND active = 1 AND deleted = 0
         ORDER BY currency, coalesce(unit_amount, 0), id",
    )?;
    for product in &mut products {
        product.prices = stmt
            .query_map([&product.id], |r| {
                Ok(PlanPrice {
                    id: r.get(0)?,
                    currency: r.get(1)?,
                    unit_amount: r.get(2)?,
                    type_: r.get(3)?,
                    interval: r.get(4)?,
                    interval_count: r.get(5)?,
                    nickname: r.get(6)?,
                })
            })?
            .collect::<crate::store::db::Result<_>>()?;
    }
    Ok(products)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(active: bool, deleted: bool, what: &str) -> State {
        State {
            fingerprint: format!("[{what:?},{active},{deleted}]"),
            active,
            deleted,
        }
    }

    #[test]
    fn changes_are_told_from_the_states_before_and_after() {
        let on = state(true, false, "a");
        assert_eq!(Change::between(None, Some(&on)), Change::Added);
        assert_eq!(
            Change::between(Some(&on), Some(&on.clone())),
            Change::Unchanged
        );
        let renamed = state(true, false, "b");
        assert_eq!(Change::between(Some(&on), Some(&renamed)), Change::Updated);
        let off = state(false, false, "a");
        assert_eq!(Change::between(Some(&on), Some(&off)), Change::Deactivated);
        assert_eq!(Change::between(Some(&off), Some(&on)), Change::Updated);
        let gone = state(true, true, "a");
        assert_eq!(Change::between(Some(&on), Some(&gone)), Change::Deleted);
    }
}

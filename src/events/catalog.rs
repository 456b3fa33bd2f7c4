//! product.*, price.* and plan.*: the catalog behind `GET /stripe/plans`, and the
//! writes `billd plans sync` makes with the objects it lists.
//!
//! Prices and legacy plans share ids and one table; a plan names its amount `amount` and
//! has its interval at the top level.

use crate::store::db::{Connection, ToSql};

use super::{ApplyError, Event, Origin, Outcome};
use crate::objects::{
    catalog::{Price, Product},
    parse_json,
};
use crate::store::{
    catalog::{self, Change},
    mirror::{self, Table, Version},
};

pub(super) fn apply(conn: &Connection, event: &Event<'_>) -> Result<Outcome, ApplyError> {
    match event.type_ {
        "product.created" | "product.updated" | "product.deleted" => {
            let p: Product = event.parse("product")?;
            // A full object in a deleted event brings the last state; a stub only deletes.
            if event.type_ != "product.deleted" || p.created.is_some() {
                store_product(conn, &p, event.raw(), event.version())?;
            }
            if event.type_ == "product.deleted" {
                mirror::mark_deleted(conn, Table::Products, &p.id, event.raw(), event.version())?;
            }
        }
        "price.created" | "price.updated" | "price.deleted" | "plan.created" | "plan.updated"
        | "plan.deleted" => {
            let p: Price = event.parse("price")?;
            let deleted = event.type_.ends_with(".deleted");
            if !deleted || p.created.is_some() {
                let is_plan = event.type_.starts_with("plan.");
                store_price(conn, &p, is_plan, event.raw(), event.version())?;
            }
            if deleted {
                mirror::mark_deleted(conn, Table::Prices, &p.id, event.raw(), event.version())?;
            }
        }
        _ => return Ok(Outcome::Unhandled),
    }
    Ok(Outcome::Applied)
}

/// Writes a product object (as Stripe listed or returned it) under the ordering rule
/// and says what that changed in the mirror.
pub(crate) fn write_product(
    conn: &Connection,
    raw: &str,
    origin: Origin<'_>,
) -> Result<Change, ApplyError> {
    let p: Product = parse_json(raw, "product")?;
    let before = catalog::state(conn, catalog::Kind::Product, &p.id)?;
    store_product(conn, &p, raw, origin.version)?;
    let after = catalog::state(conn, catalog::Kind::Product, &p.id)?;
    Ok(Change::between(before.as_ref(), after.as_ref()))
}

/// Writes a price or a legacy plan object (told apart by its `object`) under the
/// ordering rule and says what that changed in the mirror.
pub(crate) fn write_price(
    conn: &Connection,
    raw: &str,
    origin: Origin<'_>,
) -> Result<Change, ApplyError> {
    let p: Price = parse_json(raw, "price")?;
    let is_plan = p.object.as_deref() == Some("plan");
    let before = catalog::state(conn, catalog::Kind::Price, &p.id)?;
    store_price(conn, &p, is_plan, raw, origin.version)?;
    let after = catalog::state(conn, catalog::Kind::Price, &p.id)?;
    Ok(Change::between(before.as_ref(), after.as_ref()))
}

fn store_product(
    conn: &Connection,
    p: &Product,
    raw: &str,
    v: Version,
) -> Result<bool, ApplyError> {
    let mut columns: Vec<(&str, &dyn ToSql)> = vec![
        ("id", &p.id),
        ("name", &p.name),
        ("description", &p.description),
        ("created", &p.created),
        ("raw", &raw),
    ];
    // `active` cannot be NULL; an object without it leaves it as it was.
    if p.active.is_some() {
        columns.push(("active", &p.active));
    }
    Ok(mirror::upsert(conn, Table::Products, &columns, v)?)
}

fn store_price(
    conn: &Connection,
    p: &Price,
    is_plan: bool,
    raw: &str,
    v: Version,
) -> Result<bool, ApplyError> {
    let unit_amount = p.unit_amount.or(p.amount);
    // Plans predate one-time prices: every plan is recurring.
    let type_ = p
        .type_
        .clone()
        .or_else(|| is_plan.then(|| "recurring".to_string()));
    let recurring = p.recurring.as_ref();
    let interval = recurring
        .and_then(|r| r.interval.clone())
        .or_else(|| p.interval.clone());
    let interval_count = recurring
        .and_then(|r| r.interval_count)
        .or(p.interval_count);
    let nickname = p.nickname();
    let mut columns: Vec<(&str, &dyn ToSql)> = vec![
        ("id", &p.id),
        ("product", &p.product),
        ("currency", &p.currency),
        ("unit_amount", &unit_amount),
        ("type", &type_),
        ("interval", &interval),
        ("interval_count", &interval_count),
        ("nickname", &nickname),
        ("created", &p.created),
        ("raw", &raw),
    ];
    if p.active.is_some() {
        columns.push(("active", &p.active));
    }
    Ok(mirror::upsert(conn, Table::Prices, &columns, v)?)
}

#[cfg(test)]
mod tests {
    use crate::events::{Outcome, testing::*};
    use crate::store::mirror::{self, Table};

    fn col(h: &Harness, table: Table, id: &str, column: &'static str) -> Option<String> {
        mirror::column(&h.conn(), table, id, column).unwrap()
    }

    #[test]
    fn product_created_then_deleted_keeps_its_last_state_and_stays_deleted() {
        let mut h = Harness::new();
        let id = "prod_JdJ6Wt7rsz4EPJ";
        assert_eq!(h.apply_fixture("product.created.json"), Outcome::Applied);
        assert_eq!(
            col(&h, Table::Products, id, "name").as_deref(),
            Some("fake product")
        );
        assert_eq!(col(&h, Table::Products, id, "active").as_deref(), Some("1"));
        h.apply_fixture("product.deleted.json");
        assert_eq!(
            col(&h, Table::Products, id, "deleted").as_deref(),
            Some("1")
        );
        assert_eq!(col(&h, Table::Products, id, "active").as_deref(), Some("0"));
        h.apply_json(&fixture_with("product.created.json", |v| {
            v["id"] = "evt_late".into();
            v["type"] = "product.updated".into();
            v["created"] = 4_000_000_000i64.into();
        }));
        assert_eq!(col(&h, Table::Products, id, "active").as_deref(), Some("0"));
    }

    #[test]
    fn price_created_fixture_is_mirrored() {
        let mut h = Harness::new();
        let id = "price_1J02UOJDPojXS6LNDao8fiaO";
        assert_eq!(h.apply_fixture("price.created.json"), Outcome::Applied);
        assert_eq!(
            col(&h, Table::Prices, id, "product").as_deref(),
            Some("prod_IsRLOp58Z7V4XN")
        );
        assert_eq!(
            col(&h, Table::Prices, id, "unit_amount").as_deref(),
            Some("400")
        );
        assert_eq!(
            col(&h, Table::Prices, id, "type").as_deref(),
            Some("recurring")
        );
        assert_eq!(
            col(&h, Table::Prices, id, "interval").as_deref(),
            Some("month")
        );
        assert_eq!(
            col(&h, Table::Prices, id, "interval_count").as_deref(),
            Some("1")
        );
        assert_eq!(col(&h, Table::Prices, id, "active").as_deref(), Some("0"));
        assert_eq!(
            col(&h, Table::Prices, id, "currency").as_deref(),
            Some("usd")
        );
    }

    #[test]
    fn a_plan_fills_the_price_columns_and_its_deleted_stub_deletes_it() {
        let mut h = Harness::new();
        let id = "price_1MKL7PJDPojXS6LNpNepgHsK";
        h.apply_fixture("plan.created.json");
        assert_eq!(
            col(&h, Table::Prices, id, "unit_amount").as_deref(),
            Some("59900")
        );
        assert_eq!(
            col(&h, Table::Prices, id, "interval").as_deref(),
            Some("month")
        );
        assert_eq!(
            col(&h, Table::Prices, id, "type").as_deref(),
            Some("recurring")
        );
        assert_eq!(
            col(&h, Table::Prices, id, "product").as_deref(),
            Some("prod_MeUrsWN6pj0oXM")
        );
        h.apply_json(&fixture_with("plan.deleted.json", |v| {
            v["id"] = "evt_plan_deleted".into()
        }));
        assert_eq!(col(&h, Table::Prices, id, "deleted").as_deref(), Some("1"));
        // The stub did not erase the last known state.
        assert_eq!(
            col(&h, Table::Prices, id, "unit_amount").as_deref(),
            Some("59900")
        );
    }

    #[test]
    fn an_expanded_product_is_read_as_its_id() {
        let mut h = Harness::new();
        h.apply_json(&fixture_with("price.updated.json", |v| {
            v["data"]["object"]["product"] =
                serde_json::json!({"id": "prod_x", "object": "product"});
        }));
        let product = col(
            &h,
            Table::Prices,
            "price_1IDQm5JDPojXS6LNM31hxKzp",
            "product",
        );
        assert_eq!(product.as_deref(), Some("prod_x"));
    }
}

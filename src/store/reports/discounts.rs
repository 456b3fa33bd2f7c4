//! The discounts the MRR reads apply (the arithmetic is `report::discount`'s).

use crate::store::db::Connection;

use crate::store::Result;

/// A mirrored discount with its coupon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscountRow {
    pub id: String,
    pub starts_at: Option<i64>,
    pub ends_at: Option<i64>,
    /// Hundredths of a percent.
    pub percent_off_bp: Option<i64>,
    pub amount_off: Option<i64>,
    pub currency: Option<String>,
    pub duration: Option<String>,
    pub duration_in_months: Option<i64>,
}

/// Every discount whose coupon the mirror knows. Discounts are few next to
/// subscription versions (one per coupon redemption), so a report reads them all once
/// and looks them up by id as it folds the versions.
pub fn all_discounts(conn: &Connection) -> Result<Vec<DiscountRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, d.starts_at, d.ends_at, c.percent_off_bp, c.amount_off, c.currency,
                c.duration, c.duration_in_months
         FROM discounts d JOIN coupons c ON c.id = d.coupon",
    )?;
    let rows = stmt.query_map((), |r| {
        Ok(DiscountRow {
            id: r.get(0)?,
            starts_at: r.get(1)?,
            ends_at: r.get(2)?,
            percent_off_bp: r.get(3)?,
            amount_off: r.get(4)?,
            currency: r.get(5)?,
            duration: r.get(6)?,
            duration_in_months: r.get(7)?,
        })
    })?;
    Ok(rows.collect::<std::result::Result<_, _>>()?)
}

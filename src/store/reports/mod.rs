//! Report reads over the mirror, and the subscription history they need.
//!
//! Every report is an indexed query over the idempotent mirror rows (one row per
//! payment, refund, subscription version), computed when asked: nothing is a counter
//! that a replayed or reordered event could bump, so reports are exactly as current as
//! the applied events. docs/reports.md has the formulas and the measurements behind
//! choosing queries over rollups.
//!
//! This module answers rows and plain numbers for plain parameters (unix seconds,
//! lowercase currencies); `report/` owns the periods and the arithmetic and calls in
//! here, never the other way. Reads that may touch millions of rows hand each row to a
//! callback instead of collecting them, so the report folds them as they stream.

mod bulk;
mod discounts;
mod history;
mod payments;
mod subscriptions;

pub use bulk::{BulkLoader, BulkPayment};
pub use discounts::{DiscountRow, all_discounts};
pub(crate) use history::migration_hook;
pub use history::{
    SubscriptionVersion, items_key, recompute_timeline, record_subscription_version, seed_history,
    version_key,
};
pub use payments::{
    FailedPaymentRow, PaymentFailedFlagRow, PeriodRevenue, RevenueTotals, each_failed_payment,
    each_open_payment_failed_flag, failed_payments_span, revenue_currencies, revenue_span,
};
pub use subscriptions::{
    HeldItemRow, Scope, SpanItemRow, VersionChangeRow, each_held_item, each_version_change,
    each_version_span_item, version_changes_span,
};

/// The condition `AND {column} = ?{n}` when the rows of one `value` are asked for, and
/// a condition that is always true otherwise (the parameter is still bound: NULL). A
/// plain equality lets the planner start from the column's index, where an
/// `(x = ?n OR ?n IS NULL)` would keep it from doing so; the two texts are two cached
/// statements.
fn only(column: &str, n: usize, value: Option<&str>) -> String {
    match value {
        Some(_) => format!("AND {column} = ?{n}"),
        None => format!("AND CAST(?{n} AS TEXT) IS NULL"),
    }
}

/// A text column borrowed from the row (no allocation per row on the hot paths).
fn text<'r>(r: crate::store::db::Row<'r>, i: usize) -> crate::store::db::Result<Option<&'r str>> {
    r.get_ref(i)?
        .as_str_or_null()
        .map_err(|message| crate::store::db::Error::Conversion { column: i, message })
}

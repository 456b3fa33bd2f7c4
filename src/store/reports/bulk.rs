//! Bulk loading of report mirrors, for the benchmarks.

use crate::store::db::{Connection, Statement, params};

use super::history::{SubscriptionVersion, recompute_timeline, version_key};
use crate::store::{Result, mirror::Version};

/// Writes many mirror rows fast: prepared statements on the caller's transaction, no
/// ordering guard (the rows are new). For generating benchmark mirrors, never for
/// events. Call [`BulkLoader::finish`] after the last subscription version.
pub struct BulkLoader<'c> {
    conn: &'c Connection,
    payment: Statement<'c>,
    refund: Statement<'c>,
    subscription: Statement<'c>,
    version: Statement<'c>,
    coupon: Statement<'c>,
    discount: Statement<'c>,
}

/// One generated payment.
#[derive(Debug, Clone, Copy)]
pub struct BulkPayment<'a> {
    pub id: &'a str,
    pub customer: &'a str,
    pub amount: i64,
    pub amount_refunded: i64,
    pub currency: &'a str,
    pub status: &'a str,
    pub created: i64,
}

impl<'c> BulkLoader<'c> {
    pub fn new(conn: &'c Connection) -> Result<BulkLoader<'c>> {
        Ok(BulkLoader {
            conn,
            payment: conn.prepare(
                "INSERT INTO payments (id, customer, amount, amount_refunded, currency, status,
                                       created, raw, ev_created, ev_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, '{}', ?7, 0)",
            )?,
            refund: conn.prepare(
                "INSERT INTO refunds (id, payment, amount, currency, status, created, raw,
                                      ev_created, ev_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, '{}', ?6, 0)",
            )?,
            subscription: conn.prepare(
                "INSERT INTO subscriptions (id, customer, status, currency, deleted, raw,
                                            ev_created, ev_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, '{}', ?6, ?7)",
            )?,
            version: conn.prepare(
                "INSERT INTO subscription_versions
                    (subscription, ev_created, ev_seq, status, customer, currency, items_key,
                     terminal, discounts)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 RETURNING id",
            )?,
            coupon: conn.prepare(
                "INSERT INTO coupons (id, percent_off_bp, amount_off, currency, duration, raw,
                                      ev_created, ev_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, '{}', 0, 0)",
            )?,
            discount: conn.prepare(
                "INSERT INTO discounts (id, coupon, subscription, starts_at, ends_at, raw,
                                        ev_created, ev_seq)
                 VALUES (?1, ?2, ?3, ?4, ?5, '{}', 0, 0)",
            )?,
        })
    }

    /// A coupon: `percent_off_bp` in hundredths of a percent, or `amount_off` in
    /// `currency`.
    pub fn coupon(
        &mut self,
        id: &str,
        percent_off_bp: Option<i64>,
        amount_off: Option<(i64, &str)>,
        duration: &str,
    ) -> Result<()> {
        self.coupon.execute(params![
            id,
            percent_off_bp,
            amount_off.map(|a| a.0),
            amount_off.map(|a| a.1),
            duration
        ])?;
        Ok(())
    }

    /// A discount of `coupon` on `subscription` over `[starts_at, ends_at)`.
    pub fn discount(
        &mut self,
        id: &str,
        coupon: &str,
        subscription: &str,
        starts_at: i64,
        ends_at: Option<i64>,
    ) -> Result<()> {
        self.discount
            .execute(params![id, coupon, subscription, starts_at, ends_at])?;
        Ok(())
    }

    pub fn payment(&mut self, p: &BulkPayment<'_>) -> Result<()> {
        self.payment.execute(params![
            p.id,
            p.customer,
            p.amount,
            p.amount_refunded,
            p.currency,
            p.status,
            p.created
        ])?;
        Ok(())
    }

    pub fn refund(
        &mut self,
        id: &str,
        payment: &str,
        amount: i64,
        currency: &str,
        created: i64,
    ) -> Result<()> {
        self.refund
            .execute(params![id, payment, amount, currency, "succeeded", created])?;
        Ok(())
    }

    /// A subscription's mirror row (its last version's state).
    pub fn subscription(
        &mut self,
        id: &str,
        customer: &str,
        last: &SubscriptionVersion<'_>,
        at: Version,
    ) -> Result<()> {
        self.subscription.execute(params![
            id,
            customer,
            last.status,
            last.currency,
            last.terminal,
            at.created,
            at.seq
        ])?;
        Ok(())
    }

    /// One history version, without recomputing the timeline (see `finish`).
    pub fn version(&mut self, v: &SubscriptionVersion<'_>, at: Version) -> Result<()> {
        let id: i64 = self.version.query_row(
            params![
                v.subscription,
                at.created,
                at.seq,
                v.status,
                v.customer,
                v.currency,
                version_key(v),
                v.terminal,
                v.discounts
            ],
            |r| r.get(0),
        )?;
        super::history::insert_version_items(self.conn, id, v.items)?;
        Ok(())
    }

    /// Derives every timeline once, after the bulk of versions.
    pub fn finish(self) -> Result<()> {
        recompute_timeline(self.conn, None)?;
        Ok(())
    }
}

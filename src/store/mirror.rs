//! The mirror of Stripe objects: writes under the ordering rule, and the reads the API
//! serves.
//!
//! Ordering rule (DESIGN §5.4): every row remembers the `created` time and inbox `seq`
//! of the event that last wrote it. A write is applied only when its event is newer, or
//! equally old and arrived later (or is the same event, replayed); a row marked deleted
//! is never written again except to stay deleted.

use crate::store::db::{Connection, OptionalExtension, ToSql, params};
use serde::Serialize;

use super::{OptionalExt, Result, StoreError};
use crate::time::as_rfc3339;

/// What wrote a row: the event's `created` time and its inbox sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub created: i64,
    pub seq: i64,
}

/// Mirror tables (their names are only ever these constants, never input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Customers,
    PaymentMethods,
    Products,
    Prices,
    Subscriptions,
    Invoices,
    Payments,
    Refunds,
    CheckoutSessions,
    Accounts,
    Coupons,
    Discounts,
    Disputes,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Customers => "customers",
            Table::PaymentMethods => "payment_methods",
            Table::Products => "products",
            Table::Prices => "prices",
            Table::Subscriptions => "subscriptions",
            Table::Invoices => "invoices",
            Table::Payments => "payments",
            Table::Refunds => "refunds",
            Table::CheckoutSessions => "checkout_sessions",
            Table::Accounts => "accounts",
            Table::Coupons => "coupons",
            Table::Discounts => "discounts",
            Table::Disputes => "disputes",
        }
    }

    fn has_deleted(self) -> bool {
        !matches!(
            self,
            Table::Payments | Table::Refunds | Table::CheckoutSessions | Table::Disputes
        )
    }
}

/// Inserts or updates one row with `columns` (the first must be `id`) under the ordering
/// rule. Columns not named keep their stored values. Returns whether the row was written.
pub fn upsert(
    conn: &Connection,
    table: Table,
    columns: &[(&str, &dyn ToSql)],
    v: Version,
) -> Result<bool> {
    upsert_keeping(conn, table, columns, &[], v)
}

/// [`upsert`], but the columns named in `insert_only` are written when the row is
/// new and keep their stored values on an update.
pub fn upsert_keeping(
    conn: &Connection,
    table: Table,
    columns: &[(&str, &dyn ToSql)],
    insert_only: &[&str],
    v: Version,
) -> Result<bool> {
    debug_assert_eq!(columns.first().map(|c| c.0), Some("id"));
    let t = table.name();
    let names: Vec<&str> = columns.iter().map(|c| c.0).collect();
    let placeholders: Vec<String> = (1..=names.len() + 2).map(|i| format!("?{i}")).collect();
    let updates: Vec<String> = names
        .iter()
        .skip(1)
        .filter(|c| !insert_only.contains(c))
        .chain(["ev_created", "ev_seq"].iter())
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let not_deleted = if table.has_deleted() {
        format!("{t}.deleted = 0 AND ")
    } else {
        String::new()
    };
    let sql = format!(
        "INSERT INTO {t} ({cols}, ev_created, ev_seq) VALUES ({ph})
         ON CONFLICT (id) DO UPDATE SET {updates}
         WHERE {not_deleted}(excluded.ev_created > {t}.ev_created
                OR (excluded.ev_created = {t}.ev_created AND excluded.ev_seq >= {t}.ev_seq))",
        cols = names.join(", "),
        ph = placeholders.join(", "),
        updates = updates.join(", "),
    );
    let mut values: Vec<&dyn ToSql> = columns.iter().map(|c| c.1).collect();
    values.push(&v.created);
    values.push(&v.seq);
    let changed = conn.prepare_cached(&sql)?.execute(values.as_slice())?;
    Ok(changed > 0)
}

/// Writes what a charge says of its payment (the charge id, the refunded amount, when
/// the money moved: `created` of the charge) under the charge's own version: the
/// latest attempt (`created`) wins, and of one charge its newest event, whatever the
/// order events of the payment's intent and its charges were applied in. Call after
/// the row was written (or kept) under the ordering rule.
pub fn write_payment_charge(
    conn: &Connection,
    payment: &str,
    charge: &str,
    amount_refunded: i64,
    created: i64,
    v: Version,
) -> Result<bool> {
    let changed = conn
        .prepare_cached(
            "UPDATE payments
             SET charge = ?2, amount_refunded = ?3, created = ?4,
                 charge_created = ?4, charge_ev_created = ?5, charge_ev_seq = ?6
             WHERE id = ?1
               AND (charge_created IS NULL
                    OR (?4, ?5, ?6) >= (charge_created, charge_ev_created, charge_ev_seq))",
        )?
        .execute(params![
            payment,
            charge,
            amount_refunded,
            created,
            v.created,
            v.seq
        ])?;
    Ok(changed > 0)
}

/// Marks a row deleted, whatever the order of events: deletion is final. Inserts a
/// stub (with `raw`) if the object was never seen. Other columns keep the last state.
pub fn mark_deleted(
    conn: &Connection,
    table: Table,
    id: &str,
    raw: &str,
    v: Version,
) -> Result<()> {
    debug_assert!(table.has_deleted());
    let t = table.name();
    conn.prepare_cached(&format!(
        "INSERT INTO {t} (id, deleted, raw, ev_created, ev_seq) VALUES (?1, 1, ?2, ?3, ?4)
         ON CONFLICT (id) DO UPDATE SET deleted = 1,
             ev_created = CASE WHEN {t}.ev_created > excluded.ev_created
                               THEN {t}.ev_created ELSE excluded.ev_created END,
             ev_seq = CASE WHEN excluded.ev_created >= {t}.ev_created THEN excluded.ev_seq ELSE {t}.ev_seq END"
    ))?
    .execute(params![id, raw, v.created, v.seq])?;
    Ok(())
}

/// A subscription item as written with its subscription.
#[derive(Debug, Clone, Default)]
pub struct ItemRow {
    pub id: String,
    pub price: Option<String>,
    pub quantity: Option<i64>,
    pub unit_amount: Option<i64>,
    pub currency: Option<String>,
    pub interval: Option<String>,
    pub interval_count: Option<i64>,
}

/// Replaces a subscription's items (call only after its row was written).
pub fn replace_items(conn: &Connection, subscription: &str, items: &[ItemRow]) -> Result<()> {
    conn.prepare_cached("DELETE FROM subscription_items WHERE subscription = ?1")?
        .execute([subscription])?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO subscription_items
            (id, subscription, price, quantity, unit_amount, currency, interval, interval_count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET subscription = excluded.subscription,
             price = excluded.price, quantity = excluded.quantity,
             unit_amount = excluded.unit_amount, currency = excluded.currency,
             interval = excluded.interval, interval_count = excluded.interval_count",
    )?;
    for item in items {
        insert.execute(params![
            item.id,
            subscription,
            item.price,
            item.quantity,
            item.unit_amount,
            item.currency,
            item.interval,
            item.interval_count,
        ])?;
    }
    Ok(())
}

/// A single column of a mirrored row, for handlers that decide on the stored state.
pub fn column(
    conn: &Connection,
    table: Table,
    id: &str,
    column: &'static str,
) -> Result<Option<String>> {
    let value: Option<Option<String>> = conn
        .query_row(
            &format!(
                "SELECT CAST({column} AS TEXT) FROM {} WHERE id = ?1",
                table.name()
            ),
            [id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(value.flatten())
}

/// The payment row a charge belongs to (its payment intent's row, else its own).
pub fn payment_for_charge(conn: &Connection, charge: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row(
            "SELECT id FROM payments WHERE charge = ?1 OR id = ?1 LIMIT 1",
            [charge],
            |r| r.get(0),
        )
        .optional()?)
}

// ---- reads -------------------------------------------------------------------------

/// The connected account that row `id` of `table` belongs to: `None` for the
/// platform's own objects and for rows the mirror does not hold. Only the tables that
/// record an account have one: customers, subscriptions, invoices, payments, refunds
/// and disputes.
pub fn account_of(conn: &Connection, table: Table, id: &str) -> Result<Option<String>> {
    debug_assert!(matches!(
        table,
        Table::Customers
            | Table::Subscriptions
            | Table::Invoices
            | Table::Payments
            | Table::Refunds
            | Table::Disputes
    ));
    let sql = format!("SELECT account FROM {} WHERE id = ?1", table.name());
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([id], |r| r.get::<_, Option<String>>(0))
        .optional()?
        .flatten())
}

#[derive(Debug, Clone, Serialize)]
pub struct PaymentMethod {
    pub id: String,
    #[serde(rename = "type")]
    pub type_: Option<String>,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
    pub exp_month: Option<i64>,
    pub exp_year: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Subscription {
    pub id: String,
    pub customer: Option<String>,
    pub status: Option<String>,
    pub price: Option<String>,
    pub quantity: Option<i64>,
    #[serde(serialize_with = "as_rfc3339::opt_secs")]
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    #[serde(serialize_with = "as_rfc3339::opt_secs")]
    pub canceled_at: Option<i64>,
    #[serde(serialize_with = "as_rfc3339::opt_secs")]
    pub trial_end: Option<i64>,
    #[serde(serialize_with = "as_rfc3339::opt_secs")]
    pub ended_at: Option<i64>,
    pub currency: Option<String>,
    pub items: Vec<SubscriptionItem>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SubscriptionItem {
    pub id: String,
    pub price: Option<String>,
    pub quantity: Option<i64>,
    pub unit_amount: Option<i64>,
    pub currency: Option<String>,
    pub interval: Option<String>,
    pub interval_count: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Customer {
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    pub deleted: bool,
    pub default_payment_method: Option<String>,
    pub subscriptions: Vec<Subscription>,
    pub payment_methods: Vec<PaymentMethod>,
    pub flags: Vec<super::flags::Flag>,
}

pub fn get_customer(conn: &Connection, id: &str) -> Result<Customer> {
    let (email, name, deleted, default_payment_method) = conn
        .query_row(
            "SELECT email, name, deleted, default_payment_method FROM customers WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .found()?;
    let mut stmt = conn.prepare_cached(
        "SELECT id, type, card_brand, card_last4, exp_month, exp_year FROM payment_methods
         WHERE customer = ?1 AND deleted = 0 ORDER BY created, id",
    )?;
    let payment_methods = stmt
        .query_map([id], |r| {
            Ok(PaymentMethod {
                id: r.get(0)?,
                type_: r.get(1)?,
                card_brand: r.get(2)?,
                card_last4: r.get(3)?,
                exp_month: r.get(4)?,
                exp_year: r.get(5)?,
            })
        })?
        .collect::<crate::store::db::Result<Vec<_>>>()?;
    let ids: Vec<String> = conn
        .prepare_cached("SELECT id FROM subscriptions WHERE customer = ?1 ORDER BY created, id")?
        .query_map([id], |r| r.get(0))?
        .collect::<crate::store::db::Result<_>>()?;
    let subscriptions = ids
        .iter()
        .map(|s| get_subscription(conn, s))
        .collect::<Result<Vec<_>>>()?;
    let flags = super::flags::open_for_customer(conn, id)?;
    Ok(Customer {
        id: id.to_string(),
        email,
        name,
        deleted,
        default_payment_method,
        subscriptions,
        payment_methods,
        flags,
    })
}

pub fn get_subscription(conn: &Connection, id: &str) -> Result<Subscription> {
    let mut sub = conn
        .query_row(
            "SELECT id, customer, status, price, quantity, current_period_end, cancel_at_period_end,
                    canceled_at, trial_end, ended_at, currency
             FROM subscriptions WHERE id = ?1",
            [id],
            |r| {
                Ok(Subscription {
                    id: r.get(0)?,
                    customer: r.get(1)?,
                    status: r.get(2)?,
                    price: r.get(3)?,
                    quantity: r.get(4)?,
                    current_period_end: r.get(5)?,
                    cancel_at_period_end: r.get(6)?,
                    canceled_at: r.get(7)?,
                    trial_end: r.get(8)?,
                    ended_at: r.get(9)?,
                    currency: r.get(10)?,
                    items: Vec::new(),
                })
            },
        )
        .found()?;
    sub.items = conn
        .prepare_cached(
            "SELECT id, price, quantity, unit_amount, currency, interval, interval_count
             FROM subscription_items WHERE subscription = ?1 ORDER BY id",
        )?
        .query_map([id], |r| {
            Ok(SubscriptionItem {
                id: r.get(0)?,
                price: r.get(1)?,
                quantity: r.get(2)?,
                unit_amount: r.get(3)?,
                currency: r.get(4)?,
                interval: r.get(5)?,
                interval_count: r.get(6)?,
            })
        })?
        .collect::<crate::store::db::Result<Vec<_>>>()?;
    Ok(sub)
}

#[derive(Debug, Clone, Serialize)]
pub struct Invoice {
    pub id: String,
    pub customer: Option<String>,
    pub subscription: Option<String>,
    pub status: Option<String>,
    pub number: Option<String>,
    pub currency: Option<String>,
    pub amount_due: Option<i64>,
    pub amount_paid: Option<i64>,
    pub amount_remaining: Option<i64>,
    pub total: Option<i64>,
    pub payment_intent: Option<String>,
    #[serde(serialize_with = "as_rfc3339::opt_secs")]
    pub created: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Payment {
    pub id: String,
    pub charge: Option<String>,
    pub customer: Option<String>,
    pub invoice: Option<String>,
    pub amount: i64,
    pub amount_refunded: i64,
    pub currency: String,
    pub status: String,
    pub failure_code: Option<String>,
    #[serde(serialize_with = "as_rfc3339::secs")]
    pub created: i64,
}

/// A page of a list: the rows and whether more follow.
pub type Page<T> = (Vec<T>, bool);

/// Paging of mirror lists: newest first, `starting_after` an id of the previous page.
#[derive(Debug, Clone, Default)]
pub struct Paging {
    pub limit: usize,
    pub starting_after: Option<String>,
}

/// (created, id) of the row to page after, or a position before every row.
fn cursor(conn: &Connection, table: Table, after: &Option<String>) -> Result<(i64, String)> {
    match after {
        None => Ok((i64::MAX, String::new())),
        Some(id) => conn
            .query_row(
                &format!(
                    "SELECT coalesce(created, 0), id FROM {} WHERE id = ?1",
                    table.name()
                ),
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| StoreError::UnknownCursor(format!("object {id}"))),
    }
}

/// The invoices, newest first, of `customer` and of the connected `account` (its own
/// and the platform's rows are told apart by the account their events came from)
/// when given.
pub fn list_invoices(
    conn: &Connection,
    customer: Option<&str>,
    account: Option<&str>,
    paging: &Paging,
) -> Result<Page<Invoice>> {
    let (c_created, c_id) = cursor(conn, Table::Invoices, &paging.starting_after)?;
    let mut stmt = conn.prepare_cached(
        "SELECT id, customer, subscription, status, number, currency, amount_due, amount_paid,
                amount_remaining, total, payment_intent, created
         FROM invoices
         WHERE deleted = 0 AND (customer = ?1 OR ?1 IS NULL) AND (account = ?5 OR ?5 IS NULL)
           AND (coalesce(created, 0) < ?2 OR (coalesce(created, 0) = ?2 AND id < ?3) OR ?3 = '')
         ORDER BY coalesce(created, 0) DESC, id DESC LIMIT ?4",
    )?;
    let mut rows = stmt
        .query_map(
            params![customer, c_created, c_id, paging.limit as i64 + 1, account],
            |r| {
                Ok(Invoice {
                    id: r.get(0)?,
                    customer: r.get(1)?,
                    subscription: r.get(2)?,
                    status: r.get(3)?,
                    number: r.get(4)?,
                    currency: r.get(5)?,
                    amount_due: r.get(6)?,
                    amount_paid: r.get(7)?,
                    amount_remaining: r.get(8)?,
                    total: r.get(9)?,
                    payment_intent: r.get(10)?,
                    created: r.get(11)?,
                })
            },
        )?
        .collect::<crate::store::db::Result<Vec<_>>>()?;
    let more = rows.len() > paging.limit;
    rows.truncate(paging.limit);
    Ok((rows, more))
}

/// The payments, newest first, of `customer`, in `status` and of the connected
/// `account` when given.
pub fn list_payments(
    conn: &Connection,
    customer: Option<&str>,
    status: Option<&str>,
    account: Option<&str>,
    paging: &Paging,
) -> Result<Page<Payment>> {
    let (c_created, c_id) = cursor(conn, Table::Payments, &paging.starting_after)?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PAYMENT_COLUMNS}
         FROM payments
         WHERE (customer = ?1 OR ?1 IS NULL) AND (status = ?2 OR ?2 IS NULL)
           AND (account = ?6 OR ?6 IS NULL)
           AND (created < ?3 OR (created = ?3 AND id < ?4) OR ?4 = '')
         ORDER BY created DESC, id DESC LIMIT ?5"
    ))?;
    let mut rows = stmt
        .query_map(
            params![
                customer,
                status,
                c_created,
                c_id,
                paging.limit as i64 + 1,
                account
            ],
            payment_row,
        )?
        .collect::<crate::store::db::Result<Vec<_>>>()?;
    let more = rows.len() > paging.limit;
    rows.truncate(paging.limit);
    Ok((rows, more))
}

pub fn get_payment(conn: &Connection, id: &str) -> Result<Payment> {
    conn.query_row(
        &format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = ?1 OR charge = ?1 LIMIT 1"),
        [id],
        payment_row,
    )
    .found()
}

const PAYMENT_COLUMNS: &str = "id, charge, customer, invoice, amount, amount_refunded, currency, status, failure_code, created";

fn payment_row(r: &crate::store::db::Row<'_>) -> crate::store::db::Result<Payment> {
    Ok(Payment {
        id: r.get(0)?,
        charge: r.get(1)?,
        customer: r.get(2)?,
        invoice: r.get(3)?,
        amount: r.get(4)?,
        amount_refunded: r.get(5)?,
        currency: r.get(6)?,
        status: r.get(7)?,
        failure_code: r.get(8)?,
        created: r.get(9)?,
    })
}

//! Flags: failed payments and risk signals for a person to follow up.

use crate::store::db::{Connection, OptionalExtension, Row, params};
use serde::Serialize;

use super::{OptionalExt, Result, StoreError};
use crate::time::as_rfc3339;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    PaymentFailed,
    /// An invoice whose payment needs the customer (3-D Secure, a bank's confirmation).
    PaymentActionRequired,
    Dispute,
    EarlyFraudWarning,
    Review,
    HighRisk,
    /// A connected account that cannot take charges or pay out until it acts.
    AccountRestricted,
}

impl Kind {
    pub const ALL: [Kind; 7] = [
        Kind::PaymentFailed,
        Kind::PaymentActionRequired,
        Kind::Dispute,
        Kind::EarlyFraudWarning,
        Kind::Review,
        Kind::HighRisk,
        Kind::AccountRestricted,
    ];

    /// The kind a name (`as_str`) stands for.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::PaymentFailed => "payment_failed",
            Kind::PaymentActionRequired => "payment_action_required",
            Kind::Dispute => "dispute",
            Kind::EarlyFraudWarning => "early_fraud_warning",
            Kind::Review => "review",
            Kind::HighRisk => "high_risk",
            Kind::AccountRestricted => "account_restricted",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Flag {
    pub id: i64,
    pub kind: String,
    pub object_id: String,
    pub customer: Option<String>,
    pub status: String,
    #[serde(serialize_with = "as_rfc3339::secs")]
    pub created: i64,
    pub detail: String,
    #[serde(serialize_with = "as_rfc3339::opt_secs")]
    pub resolved_at: Option<i64>,
    pub resolved_by: Option<String>,
}

const COLUMNS: &str =
    "id, kind, object_id, customer, status, created, detail, resolved_at, resolved_by";

fn flag_row(r: &Row<'_>) -> crate::store::db::Result<Flag> {
    Ok(Flag {
        id: r.get(0)?,
        kind: r.get(1)?,
        object_id: r.get(2)?,
        customer: r.get(3)?,
        status: r.get(4)?,
        created: r.get(5)?,
        detail: r.get(6)?,
        resolved_at: r.get(7)?,
        resolved_by: r.get(8)?,
    })
}

/// Opens (or refreshes) the flag for `object_id`. A resolved flag is reopened only by
/// an event newer than the one it last saw, so a replayed or late event never reopens
/// what a person or a later success resolved.
pub fn open(
    conn: &Connection,
    kind: Kind,
    object_id: &str,
    customer: Option<&str>,
    detail: &str,
    ev_created: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO flags (kind, object_id, customer, status, created, detail, ev_created)
         VALUES (?1, ?2, ?3, 'open', ?4, ?5, ?4)
         ON CONFLICT (kind, object_id) DO UPDATE SET
             customer = coalesce(excluded.customer, flags.customer),
             detail = CASE WHEN excluded.ev_created >= flags.ev_created THEN excluded.detail ELSE flags.detail END,
             status = CASE WHEN flags.status = 'resolved' AND excluded.ev_created > flags.ev_created
                           THEN 'open' ELSE flags.status END,
             resolved_at = CASE WHEN flags.status = 'resolved' AND excluded.ev_created > flags.ev_created
                           THEN NULL ELSE flags.resolved_at END,
             resolved_by = CASE WHEN flags.status = 'resolved' AND excluded.ev_created > flags.ev_created
                           THEN NULL ELSE flags.resolved_by END,
             ev_created = CASE WHEN flags.ev_created > excluded.ev_created
                              THEN flags.ev_created ELSE excluded.ev_created END",
    )?
    .execute(params![kind.as_str(), object_id, customer, ev_created, detail])?;
    Ok(())
}

/// `resolved_by` of a failure flag recorded after its payment had already succeeded (a
/// late or reordered delivery): on record, nothing to follow up.
pub const ALREADY_SUCCEEDED: &str = "already succeeded";

/// Resolves the open flag for `object_id` because of an event (a later success), unless
/// the flag was raised by a newer event. Returns whether a flag was resolved.
pub fn resolve_by_event(
    conn: &Connection,
    kind: Kind,
    object_id: &str,
    by: &str,
    ev_created: i64,
    now: i64,
) -> Result<bool> {
    Ok(resolve_objects(conn, kind, object_id, None, by, ev_created, now)? > 0)
}

/// A success (`by`, of `ev_created`) resolves the payment-failure flags of what it paid:
/// `paid`, and the other object the same payment is known by (a payment's invoice, an
/// invoice's payment intent), in one statement. Returns how many it resolved.
pub fn resolve_paid(
    conn: &Connection,
    paid: &str,
    also: Option<&str>,
    by: &str,
    ev_created: i64,
    now: i64,
) -> Result<usize> {
    resolve_objects(conn, Kind::PaymentFailed, paid, also, by, ev_created, now)
}

fn resolve_objects(
    conn: &Connection,
    kind: Kind,
    object_id: &str,
    also: Option<&str>,
    by: &str,
    ev_created: i64,
    now: i64,
) -> Result<usize> {
    Ok(conn
        .prepare_cached(
            "UPDATE flags SET status = 'resolved', resolved_at = ?4, resolved_by = ?3,
                    ev_created = CASE WHEN ev_created > ?5 THEN ev_created ELSE ?5 END
             WHERE kind = ?1 AND object_id IN (?2, ?6) AND status = 'open' AND ev_created <= ?5",
        )?
        .execute(params![kind.as_str(), object_id, by, now, ev_created, also])?)
}

/// Resolves a flag by hand. Resolving a resolved flag is a no-op that succeeds.
pub fn resolve(conn: &Connection, id: i64, by: &str, now: i64) -> Result<Flag> {
    conn.prepare_cached(
        "UPDATE flags SET status = 'resolved', resolved_at = ?3, resolved_by = ?2
         WHERE id = ?1 AND status = 'open'",
    )?
    .execute(params![id, by, now])?;
    get(conn, id)
}

pub fn get(conn: &Connection, id: i64) -> Result<Flag> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM flags WHERE id = ?1"),
        [id],
        flag_row,
    )
    .found()
}

pub fn find(conn: &Connection, kind: Kind, object_id: &str) -> Result<Option<Flag>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM flags WHERE kind = ?1 AND object_id = ?2"),
            params![kind.as_str(), object_id],
            flag_row,
        )
        .optional()?)
}

/// Flags newest first, optionally only `status`; paging by flag id.
pub fn list(
    conn: &Connection,
    status: Option<&str>,
    limit: usize,
    starting_after: Option<i64>,
) -> Result<(Vec<Flag>, bool)> {
    list_of_kind(conn, status, None, limit, starting_after)
}

/// [`list`], of one `kind` if given.
pub fn list_of_kind(
    conn: &Connection,
    status: Option<&str>,
    kind: Option<Kind>,
    limit: usize,
    starting_after: Option<i64>,
) -> Result<(Vec<Flag>, bool)> {
    if let Some(id) = starting_after {
        match get(conn, id) {
            Ok(_) => {}
            Err(StoreError::NotFound) => {
                return Err(StoreError::UnknownCursor(format!("flag {id}")));
            }
            Err(e) => return Err(e),
        }
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM flags
         WHERE (status = ?1 OR ?1 IS NULL) AND (kind = ?4 OR ?4 IS NULL) AND id < ?2
         ORDER BY id DESC LIMIT ?3"
    ))?;
    let mut rows = stmt
        .query_map(
            params![
                status,
                starting_after.unwrap_or(i64::MAX),
                limit as i64 + 1,
                kind.map(Kind::as_str)
            ],
            flag_row,
        )?
        .collect::<crate::store::db::Result<Vec<_>>>()?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    Ok((rows, more))
}

/// Open flags per kind.
pub fn open_counts(conn: &Connection) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn
        .prepare_cached("SELECT kind, count(*) FROM flags WHERE status = 'open' GROUP BY kind")?;
    let rows = stmt
        .query_map((), |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<crate::store::db::Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn open_for_customer(conn: &Connection, customer: &str) -> Result<Vec<Flag>> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM flags WHERE customer = ?1 AND status = 'open' ORDER BY id"
    ))?;
    let rows = stmt
        .query_map([customer], flag_row)?
        .collect::<crate::store::db::Result<Vec<_>>>()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;

    #[test]
    fn a_success_resolves_the_flags_of_what_it_paid_and_only_those() {
        let (_dir, store) = test_store();
        let conn = store.conn().unwrap();
        for object in ["pi_1", "in_1", "in_2", "pi_other"] {
            open(&conn, Kind::PaymentFailed, object, None, "failed", 10).unwrap();
        }
        // A flag raised by a newer event than the success stays open.
        open(&conn, Kind::PaymentFailed, "pi_new", None, "failed", 30).unwrap();
        let resolved = resolve_paid(&conn, "pi_1", Some("in_1"), "charge.succeeded", 20, 99)
            .unwrap()
            + resolve_paid(&conn, "in_2", None, "invoice.paid", 20, 99).unwrap()
            + resolve_paid(&conn, "pi_new", None, "charge.succeeded", 20, 99).unwrap();
        assert_eq!(resolved, 3);
        let status = |object: &str| {
            find(&conn, Kind::PaymentFailed, object)
                .unwrap()
                .unwrap()
                .status
        };
        for object in ["pi_1", "in_1", "in_2"] {
            assert_eq!(status(object), "resolved", "{object}");
        }
        assert_eq!(status("pi_other"), "open");
        assert_eq!(status("pi_new"), "open");
    }

    #[test]
    fn a_success_resolves_and_a_late_older_failure_does_not_reopen() {
        let (_dir, store) = test_store();
        let conn = store.conn().unwrap();
        open(
            &conn,
            Kind::PaymentFailed,
            "in_1",
            Some("cus_1"),
            "card_declined",
            100,
        )
        .unwrap();
        assert!(
            resolve_by_event(&conn, Kind::PaymentFailed, "in_1", "invoice.paid", 200, 5).unwrap()
        );
        open(
            &conn,
            Kind::PaymentFailed,
            "in_1",
            Some("cus_1"),
            "card_declined",
            100,
        )
        .unwrap();
        let flag = find(&conn, Kind::PaymentFailed, "in_1").unwrap().unwrap();
        assert_eq!(flag.status, "resolved");
        open(
            &conn,
            Kind::PaymentFailed,
            "in_1",
            Some("cus_1"),
            "expired_card",
            300,
        )
        .unwrap();
        let flag = find(&conn, Kind::PaymentFailed, "in_1").unwrap().unwrap();
        assert_eq!(flag.status, "open");
        assert_eq!(flag.detail, "expired_card");
    }
}

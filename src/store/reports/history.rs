//! The subscription history: one version per subscription event, with the derived
//! timeline (`ended`, `changed`, `valid_to`) that lets a report ask which version held
//! at any time, whatever order the events came in.

use crate::store::db::{Connection, OptionalExtension, params};

use crate::store::{Result, mirror::ItemRow, mirror::Version};

/// The state one subscription event describes, as recorded in the history.
#[derive(Debug, Clone, Copy)]
pub struct SubscriptionVersion<'a> {
    pub subscription: &'a str,
    pub customer: Option<&'a str>,
    pub status: Option<&'a str>,
    pub currency: Option<&'a str>,
    /// The event ends the subscription (deleted, canceled, incomplete_expired).
    pub terminal: bool,
    pub items: &'a [ItemRow],
    /// The ids of the discounts it carries, space-separated in Stripe's order ('' for
    /// none).
    pub discounts: &'a str,
}

/// Records the version `v` of a subscription, written by the event `at`. Called by the
/// subscription handler in the apply transaction for every event, including those the
/// mirror row ignored as stale: the row keeps the newest state, the history keeps all.
/// A replayed event inserts nothing (keyed by subscription and event). Returns whether
/// a version was added.
pub fn record_subscription_version(
    conn: &Connection,
    v: &SubscriptionVersion<'_>,
    at: Version,
) -> Result<bool> {
    // One round trip: whether this event's version is known already (a replay), whether
    // a newer version exists (a late event), and the version before it.
    // Events mostly arrive in order: then the new version is the newest, its derived
    // columns follow from its predecessor alone, and only that predecessor's `valid_to`
    // changes. The result is exactly what `recompute_timeline` would give (a test holds
    // them equal). An older event arriving late recomputes the whole timeline.
    type Prev = (Option<String>, String, bool);
    let (known, newer_exists, prev): (bool, bool, Option<Prev>) = conn
        .prepare_cached(
            "SELECT
                 EXISTS (SELECT 1 FROM subscription_versions
                         WHERE subscription = ?1 AND ev_seq = ?3),
                 EXISTS (SELECT 1 FROM subscription_versions
                         WHERE subscription = ?1 AND (ev_created, ev_seq) > (?2, ?3)),
                 p.status, p.items_key, p.ended
             FROM (SELECT 1) AS one
             LEFT JOIN (SELECT status, items_key, ended FROM subscription_versions
                        WHERE subscription = ?1 AND (ev_created, ev_seq) < (?2, ?3)
                        ORDER BY ev_created DESC, ev_seq DESC LIMIT 1) AS p ON 1 = 1",
        )?
        .query_row(params![v.subscription, at.created, at.seq], |r| {
            let prev = match r.get::<_, Option<String>>(3)? {
                Some(items_key) => Some((r.get(2)?, items_key, r.get(4)?)),
                None => None,
            };
            Ok((r.get(0)?, r.get(1)?, prev))
        })?;
    if known {
        return Ok(false);
    }
    let key = version_key(v);
    // A late event's predecessor is found by the recompute, not here.
    let prev = prev.filter(|_| !newer_exists);
    let ended = v.terminal || prev.as_ref().is_some_and(|p| p.2);
    let changed = match &prev {
        None => true,
        Some((status, prev_key, prev_ended)) => {
            *prev_ended != ended || (!ended && (status.as_deref() != v.status || *prev_key != key))
        }
    };
    let valid_to = if changed { i64::MAX } else { at.created };
    let id = conn
        .prepare_cached(
            "INSERT INTO subscription_versions
            (subscription, ev_created, ev_seq, status, customer, currency, items_key,
             terminal, ended, changed, valid_to, discounts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
         RETURNING id",
        )?
        .query_row(
            params![
                v.subscription,
                at.created,
                at.seq,
                v.status,
                v.customer,
                v.currency,
                key,
                v.terminal,
                ended,
                changed,
                valid_to,
                v.discounts
            ],
            |r| r.get::<_, i64>(0),
        )?;
    insert_version_items(conn, id, v.items)?;
    if newer_exists {
        recompute_timeline(conn, Some(v.subscription))?;
    } else if changed {
        // The change ends the version that held until now: the newest change before it.
        // (Found through the subscription's timeline; `valid_to = MAX` alone would have
        // SQLite walk every current version of every subscription.)
        conn.prepare_cached(
            "UPDATE subscription_versions SET valid_to = ?2
             WHERE id = (SELECT id FROM subscription_versions
                         WHERE subscription = ?1 AND changed = 1
                           AND (ev_created, ev_seq) < (?2, ?3)
                         ORDER BY ev_created DESC, ev_seq DESC LIMIT 1)",
        )?
        .execute(params![v.subscription, at.created, at.seq])?;
    }
    Ok(true)
}

pub(super) fn insert_version_items(
    conn: &Connection,
    version: i64,
    items: &[ItemRow],
) -> Result<()> {
    let mut insert = conn.prepare_cached(
        "INSERT INTO subscription_version_items
            (version, item, price, quantity, unit_amount, currency, interval, interval_count)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
         ON CONFLICT DO NOTHING",
    )?;
    for i in items {
        insert.execute(params![
            version,
            i.id,
            i.price,
            i.quantity,
            i.unit_amount,
            i.currency,
            i.interval,
            i.interval_count
        ])?;
    }
    Ok(())
}

/// Recomputes the derived `ended`, `changed` and `valid_to` of one subscription's
/// versions (or of all, with `None`) from its whole timeline, so the result is the
/// same whatever order the events came in. Only rows whose values change are written.
/// Returns how many versions it corrected.
pub fn recompute_timeline(conn: &Connection, subscription: Option<&str>) -> Result<usize> {
    Ok(recompute(conn, subscription)?)
}

/// Gives a subscription that has no history yet (one a backfill found, `billd sync`)
/// the history the migration gives mirrored rows: a version at its start (trialing
/// until the trial's end, else active), one at the end of its trial, and its current
/// state at the version that wrote the row, all with its current items. A
/// subscription with any history is left alone (its events know better). Returns
/// whether it added one.
pub fn seed_history(conn: &Connection, subscription: &str) -> Result<bool> {
    let known = conn
        .prepare_cached("SELECT 1 FROM subscription_versions WHERE subscription = ?1 LIMIT 1")?
        .query_row([subscription], |_| Ok(()))
        .optional()?
        .is_some();
    if known {
        return Ok(false);
    }
    conn.prepare_cached(
        "INSERT INTO subscription_versions
            (subscription, ev_created, ev_seq, status, customer, currency, items_key, terminal)
         SELECT id, coalesce(start_date, created), -2,
                CASE WHEN trial_end > coalesce(start_date, created) THEN 'trialing' ELSE 'active' END,
                customer, currency, 'backfill', 0
         FROM subscriptions
         WHERE id = ?1 AND coalesce(start_date, created) < ev_created
           AND coalesce(status, '') NOT IN ('incomplete', 'incomplete_expired')
         ON CONFLICT DO NOTHING",
    )?
    .execute([subscription])?;
    conn.prepare_cached(
        "INSERT INTO subscription_versions
            (subscription, ev_created, ev_seq, status, customer, currency, items_key, terminal)
         SELECT id, trial_end, -1, 'active', customer, currency, 'backfill', 0
         FROM subscriptions
         WHERE id = ?1 AND trial_end > coalesce(start_date, created) AND trial_end < ev_created
           AND coalesce(status, '') NOT IN ('incomplete', 'incomplete_expired', 'trialing')
         ON CONFLICT DO NOTHING",
    )?
    .execute([subscription])?;
    conn.prepare_cached(
        "INSERT INTO subscription_versions
            (subscription, ev_created, ev_seq, status, customer, currency, items_key, terminal)
         SELECT id, ev_created, ev_seq, status, customer, currency, 'backfill',
                CASE WHEN deleted = 1 OR coalesce(status, '') IN ('canceled', 'incomplete_expired')
                     THEN 1 ELSE 0 END
         FROM subscriptions WHERE id = ?1
         ON CONFLICT DO NOTHING",
    )?
    .execute([subscription])?;
    conn.prepare_cached(
        "INSERT INTO subscription_version_items
            (version, item, price, quantity, unit_amount, currency, interval, interval_count)
         SELECT v.id, i.id, i.price, i.quantity, i.unit_amount, i.currency, i.interval,
                i.interval_count
         FROM subscription_versions v JOIN subscription_items i ON i.subscription = v.subscription
         WHERE v.subscription = ?1
         ON CONFLICT DO NOTHING",
    )?
    .execute([subscription])?;
    recompute(conn, Some(subscription))?;
    Ok(true)
}

/// The migration's hook: derives the timelines of the versions it backfilled.
pub(crate) fn migration_hook(conn: &Connection) -> Result<()> {
    recompute(conn, None)?;
    Ok(())
}

fn recompute(conn: &Connection, subscription: Option<&str>) -> crate::store::db::Result<usize> {
    // Two texts rather than `?1 IS NULL OR subscription = ?1`, which would keep SQLite
    // from using the (subscription, ev_seq) index on the per-event path.
    // The target's scope too: without it PostgreSQL joins the window's rows to the whole
    // table (a scan of every version for each late event).
    let (scope, target_scope) = match subscription {
        Some(_) => (
            "WHERE subscription = ?1",
            "AND subscription_versions.subscription = ?1",
        ),
        None => ("", ""),
    };
    let sql = format!(
        "WITH a AS (
             SELECT id, subscription, ev_created, ev_seq, status, items_key,
                    max(terminal) OVER w AS ended_now,
                    row_number() OVER w AS n
             FROM subscription_versions {scope}
             WINDOW w AS (PARTITION BY subscription ORDER BY ev_created, ev_seq)
         ),
         b AS (
             SELECT id, subscription, ev_created, ev_seq, ended_now,
                    CASE WHEN n = 1 OR lag(ended_now) OVER w IS DISTINCT FROM ended_now
                         OR (ended_now = 0 AND (lag(status) OVER w IS DISTINCT FROM status
                                                OR lag(items_key) OVER w IS DISTINCT FROM items_key))
                         THEN 1 ELSE 0 END AS changed_now
             FROM a
             WINDOW w AS (PARTITION BY subscription ORDER BY ev_created, ev_seq)
         ),
         c AS (
             SELECT id, ended_now, changed_now,
                    CASE WHEN changed_now = 1
                         THEN coalesce(lead(ev_created) OVER (PARTITION BY subscription, changed_now
                                                              ORDER BY ev_created, ev_seq),
                                       9223372036854775807)
                         ELSE ev_created END AS valid_to_now
             FROM b
         )
         UPDATE subscription_versions
         SET ended = c.ended_now, changed = c.changed_now, valid_to = c.valid_to_now
         FROM c
         WHERE subscription_versions.id = c.id {target_scope}
           AND (subscription_versions.ended IS DISTINCT FROM c.ended_now
                OR subscription_versions.changed IS DISTINCT FROM c.changed_now
                OR subscription_versions.valid_to IS DISTINCT FROM c.valid_to_now)"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    match subscription {
        Some(id) => stmt.execute([id]),
        None => stmt.execute(()),
    }
}

/// A fingerprint of what a version's MRR is made of, its items and discounts: equal
/// keys mean equal MRR, so a version that repeats its predecessor (a renewal) is known
/// not to change it. (A version without discounts has its items' key alone, as every
/// version recorded before discounts were.)
pub fn version_key(v: &SubscriptionVersion<'_>) -> String {
    let mut key = items_key(v.items);
    if !v.discounts.is_empty() {
        key.push_str("|discounts\u{1f}");
        key.push_str(v.discounts);
    }
    key
}

/// A fingerprint of a version's items: equal keys mean equal items.
pub fn items_key(items: &[ItemRow]) -> String {
    let mut sorted: Vec<&ItemRow> = items.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let mut key = String::from("v1");
    for i in sorted {
        key.push_str(&format!(
            "|{}\u{1f}{}\u{1f}{:?}\u{1f}{:?}\u{1f}{}\u{1f}{}\u{1f}{:?}",
            i.id,
            i.price.as_deref().unwrap_or(""),
            i.quantity,
            i.unit_amount,
            i.currency.as_deref().unwrap_or(""),
            i.interval.as_deref().unwrap_or(""),
            i.interval_count,
        ));
    }
    key
}

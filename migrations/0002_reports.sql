-- billd schema, version 2: what the financial reports need (DESIGN §3, docs/reports.md).
--
-- Reports are indexed queries over the idempotent mirror rows, never counters, so a
-- replayed or reordered event can never be counted twice. This migration adds:
--   * the subscription history (the mirror keeps only a subscription's current state,
--     and MRR is asked for at any past time), and
--   * indexes that let each report read exactly the rows of its range.

-- One version per applied subscription event, keyed by subscription and event (inbox
-- seq), so a replay inserts nothing. Recorded even when the event was older than the
-- mirrored row (the current state ignores it; the past needs it). `items_key` encodes
-- the items, so versions that change nothing MRR sees (a renewal moves only the
-- period) can be told apart from real changes.
--
-- `ended`, `changed` and `valid_to` are derived from all versions of the subscription
-- in event order (ev_created, ev_seq), recomputed (never incremented) whenever one is
-- added, so they are the same whatever order the events came in:
--   * `ended`: this version or an earlier one is terminal (deleted, canceled,
--     incomplete_expired); like the mirror, a late event never revives a subscription;
--   * `changed`: the first version, or one whose status, items or end differ from the
--     version before it (after the end nothing changes);
--   * `valid_to` (changed versions): the `ev_created` of the next changed version,
--     9223372036854775807 (i64::MAX) for the newest; a changed version holds on
--     [ev_created, valid_to). Unchanged versions get valid_to = ev_created (never hold).
CREATE TABLE subscription_versions (
    id           INTEGER PRIMARY KEY,
    subscription TEXT    NOT NULL,
    ev_created   INTEGER NOT NULL,
    ev_seq       INTEGER NOT NULL,
    status       TEXT,
    customer     TEXT,
    currency     TEXT,
    items_key    TEXT    NOT NULL DEFAULT '',
    terminal     INTEGER NOT NULL DEFAULT 0,
    ended        INTEGER NOT NULL DEFAULT 0,
    changed      INTEGER NOT NULL DEFAULT 1,
    valid_to     INTEGER NOT NULL DEFAULT 9223372036854775807,
    UNIQUE (subscription, ev_seq)
);
-- The changes of each subscription in event order (the churn sweep).
CREATE INDEX subscription_versions_timeline
    ON subscription_versions (subscription, ev_created, ev_seq, status, ended, currency)
    WHERE changed = 1;
-- "Which version held at time T": valid_to > T AND ev_created <= T, from the index.
CREATE INDEX subscription_versions_valid
    ON subscription_versions (valid_to, ev_created, status, ended, currency, subscription)
    WHERE changed = 1;

-- The items of each version (what MRR is computed from).
CREATE TABLE subscription_version_items (
    version        INTEGER NOT NULL REFERENCES subscription_versions (id) ON DELETE CASCADE,
    item           TEXT    NOT NULL,
    price          TEXT,
    quantity       INTEGER,
    unit_amount    INTEGER,
    currency       TEXT,
    interval       TEXT,
    interval_count INTEGER,
    PRIMARY KEY (version, item)
) WITHOUT ROWID;

-- Databases that already mirror subscriptions: their history starts from what the
-- current rows know. A version at the start (trialing until trial_end, else active),
-- one at the end of the trial, and the current state at the event that wrote it, all
-- with the current items (`items_key` 'backfill', which no recorded version has).
-- Synthetic versions use ev_seq -2 and -1 (events have seq > 0, rows written from API
-- answers 0).
INSERT OR IGNORE INTO subscription_versions
    (subscription, ev_created, ev_seq, status, customer, currency, items_key, terminal)
SELECT id, coalesce(start_date, created), -2,
       CASE WHEN trial_end > coalesce(start_date, created) THEN 'trialing' ELSE 'active' END,
       customer, currency, 'backfill', 0
FROM subscriptions
WHERE coalesce(start_date, created) < ev_created
  AND coalesce(status, '') NOT IN ('incomplete', 'incomplete_expired');

INSERT OR IGNORE INTO subscription_versions
    (subscription, ev_created, ev_seq, status, customer, currency, items_key, terminal)
SELECT id, trial_end, -1, 'active', customer, currency, 'backfill', 0
FROM subscriptions
WHERE trial_end > coalesce(start_date, created) AND trial_end < ev_created
  AND coalesce(status, '') NOT IN ('incomplete', 'incomplete_expired', 'trialing');

INSERT OR IGNORE INTO subscription_versions
    (subscription, ev_created, ev_seq, status, customer, currency, items_key, terminal)
SELECT id, ev_created, ev_seq, status, customer, currency, 'backfill',
       deleted = 1 OR coalesce(status, '') IN ('canceled', 'incomplete_expired')
FROM subscriptions;

INSERT OR IGNORE INTO subscription_version_items
    (version, item, price, quantity, unit_amount, currency, interval, interval_count)
SELECT v.id, i.id, i.price, i.quantity, i.unit_amount, i.currency, i.interval, i.interval_count
FROM subscription_versions v JOIN subscription_items i ON i.subscription = v.subscription;

-- Revenue per (period, currency): a range of one currency's payments of one status
-- in created order, summed from the index without touching the table or sorting.
CREATE INDEX payments_report ON payments (status, currency, created, amount);
-- Refunds of one currency in created order (status filtered from the index).
CREATE INDEX refunds_report ON refunds (currency, created, amount, status);

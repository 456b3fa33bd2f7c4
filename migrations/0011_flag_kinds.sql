-- billd schema, version 11: two more flag kinds (DESIGN §3): payment_action_required
-- (an invoice whose payment needs the customer) and account_restricted (a connected
-- account Stripe disabled, or with requirements past due).
--
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt with the same
-- columns, rows, ids and indexes.
CREATE TABLE flags_v11 (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL
                CHECK (kind IN ('payment_failed', 'payment_action_required', 'dispute',
                                'early_fraud_warning', 'review', 'high_risk',
                                'account_restricted')),
    object_id   TEXT NOT NULL,
    customer    TEXT,
    status      TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    created     INTEGER NOT NULL,
    detail      TEXT NOT NULL DEFAULT '',
    resolved_at INTEGER,
    resolved_by TEXT,
    ev_created  INTEGER NOT NULL,
    UNIQUE (kind, object_id)
);
INSERT INTO flags_v11 (id, kind, object_id, customer, status, created, detail, resolved_at,
                       resolved_by, ev_created)
SELECT id, kind, object_id, customer, status, created, detail, resolved_at, resolved_by,
       ev_created
FROM flags;
DROP TABLE flags;
ALTER TABLE flags_v11 RENAME TO flags;
CREATE INDEX flags_status ON flags (status, id);
CREATE INDEX flags_customer ON flags (customer);

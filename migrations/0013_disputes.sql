-- billd schema, version 13: disputes, so the revenue report can show disputed amounts
-- and a net after lost disputes (docs/reports.md). Flags still carry the follow-up;
-- this is the money. Keyed by the dispute id (its charge in API versions before 2014).
CREATE TABLE disputes (
    id             TEXT PRIMARY KEY,
    charge         TEXT,
    payment_intent TEXT,
    amount         INTEGER,
    currency       TEXT,
    status         TEXT,
    reason         TEXT,
    created        INTEGER,
    raw            TEXT NOT NULL,
    ev_created     INTEGER NOT NULL,
    ev_seq         INTEGER NOT NULL
);
-- Disputes of one currency opened in a period, summed from the index.
CREATE INDEX disputes_report ON disputes (currency, created, amount, status);

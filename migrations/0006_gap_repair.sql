-- Gap repair: a background check pages through Stripe's events that were not delivered
-- (`delivery_success=false`) and ingests those the inbox lacks. One row: where the last
-- check got to, and which process may check now (several may share the database).
CREATE TABLE gap_repair (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    -- Unix seconds: events created from here on are listed by the next check.
    cursor         INTEGER,
    -- The process checking now, and until when its claim holds (unix ms).
    holder         TEXT,
    lease_until_ms INTEGER NOT NULL DEFAULT 0,
    last_run_ms    INTEGER,
    -- Events the last check found missing, and all checks so far.
    last_found     INTEGER NOT NULL DEFAULT 0,
    total_found    INTEGER NOT NULL DEFAULT 0
);
INSERT INTO gap_repair (id) VALUES (1);

-- PostgreSQL translation of migrations/0005_alerts.sql.
-- Alert state per kind (docs/alerts.md), in the database because several billd
-- processes may share it: whichever process wins the conditional UPDATE that marks
-- an alert sent is the one that sends it, so a person gets one alert, not one per
-- process.
-- SQLite: WITHOUT ROWID (a clustered primary key); here a heap plus the primary-key
-- index, same constraint.
CREATE TABLE alert_state (
    kind          TEXT   PRIMARY KEY,
    -- 0/1 BIGINT, as in SQLite (not boolean).
    firing        BIGINT NOT NULL DEFAULT 0 CHECK (firing IN (0, 1)),
    -- When the current (or last) episode started.
    since_ms      BIGINT,
    -- When an alert of this kind was last claimed for sending.
    last_sent_ms  BIGINT,
    -- When any process last saw the condition hold: a kind counted per process
    -- resolves only once no process has seen it for its window.
    last_seen_ms  BIGINT,
    resolved_ms   BIGINT
);

-- PostgreSQL translation of migrations/0004_idempotency.sql.
-- Idempotency-Key records (DESIGN §3): the answer of the first request made with a key,
-- kept 24 hours, keyed by the token that made it, in the database so that a retry
-- reaching another billd process, or a restarted one, answers the same.
-- SQLite: WITHOUT ROWID (a clustered primary key); here a heap plus the primary-key
-- index, same constraint.
CREATE TABLE idempotency_keys (
    token_id     TEXT   NOT NULL,
    key          TEXT   NOT NULL,
    -- SHA-256 of method, path and body: the same key for a different request is a 409.
    fingerprint  BYTEA  NOT NULL,
    -- 'running' while the first request runs; 'done' once its answer is kept.
    state        TEXT   NOT NULL CHECK (state IN ('running', 'done')),
    created_ms   BIGINT NOT NULL,
    -- A running record whose process died is taken over by a retry after this.
    lease_ms     BIGINT NOT NULL,
    status       BIGINT,
    content_type TEXT,
    body         BYTEA,
    PRIMARY KEY (token_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_ms);

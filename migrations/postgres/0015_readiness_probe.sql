-- billd schema, version 15: the row `/readyz` writes to prove the database takes writes
-- now (a locked, full or read-only database, or a lost server, is not ready; see
-- docs/reliability.md). One row, rewritten at each check.
CREATE TABLE readiness_probe (
    id    INTEGER PRIMARY KEY,
    at_ms BIGINT NOT NULL
);

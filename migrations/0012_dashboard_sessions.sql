-- Dashboard sessions (issue 15, docs/dashboard.md). The browser holds only a random
-- session id in an HttpOnly cookie; this row, in the database every billd process
-- shares, says which token it stands for, its CSRF token and when it ends, so any
-- node can serve the next page and a logout on one node ends the session on all.
-- The id is stored as its SHA-256, so a copy of the database cannot ride a session.
-- Scope and revocation are read from api_tokens at every request.
CREATE TABLE dashboard_sessions (
    id         TEXT    PRIMARY KEY,   -- hex SHA-256 of the cookie's session id
    token_id   TEXT    NOT NULL,      -- api_tokens.id
    csrf       TEXT    NOT NULL,      -- the token every state-changing form carries
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX dashboard_sessions_expires ON dashboard_sessions (expires_ms);

//! Dashboard sessions (docs/dashboard.md): a random id in the browser's cookie, the rest
//! in the database every billd process shares. Only the id's SHA-256 is stored; the
//! token a session stands for is read again at every request, so revoking the token
//! ends its sessions and the scope is always the token's own.

use crate::store::db::{Connection, OptionalExtension, params};

use super::{
    Result,
    tokens::{Scope, hash, random_hex},
};

/// A new session: the id for the cookie (shown once, never stored) and its CSRF token.
pub struct NewSession {
    pub id: String,
    pub csrf: String,
}

/// A live session, as a request finds it.
#[derive(Debug, Clone)]
pub struct Session {
    pub token_id: String,
    pub scope: Scope,
    pub csrf: String,
    pub expires_ms: i64,
}

/// Opens a session for `token_id` lasting `ttl_ms`, and forgets expired ones (of every
/// token: sessions are few, and this keeps the table from growing).
pub fn create(conn: &Connection, token_id: &str, now_ms: i64, ttl_ms: i64) -> Result<NewSession> {
    conn.prepare_cached("DELETE FROM dashboard_sessions WHERE expires_ms <= ?1")?
        .execute([now_ms])?;
    let session = NewSession {
        id: random_hex(32)?,
        csrf: random_hex(32)?,
    };
    conn.prepare_cached(
        "INSERT INTO dashboard_sessions (id, token_id, csrf, created_ms, expires_ms)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        hash(&session.id),
        token_id,
        session.csrf,
        now_ms,
        now_ms.saturating_add(ttl_ms)
    ])?;
    Ok(session)
}

/// The session of a cookie's id, if it has not expired and its token is not revoked.
pub fn find(conn: &Connection, id: &str, now_ms: i64) -> Result<Option<Session>> {
    let row: Option<(String, String, String, i64)> = conn
        .prepare_cached(
            "SELECT s.token_id, t.scope, s.csrf, s.expires_ms
             FROM dashboard_sessions s JOIN api_tokens t ON t.id = s.token_id
             WHERE s.id = ?1 AND s.expires_ms > ?2 AND t.revoked_at IS NULL",
        )?
        .query_row(params![hash(id), now_ms], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .optional()?;
    Ok(row.and_then(|(token_id, scope, csrf, expires_ms)| {
        Scope::parse(&scope).map(|scope| Session {
            token_id,
            scope,
            csrf,
            expires_ms,
        })
    }))
}

/// Ends a session (logout); ending one that is gone succeeds.
pub fn delete(conn: &Connection, id: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM dashboard_sessions WHERE id = ?1")?
        .execute([hash(id)])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{test_store, tokens};

    #[test]
    fn a_session_lives_until_it_expires_is_deleted_or_its_token_is_revoked() {
        let (_dir, store) = test_store();
        let conn = store.conn().unwrap();
        let token = tokens::create(&conn, "ops", Scope::Write, 1).unwrap();
        let s = create(&conn, &token.info.id, 1_000, 500).unwrap();
        let found = find(&conn, &s.id, 1_200).unwrap().unwrap();
        assert_eq!(
            (found.scope, found.csrf.as_str()),
            (Scope::Write, s.csrf.as_str())
        );
        assert!(find(&conn, &s.id, 1_500).unwrap().is_none(), "expired");
        assert!(find(&conn, "not-a-session", 1_200).unwrap().is_none());
        let stored: String = conn
            .query_row("SELECT id FROM dashboard_sessions", (), |r| r.get(0))
            .unwrap();
        assert_ne!(stored, s.id, "only the hash is stored");

        let other = create(&conn, &token.info.id, 2_000, 500).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM dashboard_sessions", (), |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1, "the expired session was forgotten");
        delete(&conn, &other.id).unwrap();
        assert!(find(&conn, &other.id, 2_100).unwrap().is_none());

        let third = create(&conn, &token.info.id, 3_000, 500).unwrap();
        tokens::revoke(&conn, &token.info.id, 3).unwrap();
        assert!(find(&conn, &third.id, 3_100).unwrap().is_none(), "revoked");
    }
}

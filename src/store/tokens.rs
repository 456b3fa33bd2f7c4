//! API tokens: only a SHA-256 hash of each token is stored; the token itself is shown
//! once, when it is made. Tokens are 256 random bits, so a fast hash is enough.

use crate::store::db::{Connection, OptionalExtension, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{Result, StoreError};
use crate::time::as_rfc3339;

/// What a token may do; each scope includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Write,
    Admin,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    #[serde(serialize_with = "as_rfc3339::secs")]
    pub created_at: i64,
    #[serde(serialize_with = "as_rfc3339::opt_secs")]
    pub revoked_at: Option<i64>,
}

/// A freshly made token: the only time its secret exists outside the caller's hands.
pub struct NewToken {
    pub info: TokenInfo,
    pub token: String,
}

pub(super) fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub(super) fn random_hex(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| StoreError::Task(format!("no randomness: {e}")))?;
    Ok(hex::encode(buf))
}

pub fn create(conn: &Connection, name: &str, scope: Scope, now: i64) -> Result<NewToken> {
    let id = format!("tok_{}", random_hex(8)?);
    let token = format!("billd_{}", random_hex(32)?);
    conn.prepare_cached(
        "INSERT INTO api_tokens (id, name, scope, hash, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![id, name, scope.as_str(), hash(&token), now])?;
    Ok(NewToken {
        info: TokenInfo {
            id,
            name: name.to_string(),
            scope,
            created_at: now,
            revoked_at: None,
        },
        token,
    })
}

/// The scope of a presented token, if it is known and not revoked.
pub fn authenticate(conn: &Connection, token: &str) -> Result<Option<(String, Scope)>> {
    let row: Option<(String, String)> = conn
        .prepare_cached("SELECT id, scope FROM api_tokens WHERE hash = ?1 AND revoked_at IS NULL")?
        .query_row([hash(token)], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(row.and_then(|(id, scope)| Scope::parse(&scope).map(|s| (id, s))))
}

pub fn list(conn: &Connection) -> Result<Vec<TokenInfo>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, scope, created_at, revoked_at FROM api_tokens ORDER BY created_at, id",
    )?;
    let rows = stmt
        .query_map((), |r| {
            let scope: String = r.get(2)?;
            Ok(TokenInfo {
                id: r.get(0)?,
                name: r.get(1)?,
                scope: Scope::parse(&scope).unwrap_or(Scope::Read),
                created_at: r.get(3)?,
                revoked_at: r.get(4)?,
            })
        })?
        .collect::<crate::store::db::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Revokes a token; revoking a revoked token succeeds and changes nothing.
pub fn revoke(conn: &Connection, id: &str, now: i64) -> Result<()> {
    let exists: Option<i64> = conn
        .query_row("SELECT 1 FROM api_tokens WHERE id = ?1", [id], |r| r.get(0))
        .optional()?;
    if exists.is_none() {
        return Err(StoreError::NotFound);
    }
    conn.prepare_cached(
        "UPDATE api_tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
    )?
    .execute(params![id, now])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;

    #[test]
    fn a_token_authenticates_until_revoked_and_is_stored_only_as_a_hash() {
        let (_dir, store) = test_store();
        let conn = store.conn().unwrap();
        let made = create(&conn, "ci", Scope::Write, 1).unwrap();
        assert_eq!(
            authenticate(&conn, &made.token).unwrap().map(|t| t.1),
            Some(Scope::Write)
        );
        let stored: String = conn
            .query_row("SELECT hash FROM api_tokens", (), |r| r.get(0))
            .unwrap();
        assert!(!stored.contains(&made.token));
        revoke(&conn, &made.info.id, 2).unwrap();
        assert_eq!(authenticate(&conn, &made.token).unwrap(), None);
        assert!(matches!(
            revoke(&conn, "tok_nope", 3),
            Err(StoreError::NotFound)
        ));
    }
}

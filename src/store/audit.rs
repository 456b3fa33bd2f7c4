//! The audit log: who did what by hand (tokens, replays, resolutions, refunds).

use crate::store::db::{Connection, params};

use super::Result;

pub fn record(
    conn: &Connection,
    actor: &str,
    action: &str,
    target: Option<&str>,
    detail: Option<&str>,
    now: i64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![now, actor, action, target, detail])?;
    Ok(())
}

/// An audit entry, oldest first in [`recent`].
#[derive(Debug, Clone)]
pub struct Entry {
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub detail: Option<String>,
}

pub fn recent(conn: &Connection, limit: usize) -> Result<Vec<Entry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, actor, action, target, detail FROM
            (SELECT * FROM audit_log ORDER BY id DESC LIMIT ?1) AS recent ORDER BY id",
    )?;
    let rows = stmt
        .query_map([limit as i64], |r| {
            Ok(Entry {
                at: r.get(0)?,
                actor: r.get(1)?,
                action: r.get(2)?,
                target: r.get(3)?,
                detail: r.get(4)?,
            })
        })?
        .collect::<crate::store::db::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The operator running a CLI command (`$USER`), or "unknown".
pub fn operator() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

//! Gap repair's one row: the cursor into Stripe's events and the claim that lets one
//! process at a time check (see `crate::gap`).

use crate::store::db::{Connection, params};
use serde::Serialize;

use super::Result;

/// Where gap repair stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GapState {
    pub cursor: Option<i64>,
    pub last_run_ms: Option<i64>,
    pub last_found: i64,
    pub total_found: i64,
}

/// Claims the next check for `holder` until `now_ms + lease_ms`, if no other process
/// holds it; answers the cursor to check from (`None`: never checked).
pub fn claim(
    conn: &Connection,
    holder: &str,
    now_ms: i64,
    lease_ms: i64,
) -> Result<Option<Option<i64>>> {
    let claimed = conn.execute(
        "UPDATE gap_repair SET holder = ?1, lease_until_ms = ?2
         WHERE id = 1 AND (lease_until_ms < ?3 OR holder = ?1)",
        params![holder, now_ms + lease_ms, now_ms],
    )?;
    if claimed == 0 {
        return Ok(None);
    }
    Ok(Some(conn.query_row(
        "SELECT cursor FROM gap_repair WHERE id = 1",
        (),
        |r| r.get(0),
    )?))
}

/// Records a finished check and releases the claim. `cursor` is where the next one
/// starts (`None` keeps the old one: the check failed).
pub fn finish(
    conn: &Connection,
    holder: &str,
    cursor: Option<i64>,
    found: i64,
    now_ms: i64,
) -> Result<()> {
    conn.execute(
        "UPDATE gap_repair SET cursor = coalesce(?2, cursor), lease_until_ms = 0, holder = NULL,
             last_run_ms = ?4, last_found = ?3, total_found = total_found + ?3
         WHERE id = 1 AND holder = ?1",
        params![holder, cursor, found, now_ms],
    )?;
    Ok(())
}

pub fn state(conn: &Connection) -> Result<GapState> {
    Ok(conn.query_row(
        "SELECT cursor, last_run_ms, last_found, total_found FROM gap_repair WHERE id = 1",
        (),
        |r| {
            Ok(GapState {
                cursor: r.get(0)?,
                last_run_ms: r.get(1)?,
                last_found: r.get(2)?,
                total_found: r.get(3)?,
            })
        },
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_store;

    #[test]
    fn one_holder_at_a_time_until_its_claim_ends_or_it_finishes() {
        let (_dir, store) = test_store();
        let c = store.conn().unwrap();
        assert_eq!(claim(&c, "a", 1_000, 60_000).unwrap(), Some(None));
        assert_eq!(claim(&c, "b", 2_000, 60_000).unwrap(), None);
        finish(&c, "a", Some(1_700_000_000), 3, 3_000).unwrap();
        assert_eq!(
            claim(&c, "b", 4_000, 60_000).unwrap(),
            Some(Some(1_700_000_000))
        );
        // A holder that died: its claim ends with its lease.
        assert_eq!(claim(&c, "a", 5_000, 60_000).unwrap(), None);
        assert_eq!(
            claim(&c, "a", 65_000, 60_000).unwrap(),
            Some(Some(1_700_000_000))
        );
        // A failed check keeps the cursor.
        finish(&c, "a", None, 0, 70_000).unwrap();
        let s = state(&c).unwrap();
        assert_eq!(s.cursor, Some(1_700_000_000));
        assert_eq!(s.total_found, 3);
    }
}

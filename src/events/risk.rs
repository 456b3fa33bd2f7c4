//! placeholder
use rusqlite::Connection;
use super::{ApplyError, Event, Outcome};
#[allow(unused_variables)]
pub(super) fn apply(conn: &Connection, event: &Event<'_>, now: i64) -> Result<Outcome, ApplyError> { Ok(Outcome::Unhandled) }

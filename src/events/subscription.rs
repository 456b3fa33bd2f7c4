//! placeholder
use rusqlite::Connection;
use super::{ApplyError, Event, Outcome};
#[allow(unused_variables)]
pub(super) fn apply(conn: &Connection, event: &Event<'_>) -> Result<Outcome, ApplyError> { Ok(Outcome::Unhandled) }

//! The SQLite side of [`super::Connection`]: binding, reading, error classes.

use rusqlite::{CachedStatement, ErrorCode, types};

use super::{Result, ValueRef};

fn to_rusqlite(v: ValueRef<'_>) -> types::ValueRef<'_> {
    match v {
        ValueRef::Null => types::ValueRef::Null,
        ValueRef::Integer(i) => types::ValueRef::Integer(i),
        ValueRef::Real(f) => types::ValueRef::Real(f),
        ValueRef::Text(s) => types::ValueRef::Text(s.as_bytes()),
        ValueRef::Blob(b) => types::ValueRef::Blob(b),
    }
}

pub(super) fn value(v: types::ValueRef<'_>) -> ValueRef<'_> {
    match v {
        types::ValueRef::Null => ValueRef::Null,
        types::ValueRef::Integer(i) => ValueRef::Integer(i),
        types::ValueRef::Real(f) => ValueRef::Real(f),
        // billd writes only UTF-8 text; anything else reads as a blob.
        types::ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => ValueRef::Text(s),
            Err(_) => ValueRef::Blob(t),
        },
        types::ValueRef::Blob(b) => ValueRef::Blob(b),
    }
}

/// Binds `values` to `stmt` (SQLite copies them: nothing stays borrowed).
pub(super) fn bind(stmt: &mut CachedStatement<'_>, values: &[ValueRef<'_>]) -> Result<()> {
    check_count(stmt, values)?;
    for (i, v) in values.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, types::ToSqlOutput::Borrowed(to_rusqlite(*v)))?;
    }
    Ok(())
}

pub(super) fn execute(stmt: &mut CachedStatement<'_>, values: &[ValueRef<'_>]) -> Result<usize> {
    bind(stmt, values)?;
    Ok(stmt.raw_execute()?)
}

fn check_count(stmt: &CachedStatement<'_>, values: &[ValueRef<'_>]) -> Result<()> {
    let expected = stmt.parameter_count();
    if expected != values.len() {
        return Err(rusqlite::Error::InvalidParameterCount(values.len(), expected).into());
    }
    Ok(())
}

fn code(e: &rusqlite::Error) -> Option<ErrorCode> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.code),
        _ => None,
    }
}

pub(super) fn is_contention(e: &rusqlite::Error) -> bool {
    matches!(
        code(e),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

//! billd's own database connection: one type over SQLite and PostgreSQL.
//!
//! The store's SQL is written once, in the dialect both backends agree on (`?N`
//! placeholders, `ON CONFLICT … DO NOTHING/UPDATE`, `RETURNING`, `coalesce`, `CASE`), and
//! runs through [`Connection`]; the few statements where the dialects differ (inbox
//! claims, migrations, pool set-up) ask [`Connection::backend`]. The API follows
//! rusqlite's (`execute`, `query_row`, `prepare_cached`, `Row::get`, transactions and
//! savepoints), so store code reads the same on both backends.
//!
//! Values cross the boundary as [`ValueRef`] (SQLite's five storage classes); on
//! PostgreSQL they are encoded for the column type the server inferred, so an `i64`
//! binds to a `BIGINT` or an `INTEGER` alike and `sum(bigint)` (a `NUMERIC`) reads back
//! as an integer.

mod pg;
mod sqlite;
mod value;

use std::cell::{Cell, RefCell};

pub use pg::PgTarget;
pub(crate) use pg::off_runtime;
pub use value::{FromSql, ToSql, Value, ValueRef};

/// Which database a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{}", pg::describe(.0))]
    Postgres(#[from] postgres::Error),
    #[error("query returned no rows")]
    NoRows,
    #[error("column {column}: {message}")]
    Conversion { column: usize, message: String },
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// Another writer holds what this statement needs (SQLite busy/locked, PostgreSQL
    /// lock timeout, deadlock or serialisation failure): trying again later may succeed,
    /// and the attempt says nothing about the event.
    pub fn is_contention(&self) -> bool {
        match self {
            Error::Sqlite(e) => sqlite::is_contention(e),
            Error::Postgres(e) => pg::is_contention(e),
            _ => false,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// `Ok(None)` for "no rows", like rusqlite's.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Positional parameters: `params![a, b]`, `[x]`, `()` or a slice of `&dyn ToSql`.
pub trait Params {
    fn with_values<R>(&self, f: &mut dyn FnMut(&[ValueRef<'_>]) -> R) -> R;
}

impl Params for () {
    fn with_values<R>(&self, f: &mut dyn FnMut(&[ValueRef<'_>]) -> R) -> R {
        f(&[])
    }
}

impl Params for &[&dyn ToSql] {
    fn with_values<R>(&self, f: &mut dyn FnMut(&[ValueRef<'_>]) -> R) -> R {
        let values: Vec<ValueRef<'_>> = self.iter().map(|v| v.to_sql()).collect();
        f(&values)
    }
}

impl<const N: usize> Params for &[&dyn ToSql; N] {
    fn with_values<R>(&self, f: &mut dyn FnMut(&[ValueRef<'_>]) -> R) -> R {
        let values: [ValueRef<'_>; N] = std::array::from_fn(|i| self[i].to_sql());
        f(&values)
    }
}

impl<T: ToSql, const N: usize> Params for [T; N] {
    fn with_values<R>(&self, f: &mut dyn FnMut(&[ValueRef<'_>]) -> R) -> R {
        let values: [ValueRef<'_>; N] = std::array::from_fn(|i| self[i].to_sql());
        f(&values)
    }
}

impl Params for Vec<&dyn ToSql> {
    fn with_values<R>(&self, f: &mut dyn FnMut(&[ValueRef<'_>]) -> R) -> R {
        self.as_slice().with_values(f)
    }
}

/// `params![a, b, c]`: positional parameters of mixed types.
#[macro_export]
macro_rules! params {
    () => { () };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::store::db::ToSql),+] };
}
pub use crate::params;

/// Parameters from an iterator of values of one type.
pub fn params_from_iter<T: ToSql>(values: impl IntoIterator<Item = T>) -> impl Params {
    IterParams(values.into_iter().collect())
}

struct IterParams<T>(Vec<T>);

impl<T: ToSql> Params for IterParams<T> {
    fn with_values<R>(&self, f: &mut dyn FnMut(&[ValueRef<'_>]) -> R) -> R {
        let values: Vec<ValueRef<'_>> = self.0.iter().map(|v| v.to_sql()).collect();
        f(&values)
    }
}

/// One open database connection (SQLite file or PostgreSQL session).
pub struct Connection {
    inner: Inner,
    /// Depth of open savepoints, for their names.
    savepoints: Cell<u32>,
}

enum Inner {
    Sqlite(rusqlite::Connection),
    Postgres(Box<RefCell<pg::PgConn>>),
}

impl Connection {
    pub(crate) fn from_sqlite(conn: rusqlite::Connection) -> Connection {
        Connection {
            inner: Inner::Sqlite(conn),
            savepoints: Cell::new(0),
        }
    }

    pub(crate) fn from_pg(conn: pg::PgConn) -> Connection {
        Connection {
            inner: Inner::Postgres(Box::new(RefCell::new(conn))),
            savepoints: Cell::new(0),
        }
    }

    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Sqlite(_) => Backend::Sqlite,
            Inner::Postgres(_) => Backend::Postgres,
        }
    }

    /// True when one writer at a time holds the whole database (SQLite): a writing
    /// transaction keeps every other writer, the ingest writer included, waiting.
    pub fn single_writer(&self) -> bool {
        self.backend() == Backend::Sqlite
    }

    /// True when the connection cannot go back to the pool: its session is gone, or
    /// (SQLite) it is still inside a transaction nobody will finish.
    pub(crate) fn is_broken(&self) -> bool {
        match &self.inner {
            Inner::Sqlite(c) => !c.is_autocommit(),
            Inner::Postgres(c) => c.borrow_mut().client().is_closed(),
        }
    }

    /// Runs `f` with the PostgreSQL client underneath; `None` on SQLite.
    pub(crate) fn with_pg<R>(&self, f: impl FnOnce(&mut postgres::Client) -> R) -> Option<R> {
        match &self.inner {
            Inner::Sqlite(_) => None,
            Inner::Postgres(c) => Some(f(c.borrow_mut().client())),
        }
    }

    /// Runs `f` with the PostgreSQL client and `sql` prepared (kept in this session's
    /// statement cache), for parameters of PostgreSQL's own types (arrays); `None` on
    /// SQLite.
    pub(crate) fn with_pg_statement<R>(
        &self,
        sql: &str,
        f: impl FnOnce(&mut postgres::Client, &postgres::Statement) -> R,
    ) -> Option<Result<R>> {
        match &self.inner {
            Inner::Sqlite(_) => None,
            Inner::Postgres(c) => {
                let mut c = c.borrow_mut();
                Some(c.prepare(sql).map(|stmt| f(c.client(), &stmt)))
            }
        }
    }

    /// Runs one statement; answers the number of rows it changed.
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    /// Runs several statements separated by `;`, without parameters.
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.inner {
            Inner::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Inner::Postgres(c) => Ok(c.borrow_mut().client().batch_execute(sql)?),
        }
    }

    /// The first row of a query through `f`; [`Error::NoRows`] when there is none.
    pub fn query_row<T, P, F>(&self, sql: &str, params: P, f: F) -> Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> Result<T>,
    {
        self.prepare_cached(sql)?.query_row(params, f)
    }

    /// A statement, prepared once per connection and kept for the next call.
    pub fn prepare_cached(&self, sql: &str) -> Result<Statement<'_>> {
        Ok(match &self.inner {
            Inner::Sqlite(c) => Statement(StatementInner::Sqlite(c.prepare_cached(sql)?)),
            Inner::Postgres(c) => {
                let stmt = c.borrow_mut().prepare(sql)?;
                Statement(StatementInner::Postgres { conn: c, stmt })
            }
        })
    }

    /// Alias of [`Connection::prepare_cached`] (every statement is cached).
    pub fn prepare(&self, sql: &str) -> Result<Statement<'_>> {
        self.prepare_cached(sql)
    }

    /// A transaction that writes: on SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so it never fails to upgrade a read lock half-way.
    pub fn transaction(&mut self) -> Result<Transaction<'_>> {
        self.transaction_with_behavior(TransactionBehavior::Immediate)
    }

    pub fn transaction_with_behavior(
        &mut self,
        behavior: TransactionBehavior,
    ) -> Result<Transaction<'_>> {
        self.begin(behavior)
    }

    /// A write transaction from a shared reference; the caller makes sure none is open.
    pub fn unchecked_transaction(&self) -> Result<Transaction<'_>> {
        self.begin(TransactionBehavior::Immediate)
    }

    fn begin(&self, behavior: TransactionBehavior) -> Result<Transaction<'_>> {
        let begin = match (self.backend(), behavior) {
            (Backend::Sqlite, TransactionBehavior::Immediate) => "BEGIN IMMEDIATE",
            (Backend::Sqlite, TransactionBehavior::Deferred) => "BEGIN DEFERRED",
            (Backend::Sqlite, TransactionBehavior::Snapshot) => "BEGIN DEFERRED",
            (Backend::Postgres, TransactionBehavior::Snapshot) => {
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
            }
            (Backend::Postgres, _) => "BEGIN",
        };
        self.execute_batch(begin)?;
        Ok(Transaction {
            conn: self,
            done: false,
        })
    }

    fn savepoint_on(&self) -> Result<Savepoint<'_>> {
        let depth = self.savepoints.get() + 1;
        self.execute_batch(&format!("SAVEPOINT billd_sp{depth}"))?;
        self.savepoints.set(depth);
        Ok(Savepoint {
            conn: self,
            depth,
            done: false,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionBehavior {
    Deferred,
    Immediate,
    /// Reads only, all from one snapshot (a copy or a backup of a live database).
    Snapshot,
}

/// An open transaction; rolled back when dropped without [`Transaction::commit`].
pub struct Transaction<'c> {
    conn: &'c Connection,
    done: bool,
}

impl Transaction<'_> {
    /// Commits; a commit that fails (disk full, a lost session) is rolled back when the
    /// transaction drops, so the connection never goes back to the pool inside one.
    pub fn commit(mut self) -> Result<()> {
        self.conn.execute_batch("COMMIT")?;
        self.done = true;
        Ok(())
    }

    pub fn rollback(mut self) -> Result<()> {
        self.done = true;
        self.conn.execute_batch("ROLLBACK")
    }

    /// A savepoint inside this transaction.
    pub fn savepoint(&mut self) -> Result<Savepoint<'_>> {
        self.conn.savepoint_on()
    }
}

impl std::ops::Deref for Transaction<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if !self.done {
            // If even this fails, the pool finds the connection still in a transaction
            // and discards it (`Manager::has_broken`).
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

/// A savepoint; rolled back to (and released) when dropped without `commit`.
pub struct Savepoint<'c> {
    conn: &'c Connection,
    depth: u32,
    done: bool,
}

impl Savepoint<'_> {
    pub fn commit(mut self) -> Result<()> {
        self.conn
            .execute_batch(&format!("RELEASE SAVEPOINT billd_sp{}", self.depth))?;
        self.done = true;
        self.conn.savepoints.set(self.depth - 1);
        Ok(())
    }

    pub fn rollback(mut self) -> Result<()> {
        self.done = true;
        self.finish_rollback()
    }

    fn finish_rollback(&self) -> Result<()> {
        self.conn.savepoints.set(self.depth - 1);
        let name = format!("billd_sp{}", self.depth);
        self.conn.execute_batch(&format!(
            "ROLLBACK TO SAVEPOINT {name}; RELEASE SAVEPOINT {name}"
        ))
    }
}

impl std::ops::Deref for Savepoint<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for Savepoint<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.finish_rollback();
        }
    }
}

/// A prepared statement.
pub struct Statement<'c>(StatementInner<'c>);

enum StatementInner<'c> {
    Sqlite(rusqlite::CachedStatement<'c>),
    Postgres {
        conn: &'c RefCell<pg::PgConn>,
        stmt: postgres::Statement,
    },
}

impl Statement<'_> {
    /// The names of the result's columns.
    pub fn column_names(&self) -> Vec<String> {
        match &self.0 {
            StatementInner::Sqlite(s) => s.column_names().into_iter().map(String::from).collect(),
            StatementInner::Postgres { stmt, .. } => stmt
                .columns()
                .iter()
                .map(|c| c.name().to_string())
                .collect(),
        }
    }

    pub fn execute<P: Params>(&mut self, params: P) -> Result<usize> {
        match &mut self.0 {
            StatementInner::Sqlite(s) => params.with_values(&mut |v| sqlite::execute(s, v)),
            StatementInner::Postgres { conn, stmt } => {
                let mut c = conn.borrow_mut();
                params.with_values(&mut |v| pg::execute(c.client(), stmt, v))
            }
        }
    }

    pub fn query_row<T, P, F>(&mut self, params: P, f: F) -> Result<T>
    where
        P: Params,
        F: FnOnce(&Row<'_>) -> Result<T>,
    {
        let mut rows = self.query(params)?;
        match rows.next()? {
            Some(row) => f(&row),
            None => Err(Error::NoRows),
        }
    }

    /// Every row through `f`.
    pub fn query_map<T, P, F>(
        &mut self,
        params: P,
        mut f: F,
    ) -> Result<std::vec::IntoIter<Result<T>>>
    where
        P: Params,
        F: FnMut(&Row<'_>) -> Result<T>,
    {
        let mut rows = self.query(params)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(f(&row));
        }
        Ok(out.into_iter())
    }

    /// The rows, one at a time (`while let Some(row) = rows.next()?`).
    pub fn query<P: Params>(&mut self, params: P) -> Result<Rows<'_>> {
        match &mut self.0 {
            StatementInner::Sqlite(s) => {
                params.with_values(&mut |v| sqlite::bind(s, v))?;
                let rows = s.raw_query();
                Ok(Rows {
                    inner: RowsInner::Sqlite(rows),
                    current: None,
                })
            }
            StatementInner::Postgres { conn, stmt } => {
                let mut c = conn.borrow_mut();
                let rows = params.with_values(&mut |v| pg::query(c.client(), stmt, v))?;
                Ok(Rows {
                    inner: RowsInner::Postgres(rows.into_iter()),
                    current: None,
                })
            }
        }
    }
}

/// The rows of a query.
pub struct Rows<'s> {
    inner: RowsInner<'s>,
    current: Option<postgres::Row>,
}

enum RowsInner<'s> {
    Sqlite(rusqlite::Rows<'s>),
    Postgres(std::vec::IntoIter<postgres::Row>),
}

impl Rows<'_> {
    /// The next row (`while let Some(row) = rows.next()?`).
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Row<'_>>> {
        match &mut self.inner {
            RowsInner::Sqlite(rows) => Ok(rows.next()?.map(|r| Row(RowInner::Sqlite(r)))),
            RowsInner::Postgres(rows) => {
                self.current = rows.next();
                Ok(self.current.as_ref().map(|r| Row(RowInner::Postgres(r))))
            }
        }
    }
}

/// One row of a result.
#[derive(Clone, Copy)]
pub struct Row<'r>(RowInner<'r>);

#[derive(Clone, Copy)]
enum RowInner<'r> {
    Sqlite(&'r rusqlite::Row<'r>),
    Postgres(&'r postgres::Row),
}

/// A column by position or by name.
pub trait RowIndex {
    fn index(&self, row: &Row<'_>) -> Result<usize>;
}

impl RowIndex for usize {
    fn index(&self, _: &Row<'_>) -> Result<usize> {
        Ok(*self)
    }
}

impl RowIndex for &str {
    fn index(&self, row: &Row<'_>) -> Result<usize> {
        let found = match row.0 {
            RowInner::Sqlite(r) => r.as_ref().column_index(self).ok(),
            RowInner::Postgres(r) => r.columns().iter().position(|c| c.name() == *self),
        };
        found.ok_or_else(|| Error::Other(format!("no column named {self}")))
    }
}

impl<'r> Row<'r> {
    /// The value of a column, converted to `T`.
    pub fn get<I: RowIndex, T: FromSql>(&self, idx: I) -> Result<T> {
        let i = idx.index(self)?;
        let value = self.get_ref(i)?;
        T::from_sql(value).map_err(|message| Error::Conversion { column: i, message })
    }

    /// The value of a column as stored, borrowed from the row.
    pub fn get_ref(&self, i: usize) -> Result<ValueRef<'r>> {
        match self.0 {
            RowInner::Sqlite(r) => Ok(sqlite::value(r.get_ref(i)?)),
            RowInner::Postgres(r) => pg::value(r, i),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::store::test_store;

    #[test]
    fn a_failed_commit_leaves_no_transaction_open() {
        let (_dir, store) = test_store();
        let mut conn = store.conn().unwrap();
        {
            // A foreign key checked only at COMMIT: the commit fails, with SQLite's
            // transaction still open until something rolls it back.
            let tx = conn.transaction().unwrap();
            tx.execute_batch("PRAGMA defer_foreign_keys = ON").unwrap();
            tx.execute(
                "INSERT INTO subscription_items (id, subscription) VALUES ('si_1', 'sub_none')",
                (),
            )
            .unwrap();
            assert!(tx.commit().is_err());
        }
        assert!(!conn.is_broken());
        let tx = conn.transaction().unwrap();
        let n: i64 = tx
            .query_row("SELECT count(*) FROM subscription_items", (), |r| r.get(0))
            .unwrap();
        assert_eq!(n, 0);
        tx.commit().unwrap();
    }
}

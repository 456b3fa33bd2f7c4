//! The PostgreSQL side of [`super::Connection`]: connecting (rustls for TLS), the
//! placeholder rewrite and statement cache, binding and reading by the server's types,
//! error classes.

use std::{collections::HashMap, error::Error as StdError, time::Duration};

use bytes::{BufMut, BytesMut};
use postgres::{
    Client, Statement,
    error::SqlState,
    types::{FromSql, IsNull, ToSql, Type, to_sql_checked},
};

use super::{Error, Result, ValueRef};

/// Where and how to connect: parsed from `[database] url` once, cloned per connection.
#[derive(Clone)]
pub struct PgTarget {
    config: postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// Milliseconds a statement waits for a lock before failing (`lock_timeout`).
    lock_timeout_ms: u64,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("PgTarget")
            .field("host", &self.config.get_hosts())
            .field("dbname", &self.config.get_dbname())
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl PgTarget {
    /// Parses `url` (`postgres://user@host:port/db?sslmode=…`); `password` comes from the
    /// environment, never from the file.
    pub fn new(url: &str, password: Option<&str>, lock_timeout: Duration) -> Result<PgTarget> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| Error::Other(format!("database.url: {e}")))?;
        if let Some(p) = password {
            config.password(p);
        }
        if config.get_application_name().is_none() {
            config.application_name("billd");
        }
        // A node that vanishes (power cut, partition) holds row locks until the server
        // notices: keepalives make that seconds, not the kernel's two hours.
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(3)
            .connect_timeout(Duration::from_secs(10));
        let tls = match config.get_ssl_mode() {
            postgres::config::SslMode::Disable => None,
            _ => Some(make_tls()),
        };
        Ok(PgTarget {
            config,
            tls,
            lock_timeout_ms: lock_timeout.as_millis().max(1) as u64,
        })
    }

    /// `postgres://host:port/dbname`: never the user or password.
    pub fn describe(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(postgres::config::Host::Tcp(h)) => h.clone(),
            Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!(
            "postgres://{host}:{port}/{}",
            self.config.get_dbname().unwrap_or("")
        )
    }

    /// A new session, set up for billd: durable commits unless `durable` is false,
    /// bounded lock waits, and an idle transaction of a stuck process cut off.
    pub(crate) fn connect(&self, durable: bool) -> Result<PgConn> {
        off_runtime(|| self.connect_here(durable))
    }

    fn connect_here(&self, durable: bool) -> Result<PgConn> {
        let mut client = match &self.tls {
            Some(tls) => self.config.connect(tls.clone())?,
            None => self.config.connect(postgres::NoTls)?,
        };
        client.batch_execute(&format!(
            "SET synchronous_commit = {};
             SET lock_timeout = {};
             SET idle_in_transaction_session_timeout = 60000;
             SET TIME ZONE 'UTC'",
            if durable { "on" } else { "off" },
            self.lock_timeout_ms,
        ))?;
        Ok(PgConn {
            client: Some(client),
            cache: HashMap::new(),
        })
    }
}

/// Runs `f` (which blocks on the client's own runtime) on a thread of its own when
/// called from a tokio runtime thread, where blocking on another runtime panics.
/// Opening and closing sessions may happen there (a store opened or dropped by async
/// code); queries run on blocking threads ([`crate::store::Store::run`]), or through
/// this from synchronous code inside a `block_on` (the CLI's Stripe listings).
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return f();
    }
    std::thread::scope(|s| match s.spawn(f).join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

fn make_tls() -> tokio_postgres_rustls::MakeRustlsConnect {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("ring supports the default protocol versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    tokio_postgres_rustls::MakeRustlsConnect::new(config)
}

/// A session and its prepared statements.
pub(crate) struct PgConn {
    /// Always `Some` until dropped.
    client: Option<Client>,
    cache: HashMap<String, Statement>,
}

impl Drop for PgConn {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            off_runtime(move || drop(client));
        }
    }
}

/// Statements kept per session before the cache starts over (dynamic SQL such as
/// `IN (…)` lists of varying length must not grow it without bound).
const CACHE_CAPACITY: usize = 256;

impl PgConn {
    pub(super) fn client(&mut self) -> &mut Client {
        self.client
            .as_mut()
            .expect("a session is open until dropped")
    }

    pub(super) fn prepare(&mut self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.cache.get(sql) {
            return Ok(s.clone());
        }
        let stmt = self.client().prepare(&rewrite_placeholders(sql))?;
        if self.cache.len() >= CACHE_CAPACITY {
            self.cache.clear();
        }
        self.cache.insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }
}

/// `?N` and `?` (SQLite's positional placeholders) to `$N`, outside quotes and comments.
pub(super) fn rewrite_placeholders(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut next = 1usize;
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '?' => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                    digits.push(*d);
                    chars.next();
                }
                let n = digits.parse().unwrap_or(next);
                next = n.max(next - 1) + 1;
                out.push('$');
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

/// A parameter, encoded for whatever type the server inferred for its placeholder.
struct Param<'a>(ValueRef<'a>);

/// Never the value (payloads, emails, token hashes), only its kind and size.
impl std::fmt::Debug for Param<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            ValueRef::Null => f.write_str("NULL"),
            ValueRef::Integer(_) => f.write_str("<integer>"),
            ValueRef::Real(_) => f.write_str("<real>"),
            ValueRef::Text(t) => write!(f, "<text, {} bytes>", t.len()),
            ValueRef::Blob(b) => write!(f, "<blob, {} bytes>", b.len()),
        }
    }
}

type BoxError = Box<dyn StdError + Sync + Send>;

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> std::result::Result<IsNull, BoxError> {
        match (self.0, ty) {
            (ValueRef::Null, _) => return Ok(IsNull::Yes),
            (ValueRef::Integer(i), &Type::INT8) => out.put_i64(i),
            (ValueRef::Integer(i), &Type::INT4) => out.put_i32(i32::try_from(i)?),
            (ValueRef::Integer(i), &Type::INT2) => out.put_i16(i16::try_from(i)?),
            (ValueRef::Integer(i), &Type::FLOAT8) => out.put_f64(i as f64),
            (ValueRef::Integer(i), &Type::FLOAT4) => out.put_f32(i as f32),
            (ValueRef::Integer(i), &Type::BOOL) => out.put_u8(u8::from(i != 0)),
            (ValueRef::Integer(i), t) if is_text(t) => out.put_slice(i.to_string().as_bytes()),
            (ValueRef::Real(f), &Type::FLOAT8) => out.put_f64(f),
            (ValueRef::Real(f), &Type::FLOAT4) => out.put_f32(f as f32),
            (ValueRef::Real(f), t) if is_text(t) => out.put_slice(f.to_string().as_bytes()),
            (ValueRef::Text(s), &Type::JSONB) => {
                out.put_u8(1);
                out.put_slice(s.as_bytes());
            }
            (ValueRef::Text(s), t) if is_text(t) || *t == Type::JSON => out.put_slice(s.as_bytes()),
            (ValueRef::Text(s), &Type::INT8) => out.put_i64(s.parse()?),
            (ValueRef::Blob(b), &Type::BYTEA) => out.put_slice(b),
            (v, t) => return Err(format!("cannot bind {:?} to a {t} parameter", Param(v)).into()),
        }
        Ok(IsNull::No)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn is_text(t: &Type) -> bool {
    matches!(
        *t,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN
    )
}

fn bind<'a>(values: &'a [ValueRef<'a>]) -> Vec<Param<'a>> {
    values.iter().map(|v| Param(*v)).collect()
}

pub(super) fn execute(
    client: &mut Client,
    stmt: &Statement,
    values: &[ValueRef<'_>],
) -> Result<usize> {
    let params = bind(values);
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
    Ok(client.execute(stmt, &refs)? as usize)
}

pub(super) fn query(
    client: &mut Client,
    stmt: &Statement,
    values: &[ValueRef<'_>],
) -> Result<Vec<postgres::Row>> {
    let params = bind(values);
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as _).collect();
    Ok(client.query(stmt, &refs)?)
}

/// A column read by the server's type.
struct Column<'a>(ValueRef<'a>);

impl<'a> FromSql<'a> for Column<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> std::result::Result<Self, BoxError> {
        let int = |n: usize| -> std::result::Result<i64, BoxError> {
            let bytes = raw.get(..n).ok_or("short integer")?;
            Ok(match n {
                8 => i64::from_be_bytes(bytes.try_into()?),
                4 => i64::from(i32::from_be_bytes(bytes.try_into()?)),
                _ => i64::from(i16::from_be_bytes(bytes.try_into()?)),
            })
        };
        Ok(Column(match *ty {
            Type::INT8 => ValueRef::Integer(int(8)?),
            Type::INT4 => ValueRef::Integer(int(4)?),
            Type::INT2 => ValueRef::Integer(int(2)?),
            Type::OID => ValueRef::Integer(i64::from(u32::from_be_bytes(
                raw.get(..4).ok_or("short oid")?.try_into()?,
            ))),
            Type::BOOL => ValueRef::Integer(i64::from(raw.first() == Some(&1))),
            Type::FLOAT8 => ValueRef::Real(f64::from_be_bytes(raw.try_into()?)),
            Type::FLOAT4 => ValueRef::Real(f64::from(f32::from_be_bytes(raw.try_into()?))),
            Type::BYTEA => ValueRef::Blob(raw),
            Type::JSONB => ValueRef::Text(std::str::from_utf8(raw.get(1..).unwrap_or(&[]))?),
            Type::NUMERIC => numeric(raw)?,
            _ => ValueRef::Text(std::str::from_utf8(raw)?),
        }))
    }

    fn from_sql_null(_: &Type) -> std::result::Result<Self, BoxError> {
        Ok(Column(ValueRef::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// A `NUMERIC` (what `sum(bigint)` answers): an integer when it has no fraction.
fn numeric(raw: &[u8]) -> std::result::Result<ValueRef<'static>, BoxError> {
    let word = |i: usize| -> std::result::Result<i16, BoxError> {
        Ok(i16::from_be_bytes(
            raw.get(i * 2..i * 2 + 2)
                .ok_or("short numeric")?
                .try_into()?,
        ))
    };
    let ndigits = word(0)? as usize;
    let weight = i32::from(word(1)?);
    let sign = word(2)? as u16;
    let dscale = word(3)?;
    if sign == 0xC000 {
        return Err("NaN is not a number billd stores".into());
    }
    let mut int: i128 = 0;
    let mut real = 0f64;
    let mut fractional = dscale > 0;
    for i in 0..ndigits {
        let digit = i128::from(word(4 + i)?);
        let power = weight - i as i32;
        real += digit as f64 * 10000f64.powi(power);
        if power >= 0 {
            int = int
                .checked_add(digit * 10000i128.pow(power as u32))
                .ok_or("numeric out of range")?;
        } else if digit != 0 {
            fractional = true;
        }
    }
    let negative = sign == 0x4000;
    if fractional {
        return Ok(ValueRef::Real(if negative { -real } else { real }));
    }
    let int = if negative { -int } else { int };
    Ok(ValueRef::Integer(i64::try_from(int)?))
}

pub(super) fn value<'r>(row: &'r postgres::Row, i: usize) -> Result<ValueRef<'r>> {
    row.try_get::<_, Column<'r>>(i)
        .map(|c| c.0)
        .map_err(Error::from)
}

pub(super) fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    }
}

pub(super) fn is_contention(e: &postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
            || *c == SqlState::LOCK_NOT_AVAILABLE
    )
}

#[cfg(test)]
mod tests {
    use super::rewrite_placeholders;

    #[test]
    fn placeholders_become_dollar_numbers_outside_quotes() {
        assert_eq!(
            rewrite_placeholders("SELECT ?1, '?2', ?3 -- ?4\n, ?"),
            "SELECT $1, '?2', $3 -- ?4\n, $4"
        );
        assert_eq!(rewrite_placeholders("a = ? AND b = ?"), "a = $1 AND b = $2");
    }
}

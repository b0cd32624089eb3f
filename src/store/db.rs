//! The one connection type of the store, over two engines: the embedded
//! SQLite/SQLCipher cache and PostgreSQL (team workspaces).
//!
//! Why plain SQL with this thin layer rather than a query builder: the store
//! is ~300 hand-tuned statements (id-first paging, set-based campaign
//! generation, partial indexes) whose plans were measured on SQLite; a
//! builder would hide them and cost a rewrite of each. The dialects agree on
//! nearly all of it (CTEs, window functions, `ON CONFLICT`, `RETURNING`,
//! `FILTER`, `IS [NOT] DISTINCT FROM`), so the layer only:
//! - binds one [`Value`] type on both engines (PostgreSQL's strict binary
//!   types are met by converting to the parameter type the server inferred);
//! - reads columns into [`Value`] on both (so `count(*)`, `sum()`'s NUMERIC,
//!   a `bool` expression and an `int4` all read as the Rust type asked for);
//! - rewrites SQLite placeholders (`?1`, `?`) to PostgreSQL's (`$1`) and
//!   SQLite's case-insensitive `LIKE` to `ILIKE` (outside string literals);
//! - leaves what really differs to a piece per engine next to the query it
//!   serves ([`Db::pick`]), plus a few functions both engines define the same
//!   way (`unixepoch()`, `date(ts, 'unixepoch')`, `json_group_array`, the
//!   `nocase` collation: see `migrations.rs`).
//!
//! Transactions are explicit (`BEGIN`/`COMMIT`) through [`Tx`], which rolls
//! back when dropped uncommitted, on both engines.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use crate::error::{Error, ErrorCode, Result};

/// Which engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    Sqlite,
    Postgres,
}

impl Engine {
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::Sqlite => "sqlite",
            Engine::Postgres => "postgres",
        }
    }

    /// `column` kept from choosing an index: SQLite, which keeps no
    /// statistics, reads a unary `+` as "not through an index on this"; the
    /// PostgreSQL planner weighs its own statistics and gets it plain.
    pub fn no_index(self, column: &str) -> String {
        match self {
            Engine::Sqlite => format!("+{column}"),
            Engine::Postgres => column.to_string(),
        }
    }
}

// ---------------------------------------------------------------------------
// Values

/// One SQL value, as both engines bind and read it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// A Rust value that can be bound as a parameter.
pub trait ToValue {
    fn to_value(&self) -> Value;
}

/// A Rust value that can be read from a column.
pub trait FromValue: Sized {
    fn from_value(v: Value) -> std::result::Result<Self, String>;
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}
impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        match self {
            Some(v) => v.to_value(),
            None => Value::Null,
        }
    }
}
impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}
macro_rules! int_to_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
        impl FromValue for $t {
            fn from_value(v: Value) -> std::result::Result<Self, String> {
                let i = i64::from_value(v)?;
                <$t>::try_from(i).map_err(|_| format!("{i} is out of range for {}", stringify!($t)))
            }
        }
    )*};
}
int_to_value!(i32, u32, u64, usize, u16, u8);
impl ToValue for i64 {
    fn to_value(&self) -> Value {
        Value::Int(*self)
    }
}
impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}
impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}
impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_string())
    }
}
impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}
impl ToValue for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}
impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}

impl FromValue for Value {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        Ok(v)
    }
}
impl FromValue for i64 {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        match v {
            Value::Int(i) => Ok(i),
            // NUMERIC results (PostgreSQL's sum of bigint) arrive as reals.
            Value::Real(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
            Value::Null => Err("NULL where a number was expected".into()),
            other => Err(format!("{other:?} where an integer was expected")),
        }
    }
}
impl FromValue for bool {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        Ok(i64::from_value(v)? != 0)
    }
}
impl FromValue for f64 {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        match v {
            Value::Int(i) => Ok(i as f64),
            Value::Real(f) => Ok(f),
            Value::Null => Err("NULL where a number was expected".into()),
            other => Err(format!("{other:?} where a number was expected")),
        }
    }
}
impl FromValue for String {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        match v {
            Value::Text(s) => Ok(s),
            Value::Int(i) => Ok(i.to_string()),
            Value::Real(f) => Ok(f.to_string()),
            Value::Null => Err("NULL where text was expected".into()),
            Value::Blob(_) => Err("a blob where text was expected".into()),
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        match v {
            Value::Blob(b) => Ok(b),
            Value::Text(s) => Ok(s.into_bytes()),
            Value::Null => Err("NULL where a blob was expected".into()),
            other => Err(format!("{other:?} where a blob was expected")),
        }
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: Value) -> std::result::Result<Self, String> {
        match v {
            Value::Null => Ok(None),
            v => T::from_value(v).map(Some),
        }
    }
}

/// Parameters of a statement: `params![a, b]`, `[a]`, `[]`, a `Vec`.
pub trait Params {
    fn values(self) -> Vec<Value>;
}
impl Params for &[&dyn ToValue] {
    fn values(self) -> Vec<Value> {
        self.iter().map(|v| v.to_value()).collect()
    }
}
impl Params for [&dyn ToValue; 0] {
    fn values(self) -> Vec<Value> {
        Vec::new()
    }
}
impl<T: ToValue> Params for Vec<T> {
    fn values(self) -> Vec<Value> {
        self.iter().map(|v| v.to_value()).collect()
    }
}
impl<T: ToValue> Params for &Vec<T> {
    fn values(self) -> Vec<Value> {
        self.iter().map(|v| v.to_value()).collect()
    }
}
macro_rules! array_params {
    ($($n:literal)*) => {$(
        impl<T: ToValue> Params for [T; $n] {
            fn values(self) -> Vec<Value> {
                self.iter().map(|v| v.to_value()).collect()
            }
        }
        impl<T: ToValue> Params for &[T; $n] {
            fn values(self) -> Vec<Value> {
                self.iter().map(|v| v.to_value()).collect()
            }
        }
    )*};
}
array_params!(1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16);

/// `params![a, b, c]`: a parameter list of mixed types.
#[macro_export]
#[doc(hidden)]
macro_rules! db_params {
    () => { &[] as &[&dyn $crate::store::db::ToValue] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::store::db::ToValue),+] as &[&dyn $crate::store::db::ToValue] };
}
pub use crate::db_params as params;

/// `values![a, b, c]`: one row of [`Value`]s for [`Db::insert_rows`].
#[macro_export]
#[doc(hidden)]
macro_rules! values {
    ($($p:expr),* $(,)?) => { vec![$($crate::store::db::ToValue::to_value(&$p)),*] };
}

// ---------------------------------------------------------------------------
// SQLite binding

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Int(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Real(f) => ToSqlOutput::Borrowed(ValueRef::Real(*f)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

fn sqlite_value(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

// ---------------------------------------------------------------------------
// PostgreSQL binding

mod pgtypes {
    use super::Value;
    use postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};

    type BoxError = Box<dyn std::error::Error + Sync + Send>;

    impl ToSql for Value {
        fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
            use bytes::BufMut;
            match self {
                Value::Null => return Ok(IsNull::Yes),
                Value::Int(i) => match *ty {
                    Type::INT8 => out.put_i64(*i),
                    Type::INT4 => out.put_i32(i32::try_from(*i)?),
                    Type::INT2 => out.put_i16(i16::try_from(*i)?),
                    Type::BOOL => out.put_u8(u8::from(*i != 0)),
                    Type::FLOAT8 => out.put_f64(*i as f64),
                    Type::FLOAT4 => out.put_f32(*i as f32),
                    Type::OID => out.put_u32(u32::try_from(*i)?),
                    Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                        out.put_slice(i.to_string().as_bytes())
                    }
                    Type::NUMERIC => numeric_from_i64(*i, out),
                    ref other => return Err(format!("cannot bind an integer to {other}").into()),
                },
                Value::Real(f) => match *ty {
                    Type::FLOAT8 => out.put_f64(*f),
                    Type::FLOAT4 => out.put_f32(*f as f32),
                    Type::TEXT | Type::VARCHAR | Type::UNKNOWN => {
                        out.put_slice(f.to_string().as_bytes())
                    }
                    ref other => return Err(format!("cannot bind a real to {other}").into()),
                },
                Value::Text(s) => match *ty {
                    Type::JSONB => {
                        out.put_u8(1);
                        out.put_slice(s.as_bytes())
                    }
                    Type::INT8 => out.put_i64(s.trim().parse()?),
                    Type::INT4 => out.put_i32(s.trim().parse()?),
                    Type::BYTEA => out.put_slice(s.as_bytes()),
                    _ => out.put_slice(s.as_bytes()),
                },
                Value::Blob(b) => out.put_slice(b),
            }
            Ok(IsNull::No)
        }

        fn accepts(_ty: &Type) -> bool {
            true
        }

        to_sql_checked!();
    }

    /// NUMERIC's binary form for an integer (base-10000 digits).
    fn numeric_from_i64(i: i64, out: &mut bytes::BytesMut) {
        use bytes::BufMut;
        let neg = i < 0;
        let mut n = i.unsigned_abs();
        let mut digits = Vec::new();
        while n > 0 {
            digits.push((n % 10_000) as i16);
            n /= 10_000;
        }
        digits.reverse();
        let weight = digits.len() as i16 - 1;
        out.put_i16(digits.len() as i16);
        out.put_i16(if digits.is_empty() { 0 } else { weight });
        out.put_u16(if neg { 0x4000 } else { 0 });
        out.put_i16(0);
        for d in digits {
            out.put_i16(d);
        }
    }

    /// A column read as a [`Value`], whatever its type.
    pub(super) struct PgValue(pub Value);

    impl<'a> FromSql<'a> for PgValue {
        fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
            let v = match *ty {
                Type::INT8 => Value::Int(i64::from_sql(ty, raw)?),
                Type::INT4 => Value::Int(i64::from(i32::from_sql(ty, raw)?)),
                Type::INT2 => Value::Int(i64::from(i16::from_sql(ty, raw)?)),
                Type::OID => Value::Int(i64::from(u32::from_sql(ty, raw)?)),
                Type::BOOL => Value::Int(i64::from(bool::from_sql(ty, raw)?)),
                Type::FLOAT8 => Value::Real(f64::from_sql(ty, raw)?),
                Type::FLOAT4 => Value::Real(f64::from(f32::from_sql(ty, raw)?)),
                Type::NUMERIC => numeric_value(raw)?,
                Type::BYTEA => Value::Blob(raw.to_vec()),
                Type::JSONB => Value::Text(String::from_utf8(
                    raw.get(1..).unwrap_or_default().to_vec(),
                )?),
                _ => Value::Text(String::from_utf8(raw.to_vec())?),
            };
            Ok(PgValue(v))
        }

        fn from_sql_null(_ty: &Type) -> Result<Self, BoxError> {
            Ok(PgValue(Value::Null))
        }

        fn accepts(_ty: &Type) -> bool {
            true
        }
    }

    /// NUMERIC's binary form: ndigits, weight, sign, dscale, then base-10000
    /// digits. Whole numbers become integers, others reals.
    pub(super) fn numeric_value(raw: &[u8]) -> Result<Value, BoxError> {
        let word = |i: usize| -> Result<i16, BoxError> {
            let b = raw.get(i * 2..i * 2 + 2).ok_or("truncated NUMERIC")?;
            Ok(i16::from_be_bytes([b[0], b[1]]))
        };
        let ndigits = word(0)?.max(0) as usize;
        let weight = i32::from(word(1)?);
        let sign = word(2)? as u16;
        if sign == 0xC000 {
            return Ok(Value::Real(f64::NAN));
        }
        let mut whole: i128 = 0;
        let mut frac = 0f64;
        let mut exact = true;
        for k in 0..ndigits {
            let d = i128::from(word(4 + k)?);
            let power = weight - k as i32;
            if power >= 0 {
                let scaled = 10_000i128
                    .checked_pow(power as u32)
                    .and_then(|p| d.checked_mul(p))
                    .and_then(|x| whole.checked_add(x));
                match scaled {
                    Some(w) => whole = w,
                    None => exact = false,
                }
            } else if d != 0 {
                frac += d as f64 * 10_000f64.powi(power);
            }
        }
        let neg = sign == 0x4000;
        if frac == 0.0 && exact {
            let w = if neg { -whole } else { whole };
            if let Ok(i) = i64::try_from(w) {
                return Ok(Value::Int(i));
            }
        }
        let f = whole as f64 + frac;
        Ok(Value::Real(if neg { -f } else { f }))
    }
}

// ---------------------------------------------------------------------------
// SQL translation

/// Rewrites SQLite-style SQL for PostgreSQL: `?N` → `$N`, a bare `?` → the
/// next number, `LIKE` → `ILIKE` (SQLite's LIKE ignores ASCII case),
/// `temp.` before a table name → nothing (PostgreSQL finds temporary tables
/// first), `json_object(` → `json_build_object(` and `last_insert_rowid()`
/// → `lastval()` (same meaning, other names). String literals, quoted identifiers and comments are left as they
/// are.
pub fn to_postgres(sql: &str) -> String {
    let b = sql.as_bytes();
    let mut out = String::with_capacity(sql.len() + 16);
    let mut i = 0;
    let mut next = 0u32;
    let word_at = |i: usize, w: &str| -> bool {
        let end = i + w.len();
        end <= b.len()
            && b[i..end].eq_ignore_ascii_case(w.as_bytes())
            && (i == 0 || !is_ident(b[i - 1]))
            && (end == b.len() || !is_ident(b[end]))
    };
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' | b'"' => {
                let start = i;
                i += 1;
                while i < b.len() {
                    if b[i] == c {
                        if i + 1 < b.len() && b[i + 1] == c {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i = (i + 1).min(b.len());
                out.push_str(&sql[start..i]);
            }
            b'-' if b.get(i + 1) == Some(&b'-') => {
                let start = i;
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                out.push_str(&sql[start..i]);
            }
            b'?' => {
                i += 1;
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                if i > start {
                    let n: u32 = sql[start..i].parse().unwrap_or(0);
                    next = next.max(n);
                    out.push('$');
                    out.push_str(&sql[start..i]);
                } else {
                    next += 1;
                    out.push('$');
                    out.push_str(&next.to_string());
                }
            }
            _ if word_at(i, "LIKE") => {
                out.push_str("ILIKE");
                i += 4;
            }
            _ if word_at(i, "json_object") && b.get(i + 11) == Some(&b'(') => {
                out.push_str("json_build_object");
                i += 11;
            }
            _ if word_at(i, "last_insert_rowid") && b.get(i + 17) == Some(&b'(') => {
                out.push_str("lastval");
                i += 17;
            }
            _ if word_at(i, "temp") && b.get(i + 4) == Some(&b'.') => {
                i += 5;
            }
            _ => {
                let ch = sql[i..].chars().next().unwrap_or(' ');
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
    out
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'$'
}

// ---------------------------------------------------------------------------
// Rows

/// One row of a result, on either engine.
pub enum Row<'a> {
    Sqlite(&'a rusqlite::Row<'a>),
    Pg(&'a postgres::Row),
}

impl Row<'_> {
    /// Column `idx` (from 0) as `T`.
    pub fn get<T: FromValue>(&self, idx: usize) -> Result<T> {
        let v = self.value(idx)?;
        T::from_value(v).map_err(|m| Error::new(ErrorCode::Storage, format!("column {idx}: {m}")))
    }

    pub fn value(&self, idx: usize) -> Result<Value> {
        match self {
            Row::Sqlite(r) => Ok(sqlite_value(r.get_ref(idx)?)),
            Row::Pg(r) => r
                .try_get::<_, pgtypes::PgValue>(idx)
                .map(|v| v.0)
                .map_err(|e| Error::new(ErrorCode::Storage, format!("column {idx}: {e}"))),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Row::Sqlite(r) => r.as_ref().column_count(),
            Row::Pg(r) => r.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

// ---------------------------------------------------------------------------
// The connection

pub(crate) enum Conn {
    Sqlite(rusqlite::Connection),
    /// `None` only while the connection is being dropped (see `Drop for Db`).
    Pg(RefCell<Option<PgConn>>),
}

pub(crate) struct PgConn {
    pub client: postgres::Client,
    /// Translated SQL and its prepared statement, by the SQL as written.
    statements: HashMap<String, postgres::Statement>,
    /// [`Db::insert_rows_with`]'s statement, by table, columns and suffix.
    unnest_sql: HashMap<String, String>,
}

impl PgConn {
    pub fn new(client: postgres::Client) -> PgConn {
        PgConn {
            client,
            statements: HashMap::new(),
            unnest_sql: HashMap::new(),
        }
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let translated = to_postgres(sql);
        let st = self
            .client
            .prepare(&translated)
            .map_err(|e| pg_error_in(e, &translated))?;
        if self.statements.len() > 512 {
            self.statements.clear();
        }
        self.statements.insert(sql.to_string(), st.clone());
        Ok(st)
    }
}

/// A database connection of either engine. Not `Sync`; one per thread.
pub struct Db {
    conn: Conn,
    depth: std::cell::Cell<u32>,
    /// PostgreSQL cursors open for [`Db::for_each`] (nested reads).
    cursors: std::cell::Cell<u32>,
    /// Whether this connection's database is a team workspace, once known
    /// (see [`Db::workspace_flag`]).
    workspace: std::cell::Cell<Option<bool>>,
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Db({})", self.engine().as_str())
    }
}

/// Runs `f` where the synchronous PostgreSQL client may block: that client
/// drives its own runtime, which cannot start inside another one (the app's
/// async commands, a sync's fetch), so there it runs on a scoped thread.
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| match s.spawn(f).join() {
            Ok(v) => v,
            Err(p) => std::panic::resume_unwind(p),
        })
    } else {
        f()
    }
}

/// A PostgreSQL client closes through its own runtime, which cannot run
/// inside another (an app command dropping a store): it is closed where
/// [`off_runtime`] says.
impl Drop for Db {
    fn drop(&mut self) {
        if let Conn::Pg(cell) = &mut self.conn {
            if let Some(pg) = cell.get_mut().take() {
                off_runtime(move || drop(pg));
            }
        }
    }
}

impl Db {
    pub(crate) fn sqlite(conn: rusqlite::Connection) -> Db {
        Db {
            conn: Conn::Sqlite(conn),
            depth: std::cell::Cell::new(0),
            cursors: std::cell::Cell::new(0),
            workspace: std::cell::Cell::new(None),
        }
    }

    pub(crate) fn postgres(client: postgres::Client) -> Db {
        Db {
            conn: Conn::Pg(RefCell::new(Some(PgConn::new(client)))),
            depth: std::cell::Cell::new(0),
            cursors: std::cell::Cell::new(0),
            workspace: std::cell::Cell::new(None),
        }
    }

    pub fn engine(&self) -> Engine {
        match self.conn {
            Conn::Sqlite(_) => Engine::Sqlite,
            Conn::Pg(_) => Engine::Postgres,
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.engine() == Engine::Postgres
    }

    /// On PostgreSQL, takes the statistics of `tables` (a comma-separated
    /// list) just filled, so what follows is planned on their rows rather
    /// than a guess: temporary tables have none until asked, and ANALYZE in
    /// a transaction sees its own rows. SQLite plans without: nothing.
    pub fn analyze(&self, tables: &str) -> Result<()> {
        if self.is_postgres() {
            self.execute_batch(&format!("ANALYZE {tables}"))?;
        }
        Ok(())
    }

    /// The piece of SQL for this engine, where the dialects differ.
    pub fn pick<'s>(&self, sqlite: &'s str, postgres: &'s str) -> &'s str {
        match self.engine() {
            Engine::Sqlite => sqlite,
            Engine::Postgres => postgres,
        }
    }

    /// The SQLite connection (the file-level operations in `store::mod`:
    /// keys, pragmas, encryption); `None` on PostgreSQL.
    pub(crate) fn sqlite_conn(&self) -> Option<&rusqlite::Connection> {
        match &self.conn {
            Conn::Sqlite(c) => Some(c),
            Conn::Pg(_) => None,
        }
    }

    fn pg<T: Send>(&self, f: impl FnOnce(&mut PgConn) -> Result<T> + Send) -> Result<T> {
        match &self.conn {
            Conn::Pg(cell) => {
                let mut guard = cell.try_borrow_mut().map_err(|_| {
                    Error::internal(
                        "the database connection is already in use by an unfinished query",
                    )
                })?;
                let pg: &mut PgConn = guard
                    .as_mut()
                    .ok_or_else(|| Error::internal("the database connection is closed"))?;
                off_runtime(move || f(pg))
            }
            Conn::Sqlite(_) => Err(Error::internal("not a PostgreSQL connection")),
        }
    }

    /// Runs one statement; returns the rows changed.
    pub fn execute<P: Params>(&self, sql: &str, params: P) -> Result<usize> {
        let values = params.values();
        match &self.conn {
            Conn::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                Ok(st.execute(rusqlite::params_from_iter(values.iter()))?)
            }
            Conn::Pg(_) => self.pg(|pg| {
                let st = pg.statement(sql)?;
                let refs = pg_refs(&values);
                let n = pg.client.execute(&st, &refs).map_err(pg_error)?;
                Ok(n as usize)
            }),
        }
    }

    /// Runs several statements without parameters (translated for
    /// PostgreSQL like every other statement).
    pub fn execute_batch(&self, sql: &str) -> Result<()> {
        match &self.conn {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Pg(_) => {
                let sql = to_postgres(sql);
                self.pg(|pg| {
                    pg.client
                        .batch_execute(&sql)
                        .map_err(|e| pg_error_in(e, &sql))
                })
            }
        }
    }

    /// Runs a script exactly as written (migrations: PostgreSQL function
    /// bodies must not be translated).
    pub fn execute_script(&self, sql: &str) -> Result<()> {
        match &self.conn {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Pg(_) => self.pg(|pg| pg.client.batch_execute(sql).map_err(pg_error)),
        }
    }

    /// The first row mapped by `f`; a `not_found` error when there is none.
    pub fn query_row<T, P: Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        self.query_opt(sql, params, f)?
            .ok_or_else(|| Error::not_found(NO_ROWS))
    }

    /// The first row mapped by `f`, if any.
    pub fn query_opt<T, P: Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        let values = params.values();
        match &self.conn {
            Conn::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(rusqlite::params_from_iter(values.iter()))?;
                match rows.next()? {
                    Some(r) => Ok(Some(f(&Row::Sqlite(r))?)),
                    None => Ok(None),
                }
            }
            Conn::Pg(_) => {
                let rows = self.pg_rows(sql, values)?;
                match rows.first() {
                    Some(r) => Ok(Some(f(&Row::Pg(r))?)),
                    None => Ok(None),
                }
            }
        }
    }

    /// Every row mapped by `f`.
    pub fn query_map<T, P: Params>(
        &self,
        sql: &str,
        params: P,
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<Vec<T>> {
        match &self.conn {
            Conn::Sqlite(_) => {
                let mut out = Vec::new();
                self.for_each(sql, params, |r| {
                    out.push(f(r)?);
                    Ok(())
                })?;
                Ok(out)
            }
            // The rows are collected anyway: one round trip, no cursor.
            Conn::Pg(_) => self
                .pg_rows(sql, params.values())?
                .iter()
                .map(|r| f(&Row::Pg(r)))
                .collect(),
        }
    }

    /// Calls `f` for every row, in order, without collecting them: memory
    /// stays flat whatever the result's size (an evidence export, the
    /// graph's million grants). SQLite steps its statement; PostgreSQL reads
    /// through a cursor, [`STREAM_ROWS`] rows a fetch, inside the caller's
    /// transaction or a read-only one of its own (so `f` may read, but a
    /// write transaction cannot start until the rows are done).
    pub fn for_each<P: Params>(
        &self,
        sql: &str,
        params: P,
        mut f: impl FnMut(&Row<'_>) -> Result<()>,
    ) -> Result<()> {
        let values = params.values();
        match &self.conn {
            Conn::Sqlite(c) => {
                let mut st = c.prepare_cached(sql)?;
                let mut rows = st.query(rusqlite::params_from_iter(values.iter()))?;
                while let Some(r) = rows.next()? {
                    f(&Row::Sqlite(r))?;
                }
                Ok(())
            }
            Conn::Pg(_) => self.pg_for_each(sql, values, &mut f),
        }
    }

    /// [`Db::for_each`] on PostgreSQL: `DECLARE` a cursor, `FETCH` it in
    /// chunks, calling `f` between fetches with the connection free (so `f`
    /// may query, or stream another cursor: names are by nesting level).
    fn pg_for_each(
        &self,
        sql: &str,
        values: Vec<Value>,
        f: &mut dyn FnMut(&Row<'_>) -> Result<()>,
    ) -> Result<()> {
        let level = self.cursors.get();
        let own_tx = level == 0 && self.depth.get() == 0;
        if own_tx {
            self.execute_batch("BEGIN READ ONLY")?;
        }
        self.cursors.set(level + 1);
        let name = format!("custodian_rows_{level}");
        let declare = format!("DECLARE {name} NO SCROLL CURSOR FOR {sql}");
        let fetch_sql = format!("FETCH {STREAM_ROWS} FROM {name}");
        let mut read = || -> Result<()> {
            self.pg(|pg| {
                let st = pg.statement(&declare)?;
                pg.client
                    .execute(&st, &pg_refs(&values))
                    .map(|_| ())
                    .map_err(|e| pg_error_in(e, sql))
            })?;
            // Prepared once per cursor, never cached: its columns are the
            // cursor's, and the next cursor of this name may have others.
            let fetch = self.pg(|pg| pg.client.prepare(&fetch_sql).map_err(pg_error))?;
            loop {
                let rows = self.pg(|pg| pg.client.query(&fetch, &[]).map_err(pg_error))?;
                for r in &rows {
                    f(&Row::Pg(r))?;
                }
                if rows.len() < STREAM_ROWS {
                    return Ok(());
                }
            }
        };
        let out = read();
        self.cursors.set(level);
        let end = match (own_tx, out.is_ok()) {
            (true, true) => "COMMIT".to_string(),
            (true, false) => "ROLLBACK".to_string(),
            (false, _) => format!("CLOSE {name}"),
        };
        match (out, self.execute_batch(&end)) {
            (Err(e), _) => Err(e),
            (Ok(()), Err(e)) => Err(e),
            (Ok(()), Ok(())) => Ok(()),
        }
    }

    fn pg_rows(&self, sql: &str, values: Vec<Value>) -> Result<Vec<postgres::Row>> {
        self.pg(|pg| {
            let st = pg.statement(sql)?;
            let refs = pg_refs(&values);
            pg.client.query(&st, &refs).map_err(pg_error)
        })
    }

    /// Runs an `INSERT … RETURNING id` and returns the id.
    pub fn insert_id<P: Params>(&self, sql: &str, params: P) -> Result<i64> {
        self.query_row(sql, params, |r| r.get(0))
    }

    /// Starts a write transaction; it rolls back unless [`Tx::commit`] is
    /// called. Nested calls become savepoints.
    ///
    /// Writers are serialized, so a decision, a close, a sync apply and an
    /// offboarding apply never interleave and the audit chain's head is read
    /// and extended by one writer at a time: SQLite takes the write lock at
    /// `BEGIN IMMEDIATE` (waiting up to the busy timeout); PostgreSQL takes
    /// a transaction-scoped advisory lock ([`WRITE_LOCK`]) before anything
    /// else, so writers from many desktops queue in one order and cannot
    /// deadlock one another.
    pub fn transaction(&self) -> Result<Tx<'_>> {
        let depth = self.depth.get();
        self.no_write_while_streaming(depth)?;
        if depth == 0 {
            match self.engine() {
                Engine::Sqlite => self.execute_batch("BEGIN IMMEDIATE")?,
                Engine::Postgres => {
                    // One round trip: writers pay it on every transaction.
                    if let Err(e) = self.execute_batch(&format!(
                        "BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"
                    )) {
                        let _ = self.execute_batch("ROLLBACK");
                        return Err(e);
                    }
                }
            }
        } else {
            self.execute_batch(&format!("SAVEPOINT sp{depth}"))?;
        }
        self.depth.set(depth + 1);
        Ok(Tx {
            db: self,
            level: depth,
            done: false,
        })
    }

    /// Starts a write transaction for a change confined to a few governance
    /// rows (one decision, one reassignment). In a team workspace it takes
    /// no writers' lock: the database's row locks, triggers and commit-time
    /// audit seal keep such changes correct, so many members decide at once
    /// and a long sync does not hold them up. Anywhere else it is
    /// [`Db::transaction`].
    pub fn item_transaction(&self) -> Result<Tx<'_>> {
        let depth = self.depth.get();
        self.no_write_while_streaming(depth)?;
        if depth > 0 || !self.is_postgres() || !super::workspace::in_workspace(self)? {
            return self.transaction();
        }
        self.execute_batch("BEGIN")?;
        self.depth.set(1);
        Ok(Tx {
            db: self,
            level: 0,
            done: false,
        })
    }

    /// A write transaction cannot begin inside the read-only transaction of a
    /// [`Db::for_each`] that opened its own: its `COMMIT` would end the read.
    fn no_write_while_streaming(&self, depth: u32) -> Result<()> {
        if depth == 0 && self.cursors.get() > 0 {
            return Err(Error::internal(
                "a write transaction cannot start while rows are being streamed: start it first",
            ));
        }
        Ok(())
    }

    /// The cached answer to "is this a team workspace?" for this connection.
    pub(crate) fn workspace_flag(&self) -> Option<bool> {
        self.workspace.get()
    }

    pub(crate) fn set_workspace_flag(&self, v: bool) {
        self.workspace.set(Some(v));
    }

    /// Whether a transaction is open.
    pub fn in_transaction(&self) -> bool {
        self.depth.get() > 0
    }

    /// After rows were inserted with explicit ids, moves PostgreSQL's
    /// identity sequence of `table` past them (SQLite needs nothing).
    pub fn sync_id_sequence(&self, table: &str) -> Result<()> {
        if self.is_postgres() {
            self.execute_batch(&format!(
                "SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
            ))?;
        }
        Ok(())
    }

    /// The columns of `table`, in order.
    pub fn columns(&self, table: &str) -> Result<Vec<String>> {
        match self.engine() {
            Engine::Sqlite => self.query_map(
                "SELECT name FROM pragma_table_info(?1) ORDER BY cid",
                [table],
                |r| r.get(0),
            ),
            Engine::Postgres => self.query_map(
                "SELECT column_name::text FROM information_schema.columns
                 WHERE table_schema = current_schema() AND table_name = ?1 AND is_generated = 'NEVER'
                 ORDER BY ordinal_position",
                [table],
                |r| r.get(0),
            ),
        }
    }

    /// The tables of the store (SQLite: without FTS5's shadow tables).
    pub fn tables(&self) -> Result<Vec<String>> {
        match self.engine() {
            Engine::Sqlite => self.query_map(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'
                 AND name NOT LIKE 'identity_fts%' ORDER BY name",
                [],
                |r| r.get(0),
            ),
            Engine::Postgres => self.query_map(
                "SELECT table_name::text FROM information_schema.tables
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1",
                [],
                |r| r.get(0),
            ),
        }
    }

    /// Inserts many rows into `table` (names are the program's own, never
    /// user input). SQLite: one cached statement per row (its fastest path);
    /// PostgreSQL: one `INSERT … SELECT FROM unnest(arrays)` per
    /// [`BULK_ROWS`] rows, so a load costs a round trip per batch, not per
    /// row.
    pub fn insert_rows<I>(&self, table: &str, columns: &[&str], rows: I) -> Result<usize>
    where
        I: IntoIterator<Item = Vec<Value>>,
    {
        self.insert_rows_with(table, columns, "", rows)
    }

    /// Like [`Db::insert_rows`] with a suffix after the values (e.g.
    /// `ON CONFLICT DO NOTHING`). Returns the rows written.
    pub fn insert_rows_with<I>(
        &self,
        table: &str,
        columns: &[&str],
        suffix: &str,
        rows: I,
    ) -> Result<usize>
    where
        I: IntoIterator<Item = Vec<Value>>,
    {
        let cols = columns.join(", ");
        let width = columns.len();
        if width == 0 {
            return Ok(0);
        }
        let mut written = 0;
        match self.engine() {
            Engine::Sqlite => {
                let marks: Vec<String> = (1..=width).map(|c| format!("?{c}")).collect();
                let mut sql = format!("INSERT INTO {table} ({cols}) VALUES ({})", marks.join(", "));
                if !suffix.is_empty() {
                    sql.push(' ');
                    sql.push_str(suffix);
                }
                let mut st = self.prepare(&sql)?;
                for row in rows {
                    written += st.execute(row)?;
                }
            }
            Engine::Postgres => {
                // One statement of `width` array parameters, whatever the
                // number of rows: `INSERT … SELECT * FROM unnest($1::t1[],
                // …)`. Its text never changes, so it is parsed and planned
                // once per connection, where a VALUES list of up to 14,000
                // parameters was parsed and planned anew for every batch.
                // It is an INSERT, so row-level security,
                // triggers and constraints apply as they would to single
                // rows (`COPY FROM` is refused on a table with RLS).
                let sql = self.unnest_insert(table, columns, suffix)?;
                let mut cols: Vec<Vec<Value>> =
                    (0..width).map(|_| Vec::with_capacity(BULK_ROWS)).collect();
                let mut n = 0;
                for row in rows {
                    if row.len() != width {
                        return Err(Error::internal(format!(
                            "a row of {} values for the {width} columns of {table}",
                            row.len()
                        )));
                    }
                    for (col, v) in cols.iter_mut().zip(row) {
                        col.push(v);
                    }
                    n += 1;
                    if n == BULK_ROWS {
                        written += self.execute_columns(&sql, &mut cols)?;
                        n = 0;
                    }
                }
                if n > 0 {
                    written += self.execute_columns(&sql, &mut cols)?;
                }
            }
        }
        Ok(written)
    }

    /// `INSERT INTO table (columns) SELECT * FROM unnest(?1::type[], …)
    /// suffix`, each array of its column's type (read from the catalogue
    /// once per connection).
    fn unnest_insert(&self, table: &str, columns: &[&str], suffix: &str) -> Result<String> {
        let key = format!("{table}({}){suffix}", columns.join(","));
        let cached = self.pg(|pg| Ok(pg.unnest_sql.get(&key).cloned()))?;
        if let Some(sql) = cached {
            return Ok(sql);
        }
        let types: HashMap<String, String> = self
            .query_map(
                "SELECT a.attname::text, format_type(a.atttypid, NULL) FROM pg_attribute a
                 WHERE a.attrelid = to_regclass(?1) AND a.attnum > 0 AND NOT a.attisdropped",
                [to_postgres(table)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?
            .into_iter()
            .collect();
        let mut arrays = Vec::with_capacity(columns.len());
        for (i, c) in columns.iter().enumerate() {
            let ty = types.get(*c).ok_or_else(|| {
                Error::internal(format!("{table} has no column {c} to insert into"))
            })?;
            arrays.push(format!("?{}::{ty}[]", i + 1));
        }
        let mut sql = format!(
            "INSERT INTO {table} ({}) SELECT * FROM unnest({})",
            columns.join(", "),
            arrays.join(", ")
        );
        if !suffix.is_empty() {
            sql.push(' ');
            sql.push_str(suffix);
        }
        let keep = sql.clone();
        self.pg(move |pg| {
            pg.unnest_sql.insert(key, keep);
            Ok(())
        })?;
        Ok(sql)
    }

    /// Runs `sql` with one array parameter per column, then empties them.
    fn execute_columns(&self, sql: &str, cols: &mut [Vec<Value>]) -> Result<usize> {
        let n = self.pg(|pg| {
            let st = pg.statement(sql)?;
            let refs: Vec<&(dyn postgres::types::ToSql + Sync)> = cols
                .iter()
                .map(|c| c as &(dyn postgres::types::ToSql + Sync))
                .collect();
            pg.client.execute(&st, &refs).map_err(pg_error)
        })?;
        for c in cols.iter_mut() {
            c.clear();
        }
        Ok(n as usize)
    }
}

/// Rows a [`Db::for_each`] cursor fetch brings from PostgreSQL.
pub const STREAM_ROWS: usize = 2000;

/// Rows per bulk insert statement on PostgreSQL ([`Db::insert_rows`]).
pub const BULK_ROWS: usize = 1000;

/// A prepared statement (possibly run many times). SQLite's is a cached
/// statement; PostgreSQL's connection caches its own by SQL, so there it
/// is the SQL and the connection.
pub struct Stmt<'a> {
    db: &'a Db,
    sql: String,
    sqlite: Option<rusqlite::CachedStatement<'a>>,
}

impl Db {
    pub fn prepare(&self, sql: &str) -> Result<Stmt<'_>> {
        let sqlite = match &self.conn {
            Conn::Sqlite(c) => Some(c.prepare_cached(sql)?),
            Conn::Pg(_) => None,
        };
        Ok(Stmt {
            db: self,
            sql: sql.to_string(),
            sqlite,
        })
    }

    pub fn prepare_cached(&self, sql: &str) -> Result<Stmt<'_>> {
        self.prepare(sql)
    }

    /// The id of the row the last `INSERT` on this connection created
    /// (PostgreSQL: `lastval()`, the identity sequence's last value).
    pub fn last_insert_rowid(&self) -> Result<i64> {
        match &self.conn {
            Conn::Sqlite(c) => Ok(c.last_insert_rowid()),
            Conn::Pg(_) => self.query_row("SELECT lastval()", [], |r| r.get(0)),
        }
    }
}

/// Rows of a query, read one at a time (`while let Some(r) = rows.next()?`).
/// SQLite streams them; PostgreSQL's arrive whole.
pub enum Rows<'s> {
    Sqlite(rusqlite::Rows<'s>),
    Pg {
        rows: std::vec::IntoIter<postgres::Row>,
        current: Option<postgres::Row>,
    },
}

impl Rows<'_> {
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<Row<'_>>> {
        match self {
            Rows::Sqlite(r) => Ok(r.next()?.map(Row::Sqlite)),
            Rows::Pg { rows, current } => {
                *current = rows.next();
                Ok(current.as_ref().map(Row::Pg))
            }
        }
    }
}

impl Stmt<'_> {
    pub fn execute<P: Params>(&mut self, params: P) -> Result<usize> {
        match &mut self.sqlite {
            Some(st) => Ok(st.execute(rusqlite::params_from_iter(params.values().iter()))?),
            None => self.db.execute(&self.sql, params),
        }
    }

    pub fn query<P: Params>(&mut self, params: P) -> Result<Rows<'_>> {
        match &mut self.sqlite {
            Some(st) => Ok(Rows::Sqlite(
                st.query(rusqlite::params_from_iter(params.values().into_iter()))?,
            )),
            None => Ok(Rows::Pg {
                rows: self.db.pg_rows(&self.sql, params.values())?.into_iter(),
                current: None,
            }),
        }
    }

    pub fn query_map<T, P: Params>(
        &mut self,
        params: P,
        mut f: impl FnMut(&Row<'_>) -> Result<T>,
    ) -> Result<std::vec::IntoIter<Result<T>>> {
        let mut out = Vec::new();
        let mut rows = self.query(params)?;
        while let Some(r) = rows.next()? {
            out.push(Ok(f(&r)?));
        }
        Ok(out.into_iter())
    }

    pub fn query_row<T, P: Params>(
        &mut self,
        params: P,
        f: impl FnOnce(&Row<'_>) -> Result<T>,
    ) -> Result<T> {
        let mut rows = self.query(params)?;
        match rows.next()? {
            Some(r) => f(&r),
            None => Err(Error::not_found(NO_ROWS)),
        }
    }

    pub fn for_each<P: Params>(
        &mut self,
        params: P,
        mut f: impl FnMut(&Row<'_>) -> Result<()>,
    ) -> Result<()> {
        let mut rows = self.query(params)?;
        while let Some(r) = rows.next()? {
            f(&r)?;
        }
        Ok(())
    }

    pub fn exists<P: Params>(&mut self, params: P) -> Result<bool> {
        let mut rows = self.query(params)?;
        Ok(rows.next()?.is_some())
    }
}

/// Parameters from an iterator of values.
pub fn params_from_iter<I>(iter: I) -> Vec<Value>
where
    I: IntoIterator,
    I::Item: ToValue,
{
    iter.into_iter().map(|v| v.to_value()).collect()
}

/// The message of the error [`Db::query_row`] gives when there is no row.
const NO_ROWS: &str = "database error: Query returned no rows";

/// `.optional()` on a `query_row` result: no row is `None`.
pub trait OptionalExtension<T> {
    fn optional(self) -> Result<Option<T>>;
}

impl<T> OptionalExtension<T> for Result<T> {
    fn optional(self) -> Result<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.code == ErrorCode::NotFound && e.message == NO_ROWS => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn pg_refs(values: &[Value]) -> Vec<&(dyn postgres::types::ToSql + Sync)> {
    values
        .iter()
        .map(|v| v as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

/// A transaction (or savepoint) on a [`Db`]; derefs to it.
pub struct Tx<'a> {
    db: &'a Db,
    level: u32,
    done: bool,
}

impl Tx<'_> {
    pub fn commit(mut self) -> Result<()> {
        self.done = true;
        self.db.depth.set(self.level);
        if self.level == 0 {
            self.db.execute_batch("COMMIT")
        } else {
            self.db.execute_batch(&format!("RELEASE sp{}", self.level))
        }
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Db;
    fn deref(&self) -> &Db {
        self.db
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.db.depth.set(self.level);
            let sql = if self.level == 0 {
                "ROLLBACK".to_string()
            } else {
                format!("ROLLBACK TO sp{0}; RELEASE sp{0}", self.level)
            };
            if let Err(e) = self.db.execute_batch(&sql) {
                tracing::warn!(error = %e, "rollback failed");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Errors

/// The advisory lock key that serializes writers on PostgreSQL ("CUST").
pub const WRITE_LOCK: i64 = 0x4355_5354;

/// SQLSTATEs worth retrying the whole transaction for.
pub const SERIALIZATION_FAILURE: &str = "40001";
pub const DEADLOCK_DETECTED: &str = "40P01";

/// A PostgreSQL error with a code the UI acts on and the server's words.
pub(crate) fn pg_error(e: postgres::Error) -> Error {
    if let Some(db) = e.as_db_error() {
        let state = db.code().code();
        let code = match state {
            "42501" => ErrorCode::Forbidden,
            "40001" | "40P01" => ErrorCode::Conflict,
            s if s.starts_with("08") => ErrorCode::Network,
            "28000" | "28P01" => ErrorCode::DatabaseAuth,
            "3D000" => ErrorCode::NotFound,
            // A governance rule raised by a trigger or function.
            "P0001" => ErrorCode::Forbidden,
            _ => ErrorCode::Storage,
        };
        let mut msg = format!("database error [{state}]: {}", db.message());
        if let Some(d) = db.detail() {
            msg.push_str(&format!(" ({d})"));
        }
        return Error::new(code, msg);
    }
    if e.is_closed() {
        return Error::new(
            ErrorCode::Network,
            "the connection to the PostgreSQL server was closed; reconnect and try again",
        );
    }
    Error::new(ErrorCode::Network, format!("PostgreSQL: {e}"))
}

/// Like [`pg_error`], naming the statement (its start) for the log and
/// the developer: the statement is the program's own, not user data.
fn pg_error_in(e: postgres::Error, sql: &str) -> Error {
    let mut err = pg_error(e);
    if err.code == ErrorCode::Storage {
        let one_line: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
        let head: String = one_line.chars().take(160).collect();
        err.message.push_str(&format!(" in: {head}"));
    }
    err
}

/// True when `e` is a failure that retrying the whole transaction may cure.
pub fn is_retryable(e: &Error) -> bool {
    e.code == ErrorCode::Conflict
}

/// Runs `f` (one whole transaction) again on serialization failures and
/// deadlocks, a bounded number of times with jittered backoff.
pub fn with_retry<T>(mut f: impl FnMut() -> Result<T>) -> Result<T> {
    let mut attempt = 0u32;
    loop {
        match f() {
            Err(e) if is_retryable(&e) && attempt < 8 => {
                attempt += 1;
                let mut b = [0u8; 2];
                let _ = getrandom::getrandom(&mut b);
                let jitter = u64::from(u16::from_le_bytes(b)) % (10u64 << attempt.min(5));
                tracing::debug!(attempt, error = %e, "retrying a transaction");
                std::thread::sleep(std::time::Duration::from_millis(jitter + 1));
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_numbered() {
        assert_eq!(to_postgres("SELECT ?1, ?2, ?1"), "SELECT $1, $2, $1");
        assert_eq!(to_postgres("a = ? AND b = ?"), "a = $1 AND b = $2");
        assert_eq!(to_postgres("a = ?3 AND b = ?"), "a = $3 AND b = $4");
    }

    #[test]
    fn literals_and_comments_are_kept() {
        assert_eq!(
            to_postgres("SELECT '?1 LIKE temp.x', \"a?\" -- ? LIKE\n FROM t WHERE x LIKE ?"),
            "SELECT '?1 LIKE temp.x', \"a?\" -- ? LIKE\n FROM t WHERE x ILIKE $1"
        );
        assert_eq!(to_postgres("SELECT 'it''s ?' , ?"), "SELECT 'it''s ?' , $1");
    }

    #[test]
    fn like_becomes_ilike_only_as_a_word() {
        assert_eq!(to_postgres("a NOT LIKE b"), "a NOT ILIKE b");
        assert_eq!(to_postgres("unliked LIKEly"), "unliked LIKEly");
        assert_eq!(to_postgres("x like 'a%'"), "x ILIKE 'a%'");
    }

    #[test]
    fn functions_with_other_names_are_renamed() {
        assert_eq!(
            to_postgres("SELECT json_object('a', 1), last_insert_rowid(), my_json_object(1), 'json_object('"),
            "SELECT json_build_object('a', 1), lastval(), my_json_object(1), 'json_object('"
        );
    }

    #[test]
    fn temp_schema_prefix_is_dropped() {
        assert_eq!(
            to_postgres("DELETE FROM temp.scope; SELECT attempt.x FROM temp.scope"),
            "DELETE FROM scope; SELECT attempt.x FROM scope"
        );
    }

    #[test]
    fn non_ascii_text_survives() {
        assert_eq!(
            to_postgres("SELECT 'Zoë' || ? -- ünï"),
            "SELECT 'Zoë' || $1 -- ünï"
        );
        assert_eq!(to_postgres("SELECT é, ?"), "SELECT é, $1");
    }

    #[test]
    fn values_convert_both_ways() {
        assert_eq!(i64::from_value(Value::Int(5)), Ok(5));
        assert_eq!(i64::from_value(Value::Real(7.0)), Ok(7));
        assert!(i64::from_value(Value::Real(7.5)).is_err());
        assert_eq!(bool::from_value(Value::Int(1)), Ok(true));
        assert_eq!(Option::<String>::from_value(Value::Null), Ok(None));
        assert_eq!(u32::from_value(Value::Int(-1)).is_err(), true);
        assert_eq!(true.to_value(), Value::Int(1));
        assert_eq!(Some("a").to_value(), Value::Text("a".into()));
        assert_eq!(None::<i64>.to_value(), Value::Null);
    }

    fn numeric(words: &[i16]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_be_bytes()).collect()
    }

    #[test]
    fn numeric_decodes() {
        // 12345678 = [1234, 5678], weight 1
        let v = pgtypes::numeric_value(&numeric(&[2, 1, 0, 0, 1234, 5678])).unwrap();
        assert_eq!(v, Value::Int(12_345_678));
        // -20000 = [2], weight 1, negative
        let v = pgtypes::numeric_value(&numeric(&[1, 1, 0x4000, 0, 2])).unwrap();
        assert_eq!(v, Value::Int(-20_000));
        // 0
        assert_eq!(
            pgtypes::numeric_value(&numeric(&[0, 0, 0, 0])).unwrap(),
            Value::Int(0)
        );
        // 1.5 = [1, 5000], weight 0, dscale 1
        let v = pgtypes::numeric_value(&numeric(&[2, 0, 0, 1, 1, 5000])).unwrap();
        assert_eq!(v, Value::Real(1.5));
        assert!(pgtypes::numeric_value(&[0, 1]).is_err());
    }

    #[test]
    fn sqlite_transactions_roll_back_on_drop_and_nest() {
        let db = Db::sqlite(rusqlite::Connection::open_in_memory().unwrap());
        db.execute_batch("CREATE TABLE t (x INTEGER)").unwrap();
        {
            let tx = db.transaction().unwrap();
            tx.execute("INSERT INTO t VALUES (?1)", params![1]).unwrap();
            {
                let inner = tx.transaction().unwrap();
                inner
                    .execute("INSERT INTO t VALUES (?1)", params![2])
                    .unwrap();
                // dropped: rolls back to the savepoint
            }
            tx.commit().unwrap();
        }
        {
            let tx = db.transaction().unwrap();
            tx.execute("INSERT INTO t VALUES (?1)", [3]).unwrap();
        }
        let xs: Vec<i64> = db
            .query_map("SELECT x FROM t ORDER BY x", [], |r| r.get(0))
            .unwrap();
        assert_eq!(xs, vec![1]);
        assert!(!db.in_transaction());
        let none = db
            .query_opt("SELECT x FROM t WHERE x = ?1", [9], |r| r.get::<i64>(0))
            .unwrap();
        assert_eq!(none, None);
        let e = db
            .query_row("SELECT x FROM t WHERE x = ?1", [9], |r| r.get::<i64>(0))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::NotFound);
    }
}
impl Db {
    /// `n` fresh ids for rows of `table` that the caller inserts with
    /// explicit ids, so other rows can point at them before they are
    /// written. SQLite: the ids it would assign itself (`max(id) + 1`
    /// onwards; only valid inside a write transaction, which holds the
    /// write lock, and with every insert into `table` until then using
    /// them); PostgreSQL: `n` values of the table's identity sequence in
    /// one round trip. `table` is the program's own name, never input.
    pub fn reserve_ids(&self, table: &str, n: usize) -> Result<Vec<i64>> {
        if n == 0 {
            return Ok(Vec::new());
        }
        match self.engine() {
            Engine::Sqlite => {
                let next: i64 = self.query_row(
                    &format!("SELECT coalesce(max(id), 0) + 1 FROM {table}"),
                    [],
                    |r| r.get(0),
                )?;
                Ok((0..n as i64).map(|k| next + k).collect())
            }
            Engine::Postgres => self.query_map(
                &format!(
                    "SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, ?1::bigint)"
                ),
                [n as i64],
                |r| r.get(0),
            ),
        }
    }
}

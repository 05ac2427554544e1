//! The narrow interface the shared store logic ([`crate::logic`]) is written against, and the values that
//! cross it. A backend provides a [`Conn`] (run a statement, fetch rows of [`Value`]s) and runs one logic
//! future per store call, as a transaction or as plain reads ([`Backend`]).
//!
//! SQL is written once with PostgreSQL's `$N` placeholders; SQLite's [`Conn`] rewrites them to `?N`.
//! Everything else the logic uses is the common dialect of SQLite 3.46 and PostgreSQL 15: `RETURNING`,
//! `ON CONFLICT`, `CAST(x AS BIGINT)`, literal `IN (...)` lists. Integers are `BIGINT` (`INTEGER` in SQLite),
//! booleans `BOOLEAN` (`0`/`1` in SQLite: [`Row::bool`] reads both).

use crate::cache::SpecCache;
use crate::codec::corrupt;
use crate::error::StoreError;
use crate::store::StoreResult;
use async_trait::async_trait;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A statement parameter or a column value.
#[derive(Clone, PartialEq, Debug)]
pub enum Value {
    Null,
    I64(i64),
    Text(String),
    Bool(bool),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::I64(v)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::I64(i64::from(v))
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::I64(i64::from(v))
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// `[a.into(), b.into(), ...]` as an array of [`Value`]s.
macro_rules! vals {
    ($($v:expr),* $(,)?) => { [$($crate::backend::Value::from($v)),*] };
}
pub(crate) use vals;

/// One result row.
#[derive(Clone, PartialEq, Debug)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn at(&self, i: usize) -> StoreResult<&Value> {
        self.0
            .get(i)
            .ok_or_else(|| corrupt("(row)", "(column)", format!("no column {i}")))
    }
    fn bad(&self, i: usize, want: &str) -> StoreError {
        corrupt(
            "(row)",
            "(column)",
            format!("column {i} is {:?}, expected {want}", self.0.get(i)),
        )
    }
    pub fn opt_i64(&self, i: usize) -> StoreResult<Option<i64>> {
        match self.at(i)? {
            Value::Null => Ok(None),
            Value::I64(v) => Ok(Some(*v)),
            _ => Err(self.bad(i, "an integer")),
        }
    }
    pub fn i64(&self, i: usize) -> StoreResult<i64> {
        self.opt_i64(i)?.ok_or_else(|| self.bad(i, "an integer"))
    }
    pub fn opt_str(&self, i: usize) -> StoreResult<Option<&str>> {
        match self.at(i)? {
            Value::Null => Ok(None),
            Value::Text(s) => Ok(Some(s)),
            _ => Err(self.bad(i, "text")),
        }
    }
    pub fn str(&self, i: usize) -> StoreResult<&str> {
        self.opt_str(i)?.ok_or_else(|| self.bad(i, "text"))
    }
    pub fn opt_string(&self, i: usize) -> StoreResult<Option<String>> {
        Ok(self.opt_str(i)?.map(str::to_owned))
    }
    pub fn string(&self, i: usize) -> StoreResult<String> {
        Ok(self.str(i)?.to_owned())
    }
    pub fn bool(&self, i: usize) -> StoreResult<bool> {
        match self.at(i)? {
            Value::Bool(b) => Ok(*b),
            Value::I64(0) => Ok(false),
            Value::I64(1) => Ok(true),
            _ => Err(self.bad(i, "a boolean")),
        }
    }
}

/// A connection (or a transaction on one) the shared logic runs statements on.
#[async_trait]
pub trait Conn: Send {
    /// Runs a statement; the number of rows it changed.
    async fn exec(&mut self, sql: &str, params: &[Value]) -> StoreResult<u64>;
    /// Runs a query; every row.
    async fn query(&mut self, sql: &str, params: &[Value]) -> StoreResult<Vec<Row>>;
    /// Runs an `INSERT` of one row (written without `RETURNING`) and returns the new row's integer `id`, or
    /// `None` when it inserted nothing (`ON CONFLICT DO NOTHING`). The dialect hook for returning ids: SQLite
    /// reads `last_insert_rowid()`, PostgreSQL appends `RETURNING id`.
    async fn insert_id(&mut self, sql: &str, params: &[Value]) -> StoreResult<Option<i64>>;
    /// Runs a query; the first row, if any.
    async fn query_opt(&mut self, sql: &str, params: &[Value]) -> StoreResult<Option<Row>> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }
}

/// The future of one store call's logic, borrowing the connection it runs on.
pub type LogicFuture<'c, T> = Pin<Box<dyn Future<Output = StoreResult<T>> + Send + 'c>>;
/// One store call's logic: given a connection, the work to do on it.
pub type Logic<T> = Box<dyn for<'c> FnOnce(&'c mut dyn Conn) -> LogicFuture<'c, T> + Send>;

/// Boxes a logic closure (and gives it its higher-ranked signature, which a closure passed to `Box::new`
/// would not get).
pub fn logic<T, F>(f: F) -> Logic<T>
where
    F: for<'c> FnOnce(&'c mut dyn Conn) -> LogicFuture<'c, T> + Send + 'static,
{
    Box::new(f)
}

/// What a database backend provides to the shared [`crate::Store`] implementation.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// `"sqlite"` or `"postgres"`.
    const NAME: &'static str;
    /// The random id of this database, embedded in attempt idempotency keys.
    fn instance(&self) -> &str;
    fn specs(&self) -> &Arc<SpecCache>;
    /// [`crate::Store::schedule_queue`]'s query of `cols` with `LIMIT $1`: the `jobs_schedule` index's
    /// predicate and order, which differ per database (migration 4).
    fn schedule_sql(cols: &str) -> String;
    /// Runs `f` on a connection without a transaction (reads).
    async fn read<T: Send + 'static>(&self, f: Logic<T>) -> StoreResult<T>;
    /// Runs `f` in one transaction: committed if `f` returns `Ok`, rolled back otherwise. Writers to one
    /// database are serialised per row (PostgreSQL) or per database (SQLite, `BEGIN IMMEDIATE`).
    async fn write<T: Send + 'static>(&self, f: Logic<T>) -> StoreResult<T>;
}

/// Drives a future that completes without waiting on anything outside this thread (SQLite's statements are
/// synchronous calls), parking the thread if it ever does return `Pending`.
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

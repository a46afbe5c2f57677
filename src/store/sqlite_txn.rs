//! A SQLite transaction on a connection of the decision writer's own, that sea-orm statements run
//! in as well: the writer's batch insert binds thousands of values, and through sea-orm every
//! bound value is cloned once more before sqlx binds it (its driver copies the statement's
//! values); here the rows' strings move straight into sqlx's arguments. The decision log's head lock, duplicate check
//! and Merkle append are the same sea-orm code as on PostgreSQL, run through this transaction via
//! [`ConnectionTrait`], so all of a batch still commits or none of it does.

use std::sync::Arc;

use sea_orm::sqlx::{self, AssertSqlSafe, ConnectOptions, SqliteConnection, SqlitePool, sqlite::SqliteArguments};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, ExecResult, QueryResult, RuntimeErr, Statement};
use sea_query_sqlx::SqlxValues;
use tokio::sync::{Mutex, OwnedMutexGuard};

/// The decision writer's own connection to the SQLite file, beside the pool and opened with the
/// pool's options when first needed. Every batch goes through this one connection, so only it
/// prepares the writer's large multi-row statements, and its page cache keeps the tails of the
/// decision tables that every batch writes to; through the pool, each batch landed on whichever
/// connection was free, with a cold cache and its own copies of the statements. After an error the
/// connection is closed, which rolls back what it had open, and the next batch opens another.
pub(crate) type WriterConnection = Arc<Mutex<Option<SqliteConnection>>>;

/// An open transaction on the [`WriterConnection`]; dropped without [`SqliteTxn::commit`], it
/// rolls back (by closing the connection).
pub(super) struct SqliteTxn {
    conn: Mutex<OwnedMutexGuard<Option<SqliteConnection>>>,
    open: bool,
}

fn exec_err(e: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(e.into()))
}

fn query_err(e: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(e.into()))
}

fn conn_err(e: sqlx::Error) -> DbErr {
    DbErr::Conn(RuntimeErr::SqlxError(e.into()))
}

fn closed() -> DbErr {
    conn_err(sqlx::Error::PoolClosed)
}

/// A sea-orm statement as sqlx's text and arguments.
fn parts(stmt: Statement) -> (AssertSqlSafe<String>, SqlxValues) {
    (AssertSqlSafe(stmt.sql), SqlxValues(stmt.values.unwrap_or(sea_orm::Values(Vec::new()))))
}

impl SqliteTxn {
    /// Begins a transaction on `writer`, opening it with `pool`'s options if it is not open.
    pub(super) async fn begin(writer: &WriterConnection, pool: &SqlitePool) -> Result<Self, DbErr> {
        let mut guard = writer.clone().lock_owned().await;
        if guard.is_none() {
            *guard = Some(pool.connect_options().connect().await.map_err(conn_err)?);
        }
        let begun = match guard.as_mut() {
            Some(conn) => sqlx::raw_sql("BEGIN").execute(conn).await.map_err(conn_err),
            None => Err(closed()),
        };
        if let Err(e) = begun {
            *guard = None;
            return Err(e);
        }
        Ok(Self { conn: Mutex::new(guard), open: true })
    }

    /// Runs `sql` (a statement text of `'static` life, so sqlx prepares it once) with arguments
    /// bound already; returns the rows it changed.
    pub(super) async fn execute_bound(&self, sql: &'static str, args: SqliteArguments) -> Result<u64, DbErr> {
        let mut guard = self.conn.lock().await;
        let conn = guard.as_mut().ok_or_else(closed)?;
        Ok(sqlx::query_with(sql, args).execute(conn).await.map_err(exec_err)?.rows_affected())
    }

    pub(super) async fn commit(mut self) -> Result<(), DbErr> {
        let mut guard = self.conn.lock().await;
        let conn = guard.as_mut().ok_or_else(closed)?;
        sqlx::raw_sql("COMMIT").execute(conn).await.map_err(exec_err)?;
        drop(guard);
        self.open = false;
        Ok(())
    }
}

impl Drop for SqliteTxn {
    fn drop(&mut self) {
        if self.open {
            // Closing the connection rolls its transaction back; the next batch opens another.
            self.conn.get_mut().take();
        }
    }
}

#[tonic::async_trait]
impl ConnectionTrait for SqliteTxn {
    fn get_database_backend(&self) -> DbBackend {
        DbBackend::Sqlite
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        let mut guard = self.conn.lock().await;
        let conn = guard.as_mut().ok_or_else(closed)?;
        let (sql, values) = parts(stmt);
        let done = sqlx::query_with(sql, values).execute(conn).await.map_err(exec_err)?;
        Ok(done.into())
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let mut guard = self.conn.lock().await;
        let conn = guard.as_mut().ok_or_else(closed)?;
        let done = sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).execute(conn).await.map_err(exec_err)?;
        Ok(done.into())
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let mut guard = self.conn.lock().await;
        let conn = guard.as_mut().ok_or_else(closed)?;
        let (sql, values) = parts(stmt);
        let row = sqlx::query_with(sql, values).fetch_optional(conn).await.map_err(query_err)?;
        Ok(row.map(Into::into))
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let mut guard = self.conn.lock().await;
        let conn = guard.as_mut().ok_or_else(closed)?;
        let (sql, values) = parts(stmt);
        let rows = sqlx::query_with(sql, values).fetch_all(conn).await.map_err(query_err)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

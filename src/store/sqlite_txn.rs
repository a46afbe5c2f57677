//! A SQLite transaction held by sqlx itself, that sea-orm statements run in as well: for the
//! decision writer, whose batch insert binds thousands of values. Through sea-orm every bound value
//! is cloned once more before sqlx binds it (its driver copies the statement's values); here the
//! rows' strings move straight into sqlx's arguments. The decision log's head lock, duplicate check
//! and Merkle append are the same sea-orm code as on PostgreSQL, run through this transaction via
//! [`ConnectionTrait`], so all of a batch still commits or none of it does.

use sea_orm::sqlx::{self, AssertSqlSafe, Sqlite, sqlite::SqliteArguments};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, ExecResult, QueryResult, RuntimeErr, Statement};
use sea_query_sqlx::SqlxValues;
use tokio::sync::Mutex;

/// An open SQLite transaction; dropped without [`SqliteTxn::commit`], it rolls back.
pub(super) struct SqliteTxn(Mutex<sqlx::Transaction<'static, Sqlite>>);

fn exec_err(e: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(e.into()))
}

fn query_err(e: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(e.into()))
}

/// A sea-orm statement as sqlx's text and arguments.
fn parts(stmt: Statement) -> (AssertSqlSafe<String>, SqlxValues) {
    (AssertSqlSafe(stmt.sql), SqlxValues(stmt.values.unwrap_or(sea_orm::Values(Vec::new()))))
}

impl SqliteTxn {
    /// Begins a transaction on a connection of `db`'s pool, which must be SQLite's.
    pub(super) async fn begin(db: &DatabaseConnection) -> Result<Self, DbErr> {
        let txn =
            db.get_sqlite_connection_pool().begin().await.map_err(|e| DbErr::Conn(RuntimeErr::SqlxError(e.into())))?;
        Ok(Self(Mutex::new(txn)))
    }

    /// Runs `sql` (a statement text of `'static` life, so sqlx prepares it once per connection)
    /// with arguments bound already; returns the rows it changed.
    pub(super) async fn execute_bound(&self, sql: &'static str, args: SqliteArguments) -> Result<u64, DbErr> {
        let mut txn = self.0.lock().await;
        Ok(sqlx::query_with(sql, args).execute(&mut **txn).await.map_err(exec_err)?.rows_affected())
    }

    pub(super) async fn commit(self) -> Result<(), DbErr> {
        self.0.into_inner().commit().await.map_err(exec_err)
    }
}

#[tonic::async_trait]
impl ConnectionTrait for SqliteTxn {
    fn get_database_backend(&self) -> DbBackend {
        DbBackend::Sqlite
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        let mut txn = self.0.lock().await;
        let (sql, values) = parts(stmt);
        let done = sqlx::query_with(sql, values).execute(&mut **txn).await.map_err(exec_err)?;
        Ok(done.into())
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let mut txn = self.0.lock().await;
        let done = sqlx::raw_sql(AssertSqlSafe(sql.to_owned())).execute(&mut **txn).await.map_err(exec_err)?;
        Ok(done.into())
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let mut txn = self.0.lock().await;
        let (sql, values) = parts(stmt);
        let row = sqlx::query_with(sql, values).fetch_optional(&mut **txn).await.map_err(query_err)?;
        Ok(row.map(Into::into))
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let mut txn = self.0.lock().await;
        let (sql, values) = parts(stmt);
        let rows = sqlx::query_with(sql, values).fetch_all(&mut **txn).await.map_err(query_err)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }
}

//! One statement text for the three connections a call's writes may run on.
//!
//! A call's ledger writes (hold, answer checkpoint, settle and what they touch) are written
//! once against [`Exec`]: on PostgreSQL and on SQLite's pooled connections they run through
//! sqlx, and on the SQLite writer they run through rusqlite on the calling thread
//! ([`Exec::Direct`]). sqlx runs each SQLite statement on a connection thread of its own, and
//! the hand-off there and back costs about six times the statement (the `sync_writer` bench:
//! 515-578 µs of CPU a call through sqlx, 78-93 µs through rusqlite with the same SQL), so
//! the writer every call waits for is kept on the thread that asks.
//!
//! Parameters are `$1`, `$2`, ... as PostgreSQL writes them. SQLite numbers such names by
//! their first appearance in the text, not by their digits, so [`Exec::Direct`] binds each by
//! its name. Columns travel as `i64` and text (with `Option` for NULL), the types every
//! backend decodes alike.

use sqlx::Row;
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{PgConnection, Postgres, Sqlite, SqliteConnection};

use crate::error::StoreError;

/// A connection a statement runs on.
pub(crate) enum Exec<'c> {
    Sqlite(&'c mut SqliteConnection),
    Postgres(&'c mut PgConnection),
    /// The SQLite writer's rusqlite connection, run on the calling thread.
    Direct(&'c mut rusqlite::Connection),
    /// A call's pipelined PostgreSQL connection (`pipeline.rs`).
    Pipelined(&'c mut crate::pipeline::PgCall),
}

/// A statement parameter.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Arg<'a> {
    Int(Option<i64>),
    Text(Option<&'a str>),
}

impl From<i64> for Arg<'_> {
    fn from(value: i64) -> Self {
        Arg::Int(Some(value))
    }
}

impl From<Option<i64>> for Arg<'_> {
    fn from(value: Option<i64>) -> Self {
        Arg::Int(value)
    }
}

impl<'a> From<&'a str> for Arg<'a> {
    fn from(value: &'a str) -> Self {
        Arg::Text(Some(value))
    }
}

impl<'a> From<&'a String> for Arg<'a> {
    fn from(value: &'a String) -> Self {
        Arg::Text(Some(value))
    }
}

impl<'a> From<Option<&'a str>> for Arg<'a> {
    fn from(value: Option<&'a str>) -> Self {
        Arg::Text(value)
    }
}

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Arg::Int(Some(value)) => ValueRef::Integer(value),
            Arg::Text(Some(value)) => ValueRef::Text(value.as_bytes()),
            Arg::Int(None) | Arg::Text(None) => ValueRef::Null,
        }))
    }
}

/// A column type every backend decodes alike.
pub(crate) trait Column:
    Sized
    + Send
    + Unpin
    + for<'r> sqlx::Decode<'r, Sqlite>
    + sqlx::Type<Sqlite>
    + for<'r> sqlx::Decode<'r, Postgres>
    + sqlx::Type<Postgres>
    + rusqlite::types::FromSql
    + for<'r> tokio_postgres::types::FromSql<'r>
{
}

impl Column for i64 {}
impl Column for Option<i64> {}
impl Column for String {}
impl Column for Option<String> {}

/// A row as a tuple of [`Column`]s.
pub(crate) trait Record: Sized + Send + Unpin {
    fn from_sqlite(row: &SqliteRow) -> Result<Self, sqlx::Error>;
    fn from_postgres(row: &PgRow) -> Result<Self, sqlx::Error>;
    fn from_direct(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self>;
    fn from_pipelined(row: &tokio_postgres::Row) -> Result<Self, tokio_postgres::Error>;
}

macro_rules! record_tuple {
    ($($column:ident $index:tt),+) => {
        impl<$($column: Column),+> Record for ($($column,)+) {
            fn from_sqlite(row: &SqliteRow) -> Result<Self, sqlx::Error> {
                Ok(($(row.try_get::<$column, _>($index)?,)+))
            }
            fn from_postgres(row: &PgRow) -> Result<Self, sqlx::Error> {
                Ok(($(row.try_get::<$column, _>($index)?,)+))
            }
            fn from_direct(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                Ok(($(row.get::<_, $column>($index)?,)+))
            }
            fn from_pipelined(row: &tokio_postgres::Row) -> Result<Self, tokio_postgres::Error> {
                Ok(($(row.try_get::<_, $column>($index)?,)+))
            }
        }
    };
}

record_tuple!(A 0);
record_tuple!(A 0, B 1);
record_tuple!(A 0, B 1, C 2);
record_tuple!(A 0, B 1, C 2, D 3);
record_tuple!(A 0, B 1, C 2, D 3, E 4);
record_tuple!(A 0, B 1, C 2, D 3, E 4, F 5);
record_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6);
record_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
record_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
record_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
record_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
record_tuple!(A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);

/// Binds `args` to a sqlx query in order (`$1` first).
fn bind_all<'q, DB>(
    mut query: sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>,
    args: &[Arg<'_>],
) -> sqlx::query::Query<'q, DB, <DB as sqlx::Database>::Arguments>
where
    DB: sqlx::Database,
    for<'t> Option<i64>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
    for<'t> Option<&'t str>: sqlx::Encode<'t, DB> + sqlx::Type<DB>,
{
    for arg in args {
        query = match *arg {
            Arg::Int(value) => query.bind(value),
            Arg::Text(value) => query.bind(value),
        };
    }
    query
}

/// Prepares (or takes from the connection's cache) `sql` and binds each `$N` to `args[N-1]`.
fn prepare_direct<'c>(
    connection: &'c rusqlite::Connection,
    sql: &str,
    args: &[Arg<'_>],
) -> Result<rusqlite::CachedStatement<'c>, StoreError> {
    let mut statement = connection.prepare_cached(sql)?;
    for index in 1..=statement.parameter_count() {
        let number = statement
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$'))
            .and_then(|digits| digits.parse::<usize>().ok())
            .and_then(|number| number.checked_sub(1));
        let arg = number.and_then(|number| args.get(number)).ok_or_else(|| {
            StoreError::InvalidArgument(format!(
                "statement parameter {index} has no argument: {sql}"
            ))
        })?;
        statement.raw_bind_parameter(index, arg)?;
    }
    Ok(statement)
}

impl Exec<'_> {
    /// Runs a statement that returns no rows; returns the rows it changed.
    pub(crate) async fn execute(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<u64, StoreError> {
        Ok(match self {
            Exec::Sqlite(c) => bind_all(sqlx::query(sql), args)
                .execute(&mut **c)
                .await?
                .rows_affected(),
            Exec::Postgres(c) => bind_all(sqlx::query(sql), args)
                .execute(&mut **c)
                .await?
                .rows_affected(),
            Exec::Direct(c) => {
                let changed = prepare_direct(c, sql, args)?.raw_execute()?;
                u64::try_from(changed).unwrap_or(u64::MAX)
            }
            Exec::Pipelined(c) => c.execute(sql, args).await?,
        })
    }

    /// A statement whose answer is not needed. On a pipelined PostgreSQL transaction it
    /// goes out with the next statement that is waited for (or the COMMIT), and its error,
    /// if any, is reported there; elsewhere it runs at once.
    pub(crate) async fn defer(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<(), StoreError> {
        match self {
            Exec::Pipelined(c) => c.defer(sql, args).await,
            _ => self.execute(sql, args).await.map(|_| ()),
        }
    }

    /// The first row, if any.
    pub(crate) async fn fetch_optional<R: Record>(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<Option<R>, StoreError> {
        Ok(match self {
            Exec::Sqlite(c) => bind_all(sqlx::query(sql), args)
                .fetch_optional(&mut **c)
                .await?
                .map(|row| R::from_sqlite(&row))
                .transpose()?,
            Exec::Postgres(c) => bind_all(sqlx::query(sql), args)
                .fetch_optional(&mut **c)
                .await?
                .map(|row| R::from_postgres(&row))
                .transpose()?,
            Exec::Direct(c) => {
                let mut statement = prepare_direct(c, sql, args)?;
                let mut rows = statement.raw_query();
                match rows.next()? {
                    Some(row) => Some(R::from_direct(row)?),
                    None => None,
                }
            }
            Exec::Pipelined(c) => c
                .query(sql, args)
                .await?
                .first()
                .map(R::from_pipelined)
                .transpose()?,
        })
    }

    /// The first row; a statement that returns none is an error.
    pub(crate) async fn fetch_one<R: Record>(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<R, StoreError> {
        self.fetch_optional(sql, args)
            .await?
            .ok_or(StoreError::Database(sqlx::Error::RowNotFound))
    }

    /// Every row.
    pub(crate) async fn fetch_all<R: Record>(
        &mut self,
        sql: &'static str,
        args: &[Arg<'_>],
    ) -> Result<Vec<R>, StoreError> {
        Ok(match self {
            Exec::Sqlite(c) => bind_all(sqlx::query(sql), args)
                .fetch_all(&mut **c)
                .await?
                .iter()
                .map(R::from_sqlite)
                .collect::<Result<_, _>>()?,
            Exec::Postgres(c) => bind_all(sqlx::query(sql), args)
                .fetch_all(&mut **c)
                .await?
                .iter()
                .map(R::from_postgres)
                .collect::<Result<_, _>>()?,
            Exec::Direct(c) => {
                let mut statement = prepare_direct(c, sql, args)?;
                let mut rows = statement.raw_query();
                let mut records = Vec::new();
                while let Some(row) = rows.next()? {
                    records.push(R::from_direct(row)?);
                }
                records
            }
            Exec::Pipelined(c) => c
                .query(sql, args)
                .await?
                .iter()
                .map(R::from_pipelined)
                .collect::<Result<_, _>>()?,
        })
    }

    /// True on PostgreSQL, where the ledger locks rows itself (SQLite's writer holds the
    /// whole database's write lock).
    pub(crate) fn is_postgres(&self) -> bool {
        matches!(self, Exec::Postgres(_) | Exec::Pipelined(_))
    }
}

/// Declares a row struct whose fields, in order, are its statement's columns, and makes it a
/// [`Record`] (each field a [`Column`]).
macro_rules! record_struct {
    (
        $(#[$meta:meta])*
        $visibility:vis struct $name:ident {
            $($(#[$field_meta:meta])* $field_visibility:vis $field:ident: $type:ty),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $visibility struct $name {
            $($(#[$field_meta])* $field_visibility $field: $type),+
        }

        impl $crate::exec::Record for $name {
            fn from_sqlite(row: &sqlx::sqlite::SqliteRow) -> Result<Self, sqlx::Error> {
                let ($($field,)+) =
                    <($($type,)+) as $crate::exec::Record>::from_sqlite(row)?;
                Ok($name { $($field),+ })
            }
            fn from_postgres(row: &sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
                let ($($field,)+) =
                    <($($type,)+) as $crate::exec::Record>::from_postgres(row)?;
                Ok($name { $($field),+ })
            }
            fn from_direct(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
                let ($($field,)+) =
                    <($($type,)+) as $crate::exec::Record>::from_direct(row)?;
                Ok($name { $($field),+ })
            }
            fn from_pipelined(
                row: &tokio_postgres::Row,
            ) -> Result<Self, tokio_postgres::Error> {
                let ($($field,)+) =
                    <($($type,)+) as $crate::exec::Record>::from_pipelined(row)?;
                Ok($name { $($field),+ })
            }
        }
    };
}
pub(crate) use record_struct;

//! Errors of the database layer, classified by the driver's error variant and code (never by message text):
//! an outage, a conflict a retry resolves (deadlock, serialisation failure, SQLite busy), a duplicate, or a
//! fault. Each keeps its cause.

use std::ops::Deref;

use crm_core::CoreError;
use sea_orm::{DbErr, RuntimeErr, SqlErr};

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// What can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not usable.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// The database cannot be reached (connection refused or broken, pool timed out or closed).
    #[error("database unavailable")]
    Unavailable(#[source] DbErr),
    /// The transaction lost a race the database resolves by aborting one side (a deadlock, a serialisation
    /// failure, SQLite's busy or locked); running it again succeeds.
    #[error("transaction conflict; it can be run again")]
    Conflict(#[source] DbErr),
    /// A unique constraint refused the write.
    #[error("duplicate value: {0}")]
    Duplicate(String),
    /// A stored secret could not be opened (usually a changed `SECRET_KEY`).
    #[error(transparent)]
    Secret(#[from] crm_core::secrets::SecretError),
    /// Any other database error: a bug or a schema problem.
    #[error("database error")]
    Database(#[source] DbErr),
}

/// How a database error should be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The database is unreachable.
    Outage,
    /// A deadlock, serialisation failure or busy database: run the transaction again.
    Retryable,
    /// A unique constraint refused the write.
    Duplicate,
    /// Anything else.
    Fault,
}

/// Classifies `error` by the driver's variant and code.
pub fn classify(error: &DbErr) -> Kind {
    if let Some(SqlErr::UniqueConstraintViolation(_)) = error.sql_err() {
        return Kind::Duplicate;
    }
    match error {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Kind::Outage,
        DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner)) => {
            classify_sqlx(inner.deref())
        }
        _ => Kind::Fault,
    }
}

fn classify_sqlx(error: &sea_orm::sqlx::Error) -> Kind {
    use sea_orm::sqlx::Error as E;
    match error {
        E::Io(_) | E::Tls(_) | E::PoolTimedOut | E::PoolClosed | E::WorkerCrashed | E::Protocol(_) => {
            Kind::Outage
        }
        E::Database(database) => {
            if let Some(mysql) = database.try_downcast_ref::<sea_orm::sqlx::mysql::MySqlDatabaseError>() {
                // 1213 deadlock, 1205 lock wait timeout; 2006/2013 the server went away mid-query.
                return match mysql.number() {
                    1213 | 1205 => Kind::Retryable,
                    2006 | 2013 => Kind::Outage,
                    _ => Kind::Fault,
                };
            }
            let code = database.code().unwrap_or_default();
            if database
                .try_downcast_ref::<sea_orm::sqlx::postgres::PgDatabaseError>()
                .is_some()
            {
                // 40001 serialization_failure, 40P01 deadlock_detected, 55P03 lock_not_available; class 08 is
                // a connection exception, 57P01-57P03 an administrator shutdown or restart.
                return match code.deref() {
                    "40001" | "40P01" | "55P03" => Kind::Retryable,
                    c if c.starts_with("08") || c.starts_with("57P0") => Kind::Outage,
                    _ => Kind::Fault,
                };
            }
            if database
                .try_downcast_ref::<sea_orm::sqlx::sqlite::SqliteError>()
                .is_some()
            {
                // Primary result code 5 is SQLITE_BUSY (517 its BUSY_SNAPSHOT form), 6 SQLITE_LOCKED.
                let primary = code.parse::<i32>().unwrap_or(0) & 0xff;
                return match primary {
                    5 | 6 => Kind::Retryable,
                    _ => Kind::Fault,
                };
            }
            Kind::Fault
        }
        _ => Kind::Fault,
    }
}

impl From<DbErr> for StoreError {
    fn from(error: DbErr) -> Self {
        match classify(&error) {
            Kind::Outage => StoreError::Unavailable(error),
            Kind::Retryable => StoreError::Conflict(error),
            Kind::Duplicate => {
                StoreError::Duplicate(error.sql_err().map(|e| e.to_string()).unwrap_or_default())
            }
            Kind::Fault => StoreError::Database(error),
        }
    }
}

impl From<sea_orm::TransactionError<DbErr>> for StoreError {
    fn from(error: sea_orm::TransactionError<DbErr>) -> Self {
        match error {
            sea_orm::TransactionError::Connection(error) | sea_orm::TransactionError::Transaction(error) => {
                error.into()
            }
        }
    }
}

impl StoreError {
    /// Whether running the transaction again can succeed without any change (a deadlock or a busy database).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Conflict(_))
    }
}

impl From<StoreError> for CoreError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) | StoreError::Conflict(_) => {
                CoreError::unavailable_from("the database is unavailable; try again shortly", error)
            }
            StoreError::Duplicate(_) => CoreError::Conflict {
                code: "duplicate",
                message: "This already exists.".into(),
            },
            StoreError::InvalidUrl(_) | StoreError::Secret(_) | StoreError::Database(_) => {
                let message = error.to_string();
                CoreError::internal_from(message, error)
            }
        }
    }
}

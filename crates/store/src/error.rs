//! Errors of the database layer.

use sea_orm::{DbErr, RuntimeErr, SqlErr};

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// What can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database URL is not usable.
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// The database cannot be reached (connection refused, pool timed out, closed).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A unique constraint refused the write.
    #[error("duplicate value: {0}")]
    Duplicate(String),
    /// A stored secret could not be opened (usually a changed `SECRET_KEY`).
    #[error(transparent)]
    Secret(#[from] crm_core::secrets::SecretError),
    /// Any other database error; a bug or a schema problem.
    #[error("database error: {0}")]
    Database(DbErr),
}

impl From<DbErr> for StoreError {
    fn from(error: DbErr) -> Self {
        if let Some(SqlErr::UniqueConstraintViolation(detail)) = error.sql_err() {
            return StoreError::Duplicate(detail);
        }
        match &error {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => StoreError::Unavailable(error.to_string()),
            DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner))
                if is_connection_error(&inner.to_string()) =>
            {
                StoreError::Unavailable(error.to_string())
            }
            _ => StoreError::Database(error),
        }
    }
}

fn is_connection_error(text: &str) -> bool {
    let text = text.to_ascii_lowercase();
    [
        "pool timed out",
        "pool closed",
        "connection refused",
        "broken pipe",
        "connection reset",
        "io error",
        "error communicating",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

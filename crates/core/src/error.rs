//! The error cases every use case can end in; the web layer maps each to an HTTP status and a stable code.

use std::time::Duration;

/// Result of a domain operation.
pub type CoreResult<T> = Result<T, CoreError>;

/// What went wrong, in terms a caller can act on. Messages are safe to show to users; internals never go here.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CoreError {
    /// The caller did not prove who they are (missing, bad or revoked credentials).
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller is known but their role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// The object does not exist, or is outside the caller's reach (never say which).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with stored state (a duplicate, a limit reached).
    #[error("{message}")]
    Conflict {
        /// Machine-readable reason, for example `username_taken`.
        code: &'static str,
        /// Human message.
        message: String,
    },
    /// The input is not acceptable.
    #[error("{message}")]
    Invalid {
        /// Machine-readable reason, for example `invalid_field`.
        code: &'static str,
        /// Human message naming the field and the rule.
        message: String,
    },
    /// Too many attempts; try again after the given time.
    #[error("{message}")]
    RateLimited {
        /// How long the caller should wait.
        retry_after: Duration,
        /// Human message.
        message: String,
    },
    /// A dependency (database, Telegram, Redis) is not reachable now.
    #[error("{0}")]
    Unavailable(String),
}

impl CoreError {
    /// An `Invalid` error with the generic `invalid_field` code.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid {
            code: "invalid_field",
            message: message.into(),
        }
    }

    /// A `NotFound` error for the given kind of object.
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }
}

//! The error cases every use case can end in; the web layer maps each to an HTTP status and a stable code.

use std::sync::Arc;
use std::time::Duration;

/// Result of a domain operation.
pub type CoreResult<T> = Result<T, CoreError>;

/// The cause behind an outage or an internal fault, kept for logs (never shown to users).
pub type ErrorSource = Arc<dyn std::error::Error + Send + Sync>;

/// What went wrong, in terms a caller can act on. Messages are safe to show to users; internals never go into
/// them, but the underlying cause stays reachable through [`std::error::Error::source`] for logs.
#[derive(Debug, thiserror::Error, Clone)]
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
    /// A dependency (database, Telegram, Redis) is not reachable now; trying again later can help.
    #[error("{message}")]
    Unavailable {
        /// Human message.
        message: String,
        /// What failed underneath.
        #[source]
        source: Option<ErrorSource>,
    },
    /// A fault inside the system (a database error that is not an outage, a broken invariant). The message is
    /// for logs; users see a generic answer.
    #[error("{message}")]
    Internal {
        /// What failed, for logs.
        message: String,
        /// What failed underneath.
        #[source]
        source: Option<ErrorSource>,
    },
}

impl PartialEq for CoreError {
    /// Errors are equal when they are the same case with the same message; sources are not compared.
    fn eq(&self, other: &Self) -> bool {
        use CoreError as E;
        match (self, other) {
            (E::Unauthenticated(a), E::Unauthenticated(b))
            | (E::Forbidden(a), E::Forbidden(b))
            | (E::NotFound(a), E::NotFound(b)) => a == b,
            (E::Conflict { code: a, message: m }, E::Conflict { code: b, message: n })
            | (E::Invalid { code: a, message: m }, E::Invalid { code: b, message: n }) => a == b && m == n,
            (
                E::RateLimited {
                    retry_after: a,
                    message: m,
                },
                E::RateLimited {
                    retry_after: b,
                    message: n,
                },
            ) => a == b && m == n,
            (E::Unavailable { message: m, .. }, E::Unavailable { message: n, .. })
            | (E::Internal { message: m, .. }, E::Internal { message: n, .. }) => m == n,
            _ => false,
        }
    }
}

impl Eq for CoreError {}

impl CoreError {
    /// An `Invalid` error with the generic `invalid_field` code.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid {
            code: "invalid_field",
            message: message.into(),
        }
    }

    /// An `Invalid` error with its own code.
    pub fn invalid_as(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }

    /// A `NotFound` error for the given kind of object.
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(format!("{what} not found"))
    }

    /// An outage without a cause to keep.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable {
            message: message.into(),
            source: None,
        }
    }

    /// An internal fault without a cause to keep.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal {
            message: message.into(),
            source: None,
        }
    }

    /// An outage caused by `source`.
    pub fn unavailable_from(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Unavailable {
            message: message.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// An internal fault caused by `source`.
    pub fn internal_from(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Internal {
            message: message.into(),
            source: Some(Arc::new(source)),
        }
    }

    /// Whether the same call may succeed later without a change of input (an outage).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cause_stays_reachable_but_out_of_the_message() {
        let cause = std::io::Error::other("socket closed by peer 10.0.0.7");
        let error = CoreError::unavailable_from("the database is unreachable", cause);
        assert_eq!(error.to_string(), "the database is unreachable");
        let source = std::error::Error::source(&error).map(ToString::to_string);
        assert_eq!(source.as_deref(), Some("socket closed by peer 10.0.0.7"));
        assert!(error.is_transient());
        assert_eq!(error, CoreError::unavailable("the database is unreachable"));
        assert_ne!(error, CoreError::internal("the database is unreachable"));
    }
}

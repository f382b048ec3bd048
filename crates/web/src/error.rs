//! API errors: every failure leaves as `{"error": "<human message>", "code": "<machine_code>"}` with the right
//! status. Internal details are logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crm_core::CoreError;
use crm_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Human-readable message.
    pub error: String,
    /// Stable machine-readable code.
    pub code: String,
    /// Seconds to wait before retrying (429 only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
}

/// An error a handler returns.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A domain error with its own status.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// Telegram refused or could not be reached during an account operation.
    #[error(transparent)]
    Telegram(#[from] crm_core::personal::UserError),
    /// The request is larger than allowed (413), with a machine code such as `file_too_large`.
    #[error("{message}")]
    TooLarge {
        /// Machine-readable reason.
        code: &'static str,
        /// Human message.
        message: String,
    },
    /// Something broke inside; the message is logged, the client sees a generic one.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The whole chain of causes of `error`, for logs.
fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn telegram_status(error: &crm_core::personal::UserError) -> StatusCode {
    use crm_core::personal::UserError as E;
    match error {
        E::InvalidPhone
        | E::PhoneUnoccupied
        | E::InvalidApiCredentials
        | E::InvalidCode
        | E::CodeExpired
        | E::WrongPassword
        | E::PeerUnavailable(_) => StatusCode::BAD_REQUEST,
        E::Banned => StatusCode::FORBIDDEN,
        E::LoginNotStarted(_) | E::SessionRevoked | E::Duplicated => StatusCode::CONFLICT,
        E::FloodWait(_) => StatusCode::TOO_MANY_REQUESTS,
        E::Network(_) => StatusCode::SERVICE_UNAVAILABLE,
        E::Other(_) => StatusCode::BAD_GATEWAY,
    }
}

impl ApiError {
    /// 400 with a specific code.
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Core(CoreError::Invalid {
            code,
            message: message.into(),
        })
    }

    /// 401.
    pub fn unauthenticated() -> Self {
        ApiError::Core(CoreError::Unauthenticated(
            "Authentication credentials were not provided or are invalid.".into(),
        ))
    }

    /// 403.
    pub fn forbidden() -> Self {
        ApiError::Core(CoreError::Forbidden(
            "You do not have permission to perform this action.".into(),
        ))
    }

    /// 404 for an object of the given kind.
    pub fn not_found(what: &str) -> Self {
        ApiError::Core(CoreError::not_found(what))
    }
}

impl From<crate::rate_limit::PasswordWorkError> for ApiError {
    fn from(error: crate::rate_limit::PasswordWorkError) -> Self {
        match error {
            crate::rate_limit::PasswordWorkError::Busy => ApiError::Core(CoreError::RateLimited {
                retry_after: std::time::Duration::from_secs(2),
                message: "Too many logins at once; try again in a moment.".into(),
            }),
            crate::rate_limit::PasswordWorkError::Failed(detail) => ApiError::Internal(detail),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) | StoreError::Conflict(_) => {
                tracing::warn!(error = %causes(&error), "database unavailable");
                ApiError::Core(CoreError::unavailable(
                    "The database is unavailable; try again shortly.",
                ))
            }
            StoreError::Duplicate(detail) => {
                tracing::debug!(%detail, "unique constraint refused a write");
                ApiError::Core(CoreError::Conflict {
                    code: "duplicate",
                    message: "An object with these values already exists.".into(),
                })
            }
            other => ApiError::Internal(causes(&other)),
        }
    }
}

fn parts(error: &CoreError) -> (StatusCode, &'static str) {
    match error {
        CoreError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "not_authenticated"),
        CoreError::Forbidden(_) => (StatusCode::FORBIDDEN, "permission_denied"),
        CoreError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        CoreError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
        CoreError::Invalid { code, .. } => (StatusCode::BAD_REQUEST, code),
        CoreError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
        CoreError::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        CoreError::Internal { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, body) = match self {
            ApiError::Core(error @ CoreError::Internal { .. }) => {
                tracing::error!(detail = %causes(&error), "request failed");
                let body = ErrorBody {
                    error: "Internal server error.".to_owned(),
                    code: "internal_error".to_owned(),
                    retry_after: None,
                };
                (StatusCode::INTERNAL_SERVER_ERROR, body)
            }
            ApiError::Core(error) => {
                if let CoreError::Unavailable { .. } = &error {
                    tracing::warn!(detail = %causes(&error), "dependency unavailable");
                }
                let (status, code) = parts(&error);
                let retry_after = match &error {
                    CoreError::RateLimited { retry_after, .. } => Some(retry_after.as_secs().max(1)),
                    _ => None,
                };
                (
                    status,
                    ErrorBody {
                        error: error.to_string(),
                        code: code.to_owned(),
                        retry_after,
                    },
                )
            }
            ApiError::Telegram(error) => {
                let retry_after = match &error {
                    crm_core::personal::UserError::FloodWait(wait) => Some(wait.as_secs().max(1)),
                    _ => None,
                };
                (
                    telegram_status(&error),
                    ErrorBody {
                        error: error.to_string(),
                        code: error.code().to_owned(),
                        retry_after,
                    },
                )
            }
            ApiError::TooLarge { code, message } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorBody {
                    error: message,
                    code: code.to_owned(),
                    retry_after: None,
                },
            ),
            ApiError::Internal(detail) => {
                tracing::error!(%detail, "request failed");
                let body = ErrorBody {
                    error: "Internal server error.".to_owned(),
                    code: "internal_error".to_owned(),
                    retry_after: None,
                };
                (StatusCode::INTERNAL_SERVER_ERROR, body)
            }
        };
        let retry_after = body.retry_after;
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(value) = retry_after.and_then(|seconds| HeaderValue::from_str(&seconds.to_string()).ok())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

/// The result type of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

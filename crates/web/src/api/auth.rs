//! Logging in and out with API tokens: `POST /api/api-token-auth/`, `POST /api/auth/logout/`,
//! `GET /api/auth/me/`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use crm_core::CoreError;
use crm_core::event::Event;
use crm_core::password::verify_password;
use crm_core::user::could_be_username;
use crm_store::repo::audit::{self, AuditEntry};
use crm_store::repo::{tokens, users};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::operators::UserOut;
use crate::auth::{ClientAddr, CurrentUser};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Query};
use crate::state::AppState;

/// Credentials, as JSON or as a form (`application/x-www-form-urlencoded`, as DRF accepts).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// Login name.
    pub username: String,
    /// Password.
    pub password: String,
}

/// A new API token; send it as `Authorization: Token <token>` (or `Bearer`).
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// The token, shown once.
    pub token: String,
}

fn parse_login(headers: &HeaderMap, body: &Bytes) -> ApiResult<LoginRequest> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let parsed = if content_type.starts_with("application/x-www-form-urlencoded") {
        serde_urlencoded_form(body)
    } else {
        serde_json::from_slice::<LoginRequest>(body).map_err(|error| error.to_string())
    };
    parsed.map_err(|detail| {
        ApiError::invalid(
            "invalid_body",
            format!("Send `username` and `password`: {detail}"),
        )
    })
}

fn serde_urlencoded_form(body: &Bytes) -> Result<LoginRequest, String> {
    let mut username = None;
    let mut password = None;
    for (key, value) in url::form_urlencoded::parse(body) {
        match key.as_ref() {
            "username" => username = Some(value.into_owned()),
            "password" => password = Some(value.into_owned()),
            other => return Err(format!("unknown field `{other}`")),
        }
    }
    match (username, password) {
        (Some(username), Some(password)) => Ok(LoginRequest { username, password }),
        _ => Err("missing field".to_owned()),
    }
}

/// Exchanges a username and password for a new token. Attempts are throttled per username and per client
/// address, counted from when they start (429 with `retry_after`); at most one password check per core runs at
/// once, and a caller that waits too long for its turn gets 429 too.
#[utoipa::path(post, path = "/api/api-token-auth/", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenResponse),
        (status = 400, description = "Bad body or wrong credentials", body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody)))]
pub async fn obtain_token(
    State(state): State<AppState>,
    ClientAddr(address): ClientAddr,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<axum::Json<TokenResponse>> {
    let request = parse_login(&headers, &body)?;
    if request.username.is_empty() || request.password.is_empty() || request.username.len() > 150 {
        return Err(ApiError::invalid(
            "invalid_body",
            "Both `username` and `password` are required.",
        ));
    }
    let attempt = state
        .login_limiter
        .begin(&request.username, &address)
        .map_err(|retry_after| {
            ApiError::Core(CoreError::RateLimited {
                retry_after,
                message: "Too many failed login attempts; try again later.".into(),
            })
        })?;
    // A name no user can have (trailing spaces, which MariaDB's PAD SPACE collation would ignore) is not looked
    // up, and only the exact name matches; both still spend a verification, so answers take the same time.
    let user = if could_be_username(&request.username) {
        users::find_by_login(&state.store, &request.username)
            .await?
            .filter(|user| user.is_active)
    } else {
        None
    };
    let stored_hash = user.as_ref().map(|user| user.password_hash.clone());
    let password = request.password;
    let verified = state
        .password_work
        .run(move || verify_password(&password, stored_hash.as_deref()))
        .await?;
    let Some(user) = user.filter(|_| verified) else {
        drop(attempt);
        tracing::info!(username = %request.username.escape_debug(), %address, "login failed");
        audit::record(
            &state.store,
            AuditEntry {
                actor_user_id: None,
                action: "auth.login_failed",
                target_type: None,
                target_id: None,
                details: json!({ "username": request.username }),
                ip: Some(address),
            },
        )
        .await?;
        return Err(ApiError::invalid(
            "invalid_credentials",
            "Unable to log in with provided credentials.",
        ));
    };
    attempt.succeeded();
    let (token, _) = tokens::issue(&state.store, user.id, "login").await?;
    users::touch_login(&state.store, user.id).await?;
    audit::record(
        &state.store,
        AuditEntry {
            actor_user_id: Some(user.id.0),
            action: "auth.login",
            target_type: Some("user"),
            target_id: Some(user.id.0),
            details: json!({}),
            ip: Some(address),
        },
    )
    .await?;
    Ok(axum::Json(TokenResponse { token }))
}

/// `?all=true` ends every session of the caller, not only this token.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LogoutQuery {
    /// Revoke every token of the caller.
    #[serde(default)]
    pub all: bool,
}

/// Result of a logout.
#[derive(Debug, Serialize, ToSchema)]
pub struct LogoutResponse {
    /// `logged_out`.
    pub status: &'static str,
    /// How many tokens were revoked.
    pub revoked: u64,
}

/// Revokes the token that made this request (or every token of the caller with `?all=true`).
#[utoipa::path(post, path = "/api/auth/logout/", tag = "auth", params(LogoutQuery), security(("token" = [])),
    responses((status = 200, body = LogoutResponse), (status = 401, body = crate::error::ErrorBody)))]
pub async fn logout(
    State(state): State<AppState>,
    caller: CurrentUser,
    Query(query): Query<LogoutQuery>,
) -> ApiResult<Json<LogoutResponse>> {
    let revoked = if query.all {
        let count = tokens::revoke_all_for_user(&state.store, caller.user.id).await?;
        state.bus.publish(Event::SessionsRevoked {
            user_id: caller.user.id.0,
        });
        count
    } else {
        let revoked = tokens::revoke(&state.store, caller.token_id).await?;
        state.bus.publish(Event::TokenRevoked {
            user_id: caller.user.id.0,
            token_id: caller.token_id,
        });
        u64::from(revoked)
    };
    Ok(Json(LogoutResponse {
        status: "logged_out",
        revoked,
    }))
}

/// The caller's own profile.
#[utoipa::path(get, path = "/api/auth/me/", tag = "auth", security(("token" = [])),
    responses((status = 200, body = UserOut), (status = 401, body = crate::error::ErrorBody)))]
pub async fn me(State(state): State<AppState>, caller: CurrentUser) -> ApiResult<Json<UserOut>> {
    let current_chats = users::active_chat_count(&state.store, caller.user.id).await?;
    Ok(Json(UserOut::from_model(caller.user, current_chats)))
}

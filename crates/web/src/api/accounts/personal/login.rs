//! The phone-code login: `POST /api/accounts/authenticate/` (the predecessor's contract, plus `account_id`),
//! `POST /api/accounts/{id}/resend_code/` and `POST /api/accounts/{id}/verify_otp/` (the code, the cloud
//! password, or both). The code request's `phone_code_hash` is stored sealed, so any instance can finish it.

use axum::extract::State;
use crm_core::account::AccountStatus;
use crm_core::ids::AccountId;
use crm_core::personal::{LoginOutcome, UserError};
use crm_core::secrets::Sensitive;
use crm_store::repo::personal::{self, NewPersonal};
use serde::Deserialize;
use utoipa::ToSchema;

use super::common::{
    LoginStep, audit_login, disconnect, finish_login, handle_of, is_logged_in, login_failed, normalize_phone,
    personal_account, validate_credentials,
};
use crate::api::accounts::input::{validate_name, view};
use crate::auth::{Admin, ClientAddr};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::state::AppState;

/// A phone login request (the predecessor's contract).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Authenticate {
    /// International format: `+` and 7 to 15 digits (spaces, dashes and brackets are ignored).
    pub phone_number: String,
    /// `api_id` from my.telegram.org.
    pub api_id: i64,
    /// `api_hash` from my.telegram.org (32 hexadecimal characters).
    pub api_hash: String,
    /// Display name (default `Account <phone>`).
    pub name: Option<String>,
    /// Collect groups and supergroups (default false).
    pub include_groups: Option<bool>,
    /// Collect broadcast channels (default false).
    pub include_channels: Option<bool>,
}

/// Starts a phone login: creates the account (or reuses the one with this phone), has Telegram send the code.
#[utoipa::path(post, path = "/api/accounts/authenticate/", tag = "personal accounts", request_body = Authenticate,
    security(("token" = [])),
    responses((status = 200, body = LoginStep), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)))]
pub async fn authenticate(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ClientAddr(address): ClientAddr,
    Json(body): Json<Authenticate>,
) -> ApiResult<Json<LoginStep>> {
    let phone = normalize_phone(&body.phone_number).ok_or_else(|| {
        ApiError::invalid(
            "phone_invalid",
            "phone_number must be + and 7 to 15 digits, for example +491701234567",
        )
    })?;
    let api_id = validate_credentials(body.api_id, &body.api_hash)?;
    let name = body.name.clone().unwrap_or_else(|| format!("Account {phone}"));
    validate_name(&name)?;
    let existing = personal::find_by_phone(&state.store, &phone)
        .await?
        .filter(|existing| existing.removed_at.is_none());
    if let Some(existing) = &existing
        && is_logged_in(existing)
    {
        return Ok(Json(LoginStep::plain(
            view(&state, existing.id).await?,
            "already_authenticated",
            "Account is already authenticated",
        )));
    }
    let account = personal::upsert(
        &state.store,
        NewPersonal {
            name: name.trim().to_owned(),
            phone_number: phone,
            api_id,
            api_hash: Sensitive(body.api_hash.to_ascii_lowercase()),
            include_groups: body.include_groups.unwrap_or(false),
            include_channels: body.include_channels.unwrap_or(false),
        },
    )
    .await?;
    personal::set_status(&state.store, account.id, AccountStatus::Authenticating).await?;
    disconnect(&state, account.id).await?;
    let handle = handle_of(&state, &account).await?;
    let sent = match state.user_gateway.send_code(&handle).await {
        Ok(sent) => sent,
        // An account this call created is not left behind in `error`: the admin simply tries again.
        Err(error) if existing.is_none() => {
            personal::purge(&state.store, account.id).await?;
            return Err(ApiError::Telegram(error));
        }
        Err(error) => return Err(login_failed(&state, account.id, error).await),
    };
    personal::begin_phone_login(&state.store, account.id, &sent.phone_code_hash, &sent.code_type).await?;
    audit_login(&state, &admin, &address, account.id, "account.login_started").await?;
    Ok(Json(LoginStep::code(
        view(&state, account.id).await?,
        "otp_required",
        sent,
    )))
}

fn no_pending_login() -> ApiError {
    ApiError::Telegram(UserError::LoginNotStarted(
        "No login code is pending for this account; start with POST /api/accounts/authenticate/.".into(),
    ))
}

/// Asks Telegram to deliver the login code again, switching to the next delivery type.
#[utoipa::path(post, path = "/api/accounts/{id}/resend_code/", tag = "personal accounts", params(("id" = i64, Path)),
    security(("token" = [])),
    responses((status = 200, body = LoginStep), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody)))]
pub async fn resend_code(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<i64>,
) -> ApiResult<Json<LoginStep>> {
    let id = AccountId(id);
    let account = personal_account(&state, id).await?;
    let pending = personal::pending_code_hash(&state.store, id).await?;
    let (Some(hash), AccountStatus::Authenticating) = (pending, account.status) else {
        return Err(no_pending_login());
    };
    let handle = handle_of(&state, &account).await?;
    let sent = state
        .user_gateway
        .resend_code(&handle, &hash)
        .await
        .map_err(ApiError::Telegram)?;
    personal::begin_phone_login(&state.store, id, &sent.phone_code_hash, &sent.code_type).await?;
    Ok(Json(LoginStep::code(view(&state, id).await?, "otp_resent", sent)))
}

/// The login code, the cloud password, or both.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyOtp {
    /// The code Telegram delivered (not needed when only the password is missing).
    pub otp_code: Option<String>,
    /// The cloud password (two-step verification), when the account has one.
    pub password: Option<String>,
}

fn validate_code(code: &str) -> ApiResult<&str> {
    let code = code.trim();
    if (3..=10).contains(&code.len()) && code.chars().all(|c| c.is_ascii_digit()) {
        Ok(code)
    } else {
        Err(ApiError::invalid(
            "invalid_field",
            "otp_code must be the 3 to 10 digits Telegram sent",
        ))
    }
}

fn validate_password(password: &str) -> ApiResult<Sensitive> {
    if password.is_empty() || password.len() > 1024 {
        return Err(ApiError::invalid(
            "invalid_field",
            "password must be 1 to 1024 bytes",
        ));
    }
    Ok(Sensitive(password.to_owned()))
}

/// Finishes a phone login with the code (and the cloud password, in the same call or a second one).
#[utoipa::path(post, path = "/api/accounts/{id}/verify_otp/", tag = "personal accounts", params(("id" = i64, Path)),
    request_body = VerifyOtp, security(("token" = [])),
    responses((status = 200, body = LoginStep), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
        (status = 429, body = crate::error::ErrorBody)))]
pub async fn verify_otp(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ClientAddr(address): ClientAddr,
    Path(id): Path<i64>,
    Json(body): Json<VerifyOtp>,
) -> ApiResult<Json<LoginStep>> {
    let id = AccountId(id);
    let account = personal_account(&state, id).await?;
    let password = body.password.as_deref().map(validate_password).transpose()?;
    let handle = handle_of(&state, &account).await?;
    let outcome = if account.status == AccountStatus::PasswordRequired {
        let Some(password) = password else {
            return Err(ApiError::invalid(
                "password_required",
                "This account needs its cloud password: send `password`.",
            ));
        };
        state.user_gateway.check_password(&handle, &password).await
    } else {
        let code = body
            .otp_code
            .as_deref()
            .ok_or_else(|| ApiError::invalid("invalid_field", "otp_code is required"))
            .and_then(validate_code)?;
        let pending = personal::pending_code_hash(&state.store, id).await?;
        let (Some(hash), AccountStatus::Authenticating) = (pending, account.status) else {
            return Err(no_pending_login());
        };
        match state.user_gateway.sign_in(&handle, &hash, code).await {
            Ok(LoginOutcome::PasswordRequired { hint }) => match password {
                Some(password) => {
                    personal::set_status(&state.store, id, AccountStatus::PasswordRequired).await?;
                    state.user_gateway.check_password(&handle, &password).await
                }
                None => Ok(LoginOutcome::PasswordRequired { hint }),
            },
            other => other,
        }
    };
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error) => return Err(login_failed(&state, id, error).await),
    };
    if matches!(outcome, LoginOutcome::Authenticated(_)) {
        audit_login(&state, &admin, &address, id, "account.logged_in").await?;
    }
    Ok(Json(finish_login(&state, id, outcome).await?))
}

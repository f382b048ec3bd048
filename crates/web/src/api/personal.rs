//! Personal Telegram accounts, admins only: the login flows (phone code with resend and cloud password, QR code),
//! their life cycle (start, stop, restart, removal), and the operations endpoints `POST /api/system/control/` and
//! `POST /api/sync/`. Commands reach the instance connected to an account through the event bus; the admin's
//! intent (`enabled`) is in the database, so a stop holds even if a command is missed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use chrono::{DateTime, Utc};
use crm_core::account::{AccountStatus, AccountType};
use crm_core::event::{AccountAction, Event};
use crm_core::personal::{AccountHandle, CodeSent, LoginOutcome, QrProgress, QrToken, UserError};
use crm_core::secrets::Sensitive;
use crm_store::entity::accounts;
use crm_store::repo::audit::{self, AuditEntry};
use crm_store::repo::personal::{self, NewPersonal};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use utoipa::ToSchema;

use crate::api::accounts::{AccountOut, account_view, shaped};
use crate::auth::{Admin, ClientAddr, CurrentUser};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

/// How long `qr_login` waits for Telegram's first token.
const FIRST_QR_TOKEN: Duration = Duration::from_secs(15);
/// `/api/sync/` asks the connected accounts to catch up at most this often (browsers call it every few seconds).
const SYNC_EVERY: Duration = Duration::from_secs(5);

/// Where a login step left the account.
#[derive(Debug, Serialize, ToSchema)]
pub struct LoginStep {
    /// The account being logged in.
    pub account_id: i64,
    /// `otp_required`, `otp_resent`, `password_required`, `authenticated` or `already_authenticated`.
    pub status: &'static str,
    /// Human message.
    pub message: String,
    /// How the code was delivered (`APP`, `SMS`, `CALL`, `FLASH_CALL`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_type: Option<String>,
    /// What a resend switches to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_type: Option<String>,
    /// Seconds before a resend is allowed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i32>,
    /// The cloud password's hint, when the password is required.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The account as admins see it.
    pub account: AccountOut,
}

impl LoginStep {
    /// A step with only a status and a message.
    fn plain(account: AccountOut, status: &'static str, message: impl Into<String>) -> Self {
        Self {
            account_id: account.id,
            status,
            message: message.into(),
            code_type: None,
            next_type: None,
            timeout: None,
            hint: None,
            account,
        }
    }

    /// A step after Telegram sent a code.
    fn code(account: AccountOut, status: &'static str, sent: CodeSent) -> Self {
        Self {
            message: code_message(&sent),
            code_type: Some(sent.code_type),
            next_type: sent.next_type,
            timeout: sent.timeout,
            ..Self::plain(account, status, String::new())
        }
    }
}

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

/// `+` and 7 to 15 digits, with common separators removed; `None` if it is not a phone number.
pub fn normalize_phone(raw: &str) -> Option<String> {
    let compact: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '(' | ')' | '.'))
        .collect();
    let digits = compact.strip_prefix('+')?;
    let valid = (7..=15).contains(&digits.len()) && digits.chars().all(|c| c.is_ascii_digit());
    valid.then_some(compact)
}

fn validate_credentials(api_id: i64, api_hash: &str) -> ApiResult<i32> {
    let api_id = i32::try_from(api_id).ok().filter(|id| *id > 0).ok_or_else(|| {
        ApiError::invalid(
            "invalid_field",
            "api_id must be a positive number from my.telegram.org",
        )
    })?;
    if api_hash.len() != 32 || !api_hash.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(ApiError::invalid(
            "invalid_field",
            "api_hash must be the 32 hexadecimal characters from my.telegram.org",
        ));
    }
    Ok(api_id)
}

fn code_message(sent: &CodeSent) -> String {
    let delivered = match sent.code_type.as_str() {
        "APP" => "The code was sent to the Telegram app on the account's other devices.".to_owned(),
        "SMS" | "FRAGMENT_SMS" => "The code was sent by SMS.".to_owned(),
        "CALL" => "Telegram will call with the code.".to_owned(),
        "FLASH_CALL" | "MISSED_CALL" => {
            "Telegram will place a missed call; the code is in the caller's number.".to_owned()
        }
        "EMAIL" => "The code was sent to the account's login e-mail.".to_owned(),
        other => format!("The code was sent ({other})."),
    };
    match &sent.next_type {
        Some(next) => format!("{delivered} A resend will use {next}."),
        None => delivered,
    }
}

/// Whether the account has a session that works (as far as we know), so a new login is not needed.
fn is_logged_in(account: &accounts::Model) -> bool {
    personal::has_session(account)
        && account.telegram_user_id.is_some()
        && account.removed_at.is_none()
        && !personal::logging_in(account)
        && account.error_code.as_deref() != Some(UserError::SessionRevoked.code())
}

async fn personal_account(state: &AppState, id: i64) -> ApiResult<accounts::Model> {
    let account = crm_store::repo::accounts::find(&state.store, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Account"))?;
    if account.account_type != AccountType::Personal.as_str() {
        return Err(ApiError::invalid(
            "not_personal",
            "Only personal accounts log in with a phone or QR code.",
        ));
    }
    Ok(account)
}

fn handle_of(state: &AppState, account: &accounts::Model) -> ApiResult<AccountHandle> {
    personal::handle(&state.store, account)?.ok_or_else(|| {
        ApiError::invalid(
            "credentials_missing",
            "The account has no phone number or api_id/api_hash; log in with POST /api/accounts/authenticate/.",
        )
    })
}

/// Publishes the account's current state to admins.
async fn announce(state: &AppState, account_id: i64) -> ApiResult<AccountOut> {
    let account = account_view(state, account_id)
        .await
        .ok_or_else(|| ApiError::not_found("Account"))?;
    crate::events::account_status(state, &account).await;
    Ok(account)
}

fn command(state: &AppState, account_id: Option<i64>, action: AccountAction) {
    state.bus.publish(Event::AccountControl { account_id, action });
}

/// Asks whichever instance is connected to the account to let it go, and waits (bounded) until it has.
async fn disconnect(state: &AppState, account_id: i64) -> ApiResult<()> {
    command(state, Some(account_id), AccountAction::Stop);
    match personal::wait_until_disconnected(&state.store, account_id, state.settings.disconnect_wait).await? {
        None => Ok(()),
        Some(_) => Err(ApiError::Core(crm_core::CoreError::Unavailable(
            "The instance connected to this account did not let it go in time; try again shortly.".into(),
        ))),
    }
}

/// A Telegram failure during a login: recorded on the account (except the ones the admin simply corrects and
/// retries), then returned as the API error.
async fn login_failed(state: &AppState, account_id: i64, error: UserError) -> ApiError {
    let correctable = matches!(
        error,
        UserError::InvalidCode
            | UserError::CodeExpired
            | UserError::WrongPassword
            | UserError::LoginNotStarted(_)
    );
    if !correctable {
        let retry_at = match &error {
            UserError::FloodWait(wait) => {
                Some(Utc::now() + chrono::Duration::from_std(*wait).unwrap_or_default())
            }
            _ => None,
        };
        if let Err(store_error) = personal::record_failure(
            &state.store,
            account_id,
            error.code(),
            &error.to_string(),
            retry_at,
        )
        .await
        {
            return store_error.into();
        }
        let _ = announce(state, account_id).await;
    }
    ApiError::Telegram(error)
}

async fn audit_login(
    state: &AppState,
    admin: &CurrentUser,
    address: &str,
    account_id: i64,
    action: &str,
) -> ApiResult<()> {
    audit::record(
        &state.store,
        AuditEntry {
            actor_user_id: Some(admin.user.id),
            action,
            target_type: Some("account"),
            target_id: Some(account_id),
            details: json!({}),
            ip: Some(address.to_owned()),
        },
    )
    .await?;
    Ok(())
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
    crate::api::accounts::validate_name(&name)?;
    if let Some(existing) = personal::find_by_phone(&state.store, &phone).await?
        && is_logged_in(&existing)
    {
        return Ok(Json(LoginStep::plain(
            shaped(&state, existing)?,
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
    let handle = handle_of(&state, &account)?;
    let sent = match state.user_gateway.send_code(&handle).await {
        Ok(sent) => sent,
        Err(error) => return Err(login_failed(&state, account.id, error).await),
    };
    personal::begin_phone_login(&state.store, account.id, &sent.phone_code_hash, &sent.code_type).await?;
    audit_login(&state, &admin, &address, account.id, "account.login_started").await?;
    let account = announce(&state, account.id).await?;
    Ok(Json(LoginStep::code(account, "otp_required", sent)))
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
    let account = personal_account(&state, id).await?;
    let pending = personal::pending_code_hash(&state.store, &account)?;
    let (Some(hash), true) = (pending, account.status == AccountStatus::Authenticating.as_str()) else {
        return Err(ApiError::Telegram(UserError::LoginNotStarted(
            "No login code is pending for this account; start with POST /api/accounts/authenticate/.".into(),
        )));
    };
    let handle = handle_of(&state, &account)?;
    let sent = state
        .user_gateway
        .resend_code(&handle, &hash)
        .await
        .map_err(ApiError::Telegram)?;
    personal::begin_phone_login(&state.store, id, &sent.phone_code_hash, &sent.code_type).await?;
    let account = announce(&state, id).await?;
    Ok(Json(LoginStep::code(account, "otp_resent", sent)))
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

/// Records the end of a login: profile saved, account enabled and handed to the supervisor.
async fn finish_login(state: &AppState, account_id: i64, outcome: LoginOutcome) -> ApiResult<LoginStep> {
    match outcome {
        LoginOutcome::Authenticated(profile) => {
            personal::complete_login(&state.store, account_id, &profile).await?;
            command(state, Some(account_id), AccountAction::Start);
            let account = announce(state, account_id).await?;
            Ok(LoginStep::plain(
                account,
                "authenticated",
                "Account successfully authenticated; it connects now.",
            ))
        }
        LoginOutcome::PasswordRequired { hint } => {
            personal::set_status(&state.store, account_id, AccountStatus::PasswordRequired).await?;
            let account = announce(state, account_id).await?;
            Ok(LoginStep {
                hint,
                ..LoginStep::plain(
                    account,
                    "password_required",
                    "This account has a cloud password; send it as `password` to finish the login.",
                )
            })
        }
    }
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
    let account = personal_account(&state, id).await?;
    let password = body.password.as_deref().map(validate_password).transpose()?;
    let handle = handle_of(&state, &account)?;
    let outcome = if account.status == AccountStatus::PasswordRequired.as_str() {
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
        let pending = personal::pending_code_hash(&state.store, &account)?;
        let (Some(hash), true) = (pending, account.status == AccountStatus::Authenticating.as_str()) else {
            return Err(ApiError::Telegram(UserError::LoginNotStarted(
                "No login code is pending for this account; start with POST /api/accounts/authenticate/."
                    .into(),
            )));
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

/// A QR code to scan in Telegram (Settings → Devices → Link Desktop Device).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QrShown {
    /// The account being logged in.
    pub account_id: i64,
    /// `qr_required`, or `already_authenticated`.
    pub status: &'static str,
    /// The code as an SVG image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qr_svg: Option<String>,
    /// `tg://login?token=…`, what the code encodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_url: Option<String>,
    /// When Telegram stops accepting this code; a fresh one is pushed as `account_status` before that.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Renders `login_url` as an SVG QR code.
pub fn qr_svg(login_url: &str) -> ApiResult<String> {
    let code =
        qrcode::QrCode::new(login_url.as_bytes()).map_err(|error| ApiError::Internal(error.to_string()))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build())
}

/// Per-instance state of the personal-account endpoints: the QR logins running here (one per account at most)
/// and when the last sync command went out.
#[derive(Default)]
pub struct AccountRuntime {
    running: Mutex<HashMap<i64, JoinHandle<()>>>,
    last_sync: Mutex<Option<Instant>>,
}

impl AccountRuntime {
    /// Records the task of `account_id`'s QR login, cancelling an earlier one.
    fn replace(&self, account_id: i64, task: JoinHandle<()>) {
        if let Ok(mut running) = self.running.lock() {
            running.retain(|_, task| !task.is_finished());
            if let Some(previous) = running.insert(account_id, task) {
                previous.abort();
            }
        }
    }
}

/// Shows each token: keeps the latest for the waiting request and pushes it to admins.
struct QrPublisher {
    state: AppState,
    account_id: i64,
    latest: watch::Sender<Option<QrToken>>,
}

impl QrProgress for QrPublisher {
    fn token(&self, token: QrToken) {
        self.latest.send_replace(Some(token.clone()));
        let state = self.state.clone();
        let account_id = self.account_id;
        tokio::spawn(async move {
            let Some(account) = account_view(&state, account_id).await else {
                return;
            };
            let svg = qr_svg(&token.login_url).ok();
            let payload = json!({
                "account": account,
                "qr": { "qr_svg": svg, "login_url": token.login_url, "expires_at": token.expires_at },
            });
            crate::events::publish(&state, "account_status", None, None, payload).await;
        });
    }
}

/// Starts a QR login and returns the first code; the result arrives as `account_status` over the WebSocket and
/// in `GET /api/accounts/{id}/`. Runs in its own task, so it never slows another account.
#[utoipa::path(post, path = "/api/accounts/{id}/qr_login/", tag = "personal accounts", params(("id" = i64, Path)),
    security(("token" = [])),
    responses((status = 200, body = QrShown), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)))]
pub async fn qr_login(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ClientAddr(address): ClientAddr,
    Path(id): Path<i64>,
) -> ApiResult<Json<QrShown>> {
    let account = personal_account(&state, id).await?;
    if is_logged_in(&account) {
        return Ok(Json(QrShown {
            account_id: id,
            status: "already_authenticated",
            qr_svg: None,
            login_url: None,
            expires_at: None,
        }));
    }
    let handle = handle_of(&state, &account)?;
    personal::set_status(&state.store, id, AccountStatus::Authenticating).await?;
    disconnect(&state, id).await?;
    let (latest, mut shown) = watch::channel(None);
    let (finished, mut outcome) = watch::channel(None::<Result<(), UserError>>);
    let progress = Arc::new(QrPublisher {
        state: state.clone(),
        account_id: id,
        latest,
    });
    let task_state = state.clone();
    let task = tokio::spawn(async move {
        let result = task_state.user_gateway.qr_login(&handle, progress).await;
        let reported = match result {
            Ok(outcome) => finish_login(&task_state, id, outcome).await.map(|_| ()),
            Err(error) => Err(login_failed(&task_state, id, error.clone()).await),
        };
        let summary = match reported {
            Ok(()) => Ok(()),
            Err(ApiError::Telegram(error)) => Err(error),
            Err(other) => Err(UserError::Other(other.to_string())),
        };
        finished.send_replace(Some(summary));
    });
    state.accounts_runtime.replace(id, task);
    audit_login(&state, &admin, &address, id, "account.qr_login_started").await?;
    let first = tokio::time::timeout(FIRST_QR_TOKEN, async {
        loop {
            if let Some(token) = shown.borrow_and_update().clone() {
                return Ok(token);
            }
            if let Some(Err(error)) = outcome.borrow_and_update().clone() {
                return Err(ApiError::Telegram(error));
            }
            tokio::select! {
                changed = shown.changed() => if changed.is_err() { return Err(ApiError::Internal("QR login ended without a token".into())) },
                _ = outcome.changed() => {}
            }
        }
    })
    .await
    .map_err(|_| ApiError::Telegram(UserError::Network("Telegram did not issue a QR login token in time".into())))??;
    Ok(Json(QrShown {
        account_id: id,
        status: "qr_required",
        qr_svg: Some(qr_svg(&first.login_url)?),
        login_url: Some(first.login_url),
        expires_at: Some(first.expires_at),
    }))
}

/// Starts a personal account: it is connected (by one instance) and stays connected until stopped.
pub async fn start(state: &AppState, account: &accounts::Model) -> ApiResult<AccountOut> {
    if !personal::has_session(account) {
        return Err(ApiError::Core(crm_core::CoreError::Conflict {
            code: "login_required",
            message: "This account is not logged in; log in with a code or a QR code first.".into(),
        }));
    }
    personal::start(&state.store, account).await?;
    command(state, Some(account.id), AccountAction::Start);
    announce(state, account.id).await
}

/// Stops a personal account: its connection is closed and it stays stopped until started.
pub async fn stop(state: &AppState, account: &accounts::Model) -> ApiResult<AccountOut> {
    personal::set_enabled(&state.store, account.id, false).await?;
    command(state, Some(account.id), AccountAction::Stop);
    announce(state, account.id).await
}

/// Restarts a personal account: disconnects and connects again (starting it if it was stopped).
pub async fn restart(state: &AppState, account: &accounts::Model) -> ApiResult<AccountOut> {
    let started = start(state, account).await?;
    command(state, Some(account.id), AccountAction::Restart);
    Ok(started)
}

/// Options of a removal.
#[derive(Debug, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RemoveQuery {
    /// Also delete the account's chats and messages (default: keep them, readable, as history).
    pub purge: Option<bool>,
}

/// The result of a removal.
#[derive(Debug, Serialize, ToSchema)]
pub struct Removed {
    /// `removed`.
    pub status: &'static str,
    /// The removed account.
    pub account_id: i64,
    /// Whether the session was logged out at Telegram (false if it had none or Telegram could not be reached).
    pub logged_out: bool,
    /// Why the log-out did not happen, if it did not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logout_error: Option<String>,
    /// Whether the chats and messages were deleted too.
    pub purged: bool,
}

/// Removes an account: a personal account's session is logged out at Telegram first. Its chats stay (readable,
/// as history) unless `?purge=true`.
#[utoipa::path(delete, path = "/api/accounts/{id}/", tag = "accounts", params(("id" = i64, Path), RemoveQuery),
    security(("token" = [])),
    responses((status = 200, body = Removed), (status = 404, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ClientAddr(address): ClientAddr,
    Path(id): Path<i64>,
    Query(query): Query<RemoveQuery>,
) -> ApiResult<Json<Removed>> {
    let account = crm_store::repo::accounts::find(&state.store, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Account"))?;
    let purged = query.purge.unwrap_or(false);
    let mut logged_out = false;
    let mut logout_error = None;
    if account.account_type == AccountType::Personal.as_str() {
        personal::set_enabled(&state.store, id, false).await?;
        disconnect(&state, id).await?;
        if let (true, Some(handle)) = (
            personal::has_session(&account),
            personal::handle(&state.store, &account)?,
        ) {
            match state.user_gateway.log_out(&handle).await {
                Ok(()) => logged_out = true,
                Err(error) => logout_error = Some(error.to_string()),
            }
        }
    } else if account.intake_mode == "webhook"
        && let Some(token) = crm_store::repo::accounts::open_secrets(&state.store, &account)?.bot_token
        && let Err(error) = state.bot_api.delete_webhook(&token.0).await
    {
        logout_error = Some(format!("the webhook could not be removed: {error}"));
    }
    if purged {
        personal::purge(&state.store, id).await?;
    } else {
        personal::remove_keeping_chats(&state.store, id).await?;
    }
    state.polling_waker.notify_one();
    audit::record(
        &state.store,
        AuditEntry {
            actor_user_id: Some(admin.user.id),
            action: "account.removed",
            target_type: Some("account"),
            target_id: Some(id),
            details: json!({ "purged": purged, "logged_out": logged_out }),
            ip: Some(address),
        },
    )
    .await?;
    crate::events::publish(
        &state,
        "account_status",
        None,
        None,
        json!({ "account": { "id": id, "status": "removed" } }),
    )
    .await;
    Ok(Json(Removed {
        status: "removed",
        account_id: id,
        logged_out,
        logout_error,
        purged,
    }))
}

/// What to do with every personal account.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ControlAction {
    /// Disconnect and connect again every enabled account.
    #[default]
    RestartAll,
    /// Start every logged-in account.
    StartAll,
    /// Stop every account.
    StopAll,
}

/// A control request; an empty body means `restart_all`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// The action (default `restart_all`).
    #[serde(default)]
    pub action: ControlAction,
}

/// The result of a control request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ControlDone {
    /// `restarted`, `started` or `stopped`.
    pub status: &'static str,
    /// Human message.
    pub message: String,
    /// Personal accounts concerned.
    pub accounts: usize,
}

/// Restarts, starts or stops every personal account at run time (nothing else restarts).
#[utoipa::path(post, path = "/api/system/control/", tag = "system", request_body = Control, security(("token" = [])),
    responses((status = 200, body = ControlDone), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody)))]
pub async fn control(
    State(state): State<AppState>,
    _admin: Admin,
    body: axum::body::Bytes,
) -> ApiResult<Json<ControlDone>> {
    let control: Control = if body.iter().all(u8::is_ascii_whitespace) {
        Control::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|error| ApiError::invalid("invalid_json", format!("Invalid JSON body: {error}")))?
    };
    let accounts = personal::all_personal(&state.store).await?;
    let mut concerned = 0;
    for account in accounts.iter().filter(|a| a.removed_at.is_none()) {
        let done = match control.action {
            ControlAction::StopAll => stop(&state, account).await.map(|_| ()),
            ControlAction::StartAll => {
                if !personal::has_session(account) {
                    continue;
                }
                start(&state, account).await.map(|_| ())
            }
            ControlAction::RestartAll => {
                if !account.enabled || !personal::has_session(account) {
                    continue;
                }
                restart(&state, account).await.map(|_| ())
            }
        };
        done?;
        concerned += 1;
    }
    let (status, verb) = match control.action {
        ControlAction::RestartAll => ("restarted", "restarted"),
        ControlAction::StartAll => ("started", "started"),
        ControlAction::StopAll => ("stopped", "stopped"),
    };
    Ok(Json(ControlDone {
        status,
        message: format!("{concerned} personal account(s) {verb}"),
        accounts: concerned,
    }))
}

/// When the sync was triggered.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncTriggered {
    /// `sync_triggered`.
    pub status: &'static str,
    /// Now.
    pub timestamp: DateTime<Utc>,
}

/// Asks every connected personal account to catch up on missed updates now (the predecessor's UI calls this
/// every few seconds; repeated calls within a few seconds are merged).
#[utoipa::path(post, path = "/api/sync/", tag = "system", security(("token" = [])),
    responses((status = 200, body = SyncTriggered), (status = 401, body = crate::error::ErrorBody)))]
pub async fn sync(State(state): State<AppState>, _caller: CurrentUser) -> Json<SyncTriggered> {
    if state.accounts_runtime.sync_due() {
        command(&state, None, AccountAction::Sync);
    }
    Json(SyncTriggered {
        status: "sync_triggered",
        timestamp: Utc::now(),
    })
}

impl AccountRuntime {
    /// Whether a sync command may go out now (at most one per [`SYNC_EVERY`] from this instance).
    fn sync_due(&self) -> bool {
        let Ok(mut last) = self.last_sync.lock() else {
            return true;
        };
        let due = last.is_none_or(|at| at.elapsed() >= SYNC_EVERY);
        if due {
            *last = Some(Instant::now());
        }
        due
    }
}

/// Creates (or, same phone, updates) a personal account from `POST /api/accounts/`, ready to log in.
pub async fn create(state: &AppState, body: &crate::api::accounts::CreateAccount) -> ApiResult<AccountOut> {
    let phone = body
        .phone_number
        .as_deref()
        .and_then(normalize_phone)
        .ok_or_else(|| ApiError::invalid("phone_invalid", "phone_number must be + and 7 to 15 digits"))?;
    let (Some(api_id), Some(api_hash)) = (body.api_id, body.api_hash.as_deref()) else {
        return Err(ApiError::invalid(
            "invalid_field",
            "api_id and api_hash are required for a personal account",
        ));
    };
    let api_id = validate_credentials(api_id, api_hash)?;
    if body.bot_token.is_some() || body.forward_url.is_some() {
        return Err(ApiError::invalid(
            "invalid_field",
            "bot_token and forward_url apply to bots only",
        ));
    }
    if let Some(existing) = personal::find_by_phone(&state.store, &phone).await?
        && existing.removed_at.is_none()
    {
        return Err(ApiError::Core(crm_core::CoreError::Conflict {
            code: "account_exists",
            message: format!("Account {} already uses this phone number.", existing.id),
        }));
    }
    let account = personal::upsert(
        &state.store,
        NewPersonal {
            name: body.name.trim().to_owned(),
            phone_number: phone,
            api_id,
            api_hash: Sensitive(api_hash.to_ascii_lowercase()),
            include_groups: body.include_groups.unwrap_or(false),
            include_channels: body.include_channels.unwrap_or(false),
        },
    )
    .await?;
    shaped(state, account)
}

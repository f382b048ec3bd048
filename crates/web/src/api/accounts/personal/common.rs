//! What the personal-account endpoints share: the answer of a login step, phone and credential checks, finding
//! the account, handing commands to the instance connected to it, recording a failed or finished login, the
//! per-instance runtime (QR logins running here, the sync throttle), and creating the account.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::Utc;
use crm_core::CoreError;
use crm_core::account::{Account, AccountStatus, AccountType};
use crm_core::event::{AccountAction, Event};
use crm_core::ids::AccountId;
use crm_core::personal::{AccountHandle, CodeSent, LoginOutcome, UserError};
use crm_core::secrets::Sensitive;
use crm_core::views::AccountView;
use crm_store::repo::audit::{self, AuditEntry};
use crm_store::repo::personal::{self, NewPersonal};
use serde::Serialize;
use serde_json::json;
use tokio::task::JoinHandle;
use utoipa::ToSchema;

use crate::api::accounts::input::{CreateAccount, find, view};
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

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
    pub account: AccountView,
}

impl LoginStep {
    /// A step with only a status and a message.
    pub fn plain(account: AccountView, status: &'static str, message: impl Into<String>) -> Self {
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
    pub fn code(account: AccountView, status: &'static str, sent: CodeSent) -> Self {
        Self {
            message: code_message(&sent),
            code_type: Some(sent.code_type),
            next_type: sent.next_type,
            timeout: sent.timeout,
            ..Self::plain(account, status, String::new())
        }
    }
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

/// Checks `api_id` and `api_hash` as my.telegram.org issues them.
pub fn validate_credentials(api_id: i64, api_hash: &str) -> ApiResult<i32> {
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
pub fn is_logged_in(account: &Account) -> bool {
    account.has_session
        && account.telegram_user_id.is_some()
        && account.removed_at.is_none()
        && !account.status.is_logging_in()
        && account.error_code.as_deref() != Some(UserError::SessionRevoked.code())
}

/// Personal account `id`, or 404 (400 for a bot).
pub async fn personal_account(state: &AppState, id: AccountId) -> ApiResult<Account> {
    let account = find(state, id).await?;
    if account.kind != AccountType::Personal {
        return Err(ApiError::invalid(
            "not_personal",
            "Only personal accounts log in with a phone or QR code.",
        ));
    }
    Ok(account)
}

/// What the gateway needs to reach Telegram for `account`, or 400.
pub async fn handle_of(state: &AppState, account: &Account) -> ApiResult<AccountHandle> {
    personal::handle(&state.store, account).await?.ok_or_else(|| {
        ApiError::invalid(
            "credentials_missing",
            "The account has no phone number or api_id/api_hash; log in with POST /api/accounts/authenticate/.",
        )
    })
}

/// Hands `action` to the instance connected to `account_id` (or to every personal account).
pub fn command(state: &AppState, account_id: Option<AccountId>, action: AccountAction) {
    state.bus.publish(Event::AccountControl {
        account_id: account_id.map(|id| id.0),
        action,
    });
}

/// Asks whichever instance is connected to the account to let it go, and waits (bounded) until it has.
pub async fn disconnect(state: &AppState, account_id: AccountId) -> ApiResult<()> {
    command(state, Some(account_id), AccountAction::Stop);
    match personal::wait_until_disconnected(&state.store, account_id, state.settings.disconnect_wait).await? {
        None => Ok(()),
        Some(_) => Err(ApiError::Core(CoreError::unavailable(
            "The instance connected to this account did not let it go in time; try again shortly.",
        ))),
    }
}

/// A Telegram failure during a login: recorded on the account (except the ones the admin simply corrects and
/// retries), then returned as the API error.
pub async fn login_failed(state: &AppState, account_id: AccountId, error: UserError) -> ApiError {
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
    }
    ApiError::Telegram(error)
}

/// Records a login step of `admin` in the audit log.
pub async fn audit_login(
    state: &AppState,
    admin: &CurrentUser,
    address: &str,
    account_id: AccountId,
    action: &str,
) -> ApiResult<()> {
    audit::record(
        &state.store,
        AuditEntry {
            actor_user_id: Some(admin.user.id.0),
            action,
            target_type: Some("account"),
            target_id: Some(account_id.0),
            details: json!({}),
            ip: Some(address.to_owned()),
        },
    )
    .await?;
    Ok(())
}

/// Records the end of a login: profile saved, account enabled and handed to the supervisor.
pub async fn finish_login(
    state: &AppState,
    account_id: AccountId,
    outcome: LoginOutcome,
) -> ApiResult<LoginStep> {
    match outcome {
        LoginOutcome::Authenticated(profile) => {
            personal::complete_login(&state.store, account_id, &profile).await?;
            command(state, Some(account_id), AccountAction::Start);
            Ok(LoginStep::plain(
                view(state, account_id).await?,
                "authenticated",
                "Account successfully authenticated; it connects now.",
            ))
        }
        LoginOutcome::PasswordRequired { hint } => {
            personal::set_status(&state.store, account_id, AccountStatus::PasswordRequired).await?;
            Ok(LoginStep {
                hint,
                ..LoginStep::plain(
                    view(state, account_id).await?,
                    "password_required",
                    "This account has a cloud password; send it as `password` to finish the login.",
                )
            })
        }
    }
}

/// Per-instance state of the personal-account endpoints: the QR logins running here (one per account at most)
/// and when the last sync command went out.
#[derive(Default)]
pub struct AccountRuntime {
    running: Mutex<HashMap<AccountId, JoinHandle<()>>>,
    last_sync: Mutex<Option<Instant>>,
}

impl AccountRuntime {
    /// Records the task of `account_id`'s QR login, cancelling an earlier one.
    pub fn replace(&self, account_id: AccountId, task: JoinHandle<()>) {
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        running.retain(|_, task| !task.is_finished());
        if let Some(previous) = running.insert(account_id, task) {
            previous.abort();
        }
    }

    /// Whether a sync command may go out now (at most one per [`SYNC_EVERY`] from this instance).
    pub fn sync_due(&self) -> bool {
        let mut last = self.last_sync.lock().unwrap_or_else(PoisonError::into_inner);
        let due = last.is_none_or(|at| at.elapsed() >= SYNC_EVERY);
        if due {
            *last = Some(Instant::now());
        }
        due
    }
}

/// Creates (or, same phone, updates) a personal account from `POST /api/accounts/`, ready to log in.
pub async fn create(state: &AppState, body: &CreateAccount) -> ApiResult<Account> {
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
        return Err(ApiError::Core(CoreError::Conflict {
            code: "account_exists",
            message: format!("Account {} already uses this phone number.", existing.id),
        }));
    }
    Ok(personal::upsert(
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
    .await?)
}

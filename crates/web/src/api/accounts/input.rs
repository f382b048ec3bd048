//! What admins send about accounts, and the checks every account endpoint shares: the request bodies, names and
//! URLs, finding an account, and how Bot API failures answer.

use crm_core::CoreError;
use crm_core::account::{Account, AccountType};
use crm_core::ids::AccountId;
use crm_store::repo::accounts as account_repo;
use crm_telegram_bot::BotApiError;
use serde::Deserialize;
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Longest URL accepted for webhooks and forwarding.
const MAX_URL_LEN: usize = 2048;

/// A new account: a bot with its token, or a personal account with its phone and application credentials (then
/// logged in with `authenticate` or `qr_login`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAccount {
    /// Display name.
    pub name: String,
    /// `bot` or `personal`.
    pub account_type: AccountType,
    /// Bot: the token from @BotFather.
    pub bot_token: Option<String>,
    /// Bot: an existing bot backend to forward every update to.
    pub forward_url: Option<String>,
    /// Personal: phone number, `+` and digits.
    pub phone_number: Option<String>,
    /// Personal: `api_id` from my.telegram.org.
    pub api_id: Option<i64>,
    /// Personal: `api_hash` from my.telegram.org.
    pub api_hash: Option<String>,
    /// Personal: collect groups and supergroups.
    pub include_groups: Option<bool>,
    /// Personal: collect broadcast channels.
    pub include_channels: Option<bool>,
}

/// A change of an account; omitted fields stay. `forward_url: null` stops forwarding.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAccount {
    /// New display name.
    pub name: Option<String>,
    /// New forward URL, or null to stop forwarding (bots).
    #[serde(default, deserialize_with = "present")]
    pub forward_url: Option<Option<String>>,
    /// Collect groups and supergroups (personal accounts; reconnects the account).
    pub include_groups: Option<bool>,
    /// Collect broadcast channels (personal accounts; reconnects the account).
    pub include_channels: Option<bool>,
    /// Mark chats read in Telegram when an operator reads them (personal accounts).
    pub mark_read_in_telegram: Option<bool>,
}

fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// Checks a display name: 1 to 255 printable characters.
pub fn validate_name(name: &str) -> ApiResult<()> {
    let length = name.trim().chars().count();
    if length == 0 || length > 255 || name.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            "invalid_field",
            "name must be 1 to 255 printable characters",
        ));
    }
    Ok(())
}

/// Checks an absolute http(s) URL without credentials in it.
pub fn validate_url(field: &str, value: &str, https_only: bool) -> ApiResult<url::Url> {
    let invalid = |why: &str| ApiError::invalid("invalid_field", format!("{field} {why}"));
    if value.len() > MAX_URL_LEN {
        return Err(invalid("is too long"));
    }
    let url = url::Url::parse(value).map_err(|_| invalid("must be an absolute URL"))?;
    let scheme_ok = url.scheme() == "https" || (!https_only && url.scheme() == "http");
    if !scheme_ok || url.host_str().is_none() {
        return Err(invalid(if https_only {
            "must be an https:// URL (Telegram requires HTTPS)"
        } else {
            "must be an http(s):// URL"
        }));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(invalid("must not contain credentials"));
    }
    Ok(url)
}

/// Checks a bot's `forward_url`: an http(s) URL whose host is public, unless listed in `FORWARD_ALLOWED_HOSTS`.
pub fn validate_forward_url(state: &crate::state::AppState, value: &str) -> ApiResult<url::Url> {
    let url = validate_url("forward_url", value, false)?;
    let host = url.host_str().unwrap_or_default();
    if !state.settings.forward_destinations.host_permitted(host) {
        return Err(ApiError::invalid(
            "forward_url_not_public",
            format!(
                "forward_url points to {host}, a local or private address; list the host in FORWARD_ALLOWED_HOSTS \
                 to forward there on purpose"
            ),
        ));
    }
    Ok(url)
}

/// How a Bot API failure during an admin's request answers.
pub fn telegram_error(error: BotApiError) -> ApiError {
    match error {
        BotApiError::Rejected(401 | 404, _) => ApiError::invalid(
            "invalid_bot_token",
            "Telegram does not accept this bot token (check it with @BotFather).",
        ),
        BotApiError::Rejected(_, description) => {
            ApiError::invalid("telegram_rejected", format!("Telegram refused: {description}"))
        }
        BotApiError::RetryAfter(wait, _) => ApiError::Core(CoreError::RateLimited {
            retry_after: wait,
            message: "Telegram asks to wait before the next request.".into(),
        }),
        other => {
            tracing::warn!(error = %other, "Bot API call failed");
            ApiError::Core(CoreError::unavailable(
                "Telegram cannot be reached right now; try again shortly.",
            ))
        }
    }
}

/// Account `id` (not a removed one), or 404.
pub async fn find(state: &AppState, id: AccountId) -> ApiResult<Account> {
    account_repo::find(&state.store, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Account"))
}

/// Account `id` as admins see it, or 404.
pub async fn view(state: &AppState, id: AccountId) -> ApiResult<crm_core::views::AccountView> {
    account_repo::view(&state.store, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Account"))
}

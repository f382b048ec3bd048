//! Connected Telegram accounts, admins only: `GET/POST /api/accounts/`, `GET/PATCH /api/accounts/{id}/`, and
//! for bots `POST …/set_webhook/` and `…/delete_webhook/`. Secrets are never returned: a bot token or webhook
//! secret shows only as a masked hint.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use chrono::{DateTime, Utc};
use crm_core::CoreError;
use crm_core::account::{AccountStatus, AccountType};
use crm_core::secrets::{Sensitive, mask_secret};
use crm_core::token::generate_token;
use crm_store::StoreError;
use crm_store::entity::accounts;
use crm_store::page::PAGE_SIZE;
use crm_store::repo::accounts::{self as account_repo, AccountChange, NewAccount};
use crm_store::repo::audit::{self, AuditEntry};
use crm_telegram_bot::webhook::looks_like_bot_token;
use crm_telegram_bot::{ALLOWED_UPDATES, BotApiError};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::auth::{Admin, ClientAddr};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::pagination::{PageEnvelope, PageQuery};
use crate::state::AppState;

/// Longest URL accepted for webhooks and forwarding.
const MAX_URL_LEN: usize = 2048;

/// An account as admins see it; secrets appear only as masked hints.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountOut {
    /// Id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// `bot` or `personal`.
    pub account_type: String,
    /// Life-cycle state.
    pub status: String,
    /// Phone of a personal account.
    pub phone_number: Option<String>,
    /// MTProto application id.
    pub api_id: Option<i64>,
    /// The bot's @username.
    pub bot_username: Option<String>,
    /// Last characters of the bot token (`••••abcd`).
    pub bot_token_hint: Option<String>,
    /// The account's own Telegram user id.
    pub telegram_user_id: Option<i64>,
    /// Profile first name.
    pub first_name: Option<String>,
    /// Profile last name.
    pub last_name: Option<String>,
    /// Profile @username.
    pub username: Option<String>,
    /// `none`, `webhook` or `polling`.
    pub intake_mode: String,
    /// The URL Telegram posts updates to.
    pub webhook_url: Option<String>,
    /// The existing bot backend updates are forwarded to.
    pub forward_url: Option<String>,
    /// Last activity.
    pub last_activity: Option<DateTime<Utc>>,
    /// Last failure.
    pub last_error: Option<String>,
    /// Consecutive failures.
    pub error_count: i32,
    /// Machine reason of the `error` status (`session_revoked`, `banned`, `flood_wait`, `network`, ...).
    pub error_code: Option<String>,
    /// Personal account in `error`: when the next attempt is due (none: it needs an admin).
    pub retry_at: Option<DateTime<Utc>>,
    /// Personal account: the admin wants it connected.
    pub enabled: bool,
    /// Personal account: collect groups and supergroups.
    pub include_groups: bool,
    /// Personal account: collect broadcast channels.
    pub include_channels: bool,
    /// Personal account: mark chats read in Telegram when an operator reads them.
    pub mark_read_in_telegram: bool,
    /// Personal account: how the pending login code was delivered.
    pub pending_code_type: Option<String>,
    /// Personal account: when recent history was imported.
    pub history_imported_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// The account `id` as admins see it, read fresh; `None` if it is gone.
pub async fn account_view(state: &AppState, id: i64) -> Option<AccountOut> {
    let model = account_repo::find(&state.store, id).await.ok().flatten()?;
    shaped(state, model).ok()
}

/// Shapes a stored account for admins.
pub fn shaped(state: &AppState, model: accounts::Model) -> ApiResult<AccountOut> {
    let secrets = account_repo::open_secrets(&state.store, &model)?;
    Ok(AccountOut {
        id: model.id,
        name: model.name,
        account_type: model.account_type,
        status: model.status,
        phone_number: model.phone_number,
        api_id: model.api_id,
        bot_username: model.bot_username,
        bot_token_hint: secrets.bot_token.map(|token| mask_secret(&token.0, 4)),
        telegram_user_id: model.telegram_user_id,
        first_name: model.first_name,
        last_name: model.last_name,
        username: model.username,
        intake_mode: model.intake_mode,
        webhook_url: model.webhook_url,
        forward_url: model.forward_url,
        last_activity: model.last_activity,
        last_error: model.last_error,
        error_count: model.error_count,
        error_code: model.error_code,
        retry_at: model.retry_at,
        enabled: model.enabled,
        include_groups: model.include_groups,
        include_channels: model.include_channels,
        mark_read_in_telegram: model.mark_read_in_telegram,
        pending_code_type: model.pending_code_type,
        history_imported_at: model.history_imported_at,
        created_at: model.created_at,
        updated_at: model.updated_at,
    })
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

fn telegram_error(error: BotApiError) -> ApiError {
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
            ApiError::Core(CoreError::Unavailable(
                "Telegram cannot be reached right now; try again shortly.".into(),
            ))
        }
    }
}

/// Lists every account, 50 per page.
#[utoipa::path(get, path = "/api/accounts/", tag = "accounts", params(PageQuery), security(("token" = [])),
    responses((status = 200, body = PageEnvelope<AccountOut>), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Json<PageEnvelope<AccountOut>>> {
    let page = account_repo::list(&state.store, query.number()?, PAGE_SIZE).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for model in page.items {
        items.push(shaped(&state, model)?);
    }
    let page = crm_store::Page {
        items,
        total: page.total,
        page: page.page,
        page_size: page.page_size,
    };
    Ok(Json(PageEnvelope::build(page, &headers, &uri)?))
}

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

/// Connects an existing bot: checks the token with `getMe`, stores it sealed, and generates a webhook secret.
#[utoipa::path(post, path = "/api/accounts/", tag = "accounts", request_body = CreateAccount, security(("token" = [])),
    responses((status = 201, body = AccountOut), (status = 400, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ClientAddr(address): ClientAddr,
    Json(body): Json<CreateAccount>,
) -> ApiResult<(StatusCode, Json<AccountOut>)> {
    validate_name(&body.name)?;
    if body.account_type == AccountType::Personal {
        let created = crate::api::personal::create(&state, &body).await?;
        audit::record(
            &state.store,
            AuditEntry {
                actor_user_id: Some(admin.user.id),
                action: "account.created",
                target_type: Some("account"),
                target_id: Some(created.id),
                details: json!({ "account_type": "personal" }),
                ip: Some(address),
            },
        )
        .await?;
        crate::events::account_status(&state, &created).await;
        return Ok((StatusCode::CREATED, Json(created)));
    }
    let token = body
        .bot_token
        .as_deref()
        .map(str::trim)
        .unwrap_or_default()
        .to_owned();
    if !looks_like_bot_token(&token) {
        return Err(ApiError::invalid(
            "invalid_bot_token",
            "bot_token must look like 123456789:AA… (from @BotFather).",
        ));
    }
    if let Some(url) = &body.forward_url {
        validate_url("forward_url", url, false)?;
    }
    if account_repo::find_bot_by_token(&state.store, &token)
        .await?
        .is_some()
    {
        return Err(ApiError::Core(CoreError::Conflict {
            code: "bot_exists",
            message: "This bot is already connected.".into(),
        }));
    }
    let me = state.bot_api.get_me(&token).await.map_err(telegram_error)?;
    let created = account_repo::create(
        &state.store,
        NewAccount {
            name: body.name.trim().to_owned(),
            account_type: AccountType::Bot,
            status: AccountStatus::Active,
            phone_number: None,
            api_id: None,
            api_hash: None,
            session: None,
            bot_token: Some(Sensitive(token)),
            bot_username: me.username,
            webhook_secret: Some(Sensitive(generate_token())),
            telegram_user_id: Some(me.id),
            forward_url: body.forward_url,
        },
    )
    .await
    .map_err(|error| match error {
        StoreError::Duplicate(_) => ApiError::Core(CoreError::Conflict {
            code: "bot_exists",
            message: "This bot is already connected.".into(),
        }),
        other => other.into(),
    })?;
    audit::record(
        &state.store,
        AuditEntry {
            actor_user_id: Some(admin.user.id),
            action: "account.created",
            target_type: Some("account"),
            target_id: Some(created.id),
            details: json!({ "account_type": "bot", "bot_username": created.bot_username }),
            ip: Some(address),
        },
    )
    .await?;
    let account = shaped(&state, created)?;
    crate::events::account_status(&state, &account).await;
    Ok((StatusCode::CREATED, Json(account)))
}

async fn find(state: &AppState, id: i64) -> ApiResult<accounts::Model> {
    account_repo::find(&state.store, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Account"))
}

/// One account.
#[utoipa::path(get, path = "/api/accounts/{id}/", tag = "accounts", params(("id" = i64, Path)), security(("token" = [])),
    responses((status = 200, body = AccountOut), (status = 404, body = crate::error::ErrorBody)))]
pub async fn retrieve(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<i64>,
) -> ApiResult<Json<AccountOut>> {
    let model = find(&state, id).await?;
    Ok(Json(shaped(&state, model)?))
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

/// Renames an account or changes where its updates are forwarded.
#[utoipa::path(patch, path = "/api/accounts/{id}/", tag = "accounts", params(("id" = i64, Path)),
    request_body = UpdateAccount, security(("token" = [])),
    responses((status = 200, body = AccountOut), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<i64>,
    Json(body): Json<UpdateAccount>,
) -> ApiResult<Json<AccountOut>> {
    if let Some(name) = &body.name {
        validate_name(name)?;
    }
    if let Some(Some(url)) = &body.forward_url {
        validate_url("forward_url", url, false)?;
    }
    let current = find(&state, id).await?;
    let personal_fields = [
        body.include_groups,
        body.include_channels,
        body.mark_read_in_telegram,
    ];
    if current.account_type != AccountType::Personal.as_str() && personal_fields.iter().any(Option::is_some) {
        return Err(ApiError::invalid(
            "not_personal",
            "include_groups, include_channels and mark_read_in_telegram apply to personal accounts only",
        ));
    }
    let scope_changed = body.include_groups.is_some_and(|v| v != current.include_groups)
        || body
            .include_channels
            .is_some_and(|v| v != current.include_channels);
    let change = AccountChange {
        name: body.name.map(|n| n.trim().to_owned()),
        forward_url: body.forward_url,
        include_groups: body.include_groups,
        include_channels: body.include_channels,
        mark_read_in_telegram: body.mark_read_in_telegram,
        ..AccountChange::default()
    };
    let model = account_repo::update(&state.store, id, change)
        .await?
        .ok_or_else(|| ApiError::not_found("Account"))?;
    if scope_changed {
        // What the connection collects is fixed when it connects.
        state.bus.publish(crm_core::event::Event::AccountControl {
            account_id: Some(id),
            action: crm_core::event::AccountAction::Restart,
        });
    }
    let account = shaped(&state, model)?;
    crate::events::account_status(&state, &account).await;
    Ok(Json(account))
}

/// Where Telegram should send a bot's updates.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetWebhook {
    /// Public HTTPS base URL of this server, for example `https://crm.example.com`.
    pub base_url: String,
}

async fn bot(
    state: &AppState,
    id: i64,
) -> ApiResult<(accounts::Model, crm_store::repo::accounts::AccountSecrets)> {
    let model = find(state, id).await?;
    if model.account_type != AccountType::Bot.as_str() {
        return Err(ApiError::invalid("not_a_bot", "Only bot accounts have webhooks."));
    }
    let secrets = account_repo::open_secrets(&state.store, &model)?;
    Ok((model, secrets))
}

/// Points the bot's webhook at this server (with the secret header and the update kinds we handle).
#[utoipa::path(post, path = "/api/accounts/{id}/set_webhook/", tag = "accounts", params(("id" = i64, Path)),
    request_body = SetWebhook, security(("token" = [])),
    responses((status = 200, body = AccountOut), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)))]
pub async fn set_webhook(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<i64>,
    Json(body): Json<SetWebhook>,
) -> ApiResult<Json<AccountOut>> {
    let base = validate_url("base_url", &body.base_url, true)?;
    let (model, secrets) = bot(&state, id).await?;
    let (Some(token), Some(secret)) = (secrets.bot_token, secrets.webhook_secret) else {
        return Err(ApiError::Internal(format!(
            "bot account {id} lacks its token or secret"
        )));
    };
    let url = format!(
        "{}/api/webhook/bot/{}/",
        base.as_str().trim_end_matches('/'),
        model.id
    );
    state
        .bot_api
        .set_webhook(&token.0, &url, &secret.0, ALLOWED_UPDATES)
        .await
        .map_err(telegram_error)?;
    let change = AccountChange {
        intake_mode: Some("webhook".into()),
        webhook_url: Some(Some(url)),
        ..AccountChange::default()
    };
    let model = account_repo::update(&state.store, id, change)
        .await?
        .ok_or_else(|| ApiError::not_found("Account"))?;
    Ok(Json(shaped(&state, model)?))
}

/// Removes the bot's webhook; updates then wait at Telegram until the bot is polled or a webhook is set again.
#[utoipa::path(post, path = "/api/accounts/{id}/delete_webhook/", tag = "accounts", params(("id" = i64, Path)),
    security(("token" = [])),
    responses((status = 200, body = AccountOut), (status = 404, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<i64>,
) -> ApiResult<Json<AccountOut>> {
    Ok(Json(without_webhook(&state, id, "none").await?))
}

/// Removes the bot's webhook at Telegram and records the new intake mode.
async fn without_webhook(state: &AppState, id: i64, intake_mode: &str) -> ApiResult<AccountOut> {
    let (_, secrets) = bot(state, id).await?;
    let token = secrets
        .bot_token
        .ok_or_else(|| ApiError::Internal(format!("bot account {id} lacks its token")))?;
    state
        .bot_api
        .delete_webhook(&token.0)
        .await
        .map_err(telegram_error)?;
    let change = AccountChange {
        intake_mode: Some(intake_mode.into()),
        webhook_url: Some(None),
        ..AccountChange::default()
    };
    let model = account_repo::update(&state.store, id, change)
        .await?
        .ok_or_else(|| ApiError::not_found("Account"))?;
    let account = shaped(state, model)?;
    crate::events::account_status(state, &account).await;
    Ok(account)
}

/// Switches a bot to long polling: removes its webhook (Telegram refuses polls while one is set) and lets one
/// instance poll it, resuming from the stored offset.
#[utoipa::path(post, path = "/api/accounts/{id}/set_polling/", tag = "accounts", params(("id" = i64, Path)),
    security(("token" = [])),
    responses((status = 200, body = AccountOut), (status = 404, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)))]
pub async fn set_polling(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<i64>,
) -> ApiResult<Json<AccountOut>> {
    let account = without_webhook(&state, id, "polling").await?;
    state.polling_waker.notify_one();
    Ok(Json(account))
}

async fn set_bot_status(state: &AppState, id: i64, status: AccountStatus) -> ApiResult<AccountOut> {
    bot(state, id).await?;
    let change = AccountChange {
        status: Some(status),
        ..AccountChange::default()
    };
    let model = account_repo::update(&state.store, id, change)
        .await?
        .ok_or_else(|| ApiError::not_found("Account"))?;
    state.polling_waker.notify_one();
    let account = shaped(state, model)?;
    crate::events::account_status(state, &account).await;
    Ok(account)
}

/// A life-cycle change asked by an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Switch {
    Start,
    Stop,
    Restart,
}

async fn switch(state: &AppState, id: i64, switch: Switch) -> ApiResult<AccountOut> {
    let account = find(state, id).await?;
    if account.account_type == AccountType::Personal.as_str() {
        return match switch {
            Switch::Start => crate::api::personal::start(state, &account).await,
            Switch::Stop => crate::api::personal::stop(state, &account).await,
            Switch::Restart => crate::api::personal::restart(state, &account).await,
        };
    }
    let status = if switch == Switch::Stop {
        AccountStatus::Stopped
    } else {
        AccountStatus::Active
    };
    set_bot_status(state, id, status).await
}

/// Starts an account. A bot's webhook is accepted again and, in polling intake, it is polled; a personal account
/// is connected by one instance and stays connected until stopped.
#[utoipa::path(post, path = "/api/accounts/{id}/start/", tag = "accounts", params(("id" = i64, Path)), security(("token" = [])),
    responses((status = 200, body = AccountOut), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<i64>,
) -> ApiResult<Json<AccountOut>> {
    switch(&state, id, Switch::Start).await.map(Json)
}

/// Stops an account. A bot's webhook answers 403 (Telegram keeps the updates and retries) and polling pauses; a
/// personal account is disconnected.
#[utoipa::path(post, path = "/api/accounts/{id}/stop/", tag = "accounts", params(("id" = i64, Path)), security(("token" = [])),
    responses((status = 200, body = AccountOut), (status = 404, body = crate::error::ErrorBody)))]
pub async fn stop(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<i64>,
) -> ApiResult<Json<AccountOut>> {
    switch(&state, id, Switch::Stop).await.map(Json)
}

/// Restarts an account: a personal account disconnects and connects again (and is started if it was stopped); a
/// bot is started.
#[utoipa::path(post, path = "/api/accounts/{id}/restart/", tag = "accounts", params(("id" = i64, Path)), security(("token" = [])),
    responses((status = 200, body = AccountOut), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn restart(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<i64>,
) -> ApiResult<Json<AccountOut>> {
    switch(&state, id, Switch::Restart).await.map(Json)
}

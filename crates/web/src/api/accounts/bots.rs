//! Bot accounts: connecting one (its token checked with `getMe`, stored sealed, with a fresh webhook secret),
//! its intake (`POST /api/accounts/{id}/set_webhook/`, `…/delete_webhook/`, `…/set_polling/`) and its start and
//! stop.

use axum::extract::State;
use crm_core::CoreError;
use crm_core::account::{Account, AccountStatus, AccountType, IntakeMode};
use crm_core::ids::AccountId;
use crm_core::secrets::Sensitive;
use crm_core::token::generate_token;
use crm_core::views::AccountView;
use crm_store::StoreError;
use crm_store::repo::accounts::{self as account_repo, AccountChange, AccountSecrets, NewAccount};
use crm_telegram_bot::ALLOWED_UPDATES;
use crm_telegram_bot::webhook::looks_like_bot_token;
use serde::Deserialize;
use utoipa::ToSchema;

use super::input::{CreateAccount, find, telegram_error, validate_forward_url, validate_url, view};
use crate::auth::Admin;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::state::AppState;

/// Connects an existing bot from `POST /api/accounts/`.
pub async fn create(state: &AppState, body: &CreateAccount) -> ApiResult<Account> {
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
        validate_forward_url(state, url)?;
    }
    let exists = || {
        ApiError::Core(CoreError::Conflict {
            code: "bot_exists",
            message: "This bot is already connected.".into(),
        })
    };
    if account_repo::find_bot_by_token(&state.store, &token)
        .await?
        .is_some()
    {
        return Err(exists());
    }
    let me = state.bot_api.get_me(&token).await.map_err(telegram_error)?;
    account_repo::create(
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
            forward_url: body.forward_url.clone(),
        },
    )
    .await
    .map_err(|error| match error {
        StoreError::Duplicate(_) => exists(),
        other => other.into(),
    })
}

/// Where Telegram should send a bot's updates.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetWebhook {
    /// Public HTTPS base URL of this server, for example `https://crm.example.com`.
    pub base_url: String,
}

async fn bot(state: &AppState, id: AccountId) -> ApiResult<(Account, AccountSecrets)> {
    let account = find(state, id).await?;
    if account.kind != AccountType::Bot {
        return Err(ApiError::invalid("not_a_bot", "Only bot accounts have webhooks."));
    }
    let secrets = account_repo::secrets(&state.store, id).await?;
    Ok((account, secrets))
}

async fn changed(state: &AppState, id: AccountId, change: AccountChange) -> ApiResult<AccountView> {
    account_repo::update(&state.store, id, change)
        .await?
        .ok_or_else(|| ApiError::not_found("Account"))?;
    view(state, id).await
}

/// Points the bot's webhook at this server (with the secret header and the update kinds we handle).
#[utoipa::path(post, path = "/api/accounts/{id}/set_webhook/", tag = "accounts", params(("id" = i64, Path)),
    request_body = SetWebhook, security(("token" = [])),
    responses((status = 200, body = AccountView), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)))]
pub async fn set_webhook(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<i64>,
    Json(body): Json<SetWebhook>,
) -> ApiResult<Json<AccountView>> {
    let id = AccountId(id);
    let base = validate_url("base_url", &body.base_url, true)?;
    if base.query().is_some() || base.fragment().is_some() {
        return Err(ApiError::invalid(
            "invalid_field",
            "base_url must be the server's address without `?` or `#`, for example https://crm.example.com",
        ));
    }
    let (account, secrets) = bot(&state, id).await?;
    let (Some(token), Some(secret)) = (secrets.bot_token, secrets.webhook_secret) else {
        return Err(ApiError::Internal(format!(
            "bot account {id} lacks its token or secret"
        )));
    };
    let url = format!(
        "{}/api/webhook/bot/{}/",
        base.as_str().trim_end_matches('/'),
        account.id
    );
    state
        .bot_api
        .set_webhook(&token.0, &url, &secret.0, ALLOWED_UPDATES)
        .await
        .map_err(telegram_error)?;
    let change = AccountChange {
        intake_mode: Some(IntakeMode::Webhook),
        webhook_url: Some(Some(url)),
        ..AccountChange::default()
    };
    Ok(Json(changed(&state, id, change).await?))
}

/// Removes the bot's webhook; updates then wait at Telegram until the bot is polled or a webhook is set again.
#[utoipa::path(post, path = "/api/accounts/{id}/delete_webhook/", tag = "accounts", params(("id" = i64, Path)),
    security(("token" = [])),
    responses((status = 200, body = AccountView), (status = 404, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)))]
pub async fn delete_webhook(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<i64>,
) -> ApiResult<Json<AccountView>> {
    Ok(Json(
        without_webhook(&state, AccountId(id), IntakeMode::None).await?,
    ))
}

/// Removes the bot's webhook at Telegram and records the new intake mode.
async fn without_webhook(state: &AppState, id: AccountId, intake_mode: IntakeMode) -> ApiResult<AccountView> {
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
        intake_mode: Some(intake_mode),
        webhook_url: Some(None),
        ..AccountChange::default()
    };
    changed(state, id, change).await
}

/// Switches a bot to long polling: removes its webhook (Telegram refuses polls while one is set) and lets one
/// instance poll it, resuming from the stored offset.
#[utoipa::path(post, path = "/api/accounts/{id}/set_polling/", tag = "accounts", params(("id" = i64, Path)),
    security(("token" = [])),
    responses((status = 200, body = AccountView), (status = 404, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)))]
pub async fn set_polling(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<i64>,
) -> ApiResult<Json<AccountView>> {
    let account = without_webhook(&state, AccountId(id), IntakeMode::Polling).await?;
    state.polling_waker.notify_one();
    Ok(Json(account))
}

/// Starts (`active`) or stops (`stopped`) a bot: a stopped bot's webhook answers 403 and its polling pauses.
pub async fn set_status(state: &AppState, id: AccountId, status: AccountStatus) -> ApiResult<AccountView> {
    bot(state, id).await?;
    let change = AccountChange {
        status: Some(status),
        ..AccountChange::default()
    };
    let account = changed(state, id, change).await?;
    state.polling_waker.notify_one();
    Ok(account)
}

//! The bot webhook: `POST /api/webhook/bot/{account_id}/` authenticated by Telegram's secret header, and the
//! predecessor's forms (`/api/webhook/bot/<bot_token>/`, `X-Bot-Token`, `?token=`). It answers 200 only once the
//! update is stored or knowingly ignored; an unhandled kind is 200 and counted, so Telegram never retries it.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use crm_core::account::{Account, AccountStatus, AccountType};
use crm_core::ids::AccountId;
use crm_core::inbox::Arrival;
use crm_store::repo::accounts as account_repo;
use crm_telegram_bot::map_update;
use crm_telegram_bot::webhook::{SECRET_HEADER, looks_like_bot_token, secret_matches};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

/// What was done with an update.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookResponse {
    /// `processed`.
    pub status: &'static str,
    /// `stored`, `duplicate`, `updated` or `ignored`.
    pub outcome: &'static str,
}

/// `?token=` of the predecessor's form.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct TokenQuery {
    /// The bot token (legacy; prefer the secret header).
    pub token: Option<String>,
}

/// The one answer to every failed authentication, whether or not the account exists, so that account ids and
/// bot tokens cannot be probed.
fn unauthenticated() -> ApiError {
    ApiError::Core(crm_core::CoreError::Unauthenticated(
        "Webhook secret missing or wrong.".into(),
    ))
}

async fn bot_by_token(state: &AppState, token: &str) -> ApiResult<Account> {
    if !looks_like_bot_token(token) {
        return Err(unauthenticated());
    }
    account_repo::find_bot_by_token(&state.store, token)
        .await?
        .ok_or_else(unauthenticated)
}

async fn process(state: &AppState, account: Account, body: &Bytes) -> ApiResult<Json<WebhookResponse>> {
    if matches!(account.status, AccountStatus::Stopped | AccountStatus::Inactive) {
        return Err(ApiError::Core(crm_core::CoreError::Forbidden(
            "Bot account is not active.".into(),
        )));
    }
    let update: serde_json::Value = serde_json::from_slice(body)
        .map_err(|error| ApiError::invalid("invalid_json", format!("The update is not JSON: {error}")))?;
    if !update.is_object() {
        return Err(ApiError::invalid(
            "invalid_update",
            "An update must be a JSON object.",
        ));
    }
    let event = map_update(&update, account.telegram_user_id);
    let arrival = Arrival {
        account,
        event,
        raw_update: Some(update),
    };
    let intake = state.inbox.receive(arrival).await?;
    Ok(Json(WebhookResponse {
        status: "processed",
        outcome: intake.outcome.as_str(),
    }))
}

/// Receives an update for the bot account `{account}` (its id, with Telegram's secret header), or, for the
/// predecessor's clients, the bot token in place of the id.
#[utoipa::path(post, path = "/api/webhook/bot/{account}/", tag = "webhook",
    params(("account" = String, Path, description = "Account id, or (legacy) the bot token"),
        ("X-Telegram-Bot-Api-Secret-Token" = Option<String>, Header, description = "The webhook secret")),
    request_body(content = Object, description = "A Bot API Update"),
    responses((status = 200, body = WebhookResponse),
        (status = 401, description = "Unknown account, or secret missing or wrong", body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody)))]
pub async fn by_path(
    State(state): State<AppState>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<WebhookResponse>> {
    let account = match account.parse::<i64>() {
        Ok(id) => {
            let (found, secret) = state
                .webhook_accounts
                .get(&state.store, AccountId(id))
                .await?
                .filter(|(account, _)| account.kind == AccountType::Bot)
                .ok_or_else(unauthenticated)?;
            let provided = headers
                .get(SECRET_HEADER)
                .and_then(|v| v.to_str().ok())
                .ok_or_else(unauthenticated)?;
            let expected = secret.ok_or_else(unauthenticated)?;
            if !secret_matches(&expected.0, provided) {
                tracing::warn!(account_id = id, "webhook call with a wrong secret refused");
                return Err(unauthenticated());
            }
            found
        }
        Err(_) => bot_by_token(&state, &account).await?,
    };
    process(&state, account, &body).await
}

/// The predecessor's form without a path token: the token comes in `X-Bot-Token` or `?token=`.
#[utoipa::path(post, path = "/api/webhook/bot/", tag = "webhook", params(TokenQuery,
        ("X-Bot-Token" = Option<String>, Header, description = "The bot token (legacy)")),
    request_body(content = Object, description = "A Bot API Update"),
    responses((status = 200, body = WebhookResponse),
        (status = 401, description = "Token missing or unknown", body = crate::error::ErrorBody)))]
pub async fn by_token(
    State(state): State<AppState>,
    Query(query): Query<TokenQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<WebhookResponse>> {
    let token = headers
        .get("x-bot-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or(query.token)
        .ok_or_else(unauthenticated)?;
    let account = bot_by_token(&state, &token).await?;
    process(&state, account, &body).await
}

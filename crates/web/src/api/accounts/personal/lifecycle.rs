//! A personal account's life cycle: start (connected by one instance until stopped), stop, restart, and
//! `DELETE /api/accounts/{id}/`, which logs a personal account's session out at Telegram first (and removes a
//! bot's webhook), keeping the chats as history unless `?purge=true`.

use axum::extract::State;
use crm_core::CoreError;
use crm_core::account::{Account, AccountType, IntakeMode};
use crm_core::event::AccountAction;
use crm_core::ids::AccountId;
use crm_core::views::AccountView;
use crm_store::repo::accounts as account_repo;
use crm_store::repo::audit::{self, AuditEntry};
use crm_store::repo::personal;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::common::{command, disconnect};
use crate::api::accounts::input::{find, view};
use crate::auth::{Admin, ClientAddr};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

/// Starts a personal account: it is connected (by one instance) and stays connected until stopped.
pub async fn start(state: &AppState, account: &Account) -> ApiResult<AccountView> {
    if !account.has_session {
        return Err(ApiError::Core(CoreError::Conflict {
            code: "login_required",
            message: "This account is not logged in; log in with a code or a QR code first.".into(),
        }));
    }
    personal::start(&state.store, account).await?;
    command(state, Some(account.id), AccountAction::Start);
    view(state, account.id).await
}

/// Stops a personal account: its connection is closed and it stays stopped until started.
pub async fn stop(state: &AppState, account: &Account) -> ApiResult<AccountView> {
    personal::set_enabled(&state.store, account.id, false).await?;
    command(state, Some(account.id), AccountAction::Stop);
    view(state, account.id).await
}

/// Restarts a personal account: disconnects and connects again (starting it if it was stopped).
pub async fn restart(state: &AppState, account: &Account) -> ApiResult<AccountView> {
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
    let id = AccountId(id);
    let account = find(&state, id).await?;
    let purged = query.purge.unwrap_or(false);
    let mut logged_out = false;
    let mut logout_error = None;
    match account.kind {
        AccountType::Personal => {
            personal::set_enabled(&state.store, id, false).await?;
            disconnect(&state, id).await?;
            if let (true, Some(handle)) = (
                account.has_session,
                personal::handle(&state.store, &account).await?,
            ) {
                match state.user_gateway.log_out(&handle).await {
                    Ok(()) => logged_out = true,
                    Err(error) => logout_error = Some(error.to_string()),
                }
            }
        }
        AccountType::Bot if account.intake_mode == IntakeMode::Webhook => {
            if let Some(token) = account_repo::secrets(&state.store, id).await?.bot_token
                && let Err(error) = state.bot_api.delete_webhook(&token.0).await
            {
                logout_error = Some(format!("the webhook could not be removed: {error}"));
            }
        }
        AccountType::Bot => {}
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
            actor_user_id: Some(admin.user.id.0),
            action: "account.removed",
            target_type: Some("account"),
            target_id: Some(id.0),
            details: json!({ "purged": purged, "logged_out": logged_out }),
            ip: Some(address),
        },
    )
    .await?;
    Ok(Json(Removed {
        status: "removed",
        account_id: id.0,
        logged_out,
        logout_error,
        purged,
    }))
}

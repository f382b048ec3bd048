//! Connected Telegram accounts, admins only: `GET/POST /api/accounts/`, `GET/PATCH /api/accounts/{id}/`, and
//! `…/start/`, `…/stop/`, `…/restart/` for either kind. Secrets are never returned: a bot token shows only as a
//! masked hint. Bots' intake is in [`bots`]; personal accounts' logins and life cycle in [`personal`].

pub mod bots;
pub mod input;
pub mod personal;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use crm_core::account::{AccountStatus, AccountType};
use crm_core::event::{AccountAction, Event};
use crm_core::ids::AccountId;
use crm_core::views::AccountView;
use crm_store::page::PAGE_SIZE;
use crm_store::repo::accounts::{self as account_repo, AccountChange};
use crm_store::repo::audit::{self, AuditEntry};
use serde_json::json;

use self::input::{CreateAccount, UpdateAccount, find, validate_name, view};
use crate::auth::{Admin, ClientAddr};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::pagination::{PageEnvelope, PageQuery};
use crate::state::AppState;

/// Lists every account, 50 per page.
#[utoipa::path(get, path = "/api/accounts/", tag = "accounts", params(PageQuery), security(("token" = [])),
    responses((status = 200, body = PageEnvelope<AccountView>), (status = 403, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Json<PageEnvelope<AccountView>>> {
    let page = account_repo::list(&state.store, query.number()?, PAGE_SIZE).await?;
    Ok(Json(PageEnvelope::build(page, &headers, &uri)?))
}

/// Connects an account: a bot (its token checked with `getMe`, stored sealed, a webhook secret generated), or
/// a personal account ready to log in.
#[utoipa::path(post, path = "/api/accounts/", tag = "accounts", request_body = CreateAccount, security(("token" = [])),
    responses((status = 201, body = AccountView), (status = 400, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ClientAddr(address): ClientAddr,
    Json(body): Json<CreateAccount>,
) -> ApiResult<(StatusCode, Json<AccountView>)> {
    validate_name(&body.name)?;
    let created = match body.account_type {
        AccountType::Personal => personal::common::create(&state, &body).await?,
        AccountType::Bot => bots::create(&state, &body).await?,
    };
    audit::record(
        &state.store,
        AuditEntry {
            actor_user_id: Some(admin.user.id.0),
            action: "account.created",
            target_type: Some("account"),
            target_id: Some(created.id.0),
            details: json!({ "account_type": created.kind, "bot_username": created.bot_username }),
            ip: Some(address),
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(view(&state, created.id).await?)))
}

/// One account.
#[utoipa::path(get, path = "/api/accounts/{id}/", tag = "accounts", params(("id" = i64, Path)), security(("token" = [])),
    responses((status = 200, body = AccountView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn retrieve(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<i64>,
) -> ApiResult<Json<AccountView>> {
    Ok(Json(view(&state, AccountId(id)).await?))
}

/// Renames an account, changes where its updates are forwarded, or (personal accounts) what it collects.
#[utoipa::path(patch, path = "/api/accounts/{id}/", tag = "accounts", params(("id" = i64, Path)),
    request_body = UpdateAccount, security(("token" = [])),
    responses((status = 200, body = AccountView), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<i64>,
    Json(body): Json<UpdateAccount>,
) -> ApiResult<Json<AccountView>> {
    let id = AccountId(id);
    if let Some(name) = &body.name {
        validate_name(name)?;
    }
    if let Some(Some(url)) = &body.forward_url {
        input::validate_forward_url(&state, url)?;
    }
    let current = find(&state, id).await?;
    let personal_fields = [
        body.include_groups,
        body.include_channels,
        body.mark_read_in_telegram,
    ];
    if current.kind != AccountType::Personal && personal_fields.iter().any(Option::is_some) {
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
    account_repo::update(&state.store, id, change)
        .await?
        .ok_or_else(|| ApiError::not_found("Account"))?;
    if scope_changed {
        // What the connection collects is fixed when it connects.
        state.bus.publish(Event::AccountControl {
            account_id: Some(id.0),
            action: AccountAction::Restart,
        });
    }
    Ok(Json(view(&state, id).await?))
}

/// A life-cycle change asked by an admin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Switch {
    Start,
    Stop,
    Restart,
}

async fn switch(state: &AppState, id: AccountId, switch: Switch) -> ApiResult<AccountView> {
    let account = find(state, id).await?;
    match (account.kind, switch) {
        (AccountType::Personal, Switch::Start) => personal::lifecycle::start(state, &account).await,
        (AccountType::Personal, Switch::Stop) => personal::lifecycle::stop(state, &account).await,
        (AccountType::Personal, Switch::Restart) => personal::lifecycle::restart(state, &account).await,
        (AccountType::Bot, Switch::Stop) => bots::set_status(state, id, AccountStatus::Stopped).await,
        (AccountType::Bot, Switch::Start | Switch::Restart) => {
            bots::set_status(state, id, AccountStatus::Active).await
        }
    }
}

/// Starts an account. A bot's webhook is accepted again and, in polling intake, it is polled; a personal account
/// is connected by one instance and stays connected until stopped.
#[utoipa::path(post, path = "/api/accounts/{id}/start/", tag = "accounts", params(("id" = i64, Path)), security(("token" = [])),
    responses((status = 200, body = AccountView), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn start(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<i64>,
) -> ApiResult<Json<AccountView>> {
    switch(&state, AccountId(id), Switch::Start).await.map(Json)
}

/// Stops an account. A bot's webhook answers 403 (Telegram keeps the updates and retries) and polling pauses; a
/// personal account is disconnected.
#[utoipa::path(post, path = "/api/accounts/{id}/stop/", tag = "accounts", params(("id" = i64, Path)), security(("token" = [])),
    responses((status = 200, body = AccountView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn stop(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<i64>,
) -> ApiResult<Json<AccountView>> {
    switch(&state, AccountId(id), Switch::Stop).await.map(Json)
}

/// Restarts an account: a personal account disconnects and connects again (and is started if it was stopped); a
/// bot is started.
#[utoipa::path(post, path = "/api/accounts/{id}/restart/", tag = "accounts", params(("id" = i64, Path)), security(("token" = [])),
    responses((status = 200, body = AccountView), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn restart(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<i64>,
) -> ApiResult<Json<AccountView>> {
    switch(&state, AccountId(id), Switch::Restart).await.map(Json)
}

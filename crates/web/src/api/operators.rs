//! Admins manage the team: `GET/POST /api/operators/`, `GET/PATCH/PUT/DELETE /api/operators/{id}/`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use chrono::{DateTime, Utc};
use crm_core::CoreError;
use crm_core::event::Event;
use crm_core::ids::UserId;
use crm_core::password::hash_password;
use crm_core::user::{self, DEFAULT_MAX_CHATS, Role, User};
use crm_store::repo::audit::{self, AuditEntry};
use crm_store::repo::users::{NewUser, UserChange};
use crm_store::repo::{tokens, users};
use crm_store::{StoreError, page::PAGE_SIZE};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use crate::auth::{Admin, ClientAddr};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::pagination::{PageEnvelope, PageQuery};
use crate::state::AppState;

/// A user as the API shows it (never the password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserOut {
    /// Id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Name shown to colleagues.
    pub display_name: String,
    /// `admin` or `operator`.
    pub role: Role,
    /// Whether the user may log in.
    pub is_active: bool,
    /// Chat limit.
    pub max_chats: i32,
    /// Chats held now.
    pub current_chats: u64,
    /// UI language.
    pub language: String,
    /// Last successful login.
    pub last_login_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl UserOut {
    /// Shapes a stored user.
    pub fn from_model(model: User, current_chats: u64) -> Self {
        Self {
            id: model.id.0,
            role: model.role,
            username: model.username,
            display_name: model.display_name,
            is_active: model.is_active,
            max_chats: model.max_chats,
            current_chats,
            language: model.language,
            last_login_at: model.last_login_at,
            created_at: model.created_at,
            updated_at: model.updated_at,
        }
    }
}

/// A new team member.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOperator {
    /// Login name: letters, digits and `@ . + - _`, up to 150.
    pub username: String,
    /// At least 8 characters.
    pub password: String,
    /// Defaults to `operator`.
    pub role: Option<Role>,
    /// Defaults to the username.
    pub display_name: Option<String>,
    /// Defaults to 50.
    pub max_chats: Option<i32>,
    /// Defaults to `ru`.
    pub language: Option<String>,
    /// Defaults to true.
    pub is_active: Option<bool>,
}

/// A change; omitted fields stay as they are. A new `password` resets it and ends the user's sessions;
/// `is_active: false` ends them too.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateOperator {
    /// New role.
    pub role: Option<Role>,
    /// Activate or deactivate.
    pub is_active: Option<bool>,
    /// New chat limit.
    pub max_chats: Option<i32>,
    /// New display name.
    pub display_name: Option<String>,
    /// New language.
    pub language: Option<String>,
    /// New password (a reset).
    pub password: Option<String>,
}

/// Filters of the list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct OperatorFilter {
    /// Page number, from 1.
    pub page: Option<u64>,
    /// Only users of this role.
    pub role: Option<Role>,
}

/// Checks a new password for `username` and hashes it, within the bound on password work.
async fn hash(state: &AppState, password: String, username: &str) -> ApiResult<String> {
    user::validate_password(&password, username)?;
    state
        .password_work
        .run(move || hash_password(&password))
        .await?
        .map_err(ApiError::from)
}

fn username_taken() -> ApiError {
    ApiError::Core(CoreError::Conflict {
        code: "username_taken",
        message: "A user with that username already exists.".into(),
    })
}

async fn shaped(state: &AppState, model: User) -> ApiResult<UserOut> {
    let current = users::active_chat_count(&state.store, model.id).await?;
    Ok(UserOut::from_model(model, current))
}

/// Lists the team (admins and operators), oldest first, 50 per page.
#[utoipa::path(get, path = "/api/operators/", tag = "operators", params(OperatorFilter), security(("token" = [])),
    responses((status = 200, body = PageEnvelope<UserOut>), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _admin: Admin,
    Query(filter): Query<OperatorFilter>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Json<PageEnvelope<UserOut>>> {
    let page_number = PageQuery { page: filter.page }.number()?;
    let page = users::list(&state.store, filter.role, page_number, PAGE_SIZE).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for model in page.items {
        items.push(shaped(&state, model).await?);
    }
    let page = crm_store::Page {
        items,
        total: page.total,
        page: page.page,
        page_size: page.page_size,
    };
    Ok(Json(PageEnvelope::build(page, &headers, &uri)?))
}

/// Adds a team member.
#[utoipa::path(post, path = "/api/operators/", tag = "operators", request_body = CreateOperator,
    security(("token" = [])),
    responses((status = 201, body = UserOut), (status = 400, body = crate::error::ErrorBody),
        (status = 409, description = "username taken", body = crate::error::ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ClientAddr(address): ClientAddr,
    Json(body): Json<CreateOperator>,
) -> ApiResult<(StatusCode, Json<UserOut>)> {
    let username = user::canonical_username(&body.username)?;
    let display_name = body.display_name.unwrap_or_else(|| body.username.clone());
    user::validate_display_name(&display_name)?;
    let max_chats = body.max_chats.unwrap_or(DEFAULT_MAX_CHATS);
    user::validate_max_chats(max_chats)?;
    let language = body.language.unwrap_or_else(|| "ru".to_owned());
    user::validate_language(&language)?;
    if users::username_taken(&state.store, &username).await? {
        return Err(username_taken());
    }
    let new_user = NewUser {
        password_hash: hash(&state, body.password, &username).await?,
        username,
        role: body.role.unwrap_or(Role::Operator),
        display_name,
        language,
        max_chats,
        is_active: body.is_active.unwrap_or(true),
    };
    let model = users::create(&state.store, new_user)
        .await
        .map_err(|error| match error {
            StoreError::Duplicate(_) => username_taken(),
            other => other.into(),
        })?;
    audit::record(
        &state.store,
        AuditEntry {
            actor_user_id: Some(admin.user.id.0),
            action: "operator.created",
            target_type: Some("user"),
            target_id: Some(model.id.0),
            details: json!({ "username": model.username, "role": model.role }),
            ip: Some(address),
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(shaped(&state, model).await?)))
}

/// One team member.
#[utoipa::path(get, path = "/api/operators/{id}/", tag = "operators", params(("id" = i64, Path)),
    security(("token" = [])),
    responses((status = 200, body = UserOut), (status = 404, body = crate::error::ErrorBody)))]
pub async fn retrieve(
    State(state): State<AppState>,
    _admin: Admin,
    Path(id): Path<i64>,
) -> ApiResult<Json<UserOut>> {
    let model = users::find(&state.store, UserId(id))
        .await?
        .ok_or_else(|| ApiError::not_found("Operator"))?;
    Ok(Json(shaped(&state, model).await?))
}

fn refuse_self_lockout(admin_id: i64, id: i64, change: &UpdateOperator) -> ApiResult<()> {
    let demotes = change.role.is_some_and(|role| role != Role::Admin);
    let deactivates = change.is_active == Some(false);
    if admin_id == id && (demotes || deactivates) {
        return Err(ApiError::Core(CoreError::Conflict {
            code: "self_lockout",
            message: "You cannot deactivate or demote yourself; ask another admin.".into(),
        }));
    }
    Ok(())
}

/// Changes a team member: role, active flag, chat limit, names, or a password reset.
#[utoipa::path(patch, path = "/api/operators/{id}/", tag = "operators", params(("id" = i64, Path)),
    request_body = UpdateOperator, security(("token" = [])),
    responses((status = 200, body = UserOut), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ClientAddr(address): ClientAddr,
    Path(id): Path<i64>,
    Json(body): Json<UpdateOperator>,
) -> ApiResult<Json<UserOut>> {
    refuse_self_lockout(admin.user.id.0, id, &body)?;
    if let Some(max_chats) = body.max_chats {
        user::validate_max_chats(max_chats)?;
    }
    if let Some(name) = &body.display_name {
        user::validate_display_name(name)?;
    }
    if let Some(language) = &body.language {
        user::validate_language(language)?;
    }
    let password_reset = body.password.is_some();
    let password_hash = match body.password {
        Some(password) => {
            let target = users::find(&state.store, UserId(id))
                .await?
                .ok_or_else(|| ApiError::not_found("Operator"))?;
            Some(hash(&state, password, &target.username).await?)
        }
        None => None,
    };
    let deactivated = body.is_active == Some(false);
    let change = UserChange {
        role: body.role,
        is_active: body.is_active,
        max_chats: body.max_chats,
        display_name: body.display_name,
        language: body.language,
        password_hash,
    };
    let model = users::update(&state.store, UserId(id), change)
        .await?
        .ok_or_else(|| ApiError::not_found("Operator"))?;
    if password_reset || deactivated {
        tokens::revoke_all_for_user(&state.store, UserId(id)).await?;
        state.bus.publish(Event::SessionsRevoked { user_id: id });
    }
    state.bus.publish(Event::UserChanged { user_id: id });
    audit::record(&state.store, AuditEntry {
        actor_user_id: Some(admin.user.id.0),
        action: "operator.updated",
        target_type: Some("user"),
        target_id: Some(id),
        details: json!({ "password_reset": password_reset, "is_active": model.is_active, "role": model.role,
            "max_chats": model.max_chats }),
        ip: Some(address),
    })
    .await?;
    Ok(Json(shaped(&state, model).await?))
}

/// Removes a team member: their sessions end, their chats are released, their history stays.
#[utoipa::path(delete, path = "/api/operators/{id}/", tag = "operators", params(("id" = i64, Path)),
    security(("token" = [])),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ClientAddr(address): ClientAddr,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    if admin.user.id.0 == id {
        return Err(ApiError::Core(CoreError::Conflict {
            code: "self_lockout",
            message: "You cannot remove yourself; ask another admin.".into(),
        }));
    }
    if !users::soft_delete(&state.store, UserId(id)).await? {
        return Err(ApiError::not_found("Operator"));
    }
    tokens::revoke_all_for_user(&state.store, UserId(id)).await?;
    state.bus.publish(Event::SessionsRevoked { user_id: id });
    state.bus.publish(Event::UserChanged { user_id: id });
    audit::record(
        &state.store,
        AuditEntry {
            actor_user_id: Some(admin.user.id.0),
            action: "operator.removed",
            target_type: Some("user"),
            target_id: Some(id),
            details: json!({}),
            ip: Some(address),
        },
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

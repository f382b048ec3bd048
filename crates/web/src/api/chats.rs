//! The inbox's chat list: `GET /api/chats/`, `GET /api/chats/{id}/`, `POST /api/chats/{id}/mark_as_read/`.
//! Admins see every chat; an operator sees only chats actively assigned to them (404 for any other).

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use crm_core::ids::{AccountId, ChatId, UserId};
use crm_core::views::ChatView;
use crm_store::page::PAGE_SIZE;
use crm_store::repo::chats::{self as chat_repo, ChatFilter};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::pagination::{PageEnvelope, PageQuery};
use crate::state::AppState;

/// Longest accepted search text.
const MAX_SEARCH_LEN: usize = 200;

/// Filters of the chat list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ChatQuery {
    /// Page number, from 1.
    pub page: Option<u64>,
    /// Only chats of this account id.
    pub account: Option<i64>,
    /// `1`/`true`/`yes`: only chats with unread messages.
    pub unread: Option<String>,
    /// Text in title, username or names (case-insensitive).
    pub search: Option<String>,
    /// `1`/`true`/`yes`: only chats assigned to the caller (also for admins).
    pub assigned_only: Option<String>,
}

fn truthy(value: Option<&str>) -> ApiResult<bool> {
    match value.map(str::to_ascii_lowercase).as_deref() {
        None | Some("" | "0" | "false" | "no") => Ok(false),
        Some("1" | "true" | "yes") => Ok(true),
        Some(_) => Err(ApiError::invalid(
            "invalid_query",
            "Boolean filters take 1/0, true/false or yes/no.",
        )),
    }
}

/// Lists the chats the caller may see, newest activity first, 50 per page.
#[utoipa::path(get, path = "/api/chats/", tag = "chats", params(ChatQuery), security(("token" = [])),
    responses((status = 200, body = PageEnvelope<ChatView>), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: CurrentUser,
    Query(query): Query<ChatQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Json<PageEnvelope<ChatView>>> {
    let page = PageQuery { page: query.page }.number()?;
    if query
        .search
        .as_ref()
        .is_some_and(|s| s.chars().count() > MAX_SEARCH_LEN)
    {
        return Err(ApiError::invalid(
            "invalid_query",
            format!("search is limited to {MAX_SEARCH_LEN} characters"),
        ));
    }
    let filter = ChatFilter {
        account_id: query.account.map(AccountId),
        unread_only: truthy(query.unread.as_deref())?,
        search: query.search,
        assigned_to: truthy(query.assigned_only.as_deref())?.then_some(caller.user.id),
    };
    let page = chat_repo::list(&state.store, caller.viewer(), &filter, page, PAGE_SIZE).await?;
    Ok(Json(PageEnvelope::build(page, &headers, &uri)?))
}

/// One chat the caller may see.
#[utoipa::path(get, path = "/api/chats/{id}/", tag = "chats", params(("id" = i64, Path)), security(("token" = [])),
    responses((status = 200, body = ChatView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn retrieve(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<ChatView>> {
    let chat = chat_repo::view(&state.store, caller.viewer(), ChatId(id))
        .await?
        .ok_or_else(|| ApiError::not_found("Chat"))?;
    Ok(Json(chat))
}

/// Result of marking read.
#[derive(Debug, Serialize, ToSchema)]
pub struct MarkedRead {
    /// `success`, as in the predecessor.
    pub status: &'static str,
    /// The chat after the change.
    pub chat: ChatView,
}

/// Marks a chat the caller may see as read (its unread count becomes 0).
#[utoipa::path(post, path = "/api/chats/{id}/mark_as_read/", tag = "chats", params(("id" = i64, Path)),
    security(("token" = [])),
    responses((status = 200, body = MarkedRead), (status = 404, body = crate::error::ErrorBody)))]
pub async fn mark_as_read(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<MarkedRead>> {
    let chat = state.inbox.mark_read(&caller.user, ChatId(id)).await?;
    Ok(Json(MarkedRead {
        status: "success",
        chat,
    }))
}

/// Whom to give the chat to; admins may name any active user, operators only themselves.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    /// The new holder (default: the caller).
    pub operator_id: Option<i64>,
}

/// Result of an assignment.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssignResult {
    /// `assigned` or `unassigned`.
    pub status: &'static str,
    /// The assignment's id.
    pub assignment_id: Option<i64>,
    /// The holder now.
    pub operator_id: Option<i64>,
}

fn optional_body(body: &[u8]) -> ApiResult<AssignBody> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(AssignBody::default());
    }
    serde_json::from_slice(body).map_err(|error| ApiError::invalid("invalid_body", error.to_string()))
}

/// Assigns the chat: an admin to anyone active (taking it from its holder), an operator to themselves.
/// The holder's `max_chats` is enforced.
#[utoipa::path(post, path = "/api/chats/{id}/assign/", tag = "chats", params(("id" = i64, Path)),
    request_body(content = AssignBody, description = "Optional"), security(("token" = [])),
    responses((status = 200, body = AssignResult), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn assign(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<i64>,
    body: axum::body::Bytes,
) -> ApiResult<Json<AssignResult>> {
    let body = optional_body(&body)?;
    let assignment = state
        .inbox
        .assign(&caller.user, ChatId(id), body.operator_id.map(UserId))
        .await?;
    Ok(Json(AssignResult {
        status: "assigned",
        assignment_id: Some(assignment.id),
        operator_id: Some(assignment.operator_id.0),
    }))
}

/// Releases the chat: an admin any chat, an operator their own.
#[utoipa::path(post, path = "/api/chats/{id}/unassign/", tag = "chats", params(("id" = i64, Path)), security(("token" = [])),
    responses((status = 200, body = AssignResult), (status = 404, body = crate::error::ErrorBody)))]
pub async fn unassign(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<AssignResult>> {
    state.inbox.release(&caller.user, ChatId(id)).await?;
    Ok(Json(AssignResult {
        status: "unassigned",
        assignment_id: None,
        operator_id: None,
    }))
}

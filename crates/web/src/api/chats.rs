//! The inbox's chat list: `GET /api/chats/`, `GET /api/chats/{id}/`, `POST /api/chats/{id}/mark_as_read/`.
//! Admins see every chat; an operator sees only chats actively assigned to them (404 for any other).

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use chrono::{DateTime, Utc};
use crm_store::page::PAGE_SIZE;
use crm_store::repo::assignments::{self, Assigned};
use crm_store::repo::chats::{self as chat_repo, ChatFilter, ChatListItem, Viewer};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::pagination::{PageEnvelope, PageQuery};
use crate::state::AppState;

/// Longest accepted search text.
const MAX_SEARCH_LEN: usize = 200;
/// Length of `last_message_preview`, in characters.
const PREVIEW_LEN: usize = 100;

/// The account a chat runs through, without anything secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountBrief {
    /// Id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// `bot` or `personal`.
    pub account_type: String,
    /// Life-cycle state.
    pub status: String,
}

/// The newest message, in brief.
#[derive(Debug, Serialize, ToSchema)]
pub struct LastMessageData {
    /// When it was sent.
    pub telegram_date: DateTime<Utc>,
    /// Written by us.
    pub is_outgoing: bool,
}

/// A chat as the API shows it (the predecessor's keys, plus `is_blocked` and `assigned_operator_id`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatOut {
    /// Id.
    pub id: i64,
    /// Telegram id of the peer.
    pub telegram_id: i64,
    /// The account.
    pub telegram_account: Option<AccountBrief>,
    /// The account's name.
    pub telegram_account_name: Option<String>,
    /// `private`, `group`, `supergroup` or `channel`.
    pub chat_type: String,
    /// Title of a group or channel.
    pub title: Option<String>,
    /// @username.
    pub username: Option<String>,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// Stored messages.
    pub message_count: i32,
    /// Inbound messages since last marked read.
    pub unread_count: i32,
    /// The customer blocked the bot.
    pub is_blocked: bool,
    /// The operator holding the chat.
    pub assigned_operator_id: Option<i64>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Time of the newest message.
    pub last_message_at: Option<DateTime<Utc>>,
    /// First 100 characters of the newest message (text, caption, or `[Медиа]`).
    pub last_message_preview: Option<String>,
    /// Date and direction of the newest message.
    pub last_message_data: Option<LastMessageData>,
    /// Extra data.
    pub metadata: Value,
}

impl From<ChatListItem> for ChatOut {
    fn from(item: ChatListItem) -> Self {
        let ChatListItem {
            chat,
            account,
            last_message,
            assigned_user_id,
        } = item;
        let preview = last_message.as_ref().map(|m| {
            let text = m
                .text
                .clone()
                .or_else(|| m.caption.clone())
                .unwrap_or_else(|| "[Медиа]".to_owned());
            text.chars().take(PREVIEW_LEN).collect()
        });
        Self {
            id: chat.id,
            telegram_id: chat.peer_id,
            telegram_account_name: account.as_ref().map(|a| a.name.clone()),
            telegram_account: account.map(|a| AccountBrief {
                id: a.id,
                name: a.name,
                account_type: a.account_type,
                status: a.status,
            }),
            chat_type: chat.chat_type,
            title: chat.title,
            username: chat.username,
            first_name: chat.first_name,
            last_name: chat.last_name,
            message_count: chat.message_count,
            unread_count: chat.unread_count,
            is_blocked: chat.is_blocked,
            assigned_operator_id: assigned_user_id,
            created_at: chat.created_at,
            updated_at: chat.updated_at,
            last_message_at: chat.last_message_at,
            last_message_preview: preview,
            last_message_data: last_message.map(|m| LastMessageData {
                telegram_date: m.telegram_date,
                is_outgoing: m.direction == "out",
            }),
            metadata: chat.metadata,
        }
    }
}

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

fn viewer(caller: &CurrentUser) -> Viewer {
    if caller.is_admin() {
        Viewer::Admin
    } else {
        Viewer::Operator(caller.user.id)
    }
}

/// Lists the chats the caller may see, newest activity first, 50 per page.
#[utoipa::path(get, path = "/api/chats/", tag = "chats", params(ChatQuery), security(("token" = [])),
    responses((status = 200, body = PageEnvelope<ChatOut>), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: CurrentUser,
    Query(query): Query<ChatQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Json<PageEnvelope<ChatOut>>> {
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
        account_id: query.account,
        unread_only: truthy(query.unread.as_deref())?,
        search: query.search,
        assigned_to: truthy(query.assigned_only.as_deref())?.then_some(caller.user.id),
    };
    let page = chat_repo::list(&state.store, viewer(&caller), &filter, page, PAGE_SIZE).await?;
    Ok(Json(PageEnvelope::build(
        page.map(ChatOut::from),
        &headers,
        &uri,
    )?))
}

async fn visible_chat(state: &AppState, caller: &CurrentUser, id: i64) -> ApiResult<ChatOut> {
    let chat = chat_repo::find_visible(&state.store, viewer(caller), id)
        .await?
        .ok_or_else(|| ApiError::not_found("Chat"))?;
    let item = chat_repo::decorate(&state.store, vec![chat])
        .await?
        .pop()
        .ok_or_else(|| ApiError::not_found("Chat"))?;
    Ok(ChatOut::from(item))
}

/// One chat the caller may see.
#[utoipa::path(get, path = "/api/chats/{id}/", tag = "chats", params(("id" = i64, Path)), security(("token" = [])),
    responses((status = 200, body = ChatOut), (status = 404, body = crate::error::ErrorBody)))]
pub async fn retrieve(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<ChatOut>> {
    Ok(Json(visible_chat(&state, &caller, id).await?))
}

/// Result of marking read.
#[derive(Debug, Serialize, ToSchema)]
pub struct MarkedRead {
    /// `success`, as in the predecessor.
    pub status: &'static str,
    /// The chat after the change.
    pub chat: ChatOut,
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
    chat_repo::find_visible(&state.store, viewer(&caller), id)
        .await?
        .ok_or_else(|| ApiError::not_found("Chat"))?;
    chat_repo::mark_read(&state.store, id).await?;
    crate::events::chat_updated(&state, id).await;
    Ok(Json(MarkedRead {
        status: "success",
        chat: visible_chat(&state, &caller, id).await?,
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
    chat_repo::find_visible(&state.store, viewer(&caller), id)
        .await?
        .ok_or_else(|| ApiError::not_found("Chat"))?;
    let target = body.operator_id.unwrap_or(caller.user.id);
    if !caller.is_admin() && target != caller.user.id {
        return Err(ApiError::forbidden());
    }
    let previous = assignments::holder(&state.store, id).await?;
    match assignments::assign(&state.store, id, target, caller.user.id).await? {
        Assigned::Done(assignment) => {
            state
                .bus
                .publish(crm_core::event::Event::UserChanged { user_id: target });
            if previous != Some(target) {
                if let Some(previous) = previous {
                    let payload = serde_json::json!({ "chat_id": id });
                    crate::events::publish(&state, "chat_removed", Some(id), Some(previous), payload).await;
                }
                if let Some(chat) = chat_view(&state, id).await {
                    crate::events::publish(
                        &state,
                        "chat_added",
                        Some(id),
                        Some(target),
                        serde_json::json!({ "chat": chat }),
                    )
                    .await;
                }
                crate::events::chat_updated(&state, id).await;
            }
            Ok(Json(AssignResult {
                status: "assigned",
                assignment_id: Some(assignment.id),
                operator_id: Some(target),
            }))
        }
        Assigned::LimitReached(limit) => Err(ApiError::invalid(
            "max_chats_reached",
            format!("Maximum chats limit reached ({limit})"),
        )),
        Assigned::NoSuchUser => Err(ApiError::invalid(
            "invalid_field",
            "operator_id must name an active user",
        )),
    }
}

/// Releases the chat: an admin any chat, an operator their own.
#[utoipa::path(post, path = "/api/chats/{id}/unassign/", tag = "chats", params(("id" = i64, Path)), security(("token" = [])),
    responses((status = 200, body = AssignResult), (status = 404, body = crate::error::ErrorBody)))]
pub async fn unassign(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<AssignResult>> {
    chat_repo::find_visible(&state.store, viewer(&caller), id)
        .await?
        .ok_or_else(|| ApiError::not_found("Chat"))?;
    let holder = assignments::holder(&state.store, id).await?;
    if !assignments::release(&state.store, id).await? {
        return Err(ApiError::Core(crm_core::CoreError::NotFound(
            "Chat is not assigned".into(),
        )));
    }
    if let Some(user_id) = holder {
        state.bus.publish(crm_core::event::Event::UserChanged { user_id });
        crate::events::publish(
            &state,
            "chat_removed",
            Some(id),
            Some(user_id),
            serde_json::json!({ "chat_id": id }),
        )
        .await;
    }
    crate::events::chat_updated(&state, id).await;
    Ok(Json(AssignResult {
        status: "unassigned",
        assignment_id: None,
        operator_id: None,
    }))
}

/// A chat shaped for events (as an admin sees it), or `None` if it is gone.
pub async fn chat_view(state: &AppState, chat_id: i64) -> Option<ChatOut> {
    let chat = chat_repo::find_visible(&state.store, Viewer::Admin, chat_id)
        .await
        .ok()??;
    chat_repo::decorate(&state.store, vec![chat])
        .await
        .ok()?
        .pop()
        .map(ChatOut::from)
}

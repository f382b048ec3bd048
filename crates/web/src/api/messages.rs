//! Messages: `GET /api/messages/`, `GET /api/messages/{id}/`, `GET /api/messages/by_chat/` (newest first, keyset
//! paging with `before`), and sending: `POST /api/chats/{id}/send_message/`, `POST /api/messages/{id}/reply/`,
//! `POST /api/messages/{id}/retry/`. A reply is stored as `queued` with its send job before the API answers.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use crm_core::ids::{ChatId, MediaFileId, MessageId};
use crm_core::inbox::{Reply, SendTarget};
use crm_core::views::MessageView;
use crm_store::page::PAGE_SIZE;
use crm_store::repo::chats as chat_repo;
use crm_store::repo::media as media_repo;
use crm_store::repo::messages as message_repo;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::pagination::{PageEnvelope, PageQuery};
use crate::state::AppState;

/// Largest `limit` of `by_chat`.
pub const MAX_LIMIT: u64 = 200;

/// Every message the caller may see, newest first, 50 per page.
#[utoipa::path(get, path = "/api/messages/", tag = "messages", params(PageQuery), security(("token" = [])),
    responses((status = 200, body = PageEnvelope<MessageView>), (status = 401, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: CurrentUser,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Json<PageEnvelope<MessageView>>> {
    let page = message_repo::list_visible(&state.store, caller.viewer(), query.number()?, PAGE_SIZE).await?;
    Ok(Json(PageEnvelope::build(page, &headers, &uri)?))
}

/// One message the caller may see.
#[utoipa::path(get, path = "/api/messages/{id}/", tag = "messages", params(("id" = i64, Path)), security(("token" = [])),
    responses((status = 200, body = MessageView), (status = 404, body = crate::error::ErrorBody)))]
pub async fn retrieve(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<MessageView>> {
    let message = message_repo::find_visible(&state.store, caller.viewer(), MessageId(id))
        .await?
        .ok_or_else(|| ApiError::not_found("Message"))?;
    let view = message_repo::views(&state.store, vec![message])
        .await?
        .pop()
        .ok_or_else(|| ApiError::not_found("Message"))?;
    Ok(Json(view))
}

/// `chat_id` (required), and either `page` or `before` + `limit`.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ByChatQuery {
    /// The chat's id.
    pub chat_id: Option<String>,
    /// Page number, from 1 (50 per page).
    pub page: Option<u64>,
    /// Only messages older than this message id (keyset paging).
    pub before: Option<i64>,
    /// How many (1 to 200, default 50).
    pub limit: Option<u64>,
}

/// A chat's messages, newest first. With `before`/`limit`, `next` links to the following older slice.
#[utoipa::path(get, path = "/api/messages/by_chat/", tag = "messages", params(ByChatQuery), security(("token" = [])),
    responses((status = 200, body = PageEnvelope<MessageView>), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn by_chat(
    State(state): State<AppState>,
    caller: CurrentUser,
    Query(query): Query<ByChatQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Json<PageEnvelope<MessageView>>> {
    let chat_id = query
        .chat_id
        .as_deref()
        .ok_or_else(|| ApiError::invalid("invalid_query", "chat_id is required"))?
        .parse::<i64>()
        .map_err(|_| ApiError::invalid("invalid_query", "chat_id must be a number"))?;
    let limit = query.limit.unwrap_or(PAGE_SIZE);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid(
            "invalid_query",
            format!("limit must be between 1 and {MAX_LIMIT}"),
        ));
    }
    let chat_id = ChatId(chat_id);
    chat_repo::find_visible(&state.store, caller.viewer(), chat_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Chat"))?;
    let anchor = match query.before {
        Some(before) => Some(
            message_repo::find_visible(&state.store, caller.viewer(), MessageId(before))
                .await?
                .filter(|m| m.chat_id == chat_id)
                .ok_or_else(|| ApiError::invalid("invalid_query", "before must be a message of this chat"))?,
        ),
        None => None,
    };
    if anchor.is_none() && query.limit.is_none() {
        // The predecessor's page mode.
        let page = PageQuery { page: query.page }.number()?;
        let page = message_repo::timeline_page(&state.store, chat_id, page, PAGE_SIZE).await?;
        return Ok(Json(PageEnvelope::build(page, &headers, &uri)?));
    }
    let timeline = message_repo::timeline(&state.store, chat_id, anchor.as_ref(), limit).await?;
    let next = match (timeline.has_more, timeline.items.last()) {
        (true, Some(oldest)) => {
            let host = headers
                .get(axum::http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost");
            Some(format!(
                "http://{host}{}?chat_id={chat_id}&before={}&limit={limit}",
                uri.path(),
                oldest.id
            ))
        }
        _ => None,
    };
    Ok(Json(PageEnvelope {
        count: timeline.total,
        next,
        previous: None,
        results: timeline.items,
    }))
}

/// A message to send: text, an uploaded file (by `file_id`, or the predecessor's `media_path` naming an
/// upload), or both (the text becomes the caption).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendBody {
    /// Text (up to 4096 characters).
    pub text: Option<String>,
    /// An uploaded file's id.
    pub file_id: Option<i64>,
    /// The predecessor's file path field; accepted only as an upload reference.
    pub media_path: Option<String>,
}

/// What to send, as the use case takes it: the predecessor's `media_path` names an upload by its path.
async fn reply_of(state: &AppState, caller: &CurrentUser, body: SendBody) -> ApiResult<Reply> {
    let media_path = body.media_path.as_deref().filter(|p| !p.is_empty());
    let upload = match (body.file_id, media_path) {
        (Some(id), _) => Some(MediaFileId(id)),
        (None, Some(path)) => {
            let owner = (!caller.is_admin()).then_some(caller.user.id);
            let found = media_repo::find_unsent_upload(&state.store, owner, None, Some(path)).await?;
            Some(found.map(|file| file.id).ok_or_else(|| {
                ApiError::invalid(
                    "unknown_file",
                    "file_id (or media_path) must name an upload of yours that was not sent yet.",
                )
            })?)
        }
        (None, None) => None,
    };
    Ok(Reply {
        text: body.text,
        upload,
    })
}

/// Sends a message to a chat the caller may see.
#[utoipa::path(post, path = "/api/chats/{id}/send_message/", tag = "messages", params(("id" = i64, Path)),
    request_body = SendBody, security(("token" = [])),
    responses((status = 201, body = MessageView), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn send_message(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(chat_id): Path<i64>,
    Json(body): Json<SendBody>,
) -> ApiResult<(StatusCode, Json<MessageView>)> {
    let reply = reply_of(&state, &caller, body).await?;
    let message = state
        .inbox
        .send(&caller.user, SendTarget::Chat(ChatId(chat_id)), reply)
        .await?;
    Ok((StatusCode::CREATED, Json(message)))
}

/// Replies to a message of a chat the caller may see.
#[utoipa::path(post, path = "/api/messages/{id}/reply/", tag = "messages", params(("id" = i64, Path)),
    request_body = SendBody, security(("token" = [])),
    responses((status = 201, body = MessageView), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn reply(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<SendBody>,
) -> ApiResult<(StatusCode, Json<MessageView>)> {
    let reply = reply_of(&state, &caller, body).await?;
    let message = state
        .inbox
        .send(&caller.user, SendTarget::ReplyTo(MessageId(id)), reply)
        .await?;
    Ok((StatusCode::CREATED, Json(message)))
}

/// Queues a failed outgoing message again.
#[utoipa::path(post, path = "/api/messages/{id}/retry/", tag = "messages", params(("id" = i64, Path)), security(("token" = [])),
    responses((status = 200, body = MessageView), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn retry(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<MessageView>> {
    Ok(Json(state.inbox.retry(&caller.user, MessageId(id)).await?))
}

//! Messages: `GET /api/messages/`, `GET /api/messages/{id}/`, `GET /api/messages/by_chat/` (newest first, keyset
//! paging with `before`), and sending: `POST /api/chats/{id}/send_message/`, `POST /api/messages/{id}/reply/`,
//! `POST /api/messages/{id}/retry/`. A reply is stored as `queued` with its send job before the API answers.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use chrono::{DateTime, Utc};
use crm_core::message::MessageType;
use crm_store::entity::messages;
use crm_store::page::PAGE_SIZE;
use crm_store::repo::chats::{self as chat_repo, Viewer};
use crm_store::repo::media as media_repo;
use crm_store::repo::messages as message_repo;
use crm_store::repo::outbox::{self, NewOutgoing};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::media::MediaOut;
use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::pagination::{PageEnvelope, PageQuery};
use crate::state::AppState;

/// Longest text of a message (Telegram's limit).
pub const MAX_TEXT: usize = 4096;
/// Largest `limit` of `by_chat`.
pub const MAX_LIMIT: u64 = 200;

/// A message as the API shows it (the predecessor's keys, plus `direction`, `caption`, `edited_at`,
/// `is_deleted` and `error`).
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageOut {
    /// Id.
    pub id: i64,
    /// Telegram's id (none while queued).
    pub telegram_id: Option<i64>,
    /// The chat's id.
    pub chat: i64,
    /// Same as `chat` (the predecessor's WebSocket key).
    pub chat_id: i64,
    /// Kind of content.
    pub message_type: String,
    /// `received`, `queued`, `sent`, `read` or `failed`.
    pub status: String,
    /// Text of a text message.
    pub text: Option<String>,
    /// Caption of a media message.
    pub media_caption: Option<String>,
    /// `in` or `out`.
    pub direction: String,
    /// Written by us.
    pub is_outgoing: bool,
    /// Sender's Telegram id.
    pub from_user_id: Option<i64>,
    /// Sender's name.
    pub from_user_name: Option<String>,
    /// Sender's @username.
    pub from_user_username: Option<String>,
    /// The operator who wrote it.
    pub sent_by_user_id: Option<i64>,
    /// Telegram's date.
    pub telegram_date: DateTime<Utc>,
    /// Last edit.
    pub edited_at: Option<DateTime<Utc>>,
    /// Deleted in Telegram.
    pub is_deleted: bool,
    /// Id of the stored message replied to.
    pub reply_to_message: Option<i64>,
    /// Telegram id of the message replied to.
    pub reply_to_message_id: Option<i64>,
    /// Why sending failed.
    pub error: Option<String>,
    /// The attached file, if any.
    pub media: Option<MediaOut>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Extra data (raw update, entities, forward origin, reactions).
    pub metadata: Value,
}

impl From<messages::Model> for MessageOut {
    fn from(m: messages::Model) -> Self {
        Self {
            id: m.id,
            telegram_id: m.telegram_message_id,
            chat: m.chat_id,
            chat_id: m.chat_id,
            message_type: m.message_type,
            is_outgoing: m.direction == "out",
            status: m.status,
            text: m.text,
            media_caption: m.caption,
            direction: m.direction,
            from_user_id: m.sender_id,
            from_user_name: m.sender_name,
            from_user_username: m.sender_username,
            sent_by_user_id: m.sent_by_user_id,
            telegram_date: m.telegram_date,
            edited_at: m.edited_at,
            is_deleted: m.is_deleted,
            reply_to_message: m.reply_to_message_id,
            reply_to_message_id: m.reply_to_telegram_id,
            error: m.metadata.get("error").and_then(Value::as_str).map(str::to_owned),
            media: None,
            created_at: m.created_at,
            updated_at: m.updated_at,
            metadata: m.metadata,
        }
    }
}

/// Shapes messages with their files, loaded in one query.
pub async fn shaped(state: &AppState, rows: Vec<messages::Model>) -> ApiResult<Vec<MessageOut>> {
    let mut files = media_repo::for_messages(&state.store, rows.iter().map(|m| m.id).collect()).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let media = files.remove(&row.id).map(MediaOut::from);
            MessageOut {
                media,
                ..MessageOut::from(row)
            }
        })
        .collect())
}

async fn shaped_one(state: &AppState, row: messages::Model) -> ApiResult<MessageOut> {
    shaped(state, vec![row])
        .await?
        .pop()
        .ok_or_else(|| ApiError::not_found("Message"))
}

async fn shaped_page(
    state: &AppState,
    page: crm_store::Page<messages::Model>,
) -> ApiResult<crm_store::Page<MessageOut>> {
    let crm_store::Page {
        items,
        total,
        page,
        page_size,
    } = page;
    Ok(crm_store::Page {
        items: shaped(state, items).await?,
        total,
        page,
        page_size,
    })
}

fn viewer(caller: &CurrentUser) -> Viewer {
    if caller.is_admin() {
        Viewer::Admin
    } else {
        Viewer::Operator(caller.user.id)
    }
}

/// Every message the caller may see, newest first, 50 per page.
#[utoipa::path(get, path = "/api/messages/", tag = "messages", params(PageQuery), security(("token" = [])),
    responses((status = 200, body = PageEnvelope<MessageOut>), (status = 401, body = crate::error::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: CurrentUser,
    Query(query): Query<PageQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Json<PageEnvelope<MessageOut>>> {
    let page = message_repo::list_visible(&state.store, viewer(&caller), query.number()?, PAGE_SIZE).await?;
    Ok(Json(PageEnvelope::build(
        shaped_page(&state, page).await?,
        &headers,
        &uri,
    )?))
}

/// One message the caller may see.
#[utoipa::path(get, path = "/api/messages/{id}/", tag = "messages", params(("id" = i64, Path)), security(("token" = [])),
    responses((status = 200, body = MessageOut), (status = 404, body = crate::error::ErrorBody)))]
pub async fn retrieve(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<MessageOut>> {
    let message = message_repo::find_visible(&state.store, viewer(&caller), id)
        .await?
        .ok_or_else(|| ApiError::not_found("Message"))?;
    Ok(Json(shaped_one(&state, message).await?))
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
    responses((status = 200, body = PageEnvelope<MessageOut>), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn by_chat(
    State(state): State<AppState>,
    caller: CurrentUser,
    Query(query): Query<ByChatQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> ApiResult<Json<PageEnvelope<MessageOut>>> {
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
    chat_repo::find_visible(&state.store, viewer(&caller), chat_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Chat"))?;
    let anchor = match query.before {
        Some(before) => Some(
            message_repo::find_visible(&state.store, viewer(&caller), before)
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
        return Ok(Json(PageEnvelope::build(
            shaped_page(&state, page).await?,
            &headers,
            &uri,
        )?));
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
        results: shaped(&state, timeline.items).await?,
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

/// Telegram's limit for a caption.
pub const MAX_CAPTION: usize = 1024;

/// What to send, checked: the text and the upload to attach.
struct Outgoing {
    text: Option<String>,
    upload: Option<crm_store::entity::media_files::Model>,
}

fn kind_of_upload(content_type: &str) -> MessageType {
    match content_type.split(';').next().unwrap_or_default() {
        "image/jpeg" | "image/png" | "image/webp" => MessageType::Photo,
        "video/mp4" => MessageType::Video,
        "audio/ogg" => MessageType::Voice,
        t if t.starts_with("audio/") => MessageType::Audio,
        _ => MessageType::Document,
    }
}

async fn validated(state: &AppState, caller: &CurrentUser, body: SendBody) -> ApiResult<Outgoing> {
    let text = body
        .text
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let media_path = body.media_path.as_deref().filter(|p| !p.is_empty());
    let upload = if body.file_id.is_some() || media_path.is_some() {
        let owner = (!caller.is_admin()).then_some(caller.user.id);
        let found = media_repo::find_unsent_upload(&state.store, owner, body.file_id, media_path).await?;
        Some(found.ok_or_else(|| {
            ApiError::invalid(
                "unknown_file",
                "file_id (or media_path) must name an upload of yours that was not sent yet.",
            )
        })?)
    } else {
        None
    };
    let limit = if upload.is_some() { MAX_CAPTION } else { MAX_TEXT };
    if text.as_ref().is_some_and(|t| t.chars().count() > limit) {
        let what = if upload.is_some() { "a caption" } else { "text" };
        return Err(ApiError::invalid(
            "invalid_field",
            format!("{what} may have at most {limit} characters"),
        ));
    }
    if text.is_none() && upload.is_none() {
        return Err(ApiError::invalid(
            "invalid_field",
            "Either text or file_id is required.",
        ));
    }
    Ok(Outgoing { text, upload })
}

async fn queue(
    state: &AppState,
    caller: &CurrentUser,
    chat_id: i64,
    outgoing: Outgoing,
    reply_to: Option<messages::Model>,
) -> ApiResult<MessageOut> {
    let sender_name = if caller.user.display_name.is_empty() {
        caller.user.username.clone()
    } else {
        caller.user.display_name.clone()
    };
    let message_type = outgoing.upload.as_ref().map_or(MessageType::Text, |u| {
        kind_of_upload(u.content_type.as_deref().unwrap_or_default())
    });
    let message = outbox::queue(
        &state.store,
        NewOutgoing {
            chat_id,
            sent_by_user_id: caller.user.id,
            text: outgoing.text,
            message_type,
            reply_to,
            media_file_id: outgoing.upload.map(|u| u.id),
            sender_name,
            max_attempts: state.settings.send_max_attempts,
        },
    )
    .await
    .map_err(|error| match error {
        crm_store::StoreError::Duplicate(_) => {
            ApiError::invalid("unknown_file", "That upload was already sent.")
        }
        other => other.into(),
    })?;
    state.job_waker.notify_one();
    let shaped = shaped_one(state, message).await?;
    crate::events::publish_message(state, "new_message", &shaped).await;
    crate::events::chat_updated(state, chat_id).await;
    Ok(shaped)
}

/// Sends a message to a chat the caller may see.
#[utoipa::path(post, path = "/api/chats/{id}/send_message/", tag = "messages", params(("id" = i64, Path)),
    request_body = SendBody, security(("token" = [])),
    responses((status = 201, body = MessageOut), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn send_message(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(chat_id): Path<i64>,
    Json(body): Json<SendBody>,
) -> ApiResult<(StatusCode, Json<MessageOut>)> {
    chat_repo::find_visible(&state.store, viewer(&caller), chat_id)
        .await?
        .ok_or_else(|| ApiError::not_found("Chat"))?;
    let outgoing = validated(&state, &caller, body).await?;
    Ok((
        StatusCode::CREATED,
        Json(queue(&state, &caller, chat_id, outgoing, None).await?),
    ))
}

/// Replies to a message of a chat the caller may see.
#[utoipa::path(post, path = "/api/messages/{id}/reply/", tag = "messages", params(("id" = i64, Path)),
    request_body = SendBody, security(("token" = [])),
    responses((status = 201, body = MessageOut), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)))]
pub async fn reply(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<i64>,
    Json(body): Json<SendBody>,
) -> ApiResult<(StatusCode, Json<MessageOut>)> {
    let parent = message_repo::find_visible(&state.store, viewer(&caller), id)
        .await?
        .ok_or_else(|| ApiError::not_found("Message"))?;
    let outgoing = validated(&state, &caller, body).await?;
    let chat_id = parent.chat_id;
    Ok((
        StatusCode::CREATED,
        Json(queue(&state, &caller, chat_id, outgoing, Some(parent)).await?),
    ))
}

/// Queues a failed outgoing message again.
#[utoipa::path(post, path = "/api/messages/{id}/retry/", tag = "messages", params(("id" = i64, Path)), security(("token" = [])),
    responses((status = 200, body = MessageOut), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
pub async fn retry(
    State(state): State<AppState>,
    caller: CurrentUser,
    Path(id): Path<i64>,
) -> ApiResult<Json<MessageOut>> {
    let message = message_repo::find_visible(&state.store, viewer(&caller), id)
        .await?
        .ok_or_else(|| ApiError::not_found("Message"))?;
    if !outbox::retry_failed(&state.store, &message, state.settings.send_max_attempts).await? {
        return Err(ApiError::Core(crm_core::CoreError::Conflict {
            code: "not_failed",
            message: "Only a failed outgoing message can be retried.".into(),
        }));
    }
    // Read back and announced before the runner is woken, so the answer and the events show `queued` before
    // the runner's `sent`.
    let message = message_repo::find_visible(&state.store, viewer(&caller), id)
        .await?
        .ok_or_else(|| ApiError::not_found("Message"))?;
    let shaped = shaped_one(&state, message).await?;
    crate::events::publish_message(&state, "message_updated", &shaped).await;
    state.job_waker.notify_one();
    Ok(Json(shaped))
}

/// A message shaped for events, or `None` if it is gone.
pub async fn message_view(state: &AppState, message_id: i64) -> Option<MessageOut> {
    let message = message_repo::find_visible(&state.store, Viewer::Admin, message_id)
        .await
        .ok()??;
    shaped_one(state, message).await.ok()
}

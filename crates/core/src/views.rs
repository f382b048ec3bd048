//! How chats, messages, files and accounts look to clients: the one shape used by the REST API and by the
//! events pushed over the WebSocket (so an event and a reload never disagree). They keep the predecessor's keys
//! where its clients read them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::account::{Account, AccountStatus, AccountType, IntakeMode};
use crate::chat::{Chat, ChatType};
use crate::media::{MediaFile, MediaStatus};
use crate::message::{Direction, Message, MessageStatus, MessageType};

/// A file as messages show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MediaView {
    /// Id (for `/api/media/{id}` and `file_id`).
    pub id: i64,
    /// `pending`, `stored`, `too_large` or `failed`.
    pub status: MediaStatus,
    /// MIME type from the bytes (or Telegram's, before download).
    pub content_type: Option<String>,
    /// Size in bytes.
    pub file_size: Option<i64>,
    /// Original name, made safe.
    pub file_name: Option<String>,
    /// Where to fetch it.
    pub url: String,
}

impl From<&MediaFile> for MediaView {
    fn from(file: &MediaFile) -> Self {
        Self {
            id: file.id.0,
            url: format!("/api/media/{}/", file.id),
            status: file.status,
            content_type: file.content_type.clone(),
            file_size: file.file_size,
            file_name: file.file_name.clone(),
        }
    }
}

/// A message as clients see it (the predecessor's keys, plus `direction`, `caption`, `edited_at`, `is_deleted`
/// and `error`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageView {
    /// Id.
    pub id: i64,
    /// Telegram's id (none while queued).
    pub telegram_id: Option<i64>,
    /// The chat's id.
    pub chat: i64,
    /// Same as `chat` (the predecessor's WebSocket key).
    pub chat_id: i64,
    /// Kind of content.
    pub message_type: MessageType,
    /// `received`, `queued`, `sent`, `read` or `failed`.
    pub status: MessageStatus,
    /// Text of a text message.
    pub text: Option<String>,
    /// Caption of a media message.
    pub media_caption: Option<String>,
    /// `in` or `out`.
    pub direction: Direction,
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
    pub media: Option<MediaView>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Extra facts (forward origin, formatting, reactions, raw Bot API message), one shape for every channel.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: Value,
}

impl MessageView {
    /// The view of `message` with its file.
    pub fn new(message: &Message, media: Option<&MediaFile>) -> Self {
        Self {
            id: message.id.0,
            telegram_id: message.telegram_message_id.map(|id| id.0),
            chat: message.chat_id.0,
            chat_id: message.chat_id.0,
            message_type: message.message_type,
            status: message.status,
            text: message.text.clone(),
            media_caption: message.caption.clone(),
            direction: message.direction,
            is_outgoing: message.is_outgoing(),
            from_user_id: message.sender_id,
            from_user_name: message.sender_name.clone(),
            from_user_username: message.sender_username.clone(),
            sent_by_user_id: message.sent_by_user_id.map(|id| id.0),
            telegram_date: message.telegram_date,
            edited_at: message.edited_at,
            is_deleted: message.is_deleted,
            reply_to_message: message.reply_to_message_id.map(|id| id.0),
            reply_to_message_id: message.reply_to_telegram_id.map(|id| id.0),
            error: message.metadata.delivery_error(),
            media: media.map(MediaView::from),
            created_at: message.created_at,
            updated_at: message.updated_at,
            metadata: message.metadata.public_json(),
        }
    }
}

/// The account a chat runs through, without anything secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountBrief {
    /// Id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// `bot` or `personal`.
    pub account_type: AccountType,
    /// Life-cycle state.
    pub status: AccountStatus,
}

impl From<&Account> for AccountBrief {
    fn from(account: &Account) -> Self {
        Self {
            id: account.id.0,
            name: account.name.clone(),
            account_type: account.kind,
            status: account.status,
        }
    }
}

/// The newest message, in brief.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LastMessageData {
    /// When it was sent.
    pub telegram_date: DateTime<Utc>,
    /// Written by us.
    pub is_outgoing: bool,
}

/// A chat as clients see it (the predecessor's keys, plus `is_blocked` and `assigned_operator_id`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ChatView {
    /// Id.
    pub id: i64,
    /// Telegram id of the peer.
    pub telegram_id: i64,
    /// The account.
    pub telegram_account: Option<AccountBrief>,
    /// The account's name.
    pub telegram_account_name: Option<String>,
    /// `private`, `group`, `supergroup` or `channel`.
    pub chat_type: ChatType,
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
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: Value,
}

impl ChatView {
    /// The view of `chat`, which runs through `account`.
    pub fn new(chat: &Chat, account: Option<&AccountBrief>) -> Self {
        Self {
            id: chat.id.0,
            telegram_id: chat.peer_id.0,
            telegram_account: account.cloned(),
            telegram_account_name: account.map(|a| a.name.clone()),
            chat_type: chat.chat_type,
            title: chat.title.clone(),
            username: chat.username.clone(),
            first_name: chat.first_name.clone(),
            last_name: chat.last_name.clone(),
            message_count: chat.message_count,
            unread_count: chat.unread_count,
            is_blocked: chat.is_blocked,
            assigned_operator_id: chat.assigned_user_id.map(|id| id.0),
            created_at: chat.created_at,
            updated_at: chat.updated_at,
            last_message_at: chat.last_message_at,
            last_message_preview: chat.last_message.as_ref().map(|last| last.preview.clone()),
            last_message_data: match (&chat.last_message, chat.last_message_at) {
                (Some(last), Some(date)) => Some(LastMessageData {
                    telegram_date: date,
                    is_outgoing: last.outgoing,
                }),
                _ => None,
            },
            metadata: chat.metadata.clone(),
        }
    }
}

/// An account as admins see it; secrets appear only as masked hints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccountView {
    /// Id.
    pub id: i64,
    /// Display name.
    pub name: String,
    /// `bot` or `personal`.
    pub account_type: AccountType,
    /// Life-cycle state.
    pub status: AccountStatus,
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
    pub intake_mode: IntakeMode,
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

impl AccountView {
    /// The view of `account`, with the masked hint of its bot token if it has one.
    pub fn new(account: &Account, bot_token_hint: Option<String>) -> Self {
        Self {
            id: account.id.0,
            name: account.name.clone(),
            account_type: account.kind,
            status: account.status,
            phone_number: account.phone_number.clone(),
            api_id: account.api_id,
            bot_username: account.bot_username.clone(),
            bot_token_hint,
            telegram_user_id: account.telegram_user_id,
            first_name: account.first_name.clone(),
            last_name: account.last_name.clone(),
            username: account.username.clone(),
            intake_mode: account.intake_mode,
            webhook_url: account.webhook_url.clone(),
            forward_url: account.forward_url.clone(),
            last_activity: account.last_activity,
            last_error: account.last_error.clone(),
            error_count: account.error_count,
            error_code: account.error_code.clone(),
            retry_at: account.retry_at,
            enabled: account.enabled,
            include_groups: account.include_groups,
            include_channels: account.include_channels,
            mark_read_in_telegram: account.mark_read_in_telegram,
            pending_code_type: account.pending_code_type.clone(),
            history_imported_at: account.history_imported_at,
            created_at: account.created_at,
            updated_at: account.updated_at,
        }
    }
}

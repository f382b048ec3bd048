//! The entities as the core's records: every row leaves this crate as a `crm_core` type, never as an entity
//! `Model`, and comes back as an active model for writing.

use crm_core::account::Account;
use crm_core::chat::{Chat, LastMessage};
use crm_core::ids::{AccountId, ChatId, MediaFileId, MessageId, PeerId, TelegramMessageId, UserId};
use crm_core::media::MediaFile;
use crm_core::message::Message;
use crm_core::metadata::MessageMetadata;
use crm_core::user::User;
use sea_orm::ActiveValue::{NotSet, Set, Unchanged};

use crate::Db;
use crate::entity::{accounts, chats, media_files, messages, users};

impl From<accounts::Model> for Account {
    fn from(row: accounts::Model) -> Self {
        Self {
            id: AccountId(row.id),
            name: row.name,
            kind: row.account_type.0,
            status: row.status.0,
            phone_number: row.phone_number,
            api_id: row.api_id,
            bot_username: row.bot_username,
            telegram_user_id: row.telegram_user_id,
            first_name: row.first_name,
            last_name: row.last_name,
            username: row.username,
            last_activity: row.last_activity,
            last_error: row.last_error,
            error_count: row.error_count,
            intake_mode: row.intake_mode.0,
            webhook_url: row.webhook_url,
            forward_url: row.forward_url,
            polling_offset: row.polling_offset,
            include_groups: row.include_groups,
            include_channels: row.include_channels,
            mark_read_in_telegram: row.mark_read_in_telegram,
            enabled: row.enabled,
            has_session: row.session_sealed.is_some(),
            pending_code_type: row.pending_code_type,
            error_code: row.error_code,
            retry_at: row.retry_at,
            history_imported_at: row.history_imported_at,
            removed_at: row.removed_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

impl From<chats::Model> for Chat {
    fn from(row: chats::Model) -> Self {
        Self {
            id: ChatId(row.id),
            account_id: AccountId(row.account_id),
            peer_id: PeerId(row.peer_id),
            chat_type: row.chat_type.0,
            title: row.title,
            username: row.username,
            first_name: row.first_name,
            last_name: row.last_name,
            unread_count: row.unread_count,
            message_count: row.message_count,
            last_message_at: row.last_message_at,
            last_message: row.last_message_id.map(|id| LastMessage {
                id: MessageId(id),
                preview: row.last_message_preview.unwrap_or_default(),
                outgoing: row.last_message_outgoing,
            }),
            last_read_at: row.last_read_at,
            is_blocked: row.is_blocked,
            assigned_user_id: row.assigned_user_id.map(UserId),
            has_orphan_replies: row.has_orphan_replies,
            metadata: row.metadata,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// Every mutable column of `chat`, keyed by its id (for one `UPDATE … WHERE id = ?`).
pub(crate) fn chat_changes(chat: &Chat) -> chats::ActiveModel {
    chats::ActiveModel {
        id: Unchanged(chat.id.0),
        account_id: NotSet,
        peer_id: NotSet,
        chat_type: Set(Db(chat.chat_type)),
        title: Set(chat.title.clone()),
        username: Set(chat.username.clone()),
        first_name: Set(chat.first_name.clone()),
        last_name: Set(chat.last_name.clone()),
        unread_count: Set(chat.unread_count),
        message_count: Set(chat.message_count),
        last_message_at: Set(chat.last_message_at),
        last_message_id: Set(chat.last_message.as_ref().map(|last| last.id.0)),
        last_message_preview: Set(chat.last_message.as_ref().map(|last| last.preview.clone())),
        last_message_outgoing: Set(chat.last_message.as_ref().is_some_and(|last| last.outgoing)),
        last_read_at: Set(chat.last_read_at),
        is_blocked: Set(chat.is_blocked),
        assigned_user_id: Set(chat.assigned_user_id.map(|id| id.0)),
        has_orphan_replies: Set(chat.has_orphan_replies),
        metadata: Set(chat.metadata.clone()),
        created_at: NotSet,
        updated_at: Set(chat.updated_at),
    }
}

impl From<messages::Model> for Message {
    fn from(row: messages::Model) -> Self {
        Self {
            id: MessageId(row.id),
            chat_id: ChatId(row.chat_id),
            telegram_message_id: row.telegram_message_id.map(TelegramMessageId),
            direction: row.direction.0,
            message_type: row.message_type.0,
            text: row.text,
            caption: row.caption,
            sender_id: row.sender_id,
            sender_name: row.sender_name,
            sender_username: row.sender_username,
            sent_by_user_id: row.sent_by_user_id.map(UserId),
            reply_to_message_id: row.reply_to_message_id.map(MessageId),
            reply_to_telegram_id: row.reply_to_telegram_id.map(TelegramMessageId),
            status: row.status.0,
            telegram_date: row.telegram_date,
            edited_at: row.edited_at,
            is_deleted: row.is_deleted,
            metadata: MessageMetadata::from_json(row.metadata),
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// Every mutable column of `message`, keyed by its id.
pub(crate) fn message_changes(message: &Message) -> messages::ActiveModel {
    messages::ActiveModel {
        id: Unchanged(message.id.0),
        chat_id: NotSet,
        telegram_message_id: Set(message.telegram_message_id.map(|id| id.0)),
        direction: NotSet,
        message_type: Set(Db(message.message_type)),
        text: Set(message.text.clone()),
        caption: Set(message.caption.clone()),
        sender_id: NotSet,
        sender_name: NotSet,
        sender_username: NotSet,
        sent_by_user_id: NotSet,
        reply_to_message_id: Set(message.reply_to_message_id.map(|id| id.0)),
        reply_to_telegram_id: NotSet,
        status: Set(Db(message.status)),
        telegram_date: Set(message.telegram_date),
        edited_at: Set(message.edited_at),
        is_deleted: Set(message.is_deleted),
        metadata: Set(message.metadata.to_json()),
        created_at: NotSet,
        updated_at: Set(message.updated_at),
    }
}

impl From<media_files::Model> for MediaFile {
    fn from(row: media_files::Model) -> Self {
        Self {
            id: MediaFileId(row.id),
            message_id: row.message_id.map(MessageId),
            uploaded_by_user_id: row.uploaded_by_user_id.map(UserId),
            origin: row.origin.0,
            status: row.status.0,
            storage_path: row.storage_path,
            file_name: row.file_name,
            content_type: row.content_type,
            file_size: row.file_size,
            sha256: row.sha256,
            telegram_file_id: row.telegram_file_id,
            telegram_file_unique_id: row.telegram_file_unique_id,
            error: row.error,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

/// Every mutable column of `file`, keyed by its id.
pub(crate) fn media_changes(file: &MediaFile) -> media_files::ActiveModel {
    media_files::ActiveModel {
        id: Unchanged(file.id.0),
        message_id: Set(file.message_id.map(|id| id.0)),
        uploaded_by_user_id: NotSet,
        origin: NotSet,
        status: Set(Db(file.status)),
        storage_path: Set(file.storage_path.clone()),
        file_name: Set(file.file_name.clone()),
        content_type: Set(file.content_type.clone()),
        file_size: Set(file.file_size),
        sha256: Set(file.sha256.clone()),
        telegram_file_id: NotSet,
        telegram_file_unique_id: NotSet,
        error: Set(file.error.clone()),
        created_at: NotSet,
        updated_at: Set(file.updated_at),
    }
}

impl From<users::Model> for User {
    fn from(row: users::Model) -> Self {
        Self {
            id: UserId(row.id),
            username: row.username,
            password_hash: row.password_hash,
            role: row.role.0,
            is_active: row.is_active,
            max_chats: row.max_chats,
            display_name: row.display_name,
            language: row.language,
            last_login_at: row.last_login_at,
            deleted_at: row.deleted_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

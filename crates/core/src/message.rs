//! Messages of a chat: their direction, kind and delivery status, and the message record.

use chrono::{DateTime, Utc};

use crate::ids::{ChatId, MessageId, TelegramMessageId, UserId};
use crate::metadata::MessageMetadata;
use crate::string_enum;

string_enum! {
    /// Who wrote the message, seen from the inbox.
    Direction {
        /// From the customer (or another group member) to us.
        Inbound => "in",
        /// From us (an operator, or the account owner on another device) to the customer.
        Outbound => "out",
    }
}

string_enum! {
    /// What the message carries.
    MessageType {
        /// Plain text.
        Text => "text",
        /// A photo (the largest size is kept).
        Photo => "photo",
        /// A video.
        Video => "video",
        /// A GIF-like animation.
        Animation => "animation",
        /// A file.
        Document => "document",
        /// A music file.
        Audio => "audio",
        /// A voice note.
        Voice => "voice",
        /// A round video note.
        VideoNote => "video_note",
        /// A sticker.
        Sticker => "sticker",
        /// A point on the map.
        Location => "location",
        /// A named place.
        Venue => "venue",
        /// A shared contact.
        Contact => "contact",
        /// A poll.
        Poll => "poll",
        /// A dice roll.
        Dice => "dice",
        /// A service message (pinned, joined, ...).
        Service => "service",
        /// Anything newer than this list.
        Other => "other",
    }
}

string_enum! {
    /// Delivery state of a message.
    MessageStatus {
        /// Inbound, stored.
        Received => "received",
        /// Outbound, waiting in the outbox.
        Queued => "queued",
        /// Outbound, accepted by Telegram.
        Sent => "sent",
        /// Outbound, read by the customer.
        Read => "read",
        /// Outbound, given up on; the reason is kept and it can be retried.
        Failed => "failed",
    }
}

/// The fields of a message to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    /// The chat.
    pub chat_id: ChatId,
    /// Telegram's id (none while queued).
    pub telegram_message_id: Option<TelegramMessageId>,
    /// In or out.
    pub direction: Direction,
    /// Kind of content.
    pub message_type: MessageType,
    /// Text of a text message.
    pub text: Option<String>,
    /// Caption of a media message.
    pub caption: Option<String>,
    /// Telegram id of the sender.
    pub sender_id: Option<i64>,
    /// Full name of the sender.
    pub sender_name: Option<String>,
    /// @username of the sender.
    pub sender_username: Option<String>,
    /// The operator who wrote an outgoing message.
    pub sent_by_user_id: Option<UserId>,
    /// The stored message this one replies to.
    pub reply_to_message_id: Option<MessageId>,
    /// Telegram id of the replied-to message, kept even when the parent is not stored.
    pub reply_to_telegram_id: Option<TelegramMessageId>,
    /// Delivery state.
    pub status: MessageStatus,
    /// Telegram's date.
    pub telegram_date: DateTime<Utc>,
    /// Last edit.
    pub edited_at: Option<DateTime<Utc>>,
    /// Extra facts.
    pub metadata: MessageMetadata,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

/// A stored message.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// Id.
    pub id: MessageId,
    /// The chat.
    pub chat_id: ChatId,
    /// Telegram's id, unique per chat once known (queued replies have none yet).
    pub telegram_message_id: Option<TelegramMessageId>,
    /// In or out.
    pub direction: Direction,
    /// Kind of content.
    pub message_type: MessageType,
    /// Text of a text message.
    pub text: Option<String>,
    /// Caption of a media message.
    pub caption: Option<String>,
    /// Telegram id of the sender.
    pub sender_id: Option<i64>,
    /// Full name of the sender.
    pub sender_name: Option<String>,
    /// @username of the sender.
    pub sender_username: Option<String>,
    /// The operator who wrote an outgoing message.
    pub sent_by_user_id: Option<UserId>,
    /// The stored message this one replies to.
    pub reply_to_message_id: Option<MessageId>,
    /// Telegram id of the replied-to message.
    pub reply_to_telegram_id: Option<TelegramMessageId>,
    /// Delivery state.
    pub status: MessageStatus,
    /// Telegram's date.
    pub telegram_date: DateTime<Utc>,
    /// Last edit.
    pub edited_at: Option<DateTime<Utc>>,
    /// Deleted in Telegram (still shown to operators as deleted).
    pub is_deleted: bool,
    /// Extra facts.
    pub metadata: MessageMetadata,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Message {
    /// The stored message `id` made of `new`, as it was just inserted.
    pub fn stored(id: MessageId, new: NewMessage) -> Self {
        Self {
            id,
            chat_id: new.chat_id,
            telegram_message_id: new.telegram_message_id,
            direction: new.direction,
            message_type: new.message_type,
            text: new.text,
            caption: new.caption,
            sender_id: new.sender_id,
            sender_name: new.sender_name,
            sender_username: new.sender_username,
            sent_by_user_id: new.sent_by_user_id,
            reply_to_message_id: new.reply_to_message_id,
            reply_to_telegram_id: new.reply_to_telegram_id,
            status: new.status,
            telegram_date: new.telegram_date,
            edited_at: new.edited_at,
            is_deleted: false,
            metadata: new.metadata,
            created_at: new.created_at,
            updated_at: new.created_at,
        }
    }

    /// Written by us.
    pub fn is_outgoing(&self) -> bool {
        self.direction == Direction::Outbound
    }
}

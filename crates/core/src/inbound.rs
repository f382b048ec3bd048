//! What a channel adapter hands to the core when something arrives from Telegram, in channel-neutral terms:
//! a new or edited message, a change of the customer's membership (blocked the bot), a reaction, or an update
//! that is knowingly ignored.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::chat::ChatType;
use crate::message::{Direction, MessageType};

/// The Telegram chat an event belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRef {
    /// Telegram chat id (the peer).
    pub peer_id: i64,
    /// Private, group, supergroup or channel.
    pub chat_type: ChatType,
    /// Title of a group or channel.
    pub title: Option<String>,
    /// @username.
    pub username: Option<String>,
    /// First name of a private peer.
    pub first_name: Option<String>,
    /// Last name of a private peer.
    pub last_name: Option<String>,
}

/// Who wrote a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    /// Telegram user (or chat) id.
    pub id: i64,
    /// Full name ("first last", or a chat title).
    pub name: Option<String>,
    /// @username.
    pub username: Option<String>,
}

/// A file attached to a message, as Telegram describes it (not downloaded yet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRef {
    /// Id to download or re-send the file with.
    pub file_id: String,
    /// Stable id of the file across bots.
    pub file_unique_id: Option<String>,
    /// Size in bytes, when Telegram says.
    pub file_size: Option<i64>,
    /// Original file name (documents, audio).
    pub file_name: Option<String>,
    /// MIME type Telegram reports (not trusted for serving).
    pub mime_type: Option<String>,
}

/// A message, new or edited.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    /// Its chat.
    pub chat: ChatRef,
    /// Telegram's message id (unique per chat).
    pub telegram_message_id: i64,
    /// From the customer, or written by us elsewhere.
    pub direction: Direction,
    /// Kind of content.
    pub message_type: MessageType,
    /// Text of a text message.
    pub text: Option<String>,
    /// Caption of a media message.
    pub caption: Option<String>,
    /// Author.
    pub sender: Option<Sender>,
    /// Telegram id of the message this one replies to.
    pub reply_to_telegram_id: Option<i64>,
    /// When it was sent.
    pub date: DateTime<Utc>,
    /// When it was edited, for edits.
    pub edited_at: Option<DateTime<Utc>>,
    /// The attached file, if any.
    pub media: Option<MediaRef>,
    /// Extra facts kept with the message: entities, forward origin, location, poll, the raw payload.
    pub metadata: Value,
}

/// Something that arrived from Telegram.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundEvent {
    /// A new message.
    NewMessage(InboundMessage),
    /// An edit of a message (stored if not known yet).
    EditedMessage(InboundMessage),
    /// The customer blocked (or unblocked) the bot, or the account left/joined the chat.
    MembershipChanged {
        /// The chat.
        chat: ChatRef,
        /// True when we can no longer write there.
        blocked: bool,
        /// When.
        date: DateTime<Utc>,
    },
    /// Reactions on a message changed.
    ReactionChanged {
        /// The chat.
        chat: ChatRef,
        /// The message reacted to.
        telegram_message_id: i64,
        /// Who reacted, if known.
        user_id: Option<i64>,
        /// The new reactions (Telegram's `ReactionType` objects).
        reactions: Value,
        /// When.
        date: DateTime<Utc>,
    },
    /// An update the inbox does not handle; accepted and counted.
    Ignored {
        /// Its kind, for example `callback_query`.
        kind: String,
    },
}

//! What a channel adapter hands to the core when something arrives from Telegram, in channel-neutral terms: a
//! new or edited message, a change of the customer's membership (blocked the bot), a reaction, deletions, a read
//! receipt of our messages, or an update that is knowingly ignored. Bots (webhook or polling) and personal
//! accounts produce the same events, and [`crate::inbox::Inbox::receive`] is the one place that stores them.

use chrono::{DateTime, Utc};

use crate::chat::ChatType;
use crate::ids::{PeerId, TelegramMessageId};
use crate::message::{Direction, MessageType};
use crate::metadata::{MessageMetadata, Reaction};

/// The Telegram chat an event belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatRef {
    /// Telegram chat id (the peer), in the Bot API's form.
    pub peer_id: PeerId,
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
    pub telegram_message_id: TelegramMessageId,
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
    pub reply_to_telegram_id: Option<TelegramMessageId>,
    /// When it was sent.
    pub date: DateTime<Utc>,
    /// When it was edited, for edits.
    pub edited_at: Option<DateTime<Utc>>,
    /// The attached file, if any.
    pub media: Option<MediaRef>,
    /// Forward origin, formatting, album, thread, content details: the same shape for every channel.
    pub metadata: MessageMetadata,
}

/// Something that arrived from Telegram.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "events are moved once from the adapter into the inbox; messages are the common case"
)]
pub enum InboundEvent {
    /// A new message.
    NewMessage(InboundMessage),
    /// An edit of a message (stored as a message if it was not known yet).
    EditedMessage(InboundMessage),
    /// The customer blocked (or unblocked) the bot, or the account left (or joined) the chat.
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
        telegram_message_id: TelegramMessageId,
        /// Who reacted, if Telegram says (personal accounts see counts).
        user_id: Option<i64>,
        /// The reactions now.
        reactions: Vec<Reaction>,
        /// When.
        date: DateTime<Utc>,
    },
    /// Messages were deleted in Telegram (kept, shown as deleted). In private chats and basic groups Telegram
    /// does not say which chat: ids are unique per account there, so `peer_id` is `None`.
    Deleted {
        /// The channel or supergroup, when Telegram names it.
        peer_id: Option<PeerId>,
        /// Telegram ids of the deleted messages.
        telegram_message_ids: Vec<TelegramMessageId>,
    },
    /// The customer read our messages up to `max_id`.
    ReadByPeer {
        /// The chat.
        peer_id: PeerId,
        /// Highest message id read.
        max_id: TelegramMessageId,
    },
    /// An update the inbox does not handle; accepted and counted.
    Ignored {
        /// Its kind, for example `callback_query`.
        kind: String,
    },
}

impl InboundEvent {
    /// A short name of the event's kind, for logs and counters.
    pub fn kind(&self) -> &str {
        match self {
            Self::NewMessage(_) => "new_message",
            Self::EditedMessage(_) => "edited_message",
            Self::MembershipChanged { .. } => "membership",
            Self::ReactionChanged { .. } => "reaction",
            Self::Deleted { .. } => "deleted",
            Self::ReadByPeer { .. } => "read_by_peer",
            Self::Ignored { kind } => kind,
        }
    }
}

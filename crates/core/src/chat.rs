//! Conversations with one Telegram peer through one account: the chat record with its counters, its newest
//! message in brief and who holds it.

use chrono::{DateTime, Utc};

use crate::ids::{AccountId, ChatId, MessageId, PeerId, UserId};
use crate::inbound::ChatRef;
use crate::string_enum;

string_enum! {
    /// The kind of Telegram chat.
    ChatType {
        /// One-to-one with a user.
        Private => "private",
        /// A basic group.
        Group => "group",
        /// A supergroup.
        Supergroup => "supergroup",
        /// A broadcast channel.
        Channel => "channel",
    }
}

/// Length of a chat's last-message preview, in characters.
pub const PREVIEW_LEN: usize = 100;

/// The newest message of a chat, in brief (kept on the chat so lists and events need no second read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastMessage {
    /// The message.
    pub id: MessageId,
    /// Its first [`PREVIEW_LEN`] characters (text, caption, or `[Медиа]`).
    pub preview: String,
    /// Written by us.
    pub outgoing: bool,
}

/// The preview of a message for the chat list: its text, else its caption, else `[Медиа]`, cut to
/// [`PREVIEW_LEN`] characters.
pub fn preview_of(text: Option<&str>, caption: Option<&str>) -> String {
    text.or(caption)
        .unwrap_or("[Медиа]")
        .chars()
        .take(PREVIEW_LEN)
        .collect()
}

/// A conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct Chat {
    /// Id.
    pub id: ChatId,
    /// The account the conversation runs through.
    pub account_id: AccountId,
    /// Telegram id of the peer; unique per account.
    pub peer_id: PeerId,
    /// Private, group, supergroup or channel.
    pub chat_type: ChatType,
    /// Group or channel title.
    pub title: Option<String>,
    /// Peer @username.
    pub username: Option<String>,
    /// Peer first name.
    pub first_name: Option<String>,
    /// Peer last name.
    pub last_name: Option<String>,
    /// Inbound messages since the chat was last marked read.
    pub unread_count: i32,
    /// Stored messages.
    pub message_count: i32,
    /// Telegram date of the newest message.
    pub last_message_at: Option<DateTime<Utc>>,
    /// The newest message, in brief.
    pub last_message: Option<LastMessage>,
    /// When an operator last marked it read.
    pub last_read_at: Option<DateTime<Utc>>,
    /// The customer blocked the bot (or the account left the chat).
    pub is_blocked: bool,
    /// The operator holding the chat.
    pub assigned_user_id: Option<UserId>,
    /// A stored reply waits for its parent to arrive (it gets linked then).
    pub has_orphan_replies: bool,
    /// Free-form extra data.
    pub metadata: serde_json::Value,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Chat {
    /// Takes the names and title Telegram last reported; true if anything changed.
    pub fn take_names(&mut self, reported: &ChatRef) -> bool {
        let changed = self.title != reported.title
            || self.username != reported.username
            || self.first_name != reported.first_name
            || self.last_name != reported.last_name;
        if changed {
            self.title.clone_from(&reported.title);
            self.username.clone_from(&reported.username);
            self.first_name.clone_from(&reported.first_name);
            self.last_name.clone_from(&reported.last_name);
        }
        changed
    }

    /// Counts a newly stored message dated `date`; it becomes the newest unless an older one arrived late.
    pub fn count_message(&mut self, last: LastMessage, date: DateTime<Utc>, unread: bool) {
        self.message_count = self.message_count.saturating_add(1);
        if unread {
            self.unread_count = self.unread_count.saturating_add(1);
        }
        if self.last_message_at.is_none_or(|newest| date >= newest) {
            self.last_message_at = Some(date);
            self.last_message = Some(last);
        }
    }

    /// Whether `user` may see the chat: admins see every chat, an operator the chats they hold.
    pub fn visible_to(&self, viewer: Viewer) -> bool {
        match viewer {
            Viewer::Admin => true,
            Viewer::Operator(user) => self.assigned_user_id == Some(user),
        }
    }
}

/// Whose view a read takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// Sees every chat.
    Admin,
    /// Sees the chats this user holds.
    Operator(UserId),
}

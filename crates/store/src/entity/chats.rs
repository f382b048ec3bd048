//! `chats`: one conversation per (account, Telegram peer).

use crm_core::chat::ChatType;
use sea_orm::entity::prelude::*;

use crate::Db;

/// One chat.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "chats")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The account the conversation runs through.
    pub account_id: i64,
    /// Telegram id of the peer (user, group or channel); unique per account.
    pub peer_id: i64,
    /// Private, group, supergroup or channel.
    pub chat_type: Db<ChatType>,
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
    pub last_message_at: Option<DateTimeUtc>,
    /// The newest message.
    pub last_message_id: Option<i64>,
    /// The newest message's first characters, for the chat list.
    pub last_message_preview: Option<String>,
    /// The newest message was written by us.
    pub last_message_outgoing: bool,
    /// The operator holding the chat (kept with `chat_assignments`, which holds the history).
    pub assigned_user_id: Option<i64>,
    /// A stored reply waits for its parent to arrive.
    pub has_orphan_replies: bool,
    /// When an operator last marked it read.
    pub last_read_at: Option<DateTimeUtc>,
    /// The customer blocked the bot.
    pub is_blocked: bool,
    /// Free-form extra data.
    pub metadata: Json,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations; joins are written where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

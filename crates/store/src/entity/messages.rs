//! `messages`: every message of a chat, both directions.

use crm_core::message::{Direction, MessageStatus, MessageType};
use sea_orm::entity::prelude::*;

use crate::Db;

/// One message.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The chat.
    pub chat_id: i64,
    /// Telegram's message id, unique per chat once known (queued replies have none yet).
    pub telegram_message_id: Option<i64>,
    /// In or out.
    pub direction: Db<Direction>,
    /// Kind of content.
    pub message_type: Db<MessageType>,
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
    pub sent_by_user_id: Option<i64>,
    /// The stored message this one replies to.
    pub reply_to_message_id: Option<i64>,
    /// Telegram id of the replied-to message, kept even when the parent is not stored.
    pub reply_to_telegram_id: Option<i64>,
    /// Delivery state.
    pub status: Db<MessageStatus>,
    /// Telegram's date of the message.
    pub telegram_date: DateTimeUtc,
    /// Last edit time.
    pub edited_at: Option<DateTimeUtc>,
    /// Deleted in Telegram (still shown to operators as deleted).
    pub is_deleted: bool,
    /// Raw data and extras (raw update, entities, reactions, failure reason).
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

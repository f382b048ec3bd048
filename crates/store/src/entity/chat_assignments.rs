//! `chat_assignments`: which operator holds a chat, with the history of earlier holders.

use sea_orm::entity::prelude::*;

/// One assignment period. At most one row per chat is active: `active_chat_id` equals `chat_id` while active and
/// is NULL afterwards, and it is unique (a portable partial unique index).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "chat_assignments")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The chat.
    pub chat_id: i64,
    /// The operator holding it.
    pub user_id: i64,
    /// Who made the assignment.
    pub assigned_by_user_id: Option<i64>,
    /// `chat_id` while active, NULL once ended.
    #[sea_orm(unique)]
    pub active_chat_id: Option<i64>,
    /// Start of the period.
    pub assigned_at: DateTimeUtc,
    /// End of the period.
    pub unassigned_at: Option<DateTimeUtc>,
}

/// No navigable relations; joins are written where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

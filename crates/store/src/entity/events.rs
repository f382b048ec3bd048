//! `events`: the log of changes pushed to connected users, numbered in commit order.

use sea_orm::entity::prelude::*;

/// One event; its id is the `event_id` clients see.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "events")]
pub struct Model {
    /// Primary key, in insert order (not commit order).
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Its number in commit order, given by the relay once committed (the `event_id` clients see).
    #[sea_orm(unique)]
    pub seq: Option<i64>,
    /// The WebSocket message type, for example `new_message`.
    pub kind: String,
    /// The chat concerned, deciding who may see the event.
    pub chat_id: Option<i64>,
    /// The only user the event is for (assignment changes), if any.
    pub user_id: Option<i64>,
    /// The message body clients receive.
    pub payload: Json,
    /// When it happened.
    pub created_at: DateTimeUtc,
}

/// No navigable relations; joins are written where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

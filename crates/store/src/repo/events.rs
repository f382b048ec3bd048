//! The event log: append after a change commits, read back what a client missed, forget old events.

use chrono::{Duration, Utc};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set};
use serde_json::Value;

use crate::entity::events;
use crate::{Store, StoreResult};

/// An event to log.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// The WebSocket message type.
    pub kind: String,
    /// The chat concerned.
    pub chat_id: Option<i64>,
    /// The only user it is for.
    pub user_id: Option<i64>,
    /// The body clients receive.
    pub payload: Value,
}

/// Logs an event and returns it with its id.
pub async fn append(store: &Store, event: NewEvent) -> StoreResult<events::Model> {
    Ok(events::ActiveModel {
        kind: Set(event.kind),
        chat_id: Set(event.chat_id),
        user_id: Set(event.user_id),
        payload: Set(event.payload),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(store.db())
    .await?)
}

/// Events after `after_id`, oldest first, at most `limit`.
pub async fn since(store: &Store, after_id: i64, limit: u64) -> StoreResult<Vec<events::Model>> {
    Ok(events::Entity::find()
        .filter(events::Column::Id.gt(after_id))
        .order_by_asc(events::Column::Id)
        .limit(limit)
        .all(store.db())
        .await?)
}

/// The oldest event still kept, if any.
pub async fn oldest_id(store: &Store) -> StoreResult<Option<i64>> {
    Ok(events::Entity::find()
        .order_by_asc(events::Column::Id)
        .one(store.db())
        .await?
        .map(|e| e.id))
}

/// The newest event, if any.
pub async fn newest_id(store: &Store) -> StoreResult<Option<i64>> {
    Ok(events::Entity::find()
        .order_by_desc(events::Column::Id)
        .one(store.db())
        .await?
        .map(|e| e.id))
}

/// Deletes events older than `keep`; returns how many.
pub async fn purge_older_than(store: &Store, keep: Duration) -> StoreResult<u64> {
    let result = events::Entity::delete_many()
        .filter(events::Column::CreatedAt.lt(Utc::now() - keep))
        .exec(store.db())
        .await?;
    Ok(result.rows_affected)
}

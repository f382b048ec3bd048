//! Counts for the system status page, each one aggregate query.

use std::collections::BTreeMap;

use crm_core::jobs::JobStatus;
use crm_core::message::{Direction, MessageStatus};
use sea_orm::{ColumnTrait, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter, QuerySelect};

use crate::entity::{accounts, chats, jobs, messages};
use crate::{Db, Store, StoreResult};

/// What the system holds right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemCounts {
    /// Accounts per status.
    pub accounts_by_status: BTreeMap<String, u64>,
    /// Chats.
    pub chats: u64,
    /// Messages.
    pub messages: u64,
    /// Outgoing messages that failed.
    pub failed_messages: u64,
    /// Jobs waiting or running.
    pub queue_depth: u64,
}

#[derive(Debug, FromQueryResult)]
struct StatusCount {
    status: String,
    count: i64,
}

/// Reads every count.
pub async fn system_counts(store: &Store) -> StoreResult<SystemCounts> {
    let db = store.db();
    let rows = accounts::Entity::find()
        .select_only()
        .column(accounts::Column::Status)
        .column_as(accounts::Column::Id.count(), "count")
        .filter(accounts::Column::RemovedAt.is_null())
        .group_by(accounts::Column::Status)
        .into_model::<StatusCount>()
        .all(db)
        .await?;
    let accounts_by_status = rows
        .into_iter()
        .map(|row| (row.status, u64::try_from(row.count).unwrap_or(0)))
        .collect();
    Ok(SystemCounts {
        accounts_by_status,
        chats: chats::Entity::find().count(db).await?,
        messages: messages::Entity::find().count(db).await?,
        failed_messages: messages::Entity::find()
            .filter(messages::Column::Status.eq(Db(MessageStatus::Failed)))
            .filter(messages::Column::Direction.eq(Db(Direction::Outbound)))
            .count(db)
            .await?,
        queue_depth: jobs::Entity::find()
            .filter(jobs::Column::Status.is_in([Db(JobStatus::Pending), Db(JobStatus::Running)]))
            .count(db)
            .await?,
    })
}

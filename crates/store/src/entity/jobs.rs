//! `jobs`: the durable outbox and job queue, claimed with `FOR UPDATE SKIP LOCKED` where the backend has it.

use crm_core::jobs::JobStatus;
use sea_orm::entity::prelude::*;

use crate::Db;

/// One unit of background work.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "jobs")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Which handler runs it, for example `send_message`.
    pub kind: String,
    /// Handler input.
    pub payload: Json,
    /// Where the job stands.
    pub status: Db<JobStatus>,
    /// Attempts made so far.
    pub attempts: i32,
    /// Attempts allowed before it is dead-lettered.
    pub max_attempts: i32,
    /// Earliest time it may run.
    pub run_at: DateTimeUtc,
    /// Instance that holds it while running.
    pub locked_by: Option<String>,
    /// When a running job is considered abandoned.
    pub locked_until: Option<DateTimeUtc>,
    /// Reason of the last failure.
    pub last_error: Option<String>,
    /// Optional key making enqueue idempotent.
    #[sea_orm(unique)]
    pub dedupe_key: Option<String>,
    /// A job that needs a personal account's live connection runs only on the instance holding that account.
    pub pinned_account_id: Option<i64>,
    /// Jobs with the same key run one at a time, oldest first (the sends of one chat).
    pub order_key: Option<String>,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations; joins are written where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! The jobs table: enqueue (inside the caller's transaction when given one), claim due jobs so that no two
//! workers run the same job, and record the outcome.

use chrono::{DateTime, Duration, Utc};
use rand::Rng;
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait, TryInsertResult,
};
use serde_json::Value;

use crate::entity::jobs;
use crate::{Store, StoreResult};

/// Waiting for its `run_at`.
pub const PENDING: &str = "pending";
/// Claimed by a worker until `locked_until`.
pub const RUNNING: &str = "running";
/// Finished successfully.
pub const DONE: &str = "done";
/// Gave up after `max_attempts` or a permanent failure.
pub const DEAD: &str = "dead";

/// A job to add.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Handler name.
    pub kind: String,
    /// Handler input.
    pub payload: Value,
    /// Earliest run time.
    pub run_at: DateTime<Utc>,
    /// Attempts before dead-lettering.
    pub max_attempts: i32,
    /// Makes the enqueue idempotent: a second job with the same key is not added.
    pub dedupe_key: Option<String>,
    /// Run only on the instance connected to this personal account (it needs the live connection).
    pub pinned_account_id: Option<i64>,
}

impl NewJob {
    /// A job of `kind` due now, with 10 attempts.
    pub fn now(kind: &str, payload: Value) -> Self {
        Self {
            kind: kind.to_owned(),
            payload,
            run_at: Utc::now(),
            max_attempts: 10,
            dedupe_key: None,
            pinned_account_id: None,
        }
    }

    /// The same job, pinned to the instance connected to personal account `account_id`.
    pub fn pinned_to(mut self, account_id: i64) -> Self {
        self.pinned_account_id = Some(account_id);
        self
    }
}

/// Adds a job through `conn` (a transaction, so the job commits with the change that caused it). With a
/// `dedupe_key` that already exists, nothing is added and `None` is returned; the insert uses ON CONFLICT DO
/// NOTHING rather than catching an error, so a surrounding PostgreSQL transaction stays usable.
pub async fn enqueue<C: ConnectionTrait>(conn: &C, job: NewJob) -> StoreResult<Option<jobs::Model>> {
    let now = Utc::now();
    let model = jobs::ActiveModel {
        kind: Set(job.kind),
        payload: Set(job.payload),
        status: Set(PENDING.to_owned()),
        attempts: Set(0),
        max_attempts: Set(Ord::max(job.max_attempts, 1)),
        run_at: Set(job.run_at),
        dedupe_key: Set(job.dedupe_key),
        pinned_account_id: Set(job.pinned_account_id),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    match jobs::Entity::insert(model)
        .on_conflict_do_nothing_on([jobs::Column::DedupeKey])
        .exec(conn)
        .await?
    {
        TryInsertResult::Inserted(inserted) => Ok(jobs::Entity::find_by_id(inserted.last_insert_id)
            .one(conn)
            .await?),
        TryInsertResult::Conflicted | TryInsertResult::Empty => Ok(None),
    }
}

fn claimable(now: DateTime<Utc>, connected_accounts: &[i64]) -> Condition {
    let mut placement = Condition::any().add(jobs::Column::PinnedAccountId.is_null());
    if !connected_accounts.is_empty() {
        placement = placement.add(jobs::Column::PinnedAccountId.is_in(connected_accounts.iter().copied()));
    }
    let due = Condition::any()
        .add(
            Condition::all()
                .add(jobs::Column::Status.eq(PENDING))
                .add(jobs::Column::RunAt.lte(now)),
        )
        // A running job whose lock lapsed belongs to a worker that died.
        .add(
            Condition::all()
                .add(jobs::Column::Status.eq(RUNNING))
                .add(jobs::Column::LockedUntil.lt(now)),
        );
    Condition::all().add(due).add(placement)
}

/// Claims up to `limit` due jobs for `worker` for `lock_for`, counting an attempt on each. Safe with any number
/// of concurrent workers on every backend: candidates are selected with `FOR UPDATE SKIP LOCKED` where the backend
/// has it, and the claiming update re-checks that each job is still claimable.
pub async fn claim(
    store: &Store,
    worker: &str,
    limit: u64,
    lock_for: Duration,
) -> StoreResult<Vec<jobs::Model>> {
    claim_placed(store, worker, limit, lock_for, &[]).await
}

/// Like [`claim`], for a worker on the instance connected to the personal accounts `connected_accounts`: it also
/// claims the jobs pinned to them (and never jobs pinned to other accounts).
pub async fn claim_placed(
    store: &Store,
    worker: &str,
    limit: u64,
    lock_for: Duration,
    connected_accounts: &[i64],
) -> StoreResult<Vec<jobs::Model>> {
    let now = Utc::now();
    let claim_id = format!("{worker}/{:08x}", rand::thread_rng().r#gen::<u32>());
    let txn = store.db().begin().await?;
    let mut candidates = jobs::Entity::find()
        .select_only()
        .column(jobs::Column::Id)
        .filter(claimable(now, connected_accounts))
        .order_by_asc(jobs::Column::RunAt)
        .order_by_asc(jobs::Column::Id)
        .limit(limit);
    if store.backend().supports_skip_locked() {
        candidates = candidates.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let ids: Vec<i64> = candidates.into_tuple().all(&txn).await?;
    if ids.is_empty() {
        txn.commit().await?;
        return Ok(Vec::new());
    }
    jobs::Entity::update_many()
        .col_expr(jobs::Column::Status, Expr::value(RUNNING))
        .col_expr(jobs::Column::LockedBy, Expr::value(claim_id.clone()))
        .col_expr(jobs::Column::LockedUntil, Expr::value(now + lock_for))
        .col_expr(jobs::Column::Attempts, Expr::col(jobs::Column::Attempts).add(1))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
        .filter(jobs::Column::Id.is_in(ids.clone()))
        .filter(claimable(now, connected_accounts))
        .exec(&txn)
        .await?;
    let claimed = jobs::Entity::find()
        .filter(jobs::Column::Id.is_in(ids))
        .filter(jobs::Column::LockedBy.eq(claim_id))
        .order_by_asc(jobs::Column::RunAt)
        .order_by_asc(jobs::Column::Id)
        .all(&txn)
        .await?;
    txn.commit().await?;
    Ok(claimed)
}

async fn finish(
    store: &Store,
    job: &jobs::Model,
    status: &str,
    run_at: Option<DateTime<Utc>>,
    error: Option<&str>,
) -> StoreResult<bool> {
    let mut update = jobs::Entity::update_many()
        .col_expr(jobs::Column::Status, Expr::value(status))
        .col_expr(jobs::Column::LockedBy, Expr::value(Option::<String>::None))
        .col_expr(
            jobs::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(jobs::Column::LastError, Expr::value(error.map(str::to_owned)))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(Utc::now()));
    if let Some(run_at) = run_at {
        update = update.col_expr(jobs::Column::RunAt, Expr::value(run_at));
    }
    // Only the worker that holds the claim may record the outcome; a lapsed claim taken over by another
    // worker is not overwritten.
    let result = update
        .filter(jobs::Column::Id.eq(job.id))
        .filter(jobs::Column::LockedBy.eq(job.locked_by.clone()))
        .exec(store.db())
        .await?;
    Ok(result.rows_affected == 1)
}

/// Marks a claimed job done. False if the claim was lost meanwhile.
pub async fn complete(store: &Store, job: &jobs::Model) -> StoreResult<bool> {
    finish(store, job, DONE, None, None).await
}

/// Puts a claimed job back to run at `run_at`, or dead-letters it when its attempts are used up.
/// Returns the status it ended in.
pub async fn retry_later(
    store: &Store,
    job: &jobs::Model,
    run_at: DateTime<Utc>,
    error: &str,
) -> StoreResult<&'static str> {
    let status = if job.attempts >= job.max_attempts {
        DEAD
    } else {
        PENDING
    };
    finish(store, job, status, Some(run_at), Some(error)).await?;
    Ok(status)
}

/// Dead-letters a claimed job at once (a permanent failure).
pub async fn fail_permanently(store: &Store, job: &jobs::Model, error: &str) -> StoreResult<bool> {
    finish(store, job, DEAD, None, Some(error)).await
}

/// Puts a dead job back in the queue with fresh attempts (a retry by hand).
pub async fn requeue(store: &Store, job_id: i64) -> StoreResult<bool> {
    let result = jobs::Entity::update_many()
        .col_expr(jobs::Column::Status, Expr::value(PENDING))
        .col_expr(jobs::Column::Attempts, Expr::value(0))
        .col_expr(jobs::Column::RunAt, Expr::value(Utc::now()))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(jobs::Column::Id.eq(job_id))
        .filter(jobs::Column::Status.eq(DEAD))
        .exec(store.db())
        .await?;
    Ok(result.rows_affected == 1)
}

/// A job by id.
pub async fn find(store: &Store, job_id: i64) -> StoreResult<Option<jobs::Model>> {
    Ok(jobs::Entity::find_by_id(job_id).one(store.db()).await?)
}

/// Releases the claims `worker` still holds from before a restart (a crash left them `running`), so its jobs run
/// again at once instead of after their lock lapses. Only claims of this exact worker id are touched: another live
/// instance's claims are never released. Returns how many jobs were released.
pub async fn release_stale_claims(store: &Store, worker: &str) -> StoreResult<u64> {
    let released = jobs::Entity::update_many()
        .col_expr(jobs::Column::Status, Expr::value(PENDING))
        .col_expr(jobs::Column::LockedBy, Expr::value(Option::<String>::None))
        .col_expr(
            jobs::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(jobs::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(jobs::Column::Status.eq(RUNNING))
        .filter(jobs::Column::LockedBy.starts_with(format!("{worker}/")))
        .exec(store.db())
        .await?;
    Ok(released.rows_affected)
}

//! The jobs table: enqueue (inside the caller's transaction), claim due jobs so that no two workers run the
//! same job and jobs sharing an order key run one at a time in order, renew the claims of running jobs, and
//! record outcomes (only the holder of a claim may).

use chrono::{DateTime, Duration, Utc};
use crm_core::ids::{AccountId, JobId};
use crm_core::jobs::{ClaimedJob, JobPayload, JobRequest, JobStatus};
use rand::Rng;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, LockBehavior, LockType, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TryInsertResult,
};

use crate::entity::jobs;
use crate::{Db, Store, StoreResult};

/// Adds a job through `conn` (a transaction, so the job commits with the change that caused it). With a
/// `dedupe_key` that exists already nothing is added and false is returned; the insert uses ON CONFLICT DO
/// NOTHING rather than catching an error, so a surrounding PostgreSQL transaction stays usable.
pub async fn enqueue<C: ConnectionTrait>(conn: &C, job: JobRequest) -> StoreResult<bool> {
    let now = Utc::now();
    let model = jobs::ActiveModel {
        kind: Set(job.payload.kind().to_owned()),
        payload: Set(job.payload.to_json()),
        status: Set(Db(JobStatus::Pending)),
        attempts: Set(0),
        max_attempts: Set(Ord::max(job.max_attempts, 1)),
        run_at: Set(job.run_at),
        dedupe_key: Set(job.dedupe_key),
        pinned_account_id: Set(job.pinned_account_id.map(|id| id.0)),
        order_key: Set(job.order_key),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    let inserted = jobs::Entity::insert(model)
        .on_conflict_do_nothing_on([jobs::Column::DedupeKey])
        .exec(conn)
        .await?;
    Ok(matches!(inserted, TryInsertResult::Inserted(_)))
}

/// Jobs due at `now` that this worker may run: pending and due, or running with a lapsed claim (its worker
/// died); not pinned, or pinned to an account connected here.
fn claimable(now: DateTime<Utc>, connected_accounts: &[AccountId]) -> Condition {
    let mut placement = Condition::any().add(jobs::Column::PinnedAccountId.is_null());
    if !connected_accounts.is_empty() {
        placement =
            placement.add(jobs::Column::PinnedAccountId.is_in(connected_accounts.iter().map(|id| id.0)));
    }
    let due = Condition::any()
        .add(
            Condition::all()
                .add(jobs::Column::Status.eq(Db(JobStatus::Pending)))
                .add(jobs::Column::RunAt.lte(now)),
        )
        .add(
            Condition::all()
                .add(jobs::Column::Status.eq(Db(JobStatus::Running)))
                .add(jobs::Column::LockedUntil.lt(now)),
        );
    Condition::all().add(due).add(placement)
}

/// No earlier job with the same order key is unfinished (the sends of one chat go out in order).
fn first_of_its_order() -> Condition {
    let earlier = Alias::new("earlier");
    let unfinished = Query::select()
        .expr(Expr::val(1))
        .from_as(jobs::Entity, earlier.clone())
        .and_where(
            Expr::col((earlier.clone(), jobs::Column::OrderKey))
                .equals((jobs::Entity, jobs::Column::OrderKey)),
        )
        .and_where(
            Expr::col((earlier.clone(), jobs::Column::Id)).lt(Expr::col((jobs::Entity, jobs::Column::Id))),
        )
        .and_where(
            Expr::col((earlier, jobs::Column::Status))
                .is_in([Db(JobStatus::Pending), Db(JobStatus::Running)]),
        )
        .to_owned();
    Condition::any()
        .add(jobs::Column::OrderKey.is_null())
        .add(Expr::exists(unfinished).not())
}

/// Claims up to `limit` due jobs for `worker` for `lock_for`, counting an attempt on each. Safe with any number
/// of concurrent workers on every backend: candidates are found without locks, then locked with `FOR UPDATE SKIP
/// LOCKED` where the backend has it (SQLite's write transaction is exclusive), and the claiming update re-checks
/// that each is still claimable. A job that is not the first unfinished one of its order key waits. Jobs whose
/// stored input cannot be read are dead-lettered on the spot.
pub async fn claim(
    store: &Store,
    worker: &str,
    limit: u64,
    lock_for: Duration,
    connected_accounts: &[AccountId],
) -> StoreResult<Vec<ClaimedJob>> {
    let now = Utc::now();
    let claim_id = format!("{worker}/{:08x}", rand::thread_rng().r#gen::<u32>());
    let txn = store.begin_write().await?;
    let candidates: Vec<i64> = jobs::Entity::find()
        .select_only()
        .column(jobs::Column::Id)
        .filter(claimable(now, connected_accounts))
        .filter(first_of_its_order())
        .order_by_asc(jobs::Column::RunAt)
        .order_by_asc(jobs::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(&txn)
        .await?;
    if candidates.is_empty() {
        txn.commit().await?;
        return Ok(Vec::new());
    }
    let mut locking = jobs::Entity::find()
        .select_only()
        .column(jobs::Column::Id)
        .filter(jobs::Column::Id.is_in(candidates));
    if store.backend().supports_skip_locked() {
        locking = locking.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let ids: Vec<i64> = locking.into_tuple().all(&txn).await?;
    if ids.is_empty() {
        txn.commit().await?;
        return Ok(Vec::new());
    }
    jobs::Entity::update_many()
        .col_expr(jobs::Column::Status, Expr::value(Db(JobStatus::Running)))
        .col_expr(jobs::Column::LockedBy, Expr::value(claim_id.clone()))
        .col_expr(jobs::Column::LockedUntil, Expr::value(now + lock_for))
        .col_expr(jobs::Column::Attempts, Expr::col(jobs::Column::Attempts).add(1))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(now))
        .filter(jobs::Column::Id.is_in(ids.clone()))
        .filter(claimable(now, connected_accounts))
        .exec(&txn)
        .await?;
    let rows = jobs::Entity::find()
        .filter(jobs::Column::Id.is_in(ids))
        .filter(jobs::Column::LockedBy.eq(claim_id.clone()))
        .order_by_asc(jobs::Column::RunAt)
        .order_by_asc(jobs::Column::Id)
        .all(&txn)
        .await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        match JobPayload::from_stored(&row.kind, &row.payload) {
            Ok(payload) => claimed.push(ClaimedJob {
                id: JobId(row.id),
                payload,
                attempt: row.attempts,
                max_attempts: row.max_attempts,
                claim: claim_id.clone(),
            }),
            Err(error) => {
                tracing::error!(job_id = row.id, kind = %row.kind, %error, "job dead-lettered: its input cannot be read");
                finish_in(
                    &txn,
                    JobId(row.id),
                    &claim_id,
                    JobStatus::Dead,
                    None,
                    Some(&error.to_string()),
                )
                .await?;
            }
        }
    }
    txn.commit().await?;
    Ok(claimed)
}

async fn finish_in<C: ConnectionTrait>(
    conn: &C,
    job: JobId,
    claim: &str,
    status: JobStatus,
    run_at: Option<DateTime<Utc>>,
    error: Option<&str>,
) -> StoreResult<bool> {
    let mut update = jobs::Entity::update_many()
        .col_expr(jobs::Column::Status, Expr::value(Db(status)))
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
    // Only the worker that holds the claim may record the outcome; a lapsed claim taken over by another worker
    // is not overwritten.
    let result = update
        .filter(jobs::Column::Id.eq(job.0))
        .filter(jobs::Column::LockedBy.eq(claim))
        .exec(conn)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Marks a claimed job done. False if the claim was lost meanwhile.
pub async fn complete(store: &Store, job: &ClaimedJob) -> StoreResult<bool> {
    finish_in(store.writes(), job.id, &job.claim, JobStatus::Done, None, None).await
}

/// Puts a claimed job back to run at `run_at`, or dead-letters it when its attempts are used up. Returns the
/// status it ended in.
pub async fn retry_later(
    store: &Store,
    job: &ClaimedJob,
    run_at: DateTime<Utc>,
    error: &str,
) -> StoreResult<JobStatus> {
    let status = if job.is_last_attempt() {
        JobStatus::Dead
    } else {
        JobStatus::Pending
    };
    finish_in(
        store.writes(),
        job.id,
        &job.claim,
        status,
        Some(run_at),
        Some(error),
    )
    .await?;
    Ok(status)
}

/// Dead-letters a claimed job at once (a permanent failure).
pub async fn fail_permanently(store: &Store, job: &ClaimedJob, error: &str) -> StoreResult<bool> {
    finish_in(
        store.writes(),
        job.id,
        &job.claim,
        JobStatus::Dead,
        None,
        Some(error),
    )
    .await
}

/// Extends the claims of running jobs by `lock_for` from now. Returns how many were still held.
pub async fn renew(store: &Store, claims: &[(JobId, String)], lock_for: Duration) -> StoreResult<u64> {
    let mut renewed = 0;
    let until = Utc::now() + lock_for;
    for (job, claim) in claims {
        let result = jobs::Entity::update_many()
            .col_expr(jobs::Column::LockedUntil, Expr::value(until))
            .filter(jobs::Column::Id.eq(job.0))
            .filter(jobs::Column::LockedBy.eq(claim.as_str()))
            .exec(store.writes())
            .await?;
        renewed += result.rows_affected;
    }
    Ok(renewed)
}

/// Puts a dead job back in the queue with fresh attempts (a retry by hand).
pub async fn requeue(store: &Store, job_id: JobId) -> StoreResult<bool> {
    let result = jobs::Entity::update_many()
        .col_expr(jobs::Column::Status, Expr::value(Db(JobStatus::Pending)))
        .col_expr(jobs::Column::Attempts, Expr::value(0))
        .col_expr(jobs::Column::RunAt, Expr::value(Utc::now()))
        .col_expr(jobs::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(jobs::Column::Id.eq(job_id.0))
        .filter(jobs::Column::Status.eq(Db(JobStatus::Dead)))
        .exec(store.writes())
        .await?;
    Ok(result.rows_affected == 1)
}

/// A job's state, for status pages and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct JobState {
    /// Id.
    pub id: JobId,
    /// Kind as stored.
    pub kind: String,
    /// Its input (`None` if it cannot be read).
    pub payload: Option<JobPayload>,
    /// Where it stands.
    pub status: JobStatus,
    /// Attempts made.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// Earliest next run.
    pub run_at: DateTime<Utc>,
    /// Reason of the last failure.
    pub last_error: Option<String>,
    /// The claim holding it while it runs.
    pub locked_by: Option<String>,
    /// Until when that claim holds.
    pub locked_until: Option<DateTime<Utc>>,
}

impl From<jobs::Model> for JobState {
    fn from(row: jobs::Model) -> Self {
        Self {
            id: JobId(row.id),
            payload: JobPayload::from_stored(&row.kind, &row.payload).ok(),
            kind: row.kind,
            status: row.status.0,
            attempts: row.attempts,
            max_attempts: row.max_attempts,
            run_at: row.run_at,
            last_error: row.last_error,
            locked_by: row.locked_by,
            locked_until: row.locked_until,
        }
    }
}

/// A job by id.
pub async fn find(store: &Store, job_id: JobId) -> StoreResult<Option<JobState>> {
    Ok(jobs::Entity::find_by_id(job_id.0)
        .one(store.db())
        .await?
        .map(JobState::from))
}

/// Every job of `kind`, oldest first (tests and status pages).
pub async fn of_kind(store: &Store, kind: &str) -> StoreResult<Vec<JobState>> {
    Ok(jobs::Entity::find()
        .filter(jobs::Column::Kind.eq(kind))
        .order_by_asc(jobs::Column::Id)
        .all(store.db())
        .await?
        .into_iter()
        .map(JobState::from)
        .collect())
}

/// Releases the claims `worker` still holds from before a restart (a crash left them `running`), so its jobs run
/// again at once instead of after their lock lapses. Only claims of this exact worker id are touched: another live
/// instance's claims are never released. Returns how many jobs were released.
pub async fn release_stale_claims(store: &Store, worker: &str) -> StoreResult<u64> {
    let released = jobs::Entity::update_many()
        .col_expr(jobs::Column::Status, Expr::value(Db(JobStatus::Pending)))
        .col_expr(jobs::Column::LockedBy, Expr::value(Option::<String>::None))
        .col_expr(
            jobs::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(jobs::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(jobs::Column::Status.eq(Db(JobStatus::Running)))
        .filter(jobs::Column::LockedBy.starts_with(format!("{worker}/")))
        .exec(store.writes())
        .await?;
    Ok(released.rows_affected)
}

/// Schedules today's housekeeping unless it was scheduled already (by this or another instance).
pub async fn schedule_housekeeping(store: &Store) -> StoreResult<bool> {
    let now = Utc::now();
    let today = now.date_naive().to_string();
    let job = JobRequest {
        dedupe_key: Some(format!("housekeeping:{today}")),
        ..JobRequest::new(JobPayload::Housekeeping { date: today }, now)
    };
    let enqueued = enqueue(store.writes(), job).await?;
    if enqueued {
        store.signals().jobs.notify_one();
    }
    Ok(enqueued)
}

//! The jobs table: concurrent claimers never share a job, jobs of one order key run one at a time in order,
//! retries and dead-lettering follow the attempts, claims are renewed, a lapsed claim is taken over, a stale worker
//! cannot overwrite the new owner's outcome, and typed inputs round-trip (an unreadable one is dead-lettered).

use std::collections::HashSet;

use chrono::{Duration, Utc};
use crm_core::ids::{AccountId, ChatId, JobId, MessageId};
use crm_core::jobs::{ClaimedJob, JobPayload, JobRequest, JobStatus};
use crm_store::Store;
use crm_store::repo::jobs;
use crm_testkit_db::{TestDatabase, on_every_backend};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::support::migrated_store;

on_every_backend!(
    concurrent_claimers_never_run_a_job_twice,
    jobs_of_one_order_key_run_one_at_a_time_in_order,
    failures_retry_then_dead_letter,
    claims_are_renewed_and_a_lapsed_claim_is_taken_over,
    dedupe_keys_make_enqueue_idempotent,
    a_restarted_worker_resumes_its_own_claims_only,
    pinned_jobs_run_only_where_their_account_is_connected,
    an_unreadable_input_is_dead_lettered_not_retried,
);

fn send(message: i64) -> JobRequest {
    JobRequest::new(
        JobPayload::SendMessage {
            message_id: MessageId(message),
        },
        Utc::now(),
    )
}

async fn enqueue(store: &Store, job: JobRequest) -> JobId {
    let message = match &job.payload {
        JobPayload::SendMessage { message_id } => Some(*message_id),
        _ => None,
    };
    assert!(jobs::enqueue(store.writes(), job.clone()).await.unwrap());
    let stored = jobs::of_kind(store, job.payload.kind()).await.unwrap();
    stored
        .into_iter()
        .rev()
        .find(|row| match (&row.payload, message) {
            (Some(JobPayload::SendMessage { message_id }), Some(wanted)) => *message_id == wanted,
            (Some(payload), None) => *payload == job.payload,
            _ => false,
        })
        .unwrap()
        .id
}

async fn claim(store: &Store, worker: &str, limit: u64) -> Vec<ClaimedJob> {
    jobs::claim(store, worker, limit, Duration::minutes(5), &[])
        .await
        .unwrap()
}

async fn status(store: &Store, id: JobId) -> JobStatus {
    jobs::find(store, id).await.unwrap().unwrap().status
}

async fn make_due(store: &Store, id: JobId) {
    crm_store::entity::jobs::Entity::update_many()
        .col_expr(
            crm_store::entity::jobs::Column::RunAt,
            Expr::value(Utc::now() - Duration::seconds(1)),
        )
        .filter(crm_store::entity::jobs::Column::Id.eq(id.0))
        .exec(store.db())
        .await
        .unwrap();
}

async fn concurrent_claimers_never_run_a_job_twice(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let mut expected = HashSet::new();
    for n in 0..60 {
        expected.insert(enqueue(&store, send(n)).await);
    }
    let workers = (0..4).map(|w| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = claim(&store, &format!("worker-{w}"), 5).await;
                if batch.is_empty() {
                    break;
                }
                for job in batch {
                    assert_eq!(job.attempt, 1);
                    assert!(matches!(job.payload, JobPayload::SendMessage { .. }));
                    assert!(jobs::complete(&store, &job).await.unwrap());
                    mine.push(job.id);
                }
            }
            mine
        })
    });
    let mut seen = Vec::new();
    for worker in workers {
        seen.extend(worker.await.unwrap());
    }
    let unique: HashSet<JobId> = seen.iter().copied().collect();
    assert_eq!(seen.len(), unique.len(), "a job was claimed twice");
    assert_eq!(unique, expected);
    for id in expected {
        assert_eq!(status(&store, id).await, JobStatus::Done);
    }
}

async fn jobs_of_one_order_key_run_one_at_a_time_in_order(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let now = Utc::now();
    let chat = |message, chat| JobRequest::send(MessageId(message), ChatId(chat), 0, 3, None, now);
    let first = enqueue(&store, chat(1, 10)).await;
    let second = enqueue(&store, chat(2, 10)).await;
    let third = enqueue(&store, chat(3, 10)).await;
    let other_chat = enqueue(&store, chat(4, 20)).await;

    let claimed: Vec<JobId> = claim(&store, "w", 10).await.iter().map(|j| j.id).collect();
    assert_eq!(
        claimed,
        vec![first, other_chat],
        "one job per chat at a time, the oldest first"
    );
    assert!(
        claim(&store, "w2", 10).await.is_empty(),
        "the rest wait while the first runs"
    );

    // A failed attempt that waits for its retry still holds its chat's later jobs back: order is kept.
    let running = jobs::find(&store, first).await.unwrap().unwrap();
    let job = ClaimedJob {
        id: first,
        payload: running.payload.unwrap(),
        attempt: 1,
        max_attempts: 3,
        claim: running.locked_by.unwrap(),
    };
    jobs::retry_later(&store, &job, Utc::now() + Duration::hours(1), "flood wait")
        .await
        .unwrap();
    assert!(claim(&store, "w", 10).await.is_empty());
    make_due(&store, first).await;
    let retried = claim(&store, "w", 10).await;
    assert_eq!(retried.iter().map(|j| j.id).collect::<Vec<_>>(), vec![first]);
    assert!(jobs::complete(&store, &retried[0]).await.unwrap());
    let next = claim(&store, "w", 10).await;
    assert_eq!(next.iter().map(|j| j.id).collect::<Vec<_>>(), vec![second]);
    // A dead job does not block its chat for ever.
    assert!(jobs::fail_permanently(&store, &next[0], "blocked").await.unwrap());
    assert_eq!(
        claim(&store, "w", 10)
            .await
            .iter()
            .map(|j| j.id)
            .collect::<Vec<_>>(),
        vec![third]
    );
}

async fn failures_retry_then_dead_letter(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let mut job = JobRequest::forward(
        AccountId(1),
        "https://bot.example/hook",
        &json!({ "update_id": 5 }),
        Utc::now(),
    );
    job.max_attempts = 2;
    let id = enqueue(&store, job).await;

    let first = claim(&store, "w", 10).await.remove(0);
    let later = Utc::now() + Duration::hours(1);
    assert_eq!(
        jobs::retry_later(&store, &first, later, "HTTP 502")
            .await
            .unwrap(),
        JobStatus::Pending
    );
    assert!(claim(&store, "w", 10).await.is_empty(), "not due before run_at");
    let stored = jobs::find(&store, id).await.unwrap().unwrap();
    assert_eq!(stored.last_error.as_deref(), Some("HTTP 502"));
    assert!((stored.run_at - later).num_milliseconds().abs() < 5);

    // Time passes: the retry becomes due.
    make_due(&store, id).await;
    let second = claim(&store, "w", 10).await.remove(0);
    assert_eq!(second.attempt, 2);
    assert!(second.is_last_attempt());
    assert_eq!(
        jobs::retry_later(&store, &second, Utc::now(), "still failing")
            .await
            .unwrap(),
        JobStatus::Dead
    );
    assert!(
        claim(&store, "w", 10).await.is_empty(),
        "dead jobs are not claimed"
    );

    assert!(jobs::requeue(&store, id).await.unwrap());
    let again = claim(&store, "w", 10).await.remove(0);
    assert_eq!(again.attempt, 1, "a retry by hand starts counting again");
    assert!(
        jobs::fail_permanently(&store, &again, "bot was blocked by the user")
            .await
            .unwrap()
    );
    assert_eq!(status(&store, id).await, JobStatus::Dead);
}

async fn claims_are_renewed_and_a_lapsed_claim_is_taken_over(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let id = enqueue(&store, send(1)).await;
    let stale = jobs::claim(&store, "dead-worker", 1, Duration::milliseconds(-1), &[])
        .await
        .unwrap()
        .remove(0);
    let taken = claim(&store, "live-worker", 1).await;
    assert_eq!(taken.len(), 1, "a claim whose lock lapsed is claimable");
    assert_eq!(taken[0].attempt, 2);
    assert!(
        !jobs::complete(&store, &stale).await.unwrap(),
        "the stale worker lost its claim"
    );
    assert_eq!(
        jobs::renew(&store, &[(id, stale.claim.clone())], Duration::minutes(5))
            .await
            .unwrap(),
        0,
        "nor can it renew it"
    );
    let before = jobs::find(&store, id)
        .await
        .unwrap()
        .unwrap()
        .locked_until
        .unwrap();
    assert_eq!(
        jobs::renew(&store, &[(id, taken[0].claim.clone())], Duration::minutes(30))
            .await
            .unwrap(),
        1
    );
    let after = jobs::find(&store, id)
        .await
        .unwrap()
        .unwrap()
        .locked_until
        .unwrap();
    assert!(after - before > Duration::minutes(20), "the claim was extended");
    assert_eq!(status(&store, id).await, JobStatus::Running);
    assert!(jobs::complete(&store, &taken[0]).await.unwrap());
}

async fn dedupe_keys_make_enqueue_idempotent(database: TestDatabase) {
    let store = migrated_store(&database).await;
    assert!(jobs::schedule_housekeeping(&store).await.unwrap());
    assert!(
        !jobs::schedule_housekeeping(&store).await.unwrap(),
        "today's is scheduled already"
    );
    let update = json!({ "update_id": 77 });
    let forward = JobRequest::forward(AccountId(3), "https://bot.example/hook", &update, Utc::now());
    assert!(jobs::enqueue(store.writes(), forward.clone()).await.unwrap());
    assert!(
        !jobs::enqueue(store.writes(), forward).await.unwrap(),
        "one forward per update id"
    );
    assert_eq!(claim(&store, "w", 10).await.len(), 2);
}

async fn a_restarted_worker_resumes_its_own_claims_only(database: TestDatabase) {
    let store = migrated_store(&database).await;
    for n in 0..2 {
        enqueue(&store, send(n)).await;
    }
    let mine = claim(&store, "w1", 1).await;
    let theirs = claim(&store, "w10", 1).await;
    assert_eq!((mine.len(), theirs.len()), (1, 1));

    assert_eq!(jobs::release_stale_claims(&store, "w1").await.unwrap(), 1);
    let released = jobs::find(&store, mine[0].id).await.unwrap().unwrap();
    assert_eq!(
        released.status,
        JobStatus::Pending,
        "claimed before the restart, runnable again"
    );
    assert_eq!(released.locked_by, None);
    assert_eq!(
        status(&store, theirs[0].id).await,
        JobStatus::Running,
        "another worker's claim (w10, not w1) is left alone"
    );
    let again = claim(&store, "w1", 5).await;
    assert_eq!(again.iter().map(|j| j.id).collect::<Vec<_>>(), vec![mine[0].id]);
}

async fn pinned_jobs_run_only_where_their_account_is_connected(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let free = enqueue(&store, send(1)).await;
    let pinned = enqueue(
        &store,
        JobRequest {
            pinned_account_id: Some(AccountId(7)),
            ..send(2)
        },
    )
    .await;
    let elsewhere = jobs::claim(&store, "w", 10, Duration::minutes(1), &[AccountId(8)])
        .await
        .unwrap();
    assert_eq!(
        elsewhere.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![free],
        "an instance connected to other accounts takes only the free job"
    );
    let here = jobs::claim(
        &store,
        "w2",
        10,
        Duration::minutes(1),
        &[AccountId(7), AccountId(8)],
    )
    .await
    .unwrap();
    assert_eq!(here.iter().map(|j| j.id).collect::<Vec<_>>(), vec![pinned]);
}

async fn an_unreadable_input_is_dead_lettered_not_retried(database: TestDatabase) {
    use sea_orm::{ActiveModelTrait, Set};
    let store = migrated_store(&database).await;
    let now = Utc::now();
    let row = crm_store::entity::jobs::ActiveModel {
        kind: Set("send_message".into()),
        payload: Set(json!({ "message_id": "not a number" })),
        status: Set(crm_store::Db(JobStatus::Pending)),
        attempts: Set(0),
        max_attempts: Set(5),
        run_at: Set(now),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(store.writes())
    .await
    .unwrap();
    let good = enqueue(&store, send(9)).await;
    let claimed = claim(&store, "w", 10).await;
    assert_eq!(claimed.iter().map(|j| j.id).collect::<Vec<_>>(), vec![good]);
    let dead = jobs::find(&store, JobId(row.id)).await.unwrap().unwrap();
    assert_eq!(dead.status, JobStatus::Dead);
    assert!(dead.last_error.unwrap().contains("unreadable"));
}

//! The jobs table: concurrent claimers never share a job, retries and dead-lettering follow the attempts,
//! a lapsed claim is taken over, and a stale worker cannot overwrite the new owner's outcome.

use std::collections::HashSet;

use chrono::{Duration, Utc};
use crm_store::repo::jobs::{self, DEAD, DONE, NewJob, PENDING, RUNNING};
use crm_testkit_db::{TestDatabase, on_every_backend};
use serde_json::json;

use crate::support::migrated_store;

on_every_backend!(
    concurrent_claimers_never_run_a_job_twice,
    failures_retry_then_dead_letter,
    a_lapsed_claim_is_taken_over_and_the_stale_worker_cannot_finish_it,
    dedupe_keys_make_enqueue_idempotent,
    a_restarted_worker_resumes_its_own_claims_only,
    pinned_jobs_run_only_where_their_account_is_connected,
);

async fn concurrent_claimers_never_run_a_job_twice(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let mut expected = HashSet::new();
    for n in 0..60 {
        let job = jobs::enqueue(store.db(), NewJob::now("send_message", json!({ "n": n })))
            .await
            .unwrap()
            .unwrap();
        expected.insert(job.id);
    }
    let workers = (0..4).map(|w| {
        let store = store.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = jobs::claim(&store, &format!("worker-{w}"), 5, Duration::minutes(5))
                    .await
                    .unwrap();
                if batch.is_empty() {
                    break;
                }
                for job in batch {
                    assert_eq!(job.status, RUNNING);
                    assert_eq!(job.attempts, 1);
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
    let unique: HashSet<i64> = seen.iter().copied().collect();
    assert_eq!(seen.len(), unique.len(), "a job was claimed twice");
    assert_eq!(unique, expected);
    for id in expected {
        assert_eq!(jobs::find(&store, id).await.unwrap().unwrap().status, DONE);
    }
}

async fn failures_retry_then_dead_letter(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let mut job = NewJob::now("forward_update", json!({}));
    job.max_attempts = 2;
    let id = jobs::enqueue(store.db(), job).await.unwrap().unwrap().id;

    let first = jobs::claim(&store, "w", 10, Duration::minutes(1))
        .await
        .unwrap()
        .remove(0);
    let later = Utc::now() + Duration::hours(1);
    assert_eq!(
        jobs::retry_later(&store, &first, later, "HTTP 502")
            .await
            .unwrap(),
        PENDING
    );
    assert!(
        jobs::claim(&store, "w", 10, Duration::minutes(1))
            .await
            .unwrap()
            .is_empty(),
        "not due before run_at"
    );
    let stored = jobs::find(&store, id).await.unwrap().unwrap();
    assert_eq!(stored.last_error.as_deref(), Some("HTTP 502"));
    assert!((stored.run_at - later).num_milliseconds().abs() < 5);

    // Time passes: the retry becomes due.
    let mut due: crm_store::entity::jobs::ActiveModel = stored.into();
    due.run_at = sea_orm::Set(Utc::now() - Duration::seconds(1));
    sea_orm::ActiveModelTrait::update(due, store.db()).await.unwrap();
    let second = jobs::claim(&store, "w", 10, Duration::minutes(1))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(second.attempts, 2);
    assert_eq!(
        jobs::retry_later(&store, &second, Utc::now(), "still failing")
            .await
            .unwrap(),
        DEAD
    );
    assert!(
        jobs::claim(&store, "w", 10, Duration::minutes(1))
            .await
            .unwrap()
            .is_empty(),
        "dead jobs are not claimed"
    );

    assert!(jobs::requeue(&store, id).await.unwrap());
    let again = jobs::claim(&store, "w", 10, Duration::minutes(1))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(again.attempts, 1, "a retry by hand starts counting again");
    assert!(
        jobs::fail_permanently(&store, &again, "bot was blocked by the user")
            .await
            .unwrap()
    );
    assert_eq!(jobs::find(&store, id).await.unwrap().unwrap().status, DEAD);
}

async fn a_lapsed_claim_is_taken_over_and_the_stale_worker_cannot_finish_it(database: TestDatabase) {
    let store = migrated_store(&database).await;
    jobs::enqueue(store.db(), NewJob::now("k", json!({})))
        .await
        .unwrap();
    let stale = jobs::claim(&store, "dead-worker", 1, Duration::milliseconds(-1))
        .await
        .unwrap()
        .remove(0);
    let taken = jobs::claim(&store, "live-worker", 1, Duration::minutes(5))
        .await
        .unwrap();
    assert_eq!(taken.len(), 1, "a claim whose lock lapsed is claimable");
    assert_eq!(taken[0].attempts, 2);
    assert!(
        !jobs::complete(&store, &stale).await.unwrap(),
        "the stale worker lost its claim"
    );
    assert_eq!(
        jobs::find(&store, stale.id).await.unwrap().unwrap().status,
        RUNNING
    );
    assert!(jobs::complete(&store, &taken[0]).await.unwrap());
}

async fn dedupe_keys_make_enqueue_idempotent(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let mut job = NewJob::now("housekeeping", json!({}));
    job.dedupe_key = Some("housekeeping:2026-11-24".into());
    assert!(jobs::enqueue(store.db(), job.clone()).await.unwrap().is_some());
    assert!(jobs::enqueue(store.db(), job).await.unwrap().is_none());
    assert_eq!(
        jobs::claim(&store, "w", 10, Duration::minutes(1))
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn a_restarted_worker_resumes_its_own_claims_only(database: TestDatabase) {
    let store = migrated_store(&database).await;
    for n in 0..2 {
        jobs::enqueue(store.db(), NewJob::now("send_message", json!({ "n": n })))
            .await
            .unwrap();
    }
    let mine = jobs::claim(&store, "w1", 1, Duration::minutes(5)).await.unwrap();
    let theirs = jobs::claim(&store, "w10", 1, Duration::minutes(5)).await.unwrap();
    assert_eq!((mine.len(), theirs.len()), (1, 1));

    assert_eq!(jobs::release_stale_claims(&store, "w1").await.unwrap(), 1);
    let mine = jobs::find(&store, mine[0].id).await.unwrap().unwrap();
    assert_eq!(mine.status, PENDING, "claimed before the restart, runnable again");
    assert_eq!(mine.locked_by, None);
    let theirs = jobs::find(&store, theirs[0].id).await.unwrap().unwrap();
    assert_eq!(
        theirs.status, RUNNING,
        "another worker's claim (w10, not w1) is left alone"
    );
    let again = jobs::claim(&store, "w1", 5, Duration::minutes(5)).await.unwrap();
    assert_eq!(again.iter().map(|j| j.id).collect::<Vec<_>>(), vec![mine.id]);
}

async fn pinned_jobs_run_only_where_their_account_is_connected(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let free = jobs::enqueue(store.db(), NewJob::now("send_message", json!({})))
        .await
        .unwrap()
        .unwrap();
    let pinned = jobs::enqueue(store.db(), NewJob::now("send_message", json!({})).pinned_to(7))
        .await
        .unwrap()
        .unwrap();
    let elsewhere = jobs::claim_placed(&store, "w", 10, Duration::minutes(1), &[8])
        .await
        .unwrap();
    assert_eq!(
        elsewhere.iter().map(|j| j.id).collect::<Vec<_>>(),
        vec![free.id],
        "an instance connected to other accounts takes only the free job"
    );
    let here = jobs::claim_placed(&store, "w2", 10, Duration::minutes(1), &[7, 8])
        .await
        .unwrap();
    assert_eq!(here.iter().map(|j| j.id).collect::<Vec<_>>(), vec![pinned.id]);
}

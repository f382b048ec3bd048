//! Daily housekeeping: deletes API tokens revoked more than 30 days ago and events older than a day.
//! Scheduled with a dedupe key per day, so with several instances it runs once.

use std::sync::Arc;

use chrono::{Duration, Utc};
use crm_store::Store;
use crm_store::repo::jobs::{self, NewJob};
use crm_store::repo::tokens;
use serde_json::json;

use crate::runner::{JobContext, JobError, JobHandler};

/// The job kind.
pub const KIND: &str = "housekeeping";
/// How long the event log keeps events for clients that resume (older gaps answer `resync_required`).
pub const EVENT_RETENTION: Duration = Duration::days(1);
/// How long revoked tokens are kept for the audit trail.
pub const REVOKED_TOKEN_RETENTION: Duration = Duration::days(30);

/// Deletes old revoked tokens.
#[derive(Debug)]
pub struct Housekeeping {
    store: Store,
}

impl Housekeeping {
    /// A handler over `store`.
    pub fn new(store: Store) -> Arc<Self> {
        Arc::new(Self { store })
    }
}

impl JobHandler for Housekeeping {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn run(&self, _job: JobContext) -> crate::runner::BoxFuture<'_, Result<(), JobError>> {
        Box::pin(async move {
            let purged = tokens::purge_revoked(&self.store, REVOKED_TOKEN_RETENTION)
                .await
                .map_err(|error| JobError::Retry(error.to_string()))?;
            tracing::info!(purged, "housekeeping: old revoked tokens deleted");
            let events = crm_store::repo::events::purge_older_than(&self.store, EVENT_RETENTION)
                .await
                .map_err(|error| JobError::Retry(error.to_string()))?;
            tracing::info!(events, "housekeeping: old events deleted");
            Ok(())
        })
    }
}

/// Enqueues today's housekeeping run unless it was enqueued already (by this or another instance).
pub async fn schedule_today(store: &Store) -> crm_store::StoreResult<bool> {
    let today = Utc::now().date_naive();
    let mut job = NewJob::now(KIND, json!({ "date": today.to_string() }));
    job.dedupe_key = Some(format!("{KIND}:{today}"));
    Ok(jobs::enqueue(store.db(), job).await?.is_some())
}

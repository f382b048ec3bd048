//! What each kind of job does: sends, downloads and read marks go to the core's [`Courier`], forwards to the
//! [`Forwarder`], the daily housekeeping to the job queue's clean-up. The typed payload chooses; a job of a kind
//! this version does not know never reaches here (the queue dead-letters what it cannot read).

use std::sync::Arc;

use chrono::Duration;
use crm_core::inbox::{Courier, Delivered, Downloaded};
use crm_core::jobs::{ClaimedJob, JobPayload};
use crm_core::ports::JobQueue;

use crate::forward::Forwarder;
use crate::runner::{BoxFuture, JobHandler, JobOutcome};

/// How long the event log keeps events for clients that resume (older gaps answer `resync_required`).
pub const EVENT_RETENTION: Duration = Duration::days(1);
/// How long revoked tokens are kept for the audit trail.
pub const REVOKED_TOKEN_RETENTION: Duration = Duration::days(30);

/// Runs every kind of job.
pub struct Handlers {
    courier: Arc<Courier>,
    forwarder: Forwarder,
    queue: Arc<dyn JobQueue>,
}

impl Handlers {
    /// Handlers over `courier` (channel calls), `forwarder` (bot backends) and `queue` (housekeeping).
    pub fn new(courier: Arc<Courier>, forwarder: Forwarder, queue: Arc<dyn JobQueue>) -> Arc<Self> {
        Arc::new(Self {
            courier,
            forwarder,
            queue,
        })
    }

    async fn dispatch(&self, job: &ClaimedJob) -> JobOutcome {
        let last = job.is_last_attempt();
        match &job.payload {
            JobPayload::SendMessage { message_id } => {
                delivered(self.courier.deliver(*message_id, job.attempt, last).await)
            }
            JobPayload::DownloadMedia {
                media_file_id,
                max_bytes,
            } => match self.courier.download(*media_file_id, *max_bytes, last).await {
                Ok(Downloaded::Stored | Downloaded::TooLarge | Downloaded::Nothing) => JobOutcome::Done,
                Ok(Downloaded::Failed(reason)) => JobOutcome::Dead(reason),
                Ok(Downloaded::RetryAt(at, reason)) => JobOutcome::RetryAt(at, reason),
                Ok(Downloaded::Retry(reason)) => JobOutcome::Retry(reason),
                Err(error) => JobOutcome::Retry(error.to_string()),
            },
            JobPayload::MarkReadInTelegram { chat_id } => {
                delivered(self.courier.mark_read_in_telegram(*chat_id).await)
            }
            JobPayload::ForwardUpdate {
                account_id,
                url,
                update,
            } => self.forwarder.forward(*account_id, url, update).await,
            JobPayload::Housekeeping { .. } => {
                match self
                    .queue
                    .clean_up(REVOKED_TOKEN_RETENTION, EVENT_RETENTION)
                    .await
                {
                    Ok((tokens, events)) => {
                        tracing::info!(
                            tokens,
                            events,
                            "housekeeping: old revoked tokens and events deleted"
                        );
                        JobOutcome::Done
                    }
                    Err(error) => JobOutcome::Retry(error.to_string()),
                }
            }
        }
    }
}

fn delivered(result: crm_core::CoreResult<Delivered>) -> JobOutcome {
    match result {
        Ok(Delivered::Done | Delivered::Nothing) => JobOutcome::Done,
        Ok(Delivered::Failed(reason)) => JobOutcome::Dead(reason),
        Ok(Delivered::RetryAt(at, reason)) => JobOutcome::RetryAt(at, reason),
        Ok(Delivered::Retry(reason)) => JobOutcome::Retry(reason),
        Err(error) => JobOutcome::Retry(error.to_string()),
    }
}

impl JobHandler for Handlers {
    fn run<'a>(&'a self, job: &'a ClaimedJob) -> BoxFuture<'a, JobOutcome> {
        Box::pin(self.dispatch(job))
    }
}

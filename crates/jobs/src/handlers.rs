//! What each kind of job does: sends, downloads and read marks go to the core's [`Courier`], forwards to the
//! [`Forwarder`], the daily housekeeping to the job queue's clean-up and the removal of uploads never sent. The typed payload chooses; a job of a kind
//! this version does not know never reaches here (the queue dead-letters what it cannot read).

use std::sync::Arc;

use chrono::Duration;
use crm_core::inbox::{Courier, Delivered, Downloaded};
use crm_core::jobs::{ClaimedJob, JobPayload};
use crm_core::ports::{JobQueue, MediaStore};

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
    housekeeping: Housekeeping,
}

/// What the daily housekeeping removes, and where files live.
pub struct Housekeeping {
    /// The media files.
    pub media: Arc<dyn MediaStore>,
    /// How long an operator's upload that was never sent is kept.
    pub unsent_upload_retention: std::time::Duration,
}

impl Handlers {
    /// Handlers over `courier` (channel calls), `forwarder` (bot backends), `queue` and `housekeeping`.
    pub fn new(
        courier: Arc<Courier>,
        forwarder: Forwarder,
        queue: Arc<dyn JobQueue>,
        housekeeping: Housekeeping,
    ) -> Arc<Self> {
        Arc::new(Self {
            courier,
            forwarder,
            queue,
            housekeeping,
        })
    }

    /// Removes the uploads never sent that outlived their retention, records first, then files.
    async fn remove_unsent_uploads(&self) -> crm_core::CoreResult<usize> {
        let paths = self
            .queue
            .take_unsent_uploads(
                Duration::from_std(self.housekeeping.unsent_upload_retention).unwrap_or(Duration::days(1)),
            )
            .await?;
        for path in &paths {
            if let Err(error) = self.housekeeping.media.remove(path).await {
                tracing::warn!(%error, "an unsent upload's file could not be removed");
            }
        }
        Ok(paths.len())
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
                    Ok((tokens, events)) => match self.remove_unsent_uploads().await {
                        Ok(uploads) => {
                            tracing::info!(
                                tokens,
                                events,
                                uploads,
                                "housekeeping: old revoked tokens, events and unsent uploads deleted"
                            );
                            JobOutcome::Done
                        }
                        Err(error) => JobOutcome::Retry(error.to_string()),
                    },
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

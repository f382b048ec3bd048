//! The loop that claims and runs jobs, and the handler interface job kinds implement.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crm_store::Store;
use crm_store::entity::jobs as job_entity;
use crm_store::repo::jobs;
use tokio::sync::{Notify, watch};

use crate::backoff;
use crate::connected::ConnectedAccounts;
use crate::housekeeping;

/// A boxed future, so handlers can be stored as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a job attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// A passing failure: retry with backoff.
    #[error("{0}")]
    Retry(String),
    /// Retry no earlier than the given time (Telegram's `retry_after`, a flood wait).
    #[error("{1}")]
    RetryAt(DateTime<Utc>, String),
    /// Retrying cannot help: dead-letter now.
    #[error("{0}")]
    Permanent(String),
}

/// The job being run, as a handler sees it.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// Handler input.
    pub payload: serde_json::Value,
    /// This attempt's number, from 1.
    pub attempt: i32,
    /// Attempts allowed; on the last one a transient failure is final.
    pub max_attempts: i32,
}

impl JobContext {
    /// Whether this is the last attempt.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }
}

/// Runs the jobs of one kind.
pub trait JobHandler: Send + Sync + 'static {
    /// The kind this handler runs.
    fn kind(&self) -> &'static str;
    /// Runs one job. Must be safe to run again after a crash (at-least-once delivery).
    fn run(&self, job: JobContext) -> BoxFuture<'_, Result<(), JobError>>;
}

/// Tunables of the runner.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// Identifies this instance in claims.
    pub worker_id: String,
    /// Jobs claimed at once.
    pub batch_size: u64,
    /// How long a claim holds before another worker may take the job over.
    pub lock_for: chrono::Duration,
    /// How long to sleep when the queue is empty (a local enqueue wakes the runner earlier).
    pub idle_poll: Duration,
    /// How often to make sure today's housekeeping is scheduled.
    pub housekeeping_every: Duration,
}

impl RunnerSettings {
    /// Defaults for the given worker id.
    pub fn new(worker_id: impl Into<String>) -> Self {
        Self {
            worker_id: worker_id.into(),
            batch_size: 16,
            lock_for: chrono::Duration::minutes(5),
            idle_poll: Duration::from_secs(1),
            housekeeping_every: Duration::from_secs(3600),
        }
    }
}

/// Claims due jobs and runs them with the registered handlers.
pub struct Runner {
    store: Store,
    handlers: HashMap<&'static str, Arc<dyn JobHandler>>,
    settings: RunnerSettings,
    wake: Arc<Notify>,
    connected: ConnectedAccounts,
}

impl Runner {
    /// A runner with the housekeeping handler registered.
    pub fn new(store: Store, settings: RunnerSettings) -> Self {
        let mut runner = Self {
            store: store.clone(),
            handlers: HashMap::new(),
            settings,
            wake: Arc::new(Notify::new()),
            connected: ConnectedAccounts::default(),
        };
        runner.register(housekeeping::Housekeeping::new(store));
        runner
    }

    /// Adds the handler for its kind (replacing an earlier one).
    pub fn register(&mut self, handler: Arc<dyn JobHandler>) {
        self.handlers.insert(handler.kind(), handler);
    }

    /// Also claims the jobs pinned to the personal accounts in `connected` (those this instance is connected to).
    pub fn place_with(&mut self, connected: ConnectedAccounts) {
        self.connected = connected;
    }

    /// Notifying this wakes the runner at once, for jobs enqueued by this instance.
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// Claims one batch and runs it to the end; returns how many jobs ran.
    pub async fn run_once(&self) -> crm_store::StoreResult<usize> {
        let claimed = jobs::claim_placed(
            &self.store,
            &self.settings.worker_id,
            self.settings.batch_size,
            self.settings.lock_for,
            &self.connected.ids(),
        )
        .await?;
        let count = claimed.len();
        futures::future::join_all(claimed.into_iter().map(|job| self.run_job(job))).await;
        Ok(count)
    }

    async fn run_job(&self, job: job_entity::Model) {
        let outcome = match self.handlers.get(job.kind.as_str()) {
            Some(handler) => {
                let context = JobContext {
                    payload: job.payload.clone(),
                    attempt: job.attempts,
                    max_attempts: job.max_attempts,
                };
                handler.run(context).await
            }
            // An instance of another version may know this kind; let it (or a later deploy) take it.
            None => Err(JobError::Retry(format!(
                "no handler for job kind `{}` on this instance",
                job.kind
            ))),
        };
        let recorded = match &outcome {
            Ok(()) => jobs::complete(&self.store, &job).await.map(|_| "done"),
            Err(JobError::Retry(reason)) => {
                let delay =
                    chrono::Duration::from_std(backoff::delay_after(job.attempts)).unwrap_or_default();
                jobs::retry_later(&self.store, &job, Utc::now() + delay, reason).await
            }
            Err(JobError::RetryAt(at, reason)) => jobs::retry_later(&self.store, &job, *at, reason).await,
            Err(JobError::Permanent(reason)) => jobs::fail_permanently(&self.store, &job, reason)
                .await
                .map(|_| "dead"),
        };
        match (recorded, outcome) {
            (Ok(status), Ok(())) => {
                tracing::debug!(job_id = job.id, kind = %job.kind, status, "job finished")
            }
            (Ok(status), Err(error)) => {
                tracing::warn!(job_id = job.id, kind = %job.kind, attempt = job.attempts, status, %error, "job failed")
            }
            (Err(error), _) => tracing::error!(job_id = job.id, %error, "job outcome could not be recorded"),
        }
    }

    /// Runs until `shutdown` turns true: claims batches while there is work, sleeps when idle, and keeps
    /// housekeeping scheduled. A database outage is logged and retried.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        // This instance restarted: what it had claimed before is not running anywhere.
        match jobs::release_stale_claims(&self.store, &self.settings.worker_id).await {
            Ok(0) => {}
            Ok(released) => tracing::info!(
                released,
                "resuming jobs this instance was running before it stopped"
            ),
            Err(error) => {
                tracing::warn!(%error, "earlier claims of this instance not released; they lapse on their own")
            }
        }
        let mut housekeeping_tick = tokio::time::interval(self.settings.housekeeping_every);
        loop {
            if *shutdown.borrow() {
                break;
            }
            let ran = match self.run_once().await {
                Ok(count) => count,
                Err(error) => {
                    tracing::warn!(%error, "job runner could not claim jobs");
                    0
                }
            };
            if ran > 0 {
                continue;
            }
            tokio::select! {
                _ = shutdown.changed() => {}
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.settings.idle_poll) => {}
                _ = housekeeping_tick.tick() => {
                    if let Err(error) = housekeeping::schedule_today(&self.store).await {
                        tracing::warn!(%error, "housekeeping could not be scheduled");
                    }
                }
            }
        }
        tracing::info!("job runner stopped");
    }
}

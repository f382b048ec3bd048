//! The loop that claims and runs jobs.
//!
//! Jobs run side by side in a `JoinSet`, up to a concurrency limit; a free slot is filled at once, so one slow
//! job never holds the others back. Each job runs under a timeout shorter than its claim, and the claims of
//! running jobs are renewed while they run: a job never outlives its claim. If renewing fails for so long that a
//! claim could lapse (the database is unreachable), the job is cancelled first, so no other instance can take it
//! over while it still runs. Outcomes are recorded with backoff and jitter (or at the time a handler asks for),
//! and a job that used up its attempts is dead-lettered.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use crm_core::ids::JobId;
use crm_core::jobs::ClaimedJob;
use crm_core::ports::JobQueue;
use tokio::sync::{Notify, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

use crate::backoff;
use crate::connected::ConnectedAccounts;

/// A boxed future, so handlers can be trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How a job attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Finished.
    Done,
    /// A passing failure: retry with backoff.
    Retry(String),
    /// Retry no earlier than the given time (Telegram's `retry_after`, a flood wait).
    RetryAt(DateTime<Utc>, String),
    /// Retrying cannot help: dead-letter now.
    Dead(String),
}

/// Runs claimed jobs, whatever their kind.
pub trait JobHandler: Send + Sync + 'static {
    /// Runs one attempt of `job`. Must be safe to run again after a crash (at-least-once delivery).
    fn run<'a>(&'a self, job: &'a ClaimedJob) -> BoxFuture<'a, JobOutcome>;
}

/// Tunables of the runner.
#[derive(Debug, Clone)]
pub struct RunnerSettings {
    /// Identifies this instance in claims.
    pub worker_id: String,
    /// Jobs running at once.
    pub concurrency: usize,
    /// How long a claim holds unless renewed.
    pub lock_for: Duration,
    /// How long one attempt may run; below `lock_for`.
    pub job_timeout: Duration,
    /// How long to sleep when the queue is empty (a local enqueue wakes the runner earlier).
    pub idle_poll: Duration,
    /// How often to make sure today's housekeeping is scheduled.
    pub housekeeping_every: Duration,
}

impl RunnerSettings {
    /// Defaults for the given worker id: 16 jobs at once, claims of 5 minutes renewed every 75 s, attempts of
    /// at most 4 minutes.
    pub fn new(worker_id: impl Into<String>) -> Self {
        Self {
            worker_id: worker_id.into(),
            concurrency: 16,
            lock_for: Duration::from_secs(300),
            job_timeout: Duration::from_secs(240),
            idle_poll: Duration::from_secs(1),
            housekeeping_every: Duration::from_secs(3600),
        }
    }

    fn lock_for(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.lock_for).unwrap_or(chrono::Duration::minutes(5))
    }
}

/// A running job's claim, as the renewal keeps it.
struct Held {
    claim: String,
    abort: AbortHandle,
}

/// Claims due jobs and runs them with the handler.
pub struct Runner {
    queue: Arc<dyn JobQueue>,
    handler: Arc<dyn JobHandler>,
    settings: RunnerSettings,
    wake: Arc<Notify>,
    connected: ConnectedAccounts,
}

impl Runner {
    /// A runner claiming from `queue`, running jobs with `handler`, woken by `wake` when jobs were enqueued
    /// here, and also claiming the jobs pinned to the personal accounts in `connected`.
    pub fn new(
        queue: Arc<dyn JobQueue>,
        handler: Arc<dyn JobHandler>,
        settings: RunnerSettings,
        wake: Arc<Notify>,
        connected: ConnectedAccounts,
    ) -> Self {
        Self {
            queue,
            handler,
            settings,
            wake,
            connected,
        }
    }

    /// Claims what is due (up to the concurrency limit) and runs it to the end; returns how many jobs ran. For
    /// tests and one-off commands; [`Runner::run`] is the long-running loop.
    pub async fn run_once(&self) -> crm_core::CoreResult<usize> {
        let claimed = self.claim(self.settings.concurrency).await?;
        let count = claimed.len();
        let mut running = JoinSet::new();
        for job in claimed {
            running.spawn(run_job(
                Arc::clone(&self.queue),
                Arc::clone(&self.handler),
                self.settings.job_timeout,
                job,
            ));
        }
        while running.join_next().await.is_some() {}
        Ok(count)
    }

    async fn claim(&self, limit: usize) -> crm_core::CoreResult<Vec<ClaimedJob>> {
        self.queue
            .claim(
                &self.settings.worker_id,
                u64::try_from(limit).unwrap_or(u64::MAX),
                self.settings.lock_for(),
                &self.connected.ids(),
            )
            .await
    }

    /// Runs until `shutdown` turns true, then waits for the running jobs. A database outage is logged and
    /// retried.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        // This instance restarted: what it had claimed before is not running anywhere.
        match self.queue.release_stale(&self.settings.worker_id).await {
            Ok(0) => {}
            Ok(released) => tracing::info!(
                released,
                "resuming jobs this instance was running before it stopped"
            ),
            Err(error) => {
                tracing::warn!(%error, "earlier claims of this instance not released; they lapse on their own")
            }
        }
        let mut running: JoinSet<JobId> = JoinSet::new();
        let mut held: HashMap<JobId, Held> = HashMap::new();
        let mut housekeeping = tokio::time::interval(self.settings.housekeeping_every);
        let mut renew = tokio::time::interval(self.settings.lock_for / 4);
        renew.reset();
        let mut renewed_at = Instant::now();
        loop {
            if *shutdown.borrow() {
                break;
            }
            let free = self.settings.concurrency.saturating_sub(running.len());
            let mut claimed_any = false;
            if free > 0 {
                match self.claim(free).await {
                    Ok(jobs) => {
                        claimed_any = !jobs.is_empty();
                        for job in jobs {
                            let id = job.id;
                            let claim = job.claim.clone();
                            let task = run_job(
                                Arc::clone(&self.queue),
                                Arc::clone(&self.handler),
                                self.settings.job_timeout,
                                job,
                            );
                            let abort = running.spawn(async move {
                                task.await;
                                id
                            });
                            held.insert(id, Held { claim, abort });
                        }
                    }
                    Err(error) => tracing::warn!(%error, "job runner could not claim jobs"),
                }
            }
            if claimed_any && running.len() < self.settings.concurrency {
                // More may be due right away.
                continue;
            }
            tokio::select! {
                _ = shutdown.changed() => {}
                Some(finished) = running.join_next(), if !running.is_empty() => {
                    if let Ok(id) = finished {
                        held.remove(&id);
                    }
                }
                _ = self.wake.notified(), if running.len() < self.settings.concurrency => {}
                _ = tokio::time::sleep(self.settings.idle_poll), if running.len() < self.settings.concurrency => {}
                _ = renew.tick() => {
                    self.renew_claims(&mut held, &mut renewed_at).await;
                }
                _ = housekeeping.tick() => {
                    if let Err(error) = self.queue.schedule_housekeeping().await {
                        tracing::warn!(%error, "housekeeping could not be scheduled");
                    }
                }
            }
            held.retain(|_, job| !job.abort.is_finished());
        }
        tracing::info!(
            running = running.len(),
            "job runner stopping; waiting for running jobs"
        );
        while running.join_next().await.is_some() {}
        tracing::info!("job runner stopped");
    }

    /// Renews the claims of running jobs. When renewing has failed for long enough that a claim could lapse
    /// before the next try, the jobs are cancelled, so none runs on after another instance could take it.
    async fn renew_claims(&self, held: &mut HashMap<JobId, Held>, renewed_at: &mut Instant) {
        if held.is_empty() {
            *renewed_at = Instant::now();
            return;
        }
        let claims: Vec<(JobId, String)> = held.iter().map(|(id, job)| (*id, job.claim.clone())).collect();
        match self.queue.renew(&claims, self.settings.lock_for()).await {
            Ok(_) => *renewed_at = Instant::now(),
            Err(error) => {
                tracing::warn!(%error, jobs = claims.len(), "claims of running jobs not renewed");
                // The next renewal comes a quarter of the claim later; cancel before it could be too late.
                if renewed_at.elapsed() + self.settings.lock_for / 2 >= self.settings.lock_for {
                    for (id, job) in held.drain() {
                        tracing::error!(job_id = %id, "job cancelled: its claim could lapse while it runs");
                        job.abort.abort();
                    }
                }
            }
        }
    }
}

/// One attempt of `job`, bounded by `timeout`, and the recording of its outcome.
async fn run_job(queue: Arc<dyn JobQueue>, handler: Arc<dyn JobHandler>, timeout: Duration, job: ClaimedJob) {
    let kind = job.payload.kind();
    let outcome = tokio::time::timeout(timeout, handler.run(&job))
        .await
        .unwrap_or_else(|_| {
            JobOutcome::Retry(format!("the attempt took longer than {} s", timeout.as_secs()))
        });
    // While the database is unreachable the recording is retried (the claim is still renewed meanwhile): a job
    // left `running` would hold its chat's later sends back until its claim lapsed.
    let started = Instant::now();
    let mut pause = Duration::from_millis(100);
    let recorded = loop {
        match record(queue.as_ref(), &job, &outcome).await {
            Err(error) if error.is_transient() && started.elapsed() < timeout => {
                tracing::warn!(job_id = %job.id, kind, %error, "job outcome not recorded yet; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            recorded => break recorded,
        }
    };
    match (recorded, outcome) {
        (Ok(status), JobOutcome::Done) => tracing::debug!(job_id = %job.id, kind, status, "job finished"),
        (Ok(status), failed) => {
            tracing::warn!(job_id = %job.id, kind, attempt = job.attempt, status, outcome = ?failed, "job failed")
        }
        (Err(error), _) => {
            tracing::error!(job_id = %job.id, kind, %error, "job outcome could not be recorded")
        }
    }
}

/// Records `outcome` of `job`; returns the job's new status.
async fn record(
    queue: &dyn JobQueue,
    job: &ClaimedJob,
    outcome: &JobOutcome,
) -> crm_core::CoreResult<&'static str> {
    match outcome {
        JobOutcome::Done => queue.complete(job).await.map(|_| "done"),
        JobOutcome::Retry(reason) => {
            let delay = chrono::Duration::from_std(backoff::delay_after(job.attempt)).unwrap_or_default();
            queue
                .retry_later(job, Utc::now() + delay, reason)
                .await
                .map(|status| status.as_str())
        }
        JobOutcome::RetryAt(at, reason) => queue
            .retry_later(job, *at, reason)
            .await
            .map(|status| status.as_str()),
        JobOutcome::Dead(reason) => queue.fail(job, reason).await.map(|_| "dead"),
    }
}

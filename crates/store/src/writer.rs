//! Running units of work: the store as core's [`Database`] port.
//!
//! On SQLite one writer task takes the units of work as they come and commits those waiting together in one
//! transaction (group commit), their events in one statement just before the commit; every caller is answered
//! after the commit that holds its work. A group runs without savepoints, since each statement costs a round
//! trip to SQLite's thread; when one of its units fails, the group is rolled back and run again with a savepoint
//! around each unit, so the failed one is rolled back alone. On MySQL/MariaDB and PostgreSQL each unit of work has its own
//! transaction from the pool. Either way a deadlock, a serialisation failure or a busy database makes the whole
//! transaction run again (a bounded number of times, with a short random pause), so callers never see it.

use std::sync::Arc;
use std::time::Duration;

use crm_core::ports::{BoxFuture, Database, Work};
use crm_core::{CoreError, CoreResult};
use rand::Rng;
use sea_orm::{DatabaseTransaction, TransactionTrait};
use tokio::sync::{mpsc, oneshot};

use crate::tx::{Effects, SqlTx};
use crate::{Store, StoreError};

/// Attempts of one transaction before a conflict is reported as an outage.
const ATTEMPTS: u32 = 8;
/// Most units of work one group commit takes.
const BATCH: usize = 64;
/// Units of work waiting for the writer before callers wait for room.
const QUEUE: usize = 1024;

/// A short random pause before running a conflicted transaction again, growing with the attempt.
fn conflict_pause(attempt: u32) -> Duration {
    let ceiling = 5u64.saturating_mul(1 << attempt.min(6));
    Duration::from_millis(rand::thread_rng().gen_range(1..=ceiling))
}

fn gave_up() -> CoreError {
    CoreError::unavailable("the database stayed too busy to take the change; try again shortly")
}

/// Work for the SQLite writer.
pub(crate) enum Job {
    /// A use case's unit of work.
    Work(Arc<dyn Work>, oneshot::Sender<CoreResult<()>>),
    /// Numbering pending events (the event log's sequencer).
    Sequence(
        u32,
        oneshot::Sender<CoreResult<Vec<crm_core::event::StoredEvent>>>,
    ),
}

/// The handle of SQLite's writer task.
#[derive(Clone)]
pub(crate) struct GroupWriter {
    queue: mpsc::Sender<Job>,
}

impl GroupWriter {
    /// Starts the writer of `store` (which must not have one itself).
    pub(crate) fn start(store: Store) -> Self {
        let (queue, jobs) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, jobs));
        Self { queue }
    }

    /// Hands a job to the writer.
    pub(crate) async fn submit(&self, job: Job) -> CoreResult<()> {
        self.queue
            .send(job)
            .await
            .map_err(|_| CoreError::unavailable("the database writer has stopped"))
    }
}

async fn run(store: Store, mut jobs: mpsc::Receiver<Job>) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        run_batch(&store, batch).await;
    }
}

/// The outcome of one job of a batch, kept until the batch commits.
enum Done {
    Work(CoreResult<()>, Effects),
    Sequence(CoreResult<Vec<crm_core::event::StoredEvent>>),
}

async fn run_batch(store: &Store, batch: Vec<Job>) {
    let mut attempt = 0;
    let mut isolated = false;
    let outcome = loop {
        attempt += 1;
        match try_batch(store, &batch, isolated).await {
            Ok(Some(done)) => break Ok(done),
            // A unit failed on its own: the same group again, each unit in its savepoint (no attempt spent).
            Ok(None) => {
                isolated = true;
                attempt -= 1;
            }
            Err(error) if error.is_retryable() && attempt < ATTEMPTS => {
                tokio::time::sleep(conflict_pause(attempt)).await;
            }
            Err(error) if error.is_retryable() => break Err(gave_up()),
            Err(error) => break Err(CoreError::from(error)),
        }
    };
    match outcome {
        Ok(done) => {
            let mut effects = Effects::default();
            for (job, done) in batch.into_iter().zip(done) {
                match (job, done) {
                    (Job::Work(_, reply), Done::Work(result, work_effects)) => {
                        if result.is_ok() {
                            effects.merge(work_effects);
                        }
                        let _ = reply.send(result);
                    }
                    (Job::Sequence(_, reply), Done::Sequence(result)) => {
                        let _ = reply.send(result);
                    }
                    _ => {}
                }
            }
            effects.signal(store.signals());
        }
        Err(error) => {
            for job in batch {
                match job {
                    Job::Work(_, reply) => {
                        let _ = reply.send(Err(error.clone()));
                    }
                    Job::Sequence(_, reply) => {
                        let _ = reply.send(Err(error.clone()));
                    }
                }
            }
        }
    }
}

/// Runs every job of `batch` in one transaction and commits it with the events the units wrote. Without
/// `isolated`, a unit that fails makes it roll back everything and answer `None` (run the group again
/// isolated); a group of one just rolls back. With `isolated`, each job runs in a savepoint and a failed one is
/// rolled back alone.
async fn try_batch(store: &Store, batch: &[Job], isolated: bool) -> Result<Option<Vec<Done>>, StoreError> {
    let txn = store.begin_write().await?;
    let mut done = Vec::with_capacity(batch.len());
    let mut events = Vec::new();
    for job in batch {
        let savepoint = if isolated { Some(txn.begin().await?) } else { None };
        let conn: &DatabaseTransaction = savepoint.as_ref().unwrap_or(&txn);
        let (ok, result, written) = match job {
            Job::Work(work, _) => {
                let mut tx = SqlTx::new(conn);
                let result = work.run(&mut tx).await;
                if let Some(broken) = tx.take_broken() {
                    // The transaction itself is gone (busy, deadlock, dropped connection): the whole batch
                    // runs again, or fails for everyone.
                    return Err(broken);
                }
                let written = tx.take_events();
                (result.is_ok(), Done::Work(result, tx.effects()), written)
            }
            Job::Sequence(limit, _) => match crate::event_log::sequence(conn, *limit).await {
                Ok(numbered) => (true, Done::Sequence(Ok(numbered)), Vec::new()),
                Err(error) if error.is_retryable() || matches!(error, StoreError::Unavailable(_)) => {
                    return Err(error);
                }
                Err(error) => (false, Done::Sequence(Err(error.into())), Vec::new()),
            },
        };
        match savepoint {
            Some(savepoint) if ok => savepoint.commit().await?,
            Some(savepoint) => savepoint.rollback().await?,
            None if ok => {}
            None if batch.len() == 1 => {
                // Alone and failed: nothing of it may be committed.
                txn.rollback().await?;
                return Ok(Some(vec![result]));
            }
            None => {
                txn.rollback().await?;
                return Ok(None);
            }
        }
        if ok {
            events.extend(written);
        }
        done.push(result);
    }
    crate::event_log::append(&txn, &events).await?;
    txn.commit().await?;
    Ok(Some(done))
}

/// Runs `work` alone in a transaction of the pool (MySQL/MariaDB, PostgreSQL), again after a conflict.
async fn run_alone(store: &Store, work: &Arc<dyn Work>) -> CoreResult<()> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let outcome = async {
            let txn = store.begin_write().await?;
            let mut tx = SqlTx::new(&txn);
            let result = work.run(&mut tx).await;
            if let Some(broken) = tx.take_broken() {
                return Err(broken);
            }
            let effects = tx.effects();
            let events = tx.take_events();
            match result {
                Ok(()) => {
                    crate::event_log::append(&txn, &events).await?;
                    txn.commit().await?;
                    Ok((Ok(()), effects))
                }
                Err(error) => {
                    txn.rollback().await?;
                    Ok((Err(error), Effects::default()))
                }
            }
        }
        .await;
        match outcome {
            Ok((result, effects)) => {
                effects.signal(store.signals());
                return result;
            }
            Err(error) if error.is_retryable() && attempt < ATTEMPTS => {
                tracing::debug!(attempt, "transaction conflict; running it again");
                tokio::time::sleep(conflict_pause(attempt)).await;
            }
            Err(error) if error.is_retryable() => return Err(gave_up()),
            Err(error) => return Err(error.into()),
        }
    }
}

impl Database for Store {
    fn write(&self, work: Arc<dyn Work>) -> BoxFuture<'_, CoreResult<()>> {
        Box::pin(async move {
            match self.group_writer() {
                Some(writer) => {
                    let (reply, answer) = oneshot::channel();
                    writer.submit(Job::Work(work, reply)).await?;
                    answer
                        .await
                        .map_err(|_| CoreError::unavailable("the database writer has stopped"))?
                }
                None => run_alone(self, &work).await,
            }
        })
    }
}

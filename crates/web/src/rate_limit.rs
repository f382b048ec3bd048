//! Throttling of logins, per username and per client address, over a sliding window, and the bound on how many
//! password hashes are computed at once.
//!
//! An attempt is counted when it starts, not when it has failed: [`LoginLimiter::begin`] reserves a place under
//! both limits in one step, so a burst of parallel attempts cannot all pass the check before the first failure is
//! recorded. An attempt that ends without an answer (the client went away, the database failed) counts as failed.
//!
//! Counts live in this process: with several instances behind a balancer each one throttles on its own, which
//! multiplies the allowance by the number of instances but still stops brute force.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

/// Attempts allowed per username within the window (failures and attempts in progress).
pub const USERNAME_FAILURES: usize = 5;
/// Attempts allowed per client address within the window (failures and attempts in progress).
pub const ADDRESS_FAILURES: usize = 20;
/// The sliding window.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Keys kept at most per limit; the oldest are dropped beyond it so a flood of names cannot exhaust memory.
const MAX_KEYS: usize = 100_000;
/// What a caller blocked only by attempts still in progress is told to wait.
const IN_PROGRESS_WAIT: Duration = Duration::from_secs(1);

/// Recent failures and attempts in progress of one key.
#[derive(Debug, Default)]
struct Tally {
    failures: VecDeque<Instant>,
    in_progress: usize,
}

/// Tallies per key, with a limit over a window.
#[derive(Debug)]
struct Window {
    limit: usize,
    span: Duration,
    tallies: HashMap<String, Tally>,
}

impl Window {
    fn new(limit: usize, span: Duration) -> Self {
        Self {
            limit,
            span,
            tallies: HashMap::new(),
        }
    }

    fn blocked_for(&mut self, key: &str, now: Instant) -> Option<Duration> {
        let span = self.span;
        let tally = self.tallies.get_mut(key)?;
        while tally
            .failures
            .front()
            .is_some_and(|t| now.duration_since(*t) >= span)
        {
            tally.failures.pop_front();
        }
        if tally.failures.len() + tally.in_progress < self.limit {
            return None;
        }
        if tally.failures.len() < self.limit {
            return Some(IN_PROGRESS_WAIT);
        }
        // Blocked until the oldest failure that still counts leaves the window.
        let oldest = tally.failures[tally.failures.len() - self.limit];
        Some(span.saturating_sub(now.duration_since(oldest)))
    }

    fn tally(&mut self, key: &str, now: Instant) -> &mut Tally {
        if self.tallies.len() >= MAX_KEYS && !self.tallies.contains_key(key) {
            let span = self.span;
            self.tallies.retain(|_, tally| {
                tally.in_progress > 0
                    || tally
                        .failures
                        .back()
                        .is_some_and(|t| now.duration_since(*t) < span)
            });
            if self.tallies.len() >= MAX_KEYS {
                self.tallies.retain(|_, tally| tally.in_progress > 0);
            }
        }
        self.tallies.entry(key.to_owned()).or_default()
    }

    fn start(&mut self, key: &str, now: Instant) {
        self.tally(key, now).in_progress += 1;
    }

    /// Ends an attempt in progress, as a failure or not.
    fn finish(&mut self, key: &str, failed: bool, now: Instant) {
        let limit = self.limit;
        let Some(tally) = self.tallies.get_mut(key) else {
            return;
        };
        tally.in_progress = tally.in_progress.saturating_sub(1);
        if failed {
            tally.failures.push_back(now);
            while tally.failures.len() > limit {
                tally.failures.pop_front();
            }
        }
        if tally.in_progress == 0 && tally.failures.is_empty() {
            self.tallies.remove(key);
        }
    }

    fn clear_failures(&mut self, key: &str) {
        if let Some(tally) = self.tallies.get_mut(key) {
            tally.failures.clear();
        }
    }
}

#[derive(Debug)]
struct Windows {
    by_username: Window,
    by_address: Window,
}

/// Decides whether a login attempt may proceed.
#[derive(Debug)]
pub struct LoginLimiter {
    windows: Mutex<Windows>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self::new(USERNAME_FAILURES, ADDRESS_FAILURES, WINDOW)
    }
}

/// The username as throttled: case and surrounding spaces do not make a new bucket.
fn username_key(username: &str) -> String {
    username.trim().to_lowercase()
}

impl LoginLimiter {
    /// A limiter with explicit limits.
    pub fn new(username_failures: usize, address_failures: usize, window: Duration) -> Self {
        Self {
            windows: Mutex::new(Windows {
                by_username: Window::new(username_failures, window),
                by_address: Window::new(address_failures, window),
            }),
        }
    }

    fn windows(&self) -> std::sync::MutexGuard<'_, Windows> {
        self.windows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reserves an attempt for `username` from `address`, or tells how long the caller must wait when either is
    /// at its limit. The attempt counts as failed unless [`LoginAttempt::succeeded`] is called.
    pub fn begin(self: &Arc<Self>, username: &str, address: &str) -> Result<LoginAttempt, Duration> {
        let now = Instant::now();
        let username = username_key(username);
        let mut windows = self.windows();
        let by_name = windows.by_username.blocked_for(&username, now);
        let by_address = windows.by_address.blocked_for(address, now);
        if let Some(wait) = by_name.into_iter().chain(by_address).max() {
            return Err(wait);
        }
        windows.by_username.start(&username, now);
        windows.by_address.start(address, now);
        Ok(LoginAttempt {
            limiter: Arc::clone(self),
            username,
            address: address.to_owned(),
            succeeded: false,
        })
    }
}

/// A login attempt in progress; it counts as a failure when dropped, unless it succeeded.
#[derive(Debug)]
pub struct LoginAttempt {
    limiter: Arc<LoginLimiter>,
    username: String,
    address: String,
    succeeded: bool,
}

impl LoginAttempt {
    /// The password was right: the username's failures are forgotten (the address keeps its count).
    pub fn succeeded(mut self) {
        self.succeeded = true;
    }
}

impl Drop for LoginAttempt {
    fn drop(&mut self) {
        let now = Instant::now();
        let mut windows = self.limiter.windows();
        let failed = !self.succeeded;
        windows.by_username.finish(&self.username, failed, now);
        windows.by_address.finish(&self.address, failed, now);
        if self.succeeded {
            windows.by_username.clear_failures(&self.username);
        }
    }
}

/// Bounds how many password hashes (argon2, about 19 MiB and tens of milliseconds each) run at once, so that a
/// burst of logins costs a queue, not memory. The hashes run on a few threads of their own rather than on the
/// blocking pool: each thread's allocator keeps and reuses one hash's memory, while hashes spread over the
/// pool's many threads left a freed 19 MiB block in each thread's arena (hundreds of MiB, never returned).
#[derive(Debug)]
pub struct PasswordWork {
    permits: Semaphore,
    patience: Duration,
    jobs: Mutex<std::sync::mpsc::Sender<Job>>,
}

type Job = Box<dyn FnOnce() + Send>;

/// Why password work was not done.
#[derive(Debug, thiserror::Error)]
pub enum PasswordWorkError {
    /// Every permit stayed taken for the whole patience.
    #[error("too many logins at once")]
    Busy,
    /// The work could not run to its end.
    #[error("password work failed: {0}")]
    Failed(String),
}

impl PasswordWork {
    /// At most `at_once` hashes at a time, on as many threads; a caller waits at most `patience` for its turn.
    pub fn new(at_once: usize, patience: Duration) -> Self {
        let at_once = at_once.max(1);
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..at_once {
            let queue = Arc::clone(&queue);
            let spawned = std::thread::Builder::new()
                .name(format!("password-{index}"))
                .spawn(move || {
                    loop {
                        let next = queue
                            .lock()
                            .unwrap_or_else(|poisoned| poisoned.into_inner())
                            .recv();
                        match next {
                            Ok(job) => job(),
                            // Every sender is gone: the server is shutting down.
                            Err(_) => break,
                        }
                    }
                });
            if let Err(error) = spawned {
                tracing::error!(%error, "a password thread could not be started");
            }
        }
        Self {
            permits: Semaphore::new(at_once),
            patience,
            jobs: Mutex::new(jobs),
        }
    }

    /// One permit and one thread per core.
    pub fn per_core() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get);
        Self::new(cores, Duration::from_secs(10))
    }

    /// Runs `work` on a password thread when a permit is free.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordWorkError> {
        let permit = tokio::time::timeout(self.patience, self.permits.acquire())
            .await
            .map_err(|_| PasswordWorkError::Busy)?
            .map_err(|_| PasswordWorkError::Busy)?;
        let (done, outcome) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work());
        });
        self.jobs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .send(job)
            .map_err(|_| PasswordWorkError::Failed("no password thread is running".into()))?;
        let result = outcome
            .await
            .map_err(|_| PasswordWorkError::Failed("the password check did not finish".into()));
        drop(permit);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(username: usize, address: usize, window: Duration) -> Arc<LoginLimiter> {
        Arc::new(LoginLimiter::new(username, address, window))
    }

    #[test]
    fn a_username_is_blocked_after_its_limit_and_freed_by_success() {
        let limiter = limiter(3, 100, Duration::from_secs(60));
        for _ in 0..3 {
            drop(limiter.begin("Anna", "1.1.1.1").expect("allowed"));
        }
        let wait = limiter
            .begin(" ANNA", "2.2.2.2")
            .expect_err("blocked for every address, whatever the case and spaces");
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        assert!(limiter.begin("boris", "1.1.1.1").is_ok());
    }

    #[test]
    fn attempts_in_progress_count_against_the_limit() {
        let limiter = limiter(3, 100, Duration::from_secs(60));
        let running: Vec<LoginAttempt> = (0..3)
            .map(|_| limiter.begin("anna", "1.1.1.1").expect("allowed"))
            .collect();
        let wait = limiter
            .begin("anna", "1.1.1.1")
            .expect_err("three attempts already running");
        assert_eq!(wait, IN_PROGRESS_WAIT);
        let mut running = running.into_iter();
        running.next().expect("one").succeeded();
        let after_success = limiter
            .begin("anna", "1.1.1.1")
            .expect("a place freed by the success");
        after_success.succeeded();
        drop(running);
        assert!(
            limiter.begin("anna", "1.1.1.1").is_ok(),
            "a success forgets the failures"
        );
    }

    #[test]
    fn an_address_is_blocked_across_usernames() {
        let limiter = limiter(100, 2, Duration::from_secs(60));
        drop(limiter.begin("a", "9.9.9.9"));
        drop(limiter.begin("b", "9.9.9.9"));
        assert!(limiter.begin("c", "9.9.9.9").is_err());
        assert!(limiter.begin("c", "8.8.8.8").is_ok());
    }

    #[test]
    fn failures_leave_the_window() {
        let limiter = limiter(1, 1, Duration::from_millis(0));
        drop(limiter.begin("a", "x"));
        assert!(limiter.begin("a", "x").is_ok());
    }

    #[tokio::test]
    async fn password_work_runs_no_more_than_its_permits_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let work = Arc::new(PasswordWork::new(2, Duration::from_secs(30)));
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (work, running, most) = (Arc::clone(&work), Arc::clone(&running), Arc::clone(&most));
                tokio::spawn(async move {
                    work.run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        running.fetch_sub(1, Ordering::SeqCst);
                    })
                    .await
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("joined").expect("done");
        }
        let most = most.load(Ordering::SeqCst);
        assert!((1..=2).contains(&most), "{most} ran at once");
    }

    #[tokio::test]
    async fn a_caller_that_waits_too_long_is_told_busy() {
        let work = Arc::new(PasswordWork::new(1, Duration::from_millis(50)));
        let (release, released) = std::sync::mpsc::channel::<()>();
        let holder = {
            let work = Arc::clone(&work);
            tokio::spawn(async move { work.run(move || released.recv()).await })
        };
        while work.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        assert!(matches!(work.run(|| ()).await, Err(PasswordWorkError::Busy)));
        release.send(()).expect("the holder waits");
        assert!(holder.await.expect("joined").is_ok());
    }
}

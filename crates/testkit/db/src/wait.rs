//! Waiting for state that background work reaches (job runner, pollers, supervisors), where there is nothing
//! to await directly: poll a condition until it holds, and fail the test, naming what was awaited, when it
//! does not hold in time.

use std::future::Future;
use std::time::Duration;

/// How long [`eventually`] waits.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// How often a condition is checked again.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// Polls `check` every 50 ms until it gives `Some`, and returns that; fails the test after 30 s, naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    eventually_within(PATIENCE, what, check).await
}

/// Like [`eventually`], failing after `patience` instead of 30 s (for work known to take longer, or a bound
/// that is itself what the test asserts).
pub async fn eventually_within<T, F, Fut>(patience: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {patience:?} waiting for {what}"
        );
        tokio::time::sleep(POLL_EVERY).await;
    }
}

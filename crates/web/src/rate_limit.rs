//! Throttling of failed logins, per username and per client address, over a sliding window.
//!
//! Counts live in this process: with several instances behind a balancer each one throttles on its own, which
//! multiplies the allowance by the number of instances but still stops brute force.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures allowed per username within the window.
pub const USERNAME_FAILURES: usize = 5;
/// Failures allowed per client address within the window.
pub const ADDRESS_FAILURES: usize = 20;
/// The sliding window.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Keys kept at most; the oldest are dropped beyond it so a flood of names cannot exhaust memory.
const MAX_KEYS: usize = 100_000;

/// Failure timestamps per key, with a limit over a window.
#[derive(Debug)]
struct Window {
    limit: usize,
    span: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl Window {
    fn new(limit: usize, span: Duration) -> Self {
        Self {
            limit,
            span,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn blocked_for(&self, key: &str, now: Instant) -> Option<Duration> {
        let failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let times = failures.get(key)?;
        let recent: Vec<&Instant> = times
            .iter()
            .filter(|t| now.duration_since(**t) < self.span)
            .collect();
        if recent.len() < self.limit {
            return None;
        }
        // Blocked until the oldest failure that still counts leaves the window.
        let oldest = recent[recent.len() - self.limit];
        Some(self.span.saturating_sub(now.duration_since(*oldest)))
    }

    fn record(&self, key: &str, now: Instant) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if failures.len() >= MAX_KEYS && !failures.contains_key(key) {
            failures.retain(|_, times| times.back().is_some_and(|t| now.duration_since(*t) < self.span));
            if failures.len() >= MAX_KEYS {
                failures.clear();
            }
        }
        let times = failures.entry(key.to_owned()).or_default();
        times.push_back(now);
        while times.front().is_some_and(|t| now.duration_since(*t) >= self.span) || times.len() > self.limit {
            times.pop_front();
        }
    }

    fn clear(&self, key: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(key);
    }
}

/// Decides whether a login attempt may proceed.
#[derive(Debug)]
pub struct LoginLimiter {
    by_username: Window,
    by_address: Window,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self::new(USERNAME_FAILURES, ADDRESS_FAILURES, WINDOW)
    }
}

impl LoginLimiter {
    /// A limiter with explicit limits.
    pub fn new(username_failures: usize, address_failures: usize, window: Duration) -> Self {
        Self {
            by_username: Window::new(username_failures, window),
            by_address: Window::new(address_failures, window),
        }
    }

    /// How long the caller must wait, if either the username or the address is over its limit.
    pub fn check(&self, username: &str, address: &str) -> Option<Duration> {
        let now = Instant::now();
        let by_name = self.by_username.blocked_for(&username.to_lowercase(), now);
        let by_address = self.by_address.blocked_for(address, now);
        by_name.into_iter().chain(by_address).max()
    }

    /// Counts a failed attempt.
    pub fn record_failure(&self, username: &str, address: &str) {
        let now = Instant::now();
        self.by_username.record(&username.to_lowercase(), now);
        self.by_address.record(address, now);
    }

    /// Forgets the username's failures after a successful login (the address keeps its count).
    pub fn record_success(&self, username: &str) {
        self.by_username.clear(&username.to_lowercase());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_username_is_blocked_after_its_limit_and_freed_by_success() {
        let limiter = LoginLimiter::new(3, 100, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(limiter.check("Anna", "1.1.1.1").is_none());
            limiter.record_failure("anna", "1.1.1.1");
        }
        let wait = limiter
            .check("ANNA", "2.2.2.2")
            .expect("blocked for every address");
        assert!(wait > Duration::from_secs(50) && wait <= Duration::from_secs(60));
        assert!(limiter.check("boris", "1.1.1.1").is_none());
        limiter.record_success("anna");
        assert!(limiter.check("anna", "1.1.1.1").is_none());
    }

    #[test]
    fn an_address_is_blocked_across_usernames() {
        let limiter = LoginLimiter::new(100, 2, Duration::from_secs(60));
        limiter.record_failure("a", "9.9.9.9");
        limiter.record_failure("b", "9.9.9.9");
        assert!(limiter.check("c", "9.9.9.9").is_some());
        assert!(limiter.check("c", "8.8.8.8").is_none());
    }

    #[test]
    fn failures_leave_the_window() {
        let limiter = LoginLimiter::new(1, 1, Duration::from_millis(0));
        limiter.record_failure("a", "x");
        assert!(limiter.check("a", "x").is_none());
    }
}

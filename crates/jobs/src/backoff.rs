//! Retry delays: exponential with full jitter, capped.

use std::time::Duration;

use rand::Rng;

/// First retry delay.
pub const BASE: Duration = Duration::from_secs(2);
/// Longest delay between two attempts.
pub const CAP: Duration = Duration::from_secs(15 * 60);

/// The delay before attempt `attempt + 1`, given `attempt` attempts made (1-based): a random value between half
/// and all of `BASE * 2^(attempt-1)`, capped at `CAP`, so retries of many jobs spread out.
pub fn delay_after(attempt: i32) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1)).unwrap_or(0).min(20);
    let ceiling = BASE.saturating_mul(2u32.saturating_pow(exponent)).min(CAP);
    let half = ceiling / 2;
    let jitter = rand::thread_rng().gen_range(0..=half.as_millis().try_into().unwrap_or(u64::MAX));
    half + Duration::from_millis(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_cap_and_stay_within_jitter_bounds() {
        for attempt in 1..40 {
            let exponent = u32::try_from(attempt - 1).unwrap().min(20);
            let ceiling = BASE.saturating_mul(2u32.saturating_pow(exponent)).min(CAP);
            let delay = delay_after(attempt);
            assert!(
                delay >= ceiling / 2 && delay <= ceiling,
                "attempt {attempt}: {delay:?} vs {ceiling:?}"
            );
        }
        assert!(delay_after(30) <= CAP);
        assert!(delay_after(1) <= BASE);
    }
}

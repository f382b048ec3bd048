//! Counters of what intake received but did not store (ignored update kinds), since this instance started.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

/// Updates ignored, by kind.
#[derive(Debug, Default)]
pub struct IntakeCounters {
    ignored: Mutex<BTreeMap<String, u64>>,
}

impl IntakeCounters {
    /// Counts one ignored update of `kind`. Kinds are bounded in length and number, so a flood of odd keys
    /// stays small.
    pub fn count_ignored(&self, kind: &str) {
        let kind: String = kind.chars().take(64).collect();
        let mut ignored = self.ignored.lock().unwrap_or_else(PoisonError::into_inner);
        if ignored.len() < 256 || ignored.contains_key(&kind) {
            *ignored.entry(kind).or_default() += 1;
        } else {
            *ignored.entry("other".to_owned()).or_default() += 1;
        }
    }

    /// A copy of the ignored counts.
    pub fn ignored(&self) -> BTreeMap<String, u64> {
        self.ignored
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_counted_and_bounded() {
        let counters = IntakeCounters::default();
        counters.count_ignored("callback_query");
        counters.count_ignored("callback_query");
        for i in 0..300 {
            counters.count_ignored(&format!("odd_{i}"));
        }
        let ignored = counters.ignored();
        assert_eq!(ignored["callback_query"], 2);
        assert_eq!(ignored.len(), 257, "256 kinds and `other`");
        assert_eq!(ignored["other"], 45);
    }
}

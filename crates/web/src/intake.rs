//! Counters of what the bot webhook received, per update kind, since this instance started.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Updates accepted and ignored, by kind.
#[derive(Debug, Default)]
pub struct IntakeCounters {
    ignored: Mutex<BTreeMap<String, u64>>,
}

impl IntakeCounters {
    /// Counts one ignored update of `kind`. Kinds are bounded in length so a flood of odd keys stays small.
    pub fn count_ignored(&self, kind: &str) {
        let kind: String = kind.chars().take(64).collect();
        let mut ignored = self
            .ignored
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
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
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

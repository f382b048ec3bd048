//! The personal accounts this instance is connected to right now, shared by the supervisor (which adds and
//! removes them), the job runner (which claims the jobs pinned to them) and the handlers that use them.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crm_core::personal::Connection;

/// Live connections by account id; cheap to clone.
#[derive(Clone, Default)]
pub struct ConnectedAccounts {
    inner: Arc<RwLock<HashMap<i64, Arc<dyn Connection>>>>,
}

impl ConnectedAccounts {
    /// The live connection of `account_id` on this instance.
    pub fn get(&self, account_id: i64) -> Option<Arc<dyn Connection>> {
        self.inner
            .read()
            .ok()
            .and_then(|map| map.get(&account_id).cloned())
    }

    /// Ids of the accounts connected here.
    pub fn ids(&self) -> Vec<i64> {
        self.inner
            .read()
            .map(|map| map.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Records the live connection of `account_id`.
    pub fn insert(&self, account_id: i64, connection: Arc<dyn Connection>) {
        if let Ok(mut map) = self.inner.write() {
            map.insert(account_id, connection);
        }
    }

    /// Forgets `account_id` (its connection ended).
    pub fn remove(&self, account_id: i64) {
        if let Ok(mut map) = self.inner.write() {
            map.remove(&account_id);
        }
    }
}

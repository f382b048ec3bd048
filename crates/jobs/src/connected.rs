//! The personal accounts this instance is connected to right now, shared by the supervisor (which adds and
//! removes them), the job runner (which claims the jobs pinned to them) and the personal channel (which sends
//! through them).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use crm_core::ids::AccountId;
use crm_core::personal::Connection;

/// Live connections by account id; cheap to clone.
#[derive(Clone, Default)]
pub struct ConnectedAccounts {
    inner: Arc<RwLock<HashMap<AccountId, Arc<dyn Connection>>>>,
}

impl ConnectedAccounts {
    /// The live connection of `account_id` on this instance.
    pub fn get(&self, account_id: AccountId) -> Option<Arc<dyn Connection>> {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&account_id)
            .cloned()
    }

    /// Ids of the accounts connected here.
    pub fn ids(&self) -> Vec<AccountId> {
        self.inner
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .copied()
            .collect()
    }

    /// Records the live connection of `account_id`.
    pub fn insert(&self, account_id: AccountId, connection: Arc<dyn Connection>) {
        self.inner
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(account_id, connection);
    }

    /// Forgets `account_id` (its connection ended).
    pub fn remove(&self, account_id: AccountId) {
        self.inner
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&account_id);
    }
}

//! The bot accounts the webhook checks each update against (the account and its webhook secret), kept in
//! memory: otherwise every update costs a read and the unsealing of the account's secrets. Every change of an
//! account writes its `account_status` event, and the relay delivers it on every instance; an entry is dropped
//! when its account's event arrives, and after [`KEEP_FOR`] at the latest.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crm_core::account::Account;
use crm_core::event::StoredEvent;
use crm_core::ids::AccountId;
use crm_core::secrets::Sensitive;
use crm_store::repo::accounts as account_repo;
use crm_store::{Store, StoreResult};
use tokio::sync::broadcast;
use tokio::sync::broadcast::error::RecvError;

/// Longest an entry is trusted without hearing of its account.
pub const KEEP_FOR: Duration = Duration::from_secs(60);

/// A bot account and its webhook secret, as read at `read_at`.
#[derive(Clone)]
struct Entry {
    account: Account,
    secret: Option<Sensitive>,
    read_at: Instant,
}

/// Bot accounts by id, for the webhook.
#[derive(Default)]
pub struct WebhookAccounts {
    entries: Mutex<HashMap<AccountId, Entry>>,
    /// Raised by every account event: a read that started before one is not kept, as it may predate it.
    generation: AtomicU64,
}

impl WebhookAccounts {
    fn entries(&self) -> MutexGuard<'_, HashMap<AccountId, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Account `id` (not a removed one) and its webhook secret.
    pub async fn get(
        &self,
        store: &Store,
        id: AccountId,
    ) -> StoreResult<Option<(Account, Option<Sensitive>)>> {
        if let Some(entry) = self
            .entries()
            .get(&id)
            .filter(|entry| entry.read_at.elapsed() < KEEP_FOR)
        {
            return Ok(Some((entry.account.clone(), entry.secret.clone())));
        }
        let generation = self.generation.load(Ordering::Acquire);
        let Some((account, secrets)) = account_repo::find_with_secrets(store, id).await? else {
            return Ok(None);
        };
        let entry = Entry {
            account,
            secret: secrets.webhook_secret,
            read_at: Instant::now(),
        };
        let mut entries = self.entries();
        if self.generation.load(Ordering::Acquire) == generation {
            entries.insert(id, entry.clone());
        }
        Ok(Some((entry.account, entry.secret)))
    }

    fn forget(&self, id: Option<AccountId>) {
        let mut entries = self.entries();
        self.generation.fetch_add(1, Ordering::AcqRel);
        match id {
            Some(id) => {
                entries.remove(&id);
            }
            None => entries.clear(),
        }
    }

    /// Drops entries as their accounts' events arrive on `feed` (the relay's), until the relay stops.
    pub async fn follow(self: Arc<Self>, mut feed: broadcast::Receiver<Arc<StoredEvent>>) {
        loop {
            match feed.recv().await {
                Ok(event) if event.kind == "account_status" => {
                    let id = event.payload["account"]["id"].as_i64().map(AccountId);
                    self.forget(id);
                }
                Ok(_) => {}
                // Events went by unseen: any entry may be stale.
                Err(RecvError::Lagged(_)) => self.forget(None),
                Err(RecvError::Closed) => return,
            }
        }
    }
}

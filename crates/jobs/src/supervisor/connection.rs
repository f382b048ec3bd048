//! Keeping one personal account connected: connect (bounded in time), import recent history once, pump updates
//! into the inbox and checkpoint each after it is stored, renew the lease, watch for a silent connection, and
//! reconnect with backoff (flood waits honoured) or give the account up to `error` when it needs a person.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_core::account::{Account, AccountStatus};
use crm_core::event::AccountAction;
use crm_core::ids::AccountId;
use crm_core::inbox::{Arrival, Outcome};
use crm_core::personal::{CollectScope, Connection, ReceivedUpdate, UserError, connection_lease};
use crm_core::ports::Lease;
use tokio::sync::{mpsc, watch};

use super::AccountSupervisor;
use crate::backoff;

/// Why a connection ended.
enum Ended {
    /// The instance is shutting down.
    Shutdown,
    /// Stopped, disabled, removed, or the lease is gone: do not reconnect.
    Done,
    /// An admin asked for a restart.
    Restart,
    /// The connection broke or stalled: reconnect.
    Broken(UserError),
}

impl AccountSupervisor {
    /// The account if it should still be connected.
    async fn wanted(&self, account_id: AccountId) -> Option<Account> {
        let account = self.parts.accounts.find(account_id).await.ok().flatten()?;
        account.stays_connected().then_some(account)
    }

    async fn status(&self, account_id: AccountId, status: AccountStatus) {
        if let Err(error) = self.parts.accounts.set_status(account_id, status).await {
            tracing::warn!(%error, "account status not saved");
        }
    }

    async fn fail(&self, account_id: AccountId, error: &UserError, retry_in: Option<Duration>) {
        let retry_at =
            retry_in.map(|wait| chrono::Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default());
        if let Err(store_error) = self
            .parts
            .accounts
            .record_failure(account_id, error.code(), &error.to_string(), retry_at)
            .await
        {
            tracing::warn!(error = %store_error, "account failure not saved");
        }
    }

    #[tracing::instrument(name = "personal_account", skip(self, lease, commands, shutdown))]
    pub(super) async fn keep_connected(
        self: Arc<Self>,
        account_id: AccountId,
        lease: Lease,
        mut commands: mpsc::UnboundedReceiver<AccountAction>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let name = connection_lease(account_id);
        let mut failures = 0;
        loop {
            let Some(account) = self.wanted(account_id).await else {
                break;
            };
            let Ok(Some(handle)) = self.parts.accounts.handle(&account).await else {
                self.fail(account_id, &UserError::SessionRevoked, None).await;
                break;
            };
            if failures > 0 {
                self.status(account_id, AccountStatus::Reconnecting).await;
            }
            let connecting = tokio::time::timeout(
                self.settings.call_timeout,
                self.parts.gateway.connect(&handle, CollectScope::of(&account)),
            );
            let connected = tokio::select! {
                _ = shutdown.changed() => break,
                connected = connecting => connected.unwrap_or_else(|_| Err(UserError::Network("connecting timed out".into()))),
            };
            let ended = match connected {
                Ok((connection, profile)) => {
                    failures = 0;
                    if self.wanted(account_id).await.is_none() {
                        // Stopped or removed while connecting.
                        connection.close().await;
                        break;
                    }
                    if let Err(error) = self.parts.accounts.connected(account_id, &profile).await {
                        tracing::warn!(%error, "profile not saved");
                    }
                    self.parts.connected.insert(account_id, Arc::clone(&connection));
                    tracing::info!("personal account connected");
                    if account.history_imported_at.is_none() {
                        self.import_history(connection.as_ref(), &account).await;
                    }
                    let ended = self
                        .pump(&account, lease, &connection, &mut commands, &mut shutdown)
                        .await;
                    self.parts.connected.remove(account_id);
                    // Closed before any reconnect, so one session is never connected twice.
                    connection.close().await;
                    ended
                }
                Err(error) => Ended::Broken(error),
            };
            match ended {
                Ended::Shutdown | Ended::Done => break,
                Ended::Restart => continue,
                Ended::Broken(error) if !error.is_retryable() => {
                    tracing::warn!(%error, "personal account needs attention");
                    self.fail(account_id, &error, None).await;
                    break;
                }
                Ended::Broken(error) => {
                    failures += 1;
                    let wait = match &error {
                        UserError::FloodWait(wait) => *wait,
                        _ => backoff::delay_after(failures),
                    };
                    tracing::warn!(%error, failures, ?wait, "personal account connection lost");
                    if failures > self.settings.quick_reconnects || wait > self.settings.lease_ttl {
                        // A long wait: give the lease up and let whichever instance is free retry later.
                        self.fail(account_id, &error, Some(wait)).await;
                        break;
                    }
                    self.status(account_id, AccountStatus::Reconnecting).await;
                    tokio::select! {
                        _ = shutdown.changed() => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    let renewed = self
                        .parts
                        .leases
                        .renew(&name, &self.settings.instance, lease, self.settings.lease_ttl())
                        .await;
                    if !matches!(renewed, Ok(true)) {
                        return;
                    }
                }
            }
        }
        if !*shutdown.borrow() {
            self.settle_status(account_id).await;
        }
        let _ = self
            .parts
            .leases
            .release(&name, &self.settings.instance, lease)
            .await;
        tracing::info!("personal account disconnected");
    }

    /// After a connection ended for good: an account an admin stopped shows `stopped`, whatever a reconnect in
    /// flight wrote meanwhile.
    async fn settle_status(&self, account_id: AccountId) {
        let Ok(Some(account)) = self.parts.accounts.find(account_id).await else {
            return;
        };
        if !account.enabled && account.status.is_live() {
            self.status(account_id, AccountStatus::Stopped).await;
        }
    }

    /// Receives and stores updates until the connection ends, renewing the lease and watching for stalls.
    async fn pump(
        &self,
        account: &Account,
        lease: Lease,
        connection: &Arc<dyn Connection>,
        commands: &mut mpsc::UnboundedReceiver<AccountAction>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Ended {
        let name = connection_lease(account.id);
        // Reading updates runs in its own task so that a tick of the lease timer never cancels a read halfway.
        let (updates_tx, mut updates) = mpsc::channel(64);
        let reader_connection = Arc::clone(connection);
        let reader = tokio::spawn(async move {
            loop {
                let update = reader_connection.next_update().await;
                let failed = update.is_err();
                if updates_tx.send(update).await.is_err() || failed {
                    break;
                }
            }
        });
        let mut renew = tokio::time::interval(self.settings.renew_every);
        let mut last_renewed = Instant::now();
        let mut last_heard = Instant::now();
        let mut current = account.clone();
        let ended = loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => break Ended::Shutdown,
                command = commands.recv() => match command {
                    Some(AccountAction::Stop) | None => break Ended::Done,
                    Some(AccountAction::Restart) => break Ended::Restart,
                    Some(AccountAction::Sync) => {
                        // A round trip makes the gateway notice a gap and fetch the difference.
                        if let Err(error) = self.ping(connection).await {
                            break Ended::Broken(error);
                        }
                    }
                    Some(AccountAction::Start) => {}
                },
                _ = renew.tick() => {
                    match self.parts.leases.renew(&name, &self.settings.instance, lease, self.settings.lease_ttl()).await {
                        Ok(true) => last_renewed = Instant::now(),
                        Ok(false) => {
                            tracing::warn!("lost the personal account lease; disconnecting");
                            break Ended::Done;
                        }
                        Err(error) => {
                            tracing::warn!(%error, "lease not renewed");
                            // Disconnect while the lease is surely still ours, before another instance may take it.
                            if last_renewed.elapsed() + self.settings.renew_every * 2 >= self.settings.lease_ttl {
                                break Ended::Done;
                            }
                        }
                    }
                    match self.wanted(account.id).await {
                        Some(fresh) => current = fresh,
                        None => break Ended::Done,
                    }
                    if last_heard.elapsed() >= self.settings.watchdog_idle {
                        match self.ping(connection).await {
                            Ok(()) => last_heard = Instant::now(),
                            Err(error) => break Ended::Broken(error),
                        }
                    }
                }
                update = updates.recv() => match update {
                    Some(Ok(update)) => {
                        last_heard = Instant::now();
                        if let Err(error) = self.store_update(&current, connection.as_ref(), update).await {
                            break Ended::Broken(error);
                        }
                    }
                    Some(Err(error)) => break Ended::Broken(error),
                    None => break Ended::Broken(UserError::Network("the update stream ended".into())),
                },
            }
        };
        reader.abort();
        // The reader holds the connection; wait until it let go before the caller closes it.
        let _ = reader.await;
        ended
    }

    async fn ping(&self, connection: &Arc<dyn Connection>) -> Result<(), UserError> {
        let patience = self.settings.call_timeout.min(self.settings.watchdog_idle);
        tokio::time::timeout(patience, connection.ping())
            .await
            .unwrap_or_else(|_| {
                Err(UserError::Network(
                    "the connection stalled (no answer to a ping)".into(),
                ))
            })
    }

    /// Stores one update through the inbox, then checkpoints it. A storage failure ends the connection without
    /// checkpointing, so the update is fetched again after the reconnect.
    async fn store_update(
        &self,
        account: &Account,
        connection: &dyn Connection,
        received: ReceivedUpdate,
    ) -> Result<(), UserError> {
        let arrival = Arrival {
            account: account.clone(),
            event: received.event,
            raw_update: None,
        };
        self.parts
            .inbox
            .receive(arrival)
            .await
            .map_err(|error| UserError::Other(format!("could not store an update: {error}")))?;
        if let Some(checkpoint) = received.checkpoint {
            connection.checkpoint(checkpoint).await?;
        }
        Ok(())
    }

    /// Imports recent history once; messages already stored are skipped by the inbox.
    async fn import_history(&self, connection: &dyn Connection, account: &Account) {
        let history = match connection
            .history(self.settings.history, CollectScope::of(account))
            .await
        {
            Ok(history) => history,
            Err(error) => {
                tracing::warn!(%error, "history not imported; will try on the next connection");
                return;
            }
        };
        let total = history.len();
        tracing::info!(messages = total, "importing recent history");
        let mut stored = 0;
        for event in history {
            let arrival = Arrival {
                account: account.clone(),
                event,
                raw_update: None,
            };
            match self.parts.inbox.receive(arrival).await {
                Ok(intake) if intake.outcome == Outcome::Stored => stored += 1,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "history import interrupted; will resume on the next connection");
                    return;
                }
            }
        }
        if let Err(error) = self.parts.accounts.history_imported(account.id).await {
            tracing::warn!(%error, "history import not recorded");
        }
        tracing::info!(stored, total, "history imported");
    }
}

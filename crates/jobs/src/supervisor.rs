//! The personal-account supervisor: every enabled personal account is connected by exactly one instance, the
//! holder of the lease `personal:<id>` (its fencing token changes with every holder). The holder renews the lease
//! while connected and disconnects before it can expire if renewing fails, so two instances never use one session
//! at once; another instance takes an orphaned account over once the lease lapses.
//!
//! Each update is stored before its checkpoint is handed back to the gateway, so a crash or a reconnect resumes
//! from the last stored update and Telegram's difference fills the gap. A watchdog pings a connection that has
//! been silent for a while and rebuilds it if the ping fails.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_core::account::AccountStatus;
use crm_core::event::{AccountAction, ChangeFeed, Event, EventBus};
use crm_core::personal::{Connection, HistoryLimits, PersonalUpdate, ReceivedUpdate, UserError, UserGateway};
use crm_store::Store;
use crm_store::entity::accounts;
use crm_store::repo::inbox::{self, MediaPolicy, Outcome};
use crm_store::repo::leases::{self, Held};
use crm_store::repo::personal;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;

use crate::backoff;
use crate::connected::ConnectedAccounts;

/// Tunables of the supervisor.
#[derive(Debug, Clone)]
pub struct SupervisorSettings {
    /// This instance, as lease holder.
    pub instance: String,
    /// How often to look for accounts to connect.
    pub scan_every: Duration,
    /// How long a lease lasts unless renewed.
    pub lease_ttl: Duration,
    /// How often the lease is renewed (and the account's wanted state re-read).
    pub renew_every: Duration,
    /// A connection silent for this long is pinged; a failed ping rebuilds it.
    pub watchdog_idle: Duration,
    /// How long a ping or a connect may take.
    pub call_timeout: Duration,
    /// Quick reconnects before the account is put in `error` with a later retry.
    pub quick_reconnects: i32,
    /// Recent history imported on an account's first connection.
    pub history: HistoryLimits,
    /// Media larger than this are not downloaded automatically.
    pub max_download_bytes: i64,
}

impl SupervisorSettings {
    /// Defaults for `instance`: a 20 s lease renewed every 5 s (an orphaned account moves within 25 s), a
    /// watchdog after 60 s of silence, 100 dialogs × 50 messages of history, 50 MB media.
    pub fn new(instance: impl Into<String>) -> Self {
        Self {
            instance: instance.into(),
            scan_every: Duration::from_secs(5),
            lease_ttl: Duration::from_secs(20),
            renew_every: Duration::from_secs(5),
            watchdog_idle: Duration::from_secs(60),
            call_timeout: Duration::from_secs(30),
            quick_reconnects: 5,
            history: HistoryLimits {
                dialogs: 100,
                messages_per_dialog: 50,
            },
            max_download_bytes: 50 * 1024 * 1024,
        }
    }
}

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

/// Connects and supervises this instance's share of the personal accounts.
pub struct AccountSupervisor {
    store: Store,
    gateway: Arc<dyn UserGateway>,
    bus: Arc<dyn EventBus>,
    feed: Arc<dyn ChangeFeed>,
    job_waker: Arc<Notify>,
    connected: ConnectedAccounts,
    settings: SupervisorSettings,
}

struct Running {
    task: JoinHandle<()>,
    control: mpsc::UnboundedSender<AccountAction>,
}

impl AccountSupervisor {
    /// A supervisor connecting through `gateway`, storing into `store`, listening for admin commands on `bus`,
    /// reporting changes to `feed`, waking the job runner for queued downloads, and sharing its live
    /// connections through `connected`.
    pub fn new(
        store: Store,
        gateway: Arc<dyn UserGateway>,
        bus: Arc<dyn EventBus>,
        feed: Arc<dyn ChangeFeed>,
        job_waker: Arc<Notify>,
        connected: ConnectedAccounts,
        settings: SupervisorSettings,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            gateway,
            bus,
            feed,
            job_waker,
            connected,
            settings,
        })
    }

    /// Connects the accounts whose lease this instance obtains, until `shutdown`; then disconnects them and
    /// releases their leases so another instance can take over at once.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut commands = self.bus.subscribe();
        let mut running: HashMap<i64, Running> = HashMap::new();
        let mut rescan = tokio::time::interval(self.settings.scan_every);
        rescan.reset();
        'scan: loop {
            running.retain(|_, account| !account.task.is_finished());
            self.connect_idle(&mut running, &shutdown).await;
            // Wait for the next scan, handing admin commands to the accounts meanwhile; other events on the bus
            // (there are many) do not cause a scan.
            loop {
                tokio::select! {
                    _ = shutdown.changed() => break 'scan,
                    _ = rescan.tick() => continue 'scan,
                    command = commands.recv() => match command {
                        Ok(Event::AccountControl { account_id, action }) => {
                            for (id, account) in &running {
                                if account_id.is_none_or(|wanted| wanted == *id) {
                                    let _ = account.control.send(action);
                                }
                            }
                            if matches!(action, AccountAction::Start | AccountAction::Restart) {
                                continue 'scan;
                            }
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                            commands = self.bus.subscribe();
                        }
                    },
                }
            }
        }
        for (_, account) in running {
            let _ = account.task.await;
        }
        tracing::info!("account supervisor stopped");
    }

    async fn connect_idle(
        self: &Arc<Self>,
        running: &mut HashMap<i64, Running>,
        shutdown: &watch::Receiver<bool>,
    ) {
        let wanted = match personal::accounts_to_connect(&self.store).await {
            Ok(wanted) => wanted,
            Err(error) => {
                tracing::warn!(%error, "cannot list personal accounts to connect");
                return;
            }
        };
        for account in wanted {
            if running.contains_key(&account.id) {
                continue;
            }
            let ttl = chrono::Duration::from_std(self.settings.lease_ttl).unwrap_or_default();
            match leases::acquire(
                &self.store,
                &personal::connection_lease(account.id),
                &self.settings.instance,
                ttl,
            )
            .await
            {
                Ok(Some(held)) => {
                    tracing::info!(account_id = account.id, "connecting this personal account");
                    let (control, commands) = mpsc::unbounded_channel();
                    let supervisor = Arc::clone(self);
                    let task =
                        tokio::spawn(supervisor.keep_connected(account.id, held, commands, shutdown.clone()));
                    running.insert(account.id, Running { task, control });
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(account_id = account.id, %error, "personal account lease unavailable")
                }
            }
        }
    }

    /// The account if it should still be connected.
    async fn wanted(&self, account_id: i64) -> Option<accounts::Model> {
        let account = crm_store::repo::accounts::find(&self.store, account_id)
            .await
            .ok()
            .flatten()?;
        personal::stays_connected(&account).then_some(account)
    }

    async fn status(&self, account_id: i64, status: AccountStatus) {
        if let Err(error) = personal::set_status(&self.store, account_id, status).await {
            tracing::warn!(account_id, %error, "account status not saved");
        }
        self.feed.account_changed(account_id);
    }

    async fn fail(&self, account_id: i64, error: &UserError, retry_in: Option<Duration>) {
        let retry_at =
            retry_in.map(|wait| chrono::Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default());
        if let Err(store_error) = personal::record_failure(
            &self.store,
            account_id,
            error.code(),
            &error.to_string(),
            retry_at,
        )
        .await
        {
            tracing::warn!(account_id, error = %store_error, "account failure not saved");
        }
        self.feed.account_changed(account_id);
    }

    async fn keep_connected(
        self: Arc<Self>,
        account_id: i64,
        held: Held,
        mut commands: mpsc::UnboundedReceiver<AccountAction>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let name = personal::connection_lease(account_id);
        let mut failures = 0;
        loop {
            let Some(account) = self.wanted(account_id).await else {
                break;
            };
            let Ok(Some(handle)) = personal::handle(&self.store, &account) else {
                self.fail(account_id, &UserError::SessionRevoked, None).await;
                break;
            };
            if failures > 0 {
                self.status(account_id, AccountStatus::Reconnecting).await;
            }
            let connecting = tokio::time::timeout(
                self.settings.call_timeout,
                self.gateway.connect(&handle, personal::scope(&account)),
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
                    if let Err(error) = personal::complete_connect(&self.store, account_id, &profile).await {
                        tracing::warn!(account_id, %error, "profile not saved");
                    }
                    self.feed.account_changed(account_id);
                    self.connected.insert(account_id, Arc::clone(&connection));
                    tracing::info!(account_id, "personal account connected");
                    if account.history_imported_at.is_none() {
                        self.import_history(account_id, connection.as_ref(), &account)
                            .await;
                    }
                    let ended = self
                        .pump(account_id, held, &connection, &mut commands, &mut shutdown)
                        .await;
                    self.connected.remove(account_id);
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
                    tracing::warn!(account_id, %error, "personal account needs attention");
                    self.fail(account_id, &error, None).await;
                    break;
                }
                Ended::Broken(error) => {
                    failures += 1;
                    let wait = match &error {
                        UserError::FloodWait(wait) => *wait,
                        _ => backoff::delay_after(failures),
                    };
                    tracing::warn!(account_id, %error, failures, ?wait, "personal account connection lost");
                    if failures > self.settings.quick_reconnects || wait > self.settings.lease_ttl {
                        // A long wait: give the lease up and let whichever instance is free retry later.
                        self.fail(account_id, &error, Some(wait)).await;
                        break;
                    }
                    self.status(account_id, AccountStatus::Reconnecting).await;
                    let ttl = chrono::Duration::from_std(self.settings.lease_ttl).unwrap_or_default();
                    tokio::select! {
                        _ = shutdown.changed() => break,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    if !matches!(
                        leases::renew(&self.store, &name, &self.settings.instance, held, ttl).await,
                        Ok(true)
                    ) {
                        return;
                    }
                }
            }
        }
        if !*shutdown.borrow() {
            self.settle_status(account_id).await;
        }
        let _ = leases::release(&self.store, &name, &self.settings.instance, held).await;
        tracing::info!(account_id, "personal account disconnected");
    }

    /// After a connection ended for good: an account an admin stopped shows `stopped`, whatever a reconnect in
    /// flight wrote meanwhile.
    async fn settle_status(&self, account_id: i64) {
        let Ok(Some(account)) = crm_store::repo::accounts::find(&self.store, account_id).await else {
            return;
        };
        let live = [
            AccountStatus::Active.as_str(),
            AccountStatus::Reconnecting.as_str(),
        ];
        if !account.enabled && live.contains(&account.status.as_str()) {
            self.status(account_id, AccountStatus::Stopped).await;
        }
    }

    /// Receives and stores updates until the connection ends, renewing the lease and watching for stalls.
    async fn pump(
        &self,
        account_id: i64,
        held: Held,
        connection: &Arc<dyn Connection>,
        commands: &mut mpsc::UnboundedReceiver<AccountAction>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Ended {
        let name = personal::connection_lease(account_id);
        let ttl = chrono::Duration::from_std(self.settings.lease_ttl).unwrap_or_default();
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
                    match leases::renew(&self.store, &name, &self.settings.instance, held, ttl).await {
                        Ok(true) => last_renewed = Instant::now(),
                        Ok(false) => {
                            tracing::warn!(account_id, "lost the personal account lease; disconnecting");
                            break Ended::Done;
                        }
                        Err(error) => {
                            tracing::warn!(account_id, %error, "lease not renewed");
                            // Disconnect while the lease is surely still ours, before another instance may take it.
                            if last_renewed.elapsed() + self.settings.renew_every * 2 >= self.settings.lease_ttl {
                                break Ended::Done;
                            }
                        }
                    }
                    if self.wanted(account_id).await.is_none() {
                        break Ended::Done;
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
                        if let Err(error) = self.store_update(account_id, connection.as_ref(), update).await {
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

    /// Stores one update, then checkpoints it. A storage failure ends the connection without checkpointing, so
    /// the update is fetched again after the reconnect.
    async fn store_update(
        &self,
        account_id: i64,
        connection: &dyn Connection,
        received: ReceivedUpdate,
    ) -> Result<(), UserError> {
        let storage =
            |error: crm_store::StoreError| UserError::Other(format!("could not store an update: {error}"));
        match received.update {
            PersonalUpdate::Inbound(event) => {
                let policy = MediaPolicy {
                    max_download_bytes: self.settings.max_download_bytes,
                    pinned_account_id: Some(account_id),
                };
                let stored = inbox::receive_with_policy(&self.store, account_id, &event, Vec::new(), policy)
                    .await
                    .map_err(storage)?;
                if let (Some(message_id), true) = (
                    stored.message_id,
                    matches!(stored.outcome, Outcome::Stored | Outcome::Updated),
                ) {
                    self.feed
                        .message_changed(message_id, stored.outcome == Outcome::Stored, stored.chat_id);
                    self.job_waker.notify_one();
                }
            }
            PersonalUpdate::Deleted {
                peer_id,
                telegram_message_ids,
            } => {
                let touched = personal::mark_deleted(&self.store, account_id, peer_id, &telegram_message_ids)
                    .await
                    .map_err(storage)?;
                for (message_id, chat_id) in touched {
                    self.feed.message_changed(message_id, false, Some(chat_id));
                }
            }
            PersonalUpdate::ReadOutbox { peer_id, max_id } => {
                let touched = personal::mark_read_outbox(&self.store, account_id, peer_id, max_id)
                    .await
                    .map_err(storage)?;
                for (message_id, chat_id) in touched {
                    self.feed.message_changed(message_id, false, Some(chat_id));
                }
            }
        }
        if let Some(checkpoint) = received.checkpoint {
            connection.checkpoint(checkpoint).await?;
        }
        Ok(())
    }

    /// Imports recent history once; messages already stored are skipped by the inbox.
    async fn import_history(&self, account_id: i64, connection: &dyn Connection, account: &accounts::Model) {
        let history = match connection
            .history(self.settings.history, personal::scope(account))
            .await
        {
            Ok(history) => history,
            Err(error) => {
                tracing::warn!(account_id, %error, "history not imported; will try on the next connection");
                return;
            }
        };
        let total = history.len();
        tracing::info!(account_id, messages = total, "importing recent history");
        let policy = MediaPolicy {
            max_download_bytes: self.settings.max_download_bytes,
            pinned_account_id: Some(account_id),
        };
        let mut stored = 0;
        for event in &history {
            match inbox::receive_with_policy(&self.store, account_id, event, Vec::new(), policy).await {
                Ok(received) if received.outcome == Outcome::Stored => stored += 1,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(account_id, %error, "history import interrupted; will resume on the next connection");
                    return;
                }
            }
        }
        if let Err(error) = personal::mark_history_imported(&self.store, account_id).await {
            tracing::warn!(account_id, %error, "history import not recorded");
        }
        tracing::info!(account_id, stored, total, "history imported");
        self.job_waker.notify_one();
    }
}

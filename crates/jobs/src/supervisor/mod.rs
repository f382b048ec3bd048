//! The personal-account supervisor: every enabled personal account is connected by exactly one instance, the
//! holder of the lease `personal:<id>` (its fencing token changes with every holder). The holder renews the lease
//! while connected and disconnects before it can expire if renewing fails, so two instances never use one session
//! at once; another instance takes an orphaned account over once the lease lapses.
//!
//! This module finds the accounts to connect and routes admins' commands to them; [`connection`] keeps one
//! account connected: it stores each update through the inbox's one intake pipeline before handing its checkpoint
//! back to the gateway, so a crash or a reconnect resumes from the last stored update and Telegram's difference
//! fills the gap; a watchdog pings a connection that has been silent for a while and rebuilds it if the ping fails.

mod connection;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crm_core::event::{AccountAction, Event, EventBus};
use crm_core::ids::AccountId;
use crm_core::inbox::Inbox;
use crm_core::personal::{HistoryLimits, UserGateway, connection_lease};
use crm_core::ports::{Accounts, Leases};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;

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
}

impl SupervisorSettings {
    /// Defaults for `instance`: a 20 s lease renewed every 5 s (an orphaned account moves within 25 s), a
    /// watchdog after 60 s of silence, 100 dialogs × 50 messages of history.
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
        }
    }

    fn lease_ttl(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.lease_ttl).unwrap_or_default()
    }
}

/// What the supervisor works with.
pub struct SupervisorParts {
    /// Stores updates.
    pub inbox: Arc<Inbox>,
    /// Reads and records accounts.
    pub accounts: Arc<dyn Accounts>,
    /// Decides which instance connects which account.
    pub leases: Arc<dyn Leases>,
    /// Reaches Telegram.
    pub gateway: Arc<dyn UserGateway>,
    /// Carries admins' commands.
    pub bus: Arc<dyn EventBus>,
    /// Where live connections are shared with the job runner and the personal channel.
    pub connected: ConnectedAccounts,
}

/// Connects and supervises this instance's share of the personal accounts.
pub struct AccountSupervisor {
    parts: SupervisorParts,
    settings: SupervisorSettings,
}

struct Running {
    task: JoinHandle<()>,
    control: mpsc::UnboundedSender<AccountAction>,
}

impl AccountSupervisor {
    /// A supervisor over `parts`.
    pub fn new(parts: SupervisorParts, settings: SupervisorSettings) -> Arc<Self> {
        Arc::new(Self { parts, settings })
    }

    /// Connects the accounts whose lease this instance obtains, until `shutdown`; then disconnects them and
    /// releases their leases so another instance can take over at once.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut commands = self.parts.bus.subscribe();
        let mut running: HashMap<AccountId, Running> = HashMap::new();
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
                                if account_id.is_none_or(|wanted| wanted == id.0) {
                                    let _ = account.control.send(action);
                                }
                            }
                            if matches!(action, AccountAction::Start | AccountAction::Restart) {
                                continue 'scan;
                            }
                        }
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => {
                            commands = self.parts.bus.subscribe();
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
        running: &mut HashMap<AccountId, Running>,
        shutdown: &watch::Receiver<bool>,
    ) {
        let wanted = match self.parts.accounts.personal_to_connect().await {
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
            let lease = self
                .parts
                .leases
                .acquire(
                    &connection_lease(account.id),
                    &self.settings.instance,
                    self.settings.lease_ttl(),
                )
                .await;
            match lease {
                Ok(Some(lease)) => {
                    tracing::info!(account_id = %account.id, "connecting this personal account");
                    let (control, commands) = mpsc::unbounded_channel();
                    let supervisor = Arc::clone(self);
                    let task = tokio::spawn(supervisor.keep_connected(
                        account.id,
                        lease,
                        commands,
                        shutdown.clone(),
                    ));
                    running.insert(account.id, Running { task, control });
                }
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(account_id = %account.id, %error, "personal account lease unavailable")
                }
            }
        }
    }
}

//! Long polling for bots without a public URL: every bot in `polling` intake is polled by exactly one instance,
//! the holder of the lease `bot-poll:<id>`. Each update goes through the inbox's one intake pipeline, and the
//! offset (in the database) moves past it only once it is stored, so a restart resumes where the last instance
//! stopped; a redelivered update is stored once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crm_core::account::{Account, AccountStatus, IntakeMode};
use crm_core::ids::AccountId;
use crm_core::inbox::{Arrival, Inbox};
use crm_core::ports::{Accounts, Lease, Leases};
use crm_telegram_bot::{ALLOWED_UPDATES, BotApi, BotApiError, map_update, update_id};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// How long a lease lasts unless renewed (renewed before every long poll).
const LEASE_TTL: chrono::Duration = chrono::Duration::seconds(90);
/// How long one `getUpdates` waits for updates.
pub const POLL_WAIT: Duration = Duration::from_secs(25);
/// Pause after a failed poll.
const ERROR_PAUSE: Duration = Duration::from_secs(5);

/// Supervises the polling of every bot in `polling` intake.
pub struct BotPolling {
    inbox: Arc<Inbox>,
    accounts: Arc<dyn Accounts>,
    leases: Arc<dyn Leases>,
    bot_api: BotApi,
    instance: String,
    scan_every: Duration,
    wake: Arc<Notify>,
}

fn lease_name(account_id: AccountId) -> String {
    format!("bot-poll:{account_id}")
}

impl BotPolling {
    /// A supervisor for this `instance`: it stores updates through `inbox`, finds bots through `accounts`, takes
    /// their leases in `leases`, and looks for bots to poll every `scan_every` or when `wake` is notified (after
    /// an intake switch).
    pub fn new(
        inbox: Arc<Inbox>,
        accounts: Arc<dyn Accounts>,
        leases: Arc<dyn Leases>,
        bot_api: BotApi,
        instance: String,
        scan_every: Duration,
        wake: Arc<Notify>,
    ) -> Arc<Self> {
        Arc::new(Self {
            inbox,
            accounts,
            leases,
            bot_api,
            instance,
            scan_every,
            wake,
        })
    }

    /// Looks for bots to poll every `scan_every` until `shutdown`, starting a poller for each bot whose lease
    /// this instance obtains; on shutdown waits for the pollers to stop and release their leases.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut running: HashMap<AccountId, JoinHandle<()>> = HashMap::new();
        loop {
            running.retain(|_, task| !task.is_finished());
            match self.accounts.bots_to_poll().await {
                Ok(bots) => {
                    let idle: Vec<Account> = bots
                        .into_iter()
                        .filter(|bot| !running.contains_key(&bot.id))
                        .collect();
                    for bot in idle {
                        match self
                            .leases
                            .acquire(&lease_name(bot.id), &self.instance, LEASE_TTL)
                            .await
                        {
                            Ok(Some(lease)) => {
                                tracing::info!(account_id = %bot.id, "polling this bot");
                                let poller = Arc::clone(&self);
                                running.insert(
                                    bot.id,
                                    tokio::spawn(poller.poll(bot.id, lease, shutdown.clone())),
                                );
                            }
                            Ok(None) => {}
                            Err(error) => tracing::warn!(%error, "bot poll lease unavailable"),
                        }
                    }
                }
                Err(error) => tracing::warn!(%error, "cannot list bots to poll"),
            }
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.scan_every) => {}
            }
        }
        for (_, task) in running {
            let _ = task.await;
        }
    }

    async fn still_polled(&self, account_id: AccountId) -> Option<Account> {
        let account = self.accounts.find(account_id).await.ok().flatten()?;
        let wanted = account.intake_mode == IntakeMode::Polling && account.status == AccountStatus::Active;
        wanted.then_some(account)
    }

    #[tracing::instrument(name = "bot_poll", skip(self, lease, shutdown))]
    async fn poll(self: Arc<Self>, account_id: AccountId, lease: Lease, mut shutdown: watch::Receiver<bool>) {
        let name = lease_name(account_id);
        loop {
            if *shutdown.borrow() {
                break;
            }
            let Some(account) = self.still_polled(account_id).await else {
                break;
            };
            match self.leases.renew(&name, &self.instance, lease, LEASE_TTL).await {
                Ok(true) => {}
                _ => {
                    tracing::warn!("lost the bot poll lease; another instance polls it now");
                    return;
                }
            }
            let Ok(secrets) = self.accounts.bot_secrets(account_id).await else {
                break;
            };
            let Some(token) = secrets.token else { break };
            let result = tokio::select! {
                _ = shutdown.changed() => break,
                result = self.bot_api.get_updates(&token.0, account.polling_offset, POLL_WAIT, ALLOWED_UPDATES) => result,
            };
            let pause = match result {
                Ok(updates) => {
                    self.store_updates(&account, updates).await;
                    None
                }
                Err(BotApiError::Rejected(409, description)) => {
                    // Telegram refuses getUpdates while a webhook is set: the intake was switched elsewhere.
                    let message = format!("polling stopped: {description}");
                    let _ = self.accounts.record_error(account_id, &message, None).await;
                    break;
                }
                Err(BotApiError::Rejected(401 | 404, description)) => {
                    let message = format!("Telegram rejected the bot token: {description}");
                    let _ = self
                        .accounts
                        .record_error(account_id, &message, Some(AccountStatus::Error))
                        .await;
                    break;
                }
                Err(BotApiError::RetryAfter(wait, _)) => Some(wait),
                Err(error) => {
                    tracing::warn!(%error, "getUpdates failed");
                    Some(ERROR_PAUSE)
                }
            };
            if let Some(pause) = pause {
                tokio::select! {
                    _ = shutdown.changed() => break,
                    _ = tokio::time::sleep(pause) => {}
                }
            }
        }
        let _ = self.leases.release(&name, &self.instance, lease).await;
        tracing::info!("stopped polling this bot");
    }

    /// Stores each update, then moves the offset past it. An update that cannot be stored stops the batch; it
    /// is fetched again by the next poll.
    async fn store_updates(&self, account: &Account, updates: Vec<serde_json::Value>) {
        for update in updates {
            let Some(id) = update_id(&update) else { continue };
            let arrival = Arrival {
                account: account.clone(),
                event: map_update(&update, account.telegram_user_id),
                raw_update: Some(update),
            };
            if let Err(error) = self.inbox.receive(arrival).await {
                tracing::warn!(%error, "a polled update could not be stored; it will be fetched again");
                return;
            }
            if let Err(error) = self.accounts.advance_polling_offset(account.id, id + 1).await {
                tracing::warn!(%error, "polling offset not saved; the update will be deduplicated");
                return;
            }
        }
    }
}

//! Long polling for bots without a public URL: every bot in `polling` intake is polled by exactly one instance,
//! the holder of the lease `bot-poll:<id>`. The offset lives in the database and moves forward after each
//! update is stored, so a restart resumes where the last instance stopped; a redelivered update is stored once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crm_core::account::AccountStatus;
use crm_core::event::ChangeFeed;
use crm_store::Store;
use crm_store::entity::accounts;
use crm_store::repo::accounts as account_repo;
use crm_store::repo::forwarding::forward_job;
use crm_store::repo::inbox::{self, Outcome};
use crm_store::repo::leases::{self, Held};
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
    store: Store,
    bot_api: BotApi,
    instance: String,
    job_waker: Arc<Notify>,
    scan_every: Duration,
    wake: Arc<Notify>,
    feed: Arc<dyn ChangeFeed>,
}

fn lease_name(account_id: i64) -> String {
    format!("bot-poll:{account_id}")
}

impl BotPolling {
    /// A supervisor for this `instance`: it wakes the job runner when forwards are queued, looks for bots to
    /// poll every `scan_every` or when `wake` is notified (after an intake switch), and reports what it stores
    /// to `feed`.
    pub fn new(
        store: Store,
        bot_api: BotApi,
        instance: String,
        job_waker: Arc<Notify>,
        scan_every: Duration,
        wake: Arc<Notify>,
        feed: Arc<dyn ChangeFeed>,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            bot_api,
            instance,
            job_waker,
            scan_every,
            wake,
            feed,
        })
    }

    /// Looks for bots to poll every `scan_every` until `shutdown`, starting a poller for each bot whose lease
    /// this instance obtains; on shutdown waits for the pollers to stop and release their leases.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut running: HashMap<i64, JoinHandle<()>> = HashMap::new();
        loop {
            running.retain(|_, task| !task.is_finished());
            match account_repo::bots_to_poll(&self.store).await {
                Ok(bots) => {
                    let idle: Vec<_> = bots
                        .into_iter()
                        .filter(|bot| !running.contains_key(&bot.id))
                        .collect();
                    for bot in idle {
                        match leases::acquire(&self.store, &lease_name(bot.id), &self.instance, LEASE_TTL)
                            .await
                        {
                            Ok(Some(held)) => {
                                tracing::info!(account_id = bot.id, "polling this bot");
                                let poller = Arc::clone(&self);
                                running.insert(
                                    bot.id,
                                    tokio::spawn(poller.poll(bot.id, held, shutdown.clone())),
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

    async fn still_polled(&self, account_id: i64) -> Option<accounts::Model> {
        let account = account_repo::find(&self.store, account_id).await.ok().flatten()?;
        let wanted = account.intake_mode == "polling" && account.status == AccountStatus::Active.as_str();
        wanted.then_some(account)
    }

    async fn poll(self: Arc<Self>, account_id: i64, held: Held, mut shutdown: watch::Receiver<bool>) {
        let name = lease_name(account_id);
        loop {
            if *shutdown.borrow() {
                break;
            }
            let Some(account) = self.still_polled(account_id).await else {
                break;
            };
            match leases::renew(&self.store, &name, &self.instance, held, LEASE_TTL).await {
                Ok(true) => {}
                _ => {
                    tracing::warn!(
                        account_id,
                        "lost the bot poll lease; another instance polls it now"
                    );
                    return;
                }
            }
            let Ok(secrets) = account_repo::open_secrets(&self.store, &account) else {
                break;
            };
            let Some(token) = secrets.bot_token else { break };
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
                    let _ = account_repo::record_error(
                        &self.store,
                        account_id,
                        &format!("polling stopped: {description}"),
                        None,
                    )
                    .await;
                    break;
                }
                Err(BotApiError::Rejected(401 | 404, description)) => {
                    let message = format!("Telegram rejected the bot token: {description}");
                    let _ = account_repo::record_error(
                        &self.store,
                        account_id,
                        &message,
                        Some(AccountStatus::Error),
                    )
                    .await;
                    break;
                }
                Err(BotApiError::RetryAfter(wait, _)) => Some(wait),
                Err(error) => {
                    tracing::warn!(account_id, %error, "getUpdates failed");
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
        let _ = leases::release(&self.store, &name, &self.instance, held).await;
        tracing::info!(account_id, "stopped polling this bot");
    }

    /// Stores each update, then moves the offset past it. An update that cannot be stored stops the batch; it
    /// is fetched again by the next poll.
    async fn store_updates(&self, account: &accounts::Model, updates: Vec<serde_json::Value>) {
        for update in updates {
            let Some(id) = update_id(&update) else { continue };
            let event = map_update(&update, account.telegram_user_id);
            let forwards: Vec<_> = account
                .forward_url
                .iter()
                .map(|url| forward_job(account.id, url, &update))
                .collect();
            let forwarding = !forwards.is_empty();
            let received = match inbox::receive_with_jobs(&self.store, account.id, &event, forwards).await {
                Ok(received) => received,
                Err(error) => {
                    tracing::warn!(account_id = account.id, %error, "a polled update could not be stored; it will be fetched again");
                    return;
                }
            };
            if let (Some(message_id), true) = (
                received.message_id,
                matches!(received.outcome, Outcome::Stored | Outcome::Updated),
            ) {
                self.feed
                    .message_changed(message_id, received.outcome == Outcome::Stored, received.chat_id);
            }
            if forwarding {
                self.job_waker.notify_one();
            }
            if let Err(error) = account_repo::advance_polling_offset(&self.store, account.id, id + 1).await {
                tracing::warn!(account_id = account.id, %error, "polling offset not saved; the update will be deduplicated");
                return;
            }
        }
    }
}

//! The `send_message` job: delivers a queued outgoing message through its account's channel and records the
//! outcome. Flood waits reschedule at Telegram's `retry_after`; passing failures retry with backoff; a
//! permanent refusal, or the last failed attempt, marks the message `failed` with the reason.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use crm_core::account::AccountType;
use crm_core::event::ChangeFeed;
use crm_core::message::MessageType;
use crm_core::outbound::{OutgoingMedia, OutgoingMessage, SendError, SentMessage};
use crm_store::Store;
use crm_store::entity::{accounts, chats, messages};
use crm_store::repo::accounts as account_repo;
use crm_store::repo::media;
use crm_store::repo::outbox::{self, SEND_MESSAGE};
use crm_telegram_bot::BotApi;
use sea_orm::EntityTrait;

use crate::connected::ConnectedAccounts;
use crate::runner::{BoxFuture, JobContext, JobError, JobHandler};

/// Flood waits up to this long are slept through inside the job; longer ones reschedule it.
const SHORT_FLOOD_WAIT: Duration = Duration::from_secs(5);

/// Sends queued outgoing messages.
pub struct SendMessages {
    store: Store,
    bot_api: BotApi,
    connected: ConnectedAccounts,
    media_dir: PathBuf,
    feed: Arc<dyn ChangeFeed>,
}

impl SendMessages {
    /// A handler sending bots' messages through `bot_api` and personal accounts' through their live connection
    /// in `connected`, reading attachments from `media_dir`, reporting outcomes to `feed`.
    pub fn new(
        store: Store,
        bot_api: BotApi,
        connected: ConnectedAccounts,
        media_dir: PathBuf,
        feed: Arc<dyn ChangeFeed>,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            bot_api,
            connected,
            media_dir,
            feed,
        })
    }

    /// One delivery attempt through the account's channel, sleeping through short flood waits.
    async fn send_once(
        &self,
        account: &accounts::Model,
        message: &messages::Model,
        outgoing: OutgoingMessage,
    ) -> Result<SentMessage, SendError> {
        let mut slept = false;
        loop {
            let result = if account.account_type == AccountType::Personal.as_str() {
                let Some(connection) = self.connected.get(account.id) else {
                    return Err(SendError::Transient(
                        "the personal account is not connected on this instance".into(),
                    ));
                };
                connection.send(outgoing.clone(), random_id(message)).await
            } else {
                let secrets = account_repo::open_secrets(&self.store, account)
                    .map_err(|error| SendError::Transient(error.to_string()))?;
                let Some(token) = secrets.bot_token else {
                    return Err(SendError::Permanent("the bot account has no token".into()));
                };
                crm_telegram_bot::send::send(&self.bot_api, &token.0, outgoing.clone()).await
            };
            match result {
                Err(SendError::RetryAfter(wait, _)) if wait <= SHORT_FLOOD_WAIT && !slept => {
                    slept = true;
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    /// Reads the attachment of `message`, if it has one.
    async fn attachment(&self, message: &messages::Model) -> Result<Option<OutgoingMedia>, String> {
        let Some(media_id) = message
            .metadata
            .get("media_file_id")
            .and_then(serde_json::Value::as_i64)
        else {
            return Ok(None);
        };
        let row = media::find(&self.store, media_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or("the attached file no longer exists")?;
        let path = row
            .storage_path
            .as_deref()
            .and_then(|p| crm_store::files::resolve(&self.media_dir, p))
            .ok_or("the attached file has no stored copy")?;
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|error| format!("cannot read the attached file: {error}"))?;
        Ok(Some(OutgoingMedia {
            kind: MessageType::parse(&message.message_type).unwrap_or(MessageType::Document),
            bytes,
            file_name: row.file_name.unwrap_or_else(|| "file".into()),
            content_type: row
                .content_type
                .unwrap_or_else(|| "application/octet-stream".into()),
        }))
    }

    async fn fail(&self, message: &messages::Model, reason: String) -> Result<(), JobError> {
        outbox::mark_failed(&self.store, message, &reason)
            .await
            .map_err(|error| JobError::Retry(error.to_string()))?;
        self.feed
            .message_changed(message.id, false, Some(message.chat_id));
        Err(JobError::Permanent(reason))
    }

    async fn deliver(&self, job: JobContext) -> Result<(), JobError> {
        let store_error = |error: crm_store::StoreError| JobError::Retry(error.to_string());
        let Some(message_id) = job.payload.get("message_id").and_then(serde_json::Value::as_i64) else {
            return Err(JobError::Permanent("send_message job without message_id".into()));
        };
        let db = self.store.db();
        let Some(message) = messages::Entity::find_by_id(message_id)
            .one(db)
            .await
            .map_err(|e| store_error(e.into()))?
        else {
            return Ok(());
        };
        if message.status != crm_core::message::MessageStatus::Queued.as_str() {
            // Sent already (a retried job after a crash), or failed and not retried: nothing to do.
            return Ok(());
        }
        let chat = chats::Entity::find_by_id(message.chat_id)
            .one(db)
            .await
            .map_err(|e| store_error(e.into()))?;
        let account = match &chat {
            Some(chat) => accounts::Entity::find_by_id(chat.account_id)
                .one(db)
                .await
                .map_err(|e| store_error(e.into()))?,
            None => None,
        };
        let (Some(chat), Some(account)) = (chat, account) else {
            return self
                .fail(&message, "the chat or its account no longer exists".into())
                .await;
        };
        let attachment = match self.attachment(&message).await {
            Ok(attachment) => attachment,
            Err(reason) => return self.fail(&message, reason).await,
        };
        let outgoing = OutgoingMessage {
            peer_id: chat.peer_id,
            text: message.text.clone().or_else(|| message.caption.clone()),
            reply_to_telegram_id: message.reply_to_telegram_id,
            media: attachment,
        };
        match self.send_once(&account, &message, outgoing).await {
            Ok(sent) => {
                let echoes = outbox::mark_sent(&self.store, message.id, sent.telegram_message_id, sent.date)
                    .await
                    .map_err(store_error)?;
                for echo in echoes {
                    self.feed.message_removed(echo, message.chat_id);
                }
                self.feed
                    .message_changed(message.id, false, Some(message.chat_id));
                tracing::info!(
                    message_id,
                    telegram_message_id = sent.telegram_message_id,
                    "message sent"
                );
                Ok(())
            }
            Err(SendError::Permanent(reason)) => self.fail(&message, reason).await,
            Err(error) if job.is_last_attempt() => {
                self.fail(
                    &message,
                    format!("gave up after {} attempts: {error}", job.attempt),
                )
                .await
            }
            Err(SendError::RetryAfter(wait, reason)) => Err(JobError::RetryAt(
                Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default(),
                reason,
            )),
            Err(SendError::Transient(reason)) => Err(JobError::Retry(reason)),
        }
    }
}

/// The message's own `random_id`, fixed when it was queued; every attempt reuses it so Telegram can drop a
/// repeat. Messages queued before random ids were stored get one derived from their id, equally stable.
fn random_id(message: &messages::Model) -> i64 {
    message
        .metadata
        .get("random_id")
        .and_then(serde_json::Value::as_i64)
        .unwrap_or(message.id ^ 0x5DEE_CE66_D1CE_4E5B)
}

impl JobHandler for SendMessages {
    fn kind(&self) -> &'static str {
        SEND_MESSAGE
    }

    fn run(&self, job: JobContext) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(self.deliver(job))
    }
}

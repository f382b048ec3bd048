//! The job side of the outbox: the courier, which makes the calls that go through a channel (sending a queued
//! message here; downloading a received file in [`super::downloads`], marking a chat read in Telegram in
//! [`super::reading`]), and its sending.
//!
//! A send happens exactly once from our side. Each attempt is recorded (`in_flight_since`) in its own commit
//! before the channel is called, and its outcome in another after; when recording the outcome fails (the
//! database dropped), only the recording is retried, never the send. An attempt whose outcome was never recorded
//! (the process died, or the job was cancelled) is recognised by the next one: a channel that repeats safely
//! (MTProto, through the message's fixed `random_id`) sends again; the Bot API, which has no idempotency key,
//! marks the message failed as *unconfirmed* instead, for the operator to check, rather than risk a second copy.
//! That, and a bot send whose answer never came back, is the one residual window: it is counted
//! ([`Courier::unconfirmed`]) and documented.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;

use crate::CoreResult;
use crate::account::Account;
use crate::chat::LastMessage;
use crate::event::DomainEvent;
use crate::ids::MessageId;
use crate::inbox::InboxSettings;
use crate::inbox::outbox::chat_view;
use crate::media::MediaFile;
use crate::message::{MessageStatus, MessageType};
use crate::metadata::OutboxState;
use crate::outbound::{Channels, OutgoingMedia, OutgoingMessage, SendError, SentMessage};
use crate::ports::{BoxFuture, Clock, Database, MediaStore, Transaction, Tx, execute};
use crate::views::MessageView;

/// The reason shown on a bot message whose earlier attempt may have reached Telegram.
pub const UNCONFIRMED: &str = "Delivery could not be confirmed: Telegram may have received this message. \
     Check the chat in Telegram before retrying it.";

/// Tunables of the courier.
#[derive(Debug, Clone)]
pub struct CourierSettings {
    /// How long one call to a channel may take before its outcome counts as unknown.
    pub call_timeout: Duration,
    /// Flood waits up to this long are slept through once inside the attempt; longer ones reschedule it.
    pub short_flood_wait: Duration,
    /// How long recording an outcome is retried while the database is unreachable.
    pub record_patience: Duration,
    /// The download limits of the use cases.
    pub inbox: InboxSettings,
}

impl Default for CourierSettings {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(120),
            short_flood_wait: Duration::from_secs(5),
            record_patience: Duration::from_secs(600),
            inbox: InboxSettings::default(),
        }
    }
}

/// How a delivery attempt ended, for the job runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivered {
    /// Sent (or marked read): done.
    Done,
    /// Nothing to do (sent already, gone, or not queued).
    Nothing,
    /// Given up on; the message shows `failed` with this reason.
    Failed(String),
    /// Try again no earlier than this time (a flood wait).
    RetryAt(DateTime<Utc>, String),
    /// Try again with backoff.
    Retry(String),
}

/// What the channel did with an attempt, to record.
#[derive(Debug, Clone)]
enum Outcome {
    Sent(SentMessage),
    Retry(Option<DateTime<Utc>>, String),
    Failed(String),
}

/// Sends, downloads and reads through the channels, recording each outcome with its events.
pub struct Courier {
    pub(super) database: Arc<dyn Database>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) channels: Channels,
    pub(super) media: Arc<dyn MediaStore>,
    pub(super) settings: CourierSettings,
    unconfirmed: AtomicU64,
}

impl Courier {
    /// A courier writing through `database`, reaching Telegram through `channels` and files through `media`.
    pub fn new(
        database: Arc<dyn Database>,
        clock: Arc<dyn Clock>,
        channels: Channels,
        media: Arc<dyn MediaStore>,
        settings: CourierSettings,
    ) -> Self {
        Self {
            database,
            clock,
            channels,
            media,
            settings,
            unconfirmed: AtomicU64::new(0),
        }
    }

    /// Bot messages marked failed because an attempt's outcome was unknown (the residual window), since start.
    pub fn unconfirmed(&self) -> u64 {
        self.unconfirmed.load(Ordering::Relaxed)
    }

    /// One delivery attempt of queued message `message_id`; `last_attempt` makes a passing failure final.
    #[tracing::instrument(name = "deliver", skip(self), fields(account_id))]
    pub async fn deliver(
        &self,
        message_id: MessageId,
        attempt: i32,
        last_attempt: bool,
    ) -> CoreResult<Delivered> {
        let begin = BeginAttempt {
            message_id,
            channels: self.channels.clone(),
            now: self.clock.now(),
        };
        let plan = match execute(self.database.as_ref(), begin).await? {
            Begun::Nothing => return Ok(Delivered::Nothing),
            Begun::Unconfirmed => {
                self.unconfirmed.fetch_add(1, Ordering::Relaxed);
                return Ok(Delivered::Failed(UNCONFIRMED.into()));
            }
            Begun::Go(plan) => plan,
        };
        tracing::Span::current().record("account_id", plan.account.id.0);
        let media = match self.attachment(&plan).await {
            Ok(media) => media,
            Err(reason) => return self.record(message_id, Outcome::Failed(reason)).await,
        };
        let channel = self.channels.of(plan.account.kind);
        let outgoing = OutgoingMessage {
            media,
            ..plan.message.clone()
        };
        let result = self.send_once(&plan.account, outgoing, plan.random_id).await;
        let outcome = match result {
            Ok(sent) => Outcome::Sent(sent),
            Err(SendError::Permanent(reason)) => Outcome::Failed(reason),
            Err(SendError::Ambiguous(reason)) if !channel.repeats_safely() => {
                tracing::warn!(message_id = %message_id, %reason, "the outcome of a send is unknown; not repeating it");
                self.unconfirmed.fetch_add(1, Ordering::Relaxed);
                Outcome::Failed(format!("{UNCONFIRMED} ({reason})"))
            }
            Err(error) if last_attempt => {
                Outcome::Failed(format!("gave up after {attempt} attempts: {error}"))
            }
            Err(SendError::RetryAfter(wait, reason)) => Outcome::Retry(
                Some(self.clock.now() + chrono::Duration::from_std(wait).unwrap_or_default()),
                reason,
            ),
            Err(error) => Outcome::Retry(None, error.to_string()),
        };
        self.record(message_id, outcome).await
    }

    /// Reads the attached upload of a planned send.
    async fn attachment(&self, plan: &Plan) -> Result<Option<OutgoingMedia>, String> {
        let Some(file) = &plan.attachment else {
            return Ok(None);
        };
        let path = file
            .storage_path
            .as_deref()
            .ok_or("the attached file has no stored copy")?;
        let bytes = self
            .media
            .read(path)
            .await
            .map_err(|error| format!("cannot read the attached file: {error}"))?;
        Ok(Some(OutgoingMedia {
            kind: plan.message_type,
            bytes,
            file_name: file.file_name.clone().unwrap_or_else(|| "file".into()),
            content_type: file
                .content_type
                .clone()
                .unwrap_or_else(|| "application/octet-stream".into()),
        }))
    }

    /// Calls the channel, bounded in time, sleeping through one short flood wait.
    async fn send_once(
        &self,
        account: &Account,
        message: OutgoingMessage,
        random_id: i64,
    ) -> Result<SentMessage, SendError> {
        let channel = self.channels.of(account.kind);
        let mut slept = false;
        loop {
            let call = channel.send(account, message.clone(), random_id);
            let result = tokio::time::timeout(self.settings.call_timeout, call)
                .await
                .unwrap_or_else(|_| {
                    Err(SendError::Ambiguous(format!(
                        "no answer from Telegram within {} s",
                        self.settings.call_timeout.as_secs()
                    )))
                });
            match result {
                Err(SendError::RetryAfter(wait, _)) if wait <= self.settings.short_flood_wait && !slept => {
                    slept = true;
                    tokio::time::sleep(wait).await;
                }
                other => return other,
            }
        }
    }

    /// Records an attempt's outcome with its events. While the database is unreachable only this recording is
    /// retried (for up to `record_patience`): the message is never sent again because recording failed.
    async fn record(&self, message_id: MessageId, outcome: Outcome) -> CoreResult<Delivered> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            let work = RecordOutcome {
                message_id,
                outcome: outcome.clone(),
                now: self.clock.now(),
            };
            match execute(self.database.as_ref(), work).await {
                Ok(delivered) => return Ok(delivered),
                Err(error) if error.is_transient() && started.elapsed() < self.settings.record_patience => {
                    tracing::warn!(message_id = %message_id, %error, "outcome of a send not recorded yet; retrying the record only");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                Err(error) => return Err(error),
            }
        }
    }
}

/// What a send needs, read when its attempt was recorded.
#[derive(Debug, Clone)]
struct Plan {
    account: Account,
    message: OutgoingMessage,
    message_type: MessageType,
    attachment: Option<MediaFile>,
    random_id: i64,
}

enum Begun {
    Nothing,
    Unconfirmed,
    Go(Box<Plan>),
}

/// Records that an attempt starts (before the channel is called), or recognises an earlier attempt whose
/// outcome was never recorded.
struct BeginAttempt {
    message_id: MessageId,
    channels: Channels,
    now: DateTime<Utc>,
}

impl Transaction for BeginAttempt {
    type Output = Begun;

    fn body<'t>(&'t self, tx: &'t mut dyn Tx) -> BoxFuture<'t, CoreResult<Begun>> {
        Box::pin(async move {
            let Some(found) = tx.message(self.message_id).await? else {
                return Ok(Begun::Nothing);
            };
            let Some(chat) = tx.lock_chat(found.chat_id).await? else {
                return Ok(Begun::Nothing);
            };
            let Some(mut message) = tx.message(self.message_id).await? else {
                return Ok(Begun::Nothing);
            };
            if message.status != MessageStatus::Queued {
                return Ok(Begun::Nothing);
            }
            let account = tx
                .account(chat.account_id)
                .await?
                .filter(|account| account.removed_at.is_none());
            let Some(account) = account else {
                fail(tx, &mut message, "the chat's account no longer exists", self.now).await?;
                return Ok(Begun::Nothing);
            };
            let random_id = message
                .metadata
                .random_id()
                .unwrap_or_else(|| rand::thread_rng().r#gen::<i64>());
            let outbox = message.metadata.outbox.get_or_insert_with(OutboxState::default);
            if outbox.in_flight_since.is_some() && !self.channels.of(account.kind).repeats_safely() {
                fail(tx, &mut message, UNCONFIRMED, self.now).await?;
                return Ok(Begun::Unconfirmed);
            }
            outbox.in_flight_since = Some(self.now);
            outbox.attempts += 1;
            outbox.random_id = Some(random_id);
            tx.update_message(&message).await?;
            let attachment = tx
                .files_of(std::slice::from_ref(&message.id))
                .await?
                .remove(&message.id);
            Ok(Begun::Go(Box::new(Plan {
                message: OutgoingMessage {
                    peer_id: chat.peer_id,
                    text: message.text.clone().or_else(|| message.caption.clone()),
                    reply_to_telegram_id: message.reply_to_telegram_id,
                    media: None,
                },
                message_type: message.message_type,
                account,
                attachment,
                random_id,
            })))
        })
    }
}

/// Marks `message` failed with `reason` and announces it.
async fn fail(
    tx: &mut dyn Tx,
    message: &mut crate::message::Message,
    reason: &str,
    now: DateTime<Utc>,
) -> CoreResult<()> {
    let outbox = message.metadata.outbox.get_or_insert_with(OutboxState::default);
    outbox.in_flight_since = None;
    outbox.error = Some(reason.to_owned());
    outbox.failed_at = Some(now);
    message.status = MessageStatus::Failed;
    message.updated_at = now;
    tx.update_message(message).await?;
    let files = tx.files_of(std::slice::from_ref(&message.id)).await?;
    tx.append_events(vec![DomainEvent::MessageUpdated(MessageView::new(
        message,
        files.get(&message.id),
    ))])
    .await
}

/// Records what the channel did with an attempt.
struct RecordOutcome {
    message_id: MessageId,
    outcome: Outcome,
    now: DateTime<Utc>,
}

impl Transaction for RecordOutcome {
    type Output = Delivered;

    fn body<'t>(&'t self, tx: &'t mut dyn Tx) -> BoxFuture<'t, CoreResult<Delivered>> {
        Box::pin(async move {
            let Some(found) = tx.message(self.message_id).await? else {
                return Ok(Delivered::Nothing);
            };
            let Some(mut chat) = tx.lock_chat(found.chat_id).await? else {
                return Ok(Delivered::Nothing);
            };
            let Some(mut message) = tx.message(self.message_id).await? else {
                return Ok(Delivered::Nothing);
            };
            let outbox = message.metadata.outbox.get_or_insert_with(OutboxState::default);
            outbox.in_flight_since = None;
            match &self.outcome {
                Outcome::Retry(at, reason) => {
                    tx.update_message(&message).await?;
                    Ok(match at {
                        Some(at) => Delivered::RetryAt(*at, reason.clone()),
                        None => Delivered::Retry(reason.clone()),
                    })
                }
                Outcome::Failed(reason) => {
                    if message.status == MessageStatus::Queued {
                        fail(tx, &mut message, reason, self.now).await?;
                    } else {
                        tx.update_message(&message).await?;
                    }
                    Ok(Delivered::Failed(reason.clone()))
                }
                Outcome::Sent(sent) => {
                    if matches!(message.status, MessageStatus::Sent | MessageStatus::Read) {
                        tx.update_message(&message).await?;
                        return Ok(Delivered::Done);
                    }
                    let mut events = Vec::new();
                    let mut chat_changed = false;
                    // A personal account may have stored Telegram's echo of this message from its update
                    // stream already: that copy goes, so the message appears once, as the operator's.
                    if let Some(telegram_id) = sent.telegram_message_id
                        && let Some(echo) = tx.message_by_telegram_id(chat.id, telegram_id).await?
                        && echo.id != message.id
                    {
                        tx.delete_messages(std::slice::from_ref(&echo.id)).await?;
                        chat.message_count = chat.message_count.saturating_sub(1);
                        if chat.last_message.as_ref().is_some_and(|last| last.id == echo.id) {
                            chat.last_message = Some(LastMessage {
                                id: message.id,
                                preview: crate::chat::preview_of(
                                    message.text.as_deref(),
                                    message.caption.as_deref(),
                                ),
                                outgoing: true,
                            });
                        }
                        chat_changed = true;
                        events.push(DomainEvent::MessageRemoved {
                            message_id: echo.id,
                            chat_id: chat.id,
                        });
                    }
                    if let Some(outbox) = message.metadata.outbox.as_mut() {
                        outbox.error = None;
                    }
                    message.status = MessageStatus::Sent;
                    message.telegram_message_id = sent.telegram_message_id.or(message.telegram_message_id);
                    message.telegram_date = sent.date;
                    message.updated_at = self.now;
                    tx.update_message(&message).await?;
                    let files = tx.files_of(std::slice::from_ref(&message.id)).await?;
                    events.push(DomainEvent::MessageUpdated(MessageView::new(
                        &message,
                        files.get(&message.id),
                    )));
                    if chat_changed {
                        chat.updated_at = self.now;
                        tx.update_chat(&chat).await?;
                        events.push(DomainEvent::ChatUpdated(chat_view(tx, &chat).await?));
                    }
                    tx.append_events(events).await?;
                    tracing::info!(message_id = %message.id, telegram_message_id = ?sent.telegram_message_id, "message sent");
                    Ok(Delivered::Done)
                }
            }
        })
    }
}

//! The ports the use cases work through, implemented outside the core: the transactional store ([`Database`],
//! one [`Tx`] per unit of work), the event log the relay publishes from ([`EventLog`]), the files on disk
//! ([`MediaStore`]) and the clock ([`Clock`]). Telegram's channels are in [`crate::outbound`].

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};

use crate::account::Account;
use crate::chat::Chat;
use crate::event::{DomainEvent, StoredEvent};
use crate::ids::{AccountId, ChatId, EventSeq, MediaFileId, MessageId, PeerId, TelegramMessageId, UserId};
use crate::inbound::ChatRef;
use crate::jobs::JobRequest;
use crate::media::{MediaFile, NewDownload};
use crate::message::{Message, NewMessage};
use crate::user::User;
use crate::{CoreError, CoreResult};

/// A boxed future, so ports can be used as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The statements of one unit of work, inside an open write transaction. Locks are taken in one order by
/// every use case (the chat row first, then a user row), so units of work never wait on each other in a
/// circle; the implementation retries the rare deadlock or serialisation failure by running the work again.
pub trait Tx: Send {
    /// An account by id (removed ones too).
    fn account(&mut self, id: AccountId) -> BoxFuture<'_, CoreResult<Option<Account>>>;

    /// Locks and reads a chat by id.
    fn lock_chat(&mut self, id: ChatId) -> BoxFuture<'_, CoreResult<Option<Chat>>>;
    /// Locks and reads the chat of `account` with `peer`.
    fn lock_chat_by_peer(
        &mut self,
        account: AccountId,
        peer: PeerId,
    ) -> BoxFuture<'_, CoreResult<Option<Chat>>>;
    /// Creates the chat of `account` with the peer of `chat` unless it exists (a concurrent creation wins
    /// quietly), then locks and reads it.
    fn create_chat<'a>(
        &'a mut self,
        account: AccountId,
        chat: &'a ChatRef,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, CoreResult<Chat>>;
    /// Writes back every mutable field of `chat` (one statement keyed by its id).
    fn update_chat<'a>(&'a mut self, chat: &'a Chat) -> BoxFuture<'a, CoreResult<()>>;

    /// A message by id.
    fn message(&mut self, id: MessageId) -> BoxFuture<'_, CoreResult<Option<Message>>>;
    /// The message of `chat` with Telegram id `id`.
    fn message_by_telegram_id(
        &mut self,
        chat: ChatId,
        id: TelegramMessageId,
    ) -> BoxFuture<'_, CoreResult<Option<Message>>>;
    /// Stores a message; `None` when the chat already has a message with its Telegram id (a redelivery).
    fn insert_message<'a>(
        &'a mut self,
        message: &'a NewMessage,
    ) -> BoxFuture<'a, CoreResult<Option<MessageId>>>;
    /// Writes back every mutable field of `message`.
    fn update_message<'a>(&'a mut self, message: &'a Message) -> BoxFuture<'a, CoreResult<()>>;
    /// Deletes messages and their files' records.
    fn delete_messages<'a>(&'a mut self, ids: &'a [MessageId]) -> BoxFuture<'a, CoreResult<()>>;
    /// Points the replies of `chat` to Telegram message `parent` (stored before it) at the stored `stored`.
    fn link_replies(
        &mut self,
        chat: ChatId,
        parent: TelegramMessageId,
        stored: MessageId,
    ) -> BoxFuture<'_, CoreResult<()>>;
    /// Messages of `account` with these Telegram ids: in the chat with `peer`, or (no peer) in its private
    /// chats and basic groups, where Telegram's ids are unique per account.
    fn messages_by_telegram_ids<'a>(
        &'a mut self,
        account: AccountId,
        peer: Option<PeerId>,
        ids: &'a [TelegramMessageId],
    ) -> BoxFuture<'a, CoreResult<Vec<Message>>>;
    /// Our sent (not yet read) messages in the chat of `account` with `peer`, up to Telegram id `max_id`.
    fn sent_up_to(
        &mut self,
        account: AccountId,
        peer: PeerId,
        max_id: TelegramMessageId,
    ) -> BoxFuture<'_, CoreResult<Vec<Message>>>;

    /// Telegram id of the newest message the customer sent in `chat`.
    fn newest_inbound_telegram_id(
        &mut self,
        chat: ChatId,
    ) -> BoxFuture<'_, CoreResult<Option<TelegramMessageId>>>;

    /// The file of each of `messages` that has one.
    fn files_of<'a>(
        &'a mut self,
        messages: &'a [MessageId],
    ) -> BoxFuture<'a, CoreResult<HashMap<MessageId, MediaFile>>>;
    /// A stored file's record.
    fn media_file(&mut self, id: MediaFileId) -> BoxFuture<'_, CoreResult<Option<MediaFile>>>;
    /// Writes back every mutable field of a file's record.
    fn update_media_file<'a>(&'a mut self, file: &'a MediaFile) -> BoxFuture<'a, CoreResult<()>>;
    /// Records a received file.
    fn insert_download<'a>(&'a mut self, file: &'a NewDownload) -> BoxFuture<'a, CoreResult<MediaFile>>;
    /// An upload not attached to a message yet.
    fn unsent_upload(&mut self, id: MediaFileId) -> BoxFuture<'_, CoreResult<Option<MediaFile>>>;
    /// Attaches an unsent upload to `message`; false if it is attached already (an upload is sent once).
    fn attach_upload(&mut self, id: MediaFileId, message: MessageId) -> BoxFuture<'_, CoreResult<bool>>;

    /// Locks and reads a user (not a deleted one).
    fn lock_user(&mut self, id: UserId) -> BoxFuture<'_, CoreResult<Option<User>>>;
    /// The id of the running assignment of `chat`, if it is held.
    fn active_assignment(&mut self, chat: ChatId) -> BoxFuture<'_, CoreResult<Option<i64>>>;
    /// How many chats `user` holds.
    fn count_held(&mut self, user: UserId) -> BoxFuture<'_, CoreResult<u64>>;
    /// Ends the active assignment of `chat`, keeping it as history.
    fn end_assignment(&mut self, chat: ChatId, now: DateTime<Utc>) -> BoxFuture<'_, CoreResult<()>>;
    /// Records that `user` holds `chat` from `now` (given by `by`); returns the assignment's id.
    fn start_assignment(
        &mut self,
        chat: ChatId,
        user: UserId,
        by: UserId,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, CoreResult<i64>>;

    /// Enqueues a job with the change; false if a job with its dedupe key exists already.
    fn enqueue(&mut self, job: JobRequest) -> BoxFuture<'_, CoreResult<bool>>;
    /// Writes events to the event log with the change.
    fn append_events(&mut self, events: Vec<DomainEvent>) -> BoxFuture<'_, CoreResult<()>>;
}

/// A unit of work: statements that commit together or not at all.
pub trait Work: Send + Sync {
    /// Runs the statements in `tx`. It may run again from the start (after a deadlock, or when a batch it
    /// shared failed), so it must derive everything from its input and what it reads.
    fn run<'t>(&'t self, tx: &'t mut dyn Tx) -> BoxFuture<'t, CoreResult<()>>;
}

/// The transactional store.
pub trait Database: Send + Sync + 'static {
    /// Runs `work` in a write transaction and commits it. Concurrent works may share one transaction (group
    /// commit); a work that fails leaves nothing behind. Deadlocks and serialisation failures are retried; what
    /// returns is the work's own error or an outage.
    fn write(&self, work: Arc<dyn Work>) -> BoxFuture<'_, CoreResult<()>>;
}

/// A unit of work with a result.
pub trait Transaction: Send + Sync + 'static {
    /// What it produces.
    type Output: Send + 'static;
    /// Runs the statements in `tx` (see [`Work::run`]).
    fn body<'t>(&'t self, tx: &'t mut dyn Tx) -> BoxFuture<'t, CoreResult<Self::Output>>;
}

struct WithOutput<T: Transaction> {
    transaction: T,
    output: Mutex<Option<T::Output>>,
}

impl<T: Transaction> Work for WithOutput<T> {
    fn run<'t>(&'t self, tx: &'t mut dyn Tx) -> BoxFuture<'t, CoreResult<()>> {
        Box::pin(async move {
            let output = self.transaction.body(tx).await?;
            *self.output.lock().unwrap_or_else(PoisonError::into_inner) = Some(output);
            Ok(())
        })
    }
}

/// Runs `transaction` through `database` and returns what its committed run produced.
pub async fn execute<T: Transaction>(database: &dyn Database, transaction: T) -> CoreResult<T::Output> {
    let work = Arc::new(WithOutput {
        transaction,
        output: Mutex::new(None),
    });
    database.write(Arc::clone(&work) as Arc<dyn Work>).await?;
    let output = work.output.lock().unwrap_or_else(PoisonError::into_inner).take();
    output.ok_or_else(|| CoreError::internal("a committed unit of work left no result"))
}

/// The event log, from the relay's side: numbering committed events in commit order and reading them back.
pub trait EventLog: Send + Sync + 'static {
    /// Gives the next numbers, in order, to up to `limit` committed events that have none, and returns them.
    /// Every event gets exactly one number, and numbers have no gaps.
    fn sequence_pending(&self, limit: u32) -> BoxFuture<'_, CoreResult<Vec<StoredEvent>>>;
    /// Numbered events after `after`, oldest first, at most `limit`.
    fn read_after(&self, after: EventSeq, limit: u32) -> BoxFuture<'_, CoreResult<Vec<StoredEvent>>>;
    /// The highest number given so far (0 for an empty log).
    fn last_seq(&self) -> BoxFuture<'_, CoreResult<EventSeq>>;
    /// The lowest number still kept, if any (older events were cleaned up).
    fn first_seq(&self) -> BoxFuture<'_, CoreResult<Option<EventSeq>>>;
}

/// Stored files on disk, under generated names.
pub trait MediaStore: Send + Sync {
    /// The bytes of the file at `storage_path`.
    fn read<'a>(&'a self, storage_path: &'a str) -> BoxFuture<'a, CoreResult<Vec<u8>>>;
    /// Stores `bytes` under a new name with `extension`; returns its storage path.
    fn write<'a>(&'a self, bytes: &'a [u8], extension: &'a str) -> BoxFuture<'a, CoreResult<String>>;
    /// Removes the file at `storage_path` (one already gone counts as removed).
    fn remove<'a>(&'a self, storage_path: &'a str) -> BoxFuture<'a, CoreResult<()>>;
}

/// Where the use cases get the time from.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// The time to microseconds: what every database keeps, so an event's payload equals a later reload.
    fn now(&self) -> DateTime<Utc> {
        chrono::SubsecRound::trunc_subsecs(Utc::now(), 6)
    }
}

/// A named, expiring ownership held by one instance at a time (a polled bot, a connected personal account).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Raised with every change of holder, so work done under an older holding can be told apart.
    pub fencing_token: i64,
}

/// Leases, shared by every instance through the database.
pub trait Leases: Send + Sync + 'static {
    /// Takes `name` for `holder` for `ttl` if it is free, lapsed, or already `holder`'s.
    fn acquire<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: chrono::Duration,
    ) -> BoxFuture<'a, CoreResult<Option<Lease>>>;
    /// Extends `holder`'s lease; false if it was lost.
    fn renew<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        lease: Lease,
        ttl: chrono::Duration,
    ) -> BoxFuture<'a, CoreResult<bool>>;
    /// Gives the lease up so another instance may take it at once.
    fn release<'a>(&'a self, name: &'a str, holder: &'a str, lease: Lease) -> BoxFuture<'a, CoreResult<()>>;
    /// Who holds `name` now, if anyone.
    fn holder<'a>(&'a self, name: &'a str) -> BoxFuture<'a, CoreResult<Option<String>>>;
}

/// The durable job queue, from the runner's side.
pub trait JobQueue: Send + Sync + 'static {
    /// Claims up to `limit` due jobs for `worker` for `lock_for`, including those pinned to `connected` accounts.
    fn claim<'a>(
        &'a self,
        worker: &'a str,
        limit: u64,
        lock_for: chrono::Duration,
        connected: &'a [AccountId],
    ) -> BoxFuture<'a, CoreResult<Vec<crate::jobs::ClaimedJob>>>;
    /// Marks a claimed job done; false if the claim was lost meanwhile.
    fn complete<'a>(&'a self, job: &'a crate::jobs::ClaimedJob) -> BoxFuture<'a, CoreResult<bool>>;
    /// Puts a claimed job back to run at `at`, or dead-letters it when its attempts are used up.
    fn retry_later<'a>(
        &'a self,
        job: &'a crate::jobs::ClaimedJob,
        at: DateTime<Utc>,
        error: &'a str,
    ) -> BoxFuture<'a, CoreResult<crate::jobs::JobStatus>>;
    /// Dead-letters a claimed job at once.
    fn fail<'a>(
        &'a self,
        job: &'a crate::jobs::ClaimedJob,
        error: &'a str,
    ) -> BoxFuture<'a, CoreResult<bool>>;
    /// Extends the claims of running jobs; returns how many were still held.
    fn renew<'a>(
        &'a self,
        claims: &'a [(crate::ids::JobId, String)],
        lock_for: chrono::Duration,
    ) -> BoxFuture<'a, CoreResult<u64>>;
    /// Releases the claims `worker` held before a restart; returns how many.
    fn release_stale<'a>(&'a self, worker: &'a str) -> BoxFuture<'a, CoreResult<u64>>;
    /// Schedules today's housekeeping unless it is scheduled already.
    fn schedule_housekeeping(&self) -> BoxFuture<'_, CoreResult<bool>>;
    /// Deletes revoked tokens and numbered events older than their retention; returns (tokens, events).
    fn clean_up(
        &self,
        revoked_tokens_older_than: chrono::Duration,
        events_older_than: chrono::Duration,
    ) -> BoxFuture<'_, CoreResult<(u64, u64)>>;
    /// Forgets operators' uploads never sent and older than `older_than`; returns their storage paths, for the
    /// files to be removed.
    fn take_unsent_uploads(&self, older_than: chrono::Duration) -> BoxFuture<'_, CoreResult<Vec<String>>>;
}

/// The secrets of a bot account, opened.
#[derive(Debug, Clone, Default)]
pub struct BotSecrets {
    /// Its token.
    pub token: Option<crate::secrets::Sensitive>,
    /// The secret Telegram sends with webhook calls (and forwards carry on).
    pub webhook_secret: Option<crate::secrets::Sensitive>,
}

/// Accounts, from the side of the pollers and the personal-account supervisor.
pub trait Accounts: Send + Sync + 'static {
    /// An account by id (not a removed one).
    fn find(&self, id: AccountId) -> BoxFuture<'_, CoreResult<Option<Account>>>;
    /// Bots in polling intake that are active.
    fn bots_to_poll(&self) -> BoxFuture<'_, CoreResult<Vec<Account>>>;
    /// Personal accounts to connect now: enabled, with a session, no login running, not waiting out an error.
    fn personal_to_connect(&self) -> BoxFuture<'_, CoreResult<Vec<Account>>>;
    /// What the MTProto gateway needs for a personal account (`None` without a phone or credentials).
    fn handle<'a>(
        &'a self,
        account: &'a Account,
    ) -> BoxFuture<'a, CoreResult<Option<crate::personal::AccountHandle>>>;
    /// A bot's secrets.
    fn bot_secrets(&self, id: AccountId) -> BoxFuture<'_, CoreResult<BotSecrets>>;
    /// Sets the status (clearing the error unless it is `error`).
    fn set_status(
        &self,
        id: AccountId,
        status: crate::account::AccountStatus,
    ) -> BoxFuture<'_, CoreResult<()>>;
    /// A personal account failed: status `error` with its code and message, and when to retry (`None`: it
    /// needs a person).
    fn record_failure<'a>(
        &'a self,
        id: AccountId,
        code: &'a str,
        message: &'a str,
        retry_at: Option<DateTime<Utc>>,
    ) -> BoxFuture<'a, CoreResult<()>>;
    /// A bot failed: its message, and a new status if it changes.
    fn record_error<'a>(
        &'a self,
        id: AccountId,
        message: &'a str,
        status: Option<crate::account::AccountStatus>,
    ) -> BoxFuture<'a, CoreResult<()>>;
    /// A personal account connected: status `active` and the profile Telegram reports.
    fn connected<'a>(
        &'a self,
        id: AccountId,
        profile: &'a crate::personal::Profile,
    ) -> BoxFuture<'a, CoreResult<()>>;
    /// Recent history of a personal account was imported.
    fn history_imported(&self, id: AccountId) -> BoxFuture<'_, CoreResult<()>>;
    /// Moves a polled bot's offset forward (never back).
    fn advance_polling_offset(&self, id: AccountId, offset: i64) -> BoxFuture<'_, CoreResult<()>>;
}

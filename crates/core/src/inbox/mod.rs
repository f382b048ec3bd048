//! The use cases of the message path, each one unit of work that commits its change together with the events
//! it produced (and the jobs it needs):
//!
//! - [`Inbox::receive`] (`intake`): the one intake pipeline behind the bot webhook, bot polling and the
//!   personal-account supervisor.
//! - [`Inbox::send`] and [`Inbox::retry`] (`outbox`): an operator's message is queued with its send job.
//! - [`Inbox::mark_read`] (`reading`), [`Inbox::assign`] and [`Inbox::release`] (`assignment`).
//! - [`Courier`] (`delivery`): the job side of the outbox, sending exactly once from our side, and the
//!   downloads and read marks that go through a channel.

mod assignment;
mod counters;
mod delivery;
mod downloads;
mod intake;
mod outbox;
mod reading;

use std::sync::Arc;

pub use assignment::Assignment;
pub use counters::IntakeCounters;
pub use delivery::{Courier, CourierSettings, Delivered, UNCONFIRMED};
pub use downloads::Downloaded;
pub use intake::{Arrival, Intake, Outcome};
pub use outbox::{Reply, SendTarget};

use crate::CoreResult;
use crate::account::AccountType;
use crate::ids::{ChatId, MediaFileId, MessageId};
use crate::ports::{Clock, Database, execute};
use crate::user::User;
use crate::views::{ChatView, MessageView};

/// Largest file the public Bot API lets a bot download: bots' files above it are recorded as too large.
pub const BOT_DOWNLOAD_LIMIT: i64 = 20 * 1024 * 1024;
/// Largest file a personal account may fetch on demand (a premium account's upload limit).
pub const MAX_ON_DEMAND_BYTES: u64 = 4 * 1024 * 1024 * 1024;

/// Tunables of the use cases.
#[derive(Debug, Clone)]
pub struct InboxSettings {
    /// Files of personal accounts up to this size are downloaded automatically.
    pub personal_download_limit: i64,
    /// Attempts before a transiently failing send is given up.
    pub send_max_attempts: i32,
}

impl Default for InboxSettings {
    fn default() -> Self {
        Self {
            personal_download_limit: 50 * 1024 * 1024,
            send_max_attempts: crate::jobs::DEFAULT_SEND_ATTEMPTS,
        }
    }
}

impl InboxSettings {
    /// Files received through an account of `kind` up to this size are downloaded automatically.
    pub fn download_limit(&self, kind: AccountType) -> i64 {
        match kind {
            AccountType::Bot => BOT_DOWNLOAD_LIMIT,
            AccountType::Personal => self.personal_download_limit,
        }
    }
}

/// The message path's use cases over the ports they need.
pub struct Inbox {
    database: Arc<dyn Database>,
    clock: Arc<dyn Clock>,
    settings: InboxSettings,
    counters: IntakeCounters,
}

impl Inbox {
    /// Use cases writing through `database`, timed by `clock`.
    pub fn new(database: Arc<dyn Database>, clock: Arc<dyn Clock>, settings: InboxSettings) -> Self {
        Self {
            database,
            clock,
            settings,
            counters: IntakeCounters::default(),
        }
    }

    /// What intake ignored since this instance started, by update kind.
    pub fn counters(&self) -> &IntakeCounters {
        &self.counters
    }

    /// Stores what arrived from Telegram, once: a redelivered update changes nothing. See [`intake`].
    #[tracing::instrument(name = "receive", skip_all, fields(account_id = %arrival.account.id, kind = arrival.event.kind()))]
    pub async fn receive(&self, arrival: Arrival) -> CoreResult<Intake> {
        let ignored = match &arrival.event {
            crate::inbound::InboundEvent::Ignored { kind } => Some(kind.clone()),
            _ => None,
        };
        let forwarded = arrival.account.forward_url.is_some() && arrival.raw_update.is_some();
        if let Some(kind) = ignored.as_deref()
            && !forwarded
        {
            // Nothing to store and nothing to hand on: counted without touching the database.
            self.counters.count_ignored(kind);
            return Ok(intake::Intake::ignored());
        }
        let work = intake::Receive {
            arrival,
            now: self.clock.now(),
            settings: self.settings.clone(),
        };
        let intake = execute(self.database.as_ref(), work).await?;
        if let Some(kind) = ignored {
            self.counters.count_ignored(&kind);
        }
        Ok(intake)
    }

    /// Queues an operator's message (a new one, or a reply) with its send job. See [`outbox`].
    #[tracing::instrument(name = "send", skip_all, fields(user_id = %user.id))]
    pub async fn send(&self, user: &User, target: SendTarget, reply: Reply) -> CoreResult<MessageView> {
        let work = outbox::Send {
            user: user.clone(),
            target,
            reply,
            now: self.clock.now(),
            max_attempts: self.settings.send_max_attempts,
        };
        execute(self.database.as_ref(), work).await
    }

    /// Queues a failed outgoing message again.
    #[tracing::instrument(name = "retry", skip_all, fields(user_id = %user.id, message_id = %message_id))]
    pub async fn retry(&self, user: &User, message_id: MessageId) -> CoreResult<MessageView> {
        let work = outbox::Retry {
            user: user.clone(),
            message_id,
            now: self.clock.now(),
            max_attempts: self.settings.send_max_attempts,
        };
        execute(self.database.as_ref(), work).await
    }

    /// Marks a chat read (and, for personal accounts that want it, in Telegram too).
    #[tracing::instrument(name = "mark_read", skip_all, fields(user_id = %user.id, chat_id = %chat_id))]
    pub async fn mark_read(&self, user: &User, chat_id: ChatId) -> CoreResult<ChatView> {
        let work = reading::MarkRead {
            user: user.clone(),
            chat_id,
            now: self.clock.now(),
        };
        execute(self.database.as_ref(), work).await
    }

    /// Gives a chat to `operator` (default: the caller), taking it from its holder: a transfer when someone
    /// held it. Operators may only take chats for themselves.
    #[tracing::instrument(name = "assign", skip_all, fields(user_id = %user.id, chat_id = %chat_id))]
    pub async fn assign(
        &self,
        user: &User,
        chat_id: ChatId,
        operator: Option<crate::ids::UserId>,
    ) -> CoreResult<Assignment> {
        let work = assignment::Assign {
            user: user.clone(),
            chat_id,
            operator,
            now: self.clock.now(),
        };
        execute(self.database.as_ref(), work).await
    }

    /// Ends the holder's assignment of a chat.
    #[tracing::instrument(name = "release", skip_all, fields(user_id = %user.id, chat_id = %chat_id))]
    pub async fn release(&self, user: &User, chat_id: ChatId) -> CoreResult<()> {
        let work = assignment::Release {
            user: user.clone(),
            chat_id,
            now: self.clock.now(),
        };
        execute(self.database.as_ref(), work).await
    }

    /// Queues the download of a file that was too large for the automatic one, or failed (personal accounts,
    /// whose files can be fetched on demand).
    #[tracing::instrument(name = "fetch_media", skip_all, fields(user_id = %user.id, media_file_id = %file))]
    pub async fn fetch_media(&self, user: &User, file: MediaFileId) -> CoreResult<MessageView> {
        let work = downloads::FetchOnDemand {
            user: user.clone(),
            file,
            now: self.clock.now(),
        };
        execute(self.database.as_ref(), work).await
    }
}

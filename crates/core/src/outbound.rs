//! The port between the core and Telegram's two channels: what the outbox asks a channel to send, download or
//! mark read, what comes back and how it can fail. There is one [`ChannelGateway`] per account kind, chosen once
//! through [`Channels::of`]; nothing else asks which kind an account is before calling Telegram.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::account::{Account, AccountType};
use crate::ids::{PeerId, TelegramMessageId};
use crate::message::MessageType;
use crate::ports::BoxFuture;

/// A file to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMedia {
    /// How to present it (photo, video, document, audio, voice).
    pub kind: MessageType,
    /// Contents.
    pub bytes: Vec<u8>,
    /// File name shown to the recipient.
    pub file_name: String,
    /// MIME type sniffed from the bytes.
    pub content_type: String,
}

/// A message to deliver to one peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// Telegram id of the chat.
    pub peer_id: PeerId,
    /// Text, or the caption of a media message.
    pub text: Option<String>,
    /// Telegram id of the message replied to.
    pub reply_to_telegram_id: Option<TelegramMessageId>,
    /// The attached file.
    pub media: Option<OutgoingMedia>,
}

/// Telegram's acknowledgement of a sent message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentMessage {
    /// The id Telegram gave the message; `None` when Telegram only said it already had this message.
    pub telegram_message_id: Option<TelegramMessageId>,
    /// Telegram's date of the message.
    pub date: DateTime<Utc>,
}

/// Why a send failed, sorted by what to do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Flood control: retry no earlier than after this wait. Telegram did not take the message.
    #[error("{1} (retry after {0:?})")]
    RetryAfter(Duration, String),
    /// A failure before Telegram took the message (5xx, refused connection): retry with backoff.
    #[error("{0}")]
    Transient(String),
    /// The request may have reached Telegram but no answer came back (a timeout after sending). Whether
    /// Telegram took the message is unknown.
    #[error("{0}")]
    Ambiguous(String),
    /// Retrying cannot help (blocked by the user, chat not found, bad request).
    #[error("{0}")]
    Permanent(String),
}

/// A boxed future of a send.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<SentMessage, SendError>> + Send + 'a>>;

/// Where a received file is, for either channel: bots download by `file_id`, personal accounts by the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLocation {
    /// The chat of the message.
    pub peer_id: PeerId,
    /// The message carrying the file.
    pub telegram_message_id: Option<TelegramMessageId>,
    /// Telegram's file id.
    pub file_id: Option<String>,
}

/// Why a download failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownloadError {
    /// The file is over the limit (its size, when known).
    #[error("the file is larger than the download limit")]
    TooLarge(Option<i64>),
    /// Flood control: retry no earlier than after this wait.
    #[error("{1} (retry after {0:?})")]
    RetryAfter(Duration, String),
    /// A passing failure: retry with backoff.
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help.
    #[error("{0}")]
    Permanent(String),
}

/// A downloaded file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadedFile {
    /// Contents.
    pub bytes: Vec<u8>,
    /// Original file name, when the message has one.
    pub file_name: Option<String>,
    /// MIME type Telegram reports.
    pub mime_type: Option<String>,
}

/// One of Telegram's channels (the Bot API, or MTProto for personal accounts), as the outbox and the
/// download and read jobs use it.
pub trait ChannelGateway: Send + Sync {
    /// Whether sending the same message again (with the same `random_id`) is safe: Telegram drops the repeat.
    /// Without it, an attempt whose outcome is unknown is never repeated automatically.
    fn repeats_safely(&self) -> bool;
    /// Sends `message` as `account`. `random_id` is fixed per outgoing message; a channel that supports it
    /// (MTProto) passes it on, so Telegram drops a repeat of an accepted message.
    fn send<'a>(&'a self, account: &'a Account, message: OutgoingMessage, random_id: i64) -> SendFuture<'a>;
    /// Downloads a received file, refusing more than `max_bytes`.
    fn download<'a>(
        &'a self,
        account: &'a Account,
        file: FileLocation,
        max_bytes: u64,
    ) -> BoxFuture<'a, Result<DownloadedFile, DownloadError>>;
    /// Marks the chat read in Telegram up to `max_id` (a channel without the notion does nothing).
    fn mark_read<'a>(
        &'a self,
        account: &'a Account,
        peer_id: PeerId,
        max_id: TelegramMessageId,
    ) -> BoxFuture<'a, Result<(), SendError>>;
}

/// The gateway of each account kind.
#[derive(Clone)]
pub struct Channels {
    bot: Arc<dyn ChannelGateway>,
    personal: Arc<dyn ChannelGateway>,
}

impl Channels {
    /// Bots through `bot`, personal accounts through `personal`.
    pub fn new(bot: Arc<dyn ChannelGateway>, personal: Arc<dyn ChannelGateway>) -> Self {
        Self { bot, personal }
    }

    /// The gateway of accounts of `kind`.
    pub fn of(&self, kind: AccountType) -> &dyn ChannelGateway {
        match kind {
            AccountType::Bot => self.bot.as_ref(),
            AccountType::Personal => self.personal.as_ref(),
        }
    }
}

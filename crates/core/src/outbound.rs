//! What the core asks a channel to send, what comes back, and how a send can fail: the port between the
//! outbox and the Telegram adapters.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::message::MessageType;

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
    pub peer_id: i64,
    /// Text, or the caption of a media message.
    pub text: Option<String>,
    /// Telegram id of the message replied to.
    pub reply_to_telegram_id: Option<i64>,
    /// The attached file.
    pub media: Option<OutgoingMedia>,
}

/// Telegram's acknowledgement of a sent message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SentMessage {
    /// The id Telegram gave the message.
    pub telegram_message_id: i64,
    /// Telegram's date of the message.
    pub date: DateTime<Utc>,
}

/// Why a send failed, sorted by what to do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Flood control: retry no earlier than after this wait.
    #[error("{1} (retry after {0:?})")]
    RetryAfter(Duration, String),
    /// A passing failure (5xx, timeout, network): retry with backoff.
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help (blocked by the user, chat not found, bad request).
    #[error("{0}")]
    Permanent(String),
}

/// A boxed future of a send.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<SentMessage, SendError>> + Send + 'a>>;

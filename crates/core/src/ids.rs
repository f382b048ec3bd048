//! Identifiers: our own row ids and Telegram's ids, each its own type so that a chat id is never passed where a
//! message id belongs. They serialise as plain numbers.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($($(#[$meta:meta])* $name:ident;)+) => {
        $(
            $(#[$meta])*
            #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
            #[serde(transparent)]
            pub struct $name(pub i64);

            impl std::fmt::Display for $name {
                fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                    self.0.fmt(f)
                }
            }

            impl From<$name> for i64 {
                fn from(id: $name) -> i64 {
                    id.0
                }
            }
        )+
    };
}

id_type! {
    /// A connected Telegram account (bot or personal).
    AccountId;
    /// A conversation with one Telegram peer through one account.
    ChatId;
    /// A stored message.
    MessageId;
    /// A user of the inbox (admin or operator).
    UserId;
    /// A stored file (download or upload).
    MediaFileId;
    /// A background job.
    JobId;
    /// Telegram's id of a user, group or channel (the peer of a chat).
    PeerId;
    /// Telegram's id of a message, unique within its chat.
    TelegramMessageId;
    /// The position of an event in the event log: dense and in commit order.
    EventSeq;
}

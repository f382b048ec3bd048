//! Events: the changes users are told about ([`DomainEvent`], written to the event log in the transaction of
//! the change), the log entries as they travel to WebSocket clients once sequenced ([`StoredEvent`]), and the
//! bus between the parts of the system and between instances ([`Event`], [`EventBus`]).

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ids::{AccountId, ChatId, EventSeq, MessageId, UserId};
use crate::views::{AccountView, ChatView, MessageView};

/// A change connected users are told about. A use case returns the events it produced, and they are written
/// to the event log in the same transaction as the change, with payloads built from the data in hand.
#[derive(Debug, Clone, PartialEq)]
pub enum DomainEvent {
    /// A message was stored.
    NewMessage(MessageView),
    /// A stored message changed (status, file, edit, reaction, deletion).
    MessageUpdated(MessageView),
    /// A message was removed (a duplicate copy merged into another).
    MessageRemoved {
        /// The message.
        message_id: MessageId,
        /// Its chat.
        chat_id: ChatId,
    },
    /// A chat changed (counters, newest message, holder, blocked).
    ChatUpdated(ChatView),
    /// A chat was given to `user_id` (only they get this).
    ChatAdded {
        /// The new holder.
        user_id: UserId,
        /// The chat.
        chat: ChatView,
    },
    /// A chat was taken from `user_id` (only they get this).
    ChatRemoved {
        /// The former holder.
        user_id: UserId,
        /// The chat.
        chat_id: ChatId,
    },
    /// An account's status or profile changed, or a login has a fresh QR code to show (admins only: it names
    /// no chat).
    AccountStatus {
        /// The account now.
        account: AccountView,
        /// A QR login's current code (`qr_svg`, `login_url`, `expires_at`), while one runs.
        qr: Option<Value>,
    },
    /// An account was removed (admins only).
    AccountRemoved {
        /// The account.
        account_id: AccountId,
    },
}

impl DomainEvent {
    /// The WebSocket message type.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NewMessage(_) => "new_message",
            Self::MessageUpdated(_) => "message_updated",
            Self::MessageRemoved { .. } => "message_removed",
            Self::ChatUpdated(_) => "chat_updated",
            Self::ChatAdded { .. } => "chat_added",
            Self::ChatRemoved { .. } => "chat_removed",
            Self::AccountStatus { .. } | Self::AccountRemoved { .. } => "account_status",
        }
    }

    /// The chat concerned: who may see the chat may see the event.
    pub fn chat_id(&self) -> Option<i64> {
        match self {
            Self::NewMessage(message) | Self::MessageUpdated(message) => Some(message.chat_id),
            Self::MessageRemoved { chat_id, .. } | Self::ChatRemoved { chat_id, .. } => Some(chat_id.0),
            Self::ChatUpdated(chat) | Self::ChatAdded { chat, .. } => Some(chat.id),
            Self::AccountStatus { .. } | Self::AccountRemoved { .. } => None,
        }
    }

    /// The only user the event is for, if any.
    pub fn user_id(&self) -> Option<i64> {
        match self {
            Self::ChatAdded { user_id, .. } | Self::ChatRemoved { user_id, .. } => Some(user_id.0),
            _ => None,
        }
    }

    /// The body clients receive (without `type` and `event_id`, which the hub adds).
    pub fn payload(&self) -> Value {
        match self {
            Self::NewMessage(message) | Self::MessageUpdated(message) => json!({ "message": message }),
            Self::MessageRemoved { message_id, chat_id } => {
                json!({ "message_id": message_id, "chat_id": chat_id })
            }
            Self::ChatUpdated(chat) | Self::ChatAdded { chat, .. } => json!({ "chat": chat }),
            Self::ChatRemoved { chat_id, .. } => json!({ "chat_id": chat_id }),
            Self::AccountStatus { account, qr: None } => json!({ "account": account }),
            Self::AccountStatus {
                account,
                qr: Some(qr),
            } => json!({ "account": account, "qr": qr }),
            Self::AccountRemoved { account_id } => {
                json!({ "account": { "id": account_id, "status": "removed" } })
            }
        }
    }
}

/// An event of the log, sequenced: its number is dense and follows commit order, so a client that has seen
/// number N has seen everything before it and resumes exactly after it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Its number in the log (`event_id` on the wire).
    pub seq: EventSeq,
    /// The WebSocket message type (`new_message`, `chat_updated`, …).
    pub kind: String,
    /// The chat concerned: who may see the chat may see the event.
    pub chat_id: Option<i64>,
    /// The only user the event is for, if any.
    pub user_id: Option<i64>,
    /// The body clients receive (without `type` and `event_id`, which the hub adds).
    pub payload: Value,
    /// The WebSocket frame, built once however many connections send it.
    #[serde(skip)]
    pub frame: OnceLock<String>,
}

/// Events are equal by their content; whether the frame was built yet does not count.
impl PartialEq for StoredEvent {
    fn eq(&self, other: &Self) -> bool {
        (self.seq, &self.kind, self.chat_id, self.user_id, &self.payload)
            == (
                other.seq,
                &other.kind,
                other.chat_id,
                other.user_id,
                &other.payload,
            )
    }
}

impl Eq for StoredEvent {}

impl StoredEvent {
    /// An event numbered `seq`.
    pub fn new(
        seq: EventSeq,
        kind: String,
        chat_id: Option<i64>,
        user_id: Option<i64>,
        payload: Value,
    ) -> Self {
        Self {
            seq,
            kind,
            chat_id,
            user_id,
            payload,
            frame: OnceLock::new(),
        }
    }

    /// The frame WebSocket clients receive: the payload with `type` and `event_id`.
    pub fn frame(&self) -> &str {
        self.frame.get_or_init(|| {
            let mut body = self.payload.clone();
            if let Some(fields) = body.as_object_mut() {
                fields.insert("type".into(), Value::String(self.kind.clone()));
                fields.insert("event_id".into(), Value::from(self.seq.0));
            }
            body.to_string()
        })
    }
}

/// What travels on the bus: notices for the parts of every instance. None of it is stored; what users must not
/// miss goes through the event log and arrives as [`Event::Logged`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A user's role, limits or active flag changed, or the user was removed.
    UserChanged {
        /// The user concerned.
        user_id: i64,
    },
    /// Every token of a user was revoked (logout everywhere, deactivation, password reset).
    SessionsRevoked {
        /// The user concerned.
        user_id: i64,
    },
    /// One token was revoked (its owner logged out of that session): connections opened with it close.
    TokenRevoked {
        /// The token's owner.
        user_id: i64,
        /// The token.
        token_id: i64,
    },
    /// Events of the log were sequenced, in order (an instance's relay tells every instance).
    Logged {
        /// The events, consecutive numbers, oldest first.
        events: Vec<StoredEvent>,
    },
    /// An admin asked the instance connected to a personal account (or every instance) to act now.
    AccountControl {
        /// The account; `None` for every personal account.
        account_id: Option<i64>,
        /// What to do.
        action: AccountAction,
    },
}

/// What an admin asks of a connected personal account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountAction {
    /// Connect it if it should run and is not connected (after a start or a login).
    Start,
    /// Disconnect it (after a stop or before a removal).
    Stop,
    /// Disconnect and connect again.
    Restart,
    /// Catch up on missed updates now.
    Sync,
}

/// Carries [`Event`]s to every subscriber of every instance. Publishing never blocks on slow subscribers: a
/// subscriber that falls behind the buffer sees `RecvError::Lagged` and must resynchronise.
pub trait EventBus: Send + Sync + 'static {
    /// Sends `event` to every current subscriber, here and on the other instances.
    fn publish(&self, event: Event);
    /// Starts receiving events published from now on.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event>;
    /// Whether events may currently fail to reach other instances (Redis is unreachable).
    fn degraded(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_is_the_payload_with_type_and_number_and_equality_ignores_it() {
        let event = StoredEvent::new(
            EventSeq(7),
            "chat_updated".into(),
            Some(3),
            None,
            json!({ "chat": { "id": 3 } }),
        );
        let twin = event.clone();
        let frame: Value = serde_json::from_str(event.frame()).unwrap();
        assert_eq!(
            frame,
            json!({ "chat": { "id": 3 }, "type": "chat_updated", "event_id": 7 })
        );
        assert!(std::ptr::eq(event.frame(), event.frame()), "built once");
        assert_eq!(event, twin, "a built frame does not make events differ");
        let travelled: StoredEvent = serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
        assert_eq!(travelled, event);
        assert!(
            travelled.frame.get().is_none(),
            "the frame does not travel between instances"
        );
    }
}

//! Events published after a change is committed, and the port through which they travel between parts
//! (and, with Redis, between instances).

use serde::{Deserialize, Serialize};

/// Something that happened which open connections may need to know about.
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
    /// A change for connected users, already in the event log under `event_id`.
    Published(StoredEvent),
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

/// An event from the log, as it travels to the WebSocket hub.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEvent {
    /// Its number in the log; increases with every event.
    pub event_id: i64,
    /// The WebSocket message type (`new_message`, `chat_updated`, …).
    pub kind: String,
    /// The chat concerned: who may see the chat may see the event.
    pub chat_id: Option<i64>,
    /// The only user the event is for, if any.
    pub user_id: Option<i64>,
    /// The body clients receive (without `type` and `event_id`, which the hub adds).
    pub payload: serde_json::Value,
}

/// Carries events to every subscriber. Publishing never blocks on slow subscribers: a subscriber that falls
/// behind the buffer sees `RecvError::Lagged` and must resynchronise.
pub trait EventBus: Send + Sync + 'static {
    /// Sends `event` to every current subscriber.
    fn publish(&self, event: Event);
    /// Starts receiving events published from now on.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event>;
    /// Whether events may currently fail to reach other instances (Redis is unreachable).
    fn degraded(&self) -> bool {
        false
    }
}

/// Where background work (sending, downloads, polling) reports changes users should see at once; the web layer
/// implements it by logging and publishing the matching events.
pub trait ChangeFeed: Send + Sync + 'static {
    /// A message was stored (`is_new`) or changed (status, file, edit); `chat_id` also refreshes its chat.
    fn message_changed(&self, message_id: i64, is_new: bool, chat_id: Option<i64>);
    /// A message was removed from chat `chat_id` (a duplicate copy merged into another).
    fn message_removed(&self, message_id: i64, chat_id: i64);
    /// An account's status or profile changed; admins see it at once.
    fn account_changed(&self, account_id: i64);
}

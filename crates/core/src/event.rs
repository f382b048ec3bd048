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
}

/// Carries events to every subscriber. Publishing never blocks on slow subscribers: a subscriber that falls
/// behind the buffer sees `RecvError::Lagged` and must resynchronise.
pub trait EventBus: Send + Sync + 'static {
    /// Sends `event` to every current subscriber.
    fn publish(&self, event: Event);
    /// Starts receiving events published from now on.
    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Event>;
}

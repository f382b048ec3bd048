//! Publishing changes to connected users: each event is written to the event log (which numbers it) after the
//! change committed, then announced on the bus. A failure to publish never fails the request: the change is
//! stored, and a client that misses the event catches up with `resume` or a reload.

use crm_core::event::{Event, StoredEvent};
use crm_store::repo::events::{self, NewEvent};
use serde_json::Value;

use crate::state::AppState;

/// Logs and announces one event.
pub async fn publish(
    state: &AppState,
    kind: &str,
    chat_id: Option<i64>,
    user_id: Option<i64>,
    payload: Value,
) {
    let event = NewEvent {
        kind: kind.to_owned(),
        chat_id,
        user_id,
        payload,
    };
    match events::append(&state.store, event).await {
        Ok(row) => state.bus.publish(Event::Published(StoredEvent {
            event_id: row.id,
            kind: row.kind,
            chat_id: row.chat_id,
            user_id: row.user_id,
            payload: row.payload,
        })),
        Err(error) => tracing::warn!(%error, kind, "event not published"),
    }
}

/// Publishes `chat_updated` with the chat as a chosen viewer would see it (counters, holder, last message).
pub async fn chat_updated(state: &AppState, chat_id: i64) {
    if let Some(chat) = crate::api::chats::chat_view(state, chat_id).await {
        publish(
            state,
            "chat_updated",
            Some(chat_id),
            None,
            serde_json::json!({ "chat": chat }),
        )
        .await;
    }
}

/// Publishes `kind` (`new_message` or `message_updated`) for a stored message, read back by id.
pub async fn message_event(state: &AppState, kind: &str, message_id: i64) {
    if let Some(message) = crate::api::messages::message_view(state, message_id).await {
        publish_message(state, kind, &message).await;
    }
}

/// Publishes `kind` for a message already shaped for the API (no second read).
pub async fn publish_message(state: &AppState, kind: &str, message: &crate::api::messages::MessageOut) {
    let payload = serde_json::json!({ "message": message });
    publish(state, kind, Some(message.chat_id), None, payload).await;
}

/// Publishes what an inbound event changed: a new or updated message and its chat.
pub async fn received(state: &AppState, received: crm_store::repo::inbox::Received) {
    use crm_store::repo::inbox::Outcome;
    let kind = match received.outcome {
        Outcome::Stored => "new_message",
        Outcome::Updated => "message_updated",
        Outcome::Duplicate | Outcome::Ignored => return,
    };
    if let Some(message_id) = received.message_id {
        message_event(state, kind, message_id).await;
    }
    if let Some(chat_id) = received.chat_id {
        chat_updated(state, chat_id).await;
    }
}

/// The web layer's [`crm_core::event::ChangeFeed`]: publishes in a task of its own, in order per call.
pub struct WebChangeFeed {
    state: AppState,
}

impl WebChangeFeed {
    /// A feed publishing through `state`.
    pub fn new(state: AppState) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self { state })
    }
}

impl crm_core::event::ChangeFeed for WebChangeFeed {
    fn message_changed(&self, message_id: i64, is_new: bool, chat_id: Option<i64>) {
        let state = self.state.clone();
        tokio::spawn(async move {
            message_event(
                &state,
                if is_new { "new_message" } else { "message_updated" },
                message_id,
            )
            .await;
            if let Some(chat_id) = chat_id {
                chat_updated(&state, chat_id).await;
            }
        });
    }

    fn message_removed(&self, message_id: i64, chat_id: i64) {
        let state = self.state.clone();
        tokio::spawn(async move {
            let payload = serde_json::json!({ "message_id": message_id, "chat_id": chat_id });
            publish(&state, "message_removed", Some(chat_id), None, payload).await;
        });
    }

    fn account_changed(&self, account_id: i64) {
        let state = self.state.clone();
        tokio::spawn(async move {
            if let Some(account) = crate::api::accounts::account_view(&state, account_id).await {
                account_status(&state, &account).await;
            }
        });
    }
}

/// Publishes `account_status` (admins only: it has no chat) with the account as admins see it.
pub async fn account_status(state: &AppState, account: &crate::api::accounts::AccountOut) {
    let payload = serde_json::json!({ "account": account });
    publish(state, "account_status", None, None, payload).await;
}

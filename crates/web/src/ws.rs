//! The WebSocket at `/ws/messages/`: authenticated with a token (`?token=`, `Sec-WebSocket-Protocol`, the REST
//! API's `Authorization` header, or the UI's `crm_session` cookie) and living no longer than that token, it
//! sends the chats the user may see, then every event about them, numbered by `event_id`. Clients send `ping`, `get_chat_messages`, `mark_as_read` and `resume`. Each connection has a
//! bounded queue: a client that falls behind is closed (code 4008) and can `resume`; it never slows anyone else.
//!
//! A connection delivers each event it may show once, in the log's order. Reconnecting with
//! `?since_event_id=N` replays what came after `N` before any live event, so nothing is missed, repeated or
//! reordered; an in-band `resume` replays only what this connection has not delivered live.

use std::collections::HashSet;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use crm_core::chat::Viewer;
use crm_core::event::{Event, StoredEvent};
use crm_core::ids::{ChatId, EventSeq, MessageId};
use crm_core::ports::EventLog;
use crm_core::token::looks_like_token;
use crm_core::user::{Role, User};
use crm_store::repo::chats::{self as chat_repo, ChatFilter};
use crm_store::repo::{messages as message_repo, tokens};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::auth::token_from_header;
use crate::error::ApiError;
use crate::extract::Query;
use crate::state::AppState;

/// Frames a connection may have waiting before it counts as too slow (default of `WS_QUEUE_FRAMES`).
pub const QUEUE: usize = 512;
/// Largest client frame accepted.
pub const MAX_FRAME: usize = 64 * 1024;
/// Chats per `initial_chats` message or chunk.
pub const CHUNK: u64 = 50;
/// Close code for a client that fell behind.
pub const CLOSE_TOO_SLOW: u16 = 4008;
/// Close code for a user whose sessions were revoked.
pub const CLOSE_REVOKED: u16 = 4001;
/// How long the close frame may wait on a client that stopped reading before the connection is dropped.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(10);
/// How often a connection checks that its token is still valid, in case a revocation notice was lost (another
/// instance's, while Redis was away).
const TOKEN_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(30);
/// Most events one `resume` replays.
const MAX_REPLAY: u32 = 10_000;

/// `?token=` for clients that cannot set headers, and `?since_event_id=` for a client reconnecting.
#[derive(Debug, Deserialize)]
pub struct WsQuery {
    /// An API token.
    pub token: Option<String>,
    /// The last event the client has: what followed it is replayed before live events.
    pub since_event_id: Option<i64>,
}

/// Whether a browser page at `Origin` may open the WebSocket: an origin listed in `CORS_ALLOWED_ORIGINS`, or the
/// server's own (same scheme family, host and port as the `Host` the request was sent to). A page served from
/// another port or scheme of the same host is another origin.
fn origin_allowed(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true; // Not a browser: the token alone decides.
    };
    if state
        .settings
        .cors_allowed_origins
        .iter()
        .any(|allowed| allowed == origin)
    {
        return true;
    }
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    same_origin(origin, host)
}

/// Whether `origin` (`scheme://host[:port]`) names the same host and port as the `Host` header value `host`.
fn same_origin(origin: &str, host: &str) -> bool {
    let Ok(origin) = url::Url::parse(origin) else {
        return false;
    };
    if !matches!(origin.scheme(), "http" | "https") || origin.path() != "/" && !origin.path().is_empty() {
        return false;
    }
    let Some(origin_host) = origin.host_str() else {
        return false;
    };
    let Ok(requested) = url::Url::parse(&format!("{}://{host}", origin.scheme())) else {
        return false;
    };
    requested
        .host_str()
        .is_some_and(|h| h.eq_ignore_ascii_case(origin_host))
        && requested.port_or_known_default() == origin.port_or_known_default()
}

/// Name of the cookie the web UI keeps its session token in (HttpOnly; the WebSocket accepts it, guarded by
/// the Origin check).
pub const SESSION_COOKIE: &str = "crm_session";

/// The session token from the `Cookie` header, if any.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, value)| *name == SESSION_COOKIE && looks_like_token(value))
        .map(|(_, value)| value.to_owned())
}

/// Upgrades to the WebSocket; 401 without a valid token, 403 from a foreign origin.
pub async fn upgrade(
    State(state): State<AppState>,
    Query(query): Query<WsQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let offered: Vec<String> = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(',').map(|p| p.trim().to_owned()).collect())
        .unwrap_or_default();
    let from_protocol = offered.iter().find(|p| looks_like_token(p)).cloned();
    let Some(token) = query
        .token
        .filter(|t| looks_like_token(t))
        .or(from_protocol.clone())
        .or_else(|| {
            headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(token_from_header)
                .filter(|t| looks_like_token(t))
                .map(str::to_owned)
        })
        .or_else(|| session_cookie(&headers))
    else {
        return ApiError::unauthenticated().into_response();
    };
    let (token_id, user) = match tokens::authenticate(&state.store, &token).await {
        Ok(Some(found)) => found,
        Ok(None) => return ApiError::unauthenticated().into_response(),
        Err(error) => return ApiError::from(error).into_response(),
    };
    if !origin_allowed(&state, &headers) {
        return ApiError::forbidden().into_response();
    }
    // Small buffers: an idle connection should cost little (tungstenite's defaults are 128 KiB each way).
    let upgrade = upgrade
        .max_message_size(MAX_FRAME * 16)
        .read_buffer_size(4 * 1024)
        .write_buffer_size(8 * 1024);
    let upgrade = match from_protocol {
        // Echo the offered token as the accepted protocol, as browsers require.
        Some(protocol) => upgrade.protocols([protocol]),
        None => upgrade,
    };
    let since = query.since_event_id;
    let credential = Credential { token, token_id };
    upgrade.on_upgrade(move |socket| session(state, user, credential, since, socket))
}

/// The token a connection was opened with: a connection lives no longer than its token.
struct Credential {
    token: String,
    token_id: i64,
}

/// One connected user.
struct Session {
    state: AppState,
    user: User,
    admin: bool,
    visible: HashSet<i64>,
    /// Events up to this number were in the log when the connection subscribed; later ones come live.
    watermark: i64,
    last_event_id: i64,
    out: mpsc::Sender<Message>,
    close: Option<oneshot::Sender<CloseFrame>>,
}

fn frame(value: &Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}

impl Session {
    fn viewer(&self) -> Viewer {
        self.user.viewer()
    }

    /// Queues a frame; false (and the connection closing) if the client is too slow.
    fn send(&mut self, value: Value) -> bool {
        self.send_frame(frame(&value))
    }

    fn send_frame(&mut self, message: Message) -> bool {
        match self.out.try_send(message) {
            Ok(()) => true,
            Err(_) => {
                self.close_with(CLOSE_TOO_SLOW, "too slow: reconnect and resume");
                false
            }
        }
    }

    /// Queues a frame of a burst the client asked for (initial list, replay), waiting for room as the client
    /// reads; a client that reads nothing for `CLOSE_GRACE` is closed as too slow.
    async fn send_waiting(&mut self, value: Value) -> bool {
        self.send_frame_waiting(frame(&value)).await
    }

    async fn send_frame_waiting(&mut self, message: Message) -> bool {
        match tokio::time::timeout(CLOSE_GRACE, self.out.send(message)).await {
            Ok(Ok(())) => true,
            _ => {
                self.close_with(CLOSE_TOO_SLOW, "too slow: reconnect and resume");
                false
            }
        }
    }

    fn close_with(&mut self, code: u16, reason: &str) {
        if let Some(close) = self.close.take() {
            let _ = close.send(CloseFrame {
                code,
                reason: Utf8Bytes::from(reason.to_owned()),
            });
        }
    }

    fn error(&mut self, code: &str, message: &str) -> bool {
        self.send(json!({ "type": "error", "code": code, "message": message }))
    }

    /// Whether the connection's token still authenticates its user; closes the connection when it does not
    /// (revoked, expired, the user deactivated). An unreachable database keeps it, as the next check will tell.
    async fn keep_if_token_valid(&mut self, credential: &Credential) -> bool {
        let valid = match tokens::authenticate(&self.state.store, &credential.token).await {
            Ok(Some((token_id, owner))) => token_id == credential.token_id && owner.id == self.user.id,
            Ok(None) => false,
            Err(_) => true,
        };
        if !valid {
            self.close_with(CLOSE_REVOKED, "session revoked");
        }
        valid
    }

    async fn reload_visible(&mut self) {
        if self.admin {
            return;
        }
        // As of the last event this connection delivered (its start, at first): the events after it move the
        // set on, each in its turn.
        let as_of = EventSeq(self.last_event_id);
        if let Ok(held) = chat_repo::held_as_of(&self.state.store, self.user.id, as_of).await {
            self.visible = held;
        }
    }

    async fn send_initial_chats(&mut self) -> bool {
        let filter = ChatFilter::default();
        let Ok(first) = chat_repo::list(&self.state.store, self.viewer(), &filter, 1, CHUNK).await else {
            return self.error("unavailable", "the chat list cannot be loaded now");
        };
        let total = first.total;
        let more = first.has_next();
        let first_chats = first.items;
        if !more {
            return self.send_waiting(
                json!({ "type": "initial_chats", "chats": first_chats, "last_event_id": self.last_event_id }),
            ).await;
        }
        if !self.send_waiting(json!({ "type": "initial_chats_start", "total": total, "chats": first_chats, "last_event_id": self.last_event_id })).await {
            return false;
        }
        let mut page = 2;
        loop {
            let Ok(next) = chat_repo::list(&self.state.store, self.viewer(), &filter, page, CHUNK).await
            else {
                return self.error("unavailable", "the chat list cannot be loaded now");
            };
            let more = next.has_next();
            if !self
                .send_waiting(json!({ "type": "initial_chats_chunk", "chats": next.items }))
                .await
            {
                return false;
            }
            if !more {
                break;
            }
            page += 1;
        }
        self.send_waiting(json!({ "type": "initial_chats_end" })).await
    }

    /// Whether this user may see `event`; keeps the set of visible chats current on assignment changes.
    fn admit(&mut self, event: &StoredEvent) -> bool {
        if let Some(user_id) = event.user_id {
            if user_id != self.user.id.0 {
                return false;
            }
            if let Some(chat_id) = event.chat_id {
                match event.kind.as_str() {
                    "chat_added" => {
                        self.visible.insert(chat_id);
                    }
                    "chat_removed" => {
                        self.visible.remove(&chat_id);
                    }
                    _ => {}
                }
            }
            return true;
        }
        self.admin
            || event
                .chat_id
                .is_some_and(|chat_id| self.visible.contains(&chat_id))
    }

    /// The frame for `event` if this user should get it (and it is new to them); its text is built once per
    /// event, however many connections send it.
    fn frame_for(&mut self, event: &StoredEvent) -> Option<Message> {
        if event.seq.0 <= self.last_event_id || !self.admit(event) {
            return None;
        }
        self.last_event_id = event.seq.0;
        Some(Message::Text(Utf8Bytes::from(event.frame().to_owned())))
    }

    /// Sends a live event; a client whose queue is full is closed as too slow.
    fn deliver(&mut self, event: &StoredEvent) -> bool {
        match self.frame_for(event) {
            Some(body) => self.send_frame(body),
            None => true,
        }
    }

    async fn handle_text(&mut self, text: &str) -> bool {
        if text.len() > MAX_FRAME {
            return self.error("frame_too_large", "frames are limited to 64 KiB");
        }
        let Ok(request) = serde_json::from_str::<Value>(text) else {
            return self.error("invalid_json", "Invalid JSON format");
        };
        let Some(kind) = request.get("type").and_then(Value::as_str) else {
            return self.error("invalid_message", "Invalid message format: `type` is required");
        };
        match kind {
            "ping" => self.send(json!({ "type": "pong", "timestamp": request.get("timestamp").cloned().unwrap_or(Value::Null) })),
            "get_chat_messages" => self.get_chat_messages(&request).await,
            "mark_as_read" => self.mark_as_read(&request).await,
            "resume" => self.resume(&request).await,
            other => {
                let message = format!("Unknown message type: {}", other.chars().take(64).collect::<String>());
                self.error("unknown_type", &message)
            }
        }
    }

    /// The request's `chat_id`, or the outcome of telling the client it is missing.
    fn chat_id(&mut self, request: &Value) -> Result<i64, bool> {
        request
            .get("chat_id")
            .and_then(Value::as_i64)
            .ok_or_else(|| self.error("invalid_field", "chat_id (a number) is required"))
    }

    async fn get_chat_messages(&mut self, request: &Value) -> bool {
        let chat_id = match self.chat_id(request) {
            Ok(chat_id) => ChatId(chat_id),
            Err(open) => return open,
        };
        let limit = request
            .get("limit")
            .map_or(Some(50), Value::as_u64)
            .filter(|l| (1..=200).contains(l));
        let Some(limit) = limit else {
            return self.error("invalid_field", "limit must be a number from 1 to 200");
        };
        let store = self.state.store.clone();
        let Ok(Some(_)) = chat_repo::find_visible(&store, self.viewer(), chat_id).await else {
            return self.error("not_found", "Chat not found");
        };
        let before = match request.get("before") {
            None | Some(Value::Null) => None,
            Some(value) => match value.as_i64() {
                Some(id) => match message_repo::find_visible(&store, self.viewer(), MessageId(id)).await {
                    Ok(Some(anchor)) if anchor.chat_id == chat_id => Some(anchor),
                    _ => return self.error("invalid_field", "before must be a message of this chat"),
                },
                None => return self.error("invalid_field", "before must be a message id"),
            },
        };
        let Ok(timeline) = message_repo::timeline(&store, chat_id, before.as_ref(), limit).await else {
            return self.error("unavailable", "messages cannot be loaded now");
        };
        let mut messages = timeline.items;
        messages.reverse();
        self.send(json!({ "type": "chat_messages", "chat_id": chat_id, "messages": messages, "has_more": timeline.has_more }))
    }

    async fn mark_as_read(&mut self, request: &Value) -> bool {
        let chat_id = match self.chat_id(request) {
            Ok(chat_id) => chat_id,
            Err(open) => return open,
        };
        match self.state.inbox.mark_read(&self.user, ChatId(chat_id)).await {
            Ok(_) => self.send(json!({ "type": "chat_marked_as_read", "chat_id": chat_id })),
            Err(crm_core::CoreError::NotFound(_)) => self.error("not_found", "Chat not found"),
            Err(_) => self.error("unavailable", "the chat cannot be marked read now"),
        }
    }

    async fn resume(&mut self, request: &Value) -> bool {
        let Some(since) = request.get("since_event_id").and_then(Value::as_i64) else {
            return self.error("invalid_field", "since_event_id (a number) is required");
        };
        self.replay_since(since).await
    }

    /// Sends the events after `since` that this connection has not delivered live (those up to its watermark),
    /// then `resumed`; `resync_required` when they are no longer all in the log.
    async fn replay_since(&mut self, since: i64) -> bool {
        let store = self.state.store.clone();
        let oldest = store.first_seq().await.ok().flatten();
        let newest = store.last_seq().await.map(|seq| seq.0).unwrap_or(0);
        // Every event after `since` must still be in the log; an empty log after numbers were given keeps none.
        let gap_too_old = match oldest {
            Some(oldest) => since.saturating_add(1) < oldest.0,
            None => since < newest,
        };
        if gap_too_old || since > newest {
            return self.send(json!({ "type": "resync_required", "last_event_id": newest }));
        }
        let missed = if since < self.watermark {
            let Ok(missed) = store.read_after(EventSeq(since), MAX_REPLAY).await else {
                return self.error("unavailable", "events cannot be loaded now");
            };
            if missed.len() == MAX_REPLAY as usize && missed.last().is_some_and(|e| e.seq.0 < self.watermark)
            {
                return self.send(json!({ "type": "resync_required", "last_event_id": newest }));
            }
            missed
        } else {
            Vec::new()
        };
        let delivered = self.last_event_id;
        self.last_event_id = since;
        // Replay with the chats visible back then: undo, newest first, the assignment changes since.
        let current = self.visible.clone();
        let replayed: Vec<&StoredEvent> = missed.iter().filter(|e| e.seq.0 <= self.watermark).collect();
        for row in replayed
            .iter()
            .rev()
            .filter(|row| row.user_id == Some(self.user.id.0))
        {
            match (row.kind.as_str(), row.chat_id) {
                ("chat_added", Some(chat_id)) => {
                    self.visible.remove(&chat_id);
                }
                ("chat_removed", Some(chat_id)) => {
                    self.visible.insert(chat_id);
                }
                _ => {}
            }
        }
        for event in replayed {
            if let Some(body) = self.frame_for(event)
                && !self.send_frame_waiting(body).await
            {
                return false;
            }
        }
        self.visible = current;
        // Live events already delivered (or a client ahead of them) are not sent again.
        self.last_event_id = self.last_event_id.max(delivered).max(since);
        self.send(json!({ "type": "resumed", "last_event_id": self.last_event_id }))
    }
}

async fn session(state: AppState, user: User, credential: Credential, since: Option<i64>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (out, mut queued) = mpsc::channel::<Message>(state.settings.ws_queue.max(1));
    let (close, mut closing) = oneshot::channel::<CloseFrame>();
    let writer = tokio::spawn(async move {
        // A send blocked on a client that stopped reading must not hold the close back.
        let close = loop {
            let message = tokio::select! {
                biased;
                frame = &mut closing => break frame.ok(),
                next = queued.recv() => match next {
                    Some(message) => message,
                    None => break None,
                },
            };
            tokio::select! {
                biased;
                frame = &mut closing => break frame.ok(),
                sent = sink.send(message) => if sent.is_err() { break None },
            }
        };
        if let Some(frame) = close {
            // The client may still be stuck: give the close frame a bounded chance, then drop the connection.
            let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(Message::Close(Some(frame)))).await;
        }
    });
    // Subscribe before reading the chat list, so nothing delivered in between is missed: every event after
    // `last_event_id` arrives through `feed`, and everything up to it is in the list read next.
    let mut notices = state.relay.notices();
    let (watermark, mut feed) = state.relay.subscribe();
    let admin = user.role == Role::Admin;
    let last_event_id = watermark.0;
    let mut session = Session {
        state,
        user,
        admin,
        visible: HashSet::new(),
        watermark: last_event_id,
        last_event_id,
        out,
        close: Some(close),
    };
    session.reload_visible().await;
    let mut open = session.send_initial_chats().await;
    if let Some(since) = since
        && open
    {
        // Before the first live event, so the replay and the live events form one ordered sequence.
        open = session.replay_since(since).await;
    }
    let mut token_check =
        tokio::time::interval_at(tokio::time::Instant::now() + TOKEN_CHECK_EVERY, TOKEN_CHECK_EVERY);
    while open {
        open = tokio::select! {
            _ = token_check.tick() => session.keep_if_token_valid(&credential).await,
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Text(text))) => session.handle_text(text.as_str()).await,
                Some(Ok(Message::Binary(_))) => session.error("invalid_message", "send JSON text frames"),
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => false,
                Some(Ok(_)) => true,
            },
            event = feed.recv() => match event {
                Ok(event) => session.deliver(&event),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    session.close_with(CLOSE_TOO_SLOW, "too slow: reconnect and resume");
                    false
                }
                Err(broadcast::error::RecvError::Closed) => false,
            },
            notice = notices.recv() => match notice {
                Ok(Event::SessionsRevoked { user_id }) if user_id == session.user.id.0 => {
                    session.close_with(CLOSE_REVOKED, "session revoked");
                    false
                }
                Ok(Event::TokenRevoked { token_id, .. }) if token_id == credential.token_id => {
                    session.close_with(CLOSE_REVOKED, "session revoked");
                    false
                }
                Ok(Event::UserChanged { user_id }) if user_id == session.user.id.0 => {
                    session.reload_visible().await;
                    true
                }
                // Missed notices: the token is checked again now, and visibility follows the log.
                Err(broadcast::error::RecvError::Lagged(_)) => session.keep_if_token_valid(&credential).await,
                Ok(_) => true,
                Err(broadcast::error::RecvError::Closed) => false,
            },
        };
    }
    session.close_with(1000, "bye");
    drop(session);
    let _ = writer.await;
}

#[cfg(test)]
mod tests {
    use super::same_origin;

    #[test]
    fn an_origin_is_the_same_only_with_its_host_and_port() {
        assert!(same_origin("http://localhost:8000", "localhost:8000"));
        assert!(same_origin("https://crm.example.com", "crm.example.com"));
        assert!(same_origin("http://[::1]:8000", "[::1]:8000"));
        assert!(
            !same_origin("http://localhost:3000", "localhost:8000"),
            "another port"
        );
        assert!(!same_origin("https://crm.example.com", "crm.example.com:8000"));
        assert!(!same_origin("http://evil.example", "crm.example.com"));
        assert!(!same_origin("file://", "localhost"), "another scheme");
        assert!(!same_origin("null", "localhost"));
    }
}

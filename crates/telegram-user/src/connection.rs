//! `GrammersConnection`: a live connection of one authorised account. It owns the sender pool, the ordered
//! update stream (with its per-update checkpoints), a periodic session flush, and the requests the inbox makes
//! of a connected account (send, mark read, download, history).

use std::collections::VecDeque;
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use crm_core::inbound::InboundEvent;
use crm_core::outbound::{OutgoingMessage, SendError, SendFuture, SentMessage};
use crm_core::personal::{
    BoxFuture, Checkpoint, CollectScope, Connection, DownloadedFile, HistoryLimits, ReceivedUpdate, UserError,
};
use grammers_mtsender::{UpdatesConfiguration, UpdatesReceiver};
use grammers_session::Session as _;
use grammers_session::types::PeerInfo;
use grammers_session::updates::{State, UpdatesLike};
use grammers_tl_types as tl;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::warn;

use crate::checkpoint::Position;
use crate::errors::{invocation_to_send_error, map_invocation_error, to_send_error, upload_error};
use crate::files::{remote_file, too_large};
use crate::mapping::{self, PeerIndex};
use crate::outgoing::{
    SendRequest, build_send_request, input_channel, input_media, input_peer, message_id, parse_sent,
};
use crate::pool::Pool;
use crate::session::{DbSession, channel_dialog_id};

/// How often changed peers and update state are saved.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
/// Raw update batches buffered between the pool and the ordered stream.
const RELAY_CAPACITY: usize = 100;
/// Telegram's largest page of dialogs or messages.
const PAGE: u32 = 100;
/// History is filtered by scope per dialog; the messages of a chosen dialog are all wanted.
const EVERY_CHAT: CollectScope = CollectScope {
    include_groups: true,
    include_channels: true,
};

/// Messages, users and chats of any `messages.Messages` answer.
fn unpack_messages(
    answer: tl::enums::messages::Messages,
) -> (
    Vec<tl::enums::Message>,
    Vec<tl::enums::User>,
    Vec<tl::enums::Chat>,
) {
    match answer {
        tl::enums::messages::Messages::Messages(m) => (m.messages, m.users, m.chats),
        tl::enums::messages::Messages::Slice(m) => (m.messages, m.users, m.chats),
        tl::enums::messages::Messages::ChannelMessages(m) => (m.messages, m.users, m.chats),
        tl::enums::messages::Messages::NotModified(_) => (Vec::new(), Vec::new(), Vec::new()),
    }
}

fn raw_message_id(message: &tl::enums::Message) -> i32 {
    match message {
        tl::enums::Message::Empty(m) => m.id,
        tl::enums::Message::Message(m) => m.id,
        tl::enums::Message::Service(m) => m.id,
    }
}

fn raw_message_date(message: &tl::enums::Message) -> i32 {
    match message {
        tl::enums::Message::Empty(_) => 0,
        tl::enums::Message::Message(m) => m.date,
        tl::enums::Message::Service(m) => m.date,
    }
}

/// The message of a new-message update.
fn new_message(update: &tl::enums::Update) -> Option<&tl::types::Message> {
    let message = match update {
        tl::enums::Update::NewMessage(update) => &update.message,
        tl::enums::Update::NewChannelMessage(update) => &update.message,
        _ => return None,
    };
    match message {
        tl::enums::Message::Message(message) => Some(message),
        _ => None,
    }
}

struct Stream {
    receiver: UpdatesReceiver,
    buffer: VecDeque<(tl::enums::Update, State, Arc<PeerIndex>)>,
    /// Positions of updates taken but not handed out (mapped to nothing); they ride on the next checkpoint.
    pending: Position,
}

/// A connected personal account.
pub struct GrammersConnection {
    pool: Pool,
    session: Arc<DbSession>,
    stream: tokio::sync::Mutex<Stream>,
    scope: CollectScope,
    self_id: i64,
    gaps: mpsc::Sender<UpdatesLike>,
    /// The periodic flush and the update relay.
    tasks: [JoinHandle<()>; 2],
}

impl GrammersConnection {
    /// Builds the connection over a started pool whose raw updates arrive on `updates`: starts the ordered
    /// update stream (catching up from the session's update state) and the periodic flush.
    pub async fn start(
        pool: Pool,
        session: Arc<DbSession>,
        updates: mpsc::Receiver<UpdatesLike>,
        scope: CollectScope,
        self_id: i64,
    ) -> Result<Self, UserError> {
        // Our own sender in front of the stream lets `ping` report a possible gap (see `Connection::ping`).
        let (gaps, relayed) = mpsc::channel(RELAY_CAPACITY);
        let relay = gaps.clone();
        let relay_task = tokio::spawn(async move {
            let mut updates = updates;
            while let Some(received) = updates.recv().await {
                if relay.send(received).await.is_err() {
                    return;
                }
            }
            // The pool stopped: let the stream find out through a failing difference request.
            let _ = relay.send(UpdatesLike::ConnectionClosed).await;
        });
        let receiver = UpdatesReceiver::create(
            pool.handle.thin.clone(),
            Arc::clone(&pool.handle.session),
            relayed,
            UpdatesConfiguration { catch_up: true },
        )
        .await
        .map_err(|e| UserError::Other(format!("cannot start the update stream: {e}")))?;
        let flushed = Arc::clone(&session);
        let flusher = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(FLUSH_INTERVAL);
            loop {
                ticks.tick().await;
                if let Err(error) = flushed.flush().await {
                    warn!(%error, "saving the Telegram session failed");
                }
            }
        });
        Ok(Self {
            pool,
            session,
            stream: tokio::sync::Mutex::new(Stream {
                receiver,
                buffer: VecDeque::new(),
                pending: Position::default(),
            }),
            scope,
            self_id,
            gaps,
            tasks: [flusher, relay_task],
        })
    }

    async fn invoke<R: tl::RemoteCall>(&self, request: &R) -> Result<R::Return, UserError> {
        self.pool
            .client
            .invoke(request)
            .await
            .map_err(|e| map_invocation_error(&e))
    }

    fn resolve(&self, dialog_id: i64) -> Result<tl::enums::InputPeer, UserError> {
        input_peer(dialog_id, self.session.peer_by_dialog_id(dialog_id)?)
    }

    /// Whether `peer` came with the update's `batch`, is the account itself, or is in the session with what it
    /// takes to write to it (an access hash; basic groups need none).
    fn knows(&self, peer: &tl::enums::Peer, batch: &PeerIndex) -> Result<bool, UserError> {
        if batch.contains(peer) {
            return Ok(true);
        }
        let Some(dialog_id) = mapping::dialog_id(peer) else {
            return Ok(true);
        };
        if dialog_id == self.self_id {
            return Ok(true);
        }
        Ok(matches!(
            self.session.peer_by_dialog_id(dialog_id)?,
            Some(
                PeerInfo::User { auth: Some(_), .. }
                    | PeerInfo::Chat { .. }
                    | PeerInfo::Channel { auth: Some(_), .. }
            )
        ))
    }

    /// The peers to map `update` with, when it is a new message whose chat or sender neither came with its
    /// batch nor is in the session: Telegram's short updates (`updateShortMessage`, `updateShortChatMessage`)
    /// carry no users, and a client that does not know them must fetch them, or the chat stays nameless and
    /// cannot be answered (no access hash). The message is fetched again and its users and chats are cached.
    /// `None` when nothing was missing, the message is out of scope, or the fetch failed (the update is then
    /// mapped as it came, with a warning).
    async fn complete_peers(
        &self,
        update: &tl::enums::Update,
        batch: &PeerIndex,
    ) -> Result<Option<PeerIndex>, UserError> {
        let Some(message) = new_message(update) else {
            return Ok(None);
        };
        let mut complete = true;
        for peer in std::iter::once(&message.peer_id).chain(message.from_id.as_ref()) {
            complete &= self.knows(peer, batch)?;
        }
        // Out-of-scope chats are not delivered: fetching for them would only spend requests.
        if complete || mapping::map_update(update, batch, self.scope, self.self_id, Utc::now()).is_none() {
            return Ok(None);
        }
        let id = vec![tl::types::InputMessageId { id: message.id }.into()];
        let answer = match &message.peer_id {
            tl::enums::Peer::Channel(channel) => {
                // Channels have their own message ids, asked for with the channel's access hash.
                let known = channel_dialog_id(channel.channel_id)
                    .and_then(|dialog_id| self.resolve(dialog_id).ok())
                    .and_then(|peer| input_channel(&peer));
                let Some(channel) = known else {
                    return Ok(None);
                };
                self.invoke(&tl::functions::channels::GetMessages { channel, id })
                    .await
            }
            // Private chats and basic groups share the account's one message id space.
            tl::enums::Peer::User(_) | tl::enums::Peer::Chat(_) => {
                self.invoke(&tl::functions::messages::GetMessages { id }).await
            }
        };
        match answer {
            Ok(answer) => {
                let (_, users, chats) = unpack_messages(answer);
                self.session.cache_raw_peers(&users, &chats)?;
                let mut peers = batch.clone();
                peers.extend(&users, &chats);
                Ok(Some(peers))
            }
            Err(error) => {
                warn!(
                    %error,
                    message_id = message.id,
                    "fetching the unknown chat or sender of a new message failed; it is delivered without them"
                );
                Ok(None)
            }
        }
    }

    async fn next(&self) -> Result<ReceivedUpdate, UserError> {
        let mut stream = self.stream.lock().await;
        loop {
            // The update stays buffered while its peers are fetched, so a cancelled call loses nothing.
            let completed = match stream.buffer.front() {
                Some((update, _, peers)) => self.complete_peers(update, peers).await?,
                None => None,
            };
            if let Some(completed) = completed
                && let Some(front) = stream.buffer.front_mut()
            {
                front.2 = Arc::new(completed);
            }
            if let Some((update, state, peers)) = stream.buffer.pop_front() {
                stream.pending.merge(Position::of(&state));
                let mapped = mapping::map_update(&update, &peers, self.scope, self.self_id, Utc::now());
                if let Some(update) = mapped {
                    let checkpoint = std::mem::take(&mut stream.pending).to_checkpoint();
                    return Ok(ReceivedUpdate { update, checkpoint });
                }
                continue;
            }
            let (updates, users, chats) = stream
                .receiver
                .next()
                .await
                .map_err(|e| map_invocation_error(&e))?;
            // Gaps in channels can only be filled with their access hashes cached.
            self.session.cache_raw_peers(&users, &chats)?;
            let peers = Arc::new(PeerIndex::new(&users, &chats));
            stream.buffer.extend(
                updates
                    .into_iter()
                    .map(|(update, state)| (update, state, Arc::clone(&peers))),
            );
        }
    }

    async fn apply_checkpoint(&self, checkpoint: Checkpoint) -> Result<(), UserError> {
        for update in Position::from_checkpoint(checkpoint)?.updates() {
            self.session.set_update_state(update).await?;
        }
        Ok(())
    }

    async fn upload(
        &self,
        media: &crm_core::outbound::OutgoingMedia,
    ) -> Result<tl::enums::InputFile, UserError> {
        let mut stream = Cursor::new(media.bytes.as_slice());
        let uploaded = self
            .pool
            .client
            .upload_stream(&mut stream, media.bytes.len(), media.file_name.clone())
            .await
            .map_err(|e| upload_error(&e))?;
        Ok(uploaded.raw)
    }

    async fn send_message(&self, message: OutgoingMessage, random_id: i64) -> Result<SentMessage, SendError> {
        let peer = self.resolve(message.peer_id).map_err(to_send_error)?;
        let media = match &message.media {
            Some(media) => {
                let file = self.upload(media).await.map_err(to_send_error)?;
                Some(input_media(
                    &media.kind,
                    file,
                    &media.file_name,
                    &media.content_type,
                ))
            }
            None => None,
        };
        let request = build_send_request(peer, &message, random_id, media).map_err(to_send_error)?;
        let answer = match &request {
            SendRequest::Text(request) => self.pool.client.invoke(request).await,
            SendRequest::Media(request) => self.pool.client.invoke(request).await,
        }
        .map_err(|e| invocation_to_send_error(&e))?;
        parse_sent(&answer, random_id).ok_or_else(|| {
            // The message went out; retrying would be dropped as a repeat, so do not retry.
            SendError::Permanent("Telegram accepted the message but did not say its id".to_owned())
        })
    }

    async fn read(&self, peer_id: i64, max_id: i64) -> Result<(), UserError> {
        let peer = self.resolve(peer_id)?;
        let max_id = message_id(max_id)?;
        match input_channel(&peer) {
            Some(channel) => {
                self.invoke(&tl::functions::channels::ReadHistory { channel, max_id })
                    .await?;
            }
            None => {
                self.invoke(&tl::functions::messages::ReadHistory { peer, max_id })
                    .await?;
            }
        }
        Ok(())
    }

    async fn fetch_file(
        &self,
        peer_id: i64,
        telegram_message_id: i64,
        max_bytes: u64,
    ) -> Result<DownloadedFile, UserError> {
        let peer = self.resolve(peer_id)?;
        let id = message_id(telegram_message_id)?;
        let ids = vec![tl::types::InputMessageId { id }.into()];
        let answer = match input_channel(&peer) {
            Some(channel) => {
                self.invoke(&tl::functions::channels::GetMessages { channel, id: ids })
                    .await?
            }
            None => {
                self.invoke(&tl::functions::messages::GetMessages { id: ids })
                    .await?
            }
        };
        let (messages, _, _) = unpack_messages(answer);
        let media = messages
            .into_iter()
            .find_map(|message| match message {
                tl::enums::Message::Message(message) if message.id == id => message.media,
                _ => None,
            })
            .ok_or_else(|| {
                UserError::PeerUnavailable(format!("message {telegram_message_id} has no file to download"))
            })?;
        let file = remote_file(&media).ok_or_else(|| {
            UserError::PeerUnavailable(format!("message {telegram_message_id} has no downloadable file"))
        })?;
        file.check_size(max_bytes)?;
        let mut download = self.pool.client.iter_download(&file);
        let mut bytes = Vec::new();
        while let Some(chunk) = download.next().await.map_err(|e| map_invocation_error(&e))? {
            bytes.extend_from_slice(&chunk);
            let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
            if size > max_bytes {
                return Err(too_large(size, max_bytes));
            }
        }
        Ok(DownloadedFile {
            bytes,
            file_name: file.file_name,
            mime_type: file.mime_type,
        })
    }

    async fn dialogs(&self, wanted: u32) -> Result<Vec<(tl::enums::Peer, Arc<PeerIndex>)>, UserError> {
        let mut found = Vec::new();
        let mut offset_date = 0;
        let mut offset_id = 0;
        let mut offset_peer = tl::enums::InputPeer::Empty;
        while (found.len() as u64) < u64::from(wanted) {
            let limit = (wanted - found.len() as u32).min(PAGE);
            let answer = self
                .invoke(&tl::functions::messages::GetDialogs {
                    exclude_pinned: false,
                    folder_id: None,
                    offset_date,
                    offset_id,
                    offset_peer: offset_peer.clone(),
                    limit: i32::try_from(limit).unwrap_or(100),
                    hash: 0,
                })
                .await?;
            let (dialogs, messages, users, chats) = match answer {
                tl::enums::messages::Dialogs::Dialogs(d) => (d.dialogs, d.messages, d.users, d.chats),
                tl::enums::messages::Dialogs::Slice(d) => (d.dialogs, d.messages, d.users, d.chats),
                tl::enums::messages::Dialogs::NotModified(_) => break,
            };
            self.session.cache_raw_peers(&users, &chats)?;
            let peers = Arc::new(PeerIndex::new(&users, &chats));
            let page: Vec<tl::types::Dialog> = dialogs
                .into_iter()
                .filter_map(|dialog| match dialog {
                    tl::enums::Dialog::Dialog(dialog) => Some(dialog),
                    _ => None,
                })
                .collect();
            let Some(last) = page.last() else { break };
            let short = (page.len() as u32) < limit;
            offset_id = last.top_message;
            offset_date = messages
                .iter()
                .find(|message| raw_message_id(message) == last.top_message)
                .map_or(0, raw_message_date);
            offset_peer = mapping::dialog_id(&last.peer)
                .and_then(|id| self.resolve(id).ok())
                .unwrap_or(tl::enums::InputPeer::Empty);
            found.extend(page.into_iter().map(|dialog| (dialog.peer, Arc::clone(&peers))));
            if short || matches!(offset_peer, tl::enums::InputPeer::Empty) {
                break;
            }
        }
        found.truncate(usize::try_from(wanted).unwrap_or(usize::MAX));
        Ok(found)
    }

    async fn dialog_history(
        &self,
        peer: tl::enums::InputPeer,
        wanted: u32,
    ) -> Result<Vec<InboundEvent>, UserError> {
        let mut events = Vec::new();
        let mut offset_id = 0;
        let mut fetched: u32 = 0;
        while fetched < wanted {
            let limit = (wanted - fetched).min(PAGE);
            let answer = self
                .invoke(&tl::functions::messages::GetHistory {
                    peer: peer.clone(),
                    offset_id,
                    offset_date: 0,
                    add_offset: 0,
                    limit: i32::try_from(limit).unwrap_or(100),
                    max_id: 0,
                    min_id: 0,
                    hash: 0,
                })
                .await?;
            let (messages, users, chats) = unpack_messages(answer);
            if messages.is_empty() {
                break;
            }
            self.session.cache_raw_peers(&users, &chats)?;
            let peers = PeerIndex::new(&users, &chats);
            fetched += messages.len() as u32;
            let short = (messages.len() as u32) < limit;
            offset_id = messages.iter().map(raw_message_id).min().unwrap_or(0);
            events.extend(messages.iter().filter_map(|message| {
                match mapping::map_message(message, &peers, EVERY_CHAT, self.self_id, false) {
                    Some(event @ InboundEvent::NewMessage(_)) => Some(event),
                    _ => None,
                }
            }));
            if short || offset_id <= 1 {
                break;
            }
        }
        events.sort_by_key(|event| match event {
            InboundEvent::NewMessage(message) => message.telegram_message_id,
            _ => 0,
        });
        Ok(events)
    }

    async fn collect_history(
        &self,
        limits: HistoryLimits,
        scope: CollectScope,
    ) -> Result<Vec<InboundEvent>, UserError> {
        let mut events = Vec::new();
        for (peer, peers) in self.dialogs(limits.dialogs).await? {
            let chat_type = mapping::peer_chat_type(&peer, &peers);
            if !mapping::in_scope(&chat_type, scope) {
                continue;
            }
            let Some(dialog_id) = mapping::dialog_id(&peer) else {
                continue;
            };
            let Ok(input) = self.resolve(dialog_id) else {
                continue;
            };
            match self.dialog_history(input, limits.messages_per_dialog).await {
                Ok(found) => events.extend(found),
                // A chat that became private or inaccessible has no history to import; the others do.
                Err(UserError::PeerUnavailable(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(events)
    }
}

impl Drop for GrammersConnection {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.pool.handle.quit();
        let session = Arc::clone(&self.session);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = session.flush().await {
                    warn!(%error, "saving the Telegram session on disconnect failed");
                }
            });
        }
    }
}

impl Connection for GrammersConnection {
    fn next_update(&self) -> BoxFuture<'_, Result<ReceivedUpdate, UserError>> {
        Box::pin(self.next())
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            for task in &self.tasks {
                task.abort();
            }
            self.pool.stop().await;
            if let Err(error) = self.session.flush().await {
                warn!(%error, "saving the Telegram session on disconnect failed");
            }
        })
    }

    fn checkpoint(&self, checkpoint: Checkpoint) -> BoxFuture<'_, Result<(), UserError>> {
        Box::pin(self.apply_checkpoint(checkpoint))
    }

    /// `updates.getState` as the round trip; then the stream is told a gap may exist, so it asks Telegram for
    /// the difference (empty when nothing was missed) and delivers anything that did not arrive.
    fn ping(&self) -> BoxFuture<'_, Result<(), UserError>> {
        Box::pin(async move {
            self.invoke(&tl::functions::updates::GetState {}).await?;
            // A full relay already holds updates that will wake the stream; nothing is lost by skipping.
            let _ = self.gaps.try_send(UpdatesLike::ConnectionClosed);
            Ok(())
        })
    }

    fn send(&self, message: OutgoingMessage, random_id: i64) -> SendFuture<'_> {
        Box::pin(self.send_message(message, random_id))
    }

    fn mark_read(&self, peer_id: i64, max_id: i64) -> BoxFuture<'_, Result<(), UserError>> {
        Box::pin(self.read(peer_id, max_id))
    }

    fn download(
        &self,
        peer_id: i64,
        telegram_message_id: i64,
        max_bytes: u64,
    ) -> BoxFuture<'_, Result<DownloadedFile, UserError>> {
        Box::pin(self.fetch_file(peer_id, telegram_message_id, max_bytes))
    }

    fn history(
        &self,
        limits: HistoryLimits,
        scope: CollectScope,
    ) -> BoxFuture<'_, Result<Vec<InboundEvent>, UserError>> {
        Box::pin(self.collect_history(limits, scope))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::outgoing::tests::text;
    use crm_core::personal::PersonalUpdate;

    /// A connection whose update stream is fed by the test instead of the network.
    async fn fed_connection(
        scope: CollectScope,
    ) -> (
        GrammersConnection,
        mpsc::Sender<UpdatesLike>,
        Arc<crate::session::tests::MemoryVault>,
    ) {
        let vault = Arc::new(crate::session::tests::MemoryVault::default());
        let session = Arc::new(DbSession::fresh(
            vault.clone(),
            7,
            Some("127.0.0.1:9".parse().unwrap()),
        ));
        let mut pool = Pool::start(
            Arc::clone(&session),
            1,
            crate::gateway::GatewaySettings::default().connection_params(),
        );
        drop(pool.take_updates());
        let (sender, updates) = mpsc::channel(8);
        let connection =
            GrammersConnection::start(pool, session, updates, scope, crate::mapping::tests::SELF_ID)
                .await
                .unwrap();
        (connection, sender, vault)
    }

    #[tokio::test]
    async fn the_stream_maps_updates_in_order_with_checkpoints_that_cover_skipped_ones() {
        use crate::mapping::tests::{message, peer_user, user};

        let (connection, feed, vault) = fed_connection(CollectScope::default()).await;
        let in_group = message(2, tl::types::PeerChat { chat_id: 555 }.into(), "group chatter");
        let batch = tl::types::Updates {
            updates: vec![
                tl::types::UpdateNewMessage {
                    message: message(1, peer_user(42), "hello").into(),
                    pts: 5,
                    pts_count: 1,
                }
                .into(),
                tl::types::UpdateNewMessage {
                    message: in_group.into(),
                    pts: 6,
                    pts_count: 1,
                }
                .into(),
                tl::types::UpdateReadHistoryOutbox {
                    peer: peer_user(42),
                    max_id: 1,
                    pts: 7,
                    pts_count: 1,
                }
                .into(),
            ],
            users: vec![user(42, "Ann", None, Some("ann"))],
            chats: vec![],
            date: 1_700_000_000,
            seq: 0,
        };
        feed.send(UpdatesLike::Updates(batch.into())).await.unwrap();

        let first = connection.next_update().await.unwrap();
        match &first.update {
            PersonalUpdate::Inbound(InboundEvent::NewMessage(message)) => {
                assert_eq!(message.text.as_deref(), Some("hello"));
                assert_eq!(message.chat.username.as_deref(), Some("ann"));
            }
            other => panic!("{other:?}"),
        }
        let first_position = Position::from_checkpoint(first.checkpoint.clone().unwrap()).unwrap();
        assert_eq!(first_position.primary.map(|p| p.pts), Some(5));

        // The group message is out of scope: it is skipped, but its pts rides on the next checkpoint.
        let second = connection.next_update().await.unwrap();
        assert_eq!(
            second.update,
            PersonalUpdate::ReadOutbox {
                peer_id: 42,
                max_id: 1
            }
        );
        let second_position = Position::from_checkpoint(second.checkpoint.clone().unwrap()).unwrap();
        assert_eq!(second_position.primary.map(|p| p.pts), Some(7));

        // Peers that came with the updates are cached, so the chat can be written to.
        assert!(matches!(
            connection.resolve(42).unwrap(),
            tl::enums::InputPeer::User(_)
        ));

        connection.checkpoint(second.checkpoint.unwrap()).await.unwrap();
        assert_eq!(connection.session.updates_state().await.unwrap().pts, 7);
        connection.session.flush().await.unwrap();
        let stored: serde_json::Value = serde_json::from_slice(&vault.bytes(7).unwrap()).unwrap();
        assert_eq!(stored["updates"]["pts"], 7);
        assert!(
            stored["peers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|peer| peer["id"] == 42)
        );
    }

    #[tokio::test]
    async fn a_short_message_whose_sender_cannot_be_fetched_is_still_delivered() {
        let (connection, feed, _vault) = fed_connection(CollectScope::default()).await;
        let short = tl::types::UpdateShortMessage {
            out: false,
            mentioned: false,
            media_unread: false,
            silent: false,
            id: 9,
            user_id: 43,
            message: "first contact".to_owned(),
            pts: 1,
            pts_count: 1,
            date: 1_700_000_000,
            fwd_from: None,
            via_bot_id: None,
            reply_to: None,
            entities: None,
            ttl_period: None,
        };
        feed.send(UpdatesLike::Updates(tl::enums::Updates::UpdateShortMessage(
            short,
        )))
        .await
        .unwrap();

        // Nothing answers on this connection's port: the fetch of user 43 fails and the message comes as it is.
        let received = tokio::time::timeout(Duration::from_secs(30), connection.next_update())
            .await
            .expect("the update is not held back")
            .unwrap();
        match &received.update {
            PersonalUpdate::Inbound(InboundEvent::NewMessage(message)) => {
                assert_eq!(message.telegram_message_id, 9);
                assert_eq!(message.chat.peer_id, 43);
                assert_eq!(message.chat.first_name, None);
                assert_eq!(message.text.as_deref(), Some("first contact"));
            }
            other => panic!("{other:?}"),
        }
        assert!(received.checkpoint.is_some());
        assert!(connection.resolve(43).is_err());
    }

    #[tokio::test]
    async fn sending_to_an_unknown_chat_fails_permanently_without_a_request() {
        let (connection, _feed, _vault) = fed_connection(CollectScope::default()).await;
        let result = connection.send(text(4242, None), 1).await;
        assert!(matches!(result, Err(SendError::Permanent(_))), "{result:?}");
        assert!(matches!(
            connection.mark_read(4242, 1).await,
            Err(UserError::PeerUnavailable(_))
        ));
    }
}

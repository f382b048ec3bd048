//! The ordered update stream of a connection: raw updates relayed to grammers' gap-filling receiver (which asks
//! Telegram for the difference after a gap), mapped one at a time with a checkpoint covering every update taken
//! so far, and checkpoints turned back into the session's update state once the caller stored the update.

use std::collections::VecDeque;
use std::sync::Arc;

use chrono::Utc;
use crm_core::personal::{Checkpoint, ReceivedUpdate, UserError};
use grammers_mtsender::{UpdatesConfiguration, UpdatesReceiver};
use grammers_session::Session as _;
use grammers_session::types::PeerInfo;
use grammers_session::updates::{State, UpdatesLike};
use grammers_tl_types as tl;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::warn;

use super::GrammersConnection;
use super::rpc::unpack_messages;
use crate::checkpoint::Position;
use crate::errors::map_invocation_error;
use crate::mapping::{self, PeerIndex};
use crate::outgoing::input_channel;
use crate::pool::Pool;
use crate::session::channel_dialog_id;

/// Raw update batches buffered between the pool and the ordered stream.
const RELAY_CAPACITY: usize = 100;

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

/// Updates taken from grammers' receiver and not handed out yet.
pub(super) struct Stream {
    receiver: UpdatesReceiver,
    buffer: VecDeque<(tl::enums::Update, State, Arc<PeerIndex>)>,
    /// Positions of updates taken but not handed out (mapped to nothing); they ride on the next checkpoint.
    pending: Position,
}

/// A started stream, with the sender that can wake it and the task relaying the pool's raw updates.
pub(super) struct Started {
    /// The stream.
    pub stream: Stream,
    /// Sends into the stream's input: [`UpdatesLike::ConnectionClosed`] makes it ask for the difference.
    pub gaps: mpsc::Sender<UpdatesLike>,
    /// Relays the pool's raw updates into the stream.
    pub relay: JoinHandle<()>,
}

impl Stream {
    /// Starts the stream over `pool`, whose raw updates arrive on `updates`, catching up from the session's
    /// update state.
    pub(super) async fn start(
        pool: &Pool,
        updates: mpsc::Receiver<UpdatesLike>,
    ) -> Result<Started, UserError> {
        // Our own sender in front of the stream lets `ping` report a possible gap (see `Connection::ping`).
        let (gaps, relayed) = mpsc::channel(RELAY_CAPACITY);
        let forward = gaps.clone();
        let relay = tokio::spawn(async move {
            let mut updates = updates;
            while let Some(received) = updates.recv().await {
                if forward.send(received).await.is_err() {
                    return;
                }
            }
            // The pool stopped: let the stream find out through a failing difference request.
            let _ = forward.send(UpdatesLike::ConnectionClosed).await;
        });
        let receiver = UpdatesReceiver::create(
            pool.handle.thin.clone(),
            Arc::clone(&pool.handle.session),
            relayed,
            UpdatesConfiguration { catch_up: true },
        )
        .await
        .map_err(|e| UserError::Other(format!("cannot start the update stream: {e}")))?;
        Ok(Started {
            stream: Self {
                receiver,
                buffer: VecDeque::new(),
                pending: Position::default(),
            },
            gaps,
            relay,
        })
    }
}

impl GrammersConnection {
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
                self.call(&tl::functions::channels::GetMessages { channel, id })
                    .await
            }
            // Private chats and basic groups share the account's one message id space.
            tl::enums::Peer::User(_) | tl::enums::Peer::Chat(_) => {
                self.call(&tl::functions::messages::GetMessages { id }).await
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

    /// The next update that maps to an event, with the checkpoint of every update taken up to it. It waits for
    /// as long as Telegram sends nothing, so it has no timeout: the watchdog's bounded `ping` finds a dead
    /// connection instead.
    pub(super) async fn next(&self) -> Result<ReceivedUpdate, UserError> {
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
                if let Some(event) = mapped {
                    let checkpoint = std::mem::take(&mut stream.pending).to_checkpoint();
                    return Ok(ReceivedUpdate { event, checkpoint });
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

    /// Makes `checkpoint` the session's update state, so a reconnect resumes after it.
    pub(super) async fn apply_checkpoint(&self, checkpoint: Checkpoint) -> Result<(), UserError> {
        for update in Position::from_checkpoint(checkpoint)?.updates() {
            self.session.set_update_state(update).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use crm_core::ids::{PeerId, TelegramMessageId};
    use crm_core::inbound::InboundEvent;
    use crm_core::personal::{CollectScope, Connection};

    use super::*;
    use crate::connection::tests::fed_connection;
    use crate::mapping::fixtures::{message, peer_user, user};

    #[tokio::test]
    async fn the_stream_maps_updates_in_order_with_checkpoints_that_cover_skipped_ones() {
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
        match &first.event {
            InboundEvent::NewMessage(message) => {
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
            second.event,
            InboundEvent::ReadByPeer {
                peer_id: PeerId(42),
                max_id: TelegramMessageId(1)
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
        let stored: serde_json::Value =
            serde_json::from_slice(&vault.bytes(crm_core::ids::AccountId(7)).unwrap()).unwrap();
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
        match &received.event {
            InboundEvent::NewMessage(message) => {
                assert_eq!(message.telegram_message_id, TelegramMessageId(9));
                assert_eq!(message.chat.peer_id, PeerId(43));
                assert_eq!(message.chat.first_name, None);
                assert_eq!(message.text.as_deref(), Some("first contact"));
            }
            other => panic!("{other:?}"),
        }
        assert!(received.checkpoint.is_some());
        assert!(connection.resolve(43).is_err());
    }
}

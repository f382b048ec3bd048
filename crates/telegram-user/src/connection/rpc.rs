//! The calls a connected account makes of Telegram: send (uploading media first), mark read, download a file,
//! and import recent history. Each request is bounded by the request timeout, each chunk of a download too, and
//! a whole upload or download by the transfer timeout (see [`crate::GatewaySettings`]).

use std::io::Cursor;
use std::sync::Arc;

use chrono::Utc;
use crm_core::ids::{PeerId, TelegramMessageId};
use crm_core::inbound::InboundEvent;
use crm_core::outbound::{DownloadedFile, OutgoingMedia, OutgoingMessage, SendError, SentMessage};
use crm_core::personal::{CollectScope, HistoryLimits, UserError};
use grammers_tl_types as tl;

use super::GrammersConnection;
use crate::errors::{map_invocation_error, to_send_error, upload_error};
use crate::files::{remote_file, too_large};
use crate::mapping::{self, PeerIndex};
use crate::outgoing::{
    SendRequest, build_send_request, input_channel, input_media, message_id, send_outcome,
};
use crate::pool::{bounded, timed_out};

/// Telegram's largest page of dialogs or messages.
const PAGE: u32 = 100;
/// History is filtered by scope per dialog; the messages of a chosen dialog are all wanted.
const EVERY_CHAT: CollectScope = CollectScope {
    include_groups: true,
    include_channels: true,
};

/// Messages, users and chats of any `messages.Messages` answer.
pub(super) fn unpack_messages(
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

fn page_limit(limit: u32) -> i32 {
    i32::try_from(limit).unwrap_or(100)
}

impl GrammersConnection {
    /// Invokes `request` through the pool's bounded path; a timeout is a [`UserError::Network`].
    pub(super) async fn call<R: tl::RemoteCall>(&self, request: &R) -> Result<R::Return, UserError> {
        self.pool
            .invoke(request)
            .await
            .map_err(|e| map_invocation_error(&e))
    }

    async fn upload(&self, media: &OutgoingMedia) -> Result<tl::enums::InputFile, UserError> {
        let mut stream = Cursor::new(media.bytes.as_slice());
        let upload = self
            .pool
            .client
            .upload_stream(&mut stream, media.bytes.len(), media.file_name.clone());
        let uploaded = bounded(self.pool.timeouts.transfer, upload)
            .await
            .map_err(|e| upload_error(&e))?;
        Ok(uploaded.raw)
    }

    /// Sends `message` with `random_id`. Every failure to get an answer (timeout, lost connection, also during
    /// the upload) is transient: the retry carries the same `random_id`, so Telegram drops it if the first
    /// attempt went through (see [`send_outcome`]).
    pub(super) async fn send_message(
        &self,
        message: OutgoingMessage,
        random_id: i64,
    ) -> Result<SentMessage, SendError> {
        let peer = self.resolve(message.peer_id.0).map_err(to_send_error)?;
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
            SendRequest::Text(request) => self.pool.invoke(request).await,
            SendRequest::Media(request) => self.pool.invoke(request).await,
        };
        send_outcome(answer, random_id, Utc::now())
    }

    /// Marks the chat read up to `max_id`.
    pub(super) async fn read(&self, peer_id: PeerId, max_id: TelegramMessageId) -> Result<(), UserError> {
        let peer = self.resolve(peer_id.0)?;
        let max_id = message_id(max_id)?;
        match input_channel(&peer) {
            Some(channel) => {
                self.call(&tl::functions::channels::ReadHistory { channel, max_id })
                    .await?;
            }
            None => {
                self.call(&tl::functions::messages::ReadHistory { peer, max_id })
                    .await?;
            }
        }
        Ok(())
    }

    /// Downloads the file of a message, fetched again for a fresh file reference. Each chunk is bounded by the
    /// request timeout and the whole download by the transfer timeout.
    pub(super) async fn fetch_file(
        &self,
        peer_id: PeerId,
        telegram_message_id: TelegramMessageId,
        max_bytes: u64,
    ) -> Result<DownloadedFile, UserError> {
        let peer = self.resolve(peer_id.0)?;
        let id = message_id(telegram_message_id)?;
        let ids = vec![tl::types::InputMessageId { id }.into()];
        let answer = match input_channel(&peer) {
            Some(channel) => {
                self.call(&tl::functions::channels::GetMessages { channel, id: ids })
                    .await?
            }
            None => {
                self.call(&tl::functions::messages::GetMessages { id: ids })
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
        let timeouts = self.pool.timeouts;
        let transfer = async {
            let mut download = self.pool.client.iter_download(&file);
            let mut bytes = Vec::new();
            while let Some(chunk) = bounded(timeouts.request, download.next())
                .await
                .map_err(|e| map_invocation_error(&e))?
            {
                bytes.extend_from_slice(&chunk);
                let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
                if size > max_bytes {
                    return Err(too_large(size, max_bytes));
                }
            }
            Ok(bytes)
        };
        let bytes = tokio::time::timeout(timeouts.transfer, transfer)
            .await
            .map_err(|_| UserError::Network(timed_out(timeouts.transfer).to_string()))??;
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
                .call(&tl::functions::messages::GetDialogs {
                    exclude_pinned: false,
                    folder_id: None,
                    offset_date,
                    offset_id,
                    offset_peer: offset_peer.clone(),
                    limit: page_limit(limit),
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
                .call(&tl::functions::messages::GetHistory {
                    peer: peer.clone(),
                    offset_id,
                    offset_date: 0,
                    add_offset: 0,
                    limit: page_limit(limit),
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
            _ => TelegramMessageId(0),
        });
        Ok(events)
    }

    /// The recent messages of the most recent dialogs in `scope`, oldest first within each dialog.
    pub(super) async fn collect_history(
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::Duration;

    use crm_core::personal::Connection;

    use super::*;
    use crate::connection::tests::{fed_connection, fed_connection_with};
    use crate::gateway::GatewaySettings;
    use crate::outgoing::tests::text;

    #[tokio::test]
    async fn sending_to_an_unknown_chat_fails_permanently_without_a_request() {
        let (connection, _feed, _vault) = fed_connection(CollectScope::default()).await;
        let result = connection.send(text(4242, None), 1).await;
        assert!(matches!(result, Err(SendError::Permanent(_))), "{result:?}");
        assert!(matches!(
            connection.mark_read(PeerId(4242), TelegramMessageId(1)).await,
            Err(UserError::PeerUnavailable(_))
        ));
    }

    #[tokio::test]
    async fn a_call_telegram_never_answers_times_out() {
        // A listener that accepts connections and never answers: requests are written and then hang.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = silent.local_addr().unwrap();
        let accepting = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = silent.accept().await {
                held.push(socket);
            }
        });
        let settings = GatewaySettings {
            dc_override: Some(address),
            request_timeout: Duration::from_millis(300),
            ..GatewaySettings::default()
        };
        let (connection, _feed, _vault) = fed_connection_with(CollectScope::default(), &settings).await;
        let started = std::time::Instant::now();
        // Basic groups need no access hash, so the request is made.
        let read = connection.mark_read(PeerId(-555), TelegramMessageId(1)).await;
        assert!(
            matches!(&read, Err(UserError::Network(reason)) if reason.contains("did not answer")),
            "{read:?}"
        );
        let sent = connection.send(text(-555, None), 7).await;
        assert!(matches!(sent, Err(SendError::Transient(_))), "{sent:?}");
        assert!(started.elapsed() < Duration::from_secs(20));
        accepting.abort();
    }
}

//! Raw MTProto updates and messages (`grammers_tl_types`) to crm-core's [`InboundEvent`]s, named with the users
//! and chats Telegram sent alongside. This module maps messages and updates and assembles their
//! [`MessageMetadata`]; `peers` knows who and where, `content` what a message carries, `reactions` its
//! reactions. Chats outside the collect scope map to nothing; service messages to [`InboundEvent::Ignored`].

mod content;
#[cfg(test)]
pub(crate) mod fixtures;
#[cfg(test)]
mod fuzz;
mod peers;
mod reactions;

use chrono::{DateTime, Utc};
use crm_core::ids::{PeerId, TelegramMessageId};
use crm_core::inbound::{InboundEvent, InboundMessage};
use crm_core::message::{Direction, MessageType};
use crm_core::metadata::{ContentDetails, MessageMetadata};
use crm_core::personal::{CollectScope, Profile};
use grammers_tl_types as tl;

pub use content::{document_file_name, largest_photo_size};
pub use peers::{PeerIndex, dialog_id, in_scope, peer_chat_type};

use crate::session::channel_dialog_id;
use content::{entities, media_content};
use peers::{chat_ref, forward_origin, message_sender, peer_out_of_scope};
use reactions::{map_reactions, record_reactions};

fn non_empty(value: &Option<String>) -> Option<String> {
    value.as_ref().filter(|s| !s.is_empty()).cloned()
}

fn non_empty_str(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

fn date(seconds: i32) -> DateTime<Utc> {
    DateTime::from_timestamp(i64::from(seconds), 0).unwrap_or(DateTime::UNIX_EPOCH)
}

fn message_ids(ids: &[i32]) -> Vec<TelegramMessageId> {
    ids.iter().map(|&id| TelegramMessageId(i64::from(id))).collect()
}

/// Maps one message to an event. `edited` makes it an [`InboundEvent::EditedMessage`]. `self_id` is the
/// account's own user id (the author of its outgoing private messages).
pub fn map_message(
    message: &tl::enums::Message,
    peers: &PeerIndex,
    scope: CollectScope,
    self_id: i64,
    edited: bool,
) -> Option<InboundEvent> {
    match message {
        tl::enums::Message::Empty(_) => None,
        tl::enums::Message::Service(service) => {
            let chat = chat_ref(&service.peer_id, peers, service.post)?;
            in_scope(&chat.chat_type, scope).then(|| InboundEvent::Ignored {
                kind: "message_service".to_owned(),
            })
        }
        tl::enums::Message::Message(message) => {
            let mapped = map_plain_message(message, peers, scope, self_id)?;
            Some(if edited {
                InboundEvent::EditedMessage(mapped)
            } else {
                InboundEvent::NewMessage(mapped)
            })
        }
    }
}

/// The forum topic or comment thread of a message: its first message, named by `reply_to_top_id`, or by the
/// message replied to when that is a forum topic's first message.
fn thread_id(reply_to: Option<&tl::enums::MessageReplyHeader>) -> Option<i64> {
    match reply_to {
        Some(tl::enums::MessageReplyHeader::Header(header)) => header
            .reply_to_top_id
            .or(header.reply_to_msg_id.filter(|_| header.forum_topic))
            .map(i64::from),
        _ => None,
    }
}

/// The extras of `message`, in the same shape a bot's message gets.
fn metadata(
    message: &tl::types::Message,
    peers: &PeerIndex,
    details: Option<ContentDetails>,
) -> MessageMetadata {
    let mut metadata = MessageMetadata {
        forward_origin: message
            .fwd_from
            .as_ref()
            .and_then(|header| forward_origin(header, peers)),
        entities: message.entities.as_deref().map(entities).unwrap_or_default(),
        media_group_id: message.grouped_id.map(|id| id.to_string()),
        thread_id: thread_id(message.reply_to.as_ref()),
        author_signature: message.post_author.as_deref().and_then(non_empty_str),
        via_bot_id: message.via_bot_id,
        content: details,
        ..MessageMetadata::default()
    };
    if let Some(reactions) = &message.reactions {
        record_reactions(&mut metadata, reactions);
    }
    metadata
}

fn map_plain_message(
    message: &tl::types::Message,
    peers: &PeerIndex,
    scope: CollectScope,
    self_id: i64,
) -> Option<InboundMessage> {
    let chat = chat_ref(&message.peer_id, peers, message.post)?;
    if !in_scope(&chat.chat_type, scope) {
        return None;
    }
    let sender = message_sender(
        message.from_id.as_ref(),
        &chat,
        &message.peer_id,
        message.out,
        self_id,
        peers,
    );
    let content = media_content(message.media.as_ref());
    let body = non_empty_str(&message.message);
    let (text, caption) = match content.kind {
        MessageType::Text => (body, None),
        _ => (None, body),
    };
    let reply_to_telegram_id = match &message.reply_to {
        Some(tl::enums::MessageReplyHeader::Header(header)) => {
            header.reply_to_msg_id.map(|id| TelegramMessageId(i64::from(id)))
        }
        _ => None,
    };
    Some(InboundMessage {
        chat,
        telegram_message_id: TelegramMessageId(i64::from(message.id)),
        direction: if message.out {
            Direction::Outbound
        } else {
            Direction::Inbound
        },
        message_type: content.kind,
        text,
        caption,
        sender,
        reply_to_telegram_id,
        date: date(message.date),
        edited_at: message.edit_date.map(date),
        media: content.media,
        metadata: metadata(message, peers, content.details),
    })
}

/// Maps one update from the update stream. `now` dates reactions Telegram sends without a date.
pub fn map_update(
    update: &tl::enums::Update,
    peers: &PeerIndex,
    scope: CollectScope,
    self_id: i64,
    now: DateTime<Utc>,
) -> Option<InboundEvent> {
    use tl::enums::Update as U;
    let channel = |channel_id| tl::enums::Peer::Channel(tl::types::PeerChannel { channel_id });
    match update {
        U::NewMessage(u) => map_message(&u.message, peers, scope, self_id, false),
        U::NewChannelMessage(u) => map_message(&u.message, peers, scope, self_id, false),
        U::EditMessage(u) => map_message(&u.message, peers, scope, self_id, true),
        U::EditChannelMessage(u) => map_message(&u.message, peers, scope, self_id, true),
        // grammers turns the `pts` of our own requests (read history, ...) into deletions of nothing.
        U::DeleteMessages(u) if u.messages.is_empty() => None,
        U::DeleteMessages(u) => Some(InboundEvent::Deleted {
            peer_id: None,
            telegram_message_ids: message_ids(&u.messages),
        }),
        U::DeleteChannelMessages(u) if u.messages.is_empty() => None,
        U::DeleteChannelMessages(u) => {
            if peer_out_of_scope(&channel(u.channel_id), peers, scope) {
                return None;
            }
            Some(InboundEvent::Deleted {
                peer_id: Some(PeerId(channel_dialog_id(u.channel_id)?)),
                telegram_message_ids: message_ids(&u.messages),
            })
        }
        U::ReadHistoryOutbox(u) => {
            if peer_out_of_scope(&u.peer, peers, scope) {
                return None;
            }
            Some(InboundEvent::ReadByPeer {
                peer_id: PeerId(dialog_id(&u.peer)?),
                max_id: TelegramMessageId(i64::from(u.max_id)),
            })
        }
        U::ReadChannelOutbox(u) => {
            if peer_out_of_scope(&channel(u.channel_id), peers, scope) {
                return None;
            }
            Some(InboundEvent::ReadByPeer {
                peer_id: PeerId(channel_dialog_id(u.channel_id)?),
                max_id: TelegramMessageId(i64::from(u.max_id)),
            })
        }
        U::MessageReactions(u) => map_reactions(u, peers, scope, now),
        // The owner blocked or unblocked someone (from any device): the chat shows it, as a bot's does.
        U::PeerBlocked(u) => {
            let chat = chat_ref(&u.peer_id, peers, false)?;
            in_scope(&chat.chat_type, scope).then_some(InboundEvent::MembershipChanged {
                chat,
                blocked: u.blocked,
                date: now,
            })
        }
        _ => None,
    }
}

/// The profile of the account's own user; Telegram gives the phone without `+`.
pub fn profile_from_user(user: &tl::types::User) -> Profile {
    Profile {
        telegram_user_id: user.id,
        first_name: non_empty(&user.first_name),
        last_name: non_empty(&user.last_name),
        username: non_empty(&user.username),
        phone_number: non_empty(&user.phone).map(|phone| {
            if phone.starts_with('+') {
                phone
            } else {
                format!("+{phone}")
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::mapping::fixtures::*;
    use crm_core::chat::ChatType;
    use crm_core::inbound::Sender;
    use crm_core::metadata::{ForwardOrigin, OriginUser};

    #[test]
    fn a_private_incoming_text_names_chat_and_sender() {
        let mut raw = message(5, peer_user(ANN), "hi there");
        raw.reply_to = Some(reply_header(Some(4), None, false));
        let mapped = inbound(&new_message(raw));
        assert_eq!(mapped.chat.peer_id, PeerId(ANN));
        assert_eq!(mapped.chat.chat_type, ChatType::Private);
        assert_eq!(mapped.chat.first_name.as_deref(), Some("Ann"));
        assert_eq!(mapped.chat.username.as_deref(), Some("ann"));
        assert_eq!(mapped.telegram_message_id, TelegramMessageId(5));
        assert_eq!(mapped.direction, Direction::Inbound);
        assert_eq!(mapped.message_type, MessageType::Text);
        assert_eq!(mapped.text.as_deref(), Some("hi there"));
        assert_eq!(mapped.caption, None);
        assert_eq!(
            mapped.sender,
            Some(Sender {
                id: ANN,
                name: Some("Ann Lee".into()),
                username: Some("ann".into())
            })
        );
        assert_eq!(mapped.reply_to_telegram_id, Some(TelegramMessageId(4)));
        assert_eq!(mapped.date.timestamp(), 1_700_000_000);
        assert_eq!(mapped.edited_at, None);
        assert_eq!(mapped.metadata, MessageMetadata::default());
    }

    #[test]
    fn an_outgoing_message_from_another_device_is_outbound_and_ours() {
        let mut raw = message(6, peer_user(ANN), "sent from the phone");
        raw.out = true;
        let mapped = inbound(&new_message(raw));
        assert_eq!(mapped.direction, Direction::Outbound);
        assert_eq!(mapped.chat.peer_id, PeerId(ANN));
        assert_eq!(mapped.sender.map(|s| s.id), Some(SELF_ID));
    }

    #[test]
    fn edits_carry_their_edit_date() {
        let mut raw = message(14, peer_user(ANN), "fixed");
        raw.edit_date = Some(1_700_000_100);
        let update: tl::enums::Update = tl::types::UpdateEditMessage {
            message: raw.into(),
            pts: 2,
            pts_count: 1,
        }
        .into();
        match map(&update, all()) {
            Some(InboundEvent::EditedMessage(message)) => {
                assert_eq!(message.text.as_deref(), Some("fixed"));
                assert_eq!(message.edited_at.map(|d| d.timestamp()), Some(1_700_000_100));
            }
            other => panic!("not an edit: {other:?}"),
        }
    }

    #[test]
    fn deletions_and_reads() {
        let private: tl::enums::Update = tl::types::UpdateDeleteMessages {
            messages: vec![3, 4],
            pts: 3,
            pts_count: 2,
        }
        .into();
        assert_eq!(
            map(&private, CollectScope::default()),
            Some(InboundEvent::Deleted {
                peer_id: None,
                telegram_message_ids: vec![TelegramMessageId(3), TelegramMessageId(4)]
            })
        );
        let channel: tl::enums::Update = tl::types::UpdateDeleteChannelMessages {
            channel_id: SUPERGROUP,
            messages: vec![9],
            pts: 3,
            pts_count: 1,
        }
        .into();
        assert_eq!(
            map(&channel, all()),
            Some(InboundEvent::Deleted {
                peer_id: Some(PeerId(-1_000_000_000_777)),
                telegram_message_ids: vec![TelegramMessageId(9)]
            })
        );
        assert_eq!(map(&channel, CollectScope::default()), None);
        let nothing: tl::enums::Update = tl::types::UpdateDeleteMessages {
            messages: vec![],
            pts: 4,
            pts_count: 1,
        }
        .into();
        assert_eq!(map(&nothing, all()), None);
        let read: tl::enums::Update = tl::types::UpdateReadHistoryOutbox {
            peer: peer_user(ANN),
            max_id: 20,
            pts: 4,
            pts_count: 1,
        }
        .into();
        assert_eq!(
            map(&read, CollectScope::default()),
            Some(InboundEvent::ReadByPeer {
                peer_id: PeerId(ANN),
                max_id: TelegramMessageId(20)
            })
        );
        let read_channel: tl::enums::Update = tl::types::UpdateReadChannelOutbox {
            channel_id: SUPERGROUP,
            max_id: 21,
        }
        .into();
        assert_eq!(
            map(&read_channel, all()),
            Some(InboundEvent::ReadByPeer {
                peer_id: PeerId(-1_000_000_000_777),
                max_id: TelegramMessageId(21)
            })
        );
    }

    #[test]
    fn blocking_a_peer_marks_its_chat_as_a_bot_block_does() {
        for blocked in [true, false] {
            let update: tl::enums::Update = tl::types::UpdatePeerBlocked {
                blocked,
                blocked_my_stories_from: false,
                peer_id: peer_user(ANN),
            }
            .into();
            let Some(InboundEvent::MembershipChanged {
                chat, blocked: got, ..
            }) = map(&update, all())
            else {
                panic!("a block maps to a membership change");
            };
            assert_eq!(
                (chat.peer_id, chat.chat_type, got),
                (PeerId(ANN), ChatType::Private, blocked)
            );
            assert_eq!(chat.first_name.as_deref(), Some("Ann"));
        }
    }

    #[test]
    fn service_messages_are_ignored_and_other_updates_dropped() {
        let service: tl::enums::Message = tl::types::MessageService {
            out: false,
            mentioned: false,
            media_unread: false,
            reactions_are_possible: false,
            silent: false,
            post: false,
            legacy: false,
            id: 18,
            from_id: Some(peer_user(ANN)),
            peer_id: tl::types::PeerChat { chat_id: GROUP }.into(),
            saved_peer_id: None,
            reply_to: None,
            date: 1,
            action: tl::enums::MessageAction::PinMessage,
            reactions: None,
            ttl_period: None,
        }
        .into();
        let update: tl::enums::Update = tl::types::UpdateNewMessage {
            message: service,
            pts: 7,
            pts_count: 1,
        }
        .into();
        assert_eq!(
            map(&update, all()),
            Some(InboundEvent::Ignored {
                kind: "message_service".into()
            })
        );
        assert_eq!(map(&update, CollectScope::default()), None);
        assert_eq!(map(&tl::enums::Update::LoginToken, all()), None);
    }

    #[test]
    fn forwards_and_albums_land_in_metadata() {
        let mut raw = message(20, peer_user(ANN), "fwd");
        raw.grouped_id = Some(123);
        raw.fwd_from = Some(
            tl::types::MessageFwdHeader {
                imported: false,
                saved_out: false,
                from_id: Some(peer_user(77)),
                from_name: None,
                date: 5,
                channel_post: None,
                post_author: None,
                saved_from_peer: None,
                saved_from_msg_id: None,
                saved_from_id: None,
                saved_from_name: None,
                saved_date: None,
                psa_type: None,
            }
            .into(),
        );
        let mapped = inbound(&new_message(raw));
        assert_eq!(mapped.metadata.media_group_id.as_deref(), Some("123"));
        // User 77 did not come with the update: the origin names the id only.
        assert_eq!(
            mapped.metadata.forward_origin,
            Some(ForwardOrigin::User {
                date: 5,
                sender_user: OriginUser {
                    id: 77,
                    first_name: None,
                    last_name: None,
                    username: None
                }
            })
        );
    }

    fn reply_header(
        reply_to_msg_id: Option<i32>,
        reply_to_top_id: Option<i32>,
        forum_topic: bool,
    ) -> tl::enums::MessageReplyHeader {
        tl::types::MessageReplyHeader {
            reply_to_scheduled: false,
            forum_topic,
            quote: false,
            reply_to_ephemeral: false,
            reply_to_msg_id,
            reply_to_peer_id: None,
            reply_from: None,
            reply_media: None,
            reply_to_top_id,
            quote_text: None,
            quote_entities: None,
            quote_offset: None,
            todo_item_id: None,
            poll_option: None,
        }
        .into()
    }

    #[test]
    fn threads_signatures_and_inline_bots_land_in_metadata() {
        let in_supergroup = |id: i32, header: tl::enums::MessageReplyHeader| {
            let mut raw = message(id, peer_channel(SUPERGROUP), "in a thread");
            raw.from_id = Some(peer_user(ANN));
            raw.reply_to = Some(header);
            let update: tl::enums::Update = tl::types::UpdateNewChannelMessage {
                message: raw.into(),
                pts: 9,
                pts_count: 1,
            }
            .into();
            inbound(&update)
        };
        let reply_in_thread = in_supergroup(30, reply_header(Some(29), Some(10), false));
        assert_eq!(reply_in_thread.metadata.thread_id, Some(10));
        assert_eq!(reply_in_thread.reply_to_telegram_id, Some(TelegramMessageId(29)));
        // A message in a forum topic answers the topic's first message, which is the thread.
        let in_topic = in_supergroup(31, reply_header(Some(10), None, true));
        assert_eq!(in_topic.metadata.thread_id, Some(10));
        let plain_reply = in_supergroup(32, reply_header(Some(29), None, false));
        assert_eq!(plain_reply.metadata.thread_id, None);

        let mut post = message(33, peer_channel(CHANNEL), "breaking");
        post.post = true;
        post.post_author = Some("Eve".into());
        post.via_bot_id = Some(99);
        let update: tl::enums::Update = tl::types::UpdateNewChannelMessage {
            message: post.into(),
            pts: 10,
            pts_count: 1,
        }
        .into();
        let mapped = inbound(&update);
        assert_eq!(mapped.metadata.author_signature.as_deref(), Some("Eve"));
        assert_eq!(mapped.metadata.via_bot_id, Some(99));
    }

    #[test]
    fn the_profile_gets_a_plus_on_its_phone() {
        let tl::enums::User::User(raw) = user(SELF_ID, "Owner", None, Some("me")) else {
            panic!()
        };
        let profile = profile_from_user(&raw);
        assert_eq!(profile.telegram_user_id, SELF_ID);
        assert_eq!(profile.phone_number.as_deref(), Some("+15550001"));
        assert_eq!(profile.username.as_deref(), Some("me"));
    }
}

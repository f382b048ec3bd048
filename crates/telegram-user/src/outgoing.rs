//! Requests the inbox makes of Telegram, built as pure values: the peer to address, the media to upload as,
//! the `messages.sendMessage`/`sendMedia` request carrying our own `random_id`, and the outcome of a send read
//! back from Telegram's answer (or failure).

use chrono::{DateTime, Utc};
use crm_core::ids::TelegramMessageId;
use crm_core::message::MessageType;
use crm_core::outbound::{OutgoingMessage, SendError, SentMessage};
use crm_core::personal::UserError;
use grammers_mtsender::InvocationError;
use grammers_session::types::PeerInfo;
use grammers_tl_types as tl;

use crate::errors::invocation_to_send_error;

/// The Telegram peer to address for a Bot API dialog id, from the session's cache. Basic groups need no
/// access hash, so they work uncached.
pub fn input_peer(dialog_id: i64, cached: Option<PeerInfo>) -> Result<tl::enums::InputPeer, UserError> {
    let unknown = || {
        UserError::PeerUnavailable(format!(
            "chat {dialog_id} is not known to this account's session (no access hash)"
        ))
    };
    match cached {
        Some(PeerInfo::User {
            id, auth: Some(auth), ..
        }) => Ok(tl::types::InputPeerUser {
            user_id: id,
            access_hash: auth.hash(),
        }
        .into()),
        Some(PeerInfo::Chat { id }) => Ok(tl::types::InputPeerChat { chat_id: id }.into()),
        Some(PeerInfo::Channel {
            id, auth: Some(auth), ..
        }) => Ok(tl::types::InputPeerChannel {
            channel_id: id,
            access_hash: auth.hash(),
        }
        .into()),
        Some(_) => Err(unknown()),
        None if (-999_999_999_999..=-1).contains(&dialog_id) => {
            Ok(tl::types::InputPeerChat { chat_id: -dialog_id }.into())
        }
        None => Err(unknown()),
    }
}

/// The channel form of a channel peer.
pub fn input_channel(peer: &tl::enums::InputPeer) -> Option<tl::enums::InputChannel> {
    match peer {
        tl::enums::InputPeer::Channel(channel) => Some(
            tl::types::InputChannel {
                channel_id: channel.channel_id,
                access_hash: channel.access_hash,
            }
            .into(),
        ),
        _ => None,
    }
}

/// A message id as Telegram's 32-bit integer.
pub fn message_id(id: TelegramMessageId) -> Result<i32, UserError> {
    i32::try_from(id.0).map_err(|_| UserError::Other(format!("message id {id} is out of range")))
}

/// The media to send for an uploaded file: photos as photos, everything else as a document with its name
/// and the attributes that make Telegram show it as a video, voice note, audio or animation.
pub fn input_media(
    kind: &MessageType,
    file: tl::enums::InputFile,
    file_name: &str,
    mime_type: &str,
) -> tl::enums::InputMedia {
    if *kind == MessageType::Photo {
        return tl::types::InputMediaUploadedPhoto {
            spoiler: false,
            live_photo: false,
            file,
            stickers: None,
            ttl_seconds: None,
            video: None,
        }
        .into();
    }
    let mut attributes: Vec<tl::enums::DocumentAttribute> = vec![
        tl::types::DocumentAttributeFilename {
            file_name: file_name.to_owned(),
        }
        .into(),
    ];
    let video = |round_message: bool| -> tl::enums::DocumentAttribute {
        // Telegram fills in duration and size when it processes the upload.
        tl::types::DocumentAttributeVideo {
            round_message,
            supports_streaming: true,
            nosound: false,
            duration: 0.0,
            w: 0,
            h: 0,
            preload_prefix_size: None,
            video_start_ts: None,
            video_codec: None,
        }
        .into()
    };
    let audio = |voice: bool| -> tl::enums::DocumentAttribute {
        tl::types::DocumentAttributeAudio {
            voice,
            duration: 0,
            title: None,
            performer: None,
            waveform: None,
        }
        .into()
    };
    match kind {
        MessageType::Video => attributes.push(video(false)),
        MessageType::VideoNote => attributes.push(video(true)),
        MessageType::Voice => attributes.push(audio(true)),
        MessageType::Audio => attributes.push(audio(false)),
        MessageType::Animation => attributes.push(tl::enums::DocumentAttribute::Animated),
        _ => {}
    }
    let force_file = !matches!(
        kind,
        MessageType::Video
            | MessageType::VideoNote
            | MessageType::Voice
            | MessageType::Audio
            | MessageType::Animation
            | MessageType::Sticker
    );
    tl::types::InputMediaUploadedDocument {
        nosound_video: false,
        force_file,
        spoiler: false,
        file,
        thumb: None,
        mime_type: mime_type.to_owned(),
        attributes,
        stickers: None,
        video_cover: None,
        video_timestamp: None,
        ttl_seconds: None,
    }
    .into()
}

/// A send request, text or media.
#[derive(Debug, Clone, PartialEq)]
pub enum SendRequest {
    /// `messages.sendMessage`.
    Text(tl::functions::messages::SendMessage),
    /// `messages.sendMedia`.
    Media(tl::functions::messages::SendMedia),
}

/// Builds the request that sends `message` with exactly `random_id` (Telegram drops a repeated one).
pub fn build_send_request(
    peer: tl::enums::InputPeer,
    message: &OutgoingMessage,
    random_id: i64,
    media: Option<tl::enums::InputMedia>,
) -> Result<SendRequest, UserError> {
    let reply_to = message
        .reply_to_telegram_id
        .map(message_id)
        .transpose()?
        .map(|reply_to_msg_id| {
            tl::enums::InputReplyTo::Message(tl::types::InputReplyToMessage {
                reply_to_msg_id,
                top_msg_id: None,
                reply_to_peer_id: None,
                quote_text: None,
                quote_entities: None,
                quote_offset: None,
                monoforum_peer_id: None,
                todo_item_id: None,
                poll_option: None,
            })
        });
    let text = message.text.clone().unwrap_or_default();
    Ok(match media {
        Some(media) => SendRequest::Media(tl::functions::messages::SendMedia {
            silent: false,
            background: false,
            clear_draft: false,
            noforwards: false,
            update_stickersets_order: false,
            invert_media: false,
            allow_paid_floodskip: false,
            peer,
            reply_to,
            media,
            message: text,
            random_id,
            reply_markup: None,
            entities: None,
            schedule_date: None,
            schedule_repeat_period: None,
            send_as: None,
            quick_reply_shortcut: None,
            effect: None,
            allow_paid_stars: None,
            suggested_post: None,
        }),
        None => SendRequest::Text(tl::functions::messages::SendMessage {
            no_webpage: false,
            silent: false,
            background: false,
            clear_draft: false,
            noforwards: false,
            update_stickersets_order: false,
            invert_media: false,
            allow_paid_floodskip: false,
            peer,
            reply_to,
            message: text,
            random_id,
            reply_markup: None,
            entities: None,
            schedule_date: None,
            schedule_repeat_period: None,
            send_as: None,
            quick_reply_shortcut: None,
            effect: None,
            allow_paid_stars: None,
            suggested_post: None,
            rich_message: None,
        }),
    })
}

fn timestamp(seconds: i32) -> DateTime<Utc> {
    DateTime::from_timestamp(i64::from(seconds), 0).unwrap_or_else(Utc::now)
}

fn new_message_of(update: &tl::enums::Update) -> Option<&tl::types::Message> {
    match update {
        tl::enums::Update::NewMessage(tl::types::UpdateNewMessage {
            message: tl::enums::Message::Message(message),
            ..
        })
        | tl::enums::Update::NewChannelMessage(tl::types::UpdateNewChannelMessage {
            message: tl::enums::Message::Message(message),
            ..
        }) => Some(message),
        _ => None,
    }
}

/// Finds the message Telegram created for `random_id` in the answer to a send.
pub fn parse_sent(updates: &tl::enums::Updates, random_id: i64) -> Option<SentMessage> {
    let (list, date) = match updates {
        tl::enums::Updates::UpdateShortSentMessage(short) => {
            return Some(SentMessage {
                telegram_message_id: Some(TelegramMessageId(i64::from(short.id))),
                date: timestamp(short.date),
            });
        }
        tl::enums::Updates::Updates(all) => (&all.updates, all.date),
        tl::enums::Updates::Combined(all) => (&all.updates, all.date),
        tl::enums::Updates::UpdateShort(short) => (&vec![short.update.clone()], short.date),
        _ => return None,
    };
    let messages: Vec<&tl::types::Message> = list.iter().filter_map(new_message_of).collect();
    let id = list
        .iter()
        .find_map(|update| match update {
            tl::enums::Update::MessageId(assigned) if assigned.random_id == random_id => Some(assigned.id),
            _ => None,
        })
        // Without the id mapping, a lone new message is ours.
        .or_else(|| (messages.len() == 1).then(|| messages[0].id))?;
    let message_date = messages
        .iter()
        .find(|message| message.id == id)
        .map_or(date, |message| message.date);
    Some(SentMessage {
        telegram_message_id: Some(TelegramMessageId(i64::from(id))),
        date: timestamp(message_date),
    })
}

/// What a send with `random_id` came to, from Telegram's answer (or the failure to get one) at `now`.
///
/// `RANDOM_ID_DUPLICATE` means an earlier attempt with this `random_id` was accepted: the message is sent,
/// only its id is not known. It counts as sent (with no id), so the outbox records it and never sends it again.
///
/// A timeout or a lost connection is transient even when the request may already have been written to the
/// connection (which would otherwise make the outcome ambiguous): every attempt of a message carries the same
/// `random_id` and Telegram drops a repeat, so retrying cannot post it twice.
pub fn send_outcome(
    answer: Result<tl::enums::Updates, InvocationError>,
    random_id: i64,
    now: DateTime<Utc>,
) -> Result<SentMessage, SendError> {
    match answer {
        // Telegram took the message even when its answer does not name the id: it is sent.
        Ok(updates) => Ok(parse_sent(&updates, random_id).unwrap_or(SentMessage {
            telegram_message_id: None,
            date: now,
        })),
        Err(InvocationError::Rpc(error)) if error.name == "RANDOM_ID_DUPLICATE" => Ok(SentMessage {
            telegram_message_id: None,
            date: now,
        }),
        Err(error) => Err(invocation_to_send_error(&error)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crm_core::ids::PeerId;
    use crm_core::outbound::OutgoingMedia;
    use grammers_mtsender::RpcError;
    use grammers_session::types::PeerAuth;

    /// A text message to `peer_id`, replying to `reply`.
    pub(crate) fn text(peer_id: i64, reply: Option<i64>) -> OutgoingMessage {
        OutgoingMessage {
            peer_id: PeerId(peer_id),
            text: Some("hello".into()),
            reply_to_telegram_id: reply.map(TelegramMessageId),
            media: None,
        }
    }

    fn user_peer() -> tl::enums::InputPeer {
        tl::types::InputPeerUser {
            user_id: 42,
            access_hash: 420,
        }
        .into()
    }

    #[test]
    fn the_send_request_carries_our_random_id_and_reply() {
        match build_send_request(user_peer(), &text(42, Some(7)), 987_654_321, None).unwrap() {
            SendRequest::Text(request) => {
                assert_eq!(request.random_id, 987_654_321);
                assert_eq!(request.message, "hello");
                assert_eq!(request.peer, user_peer());
                match request.reply_to {
                    Some(tl::enums::InputReplyTo::Message(reply)) => assert_eq!(reply.reply_to_msg_id, 7),
                    other => panic!("{other:?}"),
                }
            }
            other => panic!("{other:?}"),
        }
        let file: tl::enums::InputFile = tl::types::InputFile {
            id: 1,
            parts: 1,
            name: "a.ogg".into(),
            md5_checksum: String::new(),
        }
        .into();
        let media = input_media(&MessageType::Voice, file, "a.ogg", "audio/ogg");
        let mut message = text(42, None);
        message.media = Some(OutgoingMedia {
            kind: MessageType::Voice,
            bytes: vec![1],
            file_name: "a.ogg".into(),
            content_type: "audio/ogg".into(),
        });
        match build_send_request(user_peer(), &message, -5, Some(media)).unwrap() {
            SendRequest::Media(request) => {
                assert_eq!(request.random_id, -5);
                assert_eq!(request.message, "hello");
                assert_eq!(request.reply_to, None);
            }
            other => panic!("{other:?}"),
        }
        assert!(build_send_request(user_peer(), &text(42, Some(i64::MAX)), 1, None).is_err());
    }

    fn file() -> tl::enums::InputFile {
        tl::types::InputFile {
            id: 1,
            parts: 1,
            name: "x".into(),
            md5_checksum: String::new(),
        }
        .into()
    }

    #[test]
    fn uploaded_media_are_presented_by_kind() {
        assert!(matches!(
            input_media(&MessageType::Photo, file(), "p.jpg", "image/jpeg"),
            tl::enums::InputMedia::UploadedPhoto(_)
        ));
        let tl::enums::InputMedia::UploadedDocument(voice) =
            input_media(&MessageType::Voice, file(), "v.ogg", "audio/ogg")
        else {
            panic!()
        };
        assert!(!voice.force_file);
        assert!(
            voice
                .attributes
                .iter()
                .any(|a| matches!(a, tl::enums::DocumentAttribute::Audio(audio) if audio.voice))
        );
        let tl::enums::InputMedia::UploadedDocument(document) =
            input_media(&MessageType::Document, file(), "report.pdf", "application/pdf")
        else {
            panic!()
        };
        assert!(document.force_file);
        assert_eq!(document.mime_type, "application/pdf");
        assert!(document.attributes.iter().any(
            |a| matches!(a, tl::enums::DocumentAttribute::Filename(name) if name.file_name == "report.pdf")
        ));
        let tl::enums::InputMedia::UploadedDocument(video) =
            input_media(&MessageType::Video, file(), "v.mp4", "video/mp4")
        else {
            panic!()
        };
        assert!(
            video
                .attributes
                .iter()
                .any(|a| matches!(a, tl::enums::DocumentAttribute::Video(v) if !v.round_message))
        );
    }

    #[test]
    fn sent_ids_come_from_the_random_id_mapping_or_the_short_answer() {
        let short: tl::enums::Updates = tl::types::UpdateShortSentMessage {
            out: true,
            id: 77,
            pts: 1,
            pts_count: 1,
            date: 1_700_000_000,
            media: None,
            entities: None,
            ttl_period: None,
        }
        .into();
        assert_eq!(
            parse_sent(&short, 1),
            Some(SentMessage {
                telegram_message_id: Some(TelegramMessageId(77)),
                date: timestamp(1_700_000_000)
            })
        );
        let mut sent = crate::mapping::fixtures::message(88, crate::mapping::fixtures::peer_user(42), "hi");
        sent.out = true;
        sent.date = 1_700_000_123;
        let full: tl::enums::Updates = tl::types::Updates {
            updates: vec![
                tl::types::UpdateMessageId { id: 99, random_id: 5 }.into(),
                tl::types::UpdateMessageId { id: 88, random_id: 6 }.into(),
                tl::types::UpdateNewMessage {
                    message: sent.into(),
                    pts: 2,
                    pts_count: 1,
                }
                .into(),
            ],
            users: vec![],
            chats: vec![],
            date: 1,
            seq: 0,
        }
        .into();
        assert_eq!(
            parse_sent(&full, 6),
            Some(SentMessage {
                telegram_message_id: Some(TelegramMessageId(88)),
                date: timestamp(1_700_000_123)
            })
        );
        assert_eq!(
            parse_sent(&full, 5).map(|s| s.telegram_message_id),
            Some(Some(TelegramMessageId(99)))
        );
        assert_eq!(parse_sent(&tl::enums::Updates::TooLong, 5), None);
    }

    fn refused(code: i32, name: &str) -> Result<tl::enums::Updates, InvocationError> {
        Err(InvocationError::Rpc(RpcError::from(tl::types::RpcError {
            error_code: code,
            error_message: name.to_owned(),
        })))
    }

    #[test]
    fn a_duplicate_random_id_is_a_message_sent_before() {
        let now = timestamp(1_700_000_555);
        // Telegram has used both codes for it.
        for code in [400, 500] {
            assert_eq!(
                send_outcome(refused(code, "RANDOM_ID_DUPLICATE"), 6, now),
                Ok(SentMessage {
                    telegram_message_id: None,
                    date: now
                }),
                "{code}"
            );
        }
        assert!(matches!(
            send_outcome(refused(500, "RPC_CALL_FAIL"), 6, now),
            Err(SendError::Transient(_))
        ));
        assert!(matches!(
            send_outcome(refused(400, "USER_IS_BLOCKED"), 6, now),
            Err(SendError::Permanent(_))
        ));
        assert_eq!(
            send_outcome(Ok(tl::enums::Updates::TooLong), 6, now),
            Ok(SentMessage {
                telegram_message_id: None,
                date: now
            }),
            "an accepted message without its id is still sent, never sent again"
        );
    }

    #[test]
    fn a_send_without_an_answer_is_retried_with_its_random_id() {
        let timed_out = Err(InvocationError::from(crate::pool::timed_out(
            std::time::Duration::from_secs(60),
        )));
        match send_outcome(timed_out, 6, timestamp(1)) {
            Err(SendError::Transient(reason)) => assert!(reason.contains("did not answer"), "{reason}"),
            other => panic!("{other:?}"),
        }
        let dropped = Err(InvocationError::Dropped("gone"));
        assert!(matches!(
            send_outcome(dropped, 6, timestamp(1)),
            Err(SendError::Transient(_))
        ));
    }

    #[test]
    fn peers_resolve_from_the_cache_and_basic_groups_without_it() {
        assert_eq!(
            input_peer(
                42,
                Some(PeerInfo::User {
                    id: 42,
                    auth: Some(PeerAuth::from_hash(420)),
                    bot: None,
                    is_self: None
                })
            )
            .unwrap(),
            user_peer()
        );
        assert_eq!(
            input_peer(-555, None).unwrap(),
            tl::enums::InputPeer::Chat(tl::types::InputPeerChat { chat_id: 555 })
        );
        assert!(matches!(input_peer(42, None), Err(UserError::PeerUnavailable(_))));
        assert!(matches!(
            input_peer(-1_000_000_000_777, None),
            Err(UserError::PeerUnavailable(_))
        ));
    }
}

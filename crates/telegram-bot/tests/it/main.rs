//! The Bot API update mapping against real updates written by third parties (the shared corpus next to the
//! repository, present in CI): every file maps, and each one to what it must become.

// Expectations are plain data checked with asserts; unwrap failing loudly is the point here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;

use crm_core::chat::ChatType;
use crm_core::inbound::InboundEvent;
use crm_core::message::{Direction, MessageType};
use crm_telegram_bot::map_update;

/// What a message update must map to.
struct Msg {
    edited: bool,
    message_type: MessageType,
    chat_type: ChatType,
    text: Option<&'static str>,
    caption: Option<&'static str>,
    sender_id: Option<i64>,
    reply_to: Option<i64>,
    media: bool,
}

/// What one update must map to.
enum Expect {
    Message(Msg),
    Blocked(bool),
    Reaction { message_id: i64, user_id: Option<i64> },
    Ignored(&'static str),
}

fn msg(message_type: MessageType, chat_type: ChatType, sender_id: Option<i64>) -> Msg {
    let media = matches!(
        message_type,
        MessageType::Photo
            | MessageType::Video
            | MessageType::Audio
            | MessageType::Voice
            | MessageType::Document
            | MessageType::Sticker
    );
    Msg {
        edited: false,
        message_type,
        chat_type,
        text: None,
        caption: None,
        sender_id,
        reply_to: None,
        media,
    }
}

fn text(chat_type: ChatType, sender_id: i64, text: &'static str) -> Msg {
    Msg {
        text: Some(text),
        ..msg(MessageType::Text, chat_type, Some(sender_id))
    }
}

fn expectations() -> Vec<(&'static str, Expect)> {
    use ChatType::{Channel, Private, Supergroup};
    use MessageType as T;
    vec![
        (
            "callback_query_inaccessible_message.json",
            Expect::Ignored("callback_query"),
        ),
        (
            "channel_post_giveaway.json",
            Expect::Message(msg(T::Other, Channel, Some(-1002236736395))),
        ),
        (
            "channel_post_text_from_null.json",
            Expect::Message(text(Channel, -1001065170817, "Hi, world!")),
        ),
        ("chat_boost.json", Expect::Ignored("chat_boost")),
        ("chat_member_kicked_nulls.json", Expect::Ignored("chat_member")),
        (
            "contact_private.json",
            Expect::Message(msg(T::Contact, Private, Some(12345678))),
        ),
        (
            "doc_audio.json",
            Expect::Message(msg(T::Audio, Private, Some(1111111))),
        ),
        (
            "doc_callback_query_inline.json",
            Expect::Ignored("callback_query"),
        ),
        (
            "doc_document_pdf.json",
            Expect::Message(msg(T::Document, Private, Some(1111111))),
        ),
        (
            "doc_edited_message.json",
            Expect::Message(Msg {
                edited: true,
                ..text(Private, 1111111, "Edited text")
            }),
        ),
        (
            "doc_forwarded_from_channel_quirk.json",
            Expect::Message(text(Private, 1111111, "/start")),
        ),
        (
            "doc_forwarded_from_user.json",
            Expect::Message(text(Private, 1111111, "/start")),
        ),
        (
            "doc_private_command_start.json",
            Expect::Message(text(Private, 1111111, "/start")),
        ),
        (
            "doc_reply_to_message.json",
            Expect::Message(Msg {
                reply_to: Some(1334),
                ..text(Private, 1111111, "/start")
            }),
        ),
        (
            "doc_text_entities.json",
            Expect::Message(text(Private, 1111111, "Bold and italics")),
        ),
        (
            "doc_voice.json",
            Expect::Message(msg(T::Voice, Private, Some(1111111))),
        ),
        (
            "document_private_empty_thumbnail.json",
            Expect::Message(msg(T::Document, Private, Some(10734))),
        ),
        (
            "forwarded_from_user_custom_emoji.json",
            Expect::Message(Msg {
                text: None,
                ..msg(T::Text, Private, Some(927266710))
            }),
        ),
        (
            "location_private.json",
            Expect::Message(msg(T::Location, Private, Some(108734))),
        ),
        (
            "location_venue.json",
            Expect::Message(msg(T::Venue, Private, None)),
        ),
        (
            "message_reaction.json",
            Expect::Reaction {
                message_id: 35,
                user_id: Some(1459074222),
            },
        ),
        (
            "message_reaction_count.json",
            Expect::Ignored("message_reaction_count"),
        ),
        ("my_chat_member_kicked.json", Expect::Blocked(true)),
        (
            "photo_four_sizes_nulls.json",
            Expect::Message(msg(T::Photo, Private, Some(1234567))),
        ),
        (
            "photo_with_caption_entities.json",
            Expect::Message(Msg {
                caption: Some("www.example.com"),
                ..msg(T::Photo, Private, Some(27433968))
            }),
        ),
        (
            "private_text_is_bot_from.json",
            Expect::Message(text(Private, 9734, "HIHI")),
        ),
        (
            "private_text_link_preview.json",
            Expect::Message(text(Private, 218485655, "hello there")),
        ),
        (
            "private_text_nested_entities.json",
            Expect::Message(text(
                Private,
                927266710,
                "This is a bold text with a nested italic and bold text.",
            )),
        ),
        (
            "reply_with_quote.json",
            Expect::Message(Msg {
                reply_to: Some(1374510),
                ..text(Private, 927266710, "quote reply")
            }),
        ),
        (
            "sticker_private.json",
            Expect::Message(msg(T::Sticker, Private, Some(250918540))),
        ),
        (
            "sticker_supergroup_video_sticker.json",
            Expect::Message(msg(T::Sticker, Supergroup, Some(590740002))),
        ),
        (
            "supergroup_automatic_forward_sender_chat.json",
            Expect::Message(text(Supergroup, -1001160242915, "text")),
        ),
        (
            "supergroup_dice.json",
            Expect::Message(msg(T::Dice, Supergroup, Some(408258968))),
        ),
        (
            "supergroup_pinned_message.json",
            Expect::Message(msg(T::Service, Supergroup, Some(408258968))),
        ),
        (
            "supergroup_reply_to_message_bot_command.json",
            Expect::Message(Msg {
                reply_to: Some(134545),
                ..text(Supergroup, 5964236329, "/report")
            }),
        ),
        (
            "supergroup_story.json",
            Expect::Message(Msg {
                media: false,
                ..msg(T::Other, Supergroup, Some(6962620676))
            }),
        ),
        ("unknown_update_kind.json", Expect::Ignored("new_update_kind")),
        (
            "video_forwarded.json",
            Expect::Message(msg(T::Video, Private, Some(250918540))),
        ),
        (
            "video_media_group_forwarded.json",
            Expect::Message(msg(T::Video, Private, Some(250918540))),
        ),
        (
            "voice_private.json",
            Expect::Message(msg(T::Voice, Private, Some(12345678))),
        ),
    ]
}

fn corpus_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/botapi-updates");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must have the shared update corpus at {}",
        dir.display()
    );
    eprintln!("skipped: no shared update corpus at {}", dir.display());
    None
}

#[test]
fn every_real_update_maps_to_what_it_must_become() {
    let Some(dir) = corpus_dir() else { return };
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    let expectations = expectations();
    let expected_files: BTreeSet<String> = expectations.iter().map(|(name, _)| (*name).to_owned()).collect();
    assert_eq!(
        files, expected_files,
        "every corpus file needs a stated expectation"
    );

    for (name, expect) in expectations {
        let update: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap();
        let event = map_update(&update, None);
        match (expect, event) {
            (Expect::Ignored(kind), InboundEvent::Ignored { kind: got }) => assert_eq!(got, kind, "{name}"),
            (Expect::Blocked(blocked), InboundEvent::MembershipChanged { blocked: got, .. }) => {
                assert_eq!(got, blocked, "{name}")
            }
            (
                Expect::Reaction { message_id, user_id },
                InboundEvent::ReactionChanged {
                    telegram_message_id,
                    user_id: got,
                    reactions,
                    ..
                },
            ) => {
                assert_eq!((telegram_message_id, got), (message_id, user_id), "{name}");
                assert!(reactions.is_array(), "{name}");
            }
            (
                Expect::Message(Msg {
                    edited,
                    message_type,
                    chat_type,
                    text,
                    caption,
                    sender_id,
                    reply_to,
                    media,
                }),
                event @ (InboundEvent::NewMessage(_) | InboundEvent::EditedMessage(_)),
            ) => {
                let was_edit = matches!(event, InboundEvent::EditedMessage(_));
                let (InboundEvent::NewMessage(message) | InboundEvent::EditedMessage(message)) = event else {
                    unreachable!()
                };
                assert_eq!(was_edit, edited, "{name}: edit");
                assert_eq!(message.message_type, message_type, "{name}: type");
                assert_eq!(message.chat.chat_type, chat_type, "{name}: chat type");
                if let Some(text) = text {
                    assert_eq!(message.text.as_deref(), Some(text), "{name}: text");
                }
                assert_eq!(message.caption.as_deref(), caption, "{name}: caption");
                assert_eq!(message.sender.as_ref().map(|s| s.id), sender_id, "{name}: sender");
                assert_eq!(message.reply_to_telegram_id, reply_to, "{name}: reply");
                assert_eq!(message.media.is_some(), media, "{name}: media");
                assert_eq!(message.edited_at.is_some(), edited, "{name}: edited_at");
                assert_eq!(message.direction, Direction::Inbound, "{name}: direction");
                assert_eq!(
                    message.metadata["raw"],
                    update[update
                        .as_object()
                        .unwrap()
                        .keys()
                        .find(|k| *k != "update_id")
                        .unwrap()],
                    "{name}: raw kept"
                );
            }
            (_, event) => panic!("{name}: unexpected {event:?}"),
        }
    }
}

#[test]
fn forwarded_and_quirky_updates_keep_their_origin() {
    let Some(dir) = corpus_dir() else { return };
    for name in [
        "doc_forwarded_from_user.json",
        "doc_forwarded_from_channel_quirk.json",
        "forwarded_from_user_custom_emoji.json",
        "supergroup_automatic_forward_sender_chat.json",
    ] {
        let update: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap();
        let InboundEvent::NewMessage(message) = map_update(&update, None) else {
            panic!("{name}")
        };
        let origin = &message.metadata["forward_origin"];
        assert!(origin["type"].is_string(), "{name}: {origin}");
    }
}

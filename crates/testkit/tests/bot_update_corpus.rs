//! The Bot API update mapping of `crm-telegram-bot` against real updates written by third parties (the shared
//! corpus next to the repository, present in CI): every file maps, and each one to what it must become.
//!
//! It lives with the corpus rather than in `crates/telegram-bot/tests`: this crate depends on `crm`, which
//! depends on `crm-telegram-bot`, so a dev-dependency of `crm-telegram-bot` on it would be a cycle.

// Expectations are plain data checked with asserts; unwrap failing loudly is the point here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use crm_core::inbound::InboundEvent;
use crm_core::message::Direction;
use crm_telegram_bot::map_update;
use crm_testkit::corpus::{Expect, Msg, corpus_dir, expectations};

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
                assert_eq!((telegram_message_id.0, got), (message_id, user_id), "{name}");
                assert!(
                    reactions.iter().all(|r| !r.kind.is_empty()),
                    "{name}: typed reactions"
                );
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
                assert_eq!(
                    message.reply_to_telegram_id.map(|id| id.0),
                    reply_to,
                    "{name}: reply"
                );
                assert_eq!(message.media.is_some(), media, "{name}: media");
                assert_eq!(message.edited_at.is_some(), edited, "{name}: edited_at");
                assert_eq!(message.direction, Direction::Inbound, "{name}: direction");
                assert_eq!(
                    message.metadata.raw.as_ref(),
                    Some(
                        &update[update
                            .as_object()
                            .unwrap()
                            .keys()
                            .find(|k| *k != "update_id")
                            .unwrap()]
                    ),
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
        let origin = serde_json::to_value(&message.metadata.forward_origin).unwrap();
        assert!(origin["type"].is_string(), "{name}: {origin}");
    }
}

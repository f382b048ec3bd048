//! The shared corpus of real Bot API updates written by third parties (next to the repository; CI always has
//! it), and what each file must become, for the mapping and the webhook tests alike.

use std::path::PathBuf;

use crm_core::chat::ChatType;
use crm_core::message::MessageType;
use serde_json::Value;

/// What a message update must map to.
pub struct Msg {
    /// Expected `edited`.
    pub edited: bool,
    /// Expected `message_type`.
    pub message_type: MessageType,
    /// Expected `chat_type`.
    pub chat_type: ChatType,
    /// Expected `text`.
    pub text: Option<&'static str>,
    /// Expected `caption`.
    pub caption: Option<&'static str>,
    /// Expected `sender_id`.
    pub sender_id: Option<i64>,
    /// Expected `reply_to`.
    pub reply_to: Option<i64>,
    /// Expected `media`.
    pub media: bool,
}

/// What one update must map to.
pub enum Expect {
    /// A new or edited message.
    Message(Msg),
    /// A membership change (blocked or not).
    Blocked(bool),
    /// A reaction on a message.
    Reaction {
        /// The message reacted to.
        message_id: i64,
        /// Who reacted.
        user_id: Option<i64>,
    },
    /// An ignored update kind.
    Ignored(&'static str),
}

/// A message expectation without text, caption or reply.
pub fn msg(message_type: MessageType, chat_type: ChatType, sender_id: Option<i64>) -> Msg {
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

/// A text message expectation.
pub fn text(chat_type: ChatType, sender_id: i64, text: &'static str) -> Msg {
    Msg {
        text: Some(text),
        ..msg(MessageType::Text, chat_type, Some(sender_id))
    }
}

/// Every corpus file with what it must become.
pub fn expectations() -> Vec<(&'static str, Expect)> {
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

/// The shared corpus next to the repository; `None` (with a note) outside CI when it is absent.
pub fn corpus_dir() -> Option<PathBuf> {
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

/// Every corpus file (name, parsed update), sorted by name.
pub fn load() -> Option<Vec<(String, Value)>> {
    let dir = corpus_dir()?;
    let mut files: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .expect("corpus directory readable")
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let name = path
                .file_name()
                .expect("file name")
                .to_string_lossy()
                .into_owned();
            let text = std::fs::read_to_string(&path).expect("corpus file readable");
            (name, serde_json::from_str(&text).expect("corpus file is JSON"))
        })
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    Some(files)
}

//! Mapping of one Bot API `Update` (as JSON) to an [`InboundEvent`].
//!
//! Parsing works on `serde_json::Value` on purpose: real payloads carry explicit `null`s, fields removed from
//! the API (`forward_from`, missing `file_unique_id`), quirks (a channel object in `forward_from`) and update
//! kinds newer than any typed model. None of that may turn into an error that makes Telegram redeliver forever.

use chrono::{DateTime, Utc};
use crm_core::chat::ChatType;
use crm_core::ids::{PeerId, TelegramMessageId};
use crm_core::inbound::{ChatRef, InboundEvent, InboundMessage, MediaRef, Sender};
use crm_core::message::{Direction, MessageType};
use serde_json::Value;

use crate::metadata::{metadata, reactions};

/// Keys of a `Message` that mark a service message (no content of its own).
const SERVICE_KEYS: &[&str] = &[
    "pinned_message",
    "new_chat_members",
    "left_chat_member",
    "new_chat_title",
    "new_chat_photo",
    "delete_chat_photo",
    "group_chat_created",
    "supergroup_chat_created",
    "channel_chat_created",
    "migrate_to_chat_id",
    "migrate_from_chat_id",
    "message_auto_delete_timer_changed",
    "forum_topic_created",
    "forum_topic_closed",
    "forum_topic_reopened",
    "video_chat_started",
    "video_chat_ended",
    "successful_payment",
    "users_shared",
    "chat_shared",
    "write_access_allowed",
    "boost_added",
];

/// The `update_id` of an update, if it has a usable one.
pub fn update_id(update: &Value) -> Option<i64> {
    update.get("update_id").and_then(Value::as_i64)
}

pub(crate) fn text(value: &Value, key: &str) -> Option<String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

pub(crate) fn int(value: &Value, key: &str) -> Option<i64> {
    value.get(key).and_then(Value::as_i64)
}

pub(crate) fn present(value: &Value, key: &str) -> bool {
    value.get(key).is_some_and(|v| !v.is_null())
}

fn date(value: &Value, key: &str) -> Option<DateTime<Utc>> {
    int(value, key).and_then(|seconds| DateTime::from_timestamp(seconds, 0))
}

fn chat_ref(chat: &Value) -> Option<ChatRef> {
    let peer_id = int(chat, "id")?;
    let chat_type = match chat.get("type").and_then(Value::as_str) {
        Some("group") => ChatType::Group,
        Some("supergroup") => ChatType::Supergroup,
        Some("channel") => ChatType::Channel,
        _ => ChatType::Private,
    };
    Some(ChatRef {
        peer_id: PeerId(peer_id),
        chat_type,
        title: text(chat, "title"),
        username: text(chat, "username"),
        first_name: text(chat, "first_name"),
        last_name: text(chat, "last_name"),
    })
}

fn full_name(person: &Value) -> Option<String> {
    let name = [text(person, "first_name"), text(person, "last_name")]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    if name.is_empty() {
        text(person, "title")
    } else {
        Some(name)
    }
}

fn sender(message: &Value) -> Option<Sender> {
    // `sender_chat` speaks for anonymous admins and channels; `from` is then a placeholder.
    let who = message
        .get("sender_chat")
        .filter(|v| v.is_object())
        .or_else(|| message.get("from").filter(|v| v.is_object()))?;
    Some(Sender {
        id: int(who, "id")?,
        name: full_name(who),
        username: text(who, "username"),
    })
}

fn media(object: &Value) -> Option<MediaRef> {
    Some(MediaRef {
        file_id: text(object, "file_id")?,
        file_unique_id: text(object, "file_unique_id"),
        file_size: int(object, "file_size"),
        file_name: text(object, "file_name"),
        mime_type: text(object, "mime_type"),
    })
}

/// The largest photo size: by file size when known, else by pixel count, else the last one.
fn largest_photo(sizes: &Value) -> Option<&Value> {
    let sizes = sizes.as_array()?;
    sizes.iter().filter(|s| s.is_object()).max_by_key(|size| {
        let pixels = int(size, "width")
            .unwrap_or(0)
            .saturating_mul(int(size, "height").unwrap_or(0));
        (int(size, "file_size").unwrap_or(0), pixels)
    })
}

/// The kind of content and its file, first match wins (animations carry a `document` too, venues a `location`).
fn content(message: &Value) -> (MessageType, Option<MediaRef>) {
    if let Some(photo) = message.get("photo").and_then(largest_photo) {
        return (MessageType::Photo, media(photo));
    }
    let with_file: [(&str, MessageType); 8] = [
        ("animation", MessageType::Animation),
        ("video", MessageType::Video),
        ("video_note", MessageType::VideoNote),
        ("voice", MessageType::Voice),
        ("audio", MessageType::Audio),
        ("sticker", MessageType::Sticker),
        ("document", MessageType::Document),
        ("story", MessageType::Other),
    ];
    for (key, kind) in with_file {
        if let Some(object) = message.get(key).filter(|v| v.is_object()) {
            return (kind, media(object));
        }
    }
    let without_file: [(&str, MessageType); 6] = [
        ("venue", MessageType::Venue),
        ("location", MessageType::Location),
        ("contact", MessageType::Contact),
        ("poll", MessageType::Poll),
        ("dice", MessageType::Dice),
        ("giveaway", MessageType::Other),
    ];
    for (key, kind) in without_file {
        if present(message, key) {
            return (kind, None);
        }
    }
    if present(message, "text") {
        return (MessageType::Text, None);
    }
    if SERVICE_KEYS.iter().any(|key| present(message, key)) {
        return (MessageType::Service, None);
    }
    (MessageType::Other, None)
}

fn map_message(message: &Value, bot_user_id: Option<i64>, update_id: Option<i64>) -> Option<InboundMessage> {
    let chat = chat_ref(message.get("chat")?)?;
    let telegram_message_id = int(message, "message_id")?;
    // A channel post without `sender_chat` is still written by the channel.
    let sender = sender(message).or_else(|| {
        (chat.chat_type == ChatType::Channel).then(|| Sender {
            id: chat.peer_id.0,
            name: chat.title.clone(),
            username: chat.username.clone(),
        })
    });
    let from_bot_itself = bot_user_id.is_some()
        && message.get("from").and_then(|from| int(from, "id")) == bot_user_id
        && !present(message, "sender_chat");
    let (message_type, media) = content(message);
    let (text_value, caption) = match message_type {
        MessageType::Text => (text(message, "text"), None),
        _ => (None, text(message, "caption")),
    };
    Some(InboundMessage {
        chat,
        telegram_message_id: TelegramMessageId(telegram_message_id),
        direction: if from_bot_itself {
            Direction::Outbound
        } else {
            Direction::Inbound
        },
        message_type,
        text: text_value,
        caption,
        sender,
        reply_to_telegram_id: message
            .get("reply_to_message")
            .and_then(|reply| int(reply, "message_id"))
            .map(TelegramMessageId),
        date: date(message, "date").unwrap_or_else(Utc::now),
        edited_at: date(message, "edit_date"),
        media,
        metadata: metadata(message, update_id),
    })
}

/// The kind of an update: its first non-null key other than `update_id`.
pub fn update_kind(update: &Value) -> String {
    update
        .as_object()
        .and_then(|fields| {
            fields
                .iter()
                .find(|(key, value)| *key != "update_id" && !value.is_null())
                .map(|(key, _)| key.clone())
        })
        .unwrap_or_else(|| "empty".to_owned())
}

/// Maps one update. `bot_user_id` (the bot's own id, from `getMe`) tells our own messages apart. Anything not
/// handled, or too malformed to use, becomes [`InboundEvent::Ignored`] with its kind.
pub fn map_update(update: &Value, bot_user_id: Option<i64>) -> InboundEvent {
    let kind = update_kind(update);
    let id = update_id(update);
    let body = update.get(&kind).unwrap_or(&Value::Null);
    let mapped = match kind.as_str() {
        "message" | "channel_post" => map_message(body, bot_user_id, id).map(InboundEvent::NewMessage),
        "edited_message" | "edited_channel_post" => map_message(body, bot_user_id, id).map(|mut message| {
            message.edited_at = message.edited_at.or_else(|| Some(Utc::now()));
            InboundEvent::EditedMessage(message)
        }),
        "my_chat_member" => map_membership(body),
        "message_reaction" => map_reaction(body),
        _ => None,
    };
    mapped.unwrap_or(InboundEvent::Ignored { kind })
}

fn map_membership(update: &Value) -> Option<InboundEvent> {
    let chat = chat_ref(update.get("chat")?)?;
    let status = update
        .get("new_chat_member")
        .and_then(|member| member.get("status"))
        .and_then(Value::as_str)?;
    Some(InboundEvent::MembershipChanged {
        chat,
        blocked: matches!(status, "kicked" | "left"),
        date: date(update, "date").unwrap_or_else(Utc::now),
    })
}

fn map_reaction(update: &Value) -> Option<InboundEvent> {
    Some(InboundEvent::ReactionChanged {
        chat: chat_ref(update.get("chat")?)?,
        telegram_message_id: TelegramMessageId(int(update, "message_id")?),
        user_id: update.get("user").and_then(|user| int(user, "id")),
        reactions: reactions(update.get("new_reaction")),
        date: date(update, "date").unwrap_or_else(Utc::now),
    })
}

#[cfg(test)]
mod tests {
    use crm_core::metadata::ForwardOrigin;
    use serde_json::json;

    use super::*;

    fn message(body: Value) -> InboundMessage {
        match map_update(&json!({ "update_id": 1, "message": body }), Some(999)) {
            InboundEvent::NewMessage(message) => message,
            other => panic!("not a message: {other:?}"),
        }
    }

    fn base() -> Value {
        json!({ "message_id": 5, "date": 1_700_000_000, "chat": { "id": 42, "type": "private", "first_name": "Ann" },
                "from": { "id": 42, "is_bot": false, "first_name": "Ann", "last_name": "Lee", "username": "ann" } })
    }

    #[test]
    fn photo_sizes_too_large_to_multiply_still_pick_one() {
        // Found by the fuzzer (tests/fuzz_updates.rs): width × height overflowed.
        let mut body = base();
        body["photo"] = json!([
            {"file_id": "small", "width": 90, "height": 90},
            {"file_id": "huge", "width": i64::MAX, "height": i64::MAX}
        ]);
        let mapped = message(body);
        assert_eq!(mapped.media.map(|m| m.file_id).as_deref(), Some("huge"));
    }

    fn with(extra: Value) -> Value {
        let mut body = base();
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    }

    #[test]
    fn a_text_message_keeps_sender_date_and_entities() {
        let mapped = message(with(
            json!({ "text": "hi", "entities": [{ "type": "bold", "offset": 0, "length": 2 }] }),
        ));
        assert_eq!(mapped.message_type, MessageType::Text);
        assert_eq!(mapped.text.as_deref(), Some("hi"));
        assert_eq!(
            mapped.sender,
            Some(Sender {
                id: 42,
                name: Some("Ann Lee".into()),
                username: Some("ann".into())
            })
        );
        assert_eq!(mapped.date.timestamp(), 1_700_000_000);
        assert_eq!(mapped.direction, Direction::Inbound);
        assert_eq!(mapped.metadata.entities[0].kind, "bold");
        assert_eq!(mapped.metadata.update_id, Some(1));
        assert_eq!(mapped.metadata.raw.as_ref().unwrap()["text"], "hi");
    }

    #[test]
    fn the_largest_photo_is_chosen_and_the_caption_kept() {
        let mapped = message(with(json!({ "caption": "look", "photo": [
            { "file_id": "small", "width": 90, "height": 90, "file_size": 1000 },
            { "file_id": "big", "width": 1280, "height": 1280, "file_size": 90000 },
            { "file_id": "mid", "width": 320, "height": 320, "file_size": 9000 } ] })));
        assert_eq!(mapped.message_type, MessageType::Photo);
        assert_eq!(mapped.media.unwrap().file_id, "big");
        assert_eq!(mapped.caption.as_deref(), Some("look"));
        assert_eq!(mapped.text, None);
    }

    #[test]
    fn animations_and_venues_win_over_their_companion_fields() {
        let gif = message(with(
            json!({ "animation": { "file_id": "a" }, "document": { "file_id": "a" } }),
        ));
        assert_eq!(gif.message_type, MessageType::Animation);
        let venue = message(with(
            json!({ "venue": { "title": "Cafe" }, "location": { "latitude": 1.0, "longitude": 2.0 } }),
        ));
        assert_eq!(venue.message_type, MessageType::Venue);
        assert_eq!(
            message(with(json!({ "pinned_message": { "message_id": 1 } }))).message_type,
            MessageType::Service
        );
        assert_eq!(
            message(with(json!({ "something_new": {} }))).message_type,
            MessageType::Other
        );
    }

    #[test]
    fn our_own_messages_are_outbound() {
        let mut body = with(json!({ "text": "sent by the bot" }));
        body["from"]["id"] = json!(999);
        assert_eq!(message(body).direction, Direction::Outbound);
    }

    #[test]
    fn legacy_forward_fields_become_a_forward_origin() {
        let mapped = message(with(
            json!({ "text": "fwd", "forward_from": { "id": 7, "first_name": "Bo" }, "forward_date": 1 }),
        ));
        assert!(matches!(
            mapped.metadata.forward_origin,
            Some(ForwardOrigin::User { ref sender_user, date: 1 }) if sender_user.id == 7
        ));
    }

    #[test]
    fn memberships_reactions_and_unknown_kinds_map() {
        let blocked = map_update(
            &json!({ "update_id": 2, "my_chat_member": { "chat": { "id": 42, "type": "private" },
            "date": 1, "new_chat_member": { "status": "kicked" } } }),
            None,
        );
        assert!(matches!(
            blocked,
            InboundEvent::MembershipChanged { blocked: true, .. }
        ));
        let reaction = map_update(
            &json!({ "update_id": 3, "message_reaction": { "chat": { "id": 42, "type": "private" },
            "message_id": 5, "date": 1, "user": { "id": 42 }, "new_reaction": [{ "type": "emoji", "emoji": "👍" }] } }),
            None,
        );
        assert!(matches!(
            reaction,
            InboundEvent::ReactionChanged {
                telegram_message_id: TelegramMessageId(5),
                user_id: Some(42),
                ..
            }
        ));
        assert_eq!(
            map_update(&json!({ "update_id": 4, "callback_query": { "id": "x" } }), None),
            InboundEvent::Ignored {
                kind: "callback_query".into()
            }
        );
        assert_eq!(
            map_update(&json!({ "update_id": 5, "message": { "text": "no chat" } }), None),
            InboundEvent::Ignored {
                kind: "message".into()
            }
        );
        assert_eq!(
            map_update(&json!([1, 2]), None),
            InboundEvent::Ignored { kind: "empty".into() }
        );
    }
}

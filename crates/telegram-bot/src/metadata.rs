//! A Bot API message's extras in the core's channel-neutral [`MessageMetadata`]: forward origin (from
//! `forward_origin`, or the legacy `forward_*` fields), formatting entities, album, thread, signature, inline bot,
//! location/venue/contact/poll/dice details, and the raw message. Every field is read leniently: a value of an
//! unexpected shape is left out, never an error.

use crm_core::metadata::{
    ContentDetails, ForwardOrigin, MessageMetadata, OriginChat, OriginUser, Reaction, TextEntity,
};
use serde_json::{Map, Value};

use crate::update::{int, present, text};

fn origin_user(user: &Value) -> Option<OriginUser> {
    Some(OriginUser {
        id: int(user, "id")?,
        first_name: text(user, "first_name"),
        last_name: text(user, "last_name"),
        username: text(user, "username"),
    })
}

fn origin_chat(chat: &Value) -> Option<OriginChat> {
    Some(OriginChat {
        id: int(chat, "id")?,
        title: text(chat, "title"),
        username: text(chat, "username"),
    })
}

/// Where a forwarded message came from: `forward_origin` (Bot API 7+) or the legacy `forward_*` fields.
fn forward_origin(message: &Value) -> Option<ForwardOrigin> {
    if let Some(origin) = message.get("forward_origin").filter(|v| v.is_object()) {
        let date = int(origin, "date").unwrap_or(0);
        return match origin.get("type").and_then(Value::as_str)? {
            "user" => Some(ForwardOrigin::User {
                date,
                sender_user: origin_user(origin.get("sender_user")?)?,
            }),
            "hidden_user" => Some(ForwardOrigin::HiddenUser {
                date,
                sender_user_name: text(origin, "sender_user_name")?,
            }),
            "chat" => Some(ForwardOrigin::Chat {
                date,
                sender_chat: origin_chat(origin.get("sender_chat")?)?,
                author_signature: text(origin, "author_signature"),
            }),
            "channel" => Some(ForwardOrigin::Channel {
                date,
                chat: origin_chat(origin.get("chat")?)?,
                message_id: int(origin, "message_id"),
                author_signature: text(origin, "author_signature"),
            }),
            _ => None,
        };
    }
    let date = int(message, "forward_date").unwrap_or(0);
    if let Some(chat) = message.get("forward_from_chat").filter(|v| v.is_object()) {
        return Some(ForwardOrigin::Channel {
            date,
            chat: origin_chat(chat)?,
            message_id: int(message, "forward_from_message_id"),
            author_signature: text(message, "forward_signature"),
        });
    }
    if let Some(from) = message.get("forward_from").filter(|v| v.is_object()) {
        // A channel object found in `forward_from` (seen in Telegram's own docs) is still a chat.
        if from.get("type").and_then(Value::as_str) == Some("channel") {
            return Some(ForwardOrigin::Channel {
                date,
                chat: origin_chat(from)?,
                message_id: None,
                author_signature: None,
            });
        }
        return Some(ForwardOrigin::User {
            date,
            sender_user: origin_user(from)?,
        });
    }
    text(message, "forward_sender_name").map(|name| ForwardOrigin::HiddenUser {
        date,
        sender_user_name: name,
    })
}

/// The formatting entities of the text (or the caption), those that parse.
fn entities(message: &Value) -> Vec<TextEntity> {
    message
        .get("entities")
        .or_else(|| message.get("caption_entities"))
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|entity| serde_json::from_value(entity.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

fn float(value: &Value, key: &str) -> Option<f64> {
    value.get(key).and_then(Value::as_f64)
}

fn location(value: &Value) -> Option<(f64, f64)> {
    Some((float(value, "latitude")?, float(value, "longitude")?))
}

/// Location, venue, contact, poll or dice details.
fn content(message: &Value) -> Option<ContentDetails> {
    if let Some(venue) = message.get("venue").filter(|v| v.is_object()) {
        let (latitude, longitude) = venue.get("location").and_then(location)?;
        return Some(ContentDetails::Venue {
            latitude,
            longitude,
            title: text(venue, "title").unwrap_or_default(),
            address: text(venue, "address").unwrap_or_default(),
        });
    }
    if let Some(point) = message.get("location").filter(|v| v.is_object()) {
        let (latitude, longitude) = location(point)?;
        return Some(ContentDetails::Location {
            latitude,
            longitude,
            live_period: int(point, "live_period"),
        });
    }
    if let Some(contact) = message.get("contact").filter(|v| v.is_object()) {
        return Some(ContentDetails::Contact {
            phone_number: text(contact, "phone_number").unwrap_or_default(),
            first_name: text(contact, "first_name").unwrap_or_default(),
            last_name: text(contact, "last_name"),
            user_id: int(contact, "user_id"),
        });
    }
    if let Some(poll) = message.get("poll").filter(|v| v.is_object()) {
        let options = poll
            .get("options")
            .and_then(Value::as_array)
            .map(|options| options.iter().filter_map(|o| text(o, "text")).collect())
            .unwrap_or_default();
        return Some(ContentDetails::Poll {
            question: text(poll, "question").unwrap_or_default(),
            options,
            is_closed: poll.get("is_closed").and_then(Value::as_bool).unwrap_or(false),
        });
    }
    if let Some(dice) = message.get("dice").filter(|v| v.is_object()) {
        return Some(ContentDetails::Dice {
            emoji: text(dice, "emoji").unwrap_or_default(),
            value: int(dice, "value").unwrap_or(0),
        });
    }
    None
}

/// The extras of `message`, which arrived in update `update_id`.
pub(crate) fn metadata(message: &Value, update_id: Option<i64>) -> MessageMetadata {
    let mut extra = Map::new();
    for key in ["quote", "external_reply"] {
        if present(message, key)
            && let Some(value) = message.get(key)
        {
            extra.insert(key.into(), value.clone());
        }
    }
    MessageMetadata {
        forward_origin: forward_origin(message),
        entities: entities(message),
        media_group_id: text(message, "media_group_id"),
        thread_id: int(message, "message_thread_id"),
        author_signature: text(message, "author_signature"),
        via_bot_id: message.get("via_bot").and_then(|bot| int(bot, "id")),
        content: content(message),
        update_id,
        raw: Some(message.clone()),
        extra,
        ..MessageMetadata::default()
    }
}

/// The reactions of a `message_reaction` update (`new_reaction`), those that parse.
pub(crate) fn reactions(list: Option<&Value>) -> Vec<Reaction> {
    list.and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|reaction| serde_json::from_value(reaction.clone()).ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn forward_origins_of_every_form_land_in_one_shape() {
        let current = json!({ "forward_origin": { "type": "channel", "date": 5,
            "chat": { "id": -1001, "title": "News", "type": "channel" }, "message_id": 9 } });
        assert_eq!(
            forward_origin(&current),
            Some(ForwardOrigin::Channel {
                date: 5,
                chat: OriginChat {
                    id: -1001,
                    title: Some("News".into()),
                    username: None
                },
                message_id: Some(9),
                author_signature: None,
            })
        );
        let legacy_channel = json!({ "forward_from_chat": { "id": -1001, "title": "News" }, "forward_date": 5,
            "forward_from_message_id": 9 });
        assert_eq!(forward_origin(&legacy_channel), forward_origin(&current));
        let hidden = json!({ "forward_sender_name": "Someone", "forward_date": 3 });
        assert!(matches!(
            forward_origin(&hidden),
            Some(ForwardOrigin::HiddenUser { date: 3, .. })
        ));
        assert_eq!(
            forward_origin(&json!({ "forward_origin": { "type": "user" } })),
            None
        );
    }

    #[test]
    fn entities_content_and_reactions_are_read_leniently() {
        let message = json!({ "caption": "x", "caption_entities": [
            { "type": "text_link", "offset": 0, "length": 1, "url": "https://example.com" }, { "broken": true } ],
            "location": { "latitude": 1.5, "longitude": 2.5 } });
        let extras = metadata(&message, Some(7));
        assert_eq!(extras.entities.len(), 1);
        assert_eq!(extras.entities[0].url.as_deref(), Some("https://example.com"));
        assert!(matches!(extras.content, Some(ContentDetails::Location { latitude, .. }) if latitude == 1.5));
        let parsed = reactions(Some(&json!([{ "type": "emoji", "emoji": "👍" }, "odd"])));
        assert_eq!(parsed.len(), 1);
    }
}

//! What a message carries beyond its text and file, in one channel-neutral shape: a bot's update and a personal
//! account's MTProto message produce the same fields (forward origin, formatting, album, thread, reactions,
//! location or contact details), shaped like the Bot API's objects so clients need one parser. The outbox keeps
//! its delivery state here too, which the API does not show.
//!
//! Rows written before this shape existed still parse: unknown keys are kept in `extra`, and a row that does not
//! fit at all is kept whole there (see [`MessageMetadata::from_json`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Extra facts of a message.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MessageMetadata {
    /// Where a forwarded message came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_origin: Option<ForwardOrigin>,
    /// Formatting of the text (or of the caption of a media message), in UTF-16 offsets.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<TextEntity>,
    /// Messages sent together as an album share this id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_group_id: Option<String>,
    /// The forum topic or comment thread, by the id of its first message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<i64>,
    /// Signature of the channel post's author.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author_signature: Option<String>,
    /// The inline bot the message was sent through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via_bot_id: Option<i64>,
    /// Location, venue, contact, poll, dice or link preview details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<ContentDetails>,
    /// Reactions, by the Telegram id of who reacted (`anonymous` when Telegram gives counts only).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reactions: BTreeMap<String, Vec<Reaction>>,
    /// The Bot API `update_id` the message arrived in (bots only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_id: Option<i64>,
    /// The message exactly as the Bot API sent it, for support (bots only; MTProto has no JSON form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<Value>,
    /// The outbox's delivery state of an outgoing message (not shown by the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox: Option<OutboxState>,
    /// Keys this version does not know (older rows), kept as they are.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl MessageMetadata {
    /// Reads a stored metadata document. A row from an older version whose keys do not fit the typed fields
    /// is kept whole in `extra`, so nothing stored is ever lost or refused.
    pub fn from_json(value: Value) -> Self {
        match serde_json::from_value::<Self>(value.clone()) {
            Ok(metadata) => metadata,
            Err(_) => Self {
                extra: match value {
                    Value::Object(fields) => fields,
                    other => Map::from_iter([("legacy".to_owned(), other)]),
                },
                ..Self::default()
            },
        }
    }

    /// The stored form.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| Value::Object(Map::new()))
    }

    /// The form the API shows: everything but the outbox's internal state.
    pub fn public_json(&self) -> Value {
        let mut value = self.to_json();
        if let Some(fields) = value.as_object_mut() {
            fields.remove("outbox");
        }
        value
    }

    /// Why sending failed, if it did (also for rows written before the outbox state was typed).
    pub fn delivery_error(&self) -> Option<String> {
        self.outbox
            .as_ref()
            .and_then(|outbox| outbox.error.clone())
            .or_else(|| self.extra.get("error").and_then(Value::as_str).map(str::to_owned))
    }

    /// The `random_id` every attempt of this outgoing message uses (also for rows written before the outbox
    /// state was typed).
    pub fn random_id(&self) -> Option<i64> {
        self.outbox
            .as_ref()
            .and_then(|outbox| outbox.random_id)
            .or_else(|| self.extra.get("random_id").and_then(Value::as_i64))
    }

    /// Sets the reactions of `who` (a Telegram user id, or `None` for counts without a name); an empty list
    /// removes them.
    pub fn set_reactions(&mut self, who: Option<i64>, reactions: Vec<Reaction>) {
        let key = who.map_or_else(|| "anonymous".to_owned(), |id| id.to_string());
        if reactions.is_empty() {
            self.reactions.remove(&key);
        } else {
            self.reactions.insert(key, reactions);
        }
    }
}

/// Where a forwarded message came from: the Bot API's `MessageOrigin`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ForwardOrigin {
    /// A user whose profile may be linked.
    User {
        /// When the original was sent (Unix seconds).
        date: i64,
        /// The author.
        sender_user: OriginUser,
    },
    /// A user who hides their account in forwards.
    HiddenUser {
        /// When the original was sent (Unix seconds).
        date: i64,
        /// The name they show instead.
        sender_user_name: String,
    },
    /// A message an anonymous group admin (or the group itself) sent.
    Chat {
        /// When the original was sent (Unix seconds).
        date: i64,
        /// The group.
        sender_chat: OriginChat,
        /// The admin's signature, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        author_signature: Option<String>,
    },
    /// A channel post.
    Channel {
        /// When the original was sent (Unix seconds).
        date: i64,
        /// The channel.
        chat: OriginChat,
        /// The post's id in the channel.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message_id: Option<i64>,
        /// The author's signature, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        author_signature: Option<String>,
    },
}

/// The author of a forwarded message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginUser {
    /// Telegram user id.
    pub id: i64,
    /// First name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Last name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// @username, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// The group or channel a forwarded message came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginChat {
    /// Telegram chat id in the Bot API's form (channels `-100…`).
    pub id: i64,
    /// Title, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// @username, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// A formatting entity: the Bot API's `MessageEntity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextEntity {
    /// `bold`, `italic`, `url`, `text_link`, `mention`, `code`, `pre`, ...
    #[serde(rename = "type")]
    pub kind: String,
    /// Start, in UTF-16 code units.
    pub offset: i64,
    /// Length, in UTF-16 code units.
    pub length: i64,
    /// Target of a `text_link`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The user of a `text_mention`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<EntityUser>,
    /// Language of a `pre` block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// Id of a `custom_emoji`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_emoji_id: Option<String>,
}

/// The user a `text_mention` points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityUser {
    /// Telegram user id.
    pub id: i64,
}

/// What a message without text shows, beyond its file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentDetails {
    /// A point on the map.
    Location {
        /// Latitude.
        latitude: f64,
        /// Longitude.
        longitude: f64,
        /// Seconds a live location is updated for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        live_period: Option<i64>,
    },
    /// A named place.
    Venue {
        /// Latitude.
        latitude: f64,
        /// Longitude.
        longitude: f64,
        /// Name.
        title: String,
        /// Address.
        address: String,
    },
    /// A shared contact.
    Contact {
        /// Phone number.
        phone_number: String,
        /// First name.
        first_name: String,
        /// Last name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_name: Option<String>,
        /// Telegram user id, when the contact has an account.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<i64>,
    },
    /// A poll.
    Poll {
        /// The question.
        question: String,
        /// The answers offered.
        options: Vec<String>,
        /// Whether voting has ended.
        is_closed: bool,
    },
    /// An animated dice roll.
    Dice {
        /// The emoji the dice is shown as.
        emoji: String,
        /// What it rolled.
        value: i64,
    },
    /// A link preview of the text.
    WebPage {
        /// The page.
        url: String,
    },
}

/// A reaction: the Bot API's `ReactionType`, with a count when Telegram gives counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    /// `emoji`, `custom_emoji` or `paid`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The emoji of an `emoji` reaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
    /// Id of a `custom_emoji` reaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_emoji_id: Option<String>,
    /// How many gave it (personal accounts see counts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
}

/// Where the delivery of an outgoing message stands: recorded before each call to the channel and after it,
/// so an attempt whose outcome was never recorded is recognised instead of silently repeated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxState {
    /// Telegram's `random_id` for personal accounts: fixed when queued and reused by every attempt, so
    /// Telegram drops a repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_id: Option<i64>,
    /// Set while an attempt is with the channel; cleared when its outcome is recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_flight_since: Option<DateTime<Utc>>,
    /// Attempts handed to the channel so far.
    #[serde(default)]
    pub attempts: u32,
    /// Manual retries after a failure.
    #[serde(default)]
    pub retries: u32,
    /// Why the message failed, once it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn typed_fields_round_trip_and_unknown_keys_survive() {
        let stored = json!({
            "forward_origin": { "type": "channel", "date": 1_700_000_000, "chat": { "id": -100_123, "title": "News" }, "message_id": 7 },
            "entities": [{ "type": "bold", "offset": 0, "length": 4 }],
            "something_new": { "x": 1 },
        });
        let metadata = MessageMetadata::from_json(stored.clone());
        assert!(matches!(
            metadata.forward_origin,
            Some(ForwardOrigin::Channel {
                message_id: Some(7),
                ..
            })
        ));
        assert_eq!(metadata.entities.len(), 1);
        assert_eq!(metadata.to_json(), stored);
    }

    #[test]
    fn a_row_of_an_older_shape_is_kept_whole() {
        let legacy = json!({ "forward_origin": { "date": 1, "from_id": 77 }, "error": "boom" });
        let metadata = MessageMetadata::from_json(legacy.clone());
        assert_eq!(metadata.forward_origin, None);
        assert_eq!(metadata.to_json(), legacy);
    }

    #[test]
    fn the_outbox_state_is_not_public_and_reactions_are_per_user() {
        let mut metadata = MessageMetadata {
            outbox: Some(OutboxState {
                random_id: Some(42),
                ..OutboxState::default()
            }),
            ..MessageMetadata::default()
        };
        let thumbs = Reaction {
            kind: "emoji".into(),
            emoji: Some("👍".into()),
            custom_emoji_id: None,
            count: None,
        };
        metadata.set_reactions(Some(5), vec![thumbs]);
        assert!(metadata.to_json().get("outbox").is_some());
        assert!(metadata.public_json().get("outbox").is_none());
        assert_eq!(metadata.public_json()["reactions"]["5"][0]["emoji"], "👍");
        metadata.set_reactions(Some(5), Vec::new());
        assert!(metadata.reactions.is_empty());
    }
}

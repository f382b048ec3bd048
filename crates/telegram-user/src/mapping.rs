//! Pure mapping of raw MTProto updates and messages (`grammers_tl_types`) to crm-core's
//! [`PersonalUpdate`]/[`InboundEvent`], with the users and chats Telegram sent alongside. Chats outside the
//! collect scope map to nothing; service messages map to [`InboundEvent::Ignored`].

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use crm_core::chat::ChatType;
use crm_core::inbound::{ChatRef, InboundEvent, InboundMessage, MediaRef, Sender};
use crm_core::message::{Direction, MessageType};
use crm_core::personal::{CollectScope, PersonalUpdate, Profile};
use grammers_tl_types as tl;
use serde_json::{Map, Value, json};

use crate::session::channel_dialog_id;

/// What we keep of a user to name chats and senders.
#[derive(Debug, Clone, Default)]
struct UserInfo {
    first_name: Option<String>,
    last_name: Option<String>,
    username: Option<String>,
}

/// What we keep of a group or channel.
#[derive(Debug, Clone)]
struct ChatInfo {
    chat_type: ChatType,
    title: Option<String>,
    username: Option<String>,
}

/// Users and chats that came with an update or an answer, by bare id.
#[derive(Debug, Default, Clone)]
pub struct PeerIndex {
    users: HashMap<i64, UserInfo>,
    chats: HashMap<i64, ChatInfo>,
    channels: HashMap<i64, ChatInfo>,
}

fn non_empty(value: &Option<String>) -> Option<String> {
    value.as_ref().filter(|s| !s.is_empty()).cloned()
}

fn non_empty_str(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

impl PeerIndex {
    /// Indexes the users and chats of one update batch or answer.
    pub fn new(users: &[tl::enums::User], chats: &[tl::enums::Chat]) -> Self {
        let mut index = Self::default();
        index.extend(users, chats);
        index
    }

    /// Whether `peer` came with the batch or answer.
    pub fn contains(&self, peer: &tl::enums::Peer) -> bool {
        match peer {
            tl::enums::Peer::User(user) => self.users.contains_key(&user.user_id),
            tl::enums::Peer::Chat(chat) => self.chats.contains_key(&chat.chat_id),
            tl::enums::Peer::Channel(channel) => self.channels.contains_key(&channel.channel_id),
        }
    }

    /// Adds the users and chats of another answer (replacing what is known of the same peers).
    pub fn extend(&mut self, users: &[tl::enums::User], chats: &[tl::enums::Chat]) {
        for user in users {
            if let tl::enums::User::User(user) = user {
                self.users.insert(
                    user.id,
                    UserInfo {
                        first_name: non_empty(&user.first_name),
                        last_name: non_empty(&user.last_name),
                        username: non_empty(&user.username),
                    },
                );
            }
        }
        for chat in chats {
            match chat {
                tl::enums::Chat::Chat(tl::types::Chat { id, title, .. })
                | tl::enums::Chat::Forbidden(tl::types::ChatForbidden { id, title }) => {
                    self.chats.insert(
                        *id,
                        ChatInfo {
                            chat_type: ChatType::Group,
                            title: non_empty_str(title),
                            username: None,
                        },
                    );
                }
                tl::enums::Chat::Channel(channel) => {
                    self.channels.insert(
                        channel.id,
                        ChatInfo {
                            chat_type: channel_type(
                                channel.broadcast,
                                channel.megagroup || channel.gigagroup,
                            ),
                            title: non_empty_str(&channel.title),
                            username: non_empty(&channel.username),
                        },
                    );
                }
                tl::enums::Chat::ChannelForbidden(channel) => {
                    self.channels.insert(
                        channel.id,
                        ChatInfo {
                            chat_type: channel_type(channel.broadcast, channel.megagroup),
                            title: non_empty_str(&channel.title),
                            username: None,
                        },
                    );
                }
                tl::enums::Chat::Empty(_)
                | tl::enums::Chat::Community(_)
                | tl::enums::Chat::CommunityForbidden(_) => {}
            }
        }
    }

    fn user_name(&self, id: i64) -> Option<String> {
        let user = self.users.get(&id)?;
        let name = [user.first_name.clone(), user.last_name.clone()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        (!name.is_empty()).then_some(name)
    }
}

fn channel_type(broadcast: bool, group: bool) -> ChatType {
    if broadcast && !group {
        ChatType::Channel
    } else {
        ChatType::Supergroup
    }
}

/// The Bot API dialog id of a peer (users positive, basic groups `-id`, channels `-100…`).
pub fn dialog_id(peer: &tl::enums::Peer) -> Option<i64> {
    match peer {
        tl::enums::Peer::User(user) => Some(user.user_id),
        tl::enums::Peer::Chat(chat) => chat.chat_id.checked_neg(),
        tl::enums::Peer::Channel(channel) => channel_dialog_id(channel.channel_id),
    }
}

/// The type of chat a peer is (channels Telegram did not describe count as supergroups).
pub fn peer_chat_type(peer: &tl::enums::Peer, peers: &PeerIndex) -> ChatType {
    chat_ref(peer, peers, false).map_or(ChatType::Private, |chat| chat.chat_type)
}

/// Whether chats of this type are collected under `scope`.
pub fn in_scope(chat_type: &ChatType, scope: CollectScope) -> bool {
    match chat_type {
        ChatType::Private => true,
        ChatType::Group | ChatType::Supergroup => scope.include_groups,
        ChatType::Channel => scope.include_channels,
    }
}

/// The chat a peer names. `post` tells a channel we know nothing about apart from a supergroup.
fn chat_ref(peer: &tl::enums::Peer, peers: &PeerIndex, post: bool) -> Option<ChatRef> {
    let peer_id = dialog_id(peer)?;
    Some(match peer {
        tl::enums::Peer::User(user) => {
            let info = peers.users.get(&user.user_id).cloned().unwrap_or_default();
            ChatRef {
                peer_id,
                chat_type: ChatType::Private,
                title: None,
                username: info.username,
                first_name: info.first_name,
                last_name: info.last_name,
            }
        }
        tl::enums::Peer::Chat(chat) => {
            let info = peers.chats.get(&chat.chat_id);
            ChatRef {
                peer_id,
                chat_type: ChatType::Group,
                title: info.and_then(|info| info.title.clone()),
                username: None,
                first_name: None,
                last_name: None,
            }
        }
        tl::enums::Peer::Channel(channel) => {
            let info = peers.channels.get(&channel.channel_id);
            ChatRef {
                peer_id,
                chat_type: info.map_or(
                    if post {
                        ChatType::Channel
                    } else {
                        ChatType::Supergroup
                    },
                    |info| info.chat_type,
                ),
                title: info.and_then(|info| info.title.clone()),
                username: info.and_then(|info| info.username.clone()),
                first_name: None,
                last_name: None,
            }
        }
    })
}

fn sender_of(peer: &tl::enums::Peer, peers: &PeerIndex) -> Option<Sender> {
    let id = dialog_id(peer)?;
    Some(match peer {
        tl::enums::Peer::User(user) => Sender {
            id,
            name: peers.user_name(user.user_id),
            username: peers.users.get(&user.user_id).and_then(|u| u.username.clone()),
        },
        tl::enums::Peer::Chat(chat) => Sender {
            id,
            name: peers.chats.get(&chat.chat_id).and_then(|c| c.title.clone()),
            username: None,
        },
        tl::enums::Peer::Channel(channel) => {
            let info = peers.channels.get(&channel.channel_id);
            Sender {
                id,
                name: info.and_then(|c| c.title.clone()),
                username: info.and_then(|c| c.username.clone()),
            }
        }
    })
}

fn date(seconds: i32) -> DateTime<Utc> {
    DateTime::from_timestamp(i64::from(seconds), 0).unwrap_or(DateTime::UNIX_EPOCH)
}

/// Who wrote a message: `from_id`, else the owner for our own private messages, else the peer itself
/// (the other side of a private chat, or a channel posting).
fn message_sender(
    from_id: Option<&tl::enums::Peer>,
    chat: &ChatRef,
    peer: &tl::enums::Peer,
    out: bool,
    self_id: i64,
    peers: &PeerIndex,
) -> Option<Sender> {
    if let Some(from) = from_id {
        return sender_of(from, peers);
    }
    if out {
        return Some(Sender {
            id: self_id,
            name: peers.user_name(self_id),
            username: peers.users.get(&self_id).and_then(|u| u.username.clone()),
        });
    }
    match chat.chat_type {
        ChatType::Private | ChatType::Channel => sender_of(peer, peers),
        ChatType::Group | ChatType::Supergroup => None,
    }
}

/// The largest downloadable size of a photo: its type, byte size and pixel count.
pub fn largest_photo_size(sizes: &[tl::enums::PhotoSize]) -> Option<(String, Option<i64>)> {
    sizes
        .iter()
        .filter_map(|size| match size {
            tl::enums::PhotoSize::Size(s) => Some((
                s.r#type.clone(),
                Some(i64::from(s.size)),
                i64::from(s.w) * i64::from(s.h),
            )),
            tl::enums::PhotoSize::Progressive(s) => Some((
                s.r#type.clone(),
                s.sizes.iter().max().map(|&b| i64::from(b)),
                i64::from(s.w) * i64::from(s.h),
            )),
            _ => None,
        })
        .max_by_key(|(_, bytes, pixels)| (*pixels, bytes.unwrap_or(0)))
        .map(|(kind, bytes, _)| (kind, bytes))
}

fn photo_media(photo: &tl::types::Photo) -> MediaRef {
    MediaRef {
        file_id: format!("photo:{}", photo.id),
        file_unique_id: Some(photo.id.to_string()),
        file_size: largest_photo_size(&photo.sizes).and_then(|(_, bytes)| bytes),
        file_name: None,
        mime_type: Some("image/jpeg".to_owned()),
    }
}

/// The file name a document carries.
pub fn document_file_name(document: &tl::types::Document) -> Option<String> {
    document.attributes.iter().find_map(|attribute| match attribute {
        tl::enums::DocumentAttribute::Filename(name) => non_empty_str(&name.file_name),
        _ => None,
    })
}

fn document_media(document: &tl::types::Document) -> MediaRef {
    MediaRef {
        file_id: format!("document:{}", document.id),
        file_unique_id: Some(document.id.to_string()),
        file_size: Some(document.size),
        file_name: document_file_name(document),
        mime_type: non_empty_str(&document.mime_type),
    }
}

/// The kind of a document, by its attributes (a video sticker is a sticker, a silent MP4 GIF an animation).
fn document_type(document: &tl::types::Document, media: &tl::types::MessageMediaDocument) -> MessageType {
    use tl::enums::DocumentAttribute as A;
    let attributes = &document.attributes;
    if attributes.iter().any(|a| matches!(a, A::Sticker(_))) {
        return MessageType::Sticker;
    }
    if attributes.iter().any(|a| matches!(a, A::Animated)) {
        return MessageType::Animation;
    }
    if let Some(video) = attributes.iter().find_map(|a| match a {
        A::Video(video) => Some(video),
        _ => None,
    }) {
        return if video.round_message || media.round {
            MessageType::VideoNote
        } else {
            MessageType::Video
        };
    }
    if let Some(audio) = attributes.iter().find_map(|a| match a {
        A::Audio(audio) => Some(audio),
        _ => None,
    }) {
        return if audio.voice || media.voice {
            MessageType::Voice
        } else {
            MessageType::Audio
        };
    }
    MessageType::Document
}

fn geo_json(geo: &tl::enums::GeoPoint) -> Value {
    match geo {
        tl::enums::GeoPoint::Point(point) => json!({ "latitude": point.lat, "longitude": point.long }),
        tl::enums::GeoPoint::Empty => Value::Null,
    }
}

/// The kind of content, its file and content-specific extras.
fn content(media: Option<&tl::enums::MessageMedia>) -> (MessageType, Option<MediaRef>, Map<String, Value>) {
    use tl::enums::MessageMedia as M;
    let mut extra = Map::new();
    let Some(media) = media else {
        return (MessageType::Text, None, extra);
    };
    let (kind, file) = match media {
        M::Empty => (MessageType::Text, None),
        M::WebPage(page) => {
            if let tl::enums::WebPage::Page(page) = &page.webpage {
                extra.insert("web_page".into(), json!({ "url": page.url }));
            }
            (MessageType::Text, None)
        }
        M::Photo(photo) => match &photo.photo {
            Some(tl::enums::Photo::Photo(photo)) => (MessageType::Photo, Some(photo_media(photo))),
            _ => (MessageType::Photo, None),
        },
        M::Document(document_media_raw) => match &document_media_raw.document {
            Some(tl::enums::Document::Document(document)) => (
                document_type(document, document_media_raw),
                Some(document_media(document)),
            ),
            _ => (MessageType::Document, None),
        },
        M::Geo(geo) => {
            extra.insert("location".into(), geo_json(&geo.geo));
            (MessageType::Location, None)
        }
        M::GeoLive(geo) => {
            let mut location = geo_json(&geo.geo);
            if let Value::Object(fields) = &mut location {
                fields.insert("live_period".into(), json!(geo.period));
            }
            extra.insert("location".into(), location);
            (MessageType::Location, None)
        }
        M::Venue(venue) => {
            extra.insert(
                "venue".into(),
                json!({ "location": geo_json(&venue.geo), "title": venue.title, "address": venue.address }),
            );
            (MessageType::Venue, None)
        }
        M::Contact(contact) => {
            extra.insert(
                "contact".into(),
                json!({ "phone_number": contact.phone_number, "first_name": contact.first_name,
                        "last_name": contact.last_name, "user_id": contact.user_id }),
            );
            (MessageType::Contact, None)
        }
        M::Poll(poll) => {
            let tl::enums::Poll::Poll(poll_body) = &poll.poll;
            let tl::enums::TextWithEntities::Entities(question) = &poll_body.question;
            let answers: Vec<Value> = poll_body
                .answers
                .iter()
                .filter_map(|answer| match answer {
                    tl::enums::PollAnswer::Answer(answer) => {
                        let tl::enums::TextWithEntities::Entities(text) = &answer.text;
                        Some(Value::from(text.text.clone()))
                    }
                    tl::enums::PollAnswer::InputPollAnswer(_) => None,
                })
                .collect();
            extra.insert(
                "poll".into(),
                json!({ "question": question.text, "options": answers, "is_closed": poll_body.closed,
                        "type": if poll_body.quiz { "quiz" } else { "regular" } }),
            );
            (MessageType::Poll, None)
        }
        M::Dice(dice) => {
            extra.insert(
                "dice".into(),
                json!({ "emoji": dice.emoticon, "value": dice.value }),
            );
            (MessageType::Dice, None)
        }
        M::Unsupported
        | M::Game(_)
        | M::Invoice(_)
        | M::Story(_)
        | M::Giveaway(_)
        | M::GiveawayResults(_)
        | M::PaidMedia(_)
        | M::ToDo(_)
        | M::VideoStream(_) => (MessageType::Other, None),
    };
    (kind, file, extra)
}

/// A formatting entity as a Bot API `MessageEntity` (same UTF-16 offsets); kinds the Bot API lacks are dropped.
fn entity_json(entity: &tl::enums::MessageEntity) -> Option<Value> {
    use tl::enums::MessageEntity as E;
    let (kind, offset, length, extra) = match entity {
        E::Mention(e) => ("mention", e.offset, e.length, None),
        E::Hashtag(e) => ("hashtag", e.offset, e.length, None),
        E::BotCommand(e) => ("bot_command", e.offset, e.length, None),
        E::Url(e) => ("url", e.offset, e.length, None),
        E::Email(e) => ("email", e.offset, e.length, None),
        E::Bold(e) => ("bold", e.offset, e.length, None),
        E::Italic(e) => ("italic", e.offset, e.length, None),
        E::Underline(e) => ("underline", e.offset, e.length, None),
        E::Strike(e) => ("strikethrough", e.offset, e.length, None),
        E::Spoiler(e) => ("spoiler", e.offset, e.length, None),
        E::Code(e) => ("code", e.offset, e.length, None),
        E::Phone(e) => ("phone_number", e.offset, e.length, None),
        E::Cashtag(e) => ("cashtag", e.offset, e.length, None),
        E::Pre(e) => (
            "pre",
            e.offset,
            e.length,
            non_empty_str(&e.language).map(|language| ("language", json!(language))),
        ),
        E::TextUrl(e) => ("text_link", e.offset, e.length, Some(("url", json!(e.url)))),
        E::MentionName(e) => (
            "text_mention",
            e.offset,
            e.length,
            Some(("user", json!({ "id": e.user_id }))),
        ),
        E::CustomEmoji(e) => (
            "custom_emoji",
            e.offset,
            e.length,
            Some(("custom_emoji_id", json!(e.document_id.to_string()))),
        ),
        E::Blockquote(e) => (
            if e.collapsed {
                "expandable_blockquote"
            } else {
                "blockquote"
            },
            e.offset,
            e.length,
            None,
        ),
        _ => return None,
    };
    let mut value = json!({ "type": kind, "offset": offset, "length": length });
    if let (Some((key, extra)), Value::Object(fields)) = (extra, &mut value) {
        fields.insert(key.to_owned(), extra);
    }
    Some(value)
}

fn forward_origin(header: &tl::enums::MessageFwdHeader) -> Value {
    let tl::enums::MessageFwdHeader::Header(header) = header;
    let mut origin = Map::new();
    origin.insert("date".into(), json!(header.date));
    if let Some(from) = header.from_id.as_ref().and_then(dialog_id) {
        origin.insert("from_id".into(), json!(from));
    }
    if let Some(name) = &header.from_name {
        origin.insert("from_name".into(), json!(name));
    }
    if let Some(post) = header.channel_post {
        origin.insert("message_id".into(), json!(post));
    }
    if let Some(author) = &header.post_author {
        origin.insert("author_signature".into(), json!(author));
    }
    Value::Object(origin)
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
    let (message_type, media, mut extra) = content(message.media.as_ref());
    let body = non_empty_str(&message.message);
    let (text, caption) = match message_type {
        MessageType::Text => (body, None),
        _ => (None, body),
    };
    let reply_to_telegram_id = match &message.reply_to {
        Some(tl::enums::MessageReplyHeader::Header(header)) => {
            if let Some(top) = header.reply_to_top_id {
                extra.insert("message_thread_id".into(), json!(top));
            }
            header.reply_to_msg_id.map(i64::from)
        }
        _ => None,
    };
    if let Some(grouped) = message.grouped_id {
        extra.insert("media_group_id".into(), json!(grouped.to_string()));
    }
    if let Some(header) = &message.fwd_from {
        extra.insert("forward_origin".into(), forward_origin(header));
    }
    if let Some(entities) = &message.entities {
        extra.insert("entities_count".into(), json!(entities.len()));
        let key = if message_type == MessageType::Text {
            "entities"
        } else {
            "caption_entities"
        };
        extra.insert(
            key.into(),
            Value::Array(entities.iter().filter_map(entity_json).collect()),
        );
    }
    if let Some(bot) = message.via_bot_id {
        extra.insert("via_bot_id".into(), json!(bot));
    }
    if let Some(author) = &message.post_author {
        extra.insert("author_signature".into(), json!(author));
    }
    if let Some(reactions) = &message.reactions {
        extra.insert("reactions".into(), reactions_json(reactions));
    }
    Some(InboundMessage {
        chat,
        telegram_message_id: i64::from(message.id),
        direction: if message.out {
            Direction::Outbound
        } else {
            Direction::Inbound
        },
        message_type,
        text,
        caption,
        sender,
        reply_to_telegram_id,
        date: date(message.date),
        edited_at: message.edit_date.map(date),
        media,
        metadata: Value::Object(extra),
    })
}

fn reaction_json(reaction: &tl::enums::Reaction) -> Option<Value> {
    match reaction {
        tl::enums::Reaction::Empty => None,
        tl::enums::Reaction::Emoji(emoji) => Some(json!({ "type": "emoji", "emoji": emoji.emoticon })),
        tl::enums::Reaction::CustomEmoji(custom) => {
            Some(json!({ "type": "custom_emoji", "custom_emoji_id": custom.document_id.to_string() }))
        }
        tl::enums::Reaction::Paid => Some(json!({ "type": "paid" })),
    }
}

/// The reactions of a message as Bot API-like `ReactionType` objects with their counts.
pub fn reactions_json(reactions: &tl::enums::MessageReactions) -> Value {
    let tl::enums::MessageReactions::Reactions(reactions) = reactions;
    Value::Array(
        reactions
            .results
            .iter()
            .filter_map(|result| {
                let tl::enums::ReactionCount::Count(count) = result;
                let mut value = reaction_json(&count.reaction)?;
                if let Value::Object(fields) = &mut value {
                    fields.insert("count".into(), json!(count.count));
                    fields.insert("chosen".into(), json!(count.chosen_order.is_some()));
                }
                Some(value)
            })
            .collect(),
    )
}

fn map_reactions(
    update: &tl::types::UpdateMessageReactions,
    peers: &PeerIndex,
    scope: CollectScope,
    now: DateTime<Utc>,
) -> Option<InboundEvent> {
    let chat = chat_ref(&update.peer, peers, false)?;
    if !in_scope(&chat.chat_type, scope) {
        return None;
    }
    let tl::enums::MessageReactions::Reactions(raw) = &update.reactions;
    // The newest recent reaction says who reacted last and when, if Telegram lists them.
    let latest = raw.recent_reactions.as_ref().and_then(|recent| {
        recent
            .iter()
            .map(|r| {
                let tl::enums::MessagePeerReaction::Reaction(r) = r;
                r
            })
            .max_by_key(|r| r.date)
    });
    Some(InboundEvent::ReactionChanged {
        chat,
        telegram_message_id: i64::from(update.msg_id),
        user_id: latest.and_then(|r| match &r.peer_id {
            tl::enums::Peer::User(user) => Some(user.user_id),
            _ => None,
        }),
        reactions: reactions_json(&update.reactions),
        date: latest.map_or(now, |r| date(r.date)),
    })
}

/// Whether a peer of a read or delete update is out of scope (only decidable when it is a known chat).
fn peer_out_of_scope(peer: &tl::enums::Peer, peers: &PeerIndex, scope: CollectScope) -> bool {
    match peer {
        tl::enums::Peer::User(_) => false,
        tl::enums::Peer::Chat(_) => !scope.include_groups,
        tl::enums::Peer::Channel(channel) => peers
            .channels
            .get(&channel.channel_id)
            .is_some_and(|info| !in_scope(&info.chat_type, scope)),
    }
}

/// Maps one update from the update stream. `now` dates reactions Telegram sends without a date.
pub fn map_update(
    update: &tl::enums::Update,
    peers: &PeerIndex,
    scope: CollectScope,
    self_id: i64,
    now: DateTime<Utc>,
) -> Option<PersonalUpdate> {
    use tl::enums::Update as U;
    let inbound = |message: &tl::enums::Message, edited: bool| {
        map_message(message, peers, scope, self_id, edited).map(PersonalUpdate::Inbound)
    };
    match update {
        U::NewMessage(u) => inbound(&u.message, false),
        U::NewChannelMessage(u) => inbound(&u.message, false),
        U::EditMessage(u) => inbound(&u.message, true),
        U::EditChannelMessage(u) => inbound(&u.message, true),
        // grammers turns the `pts` of our own requests (read history, ...) into deletions of nothing.
        U::DeleteMessages(u) if u.messages.is_empty() => None,
        U::DeleteMessages(u) => Some(PersonalUpdate::Deleted {
            peer_id: None,
            telegram_message_ids: u.messages.iter().map(|&id| i64::from(id)).collect(),
        }),
        U::DeleteChannelMessages(u) if u.messages.is_empty() => None,
        U::DeleteChannelMessages(u) => {
            let peer = tl::enums::Peer::Channel(tl::types::PeerChannel {
                channel_id: u.channel_id,
            });
            if peer_out_of_scope(&peer, peers, scope) {
                return None;
            }
            Some(PersonalUpdate::Deleted {
                peer_id: Some(channel_dialog_id(u.channel_id)?),
                telegram_message_ids: u.messages.iter().map(|&id| i64::from(id)).collect(),
            })
        }
        U::ReadHistoryOutbox(u) => {
            if peer_out_of_scope(&u.peer, peers, scope) {
                return None;
            }
            Some(PersonalUpdate::ReadOutbox {
                peer_id: dialog_id(&u.peer)?,
                max_id: i64::from(u.max_id),
            })
        }
        U::ReadChannelOutbox(u) => {
            let peer = tl::enums::Peer::Channel(tl::types::PeerChannel {
                channel_id: u.channel_id,
            });
            if peer_out_of_scope(&peer, peers, scope) {
                return None;
            }
            Some(PersonalUpdate::ReadOutbox {
                peer_id: channel_dialog_id(u.channel_id)?,
                max_id: i64::from(u.max_id),
            })
        }
        U::MessageReactions(u) => map_reactions(u, peers, scope, now).map(PersonalUpdate::Inbound),
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
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    pub(crate) const SELF_ID: i64 = 1000;
    const ANN: i64 = 42;
    const GROUP: i64 = 555;
    const SUPERGROUP: i64 = 777;
    const CHANNEL: i64 = 888;

    pub(crate) fn user(id: i64, first: &str, last: Option<&str>, username: Option<&str>) -> tl::enums::User {
        tl::types::User {
            is_self: id == SELF_ID,
            contact: false,
            mutual_contact: false,
            deleted: false,
            bot: false,
            bot_chat_history: false,
            bot_nochats: false,
            verified: false,
            restricted: false,
            min: false,
            bot_inline_geo: false,
            support: false,
            scam: false,
            apply_min_photo: false,
            fake: false,
            bot_attach_menu: false,
            premium: false,
            attach_menu_enabled: false,
            bot_can_edit: false,
            close_friend: false,
            stories_hidden: false,
            stories_unavailable: false,
            contact_require_premium: false,
            bot_business: false,
            bot_has_main_app: false,
            bot_forum_view: false,
            bot_forum_can_manage_topics: false,
            bot_can_manage_bots: false,
            bot_guestchat: false,
            bot_guard: false,
            id,
            access_hash: Some(id * 10),
            first_name: Some(first.to_owned()),
            last_name: last.map(str::to_owned),
            username: username.map(str::to_owned),
            phone: Some("15550001".to_owned()),
            photo: None,
            status: None,
            bot_info_version: None,
            restriction_reason: None,
            bot_inline_placeholder: None,
            lang_code: None,
            emoji_status: None,
            usernames: None,
            stories_max_id: None,
            color: None,
            profile_color: None,
            bot_active_users: None,
            bot_verification_icon: None,
            send_paid_messages_stars: None,
            linked_community_id: None,
        }
        .into()
    }

    fn channel(id: i64, title: &str, broadcast: bool) -> tl::enums::Chat {
        tl::types::Channel {
            creator: false,
            left: false,
            broadcast,
            verified: false,
            megagroup: !broadcast,
            restricted: false,
            signatures: false,
            min: false,
            scam: false,
            has_link: false,
            has_geo: false,
            slowmode_enabled: false,
            call_active: false,
            call_not_empty: false,
            fake: false,
            gigagroup: false,
            noforwards: false,
            join_to_send: false,
            join_request: false,
            forum: false,
            stories_hidden: false,
            stories_hidden_min: false,
            stories_unavailable: false,
            signature_profiles: false,
            autotranslation: false,
            broadcast_messages_allowed: false,
            monoforum: false,
            forum_tabs: false,
            id,
            access_hash: Some(id * 3),
            title: title.to_owned(),
            username: Some(format!("chan{id}")),
            photo: tl::enums::ChatPhoto::Empty,
            date: 1,
            restriction_reason: None,
            admin_rights: None,
            banned_rights: None,
            default_banned_rights: None,
            participants_count: None,
            usernames: None,
            stories_max_id: None,
            color: None,
            profile_color: None,
            emoji_status: None,
            level: None,
            subscription_until_date: None,
            bot_verification_icon: None,
            send_paid_messages_stars: None,
            linked_monoforum_id: None,
            linked_community_id: None,
        }
        .into()
    }

    fn group(id: i64, title: &str) -> tl::enums::Chat {
        tl::types::ChatForbidden {
            id,
            title: title.to_owned(),
        }
        .into()
    }

    pub(crate) fn index() -> PeerIndex {
        PeerIndex::new(
            &[
                user(ANN, "Ann", Some("Lee"), Some("ann")),
                user(SELF_ID, "Owner", None, Some("me")),
            ],
            &[
                group(GROUP, "Family"),
                channel(SUPERGROUP, "Team", false),
                channel(CHANNEL, "News", true),
            ],
        )
    }

    pub(crate) fn peer_user(id: i64) -> tl::enums::Peer {
        tl::types::PeerUser { user_id: id }.into()
    }

    fn peer_channel(id: i64) -> tl::enums::Peer {
        tl::types::PeerChannel { channel_id: id }.into()
    }

    pub(crate) fn message(id: i32, peer: tl::enums::Peer, text: &str) -> tl::types::Message {
        tl::types::Message {
            out: false,
            mentioned: false,
            media_unread: false,
            silent: false,
            post: false,
            from_scheduled: false,
            legacy: false,
            edit_hide: false,
            pinned: false,
            noforwards: false,
            invert_media: false,
            offline: false,
            video_processing_pending: false,
            paid_suggested_post_stars: false,
            paid_suggested_post_ton: false,
            id,
            from_id: None,
            from_boosts_applied: None,
            from_rank: None,
            peer_id: peer,
            saved_peer_id: None,
            fwd_from: None,
            via_bot_id: None,
            via_business_bot_id: None,
            guestchat_via_from: None,
            reply_to: None,
            date: 1_700_000_000,
            message: text.to_owned(),
            media: None,
            reply_markup: None,
            entities: None,
            views: None,
            forwards: None,
            replies: None,
            edit_date: None,
            post_author: None,
            grouped_id: None,
            reactions: None,
            restriction_reason: None,
            ttl_period: None,
            quick_reply_shortcut_id: None,
            effect: None,
            factcheck: None,
            report_delivery_until_date: None,
            paid_message_stars: None,
            suggested_post: None,
            schedule_repeat_period: None,
            summary_from_language: None,
            rich_message: None,
        }
    }

    fn document(attributes: Vec<tl::enums::DocumentAttribute>, mime: &str) -> tl::enums::MessageMedia {
        tl::types::MessageMediaDocument {
            nopremium: false,
            spoiler: false,
            video: false,
            round: false,
            voice: false,
            document: Some(
                tl::types::Document {
                    id: 9001,
                    access_hash: 1,
                    file_reference: vec![1, 2],
                    date: 1,
                    mime_type: mime.to_owned(),
                    size: 12_345,
                    thumbs: None,
                    video_thumbs: None,
                    dc_id: 2,
                    attributes,
                }
                .into(),
            ),
            alt_documents: None,
            video_cover: None,
            video_timestamp: None,
            ttl_seconds: None,
        }
        .into()
    }

    fn new_message(message: tl::types::Message) -> tl::enums::Update {
        tl::types::UpdateNewMessage {
            message: message.into(),
            pts: 1,
            pts_count: 1,
        }
        .into()
    }

    fn all() -> CollectScope {
        CollectScope {
            include_groups: true,
            include_channels: true,
        }
    }

    fn map(update: &tl::enums::Update, scope: CollectScope) -> Option<PersonalUpdate> {
        map_update(update, &index(), scope, SELF_ID, DateTime::UNIX_EPOCH)
    }

    fn inbound(update: &tl::enums::Update) -> InboundMessage {
        match map(update, all()) {
            Some(PersonalUpdate::Inbound(InboundEvent::NewMessage(message))) => message,
            other => panic!("not a new message: {other:?}"),
        }
    }

    fn inbound_with(update: &tl::enums::Update, peers: &PeerIndex) -> InboundMessage {
        match map_update(update, peers, all(), SELF_ID, DateTime::UNIX_EPOCH) {
            Some(PersonalUpdate::Inbound(InboundEvent::NewMessage(message))) => message,
            other => panic!("not a new message: {other:?}"),
        }
    }

    #[test]
    fn an_index_extended_with_fetched_users_names_a_short_message_chat() {
        let batch = PeerIndex::new(&[], &[]);
        let short = new_message(message(3, peer_user(ANN), "hi"));
        assert!(!batch.contains(&peer_user(ANN)));
        assert_eq!(inbound_with(&short, &batch).chat.first_name, None);

        let mut completed = batch.clone();
        completed.extend(
            &[user(ANN, "Ann", Some("Lee"), Some("ann"))],
            &[group(GROUP, "Family")],
        );
        assert!(completed.contains(&peer_user(ANN)));
        assert!(completed.contains(&tl::types::PeerChat { chat_id: GROUP }.into()));
        assert!(!completed.contains(&peer_channel(CHANNEL)));
        let chat = inbound_with(&short, &completed).chat;
        assert_eq!(chat.first_name.as_deref(), Some("Ann"));
        assert_eq!(chat.username.as_deref(), Some("ann"));
        assert!(index().contains(&peer_channel(CHANNEL)));
    }

    #[test]
    fn a_private_incoming_text_names_chat_and_sender() {
        let mut raw = message(5, peer_user(ANN), "hi there");
        raw.reply_to = Some(
            tl::types::MessageReplyHeader {
                reply_to_scheduled: false,
                forum_topic: false,
                quote: false,
                reply_to_ephemeral: false,
                reply_to_msg_id: Some(4),
                reply_to_peer_id: None,
                reply_from: None,
                reply_media: None,
                reply_to_top_id: None,
                quote_text: None,
                quote_entities: None,
                quote_offset: None,
                todo_item_id: None,
                poll_option: None,
            }
            .into(),
        );
        let mapped = inbound(&new_message(raw));
        assert_eq!(mapped.chat.peer_id, ANN);
        assert_eq!(mapped.chat.chat_type, ChatType::Private);
        assert_eq!(mapped.chat.first_name.as_deref(), Some("Ann"));
        assert_eq!(mapped.chat.username.as_deref(), Some("ann"));
        assert_eq!(mapped.telegram_message_id, 5);
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
        assert_eq!(mapped.reply_to_telegram_id, Some(4));
        assert_eq!(mapped.date.timestamp(), 1_700_000_000);
        assert_eq!(mapped.edited_at, None);
    }

    #[test]
    fn an_outgoing_message_from_another_device_is_outbound_and_ours() {
        let mut raw = message(6, peer_user(ANN), "sent from the phone");
        raw.out = true;
        let mapped = inbound(&new_message(raw));
        assert_eq!(mapped.direction, Direction::Outbound);
        assert_eq!(mapped.chat.peer_id, ANN);
        assert_eq!(mapped.sender.map(|s| s.id), Some(SELF_ID));
    }

    #[test]
    fn a_photo_keeps_its_largest_size_and_caption() {
        let mut raw = message(7, peer_user(ANN), "look");
        raw.media = Some(
            tl::types::MessageMediaPhoto {
                spoiler: false,
                live_photo: false,
                photo: Some(
                    tl::types::Photo {
                        has_stickers: false,
                        id: 31337,
                        access_hash: 1,
                        file_reference: vec![],
                        date: 1,
                        sizes: vec![
                            tl::types::PhotoStrippedSize {
                                r#type: "i".into(),
                                bytes: vec![1],
                            }
                            .into(),
                            tl::types::PhotoSize {
                                r#type: "m".into(),
                                w: 320,
                                h: 320,
                                size: 9_000,
                            }
                            .into(),
                            tl::types::PhotoSizeProgressive {
                                r#type: "y".into(),
                                w: 1280,
                                h: 1280,
                                sizes: vec![1_000, 50_000, 90_000],
                            }
                            .into(),
                        ],
                        video_sizes: None,
                        dc_id: 2,
                    }
                    .into(),
                ),
                ttl_seconds: None,
                video: None,
            }
            .into(),
        );
        let mapped = inbound(&new_message(raw));
        assert_eq!(mapped.message_type, MessageType::Photo);
        assert_eq!(mapped.text, None);
        assert_eq!(mapped.caption.as_deref(), Some("look"));
        let media = mapped.media.unwrap();
        assert_eq!(media.file_id, "photo:31337");
        assert_eq!(media.file_size, Some(90_000));
    }

    #[test]
    fn documents_are_told_apart_by_their_attributes() {
        let named = tl::types::DocumentAttributeFilename {
            file_name: "report.pdf".into(),
        };
        let mut raw = message(8, peer_user(ANN), "");
        raw.media = Some(document(vec![named.into()], "application/pdf"));
        let mapped = inbound(&new_message(raw));
        assert_eq!(mapped.message_type, MessageType::Document);
        assert_eq!(mapped.caption, None);
        let media = mapped.media.unwrap();
        assert_eq!(media.file_id, "document:9001");
        assert_eq!(media.file_name.as_deref(), Some("report.pdf"));
        assert_eq!(media.mime_type.as_deref(), Some("application/pdf"));
        assert_eq!(media.file_size, Some(12_345));

        let audio = |voice: bool| -> tl::enums::DocumentAttribute {
            tl::types::DocumentAttributeAudio {
                voice,
                duration: 3,
                title: None,
                performer: None,
                waveform: None,
            }
            .into()
        };
        let video = |round: bool| -> tl::enums::DocumentAttribute {
            tl::types::DocumentAttributeVideo {
                round_message: round,
                supports_streaming: true,
                nosound: false,
                duration: 1.0,
                w: 1,
                h: 1,
                preload_prefix_size: None,
                video_start_ts: None,
                video_codec: None,
            }
            .into()
        };
        let sticker: tl::enums::DocumentAttribute = tl::types::DocumentAttributeSticker {
            mask: false,
            alt: "😀".into(),
            stickerset: tl::enums::InputStickerSet::Empty,
            mask_coords: None,
        }
        .into();
        let cases = [
            (vec![audio(true)], MessageType::Voice),
            (vec![audio(false)], MessageType::Audio),
            (vec![video(false)], MessageType::Video),
            (vec![video(true)], MessageType::VideoNote),
            (
                vec![video(false), tl::enums::DocumentAttribute::Animated],
                MessageType::Animation,
            ),
            (vec![sticker.clone()], MessageType::Sticker),
            (vec![video(false), sticker], MessageType::Sticker),
        ];
        for (attributes, expected) in cases {
            let mut raw = message(9, peer_user(ANN), "");
            raw.media = Some(document(attributes, "application/octet-stream"));
            assert_eq!(inbound(&new_message(raw)).message_type, expected);
        }
    }

    #[test]
    fn locations_contacts_dice_and_web_pages() {
        let mut raw = message(10, peer_user(ANN), "");
        raw.media = Some(
            tl::types::MessageMediaGeo {
                geo: tl::types::GeoPoint {
                    long: 2.0,
                    lat: 1.0,
                    access_hash: 0,
                    accuracy_radius: None,
                }
                .into(),
            }
            .into(),
        );
        let mapped = inbound(&new_message(raw));
        assert_eq!(mapped.message_type, MessageType::Location);
        assert_eq!(mapped.metadata["location"]["latitude"], 1.0);

        let mut raw = message(11, peer_user(ANN), "");
        raw.media = Some(
            tl::types::MessageMediaDice {
                value: 6,
                emoticon: "🎲".into(),
                game_outcome: None,
            }
            .into(),
        );
        let mapped = inbound(&new_message(raw));
        assert_eq!(mapped.message_type, MessageType::Dice);
        assert_eq!(mapped.metadata["dice"]["value"], 6);

        let mut raw = message(12, peer_user(ANN), "");
        raw.media = Some(
            tl::types::MessageMediaContact {
                phone_number: "+1555".into(),
                first_name: "Bo".into(),
                last_name: String::new(),
                vcard: String::new(),
                user_id: 9,
            }
            .into(),
        );
        assert_eq!(inbound(&new_message(raw)).message_type, MessageType::Contact);

        let mut raw = message(13, peer_user(ANN), "see https://example.org");
        raw.media = Some(
            tl::types::MessageMediaWebPage {
                force_large_media: false,
                force_small_media: false,
                manual: false,
                safe: false,
                webpage: tl::types::WebPageEmpty { id: 1, url: None }.into(),
            }
            .into(),
        );
        let mapped = inbound(&new_message(raw));
        assert_eq!(mapped.message_type, MessageType::Text);
        assert_eq!(mapped.text.as_deref(), Some("see https://example.org"));
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
            Some(PersonalUpdate::Inbound(InboundEvent::EditedMessage(message))) => {
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
            Some(PersonalUpdate::Deleted {
                peer_id: None,
                telegram_message_ids: vec![3, 4]
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
            Some(PersonalUpdate::Deleted {
                peer_id: Some(-1_000_000_000_777),
                telegram_message_ids: vec![9]
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
            Some(PersonalUpdate::ReadOutbox {
                peer_id: ANN,
                max_id: 20
            })
        );
        let read_channel: tl::enums::Update = tl::types::UpdateReadChannelOutbox {
            channel_id: SUPERGROUP,
            max_id: 21,
        }
        .into();
        assert_eq!(
            map(&read_channel, all()),
            Some(PersonalUpdate::ReadOutbox {
                peer_id: -1_000_000_000_777,
                max_id: 21
            })
        );
    }

    #[test]
    fn groups_and_channels_follow_the_scope() {
        let mut in_group = message(15, tl::types::PeerChat { chat_id: GROUP }.into(), "hello all");
        in_group.from_id = Some(peer_user(ANN));
        let update = new_message(in_group);
        assert_eq!(map(&update, CollectScope::default()), None);
        let mapped = inbound(&update);
        assert_eq!(mapped.chat.peer_id, -GROUP);
        assert_eq!(mapped.chat.chat_type, ChatType::Group);
        assert_eq!(mapped.chat.title.as_deref(), Some("Family"));
        assert_eq!(mapped.sender.map(|s| s.id), Some(ANN));

        let supergroup: tl::enums::Update = tl::types::UpdateNewChannelMessage {
            message: message(16, peer_channel(SUPERGROUP), "standup").into(),
            pts: 5,
            pts_count: 1,
        }
        .into();
        let only_groups = CollectScope {
            include_groups: true,
            include_channels: false,
        };
        match map(&supergroup, only_groups) {
            Some(PersonalUpdate::Inbound(InboundEvent::NewMessage(message))) => {
                assert_eq!(message.chat.chat_type, ChatType::Supergroup);
                assert_eq!(message.chat.peer_id, -1_000_000_000_777);
            }
            other => panic!("{other:?}"),
        }

        let mut post = message(17, peer_channel(CHANNEL), "breaking");
        post.post = true;
        let post: tl::enums::Update = tl::types::UpdateNewChannelMessage {
            message: post.into(),
            pts: 6,
            pts_count: 1,
        }
        .into();
        assert_eq!(map(&post, only_groups), None);
        let mapped = inbound(&post);
        assert_eq!(mapped.chat.chat_type, ChatType::Channel);
        assert_eq!(mapped.chat.title.as_deref(), Some("News"));
        assert_eq!(mapped.sender.map(|s| s.id), Some(-1_000_000_000_888));
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
            Some(PersonalUpdate::Inbound(InboundEvent::Ignored {
                kind: "message_service".into()
            }))
        );
        assert_eq!(map(&update, CollectScope::default()), None);
        assert_eq!(map(&tl::enums::Update::LoginToken, all()), None);
    }

    #[test]
    fn reactions_become_reaction_types_with_counts() {
        let update: tl::enums::Update = tl::types::UpdateMessageReactions {
            peer: peer_user(ANN),
            msg_id: 19,
            top_msg_id: None,
            saved_peer_id: None,
            reactions: tl::types::MessageReactions {
                min: false,
                can_see_list: true,
                reactions_as_tags: false,
                results: vec![
                    tl::types::ReactionCount {
                        chosen_order: None,
                        reaction: tl::types::ReactionEmoji {
                            emoticon: "👍".into(),
                        }
                        .into(),
                        count: 2,
                    }
                    .into(),
                ],
                recent_reactions: Some(vec![
                    tl::types::MessagePeerReaction {
                        big: false,
                        unread: true,
                        my: false,
                        peer_id: peer_user(ANN),
                        date: 1_700_000_500,
                        reaction: tl::types::ReactionEmoji {
                            emoticon: "👍".into(),
                        }
                        .into(),
                    }
                    .into(),
                ]),
                top_reactors: None,
            }
            .into(),
        }
        .into();
        match map(&update, CollectScope::default()) {
            Some(PersonalUpdate::Inbound(InboundEvent::ReactionChanged {
                chat,
                telegram_message_id,
                user_id,
                reactions,
                date,
            })) => {
                assert_eq!(chat.peer_id, ANN);
                assert_eq!(telegram_message_id, 19);
                assert_eq!(user_id, Some(ANN));
                assert_eq!(
                    reactions,
                    json!([{ "type": "emoji", "emoji": "👍", "count": 2, "chosen": false }])
                );
                assert_eq!(date.timestamp(), 1_700_000_500);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn entities_become_bot_api_entities() {
        let mut raw = message(21, peer_user(ANN), "bold link");
        raw.entities = Some(vec![
            tl::types::MessageEntityBold { offset: 0, length: 4 }.into(),
            tl::types::MessageEntityTextUrl {
                offset: 5,
                length: 4,
                url: "https://example.org".into(),
            }
            .into(),
            tl::types::MessageEntityDiffDelete { offset: 0, length: 1 }.into(),
        ]);
        let mapped = inbound(&new_message(raw));
        assert_eq!(mapped.metadata["entities_count"], 3);
        assert_eq!(
            mapped.metadata["entities"],
            json!([
                { "type": "bold", "offset": 0, "length": 4 },
                { "type": "text_link", "offset": 5, "length": 4, "url": "https://example.org" }
            ])
        );
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
        assert_eq!(mapped.metadata["media_group_id"], "123");
        assert_eq!(mapped.metadata["forward_origin"]["from_id"], 77);
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

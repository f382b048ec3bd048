//! What a message carries besides its text: the kind of its content, its file (a photo, or a document told apart
//! by its attributes), the details of a location, venue, contact, poll, dice or link preview, and the formatting
//! entities of its text, all in the Bot API's shapes.

use crm_core::inbound::MediaRef;
use crm_core::message::MessageType;
use crm_core::metadata::{ContentDetails, EntityUser, TextEntity};
use grammers_tl_types as tl;

use super::non_empty_str;

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

fn point(geo: &tl::enums::GeoPoint) -> Option<(f64, f64)> {
    match geo {
        tl::enums::GeoPoint::Point(point) => Some((point.lat, point.long)),
        tl::enums::GeoPoint::Empty => None,
    }
}

fn text_of(text: &tl::enums::TextWithEntities) -> String {
    let tl::enums::TextWithEntities::Entities(text) = text;
    text.text.clone()
}

fn poll_details(poll: &tl::enums::Poll) -> ContentDetails {
    let tl::enums::Poll::Poll(poll) = poll;
    ContentDetails::Poll {
        question: text_of(&poll.question),
        options: poll
            .answers
            .iter()
            .filter_map(|answer| match answer {
                tl::enums::PollAnswer::Answer(answer) => Some(text_of(&answer.text)),
                tl::enums::PollAnswer::InputPollAnswer(_) => None,
            })
            .collect(),
        is_closed: poll.closed,
    }
}

/// What a message's media is: its kind, its file, and what it shows beyond the file.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Content {
    /// Kind of content (text when there is no media, or only a link preview).
    pub kind: MessageType,
    /// The attached file, if any.
    pub media: Option<MediaRef>,
    /// Location, venue, contact, poll, dice or link preview details.
    pub details: Option<ContentDetails>,
}

impl Content {
    fn of(kind: MessageType) -> Self {
        Self {
            kind,
            media: None,
            details: None,
        }
    }

    fn with(kind: MessageType, details: Option<ContentDetails>) -> Self {
        Self {
            kind,
            media: None,
            details,
        }
    }
}

/// The content of a message with `media` (none: a text message).
pub(super) fn media_content(media: Option<&tl::enums::MessageMedia>) -> Content {
    use tl::enums::MessageMedia as M;
    let Some(media) = media else {
        return Content::of(MessageType::Text);
    };
    match media {
        M::Empty => Content::of(MessageType::Text),
        M::WebPage(page) => {
            let url = match &page.webpage {
                tl::enums::WebPage::Page(page) => Some(page.url.clone()),
                tl::enums::WebPage::Pending(page) => page.url.clone(),
                tl::enums::WebPage::Empty(page) => page.url.clone(),
                tl::enums::WebPage::NotModified(_) => None,
            };
            Content::with(MessageType::Text, url.map(|url| ContentDetails::WebPage { url }))
        }
        M::Photo(photo) => Content {
            kind: MessageType::Photo,
            media: match &photo.photo {
                Some(tl::enums::Photo::Photo(photo)) => Some(photo_media(photo)),
                _ => None,
            },
            details: None,
        },
        M::Document(media) => match &media.document {
            Some(tl::enums::Document::Document(document)) => Content {
                kind: document_type(document, media),
                media: Some(document_media(document)),
                details: None,
            },
            _ => Content::of(MessageType::Document),
        },
        M::Geo(geo) => Content::with(
            MessageType::Location,
            point(&geo.geo).map(|(latitude, longitude)| ContentDetails::Location {
                latitude,
                longitude,
                live_period: None,
            }),
        ),
        M::GeoLive(geo) => Content::with(
            MessageType::Location,
            point(&geo.geo).map(|(latitude, longitude)| ContentDetails::Location {
                latitude,
                longitude,
                live_period: Some(i64::from(geo.period)),
            }),
        ),
        M::Venue(venue) => Content::with(
            MessageType::Venue,
            point(&venue.geo).map(|(latitude, longitude)| ContentDetails::Venue {
                latitude,
                longitude,
                title: venue.title.clone(),
                address: venue.address.clone(),
            }),
        ),
        M::Contact(contact) => Content::with(
            MessageType::Contact,
            Some(ContentDetails::Contact {
                phone_number: contact.phone_number.clone(),
                first_name: contact.first_name.clone(),
                last_name: non_empty_str(&contact.last_name),
                // Telegram says 0 for a contact without an account.
                user_id: (contact.user_id != 0).then_some(contact.user_id),
            }),
        ),
        M::Poll(poll) => Content::with(MessageType::Poll, Some(poll_details(&poll.poll))),
        M::Dice(dice) => Content::with(
            MessageType::Dice,
            Some(ContentDetails::Dice {
                emoji: dice.emoticon.clone(),
                value: i64::from(dice.value),
            }),
        ),
        M::Unsupported
        | M::Game(_)
        | M::Invoice(_)
        | M::Story(_)
        | M::Giveaway(_)
        | M::GiveawayResults(_)
        | M::PaidMedia(_)
        | M::ToDo(_)
        | M::VideoStream(_) => Content::of(MessageType::Other),
    }
}

fn entity(kind: &str, offset: i32, length: i32) -> TextEntity {
    TextEntity {
        kind: kind.to_owned(),
        offset: i64::from(offset),
        length: i64::from(length),
        url: None,
        user: None,
        language: None,
        custom_emoji_id: None,
    }
}

/// A formatting entity as a Bot API `MessageEntity` (same UTF-16 offsets); kinds the Bot API lacks are dropped.
fn text_entity(raw: &tl::enums::MessageEntity) -> Option<TextEntity> {
    use tl::enums::MessageEntity as E;
    Some(match raw {
        E::Mention(e) => entity("mention", e.offset, e.length),
        E::Hashtag(e) => entity("hashtag", e.offset, e.length),
        E::BotCommand(e) => entity("bot_command", e.offset, e.length),
        E::Url(e) => entity("url", e.offset, e.length),
        E::Email(e) => entity("email", e.offset, e.length),
        E::Bold(e) => entity("bold", e.offset, e.length),
        E::Italic(e) => entity("italic", e.offset, e.length),
        E::Underline(e) => entity("underline", e.offset, e.length),
        E::Strike(e) => entity("strikethrough", e.offset, e.length),
        E::Spoiler(e) => entity("spoiler", e.offset, e.length),
        E::Code(e) => entity("code", e.offset, e.length),
        E::Phone(e) => entity("phone_number", e.offset, e.length),
        E::Cashtag(e) => entity("cashtag", e.offset, e.length),
        E::Pre(e) => TextEntity {
            language: non_empty_str(&e.language),
            ..entity("pre", e.offset, e.length)
        },
        E::TextUrl(e) => TextEntity {
            url: Some(e.url.clone()),
            ..entity("text_link", e.offset, e.length)
        },
        E::MentionName(e) => TextEntity {
            user: Some(EntityUser { id: e.user_id }),
            ..entity("text_mention", e.offset, e.length)
        },
        E::CustomEmoji(e) => TextEntity {
            custom_emoji_id: Some(e.document_id.to_string()),
            ..entity("custom_emoji", e.offset, e.length)
        },
        E::Blockquote(e) if e.collapsed => entity("expandable_blockquote", e.offset, e.length),
        E::Blockquote(e) => entity("blockquote", e.offset, e.length),
        _ => return None,
    })
}

/// The formatting entities of a text or caption, those the Bot API knows.
pub(super) fn entities(raw: &[tl::enums::MessageEntity]) -> Vec<TextEntity> {
    raw.iter().filter_map(text_entity).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::mapping::fixtures::*;
    use crm_core::inbound::InboundMessage;

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

    fn with_media(id: i32, text: &str, media: impl Into<tl::enums::MessageMedia>) -> InboundMessage {
        let mut raw = message(id, peer_user(ANN), text);
        raw.media = Some(media.into());
        inbound(&new_message(raw))
    }

    fn geo(lat: f64, long: f64) -> tl::enums::GeoPoint {
        tl::types::GeoPoint {
            long,
            lat,
            access_hash: 0,
            accuracy_radius: None,
        }
        .into()
    }

    #[test]
    fn locations_contacts_dice_and_web_pages() {
        let mapped = with_media(10, "", tl::types::MessageMediaGeo { geo: geo(1.0, 2.0) });
        assert_eq!(mapped.message_type, MessageType::Location);
        assert_eq!(
            mapped.metadata.content,
            Some(ContentDetails::Location {
                latitude: 1.0,
                longitude: 2.0,
                live_period: None
            })
        );

        let mapped = with_media(
            11,
            "",
            tl::types::MessageMediaDice {
                value: 6,
                emoticon: "🎲".into(),
                game_outcome: None,
            },
        );
        assert_eq!(mapped.message_type, MessageType::Dice);
        assert_eq!(
            mapped.metadata.content,
            Some(ContentDetails::Dice {
                emoji: "🎲".into(),
                value: 6
            })
        );

        let mapped = with_media(
            12,
            "",
            tl::types::MessageMediaContact {
                phone_number: "+1555".into(),
                first_name: "Bo".into(),
                last_name: String::new(),
                vcard: String::new(),
                user_id: 9,
            },
        );
        assert_eq!(mapped.message_type, MessageType::Contact);
        assert_eq!(
            mapped.metadata.content,
            Some(ContentDetails::Contact {
                phone_number: "+1555".into(),
                first_name: "Bo".into(),
                last_name: None,
                user_id: Some(9)
            })
        );

        let preview = |webpage: tl::enums::WebPage| tl::types::MessageMediaWebPage {
            force_large_media: false,
            force_small_media: false,
            manual: false,
            safe: false,
            webpage,
        };
        let mapped = with_media(
            13,
            "see https://example.org",
            preview(tl::types::WebPageEmpty { id: 1, url: None }.into()),
        );
        assert_eq!(mapped.message_type, MessageType::Text);
        assert_eq!(mapped.text.as_deref(), Some("see https://example.org"));
        assert_eq!(mapped.caption, None);
        assert_eq!(mapped.metadata.content, None);
        let mapped = with_media(
            14,
            "see https://example.org",
            preview(
                tl::types::WebPagePending {
                    id: 1,
                    url: Some("https://example.org".into()),
                    date: 1,
                }
                .into(),
            ),
        );
        assert_eq!(mapped.message_type, MessageType::Text);
        assert_eq!(
            mapped.metadata.content,
            Some(ContentDetails::WebPage {
                url: "https://example.org".into()
            })
        );
    }

    #[test]
    fn live_locations_venues_and_polls() {
        let live = tl::types::MessageMediaGeoLive {
            geo: geo(3.5, 4.5),
            heading: Some(90),
            period: 900,
            proximity_notification_radius: None,
        };
        assert_eq!(
            with_media(15, "", live).metadata.content,
            Some(ContentDetails::Location {
                latitude: 3.5,
                longitude: 4.5,
                live_period: Some(900)
            })
        );

        let venue = |geo| tl::types::MessageMediaVenue {
            geo,
            title: "Cafe".into(),
            address: "Main St 1".into(),
            provider: "foursquare".into(),
            venue_id: "v1".into(),
            venue_type: String::new(),
        };
        let mapped = with_media(16, "", venue(geo(5.0, 6.0)));
        assert_eq!(mapped.message_type, MessageType::Venue);
        assert_eq!(
            mapped.metadata.content,
            Some(ContentDetails::Venue {
                latitude: 5.0,
                longitude: 6.0,
                title: "Cafe".into(),
                address: "Main St 1".into()
            })
        );
        // Without coordinates there is no place to show, as for a bot.
        let nowhere = with_media(17, "", venue(tl::enums::GeoPoint::Empty));
        assert_eq!(nowhere.message_type, MessageType::Venue);
        assert_eq!(nowhere.metadata.content, None);

        let text = |text: &str| -> tl::enums::TextWithEntities {
            tl::types::TextWithEntities {
                text: text.to_owned(),
                entities: Vec::new(),
            }
            .into()
        };
        let answer = |label: &str, option: u8| -> tl::enums::PollAnswer {
            tl::types::PollAnswer {
                text: text(label),
                option: vec![option],
                media: None,
                added_by: None,
                date: None,
            }
            .into()
        };
        let poll = tl::types::MessageMediaPoll {
            poll: tl::types::Poll {
                id: 1,
                closed: true,
                public_voters: false,
                multiple_choice: false,
                quiz: false,
                open_answers: false,
                revoting_disabled: false,
                shuffle_answers: false,
                hide_results_until_close: false,
                creator: false,
                subscribers_only: false,
                question: text("Lunch?"),
                answers: vec![answer("Yes", 0), answer("No", 1)],
                close_period: None,
                close_date: None,
                countries_iso2: None,
                hash: 0,
            }
            .into(),
            results: tl::types::PollResults {
                min: false,
                has_unread_votes: false,
                can_view_stats: false,
                results: None,
                total_voters: None,
                recent_voters: None,
                solution: None,
                solution_entities: None,
                solution_media: None,
            }
            .into(),
            attached_media: None,
        };
        let mapped = with_media(18, "", poll);
        assert_eq!(mapped.message_type, MessageType::Poll);
        assert_eq!(
            mapped.metadata.content,
            Some(ContentDetails::Poll {
                question: "Lunch?".into(),
                options: vec!["Yes".into(), "No".into()],
                is_closed: true
            })
        );
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
        // The diff entity has no Bot API kind: it is dropped, the other two keep their offsets.
        assert_eq!(
            mapped.metadata.entities,
            vec![
                entity("bold", 0, 4),
                TextEntity {
                    url: Some("https://example.org".into()),
                    ..entity("text_link", 5, 4)
                },
            ]
        );
        assert_eq!(
            mapped.metadata.to_json()["entities"],
            serde_json::json!([
                { "type": "bold", "offset": 0, "length": 4 },
                { "type": "text_link", "offset": 5, "length": 4, "url": "https://example.org" }
            ])
        );

        // A caption's entities are the message's entities too, as for a bot.
        let mut raw = message(22, peer_user(ANN), "@ann");
        raw.media = Some(document(Vec::new(), "application/pdf"));
        raw.entities = Some(vec![
            tl::types::MessageEntityMentionName {
                offset: 0,
                length: 4,
                user_id: ANN,
            }
            .into(),
            tl::types::MessageEntityPre {
                offset: 0,
                length: 1,
                language: String::new(),
            }
            .into(),
            tl::types::MessageEntityCustomEmoji {
                offset: 1,
                length: 2,
                document_id: 77,
            }
            .into(),
        ]);
        let mapped = inbound(&new_message(raw));
        assert_eq!(mapped.caption.as_deref(), Some("@ann"));
        assert_eq!(
            mapped.metadata.entities,
            vec![
                TextEntity {
                    user: Some(EntityUser { id: ANN }),
                    ..entity("text_mention", 0, 4)
                },
                entity("pre", 0, 1),
                TextEntity {
                    custom_emoji_id: Some("77".into()),
                    ..entity("custom_emoji", 1, 2)
                },
            ]
        );
    }
}

//! Reactions: Telegram's reaction counts as Bot API `ReactionType`s with their counts, who reacted last, and the
//! update saying a message's reactions changed. A message and that update record them the same way.

use chrono::{DateTime, Utc};
use crm_core::ids::TelegramMessageId;
use crm_core::inbound::InboundEvent;
use crm_core::metadata::{MessageMetadata, Reaction};
use crm_core::personal::CollectScope;
use grammers_tl_types as tl;

use super::date;
use super::peers::{PeerIndex, chat_ref, in_scope};

/// A reaction as a Bot API `ReactionType`, without a count.
fn reaction(raw: &tl::enums::Reaction) -> Option<Reaction> {
    let (kind, emoji, custom_emoji_id) = match raw {
        tl::enums::Reaction::Empty => return None,
        tl::enums::Reaction::Emoji(emoji) => ("emoji", Some(emoji.emoticon.clone()), None),
        tl::enums::Reaction::CustomEmoji(custom) => {
            ("custom_emoji", None, Some(custom.document_id.to_string()))
        }
        tl::enums::Reaction::Paid => ("paid", None, None),
    };
    Some(Reaction {
        kind: kind.to_owned(),
        emoji,
        custom_emoji_id,
        count: None,
    })
}

/// A message's reactions as Telegram reports them now.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Summary {
    /// When the last reaction was given, when Telegram lists recent reactions.
    pub date: Option<DateTime<Utc>>,
    /// Every reaction with how many gave it.
    pub reactions: Vec<Reaction>,
}

/// The counts of `reactions`, with when the last one was given.
pub(super) fn summary(reactions: &tl::enums::MessageReactions) -> Summary {
    let tl::enums::MessageReactions::Reactions(raw) = reactions;
    // The newest recent reaction says when the last one was given, if Telegram lists them.
    let latest = raw.recent_reactions.as_ref().and_then(|recent| {
        recent
            .iter()
            .map(|r| {
                let tl::enums::MessagePeerReaction::Reaction(r) = r;
                r
            })
            .max_by_key(|r| r.date)
    });
    Summary {
        date: latest.map(|r| date(r.date)),
        reactions: raw
            .results
            .iter()
            .filter_map(|result| {
                let tl::enums::ReactionCount::Count(count) = result;
                Some(Reaction {
                    count: Some(i64::from(count.count)),
                    ..reaction(&count.reaction)?
                })
            })
            .collect(),
    }
}

/// Records the reactions a message came with, as the inbox records a [`InboundEvent::ReactionChanged`]: MTProto
/// gives totals, not who gave which, so they are kept without a user (under `anonymous`).
pub(super) fn record_reactions(metadata: &mut MessageMetadata, reactions: &tl::enums::MessageReactions) {
    metadata.set_reactions(None, summary(reactions).reactions);
}

/// Maps `updateMessageReactions`. `now` dates it when Telegram lists no recent reaction.
pub(super) fn map_reactions(
    update: &tl::types::UpdateMessageReactions,
    peers: &PeerIndex,
    scope: CollectScope,
    now: DateTime<Utc>,
) -> Option<InboundEvent> {
    let chat = chat_ref(&update.peer, peers, false)?;
    if !in_scope(&chat.chat_type, scope) {
        return None;
    }
    let summary = summary(&update.reactions);
    // Totals, not one user's reactions: stored without a user, so an earlier reactor keeps no stale totals.
    Some(InboundEvent::ReactionChanged {
        chat,
        telegram_message_id: TelegramMessageId(i64::from(update.msg_id)),
        user_id: None,
        reactions: summary.reactions,
        date: summary.date.unwrap_or(now),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::mapping::fixtures::*;
    use crm_core::ids::PeerId;

    fn thumbs_up(count: i32, chosen: bool, reactor: Option<i64>) -> tl::enums::MessageReactions {
        let emoji = || -> tl::enums::Reaction {
            tl::types::ReactionEmoji {
                emoticon: "👍".into(),
            }
            .into()
        };
        tl::types::MessageReactions {
            min: false,
            can_see_list: true,
            reactions_as_tags: false,
            results: vec![
                tl::types::ReactionCount {
                    chosen_order: chosen.then_some(0),
                    reaction: emoji(),
                    count,
                }
                .into(),
                tl::types::ReactionCount {
                    chosen_order: None,
                    reaction: tl::types::ReactionCustomEmoji { document_id: 5 }.into(),
                    count: 1,
                }
                .into(),
            ],
            recent_reactions: reactor.map(|id| {
                vec![
                    tl::types::MessagePeerReaction {
                        big: false,
                        unread: true,
                        my: false,
                        peer_id: peer_user(id),
                        date: 1_700_000_500,
                        reaction: emoji(),
                    }
                    .into(),
                ]
            }),
            top_reactors: None,
        }
        .into()
    }

    fn counted(kind: &str, emoji: Option<&str>, custom: Option<&str>, count: i64) -> Reaction {
        Reaction {
            kind: kind.into(),
            emoji: emoji.map(str::to_owned),
            custom_emoji_id: custom.map(str::to_owned),
            count: Some(count),
        }
    }

    fn map_update_at(update: &tl::enums::Update, now: DateTime<Utc>) -> Option<InboundEvent> {
        crate::mapping::map_update(update, &index(), all(), SELF_ID, now)
    }

    #[test]
    fn reactions_become_reaction_types_with_counts() {
        let update: tl::enums::Update = tl::types::UpdateMessageReactions {
            peer: peer_user(ANN),
            msg_id: 19,
            top_msg_id: None,
            saved_peer_id: None,
            reactions: thumbs_up(2, false, Some(ANN)),
        }
        .into();
        match map(&update, CollectScope::default()) {
            Some(InboundEvent::ReactionChanged {
                chat,
                telegram_message_id,
                user_id,
                reactions,
                date,
            }) => {
                assert_eq!(chat.peer_id, PeerId(ANN));
                assert_eq!(telegram_message_id, TelegramMessageId(19));
                assert_eq!(user_id, None, "totals belong to nobody in particular");
                assert_eq!(
                    reactions,
                    vec![
                        counted("emoji", Some("👍"), None, 2),
                        counted("custom_emoji", None, Some("5"), 1),
                    ]
                );
                assert_eq!(date.timestamp(), 1_700_000_500);
            }
            other => panic!("{other:?}"),
        }

        // Without recent reactions the update is dated when it arrived.
        let anonymous: tl::enums::Update = tl::types::UpdateMessageReactions {
            peer: peer_user(ANN),
            msg_id: 19,
            top_msg_id: None,
            saved_peer_id: None,
            reactions: thumbs_up(3, true, None),
        }
        .into();
        let now = date(1_700_000_900);
        match map_update_at(&anonymous, now) {
            Some(InboundEvent::ReactionChanged { user_id, date, .. }) => {
                assert_eq!(user_id, None);
                assert_eq!(date, now);
            }
            other => panic!("{other:?}"),
        }
        let mut in_channel = anonymous.clone();
        if let tl::enums::Update::MessageReactions(update) = &mut in_channel {
            update.peer = peer_channel(CHANNEL);
        }
        assert_eq!(map(&in_channel, CollectScope::default()), None);
    }

    #[test]
    fn a_message_records_its_reactions_as_the_update_would() {
        let mut raw = message(23, peer_user(ANN), "nice");
        raw.reactions = Some(thumbs_up(2, false, Some(ANN)));
        let mapped = inbound(&new_message(raw));
        assert_eq!(
            mapped.metadata.reactions.get("anonymous"),
            Some(&vec![
                counted("emoji", Some("👍"), None, 2),
                counted("custom_emoji", None, Some("5"), 1),
            ])
        );
        let mut raw = message(24, peer_user(ANN), "nice");
        raw.reactions = Some(thumbs_up(2, false, None));
        let mapped = inbound(&new_message(raw));
        assert_eq!(mapped.metadata.reactions.len(), 1);
        assert_eq!(mapped.metadata.reactions["anonymous"].len(), 2);
    }
}

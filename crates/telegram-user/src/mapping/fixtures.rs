//! Test fixtures of the mapping: raw MTProto users, chats and messages as Telegram sends them, an index of the
//! peers they name, and shortcuts to map them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::DateTime;
use crm_core::inbound::{InboundEvent, InboundMessage};
use crm_core::personal::CollectScope;
use grammers_tl_types as tl;

use super::{PeerIndex, map_update};

/// The account's own user id.
pub(crate) const SELF_ID: i64 = 1000;
/// A customer writing in private.
pub(crate) const ANN: i64 = 42;
/// A basic group.
pub(crate) const GROUP: i64 = 555;
/// A supergroup (bare channel id).
pub(crate) const SUPERGROUP: i64 = 777;
/// A broadcast channel (bare channel id).
pub(crate) const CHANNEL: i64 = 888;

/// A user as Telegram describes it (`SELF_ID` is the account itself).
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

/// A broadcast channel, or a supergroup when `broadcast` is false.
pub(crate) fn channel(id: i64, title: &str, broadcast: bool) -> tl::enums::Chat {
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

/// A basic group the account can no longer see.
pub(crate) fn group(id: i64, title: &str) -> tl::enums::Chat {
    tl::types::ChatForbidden {
        id,
        title: title.to_owned(),
    }
    .into()
}

/// The peers of the fixtures: Ann, the account itself, the group, the supergroup and the channel.
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

/// A user peer.
pub(crate) fn peer_user(id: i64) -> tl::enums::Peer {
    tl::types::PeerUser { user_id: id }.into()
}

/// A channel peer.
pub(crate) fn peer_channel(id: i64) -> tl::enums::Peer {
    tl::types::PeerChannel { channel_id: id }.into()
}

/// A plain incoming text message.
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

/// A document with `attributes`.
pub(crate) fn document(attributes: Vec<tl::enums::DocumentAttribute>, mime: &str) -> tl::enums::MessageMedia {
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

/// The update announcing `message`.
pub(crate) fn new_message(message: tl::types::Message) -> tl::enums::Update {
    tl::types::UpdateNewMessage {
        message: message.into(),
        pts: 1,
        pts_count: 1,
    }
    .into()
}

/// A scope collecting every kind of chat.
pub(crate) fn all() -> CollectScope {
    CollectScope {
        include_groups: true,
        include_channels: true,
    }
}

/// Maps `update` with the peers of [`index`].
pub(crate) fn map(update: &tl::enums::Update, scope: CollectScope) -> Option<InboundEvent> {
    map_update(update, &index(), scope, SELF_ID, DateTime::UNIX_EPOCH)
}

/// The new message `update` maps to, with the peers of [`index`] and everything in scope.
pub(crate) fn inbound(update: &tl::enums::Update) -> InboundMessage {
    inbound_with(update, &index())
}

/// The new message `update` maps to, with `peers` and everything in scope.
pub(crate) fn inbound_with(update: &tl::enums::Update, peers: &PeerIndex) -> InboundMessage {
    match map_update(update, peers, all(), SELF_ID, DateTime::UNIX_EPOCH) {
        Some(InboundEvent::NewMessage(message)) => message,
        other => panic!("not a new message: {other:?}"),
    }
}

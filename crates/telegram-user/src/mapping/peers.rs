//! Who and where: the users and chats that came with an update ([`PeerIndex`]), Bot API dialog ids, the chat an
//! event belongs to, the author of a message, the origin of a forward, and which chats the collect scope takes.

use std::collections::HashMap;

use crm_core::chat::ChatType;
use crm_core::ids::PeerId;
use crm_core::inbound::{ChatRef, Sender};
use crm_core::metadata::{ForwardOrigin, OriginChat, OriginUser};
use crm_core::personal::CollectScope;
use grammers_tl_types as tl;

use super::{non_empty, non_empty_str};
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

    fn channel_type(&self, channel_id: i64) -> Option<ChatType> {
        self.channels.get(&channel_id).map(|info| info.chat_type)
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

/// Whether a peer of a read or delete update is out of scope (only decidable when it is a known chat).
pub(super) fn peer_out_of_scope(peer: &tl::enums::Peer, peers: &PeerIndex, scope: CollectScope) -> bool {
    match peer {
        tl::enums::Peer::User(_) => false,
        tl::enums::Peer::Chat(_) => !scope.include_groups,
        tl::enums::Peer::Channel(channel) => peers
            .channel_type(channel.channel_id)
            .is_some_and(|chat_type| !in_scope(&chat_type, scope)),
    }
}

/// The chat a peer names. `post` tells a channel we know nothing about apart from a supergroup.
pub(super) fn chat_ref(peer: &tl::enums::Peer, peers: &PeerIndex, post: bool) -> Option<ChatRef> {
    let peer_id = PeerId(dialog_id(peer)?);
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
        tl::enums::Peer::Chat(chat) => ChatRef {
            peer_id,
            chat_type: ChatType::Group,
            title: peers.chats.get(&chat.chat_id).and_then(|info| info.title.clone()),
            username: None,
            first_name: None,
            last_name: None,
        },
        tl::enums::Peer::Channel(channel) => {
            let info = peers.channels.get(&channel.channel_id);
            let unknown = if post {
                ChatType::Channel
            } else {
                ChatType::Supergroup
            };
            ChatRef {
                peer_id,
                chat_type: info.map_or(unknown, |info| info.chat_type),
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

/// Who wrote a message: `from_id`, else the owner for our own private messages, else the peer itself
/// (the other side of a private chat, or a channel posting).
pub(super) fn message_sender(
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

/// The group or channel a forward came from, named when it came along.
fn origin_chat(peer: &tl::enums::Peer, peers: &PeerIndex) -> Option<OriginChat> {
    let chat = chat_ref(peer, peers, true)?;
    Some(OriginChat {
        id: chat.peer_id.0,
        title: chat.title,
        username: chat.username,
    })
}

/// Where a forwarded message came from, as the Bot API's `MessageOrigin` (a user, a user hiding their account,
/// a group, or a channel post), named from `peers` when Telegram sent them along. A header naming no one (an
/// imported message) has no origin.
pub(super) fn forward_origin(
    header: &tl::enums::MessageFwdHeader,
    peers: &PeerIndex,
) -> Option<ForwardOrigin> {
    let tl::enums::MessageFwdHeader::Header(header) = header;
    let date = i64::from(header.date);
    let author_signature = header.post_author.as_deref().and_then(non_empty_str);
    let Some(from) = &header.from_id else {
        let name = header.from_name.as_deref().and_then(non_empty_str)?;
        return Some(ForwardOrigin::HiddenUser {
            date,
            sender_user_name: name,
        });
    };
    Some(match from {
        tl::enums::Peer::User(_) => {
            let user = chat_ref(from, peers, false)?;
            ForwardOrigin::User {
                date,
                sender_user: OriginUser {
                    id: user.peer_id.0,
                    first_name: user.first_name,
                    last_name: user.last_name,
                    username: user.username,
                },
            }
        }
        tl::enums::Peer::Chat(_) => ForwardOrigin::Chat {
            date,
            sender_chat: origin_chat(from, peers)?,
            author_signature,
        },
        // Channel posts carry their id; what an anonymous admin wrote in a supergroup does not, and is a chat's.
        tl::enums::Peer::Channel(channel)
            if header.channel_post.is_some()
                || peers.channel_type(channel.channel_id) == Some(ChatType::Channel) =>
        {
            ForwardOrigin::Channel {
                date,
                chat: origin_chat(from, peers)?,
                message_id: header.channel_post.map(i64::from),
                author_signature,
            }
        }
        tl::enums::Peer::Channel(_) => ForwardOrigin::Chat {
            date,
            sender_chat: origin_chat(from, peers)?,
            author_signature,
        },
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::mapping::fixtures::*;

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
    fn groups_and_channels_follow_the_scope() {
        let mut in_group = message(15, tl::types::PeerChat { chat_id: GROUP }.into(), "hello all");
        in_group.from_id = Some(peer_user(ANN));
        let update = new_message(in_group);
        assert_eq!(map(&update, CollectScope::default()), None);
        let mapped = inbound(&update);
        assert_eq!(mapped.chat.peer_id, PeerId(-GROUP));
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
            Some(crm_core::inbound::InboundEvent::NewMessage(message)) => {
                assert_eq!(message.chat.chat_type, ChatType::Supergroup);
                assert_eq!(message.chat.peer_id, PeerId(-1_000_000_000_777));
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

    fn header(
        from_id: Option<tl::enums::Peer>,
        from_name: Option<&str>,
        channel_post: Option<i32>,
        post_author: Option<&str>,
    ) -> tl::enums::MessageFwdHeader {
        tl::types::MessageFwdHeader {
            imported: false,
            saved_out: false,
            from_id,
            from_name: from_name.map(str::to_owned),
            date: 5,
            channel_post,
            post_author: post_author.map(str::to_owned),
            saved_from_peer: None,
            saved_from_msg_id: None,
            saved_from_id: None,
            saved_from_name: None,
            saved_date: None,
            psa_type: None,
        }
        .into()
    }

    #[test]
    fn forward_origins_take_the_bot_api_shapes() {
        let peers = index();
        assert_eq!(
            forward_origin(&header(Some(peer_user(ANN)), None, None, None), &peers),
            Some(ForwardOrigin::User {
                date: 5,
                sender_user: OriginUser {
                    id: ANN,
                    first_name: Some("Ann".into()),
                    last_name: Some("Lee".into()),
                    username: Some("ann".into()),
                },
            })
        );
        assert_eq!(
            forward_origin(
                &header(Some(peer_channel(CHANNEL)), None, Some(9), Some("Eve")),
                &peers
            ),
            Some(ForwardOrigin::Channel {
                date: 5,
                chat: OriginChat {
                    id: -1_000_000_000_888,
                    title: Some("News".into()),
                    username: Some("chan888".into()),
                },
                message_id: Some(9),
                author_signature: Some("Eve".into()),
            })
        );
        // A channel Telegram did not describe is still a channel when the post id comes along.
        assert!(matches!(
            forward_origin(&header(Some(peer_channel(4)), None, Some(1), None), &peers),
            Some(ForwardOrigin::Channel {
                chat: OriginChat {
                    id: -1_000_000_000_004,
                    title: None,
                    ..
                },
                ..
            })
        ));
        assert_eq!(
            forward_origin(
                &header(Some(peer_channel(SUPERGROUP)), None, None, Some("admin")),
                &peers
            ),
            Some(ForwardOrigin::Chat {
                date: 5,
                sender_chat: OriginChat {
                    id: -1_000_000_000_777,
                    title: Some("Team".into()),
                    username: Some("chan777".into()),
                },
                author_signature: Some("admin".into()),
            })
        );
        assert_eq!(
            forward_origin(
                &header(
                    Some(tl::types::PeerChat { chat_id: GROUP }.into()),
                    None,
                    None,
                    None
                ),
                &peers
            ),
            Some(ForwardOrigin::Chat {
                date: 5,
                sender_chat: OriginChat {
                    id: -GROUP,
                    title: Some("Family".into()),
                    username: None,
                },
                author_signature: None,
            })
        );
        assert_eq!(
            forward_origin(&header(None, Some("Someone"), None, None), &peers),
            Some(ForwardOrigin::HiddenUser {
                date: 5,
                sender_user_name: "Someone".into(),
            })
        );
        assert_eq!(forward_origin(&header(None, None, None, None), &peers), None);
    }
}

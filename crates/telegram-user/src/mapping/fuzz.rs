//! Fuzzing the MTProto mapping (property-based, on stable Rust): updates of every kind the mapping reads are
//! serialized with grammers' real TL types, their bytes mutated (flipped, overwritten, cut, spliced), and
//! whatever still deserializes as an `Update` is mapped; the mapping never panics, whatever peers it names or
//! omits. `FUZZ_CASES` sets how many inputs each property tries (default 10,000).

use chrono::DateTime;
use grammers_tl_types as tl;
use grammers_tl_types::{Deserializable, Serializable};
use proptest::prelude::*;
use proptest::test_runner::Config;

use super::fixtures::{
    ANN, CHANNEL, GROUP, SELF_ID, SUPERGROUP, all, document, index, message, new_message, peer_channel,
    peer_user,
};
use super::map_update;
use crm_core::personal::CollectScope;

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// The serialized updates the mutations start from.
fn seeds() -> Vec<Vec<u8>> {
    let mut with_document = message(7, peer_user(ANN), "see the file");
    with_document.media = Some(document(Vec::new(), "application/pdf"));
    let mut reply = message(8, peer_channel(SUPERGROUP), "answer");
    reply.out = true;
    let group = tl::enums::Peer::Chat(tl::types::PeerChat { chat_id: GROUP });
    let updates: Vec<tl::enums::Update> = vec![
        new_message(message(5, peer_user(ANN), "hello")),
        new_message(with_document),
        tl::types::UpdateNewChannelMessage {
            message: reply.into(),
            pts: 10,
            pts_count: 1,
        }
        .into(),
        tl::types::UpdateEditMessage {
            message: message(5, group, "edited").into(),
            pts: 11,
            pts_count: 1,
        }
        .into(),
        tl::types::UpdateDeleteMessages {
            messages: vec![5, 6],
            pts: 12,
            pts_count: 2,
        }
        .into(),
        tl::types::UpdateDeleteChannelMessages {
            channel_id: CHANNEL,
            messages: vec![9],
            pts: 13,
            pts_count: 1,
        }
        .into(),
        tl::types::UpdateReadHistoryOutbox {
            peer: peer_user(ANN),
            max_id: 5,
            pts: 14,
            pts_count: 1,
        }
        .into(),
        tl::types::UpdatePeerBlocked {
            blocked: true,
            blocked_my_stories_from: false,
            peer_id: peer_user(ANN),
        }
        .into(),
    ];
    updates.iter().map(Serializable::to_bytes).collect()
}

/// One change to a byte string.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(prop::sample::Index, u8),
    Overwrite(prop::sample::Index, [u8; 4]),
    Truncate(prop::sample::Index),
    Insert(prop::sample::Index, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1..=u8::MAX).prop_map(|(at, mask)| Mutation::Flip(at, mask)),
        (any::<prop::sample::Index>(), any::<[u8; 4]>())
            .prop_map(|(at, bytes)| Mutation::Overwrite(at, bytes)),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        (
            any::<prop::sample::Index>(),
            prop::collection::vec(any::<u8>(), 1..16)
        )
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match mutation {
        Mutation::Flip(at, mask) => {
            let i = at.index(bytes.len());
            bytes[i] ^= mask;
        }
        Mutation::Overwrite(at, word) => {
            let i = at.index(bytes.len());
            for (offset, byte) in word.iter().enumerate() {
                if let Some(slot) = bytes.get_mut(i + offset) {
                    *slot = *byte;
                }
            }
        }
        Mutation::Truncate(at) => bytes.truncate(at.index(bytes.len())),
        Mutation::Insert(at, extra) => {
            let i = at.index(bytes.len());
            bytes.splice(i..i, extra.iter().copied());
        }
    }
}

fn scope() -> impl Strategy<Value = CollectScope> {
    (any::<bool>(), any::<bool>()).prop_map(|(include_groups, include_channels)| CollectScope {
        include_groups,
        include_channels,
    })
}

proptest! {
    #![proptest_config(Config { cases: cases(), failure_persistence: None, ..Config::default() })]

    #[test]
    fn mutated_updates_never_panic_the_mapping(
        seed in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
        scope in scope(),
        known_peers in any::<bool>(),
    ) {
        let seeds = seeds();
        let mut bytes = seeds[seed.index(seeds.len())].clone();
        for mutation in &mutations {
            apply(&mut bytes, mutation);
        }
        if let Ok(update) = tl::enums::Update::from_bytes(&bytes) {
            let peers = if known_peers { index() } else { super::PeerIndex::default() };
            let _ = map_update(&update, &peers, scope, SELF_ID, DateTime::UNIX_EPOCH);
        }
    }

    #[test]
    fn every_seed_still_maps_after_a_round_trip(seed in any::<prop::sample::Index>()) {
        let seeds = seeds();
        let bytes = &seeds[seed.index(seeds.len())];
        let update = tl::enums::Update::from_bytes(bytes).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        prop_assert_eq!(&update.to_bytes(), bytes);
        let _ = map_update(&update, &index(), all(), SELF_ID, DateTime::UNIX_EPOCH);
    }
}

//! Fuzzing the Bot API update mapping (property-based, on stable Rust): whatever JSON arrives at the webhook or
//! from `getUpdates`, mapping it never panics, and an update keeps its id. Inputs are arbitrary JSON and
//! mutations of real-shaped updates (fields replaced by values of other types, removed, made huge or negative),
//! seeded from this crate's own examples and, when present next to the repository, the shared corpus of real
//! updates. `FUZZ_CASES` sets how many inputs each property tries (default 10,000).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crm_telegram_bot::update::{map_update, update_id, update_kind};
use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Value, json};

fn cases() -> u32 {
    std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// Updates shaped like Telegram's, one per kind the mapping handles or ignores.
fn seeds() -> Vec<Value> {
    let chat = json!({"id": 42, "type": "private", "first_name": "Ann", "username": "ann"});
    let from = json!({"id": 42, "is_bot": false, "first_name": "Ann", "language_code": "ru"});
    let mut seeds = vec![
        json!({"update_id": 1, "message": {"message_id": 5, "date": 1_700_000_000, "chat": chat, "from": from,
            "text": "hello /start", "entities": [{"type": "bot_command", "offset": 6, "length": 6}]}}),
        json!({"update_id": 2, "edited_message": {"message_id": 5, "date": 1_700_000_000, "edit_date": 1_700_000_100,
            "chat": chat, "from": from, "text": "hello again"}}),
        json!({"update_id": 3, "message": {"message_id": 6, "date": 1_700_000_001, "chat": chat, "from": from,
            "caption": "receipt", "photo": [{"file_id": "a", "file_unique_id": "b", "width": 90, "height": 90, "file_size": 1000},
            {"file_id": "c", "file_unique_id": "d", "width": 800, "height": 800}]}}),
        json!({"update_id": 4, "message": {"message_id": 7, "date": 1_700_000_002, "chat": chat, "from": from,
            "document": {"file_id": "e", "file_unique_id": "f", "file_name": "a.pdf", "mime_type": "application/pdf"},
            "reply_to_message": {"message_id": 5, "date": 1_700_000_000, "chat": chat, "text": "hello"},
            "forward_origin": {"type": "user", "date": 1_699_000_000, "sender_user": from}}}),
        json!({"update_id": 5, "my_chat_member": {"chat": chat, "from": from, "date": 1_700_000_003,
            "old_chat_member": {"status": "member", "user": {"id": 7, "is_bot": true, "first_name": "Bot"}},
            "new_chat_member": {"status": "kicked", "until_date": 0, "user": {"id": 7, "is_bot": true, "first_name": "Bot"}}}}),
        json!({"update_id": 6, "message_reaction": {"chat": chat, "message_id": 5, "user": from, "date": 1_700_000_004,
            "old_reaction": [], "new_reaction": [{"type": "emoji", "emoji": "👍"}]}}),
        json!({"update_id": 7, "callback_query": {"id": "1", "from": from, "chat_instance": "x", "data": "y"}}),
        json!({"update_id": 8, "message": {"message_id": 8, "date": 1_700_000_005,
            "chat": {"id": -100_123, "type": "supergroup", "title": "Team"}, "sender_chat": {"id": -100_123, "type": "supergroup", "title": "Team"},
            "voice": {"file_id": "g", "file_unique_id": "h", "duration": 3}, "media_group_id": "m1"}}),
    ];
    if let Some(corpus) = shared_corpus() {
        seeds.extend(corpus);
    }
    seeds
}

/// The shared corpus of real updates, when it lies next to the repository (CI must have it; a clone may not,
/// and then the seeds are this file's own).
fn shared_corpus() -> Option<Vec<Value>> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/botapi-updates");
    if !dir.is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have the shared update corpus at {}",
            dir.display()
        );
        eprintln!("the shared update corpus is absent: fuzzing from this file's seeds only");
        return None;
    }
    let entries = std::fs::read_dir(dir).ok()?;
    Some(
        entries
            .flatten()
            .filter_map(|entry| std::fs::read(entry.path()).ok())
            .filter_map(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .filter(Value::is_object)
            .collect(),
    )
}

/// Any JSON value, nested a few levels, with the awkward scalars (huge, negative, fractional, empty, long).
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        Just(json!(i64::MIN)),
        Just(json!(-1)),
        Just(json!(0)),
        ".{0,40}".prop_map(Value::String),
        Just(Value::String("\u{202E}\u{0}\u{FEFF}".repeat(3))),
        Just(Value::String("x".repeat(70_000))),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("message".to_owned()),
                    Just("chat".to_owned()),
                    Just("from".to_owned()),
                    Just("text".to_owned()),
                    Just("photo".to_owned()),
                    Just("id".to_owned()),
                    Just("date".to_owned()),
                    "[a-z_]{1,12}",
                ],
                inner,
                0..6
            )
            .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// Every path to a value inside `value`.
fn paths(value: &Value, prefix: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(prefix.clone());
    match value {
        Value::Object(map) => {
            for (key, inner) in map {
                prefix.push(key.clone());
                paths(inner, prefix, out);
                prefix.pop();
            }
        }
        Value::Array(items) => {
            for (index, inner) in items.iter().enumerate() {
                prefix.push(index.to_string());
                paths(inner, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(value: &'a mut Value, path: &[String]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |current, step| match current {
        Value::Object(map) => map.get_mut(step),
        Value::Array(items) => step.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
        _ => None,
    })
}

/// A seed with `mutations` applied: (which path, replacement or removal).
fn mutated() -> impl Strategy<Value = Value> {
    let seeds = seeds();
    (
        0..seeds.len(),
        prop::collection::vec(
            (any::<prop::sample::Index>(), proptest::option::of(any_json())),
            1..5,
        ),
    )
        .prop_map(move |(seed, mutations)| {
            let mut update = seeds[seed].clone();
            for (index, replacement) in mutations {
                let mut all = Vec::new();
                paths(&update, &mut Vec::new(), &mut all);
                let path = index.get(&all).clone();
                match (replacement, path.split_last()) {
                    (Some(value), _) => {
                        if let Some(slot) = at(&mut update, &path) {
                            *slot = value;
                        }
                    }
                    (None, Some((last, parent))) => match at(&mut update, parent) {
                        Some(Value::Object(map)) => {
                            map.remove(last);
                        }
                        Some(Value::Array(items)) => {
                            if let Ok(i) = last.parse::<usize>()
                                && i < items.len()
                            {
                                items.remove(i);
                            }
                        }
                        _ => {}
                    },
                    (None, None) => {}
                }
            }
            update
        })
}

proptest! {
    #![proptest_config(Config { cases: cases(), failure_persistence: None, ..Config::default() })]

    #[test]
    fn arbitrary_json_never_panics_the_mapping(update in any_json(), bot in proptest::option::of(any::<i64>())) {
        let _ = map_update(&update, bot);
        let _ = update_kind(&update);
        let _ = update_id(&update);
    }

    #[test]
    fn mutated_updates_map_without_panic_and_keep_their_id(update in mutated(), bot in proptest::option::of(any::<i64>())) {
        let _ = map_update(&update, bot);
        let kind = update_kind(&update);
        prop_assert!(!kind.is_empty());
        if let Some(id) = update.get("update_id").and_then(Value::as_i64) {
            prop_assert_eq!(update_id(&update), Some(id));
        }
    }
}

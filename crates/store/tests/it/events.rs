//! The event log: events written by concurrent units of work on two instances (two stores on one database), and
//! numbered by both instances' sequencers at the same time, get every number once, densely, in commit order (a
//! chat's events in the order of its changes), and reading after a number is exact.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::Utc;
use crm_core::account::Account;
use crm_core::chat::ChatType;
use crm_core::event::StoredEvent;
use crm_core::ids::{EventSeq, PeerId, TelegramMessageId};
use crm_core::inbound::{ChatRef, InboundEvent, InboundMessage};
use crm_core::inbox::{Arrival, Inbox};
use crm_core::message::{Direction, MessageType};
use crm_core::metadata::MessageMetadata;
use crm_core::ports::EventLog;
use crm_store::Store;
use crm_testkit_db::{TestDatabase, on_every_backend};

use crate::support::{inbox, migrated_store, open_store};

on_every_backend!(numbers_are_dense_exact_and_in_commit_order_across_two_instances);

const WRITERS: i64 = 8;
const PER_WRITER: i64 = 40;
const CHATS: i64 = 6;

fn message(id: i64) -> InboundMessage {
    InboundMessage {
        chat: ChatRef {
            peer_id: PeerId(100 + id % CHATS),
            chat_type: ChatType::Private,
            title: None,
            username: None,
            first_name: Some("Customer".into()),
            last_name: None,
        },
        telegram_message_id: TelegramMessageId(id),
        direction: Direction::Inbound,
        message_type: MessageType::Text,
        text: Some(format!("message {id}")),
        caption: None,
        sender: None,
        reply_to_telegram_id: None,
        date: Utc::now(),
        edited_at: None,
        media: None,
        metadata: MessageMetadata::default(),
    }
}

async fn write(inbox: Arc<Inbox>, account: Account, writer: i64) {
    for n in 0..PER_WRITER {
        let arrival = Arrival {
            account: account.clone(),
            event: InboundEvent::NewMessage(message(writer * PER_WRITER + n)),
            raw_update: None,
        };
        inbox.receive(arrival).await.expect("stored");
    }
}

/// Numbers events until `done` is set and nothing is left; returns what it numbered.
async fn sequence(store: Store, done: Arc<AtomicBool>) -> Vec<StoredEvent> {
    let mut numbered = Vec::new();
    loop {
        let finished = done.load(Ordering::Acquire);
        let batch = store.sequence_pending(7).await.expect("sequenced");
        if batch.is_empty() && finished {
            return numbered;
        }
        if batch.is_empty() {
            tokio::task::yield_now().await;
        }
        numbered.extend(batch);
    }
}

async fn numbers_are_dense_exact_and_in_commit_order_across_two_instances(database: TestDatabase) {
    let first = migrated_store(&database).await;
    let second = open_store(&database).await;
    let account = crate::support::bot_account(&first, "bot", None).await;
    // Creating the account announced its status: event 1, numbered before the race starts.
    let created = first.sequence_pending(10).await.unwrap();
    assert_eq!(created.len(), 1);
    assert_eq!(
        (created[0].kind.as_str(), created[0].seq),
        ("account_status", EventSeq(1))
    );
    let done = Arc::new(AtomicBool::new(false));
    let sequencers = [
        tokio::spawn(sequence(first.clone(), Arc::clone(&done))),
        tokio::spawn(sequence(second.clone(), Arc::clone(&done))),
    ];
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let store = if writer % 2 == 0 { &first } else { &second };
            tokio::spawn(write(inbox(store), account.clone(), writer))
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    done.store(true, Ordering::Release);
    let mut numbered = Vec::new();
    for sequencer in sequencers {
        numbered.extend(sequencer.await.unwrap());
    }

    let raced = WRITERS * PER_WRITER * 2;
    let expected = raced + 1;
    assert_eq!(numbered.len() as i64, raced, "every event numbered exactly once");
    let numbers: HashSet<i64> = numbered.iter().map(|e| e.seq.0).collect();
    assert_eq!(
        numbers,
        (2..=expected).collect(),
        "numbers are dense, without gap or repeat"
    );

    // Read back, the log is exactly the numbered events, in number order.
    let log = first.read_after(EventSeq(1), 100_000).await.unwrap();
    assert_eq!(log.len() as i64, raced);
    assert!(log.windows(2).all(|w| w[1].seq.0 == w[0].seq.0 + 1));
    assert_eq!(first.last_seq().await.unwrap(), EventSeq(expected));
    assert_eq!(second.first_seq().await.unwrap(), Some(EventSeq(1)));
    let middle = expected / 2;
    let after = second.read_after(EventSeq(middle), 10).await.unwrap();
    assert_eq!(
        after.iter().map(|e| e.seq.0).collect::<Vec<_>>(),
        (middle + 1..=middle + 10).collect::<Vec<_>>(),
        "resuming after a number gives exactly what follows it"
    );

    // A chat's changes commit one after another (its row is locked), so its events keep that order: each
    // message's `new_message` comes before the `chat_updated` that counts it, and counts only grow.
    let mut counts: BTreeMap<i64, i64> = BTreeMap::new();
    let mut announced: BTreeMap<i64, Vec<serde_json::Value>> = BTreeMap::new();
    for event in &log {
        let chat = event.chat_id.unwrap();
        match event.kind.as_str() {
            "new_message" => announced
                .entry(chat)
                .or_default()
                .push(event.payload["message"]["text"].clone()),
            "chat_updated" => {
                let count = event.payload["chat"]["message_count"].as_i64().unwrap();
                let previous = counts.insert(chat, count).unwrap_or(0);
                assert_eq!(count, previous + 1, "chat {chat}: counts in commit order");
                let so_far = announced.get(&chat).map_or(0, Vec::len) as i64;
                assert_eq!(
                    count, so_far,
                    "chat {chat}: each count follows the new_message it counts"
                );
                let preview = &event.payload["chat"]["last_message_preview"];
                assert!(
                    announced[&chat].contains(preview),
                    "chat {chat}: the preview is of an announced message"
                );
            }
            other => panic!("unexpected event {other}"),
        }
    }
    assert_eq!(counts.values().sum::<i64>(), WRITERS * PER_WRITER);
}

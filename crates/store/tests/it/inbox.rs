//! Intake through the one pipeline (`Inbox::receive`): stored once however often delivered, counters and the
//! newest message right, replies linked, edits, blocks, reactions, deletions and read receipts kept, events written
//! with their change, and no loss, double count or deadlock under concurrent deliveries of same-second updates.

use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};
use crm_core::account::Account;
use crm_core::chat::{ChatType, Viewer};
use crm_core::ids::{MessageId, PeerId, TelegramMessageId};
use crm_core::inbound::{ChatRef, InboundEvent, InboundMessage, Sender};
use crm_core::inbox::{Arrival, Inbox, Outcome};
use crm_core::message::{Direction, MessageStatus, MessageType};
use crm_core::metadata::{MessageMetadata, Reaction};
use crm_store::Store;
use crm_store::entity::{chats, messages};
use crm_store::repo::{chats as chat_repo, messages as message_repo};
use crm_testkit_db::{TestDatabase, on_every_backend};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;

use crate::support::{inbox, migrated_store, sequenced};

on_every_backend!(
    a_message_is_stored_once_and_counted_once,
    replies_link_in_either_order,
    edits_blocks_and_reactions_update_what_is_stored,
    deletions_and_read_receipts_update_what_is_stored,
    every_change_writes_its_events_in_its_transaction,
    concurrent_deliveries_store_one_message,
    same_second_bursts_into_few_chats_lose_nothing,
);

async fn account(store: &Store, name: &str) -> Account {
    crate::support::bot_account(store, name, None).await
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
}

fn chat_with(peer: i64) -> ChatRef {
    ChatRef {
        peer_id: PeerId(peer),
        chat_type: ChatType::Private,
        title: None,
        username: Some("ann".into()),
        first_name: Some("Ann".into()),
        last_name: None,
    }
}

fn customer_chat() -> ChatRef {
    chat_with(4242)
}

fn text_message(id: i64, text: &str, seconds: i64) -> InboundMessage {
    InboundMessage {
        chat: customer_chat(),
        telegram_message_id: TelegramMessageId(id),
        direction: Direction::Inbound,
        message_type: MessageType::Text,
        text: Some(text.into()),
        caption: None,
        sender: Some(Sender {
            id: 4242,
            name: Some("Ann".into()),
            username: Some("ann".into()),
        }),
        reply_to_telegram_id: None,
        date: at(seconds),
        edited_at: None,
        media: None,
        metadata: MessageMetadata {
            raw: Some(json!({ "text": text })),
            ..MessageMetadata::default()
        },
    }
}

async fn receive(inbox: &Inbox, account: &Account, event: InboundEvent) -> crm_core::inbox::Intake {
    inbox
        .receive(Arrival {
            account: account.clone(),
            event,
            raw_update: None,
        })
        .await
        .unwrap()
}

async fn chat_row(store: &Store, account: &Account) -> chats::Model {
    chats::Entity::find()
        .filter(chats::Column::AccountId.eq(account.id.0))
        .one(store.db())
        .await
        .unwrap()
        .unwrap()
}

async fn message_row(store: &Store, id: MessageId) -> messages::Model {
    messages::Entity::find_by_id(id.0)
        .one(store.db())
        .await
        .unwrap()
        .unwrap()
}

async fn a_message_is_stored_once_and_counted_once(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let inbox = inbox(&store);
    let bot = account(&store, "bot").await;
    let other_bot = account(&store, "other").await;
    let event = InboundEvent::NewMessage(text_message(10, "hello", 5));

    let first = receive(&inbox, &bot, event.clone()).await;
    assert_eq!(first.outcome, Outcome::Stored);
    let again = receive(&inbox, &bot, event.clone()).await;
    assert_eq!(again.outcome, Outcome::Duplicate);
    assert_eq!(again.chat_id, first.chat_id);

    let chat = chat_row(&store, &bot).await;
    assert_eq!((chat.message_count, chat.unread_count), (1, 1));
    assert_eq!(chat.last_message_at, Some(at(5)));
    assert_eq!(chat.last_message_id, first.message_id.map(|id| id.0));
    assert_eq!(chat.last_message_preview.as_deref(), Some("hello"));
    assert_eq!(chat.first_name.as_deref(), Some("Ann"));

    // An older message (history) counts but moves neither last activity nor the newest message back; our own
    // message is not unread.
    receive(
        &inbox,
        &bot,
        InboundEvent::NewMessage(text_message(9, "earlier", 1)),
    )
    .await;
    let chat = chat_row(&store, &bot).await;
    assert_eq!(chat.last_message_preview.as_deref(), Some("hello"));
    let ours = InboundMessage {
        direction: Direction::Outbound,
        ..text_message(11, "reply from the phone", 7)
    };
    let ours = receive(&inbox, &bot, InboundEvent::NewMessage(ours)).await;
    let chat = chat_row(&store, &bot).await;
    assert_eq!((chat.message_count, chat.unread_count), (3, 2));
    assert_eq!(chat.last_message_at, Some(at(7)));
    assert_eq!(chat.last_message_id, ours.message_id.map(|id| id.0));
    assert!(chat.last_message_outgoing);
    assert_eq!(
        message_row(&store, ours.message_id.unwrap()).await.status.0,
        MessageStatus::Sent
    );

    // The same customer and message id through another bot is another chat and another message.
    assert_eq!(receive(&inbox, &other_bot, event).await.outcome, Outcome::Stored);
    assert_eq!(chats::Entity::find().count(store.db()).await.unwrap(), 2);
    let stored = message_row(&store, first.message_id.unwrap()).await;
    assert_eq!(stored.text.as_deref(), Some("hello"));
    assert_eq!(stored.sender_name.as_deref(), Some("Ann"));
    assert_eq!(stored.status.0, MessageStatus::Received);
    assert_eq!(stored.metadata["raw"]["text"], "hello");

    // A renamed customer is renamed on the chat.
    let renamed = InboundMessage {
        chat: ChatRef {
            first_name: Some("Anna".into()),
            ..customer_chat()
        },
        ..text_message(12, "new name", 8)
    };
    receive(&inbox, &bot, InboundEvent::NewMessage(renamed)).await;
    assert_eq!(chat_row(&store, &bot).await.first_name.as_deref(), Some("Anna"));
}

async fn replies_link_in_either_order(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let inbox = inbox(&store);
    let bot = account(&store, "bot").await;
    let parent = receive(
        &inbox,
        &bot,
        InboundEvent::NewMessage(text_message(1, "question", 1)),
    )
    .await;
    let reply = InboundMessage {
        reply_to_telegram_id: Some(TelegramMessageId(1)),
        ..text_message(2, "answer", 2)
    };
    let reply = receive(&inbox, &bot, InboundEvent::NewMessage(reply)).await;
    let stored = message_row(&store, reply.message_id.unwrap()).await;
    assert_eq!(stored.reply_to_message_id, parent.message_id.map(|id| id.0));
    assert!(!chat_row(&store, &bot).await.has_orphan_replies);

    // The reply comes first (polling catch-up, history import): linked when the parent arrives.
    let early = InboundMessage {
        reply_to_telegram_id: Some(TelegramMessageId(3)),
        ..text_message(4, "early reply", 4)
    };
    let early = receive(&inbox, &bot, InboundEvent::NewMessage(early)).await;
    let unlinked = message_row(&store, early.message_id.unwrap()).await;
    assert_eq!(
        (unlinked.reply_to_message_id, unlinked.reply_to_telegram_id),
        (None, Some(3))
    );
    assert!(chat_row(&store, &bot).await.has_orphan_replies);
    let late_parent = receive(
        &inbox,
        &bot,
        InboundEvent::NewMessage(text_message(3, "late parent", 3)),
    )
    .await;
    let linked = message_row(&store, early.message_id.unwrap()).await;
    assert_eq!(linked.reply_to_message_id, late_parent.message_id.map(|id| id.0));
}

fn thumbs_up() -> Vec<Reaction> {
    vec![Reaction {
        kind: "emoji".into(),
        emoji: Some("👍".into()),
        custom_emoji_id: None,
        count: None,
    }]
}

async fn edits_blocks_and_reactions_update_what_is_stored(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let inbox = inbox(&store);
    let bot = account(&store, "bot").await;
    let original = receive(&inbox, &bot, InboundEvent::NewMessage(text_message(1, "helo", 1))).await;
    let edit = InboundMessage {
        edited_at: Some(at(60)),
        ..text_message(1, "hello", 1)
    };
    let edited = receive(&inbox, &bot, InboundEvent::EditedMessage(edit)).await;
    assert_eq!(
        (edited.outcome, edited.message_id),
        (Outcome::Updated, original.message_id)
    );
    let stored = message_row(&store, original.message_id.unwrap()).await;
    assert_eq!(stored.text.as_deref(), Some("hello"));
    assert_eq!(stored.edited_at, Some(at(60)));
    assert_eq!(
        stored.metadata["raw"]["text"], "helo",
        "the original payload is kept"
    );
    assert_eq!(
        stored.metadata["edited_raw"]["text"], "hello",
        "and the edited one beside it"
    );
    let chat = chat_row(&store, &bot).await;
    assert_eq!(chat.message_count, 1, "an edit is not a new message");
    assert_eq!(
        chat.last_message_preview.as_deref(),
        Some("hello"),
        "the preview follows the edit"
    );

    // An edit of a message never seen is stored, marked edited.
    let unseen = InboundMessage {
        edited_at: Some(at(90)),
        ..text_message(7, "edited before we saw it", 2)
    };
    assert_eq!(
        receive(&inbox, &bot, InboundEvent::EditedMessage(unseen))
            .await
            .outcome,
        Outcome::Stored
    );

    let membership = |blocked| InboundEvent::MembershipChanged {
        chat: customer_chat(),
        blocked,
        date: at(100),
    };
    receive(&inbox, &bot, membership(true)).await;
    assert!(chat_row(&store, &bot).await.is_blocked);
    receive(&inbox, &bot, membership(false)).await;
    assert!(!chat_row(&store, &bot).await.is_blocked);

    let reaction = |id, reactions| InboundEvent::ReactionChanged {
        chat: customer_chat(),
        telegram_message_id: TelegramMessageId(id),
        user_id: Some(4242),
        reactions,
        date: at(300),
    };
    assert_eq!(
        receive(&inbox, &bot, reaction(1, thumbs_up())).await.outcome,
        Outcome::Updated
    );
    let stored = message_row(&store, original.message_id.unwrap()).await;
    assert_eq!(stored.metadata["reactions"]["4242"][0]["emoji"], "👍");
    assert_eq!(
        receive(&inbox, &bot, reaction(1, Vec::new())).await.outcome,
        Outcome::Updated
    );
    let stored = message_row(&store, original.message_id.unwrap()).await;
    assert!(
        stored.metadata.get("reactions").is_none(),
        "a withdrawn reaction is gone"
    );
    assert_eq!(
        receive(&inbox, &bot, reaction(999, thumbs_up())).await.outcome,
        Outcome::Ignored
    );
    let ignored = InboundEvent::Ignored {
        kind: "callback_query".into(),
    };
    assert_eq!(receive(&inbox, &bot, ignored).await.outcome, Outcome::Ignored);
    assert_eq!(inbox.counters().ignored()["callback_query"], 1);
}

async fn deletions_and_read_receipts_update_what_is_stored(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let inbox = inbox(&store);
    let bot = account(&store, "bot").await;
    let theirs = receive(&inbox, &bot, InboundEvent::NewMessage(text_message(1, "hi", 1))).await;
    let ours = InboundMessage {
        direction: Direction::Outbound,
        ..text_message(2, "hello", 2)
    };
    let ours = receive(&inbox, &bot, InboundEvent::NewMessage(ours)).await;

    let read = InboundEvent::ReadByPeer {
        peer_id: PeerId(4242),
        max_id: TelegramMessageId(2),
    };
    assert_eq!(
        receive(&inbox, &bot, read.clone()).await.outcome,
        Outcome::Updated
    );
    assert_eq!(
        message_row(&store, ours.message_id.unwrap()).await.status.0,
        MessageStatus::Read
    );
    assert_eq!(
        message_row(&store, theirs.message_id.unwrap()).await.status.0,
        MessageStatus::Received
    );
    assert_eq!(
        receive(&inbox, &bot, read).await.outcome,
        Outcome::Ignored,
        "read already"
    );

    // Deletions in a private chat do not name it: found among the account's private chats.
    let deleted = InboundEvent::Deleted {
        peer_id: None,
        telegram_message_ids: vec![TelegramMessageId(1), TelegramMessageId(77)],
    };
    assert_eq!(
        receive(&inbox, &bot, deleted.clone()).await.outcome,
        Outcome::Updated
    );
    assert!(
        message_row(&store, theirs.message_id.unwrap()).await.is_deleted,
        "kept, marked deleted"
    );
    assert!(!message_row(&store, ours.message_id.unwrap()).await.is_deleted);
    assert_eq!(
        receive(&inbox, &bot, deleted).await.outcome,
        Outcome::Ignored,
        "deleted already"
    );
    assert_eq!(messages::Entity::find().count(store.db()).await.unwrap(), 2);
}

async fn every_change_writes_its_events_in_its_transaction(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let inbox = inbox(&store);
    let bot = account(&store, "bot").await;
    let created = sequenced(&store).await;
    assert_eq!(created.len(), 1, "creating the account announces its status");
    assert_eq!(
        (created[0].kind.as_str(), created[0].seq.0),
        ("account_status", 1)
    );
    let first = receive(&inbox, &bot, InboundEvent::NewMessage(text_message(1, "hi", 1))).await;
    receive(&inbox, &bot, InboundEvent::NewMessage(text_message(1, "hi", 1))).await;
    receive(
        &inbox,
        &bot,
        InboundEvent::MembershipChanged {
            chat: customer_chat(),
            blocked: true,
            date: at(2),
        },
    )
    .await;
    receive(&inbox, &bot, InboundEvent::Ignored { kind: "poll".into() }).await;
    let events = sequenced(&store).await;
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        ["new_message", "chat_updated", "chat_updated"],
        "a redelivery and an ignored kind announce nothing"
    );
    let numbers: Vec<i64> = events.iter().map(|e| e.seq.0).collect();
    assert_eq!(numbers, [2, 3, 4], "numbers are dense, following the account's");
    let chat_id = first.chat_id.unwrap();
    assert!(events.iter().all(|e| e.chat_id == Some(chat_id.0)));
    // Payloads are the views a reload shows.
    let stored = message_repo::find_visible(&store, Viewer::Admin, first.message_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    let message = message_repo::views(&store, vec![stored])
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        events[0].payload["message"],
        serde_json::to_value(&message).unwrap()
    );
    let chat = chat_repo::view(&store, Viewer::Admin, chat_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(events[2].payload["chat"], serde_json::to_value(&chat).unwrap());
    assert_eq!(events[2].payload["chat"]["is_blocked"], true);
    assert!(sequenced(&store).await.is_empty(), "every event is numbered once");
}

async fn concurrent_deliveries_store_one_message(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let inbox = inbox(&store);
    let bot = account(&store, "bot").await;
    let deliveries = (0..8).map(|n| {
        let inbox = Arc::clone(&inbox);
        let bot = bot.clone();
        // Half the deliveries are the same message (Telegram retrying), half are distinct messages.
        let id = if n % 2 == 0 { 100 } else { 200 + n };
        tokio::spawn(async move {
            receive(&inbox, &bot, InboundEvent::NewMessage(text_message(id, "x", n))).await
        })
    });
    let mut stored = 0;
    for delivery in deliveries {
        if delivery.await.unwrap().outcome == Outcome::Stored {
            stored += 1;
        }
    }
    assert_eq!(
        stored, 5,
        "one copy of the repeated message and four distinct ones"
    );
    let chat = chat_row(&store, &bot).await;
    assert_eq!((chat.message_count, chat.unread_count), (5, 5));
    assert_eq!(messages::Entity::find().count(store.db()).await.unwrap(), 5);
    assert_eq!(chats::Entity::find().count(store.db()).await.unwrap(), 1);
}

/// Telegram's traffic: many updates carry the same one-second date and come in bursts into the same chats. On
/// MariaDB this once deadlocked a third of the deliveries; every one must be stored, each chat counted right.
async fn same_second_bursts_into_few_chats_lose_nothing(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let inbox = inbox(&store);
    let bot = account(&store, "bot").await;
    assert_eq!(sequenced(&store).await.len(), 1, "the account's own status event");
    const SENDERS: i64 = 24;
    const PER_SENDER: i64 = 25;
    const CHATS: i64 = 5;
    let senders = (0..SENDERS).map(|sender| {
        let inbox = Arc::clone(&inbox);
        let bot = bot.clone();
        tokio::spawn(async move {
            for n in 0..PER_SENDER {
                let id = sender * PER_SENDER + n;
                let message = InboundMessage {
                    chat: chat_with(10 + id % CHATS),
                    ..text_message(id, "burst", 0)
                };
                let intake = inbox
                    .receive(Arrival {
                        account: bot.clone(),
                        event: InboundEvent::NewMessage(message),
                        raw_update: None,
                    })
                    .await
                    .expect("every delivery is stored, none fails");
                assert_eq!(intake.outcome, Outcome::Stored);
            }
        })
    });
    for sender in senders {
        sender.await.unwrap();
    }
    let total = SENDERS * PER_SENDER;
    assert_eq!(
        messages::Entity::find().count(store.db()).await.unwrap(),
        total as u64
    );
    let rows = chats::Entity::find().all(store.db()).await.unwrap();
    assert_eq!(rows.len() as i64, CHATS);
    for chat in &rows {
        let stored = messages::Entity::find()
            .filter(messages::Column::ChatId.eq(chat.id))
            .count(store.db())
            .await
            .unwrap();
        assert_eq!(
            i64::from(chat.message_count),
            stored as i64,
            "counter of chat {}",
            chat.id
        );
        assert_eq!(chat.unread_count, chat.message_count);
    }
    let events = sequenced(&store).await;
    assert_eq!(
        events.len() as i64,
        total * 2,
        "new_message and chat_updated for every delivery"
    );
    let last = events.iter().map(|e| e.seq.0).max().unwrap();
    assert_eq!(last, total * 2 + 1, "dense numbers after the account's");
}

//! Receiving inbound events: stored once however often delivered, counters right, replies linked, edits,
//! blocks and reactions kept, and no loss or double count under concurrent deliveries.

use chrono::{DateTime, TimeZone, Utc};
use crm_core::chat::ChatType;
use crm_core::inbound::{ChatRef, InboundEvent, InboundMessage, Sender};
use crm_core::message::{Direction, MessageType};
use crm_store::Store;
use crm_store::entity::{chats, messages};
use crm_store::repo::inbox::{Outcome, receive};
use crm_testkit_db::{TestDatabase, on_every_backend};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::support::migrated_store;

on_every_backend!(
    a_message_is_stored_once_and_counted_once,
    replies_link_in_either_order,
    edits_blocks_and_reactions_update_what_is_stored,
    concurrent_deliveries_store_one_message,
    an_echo_of_a_sent_message_is_merged_into_the_operators_copy,
);

async fn account(store: &Store, name: &str) -> i64 {
    crate::support::bot_account(store, name, None).await.id
}

fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + seconds, 0).unwrap()
}

fn customer_chat() -> ChatRef {
    ChatRef {
        peer_id: 4242,
        chat_type: ChatType::Private,
        title: None,
        username: Some("ann".into()),
        first_name: Some("Ann".into()),
        last_name: None,
    }
}

fn text_message(id: i64, text: &str, seconds: i64) -> InboundMessage {
    InboundMessage {
        chat: customer_chat(),
        telegram_message_id: id,
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
        metadata: json!({ "raw": { "text": text } }),
    }
}

async fn chat_row(store: &Store, account_id: i64) -> chats::Model {
    chats::Entity::find()
        .filter(chats::Column::AccountId.eq(account_id))
        .one(store.db())
        .await
        .unwrap()
        .unwrap()
}

async fn a_message_is_stored_once_and_counted_once(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let bot = account(&store, "bot").await;
    let other_bot = account(&store, "other").await;
    let event = InboundEvent::NewMessage(text_message(10, "hello", 5));

    let first = receive(&store, bot, &event).await.unwrap();
    assert_eq!(first.outcome, Outcome::Stored);
    let again = receive(&store, bot, &event).await.unwrap();
    assert_eq!(again.outcome, Outcome::Duplicate);
    assert_eq!(again.message_id, first.message_id);

    let chat = chat_row(&store, bot).await;
    assert_eq!((chat.message_count, chat.unread_count), (1, 1));
    assert_eq!(chat.last_message_at, Some(at(5)));
    assert_eq!(chat.first_name.as_deref(), Some("Ann"));

    // An older message (history) counts but does not move last activity back; our own message is not unread.
    receive(
        &store,
        bot,
        &InboundEvent::NewMessage(text_message(9, "earlier", 1)),
    )
    .await
    .unwrap();
    let ours = InboundMessage {
        direction: Direction::Outbound,
        ..text_message(11, "reply from the phone", 7)
    };
    receive(&store, bot, &InboundEvent::NewMessage(ours))
        .await
        .unwrap();
    let chat = chat_row(&store, bot).await;
    assert_eq!((chat.message_count, chat.unread_count), (3, 2));
    assert_eq!(chat.last_message_at, Some(at(7)));

    // The same customer and message id through another bot is another chat and another message.
    assert_eq!(
        receive(&store, other_bot, &event).await.unwrap().outcome,
        Outcome::Stored
    );
    assert_eq!(chats::Entity::find().all(store.db()).await.unwrap().len(), 2);
    let stored = messages::Entity::find_by_id(first.message_id.unwrap())
        .one(store.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.text.as_deref(), Some("hello"));
    assert_eq!(stored.sender_name.as_deref(), Some("Ann"));
    assert_eq!(stored.status, "received");
    assert_eq!(stored.metadata["raw"]["text"], "hello");

    // A renamed customer is renamed on the chat.
    let renamed = InboundMessage {
        chat: ChatRef {
            first_name: Some("Anna".into()),
            ..customer_chat()
        },
        ..text_message(12, "new name", 8)
    };
    receive(&store, bot, &InboundEvent::NewMessage(renamed))
        .await
        .unwrap();
    assert_eq!(chat_row(&store, bot).await.first_name.as_deref(), Some("Anna"));
}

async fn replies_link_in_either_order(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let bot = account(&store, "bot").await;
    let parent = receive(
        &store,
        bot,
        &InboundEvent::NewMessage(text_message(1, "question", 1)),
    )
    .await
    .unwrap();
    let reply = InboundMessage {
        reply_to_telegram_id: Some(1),
        ..text_message(2, "answer", 2)
    };
    let reply = receive(&store, bot, &InboundEvent::NewMessage(reply))
        .await
        .unwrap();
    let stored = messages::Entity::find_by_id(reply.message_id.unwrap())
        .one(store.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.reply_to_message_id, parent.message_id);

    // The reply comes first (polling catch-up, history import): linked when the parent arrives.
    let early = InboundMessage {
        reply_to_telegram_id: Some(3),
        ..text_message(4, "early reply", 4)
    };
    let early = receive(&store, bot, &InboundEvent::NewMessage(early))
        .await
        .unwrap();
    let unlinked = messages::Entity::find_by_id(early.message_id.unwrap())
        .one(store.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (unlinked.reply_to_message_id, unlinked.reply_to_telegram_id),
        (None, Some(3))
    );
    let late_parent = receive(
        &store,
        bot,
        &InboundEvent::NewMessage(text_message(3, "late parent", 3)),
    )
    .await
    .unwrap();
    let linked = messages::Entity::find_by_id(early.message_id.unwrap())
        .one(store.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(linked.reply_to_message_id, late_parent.message_id);
}

async fn edits_blocks_and_reactions_update_what_is_stored(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let bot = account(&store, "bot").await;
    let original = receive(&store, bot, &InboundEvent::NewMessage(text_message(1, "helo", 1)))
        .await
        .unwrap();
    let edit = InboundMessage {
        edited_at: Some(at(60)),
        ..text_message(1, "hello", 1)
    };
    let edited = receive(&store, bot, &InboundEvent::EditedMessage(edit))
        .await
        .unwrap();
    assert_eq!(
        (edited.outcome, edited.message_id),
        (Outcome::Updated, original.message_id)
    );
    let stored = messages::Entity::find_by_id(original.message_id.unwrap())
        .one(store.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.text.as_deref(), Some("hello"));
    assert_eq!(stored.edited_at, Some(at(60)));
    assert_eq!(
        stored.metadata["raw"]["text"], "helo",
        "the original payload is kept"
    );
    assert_eq!(
        chat_row(&store, bot).await.message_count,
        1,
        "an edit is not a new message"
    );

    // An edit of a message never seen is stored, marked edited.
    let unseen = InboundMessage {
        edited_at: Some(at(90)),
        ..text_message(7, "edited before we saw it", 2)
    };
    assert_eq!(
        receive(&store, bot, &InboundEvent::EditedMessage(unseen))
            .await
            .unwrap()
            .outcome,
        Outcome::Stored
    );

    let block = InboundEvent::MembershipChanged {
        chat: customer_chat(),
        blocked: true,
        date: at(100),
    };
    receive(&store, bot, &block).await.unwrap();
    assert!(chat_row(&store, bot).await.is_blocked);
    let unblock = InboundEvent::MembershipChanged {
        chat: customer_chat(),
        blocked: false,
        date: at(200),
    };
    receive(&store, bot, &unblock).await.unwrap();
    assert!(!chat_row(&store, bot).await.is_blocked);

    let thumbs = json!([{ "type": "emoji", "emoji": "👍" }]);
    let reaction = InboundEvent::ReactionChanged {
        chat: customer_chat(),
        telegram_message_id: 1,
        user_id: Some(4242),
        reactions: thumbs.clone(),
        date: at(300),
    };
    assert_eq!(
        receive(&store, bot, &reaction).await.unwrap().outcome,
        Outcome::Updated
    );
    let stored = messages::Entity::find_by_id(original.message_id.unwrap())
        .one(store.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.metadata["reactions"]["4242"], thumbs);
    let on_unknown = InboundEvent::ReactionChanged {
        chat: customer_chat(),
        telegram_message_id: 999,
        user_id: Some(4242),
        reactions: thumbs,
        date: at(300),
    };
    assert_eq!(
        receive(&store, bot, &on_unknown).await.unwrap().outcome,
        Outcome::Ignored
    );
    let ignored = InboundEvent::Ignored {
        kind: "callback_query".into(),
    };
    assert_eq!(
        receive(&store, bot, &ignored).await.unwrap().outcome,
        Outcome::Ignored
    );
}

async fn concurrent_deliveries_store_one_message(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let bot = account(&store, "bot").await;
    let deliveries = (0..8).map(|n| {
        let store = store.clone();
        // Half the deliveries are the same message (Telegram retrying), half are distinct messages.
        let id = if n % 2 == 0 { 100 } else { 200 + n };
        tokio::spawn(async move {
            receive(&store, bot, &InboundEvent::NewMessage(text_message(id, "x", n))).await
        })
    });
    let mut stored = 0;
    for delivery in deliveries {
        if delivery.await.unwrap().unwrap().outcome == Outcome::Stored {
            stored += 1;
        }
    }
    assert_eq!(
        stored, 5,
        "one copy of the repeated message and four distinct ones"
    );
    let chat = chat_row(&store, bot).await;
    assert_eq!((chat.message_count, chat.unread_count), (5, 5));
    assert_eq!(messages::Entity::find().all(store.db()).await.unwrap().len(), 5);
    assert_eq!(chats::Entity::find().all(store.db()).await.unwrap().len(), 1);
}

async fn an_echo_of_a_sent_message_is_merged_into_the_operators_copy(database: TestDatabase) {
    use crm_store::repo::outbox::{self, NewOutgoing};
    let store = migrated_store(&database).await;
    let account = account(&store, "Echo").await;
    let first = receive(
        &store,
        account,
        &InboundEvent::NewMessage(text_message(1, "hi", 1)),
    )
    .await
    .unwrap();
    let chat_id = first.chat_id.unwrap();
    let operator = crm_store::repo::users::create(
        &store,
        crm_store::repo::users::NewUser {
            username: "olga".into(),
            password_hash: "not-a-real-hash".into(),
            role: crm_core::user::Role::Operator,
            display_name: "Olga".into(),
            language: "en".into(),
            max_chats: 10,
            is_active: true,
        },
    )
    .await
    .unwrap()
    .id;
    let queued = outbox::queue(
        &store,
        NewOutgoing {
            chat_id,
            sent_by_user_id: operator,
            text: Some("on my way".into()),
            message_type: MessageType::Text,
            reply_to: None,
            media_file_id: None,
            sender_name: "Olga".into(),
            max_attempts: 3,
        },
    )
    .await
    .unwrap();
    // Telegram's echo of the operator's message arrives from the update stream before the acknowledgement.
    let mut echo = text_message(2, "on my way", 2);
    echo.direction = Direction::Outbound;
    let echoed = receive(&store, account, &InboundEvent::NewMessage(echo))
        .await
        .unwrap();
    assert_eq!(echoed.outcome, Outcome::Stored);

    let removed = outbox::mark_sent(&store, queued.id, 2, at(2)).await.unwrap();
    assert_eq!(removed, vec![echoed.message_id.unwrap()]);
    let rows = messages::Entity::find()
        .filter(messages::Column::ChatId.eq(chat_id))
        .all(store.db())
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "the customer's message and the operator's, once");
    let sent = rows.iter().find(|m| m.id == queued.id).unwrap();
    assert_eq!(
        (sent.status.as_str(), sent.telegram_message_id),
        ("sent", Some(2))
    );
    let chat = chats::Entity::find_by_id(chat_id)
        .one(store.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(chat.message_count, 2, "the dropped copy is not counted");
    // A later redelivery of the echo is a duplicate of the operator's copy.
    let mut again = text_message(2, "on my way", 2);
    again.direction = Direction::Outbound;
    let redelivered = receive(&store, account, &InboundEvent::NewMessage(again))
        .await
        .unwrap();
    assert_eq!(redelivered.outcome, Outcome::Duplicate);
}

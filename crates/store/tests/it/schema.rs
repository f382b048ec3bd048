//! The schema's guarantees: migrations are idempotent, chats are unique per (account, peer) and not globally,
//! messages per (chat, Telegram id) while unknown ids may repeat, one active assignment per chat.

use chrono::Utc;
use crm_core::account::Account;
use crm_core::chat::ChatType;
use crm_core::ids::AccountId;
use crm_core::message::{Direction, MessageStatus, MessageType};
use crm_core::user::Role;
use crm_store::entity::{chat_assignments, chats, messages};
use crm_store::repo::users::{self, NewUser};
use crm_store::{Db, Store, StoreError};
use crm_testkit_db::{TestDatabase, on_every_backend};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::json;

use crate::support::migrated_store;

on_every_backend!(
    migrations_apply_once_and_then_are_up_to_date,
    chats_are_unique_per_account_and_peer_not_globally,
    messages_are_unique_per_chat_and_telegram_id,
    a_chat_has_at_most_one_active_assignment,
    text_round_trips_with_emoji_and_timestamps_keep_utc,
);

async fn bot(store: &Store, name: &str, token: &str) -> Account {
    crate::support::bot_account(store, name, Some(token)).await
}

async fn chat(store: &Store, account_id: AccountId, peer_id: i64) -> Result<chats::Model, StoreError> {
    let now = Utc::now();
    chats::ActiveModel {
        account_id: Set(account_id.0),
        peer_id: Set(peer_id),
        chat_type: Set(Db(ChatType::Private)),
        unread_count: Set(0),
        message_count: Set(0),
        is_blocked: Set(false),
        last_message_outgoing: Set(false),
        has_orphan_replies: Set(false),
        metadata: Set(json!({})),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(store.db())
    .await
    .map_err(StoreError::from)
}

async fn message(
    store: &Store,
    chat_id: i64,
    telegram_id: Option<i64>,
    text: &str,
) -> Result<messages::Model, StoreError> {
    let now = Utc::now();
    messages::ActiveModel {
        chat_id: Set(chat_id),
        telegram_message_id: Set(telegram_id),
        direction: Set(Db(Direction::Inbound)),
        message_type: Set(Db(MessageType::Text)),
        text: Set(Some(text.into())),
        status: Set(Db(MessageStatus::Received)),
        telegram_date: Set(now),
        is_deleted: Set(false),
        metadata: Set(json!({"raw": {"text": text}})),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(store.db())
    .await
    .map_err(StoreError::from)
}

async fn migrations_apply_once_and_then_are_up_to_date(database: TestDatabase) {
    let store = migrated_store(&database).await;
    assert!(store.pending_migrations().await.unwrap().is_empty());
    assert_eq!(
        store
            .migrate(|_, _, _| panic!("nothing left to apply"))
            .await
            .unwrap(),
        0
    );
    store.ping().await.unwrap();
}

async fn chats_are_unique_per_account_and_peer_not_globally(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let first = bot(&store, "first", "111:AAA").await;
    let second = bot(&store, "second", "222:BBB").await;
    let customer = 987_654_321;
    let a = chat(&store, first.id, customer).await.unwrap();
    // The same customer writing to a second account gets a chat there too (the predecessor lost these).
    let b = chat(&store, second.id, customer).await.unwrap();
    assert_ne!(a.id, b.id);
    let duplicate = chat(&store, first.id, customer).await.unwrap_err();
    assert!(matches!(duplicate, StoreError::Duplicate(_)), "{duplicate:?}");
    assert_eq!(chats::Entity::find().all(store.db()).await.unwrap().len(), 2);
}

async fn messages_are_unique_per_chat_and_telegram_id(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let account = bot(&store, "bot", "333:CCC").await;
    let one = chat(&store, account.id, 1).await.unwrap();
    let two = chat(&store, account.id, 2).await.unwrap();
    message(&store, one.id, Some(10), "hello").await.unwrap();
    message(&store, two.id, Some(10), "same id, other chat")
        .await
        .unwrap();
    let duplicate = message(&store, one.id, Some(10), "redelivered")
        .await
        .unwrap_err();
    assert!(matches!(duplicate, StoreError::Duplicate(_)), "{duplicate:?}");
    // Queued replies have no Telegram id yet; any number of them may wait.
    message(&store, one.id, None, "queued 1").await.unwrap();
    message(&store, one.id, None, "queued 2").await.unwrap();
    let stored = messages::Entity::find().all(store.db()).await.unwrap();
    assert_eq!(stored.len(), 4);
    assert_eq!(
        stored
            .iter()
            .find(|m| m.telegram_message_id == Some(10) && m.chat_id == one.id)
            .unwrap()
            .text
            .as_deref(),
        Some("hello")
    );
}

async fn a_chat_has_at_most_one_active_assignment(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let account = bot(&store, "bot", "444:DDD").await;
    let the_chat = chat(&store, account.id, 5).await.unwrap();
    let mut operators = Vec::new();
    for name in ["olga", "pavel"] {
        let user = users::create(
            &store,
            NewUser {
                username: name.into(),
                password_hash: "x".into(),
                role: Role::Operator,
                display_name: name.into(),
                language: "ru".into(),
                max_chats: 50,
                is_active: true,
            },
        )
        .await
        .unwrap();
        operators.push(user.id);
    }
    let assign = |user_id: crm_core::ids::UserId, active: bool| chat_assignments::ActiveModel {
        chat_id: Set(the_chat.id),
        user_id: Set(user_id.0),
        active_chat_id: Set(active.then_some(the_chat.id)),
        assigned_at: Set(Utc::now()),
        ..Default::default()
    };
    assign(operators[0], true).insert(store.db()).await.unwrap();
    // The holder is kept on the chat too (the use cases write both in one transaction).
    chats::Entity::update_many()
        .col_expr(
            chats::Column::AssignedUserId,
            sea_orm::sea_query::Expr::value(operators[0].0),
        )
        .filter(chats::Column::Id.eq(the_chat.id))
        .exec(store.db())
        .await
        .unwrap();
    let second = assign(operators[1], true)
        .insert(store.db())
        .await
        .map_err(StoreError::from)
        .unwrap_err();
    assert!(matches!(second, StoreError::Duplicate(_)), "{second:?}");
    // History rows (inactive) may be many.
    assign(operators[1], false).insert(store.db()).await.unwrap();
    assign(operators[1], false).insert(store.db()).await.unwrap();
    assert_eq!(users::active_chat_count(&store, operators[0]).await.unwrap(), 1);
    // Removing the operator releases the chat and frees the username, keeping the history.
    assert!(users::soft_delete(&store, operators[0]).await.unwrap());
    assert_eq!(users::active_chat_count(&store, operators[0]).await.unwrap(), 0);
    assert!(users::find_by_username(&store, "olga").await.unwrap().is_none());
    assign(operators[1], true).insert(store.db()).await.unwrap();
    assert_eq!(
        chat_assignments::Entity::find()
            .all(store.db())
            .await
            .unwrap()
            .len(),
        4
    );
}

async fn text_round_trips_with_emoji_and_timestamps_keep_utc(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let account = bot(&store, "bot", "555:EEE").await;
    let the_chat = chat(&store, account.id, 6).await.unwrap();
    let text = "Привет 👋🏽 — «quotes» 中文 \u{1F600}";
    let stored = message(&store, the_chat.id, Some(1), text).await.unwrap();
    let read = messages::Entity::find_by_id(stored.id)
        .one(store.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(read.text.as_deref(), Some(text));
    assert_eq!(read.metadata["raw"]["text"], text);
    let drift = (read.telegram_date - stored.telegram_date)
        .num_microseconds()
        .unwrap()
        .abs();
    assert!(drift < 1_000, "timestamp changed by {drift}µs");
}

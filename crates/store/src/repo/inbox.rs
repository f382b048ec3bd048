//! Receiving what arrives from Telegram: one transaction per event that upserts the chat, stores the message
//! once (idempotent on the Telegram id), links replies and keeps the chat's counters right.

use chrono::{DateTime, Utc};
use crm_core::inbound::{ChatRef, InboundEvent, InboundMessage};
use crm_core::message::{Direction, MessageStatus};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, Set,
    TransactionTrait, TryInsertResult,
};
use serde_json::{Value, json};

use crate::entity::{chats, messages};
use crate::repo::jobs::NewJob;
use crate::{Store, StoreError, StoreResult};

/// Files larger than this are not downloaded automatically (the public Bot API's limit).
pub const MAX_DOWNLOAD_BYTES: i64 = 20 * 1024 * 1024;

/// What receiving an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new message was stored.
    Stored,
    /// The message was already stored (a redelivery); nothing changed.
    Duplicate,
    /// A stored message or chat was updated (edit, reaction, block).
    Updated,
    /// Nothing to store (an ignored kind, or a reaction on an unknown message).
    Ignored,
}

/// The result of [`receive`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// What happened.
    pub outcome: Outcome,
    /// The chat concerned, if any.
    pub chat_id: Option<i64>,
    /// The message concerned, if any.
    pub message_id: Option<i64>,
}

impl Received {
    fn ignored() -> Self {
        Self {
            outcome: Outcome::Ignored,
            chat_id: None,
            message_id: None,
        }
    }
}

/// How files of received messages are fetched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaPolicy {
    /// Files Telegram says are larger are recorded as too large, not downloaded automatically.
    pub max_download_bytes: i64,
    /// Downloads need this personal account's live connection: pin their jobs to its instance.
    pub pinned_account_id: Option<i64>,
}

impl MediaPolicy {
    /// Bots: the Bot API's download limit, no pinning.
    pub const BOT: Self = Self {
        max_download_bytes: MAX_DOWNLOAD_BYTES,
        pinned_account_id: None,
    };
}

/// Stores `event` for `account_id` in one transaction. Safe to call again with the same event.
pub async fn receive(store: &Store, account_id: i64, event: &InboundEvent) -> StoreResult<Received> {
    receive_with_jobs(store, account_id, event, Vec::new()).await
}

/// Like [`receive`], and enqueues `jobs` (for example forwarding the raw update) in the same transaction, so
/// they exist exactly when the event was stored. Jobs with a dedupe key already queued are skipped.
pub async fn receive_with_jobs(
    store: &Store,
    account_id: i64,
    event: &InboundEvent,
    jobs: Vec<NewJob>,
) -> StoreResult<Received> {
    receive_with_policy(store, account_id, event, jobs, MediaPolicy::BOT).await
}

/// Like [`receive_with_jobs`], fetching files as `media` says.
pub async fn receive_with_policy(
    store: &Store,
    account_id: i64,
    event: &InboundEvent,
    jobs: Vec<NewJob>,
    media: MediaPolicy,
) -> StoreResult<Received> {
    let txn = store.db().begin().await?;
    for job in jobs {
        crate::repo::jobs::enqueue(&txn, job).await?;
    }
    let received = match event {
        InboundEvent::NewMessage(message) => store_message(&txn, account_id, message, media).await?,
        InboundEvent::EditedMessage(message) => edit_message(&txn, account_id, message, media).await?,
        InboundEvent::MembershipChanged { chat, blocked, .. } => {
            let chat = upsert_chat(&txn, account_id, chat).await?;
            chats::Entity::update_many()
                .col_expr(chats::Column::IsBlocked, Expr::value(*blocked))
                .col_expr(chats::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(chats::Column::Id.eq(chat.id))
                .exec(&txn)
                .await?;
            Received {
                outcome: Outcome::Updated,
                chat_id: Some(chat.id),
                message_id: None,
            }
        }
        InboundEvent::ReactionChanged {
            chat,
            telegram_message_id,
            user_id,
            reactions,
            ..
        } => react(&txn, account_id, chat, *telegram_message_id, *user_id, reactions).await?,
        InboundEvent::Ignored { .. } => Received::ignored(),
    };
    txn.commit().await?;
    Ok(received)
}

async fn find_chat<C: ConnectionTrait>(
    conn: &C,
    account_id: i64,
    peer_id: i64,
) -> StoreResult<Option<chats::Model>> {
    Ok(chats::Entity::find()
        .filter(chats::Column::AccountId.eq(account_id))
        .filter(chats::Column::PeerId.eq(peer_id))
        .one(conn)
        .await?)
}

/// The chat of (account, peer), created if new; names and titles follow what Telegram last said.
async fn upsert_chat(
    txn: &DatabaseTransaction,
    account_id: i64,
    chat: &ChatRef,
) -> StoreResult<chats::Model> {
    let now = Utc::now();
    let new_chat = chats::ActiveModel {
        account_id: Set(account_id),
        peer_id: Set(chat.peer_id),
        chat_type: Set(chat.chat_type.as_str().to_owned()),
        title: Set(chat.title.clone()),
        username: Set(chat.username.clone()),
        first_name: Set(chat.first_name.clone()),
        last_name: Set(chat.last_name.clone()),
        unread_count: Set(0),
        message_count: Set(0),
        is_blocked: Set(false),
        metadata: Set(json!({})),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    // Two deliveries for a new chat may race: the loser's insert does nothing and it reads the winner's row.
    chats::Entity::insert(new_chat)
        .on_conflict_do_nothing_on([chats::Column::AccountId, chats::Column::PeerId])
        .exec(txn)
        .await?;
    let stored = find_chat(txn, account_id, chat.peer_id)
        .await?
        .ok_or_else(|| StoreError::Unavailable("chat vanished while being stored".into()))?;
    let changed = stored.title != chat.title
        || stored.username != chat.username
        || stored.first_name != chat.first_name
        || stored.last_name != chat.last_name;
    if !changed {
        return Ok(stored);
    }
    let mut update: chats::ActiveModel = stored.into();
    update.title = Set(chat.title.clone());
    update.username = Set(chat.username.clone());
    update.first_name = Set(chat.first_name.clone());
    update.last_name = Set(chat.last_name.clone());
    update.updated_at = Set(now);
    Ok(update.update(txn).await?)
}

async fn find_message<C: ConnectionTrait>(
    conn: &C,
    chat_id: i64,
    telegram_id: i64,
) -> StoreResult<Option<messages::Model>> {
    Ok(messages::Entity::find()
        .filter(messages::Column::ChatId.eq(chat_id))
        .filter(messages::Column::TelegramMessageId.eq(telegram_id))
        .one(conn)
        .await?)
}

fn metadata_with_media(message: &InboundMessage) -> Value {
    let mut metadata = message.metadata.clone();
    if let (Some(media), Some(fields)) = (&message.media, metadata.as_object_mut()) {
        fields.insert(
            "media".into(),
            json!({ "file_id": media.file_id, "file_unique_id": media.file_unique_id, "file_size": media.file_size,
                    "file_name": media.file_name, "mime_type": media.mime_type }),
        );
    }
    metadata
}

async fn store_message(
    txn: &DatabaseTransaction,
    account_id: i64,
    message: &InboundMessage,
    policy: MediaPolicy,
) -> StoreResult<Received> {
    let chat = upsert_chat(txn, account_id, &message.chat).await?;
    let reply_to = match message.reply_to_telegram_id {
        Some(parent) => find_message(txn, chat.id, parent).await?.map(|m| m.id),
        None => None,
    };
    let now = Utc::now();
    let status = match message.direction {
        Direction::Inbound => MessageStatus::Received,
        Direction::Outbound => MessageStatus::Sent,
    };
    let row = messages::ActiveModel {
        chat_id: Set(chat.id),
        telegram_message_id: Set(Some(message.telegram_message_id)),
        direction: Set(message.direction.as_str().to_owned()),
        message_type: Set(message.message_type.as_str().to_owned()),
        text: Set(message.text.clone()),
        caption: Set(message.caption.clone()),
        sender_id: Set(message.sender.as_ref().map(|s| s.id)),
        sender_name: Set(message.sender.as_ref().and_then(|s| s.name.clone())),
        sender_username: Set(message.sender.as_ref().and_then(|s| s.username.clone())),
        reply_to_message_id: Set(reply_to),
        reply_to_telegram_id: Set(message.reply_to_telegram_id),
        status: Set(status.as_str().to_owned()),
        telegram_date: Set(message.date),
        edited_at: Set(message.edited_at),
        is_deleted: Set(false),
        metadata: Set(metadata_with_media(message)),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    let inserted = messages::Entity::insert(row)
        .on_conflict_do_nothing_on([messages::Column::ChatId, messages::Column::TelegramMessageId])
        .exec(txn)
        .await?;
    let stored = find_message(txn, chat.id, message.telegram_message_id)
        .await?
        .ok_or_else(|| StoreError::Unavailable("message vanished while being stored".into()))?;
    if matches!(inserted, TryInsertResult::Conflicted) {
        return Ok(Received {
            outcome: Outcome::Duplicate,
            chat_id: Some(chat.id),
            message_id: Some(stored.id),
        });
    }
    count_new_message(txn, chat.id, message.direction, message.date).await?;
    if let Some(media) = &message.media {
        crate::repo::media::queue_download(txn, stored.id, media, policy).await?;
    }
    // A reply that arrived before its parent is linked when the parent comes.
    messages::Entity::update_many()
        .col_expr(messages::Column::ReplyToMessageId, Expr::value(stored.id))
        .filter(messages::Column::ChatId.eq(chat.id))
        .filter(messages::Column::ReplyToTelegramId.eq(message.telegram_message_id))
        .filter(messages::Column::ReplyToMessageId.is_null())
        .exec(txn)
        .await?;
    Ok(Received {
        outcome: Outcome::Stored,
        chat_id: Some(chat.id),
        message_id: Some(stored.id),
    })
}

async fn count_new_message(
    txn: &DatabaseTransaction,
    chat_id: i64,
    direction: Direction,
    date: DateTime<Utc>,
) -> StoreResult<()> {
    let unread = i32::from(direction == Direction::Inbound);
    chats::Entity::update_many()
        .col_expr(
            chats::Column::MessageCount,
            Expr::col(chats::Column::MessageCount).add(1),
        )
        .col_expr(
            chats::Column::UnreadCount,
            Expr::col(chats::Column::UnreadCount).add(unread),
        )
        .col_expr(chats::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(chats::Column::Id.eq(chat_id))
        .exec(txn)
        .await?;
    chats::Entity::update_many()
        .col_expr(chats::Column::LastMessageAt, Expr::value(date))
        .filter(chats::Column::Id.eq(chat_id))
        .filter(
            chats::Column::LastMessageAt
                .is_null()
                .or(chats::Column::LastMessageAt.lt(date)),
        )
        .exec(txn)
        .await?;
    Ok(())
}

async fn edit_message(
    txn: &DatabaseTransaction,
    account_id: i64,
    message: &InboundMessage,
    policy: MediaPolicy,
) -> StoreResult<Received> {
    let chat = upsert_chat(txn, account_id, &message.chat).await?;
    let Some(stored) = find_message(txn, chat.id, message.telegram_message_id).await? else {
        // An edit of a message we never saw: keep it as a message, marked edited.
        return store_message(txn, account_id, message, policy).await;
    };
    let mut metadata = stored.metadata.clone();
    if let Some(fields) = metadata.as_object_mut() {
        fields.insert(
            "edited_raw".into(),
            message.metadata.get("raw").cloned().unwrap_or(Value::Null),
        );
        for key in ["entities", "caption_entities"] {
            if let Some(value) = message.metadata.get(key) {
                fields.insert(key.into(), value.clone());
            }
        }
    }
    let id = stored.id;
    let mut update: messages::ActiveModel = stored.into();
    update.text = Set(message.text.clone());
    update.caption = Set(message.caption.clone());
    update.edited_at = Set(message.edited_at.or_else(|| Some(Utc::now())));
    update.metadata = Set(metadata);
    update.updated_at = Set(Utc::now());
    update.update(txn).await?;
    Ok(Received {
        outcome: Outcome::Updated,
        chat_id: Some(chat.id),
        message_id: Some(id),
    })
}

async fn react(
    txn: &DatabaseTransaction,
    account_id: i64,
    chat: &ChatRef,
    telegram_message_id: i64,
    user_id: Option<i64>,
    reactions: &Value,
) -> StoreResult<Received> {
    let Some(chat) = find_chat(txn, account_id, chat.peer_id).await? else {
        return Ok(Received::ignored());
    };
    let Some(stored) = find_message(txn, chat.id, telegram_message_id).await? else {
        return Ok(Received::ignored());
    };
    let mut metadata = stored.metadata.clone();
    if let Some(fields) = metadata.as_object_mut() {
        let by_user = fields.entry("reactions").or_insert_with(|| json!({}));
        if let Some(by_user) = by_user.as_object_mut() {
            let who = user_id.map_or_else(|| "anonymous".to_owned(), |id| id.to_string());
            if reactions.as_array().is_some_and(Vec::is_empty) {
                by_user.remove(&who);
            } else {
                by_user.insert(who, reactions.clone());
            }
        }
    }
    let id = stored.id;
    let mut update: messages::ActiveModel = stored.into();
    update.metadata = Set(metadata);
    update.updated_at = Set(Utc::now());
    update.update(txn).await?;
    Ok(Received {
        outcome: Outcome::Updated,
        chat_id: Some(chat.id),
        message_id: Some(id),
    })
}

//! Outgoing messages: an accepted reply is stored as `queued` together with its send job in one transaction,
//! so it is never lost; the sender records `sent` (with Telegram's id) or `failed` (with the reason), and a
//! failed message can be queued again by hand.

use chrono::{DateTime, Utc};
use crm_core::account::AccountType;
use crm_core::message::{Direction, MessageStatus, MessageType};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, Set, TransactionTrait};
use serde_json::{Value, json};

use crate::entity::{accounts, chats, media_files, messages};
use crate::repo::jobs::{self, NewJob};
use crate::{Store, StoreError, StoreResult};

/// The job kind that sends an outgoing message.
pub const SEND_MESSAGE: &str = "send_message";
/// Default attempts before a transiently failing send is given up (`SEND_MAX_ATTEMPTS`).
pub const DEFAULT_SEND_ATTEMPTS: i32 = 8;

/// A reply to queue.
#[derive(Debug, Clone)]
pub struct NewOutgoing {
    /// The chat.
    pub chat_id: i64,
    /// The operator sending it.
    pub sent_by_user_id: i64,
    /// Text, or the caption of a file.
    pub text: Option<String>,
    /// Kind of content.
    pub message_type: MessageType,
    /// The stored message replied to.
    pub reply_to: Option<messages::Model>,
    /// An uploaded file to attach (its `media_files` id).
    pub media_file_id: Option<i64>,
    /// Sender's display name.
    pub sender_name: String,
    /// Attempts before a transiently failing send is given up.
    pub max_attempts: i32,
}

fn send_job(message_id: i64, generation: i64, max_attempts: i32, personal_account: Option<i64>) -> NewJob {
    let mut job = NewJob::now(SEND_MESSAGE, json!({ "message_id": message_id }));
    job.max_attempts = max_attempts;
    job.dedupe_key = Some(format!("{SEND_MESSAGE}:{message_id}:{generation}"));
    job.pinned_account_id = personal_account;
    job
}

/// The personal account a chat belongs to, if it is one: its sends need that account's live connection.
async fn personal_account_of<C: sea_orm::ConnectionTrait>(
    conn: &C,
    chat_id: i64,
) -> StoreResult<Option<i64>> {
    let Some(chat) = chats::Entity::find_by_id(chat_id).one(conn).await? else {
        return Ok(None);
    };
    let account = accounts::Entity::find_by_id(chat.account_id).one(conn).await?;
    Ok(account
        .filter(|a| a.account_type == AccountType::Personal.as_str())
        .map(|a| a.id))
}

/// A fresh `random_id` for an outgoing message. It is stored with the message and reused by every attempt,
/// including a retry by hand: Telegram ignores a repeated `random_id`, so a message is never posted twice.
fn new_random_id() -> i64 {
    use rand::Rng;
    rand::thread_rng().r#gen::<i64>()
}

/// Stores the message as `queued` and its send job, in one transaction.
pub async fn queue(store: &Store, outgoing: NewOutgoing) -> StoreResult<messages::Model> {
    let txn = store.db().begin().await?;
    let now = Utc::now();
    let mut metadata = json!({ "random_id": new_random_id() });
    if let Some(media_file_id) = outgoing.media_file_id {
        metadata["media_file_id"] = json!(media_file_id);
    }
    let message = messages::ActiveModel {
        chat_id: Set(outgoing.chat_id),
        direction: Set(Direction::Outbound.as_str().to_owned()),
        message_type: Set(outgoing.message_type.as_str().to_owned()),
        text: Set(if outgoing.media_file_id.is_none() {
            outgoing.text.clone()
        } else {
            None
        }),
        caption: Set(if outgoing.media_file_id.is_some() {
            outgoing.text.clone()
        } else {
            None
        }),
        sender_name: Set(Some(outgoing.sender_name)),
        sent_by_user_id: Set(Some(outgoing.sent_by_user_id)),
        reply_to_message_id: Set(outgoing.reply_to.as_ref().map(|m| m.id)),
        reply_to_telegram_id: Set(outgoing.reply_to.as_ref().and_then(|m| m.telegram_message_id)),
        status: Set(MessageStatus::Queued.as_str().to_owned()),
        telegram_date: Set(now),
        is_deleted: Set(false),
        metadata: Set(metadata),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    if let Some(media_file_id) = outgoing.media_file_id {
        // An upload is sent once: attaching it to a second message is refused.
        let attached = media_files::Entity::update_many()
            .col_expr(media_files::Column::MessageId, Expr::value(message.id))
            .filter(media_files::Column::Id.eq(media_file_id))
            .filter(media_files::Column::MessageId.is_null())
            .exec(&txn)
            .await?;
        if attached.rows_affected != 1 {
            return Err(StoreError::Duplicate(
                "the upload is already attached to a message".into(),
            ));
        }
    }
    let personal_account = personal_account_of(&txn, outgoing.chat_id).await?;
    jobs::enqueue(
        &txn,
        send_job(message.id, 0, outgoing.max_attempts, personal_account),
    )
    .await?;
    chats::Entity::update_many()
        .col_expr(
            chats::Column::MessageCount,
            Expr::col(chats::Column::MessageCount).add(1),
        )
        .col_expr(chats::Column::LastMessageAt, Expr::value(now))
        .col_expr(chats::Column::UpdatedAt, Expr::value(now))
        .filter(chats::Column::Id.eq(outgoing.chat_id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(message)
}

/// Records Telegram's acknowledgement: status `sent`, its message id and date. A personal account may have
/// stored the same message already from its update stream (Telegram echoes it); that copy is dropped so the
/// message appears once, as the operator's. Returns the ids of the dropped copies.
pub async fn mark_sent(
    store: &Store,
    message_id: i64,
    telegram_message_id: i64,
    date: DateTime<Utc>,
) -> StoreResult<Vec<i64>> {
    let txn = store.db().begin().await?;
    let Some(message) = messages::Entity::find_by_id(message_id).one(&txn).await? else {
        return Ok(Vec::new());
    };
    let echoes: Vec<i64> = messages::Entity::find()
        .select_only()
        .column(messages::Column::Id)
        .filter(messages::Column::ChatId.eq(message.chat_id))
        .filter(messages::Column::TelegramMessageId.eq(telegram_message_id))
        .filter(messages::Column::Id.ne(message_id))
        .into_tuple()
        .all(&txn)
        .await?;
    if !echoes.is_empty() {
        media_files::Entity::delete_many()
            .filter(media_files::Column::MessageId.is_in(echoes.clone()))
            .exec(&txn)
            .await?;
        let removed = messages::Entity::delete_many()
            .filter(messages::Column::Id.is_in(echoes.clone()))
            .exec(&txn)
            .await?;
        chats::Entity::update_many()
            .col_expr(
                chats::Column::MessageCount,
                Expr::col(chats::Column::MessageCount).sub(i32::try_from(removed.rows_affected).unwrap_or(0)),
            )
            .filter(chats::Column::Id.eq(message.chat_id))
            .exec(&txn)
            .await?;
    }
    messages::Entity::update_many()
        .col_expr(
            messages::Column::Status,
            Expr::value(MessageStatus::Sent.as_str()),
        )
        .col_expr(
            messages::Column::TelegramMessageId,
            Expr::value(telegram_message_id),
        )
        .col_expr(messages::Column::TelegramDate, Expr::value(date))
        .col_expr(messages::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(messages::Column::Id.eq(message_id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    Ok(echoes)
}

/// Records that sending failed for good, with the reason in `metadata.error`.
pub async fn mark_failed(store: &Store, message: &messages::Model, reason: &str) -> StoreResult<()> {
    let mut metadata = message.metadata.clone();
    if let Some(fields) = metadata.as_object_mut() {
        fields.insert("error".into(), Value::String(reason.to_owned()));
        fields.insert("failed_at".into(), json!(Utc::now()));
    }
    messages::Entity::update_many()
        .col_expr(
            messages::Column::Status,
            Expr::value(MessageStatus::Failed.as_str()),
        )
        .col_expr(messages::Column::Metadata, Expr::value(metadata))
        .col_expr(messages::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(messages::Column::Id.eq(message.id))
        .exec(store.db())
        .await?;
    Ok(())
}

/// Queues a failed outgoing message again (a retry by hand), with a fresh send job. False if it is not a
/// failed outgoing message.
pub async fn retry_failed(store: &Store, message: &messages::Model, max_attempts: i32) -> StoreResult<bool> {
    if message.status != MessageStatus::Failed.as_str() || message.direction != Direction::Outbound.as_str() {
        return Ok(false);
    }
    let txn = store.db().begin().await?;
    let mut metadata = message.metadata.clone();
    let generation = metadata.get("retries").and_then(Value::as_i64).unwrap_or(0) + 1;
    if let Some(fields) = metadata.as_object_mut() {
        fields.remove("error");
        fields.insert("retries".into(), json!(generation));
    }
    let updated = messages::Entity::update_many()
        .col_expr(
            messages::Column::Status,
            Expr::value(MessageStatus::Queued.as_str()),
        )
        .col_expr(messages::Column::Metadata, Expr::value(metadata))
        .col_expr(messages::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(messages::Column::Id.eq(message.id))
        .filter(messages::Column::Status.eq(MessageStatus::Failed.as_str()))
        .exec(&txn)
        .await?;
    if updated.rows_affected == 1 {
        let personal_account = personal_account_of(&txn, message.chat_id).await?;
        jobs::enqueue(
            &txn,
            send_job(message.id, generation, max_attempts, personal_account),
        )
        .await?;
    }
    txn.commit().await?;
    Ok(updated.rows_affected == 1)
}

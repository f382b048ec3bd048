//! The bare loop: what one intake writes, as hand-written SQL through the store's own connections, without
//! HTTP and without the use-case layer. Per update, one transaction (`BEGIN IMMEDIATE` on SQLite, `READ
//! COMMITTED` on MySQL, as the store opens them) that reads and locks the chat row by (account, peer), inserts
//! the message (idempotent on the chat and Telegram id), updates the chat's counters and newest message with
//! one statement keyed by its id, and inserts the two event rows (`new_message`, `chat_updated`) with payloads
//! the size of the real ones; then commits. A deadlock or busy error runs the transaction again, as the store
//! does. It is the ceiling the intake is compared with.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;
use chrono::{DateTime, SubsecRound, Utc};
use crm_store::entity::{chats, events, messages};
use crm_store::{Backend, Store, StoreError};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseTransaction, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, Statement, Value,
};
use serde_json::Value as Json;

use crate::report::Answer;
use crate::traffic::Update;

/// Attempts of one transaction, as the store makes them.
const ATTEMPTS: u32 = 8;

/// Row contents copied from what the real intake stored, so the bare loop writes the same sizes.
#[derive(Debug, Clone)]
pub struct Template {
    /// A stored inbound message's metadata.
    metadata: Json,
    /// A `new_message` event's payload.
    new_message: Json,
    /// A `chat_updated` event's payload.
    chat_updated: Json,
}

impl Template {
    /// Reads the newest stored message and events written by a real intake.
    pub async fn read(store: &Store) -> anyhow::Result<Self> {
        let message = messages::Entity::find()
            .order_by_desc(messages::Column::Id)
            .one(store.db())
            .await?
            .context("no message stored yet: run an intake first")?;
        let payload = |kind: &'static str| async move {
            let row = events::Entity::find()
                .filter(events::Column::Kind.eq(kind))
                .order_by_desc(events::Column::Id)
                .one(store.db())
                .await?
                .with_context(|| format!("no {kind} event stored yet: run an intake first"))?;
            anyhow::Ok(row.payload)
        };
        Ok(Self {
            metadata: message.metadata,
            new_message: payload("new_message").await?,
            chat_updated: payload("chat_updated").await?,
        })
    }
}

/// The bare loop over one store.
pub struct Bare {
    store: Store,
    account_id: i64,
    template: Template,
    conflicts: AtomicU64,
}

/// Rewrites `?` placeholders as `$1, $2, …` for PostgreSQL.
fn sql(backend: Backend, text: &str) -> String {
    if backend != Backend::Postgres {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut n = 0;
    for c in text.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}

/// Sets `value` at `path` in `target` when that field exists (the templates keep their shape).
fn put(target: &mut Json, path: &[&str], value: Json) {
    let mut at = target;
    for key in path {
        match at.get_mut(*key) {
            Some(next) => at = next,
            None => return,
        }
    }
    *at = value;
}

const CHAT_COLUMNS: &str = "id, account_id, peer_id, chat_type, title, username, first_name, last_name, \
    unread_count, message_count, last_message_at, last_message_id, last_message_preview, last_message_outgoing, \
    assigned_user_id, has_orphan_replies, last_read_at, is_blocked, metadata, created_at, updated_at";

const INSERT_MESSAGE: &str = "INSERT INTO messages (chat_id, telegram_message_id, direction, message_type, text, \
    caption, sender_id, sender_name, sender_username, sent_by_user_id, reply_to_message_id, reply_to_telegram_id, \
    status, telegram_date, edited_at, is_deleted, metadata, created_at, updated_at) \
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

const UPDATE_CHAT: &str = "UPDATE chats SET chat_type = ?, title = ?, username = ?, first_name = ?, last_name = ?, \
    unread_count = ?, message_count = ?, last_message_at = ?, last_message_id = ?, last_message_preview = ?, \
    last_message_outgoing = ?, last_read_at = ?, is_blocked = ?, assigned_user_id = ?, has_orphan_replies = ?, \
    metadata = ?, updated_at = ? WHERE id = ?";

const INSERT_EVENTS: &str = "INSERT INTO events (kind, chat_id, user_id, payload, created_at) VALUES (?, ?, ?, ?, ?), (?, ?, ?, ?, ?)";

impl Bare {
    /// The bare loop writing into `account_id`'s chats, with rows shaped like `template`.
    pub fn new(store: Store, account_id: i64, template: Template) -> Arc<Self> {
        Arc::new(Self {
            store,
            account_id,
            template,
            conflicts: AtomicU64::new(0),
        })
    }

    /// Transactions run again after a deadlock or a busy database so far.
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(Ordering::Relaxed)
    }

    /// Stores one update the way the intake does, running the transaction again after a conflict.
    pub async fn store(&self, update: Update) -> Answer {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.attempt(update).await {
                Ok(()) => return Answer::Status(200),
                Err(error) => {
                    let error = StoreError::from(error);
                    if error.is_retryable() && attempt < ATTEMPTS {
                        self.conflicts.fetch_add(1, Ordering::Relaxed);
                        let ceiling = 5u64 << attempt.min(6);
                        let pause = u64::from(u32::try_from(update.id).unwrap_or(7)) % ceiling + 1;
                        tokio::time::sleep(Duration::from_millis(pause)).await;
                        continue;
                    }
                    return Answer::Failed(error.to_string());
                }
            }
        }
    }

    async fn attempt(&self, update: Update) -> Result<(), DbErr> {
        let txn = self.store.begin_write().await.map_err(|error| match error {
            StoreError::Database(inner) | StoreError::Conflict(inner) | StoreError::Unavailable(inner) => {
                inner
            }
            other => DbErr::Custom(other.to_string()),
        })?;
        self.body(&txn, update).await?;
        txn.commit().await
    }

    async fn body(&self, txn: &DatabaseTransaction, update: Update) -> Result<(), DbErr> {
        let backend = self.store.backend();
        let db = txn.get_database_backend();
        let now = Utc::now().trunc_subsecs(6);
        let lock = if backend == Backend::Sqlite {
            ""
        } else {
            " FOR UPDATE"
        };
        let select = format!("SELECT {CHAT_COLUMNS} FROM chats WHERE account_id = ? AND peer_id = ?{lock}");
        let row = txn
            .query_one_raw(Statement::from_sql_and_values(
                db,
                sql(backend, &select),
                [self.account_id.into(), update.peer.into()],
            ))
            .await?
            .ok_or_else(|| DbErr::RecordNotFound(format!("chat of peer {}", update.peer)))?;
        let chat = chats::Model::from_query_result(&row, "")?;

        let text = update.text();
        let date = DateTime::from_timestamp(update.date, 0).unwrap_or(now);
        let mut metadata = self.template.metadata.clone();
        put(&mut metadata, &["raw"], update.body()["message"].clone());
        let conflict = match backend {
            Backend::MySql => " ON DUPLICATE KEY UPDATE id = id",
            _ => " ON CONFLICT (chat_id, telegram_message_id) DO NOTHING",
        };
        let returning = if backend == Backend::Postgres {
            " RETURNING id"
        } else {
            ""
        };
        let insert = Statement::from_sql_and_values(
            db,
            sql(backend, &format!("{INSERT_MESSAGE}{conflict}{returning}")),
            [
                chat.id.into(),
                update.id.into(),
                "in".into(),
                "text".into(),
                Some(text.clone()).into(),
                Option::<String>::None.into(),
                update.peer.into(),
                Some(format!("Customer {}", update.customer())).into(),
                Some(format!("customer_{}", update.customer())).into(),
                Option::<i64>::None.into(),
                Option::<i64>::None.into(),
                Option::<i64>::None.into(),
                "received".into(),
                date.into(),
                Option::<DateTime<Utc>>::None.into(),
                false.into(),
                metadata.clone().into(),
                now.into(),
                now.into(),
            ],
        );
        let message_id = if backend == Backend::Postgres {
            let row = txn.query_one_raw(insert).await?;
            row.map(|row| row.try_get::<i64>("", "id")).transpose()?
        } else {
            let done = txn.execute_raw(insert).await?;
            (done.rows_affected() == 1).then(|| i64::try_from(done.last_insert_id()).unwrap_or(0))
        };
        let Some(message_id) = message_id else {
            return Ok(());
        };

        let preview: String = text.chars().take(100).collect();
        txn.execute_raw(Statement::from_sql_and_values(
            db,
            sql(backend, UPDATE_CHAT),
            [
                "private".into(),
                chat.title.clone().into(),
                Some(format!("customer_{}", update.customer())).into(),
                Some(format!("Customer {}", update.customer())).into(),
                chat.last_name.clone().into(),
                (chat.unread_count + 1).into(),
                (chat.message_count + 1).into(),
                Some(date).into(),
                Some(message_id).into(),
                Some(preview.clone()).into(),
                false.into(),
                chat.last_read_at.into(),
                chat.is_blocked.into(),
                chat.assigned_user_id.into(),
                chat.has_orphan_replies.into(),
                chat.metadata.clone().into(),
                now.into(),
                chat.id.into(),
            ],
        ))
        .await?;

        let mut new_message = self.template.new_message.clone();
        put(&mut new_message, &["message", "id"], message_id.into());
        put(&mut new_message, &["message", "chat_id"], chat.id.into());
        put(
            &mut new_message,
            &["message", "telegram_message_id"],
            update.id.into(),
        );
        put(&mut new_message, &["message", "text"], text.into());
        put(&mut new_message, &["message", "metadata"], metadata);
        let mut chat_updated = self.template.chat_updated.clone();
        put(&mut chat_updated, &["chat", "id"], chat.id.into());
        put(&mut chat_updated, &["chat", "telegram_id"], update.peer.into());
        put(
            &mut chat_updated,
            &["chat", "message_count"],
            (chat.message_count + 1).into(),
        );
        put(
            &mut chat_updated,
            &["chat", "unread_count"],
            (chat.unread_count + 1).into(),
        );
        put(
            &mut chat_updated,
            &["chat", "last_message_preview"],
            preview.into(),
        );
        let values: Vec<Value> = vec![
            "new_message".into(),
            Some(chat.id).into(),
            Option::<i64>::None.into(),
            new_message.into(),
            now.into(),
            "chat_updated".into(),
            Some(chat.id).into(),
            Option::<i64>::None.into(),
            chat_updated.into(),
            now.into(),
        ];
        txn.execute_raw(Statement::from_sql_and_values(
            db,
            sql(backend, INSERT_EVENTS),
            values,
        ))
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_for_postgres_only() {
        assert_eq!(sql(Backend::Postgres, "a = ? AND b = ?"), "a = $1 AND b = $2");
        assert_eq!(sql(Backend::MySql, "a = ?"), "a = ?");
    }

    #[test]
    fn templates_keep_their_shape() {
        let mut payload = serde_json::json!({"message": {"id": 1}});
        put(&mut payload, &["message", "id"], 5.into());
        put(&mut payload, &["message", "missing"], 5.into());
        assert_eq!(payload, serde_json::json!({"message": {"id": 5}}));
    }
}

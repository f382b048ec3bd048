//! The `mark_read_in_telegram` job: after an operator reads a chat of a personal account, the account marks the
//! chat read in Telegram too, up to the newest received message (runs on the instance connected to the account).

use crm_core::message::Direction;
use crm_store::Store;
use crm_store::entity::{chats, messages};
use crm_store::repo::chats::MARK_READ_IN_TELEGRAM;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::connected::ConnectedAccounts;
use crate::runner::{BoxFuture, JobContext, JobError, JobHandler};

/// Marks chats read in Telegram.
pub struct MarkReadInTelegram {
    store: Store,
    connected: ConnectedAccounts,
}

impl MarkReadInTelegram {
    /// A handler using the live connections in `connected`.
    pub fn new(store: Store, connected: ConnectedAccounts) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self { store, connected })
    }

    async fn mark(&self, job: JobContext) -> Result<(), JobError> {
        let retry = |error: sea_orm::DbErr| JobError::Retry(error.to_string());
        let Some(chat_id) = job.payload.get("chat_id").and_then(serde_json::Value::as_i64) else {
            return Err(JobError::Permanent(
                "mark_read_in_telegram job without chat_id".into(),
            ));
        };
        let Some(chat) = chats::Entity::find_by_id(chat_id)
            .one(self.store.db())
            .await
            .map_err(retry)?
        else {
            return Ok(());
        };
        let newest = messages::Entity::find()
            .filter(messages::Column::ChatId.eq(chat_id))
            .filter(messages::Column::Direction.eq(Direction::Inbound.as_str()))
            .filter(messages::Column::TelegramMessageId.is_not_null())
            .order_by_desc(messages::Column::TelegramMessageId)
            .one(self.store.db())
            .await
            .map_err(retry)?;
        let Some(max_id) = newest.and_then(|m| m.telegram_message_id) else {
            return Ok(());
        };
        let Some(connection) = self.connected.get(chat.account_id) else {
            return Err(JobError::Retry(
                "the personal account is not connected on this instance".into(),
            ));
        };
        connection
            .mark_read(chat.peer_id, max_id)
            .await
            .map_err(|error| JobError::Retry(error.to_string()))
    }
}

impl JobHandler for MarkReadInTelegram {
    fn kind(&self) -> &'static str {
        MARK_READ_IN_TELEGRAM
    }

    fn run(&self, job: JobContext) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(self.mark(job))
    }
}

//! [`SqlTx`]: core's [`Tx`] port over an open SeaORM transaction. Chat and user reads that a use case changes
//! take row locks (`FOR UPDATE` on MySQL/PostgreSQL; SQLite's write transaction is exclusive already); every
//! update is one statement keyed by the primary key. It remembers whether events or jobs were written, so the
//! committer can wake the relay and the job runner, and whether the transaction itself broke (a deadlock, a busy
//! database, a lost connection), so the committer runs it again instead of committing half of it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use crm_core::account::Account;
use crm_core::chat::{Chat, ChatType};
use crm_core::event::DomainEvent;
use crm_core::ids::{AccountId, ChatId, MediaFileId, MessageId, PeerId, TelegramMessageId, UserId};
use crm_core::inbound::ChatRef;
use crm_core::jobs::JobRequest;
use crm_core::media::{MediaFile, MediaOrigin, NewDownload};
use crm_core::message::{Direction, Message, MessageStatus, NewMessage};
use crm_core::ports::{BoxFuture, Tx};
use crm_core::user::User;
use crm_core::{CoreError, CoreResult};
use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseTransaction, DbErr, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, TryInsertResult,
};
use serde_json::json;

use crate::connect::Signals;
use crate::entity::{chat_assignments, chats, media_files, messages, users};
use crate::records::{chat_changes, media_changes, message_changes};
use crate::{Db, StoreError};

/// What a committed unit of work has to tell the rest of the process.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Effects {
    events: bool,
    jobs: bool,
}

impl Effects {
    /// Adds what `other` wrote.
    pub(crate) fn merge(&mut self, other: Effects) {
        self.events |= other.events;
        self.jobs |= other.jobs;
    }

    /// Wakes the relay and the job runner for what was written.
    pub(crate) fn signal(self, signals: &Signals) {
        if self.events {
            signals.events.notify_one();
        }
        if self.jobs {
            signals.jobs.notify_one();
        }
    }
}

/// A unit of work's view of one open transaction.
pub(crate) struct SqlTx<'c> {
    conn: &'c DatabaseTransaction,
    effects: Effects,
    broken: Option<StoreError>,
    /// Events written by the unit, inserted by the committer just before the commit (on SQLite, those of a
    /// whole group in one statement): no unit reads the events of its own transaction.
    events: Vec<DomainEvent>,
}

impl<'c> SqlTx<'c> {
    /// Statements of one unit of work in `conn`.
    pub(crate) fn new(conn: &'c DatabaseTransaction) -> Self {
        Self {
            conn,
            effects: Effects::default(),
            broken: None,
            events: Vec::new(),
        }
    }

    /// The events the unit of work wrote, for the committer to insert.
    pub(crate) fn take_events(&mut self) -> Vec<DomainEvent> {
        std::mem::take(&mut self.events)
    }

    /// What the unit of work wrote that others should hear of.
    pub(crate) fn effects(&self) -> Effects {
        self.effects
    }

    /// The error that broke the whole transaction, if one did.
    pub(crate) fn take_broken(&mut self) -> Option<StoreError> {
        self.broken.take()
    }

    /// Turns a database error into the core's, remembering one that broke the transaction.
    fn fail(&mut self, error: DbErr) -> CoreError {
        match StoreError::from(error) {
            broken @ (StoreError::Conflict(_) | StoreError::Unavailable(_)) => {
                let reported = CoreError::unavailable("the database is unavailable; try again shortly");
                self.broken = Some(broken);
                reported
            }
            other => other.into(),
        }
    }
}

fn chat_of(account: AccountId, chat: &ChatRef, now: DateTime<Utc>) -> chats::ActiveModel {
    chats::ActiveModel {
        account_id: Set(account.0),
        peer_id: Set(chat.peer_id.0),
        chat_type: Set(Db(chat.chat_type)),
        title: Set(chat.title.clone()),
        username: Set(chat.username.clone()),
        first_name: Set(chat.first_name.clone()),
        last_name: Set(chat.last_name.clone()),
        unread_count: Set(0),
        message_count: Set(0),
        last_message_outgoing: Set(false),
        is_blocked: Set(false),
        has_orphan_replies: Set(false),
        metadata: Set(json!({})),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
}

fn message_row(message: &NewMessage) -> messages::ActiveModel {
    messages::ActiveModel {
        chat_id: Set(message.chat_id.0),
        telegram_message_id: Set(message.telegram_message_id.map(|id| id.0)),
        direction: Set(Db(message.direction)),
        message_type: Set(Db(message.message_type)),
        text: Set(message.text.clone()),
        caption: Set(message.caption.clone()),
        sender_id: Set(message.sender_id),
        sender_name: Set(message.sender_name.clone()),
        sender_username: Set(message.sender_username.clone()),
        sent_by_user_id: Set(message.sent_by_user_id.map(|id| id.0)),
        reply_to_message_id: Set(message.reply_to_message_id.map(|id| id.0)),
        reply_to_telegram_id: Set(message.reply_to_telegram_id.map(|id| id.0)),
        status: Set(Db(message.status)),
        telegram_date: Set(message.telegram_date),
        edited_at: Set(message.edited_at),
        is_deleted: Set(false),
        metadata: Set(message.metadata.to_json()),
        created_at: Set(message.created_at),
        updated_at: Set(message.created_at),
        ..Default::default()
    }
}

/// Ids of `account`'s chats with `peer`, or (no peer) of its private chats and basic groups.
fn chats_of(account: AccountId, peer: Option<PeerId>) -> sea_orm::sea_query::SelectStatement {
    let mut query = Query::select();
    query
        .column(chats::Column::Id)
        .from(chats::Entity)
        .and_where(chats::Column::AccountId.eq(account.0));
    match peer {
        Some(peer) => query.and_where(chats::Column::PeerId.eq(peer.0)),
        None => query.and_where(chats::Column::ChatType.is_in([Db(ChatType::Private), Db(ChatType::Group)])),
    };
    query
}

impl Tx for SqlTx<'_> {
    fn account(&mut self, id: AccountId) -> BoxFuture<'_, CoreResult<Option<Account>>> {
        Box::pin(async move {
            let found = crate::entity::accounts::Entity::find_by_id(id.0)
                .one(self.conn)
                .await;
            Ok(found.map_err(|e| self.fail(e))?.map(Account::from))
        })
    }

    fn lock_chat(&mut self, id: ChatId) -> BoxFuture<'_, CoreResult<Option<Chat>>> {
        Box::pin(async move {
            let found = chats::Entity::find_by_id(id.0)
                .lock_exclusive()
                .one(self.conn)
                .await;
            Ok(found.map_err(|e| self.fail(e))?.map(Chat::from))
        })
    }

    fn lock_chat_by_peer(
        &mut self,
        account: AccountId,
        peer: PeerId,
    ) -> BoxFuture<'_, CoreResult<Option<Chat>>> {
        Box::pin(async move {
            let found = chats::Entity::find()
                .filter(chats::Column::AccountId.eq(account.0))
                .filter(chats::Column::PeerId.eq(peer.0))
                .lock_exclusive()
                .one(self.conn)
                .await;
            Ok(found.map_err(|e| self.fail(e))?.map(Chat::from))
        })
    }

    fn create_chat<'a>(
        &'a mut self,
        account: AccountId,
        chat: &'a ChatRef,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, CoreResult<Chat>> {
        Box::pin(async move {
            // Two arrivals for a new chat may race: the loser's insert does nothing and it locks the winner's.
            let inserted = chats::Entity::insert(chat_of(account, chat, now))
                .on_conflict_do_nothing_on([chats::Column::AccountId, chats::Column::PeerId])
                .exec(self.conn)
                .await;
            inserted.map_err(|e| self.fail(e))?;
            self.lock_chat_by_peer(account, chat.peer_id)
                .await?
                .ok_or_else(|| CoreError::internal("a chat vanished while being stored"))
        })
    }

    fn update_chat<'a>(&'a mut self, chat: &'a Chat) -> BoxFuture<'a, CoreResult<()>> {
        Box::pin(async move {
            let updated = chats::Entity::update_many()
                .set(chat_changes(chat))
                .filter(chats::Column::Id.eq(chat.id.0))
                .exec(self.conn)
                .await;
            updated.map_err(|e| self.fail(e))?;
            Ok(())
        })
    }

    fn message(&mut self, id: MessageId) -> BoxFuture<'_, CoreResult<Option<Message>>> {
        Box::pin(async move {
            let found = messages::Entity::find_by_id(id.0).one(self.conn).await;
            Ok(found.map_err(|e| self.fail(e))?.map(Message::from))
        })
    }

    fn message_by_telegram_id(
        &mut self,
        chat: ChatId,
        id: TelegramMessageId,
    ) -> BoxFuture<'_, CoreResult<Option<Message>>> {
        Box::pin(async move {
            let found = messages::Entity::find()
                .filter(messages::Column::ChatId.eq(chat.0))
                .filter(messages::Column::TelegramMessageId.eq(id.0))
                .one(self.conn)
                .await;
            Ok(found.map_err(|e| self.fail(e))?.map(Message::from))
        })
    }

    fn insert_message<'a>(
        &'a mut self,
        message: &'a NewMessage,
    ) -> BoxFuture<'a, CoreResult<Option<MessageId>>> {
        Box::pin(async move {
            let inserted = messages::Entity::insert(message_row(message))
                .on_conflict_do_nothing_on([messages::Column::ChatId, messages::Column::TelegramMessageId])
                .exec(self.conn)
                .await;
            match inserted.map_err(|e| self.fail(e))? {
                TryInsertResult::Inserted(result) => Ok(Some(MessageId(result.last_insert_id))),
                TryInsertResult::Conflicted | TryInsertResult::Empty => Ok(None),
            }
        })
    }

    fn update_message<'a>(&'a mut self, message: &'a Message) -> BoxFuture<'a, CoreResult<()>> {
        Box::pin(async move {
            let updated = messages::Entity::update_many()
                .set(message_changes(message))
                .filter(messages::Column::Id.eq(message.id.0))
                .exec(self.conn)
                .await;
            updated.map_err(|e| self.fail(e))?;
            Ok(())
        })
    }

    fn delete_messages<'a>(&'a mut self, ids: &'a [MessageId]) -> BoxFuture<'a, CoreResult<()>> {
        Box::pin(async move {
            // Their files' records go with them (foreign key, on delete cascade).
            let deleted = messages::Entity::delete_many()
                .filter(messages::Column::Id.is_in(ids.iter().map(|id| id.0)))
                .exec(self.conn)
                .await;
            deleted.map_err(|e| self.fail(e))?;
            Ok(())
        })
    }

    fn link_replies(
        &mut self,
        chat: ChatId,
        parent: TelegramMessageId,
        stored: MessageId,
    ) -> BoxFuture<'_, CoreResult<()>> {
        Box::pin(async move {
            let linked = messages::Entity::update_many()
                .col_expr(messages::Column::ReplyToMessageId, Expr::value(stored.0))
                .filter(messages::Column::ChatId.eq(chat.0))
                .filter(messages::Column::ReplyToTelegramId.eq(parent.0))
                .filter(messages::Column::ReplyToMessageId.is_null())
                .exec(self.conn)
                .await;
            linked.map_err(|e| self.fail(e))?;
            Ok(())
        })
    }

    fn messages_by_telegram_ids<'a>(
        &'a mut self,
        account: AccountId,
        peer: Option<PeerId>,
        ids: &'a [TelegramMessageId],
    ) -> BoxFuture<'a, CoreResult<Vec<Message>>> {
        Box::pin(async move {
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let found = messages::Entity::find()
                .filter(messages::Column::ChatId.in_subquery(chats_of(account, peer)))
                .filter(messages::Column::TelegramMessageId.is_in(ids.iter().map(|id| id.0)))
                .order_by_asc(messages::Column::Id)
                .all(self.conn)
                .await;
            Ok(found
                .map_err(|e| self.fail(e))?
                .into_iter()
                .map(Message::from)
                .collect())
        })
    }

    fn sent_up_to(
        &mut self,
        account: AccountId,
        peer: PeerId,
        max_id: TelegramMessageId,
    ) -> BoxFuture<'_, CoreResult<Vec<Message>>> {
        Box::pin(async move {
            let found = messages::Entity::find()
                .filter(messages::Column::ChatId.in_subquery(chats_of(account, Some(peer))))
                .filter(messages::Column::Direction.eq(Db(Direction::Outbound)))
                .filter(messages::Column::Status.eq(Db(MessageStatus::Sent)))
                .filter(messages::Column::TelegramMessageId.lte(max_id.0))
                .order_by_asc(messages::Column::Id)
                .all(self.conn)
                .await;
            Ok(found
                .map_err(|e| self.fail(e))?
                .into_iter()
                .map(Message::from)
                .collect())
        })
    }

    fn newest_inbound_telegram_id(
        &mut self,
        chat: ChatId,
    ) -> BoxFuture<'_, CoreResult<Option<TelegramMessageId>>> {
        Box::pin(async move {
            let found: Result<Option<Option<i64>>, DbErr> = messages::Entity::find()
                .select_only()
                .column(messages::Column::TelegramMessageId)
                .filter(messages::Column::ChatId.eq(chat.0))
                .filter(messages::Column::Direction.eq(Db(Direction::Inbound)))
                .filter(messages::Column::TelegramMessageId.is_not_null())
                .order_by_desc(messages::Column::TelegramMessageId)
                .into_tuple()
                .one(self.conn)
                .await;
            Ok(found.map_err(|e| self.fail(e))?.flatten().map(TelegramMessageId))
        })
    }

    fn files_of<'a>(
        &'a mut self,
        messages: &'a [MessageId],
    ) -> BoxFuture<'a, CoreResult<HashMap<MessageId, MediaFile>>> {
        Box::pin(async move {
            if messages.is_empty() {
                return Ok(HashMap::new());
            }
            let found = media_files::Entity::find()
                .filter(media_files::Column::MessageId.is_in(messages.iter().map(|id| id.0)))
                .all(self.conn)
                .await;
            Ok(found
                .map_err(|e| self.fail(e))?
                .into_iter()
                .filter_map(|row| row.message_id.map(|id| (MessageId(id), MediaFile::from(row))))
                .collect())
        })
    }

    fn media_file(&mut self, id: MediaFileId) -> BoxFuture<'_, CoreResult<Option<MediaFile>>> {
        Box::pin(async move {
            let found = media_files::Entity::find_by_id(id.0).one(self.conn).await;
            Ok(found.map_err(|e| self.fail(e))?.map(MediaFile::from))
        })
    }

    fn update_media_file<'a>(&'a mut self, file: &'a MediaFile) -> BoxFuture<'a, CoreResult<()>> {
        Box::pin(async move {
            let updated = media_files::Entity::update_many()
                .set(media_changes(file))
                .filter(media_files::Column::Id.eq(file.id.0))
                .exec(self.conn)
                .await;
            updated.map_err(|e| self.fail(e))?;
            Ok(())
        })
    }

    fn insert_download<'a>(&'a mut self, file: &'a NewDownload) -> BoxFuture<'a, CoreResult<MediaFile>> {
        Box::pin(async move {
            let inserted = media_files::ActiveModel {
                message_id: Set(Some(file.message_id.0)),
                origin: Set(Db(MediaOrigin::Download)),
                status: Set(Db(file.status)),
                file_name: Set(file.file_name.clone()),
                content_type: Set(file.content_type.clone()),
                file_size: Set(file.file_size),
                telegram_file_id: Set(Some(file.telegram_file_id.clone())),
                telegram_file_unique_id: Set(file.telegram_file_unique_id.clone()),
                created_at: Set(file.created_at),
                updated_at: Set(file.created_at),
                ..Default::default()
            }
            .insert(self.conn)
            .await;
            Ok(MediaFile::from(inserted.map_err(|e| self.fail(e))?))
        })
    }

    fn unsent_upload(&mut self, id: MediaFileId) -> BoxFuture<'_, CoreResult<Option<MediaFile>>> {
        Box::pin(async move {
            let found = media_files::Entity::find_by_id(id.0)
                .filter(media_files::Column::Origin.eq(Db(MediaOrigin::Upload)))
                .filter(media_files::Column::MessageId.is_null())
                .one(self.conn)
                .await;
            Ok(found.map_err(|e| self.fail(e))?.map(MediaFile::from))
        })
    }

    fn attach_upload(&mut self, id: MediaFileId, message: MessageId) -> BoxFuture<'_, CoreResult<bool>> {
        Box::pin(async move {
            let attached = media_files::Entity::update_many()
                .col_expr(media_files::Column::MessageId, Expr::value(message.0))
                .filter(media_files::Column::Id.eq(id.0))
                .filter(media_files::Column::MessageId.is_null())
                .exec(self.conn)
                .await;
            Ok(attached.map_err(|e| self.fail(e))?.rows_affected == 1)
        })
    }

    fn lock_user(&mut self, id: UserId) -> BoxFuture<'_, CoreResult<Option<User>>> {
        Box::pin(async move {
            let found = users::Entity::find_by_id(id.0)
                .filter(users::Column::DeletedAt.is_null())
                .lock_exclusive()
                .one(self.conn)
                .await;
            Ok(found.map_err(|e| self.fail(e))?.map(User::from))
        })
    }

    fn active_assignment(&mut self, chat: ChatId) -> BoxFuture<'_, CoreResult<Option<i64>>> {
        Box::pin(async move {
            let found: Result<Option<i64>, DbErr> = chat_assignments::Entity::find()
                .select_only()
                .column(chat_assignments::Column::Id)
                .filter(chat_assignments::Column::ActiveChatId.eq(chat.0))
                .into_tuple()
                .one(self.conn)
                .await;
            found.map_err(|e| self.fail(e))
        })
    }

    fn count_held(&mut self, user: UserId) -> BoxFuture<'_, CoreResult<u64>> {
        Box::pin(async move {
            let held = chats::Entity::find()
                .filter(chats::Column::AssignedUserId.eq(user.0))
                .count(self.conn)
                .await;
            held.map_err(|e| self.fail(e))
        })
    }

    fn end_assignment(&mut self, chat: ChatId, now: DateTime<Utc>) -> BoxFuture<'_, CoreResult<()>> {
        Box::pin(async move {
            let ended = chat_assignments::Entity::update_many()
                .col_expr(
                    chat_assignments::Column::ActiveChatId,
                    Expr::value(Option::<i64>::None),
                )
                .col_expr(chat_assignments::Column::UnassignedAt, Expr::value(now))
                .filter(chat_assignments::Column::ActiveChatId.eq(chat.0))
                .exec(self.conn)
                .await;
            ended.map_err(|e| self.fail(e))?;
            Ok(())
        })
    }

    fn start_assignment(
        &mut self,
        chat: ChatId,
        user: UserId,
        by: UserId,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, CoreResult<i64>> {
        Box::pin(async move {
            let inserted = chat_assignments::Entity::insert(chat_assignments::ActiveModel {
                chat_id: Set(chat.0),
                user_id: Set(user.0),
                assigned_by_user_id: Set(Some(by.0)),
                active_chat_id: Set(Some(chat.0)),
                assigned_at: Set(now),
                ..Default::default()
            })
            .exec(self.conn)
            .await;
            Ok(inserted.map_err(|e| self.fail(e))?.last_insert_id)
        })
    }

    fn enqueue(&mut self, job: JobRequest) -> BoxFuture<'_, CoreResult<bool>> {
        Box::pin(async move {
            let enqueued = crate::repo::jobs::enqueue(self.conn, job).await;
            let enqueued = match enqueued {
                Ok(enqueued) => enqueued,
                Err(
                    StoreError::Database(error)
                    | StoreError::Conflict(error)
                    | StoreError::Unavailable(error),
                ) => {
                    return Err(self.fail(error));
                }
                Err(other) => return Err(other.into()),
            };
            self.effects.jobs |= enqueued;
            Ok(enqueued)
        })
    }

    fn append_events(&mut self, events: Vec<DomainEvent>) -> BoxFuture<'_, CoreResult<()>> {
        Box::pin(async move {
            self.effects.events |= !events.is_empty();
            self.events.extend(events);
            Ok(())
        })
    }
}

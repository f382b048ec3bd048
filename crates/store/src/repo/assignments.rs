//! Who holds a chat: assigning (with the holder's `max_chats` enforced), transferring and releasing, keeping
//! every earlier assignment as history.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, Set,
    TransactionTrait,
};

use crate::entity::{chat_assignments, users};
use crate::{Store, StoreResult};

/// What an assignment attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assigned {
    /// The chat is now held by the user (possibly already was).
    Done(chat_assignments::Model),
    /// The user holds `max_chats` chats already.
    LimitReached(i32),
    /// No such active user.
    NoSuchUser,
}

/// Gives `chat_id` to `user_id`, ending any other holder's assignment. The holder's row is locked while
/// counting (on MySQL/PostgreSQL) so concurrent assignments cannot exceed `max_chats`.
pub async fn assign(store: &Store, chat_id: i64, user_id: i64, assigned_by: i64) -> StoreResult<Assigned> {
    let txn = store.db().begin().await?;
    let mut user_query = users::Entity::find_by_id(user_id)
        .filter(users::Column::IsActive.eq(true))
        .filter(users::Column::DeletedAt.is_null());
    if store.backend().supports_skip_locked() {
        user_query = user_query.lock_exclusive();
    }
    let Some(user) = user_query.one(&txn).await? else {
        return Ok(Assigned::NoSuchUser);
    };
    let current = chat_assignments::Entity::find()
        .filter(chat_assignments::Column::ActiveChatId.eq(chat_id))
        .one(&txn)
        .await?;
    if let Some(current) = current.filter(|c| c.user_id == user_id) {
        txn.commit().await?;
        return Ok(Assigned::Done(current));
    }
    let held = chat_assignments::Entity::find()
        .filter(chat_assignments::Column::UserId.eq(user_id))
        .filter(chat_assignments::Column::ActiveChatId.is_not_null())
        .count(&txn)
        .await?;
    if held >= u64::try_from(user.max_chats).unwrap_or(0) {
        return Ok(Assigned::LimitReached(user.max_chats));
    }
    let now = Utc::now();
    end_active(&txn, chat_id, now).await?;
    let created = chat_assignments::ActiveModel {
        chat_id: Set(chat_id),
        user_id: Set(user_id),
        assigned_by_user_id: Set(Some(assigned_by)),
        active_chat_id: Set(Some(chat_id)),
        assigned_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(Assigned::Done(created))
}

async fn end_active<C: sea_orm::ConnectionTrait>(
    conn: &C,
    chat_id: i64,
    now: chrono::DateTime<Utc>,
) -> StoreResult<u64> {
    let result = chat_assignments::Entity::update_many()
        .col_expr(
            chat_assignments::Column::ActiveChatId,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(chat_assignments::Column::UnassignedAt, Expr::value(now))
        .filter(chat_assignments::Column::ActiveChatId.eq(chat_id))
        .exec(conn)
        .await?;
    Ok(result.rows_affected)
}

/// Ends the chat's active assignment; false if nobody held it.
pub async fn release(store: &Store, chat_id: i64) -> StoreResult<bool> {
    Ok(end_active(store.db(), chat_id, Utc::now()).await? > 0)
}

/// The user holding `chat_id`, if any.
pub async fn holder(store: &Store, chat_id: i64) -> StoreResult<Option<i64>> {
    Ok(chat_assignments::Entity::find()
        .filter(chat_assignments::Column::ActiveChatId.eq(chat_id))
        .one(store.db())
        .await?
        .map(|a| a.user_id))
}

//! Chats as users see them: who may see which chat (admins all, operators those actively assigned to them),
//! filtered and paged lists newest activity first, the newest message of each listed chat in one query, and
//! marking a chat read.

use std::collections::HashMap;

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait, Func, Order, Query};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};

use crate::entity::{accounts, chat_assignments, chats, messages};
use crate::page::Page;
use crate::{Store, StoreResult};

/// Whose view a query takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// Sees every chat.
    Admin,
    /// Sees the chats actively assigned to this user id.
    Operator(i64),
}

/// Filters of the chat list.
#[derive(Debug, Clone, Default)]
pub struct ChatFilter {
    /// Only chats of this account.
    pub account_id: Option<i64>,
    /// Only chats with unread messages.
    pub unread_only: bool,
    /// Case-insensitive text in title, username or names.
    pub search: Option<String>,
    /// Only chats assigned to this user, even for an admin.
    pub assigned_to: Option<i64>,
}

/// A listed chat with its account and newest message.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatListItem {
    /// The chat.
    pub chat: chats::Model,
    /// Its account (for the name and type).
    pub account: Option<accounts::Model>,
    /// Its newest message.
    pub last_message: Option<messages::Model>,
    /// The operator holding it.
    pub assigned_user_id: Option<i64>,
}

/// Ids of the chats actively assigned to `user_id`, as a subquery.
pub fn assigned_to(user_id: i64) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(chat_assignments::Column::ChatId)
        .from(chat_assignments::Entity)
        .and_where(chat_assignments::Column::UserId.eq(user_id))
        .and_where(chat_assignments::Column::ActiveChatId.is_not_null())
        .to_owned()
}

fn visible(viewer: Viewer) -> Select<chats::Entity> {
    match viewer {
        Viewer::Admin => chats::Entity::find(),
        Viewer::Operator(user_id) => {
            chats::Entity::find().filter(chats::Column::Id.in_subquery(assigned_to(user_id)))
        }
    }
}

fn escape_like(text: &str) -> String {
    text.chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            other => other.to_lowercase().collect(),
        })
        .collect()
}

/// A chat the viewer may see.
pub async fn find_visible(store: &Store, viewer: Viewer, chat_id: i64) -> StoreResult<Option<chats::Model>> {
    Ok(visible(viewer)
        .filter(chats::Column::Id.eq(chat_id))
        .one(store.db())
        .await?)
}

/// One page of the chats the viewer may see, newest activity first (chats without messages by creation).
pub async fn list(
    store: &Store,
    viewer: Viewer,
    filter: &ChatFilter,
    page: u64,
    page_size: u64,
) -> StoreResult<Page<ChatListItem>> {
    let mut query = visible(viewer);
    if let Some(account_id) = filter.account_id {
        query = query.filter(chats::Column::AccountId.eq(account_id));
    }
    if filter.unread_only {
        query = query.filter(chats::Column::UnreadCount.gt(0));
    }
    if let Some(user_id) = filter.assigned_to {
        query = query.filter(chats::Column::Id.in_subquery(assigned_to(user_id)));
    }
    if let Some(search) = filter.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        let pattern = format!("%{}%", escape_like(search));
        let mut any = Condition::any();
        for column in [
            chats::Column::Title,
            chats::Column::Username,
            chats::Column::FirstName,
            chats::Column::LastName,
        ] {
            any = any.add(
                Expr::expr(Func::lower(Expr::col(column)))
                    .like(sea_orm::sea_query::LikeExpr::new(&pattern).escape('\\')),
            );
        }
        query = query.filter(any);
    }
    let activity = Func::coalesce([
        Expr::col(chats::Column::LastMessageAt),
        Expr::col(chats::Column::CreatedAt),
    ]);
    let page_of_rows = crate::page::fetch(
        query
            .order_by(Expr::expr(activity), Order::Desc)
            .order_by_desc(chats::Column::Id),
        store.db(),
        page,
        page_size,
    )
    .await?;
    let rows = page_of_rows.items;
    let total = page_of_rows.total;
    let items = decorate(store, rows).await?;
    Ok(Page {
        items,
        total,
        page,
        page_size,
    })
}

/// Adds account, newest message and holder to chats, with one query each for the whole set.
pub async fn decorate(store: &Store, rows: Vec<chats::Model>) -> StoreResult<Vec<ChatListItem>> {
    let db = store.db();
    let chat_ids: Vec<i64> = rows.iter().map(|c| c.id).collect();
    let account_ids: Vec<i64> = rows.iter().map(|c| c.account_id).collect();
    let accounts: HashMap<i64, accounts::Model> = accounts::Entity::find()
        .filter(accounts::Column::Id.is_in(account_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|a| (a.id, a))
        .collect();
    let newest_ids = Query::select()
        .expr(Expr::col(messages::Column::Id).max())
        .from(messages::Entity)
        .and_where(messages::Column::ChatId.is_in(chat_ids.clone()))
        .group_by_col(messages::Column::ChatId)
        .to_owned();
    let newest: HashMap<i64, messages::Model> = messages::Entity::find()
        .filter(messages::Column::Id.in_subquery(newest_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.chat_id, m))
        .collect();
    let holders: HashMap<i64, i64> = chat_assignments::Entity::find()
        .filter(chat_assignments::Column::ActiveChatId.is_in(chat_ids))
        .select_only()
        .column(chat_assignments::Column::ChatId)
        .column(chat_assignments::Column::UserId)
        .into_tuple::<(i64, i64)>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    Ok(rows
        .into_iter()
        .map(|chat| ChatListItem {
            account: accounts.get(&chat.account_id).cloned(),
            last_message: newest.get(&chat.id).cloned(),
            assigned_user_id: holders.get(&chat.id).copied(),
            chat,
        })
        .collect())
}

/// Marks a chat read: no unread messages, read time now. Returns the updated chat.
pub async fn mark_read(store: &Store, chat_id: i64) -> StoreResult<Option<chats::Model>> {
    use sea_orm::TransactionTrait;
    let txn = store.db().begin().await?;
    chats::Entity::update_many()
        .col_expr(chats::Column::UnreadCount, Expr::value(0))
        .col_expr(chats::Column::LastReadAt, Expr::value(Utc::now()))
        .filter(chats::Column::Id.eq(chat_id))
        .exec(&txn)
        .await?;
    let chat = chats::Entity::find_by_id(chat_id).one(&txn).await?;
    if let Some(chat) = &chat {
        let account = crate::entity::accounts::Entity::find_by_id(chat.account_id)
            .one(&txn)
            .await?;
        if let Some(account) = account.filter(|a| {
            a.account_type == crm_core::account::AccountType::Personal.as_str() && a.mark_read_in_telegram
        }) {
            let mut job = crate::repo::jobs::NewJob::now(
                MARK_READ_IN_TELEGRAM,
                serde_json::json!({ "chat_id": chat_id }),
            )
            .pinned_to(account.id);
            job.max_attempts = 3;
            crate::repo::jobs::enqueue(&txn, job).await?;
        }
    }
    txn.commit().await?;
    Ok(chat)
}

/// The job kind that marks a chat read in Telegram after an operator read it (personal accounts that want it).
pub const MARK_READ_IN_TELEGRAM: &str = "mark_read_in_telegram";

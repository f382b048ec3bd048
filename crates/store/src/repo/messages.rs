//! Reading messages as users see them: one message, all visible messages page by page, and a chat's timeline
//! newest first with keyset paging (`before` a message) for long histories.

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};

use crate::entity::messages;
use crate::page::Page;
use crate::repo::chats::{Viewer, assigned_to};
use crate::{Store, StoreResult};

fn visible(viewer: Viewer) -> Select<messages::Entity> {
    match viewer {
        Viewer::Admin => messages::Entity::find(),
        Viewer::Operator(user_id) => {
            messages::Entity::find().filter(messages::Column::ChatId.in_subquery(assigned_to(user_id)))
        }
    }
}

/// A message in a chat the viewer may see.
pub async fn find_visible(store: &Store, viewer: Viewer, id: i64) -> StoreResult<Option<messages::Model>> {
    Ok(visible(viewer)
        .filter(messages::Column::Id.eq(id))
        .one(store.db())
        .await?)
}

/// One page of every message the viewer may see, newest first.
pub async fn list_visible(
    store: &Store,
    viewer: Viewer,
    page: u64,
    page_size: u64,
) -> StoreResult<Page<messages::Model>> {
    crate::page::fetch(
        visible(viewer)
            .order_by_desc(messages::Column::TelegramDate)
            .order_by_desc(messages::Column::Id),
        store.db(),
        page,
        page_size,
    )
    .await
}

/// A slice of a chat's timeline, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// Messages, newest first.
    pub items: Vec<messages::Model>,
    /// Messages in the chat.
    pub total: u64,
    /// Whether older messages remain.
    pub has_more: bool,
}

/// Up to `limit` messages of `chat_id` older than message `before` (or the newest ones), newest first, ordered
/// by Telegram's date then id, so imported history sorts where it belongs.
pub async fn timeline(
    store: &Store,
    chat_id: i64,
    before: Option<&messages::Model>,
    limit: u64,
) -> StoreResult<Timeline> {
    let db = store.db();
    let total = messages::Entity::find()
        .filter(messages::Column::ChatId.eq(chat_id))
        .count(db)
        .await?;
    let mut query = messages::Entity::find().filter(messages::Column::ChatId.eq(chat_id));
    if let Some(anchor) = before {
        query = query.filter(
            Condition::any()
                .add(messages::Column::TelegramDate.lt(anchor.telegram_date))
                .add(
                    Condition::all()
                        .add(messages::Column::TelegramDate.eq(anchor.telegram_date))
                        .add(Expr::col(messages::Column::Id).lt(anchor.id)),
                ),
        );
    }
    let mut items = query
        .order_by_desc(messages::Column::TelegramDate)
        .order_by_desc(messages::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let has_more = items.len() as u64 > limit;
    items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(Timeline {
        items,
        total,
        has_more,
    })
}

/// Page `page` (from 1) of a chat's timeline, newest first.
pub async fn timeline_page(
    store: &Store,
    chat_id: i64,
    page: u64,
    page_size: u64,
) -> StoreResult<Page<messages::Model>> {
    crate::page::fetch(
        messages::Entity::find()
            .filter(messages::Column::ChatId.eq(chat_id))
            .order_by_desc(messages::Column::TelegramDate)
            .order_by_desc(messages::Column::Id),
        store.db(),
        page,
        page_size,
    )
    .await
}

/// A stored message with the chat and the account it came through.
#[derive(Debug, Clone)]
pub struct Origin {
    /// The message.
    pub message: messages::Model,
    /// Its chat.
    pub chat: crate::entity::chats::Model,
    /// The chat's account.
    pub account: crate::entity::accounts::Model,
}

/// Message `message_id` with its chat and account; `None` if any of them is gone.
pub async fn origin(store: &Store, message_id: i64) -> StoreResult<Option<Origin>> {
    let Some(message) = messages::Entity::find_by_id(message_id).one(store.db()).await? else {
        return Ok(None);
    };
    let Some(chat) = crate::entity::chats::Entity::find_by_id(message.chat_id)
        .one(store.db())
        .await?
    else {
        return Ok(None);
    };
    let account = crate::entity::accounts::Entity::find_by_id(chat.account_id)
        .one(store.db())
        .await?;
    Ok(account.map(|account| Origin {
        message,
        chat,
        account,
    }))
}

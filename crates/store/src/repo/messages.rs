//! Reading messages as users see them: one message, all visible messages page by page, and a chat's timeline
//! newest first with keyset paging (`before` a message) for long histories; shaped as views with their files.

use crm_core::chat::Viewer;
use crm_core::ids::{ChatId, MessageId};
use crm_core::media::MediaFile;
use crm_core::message::Message;
use crm_core::views::MessageView;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};

use crate::entity::{chats, media_files, messages};
use crate::page::Page;
use crate::{Store, StoreResult};

fn visible(viewer: Viewer) -> Select<messages::Entity> {
    match viewer {
        Viewer::Admin => messages::Entity::find(),
        Viewer::Operator(user) => {
            let held = Query::select()
                .column(chats::Column::Id)
                .from(chats::Entity)
                .and_where(chats::Column::AssignedUserId.eq(user.0))
                .to_owned();
            messages::Entity::find().filter(messages::Column::ChatId.in_subquery(held))
        }
    }
}

/// A message in a chat the viewer may see.
pub async fn find_visible(store: &Store, viewer: Viewer, id: MessageId) -> StoreResult<Option<Message>> {
    Ok(visible(viewer)
        .filter(messages::Column::Id.eq(id.0))
        .one(store.db())
        .await?
        .map(Message::from))
}

/// Shapes messages as views with their files, read in one query.
pub async fn views(store: &Store, messages: Vec<Message>) -> StoreResult<Vec<MessageView>> {
    let ids: Vec<i64> = messages.iter().map(|m| m.id.0).collect();
    let mut files: std::collections::HashMap<MessageId, MediaFile> = if ids.is_empty() {
        Default::default()
    } else {
        media_files::Entity::find()
            .filter(media_files::Column::MessageId.is_in(ids))
            .all(store.db())
            .await?
            .into_iter()
            .filter_map(|row| row.message_id.map(|id| (MessageId(id), MediaFile::from(row))))
            .collect()
    };
    Ok(messages
        .iter()
        .map(|message| MessageView::new(message, files.remove(&message.id).as_ref()))
        .collect())
}

async fn page_of_views(store: &Store, rows: Page<messages::Model>) -> StoreResult<Page<MessageView>> {
    let Page {
        items,
        total,
        page,
        page_size,
    } = rows;
    Ok(Page {
        items: views(store, items.into_iter().map(Message::from).collect()).await?,
        total,
        page,
        page_size,
    })
}

/// One page of every message the viewer may see, newest first.
pub async fn list_visible(
    store: &Store,
    viewer: Viewer,
    page: u64,
    page_size: u64,
) -> StoreResult<Page<MessageView>> {
    let rows = crate::page::fetch(
        visible(viewer)
            .order_by_desc(messages::Column::TelegramDate)
            .order_by_desc(messages::Column::Id),
        store.db(),
        page,
        page_size,
    )
    .await?;
    page_of_views(store, rows).await
}

/// A slice of a chat's timeline, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// Messages, newest first.
    pub items: Vec<MessageView>,
    /// Messages in the chat.
    pub total: u64,
    /// Whether older messages remain.
    pub has_more: bool,
}

/// Up to `limit` messages of `chat_id` older than message `before` (or the newest ones), newest first, ordered
/// by Telegram's date then id, so imported history sorts where it belongs.
pub async fn timeline(
    store: &Store,
    chat_id: ChatId,
    before: Option<&Message>,
    limit: u64,
) -> StoreResult<Timeline> {
    let db = store.db();
    let total = messages::Entity::find()
        .filter(messages::Column::ChatId.eq(chat_id.0))
        .count(db)
        .await?;
    let mut query = messages::Entity::find().filter(messages::Column::ChatId.eq(chat_id.0));
    if let Some(anchor) = before {
        query = query.filter(
            Condition::any()
                .add(messages::Column::TelegramDate.lt(anchor.telegram_date))
                .add(
                    Condition::all()
                        .add(messages::Column::TelegramDate.eq(anchor.telegram_date))
                        .add(Expr::col(messages::Column::Id).lt(anchor.id.0)),
                ),
        );
    }
    let mut rows = query
        .order_by_desc(messages::Column::TelegramDate)
        .order_by_desc(messages::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let has_more = rows.len() as u64 > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(Timeline {
        items: views(store, rows.into_iter().map(Message::from).collect()).await?,
        total,
        has_more,
    })
}

/// Page `page` (from 1) of a chat's timeline, newest first.
pub async fn timeline_page(
    store: &Store,
    chat_id: ChatId,
    page: u64,
    page_size: u64,
) -> StoreResult<Page<MessageView>> {
    let rows = crate::page::fetch(
        messages::Entity::find()
            .filter(messages::Column::ChatId.eq(chat_id.0))
            .order_by_desc(messages::Column::TelegramDate)
            .order_by_desc(messages::Column::Id),
        store.db(),
        page,
        page_size,
    )
    .await?;
    page_of_views(store, rows).await
}

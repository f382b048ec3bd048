//! Chats as users see them: who may see which chat (admins all, operators those they hold), filtered and paged
//! lists newest activity first, and chats shaped as views with their account in one extra query per page.

use std::collections::{HashMap, HashSet};

use crm_core::account::Account;
use crm_core::chat::{Chat, Viewer};
use crm_core::ids::{AccountId, ChatId, EventSeq, UserId};
use crm_core::views::{AccountBrief, ChatView};
use sea_orm::sea_query::{Expr, ExprTrait, Func, Order};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select};

use crate::entity::{accounts, chats, events};
use crate::page::Page;
use crate::{Store, StoreResult};

/// Filters of the chat list.
#[derive(Debug, Clone, Default)]
pub struct ChatFilter {
    /// Only chats of this account.
    pub account_id: Option<AccountId>,
    /// Only chats with unread messages.
    pub unread_only: bool,
    /// Case-insensitive text in title, username or names.
    pub search: Option<String>,
    /// Only chats held by this user, even for an admin.
    pub assigned_to: Option<UserId>,
}

fn visible(viewer: Viewer) -> Select<chats::Entity> {
    match viewer {
        Viewer::Admin => chats::Entity::find(),
        Viewer::Operator(user) => chats::Entity::find().filter(chats::Column::AssignedUserId.eq(user.0)),
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
pub async fn find_visible(store: &Store, viewer: Viewer, chat_id: ChatId) -> StoreResult<Option<Chat>> {
    Ok(visible(viewer)
        .filter(chats::Column::Id.eq(chat_id.0))
        .one(store.db())
        .await?
        .map(Chat::from))
}

/// A chat the viewer may see, as a view.
pub async fn view(store: &Store, viewer: Viewer, chat_id: ChatId) -> StoreResult<Option<ChatView>> {
    let Some(chat) = find_visible(store, viewer, chat_id).await? else {
        return Ok(None);
    };
    Ok(views(store, vec![chat]).await?.pop())
}

/// Ids of the chats `user` holds.
pub async fn held_by(store: &Store, user: UserId) -> StoreResult<Vec<ChatId>> {
    let ids: Vec<i64> = chats::Entity::find()
        .select_only()
        .column(chats::Column::Id)
        .filter(chats::Column::AssignedUserId.eq(user.0))
        .into_tuple()
        .all(store.db())
        .await?;
    Ok(ids.into_iter().map(ChatId).collect())
}

/// The chats `user` held as of event `as_of`: a WebSocket session starting at that event filters what follows
/// by it. The chats held now are corrected by the user's `chat_added`/`chat_removed` events after `as_of`
/// (numbered, or committed and not numbered yet): a chat whose first later change gave it to the user was not
/// theirs yet, one whose first later change took it away still was. Reading the events after the chats keeps
/// this exact whatever commits in between.
pub async fn held_as_of(store: &Store, user: UserId, as_of: EventSeq) -> StoreResult<HashSet<i64>> {
    let mut held: HashSet<i64> = held_by(store, user).await?.into_iter().map(|id| id.0).collect();
    let mut changes = events::Entity::find()
        .filter(events::Column::UserId.eq(user.0))
        .filter(events::Column::Kind.is_in(["chat_added", "chat_removed"]))
        .filter(
            Condition::any()
                .add(events::Column::Seq.gt(as_of.0))
                .add(events::Column::Seq.is_null()),
        )
        .all(store.db())
        .await?;
    // Commit order: numbered events by number, then the ones still waiting for theirs (each chat's changes are
    // written one after another under its lock, so their ids follow its commit order).
    changes.sort_by_key(|event| (event.seq.is_none(), event.seq, event.id));
    let mut decided = HashSet::new();
    for change in changes {
        let Some(chat) = change.chat_id else { continue };
        if decided.insert(chat) {
            if change.kind == "chat_added" {
                held.remove(&chat);
            } else {
                held.insert(chat);
            }
        }
    }
    Ok(held)
}

/// One page of the chats the viewer may see, newest activity first (chats without messages by creation).
pub async fn list(
    store: &Store,
    viewer: Viewer,
    filter: &ChatFilter,
    page: u64,
    page_size: u64,
) -> StoreResult<Page<ChatView>> {
    let mut query = visible(viewer);
    if let Some(account_id) = filter.account_id {
        query = query.filter(chats::Column::AccountId.eq(account_id.0));
    }
    if filter.unread_only {
        query = query.filter(chats::Column::UnreadCount.gt(0));
    }
    if let Some(user) = filter.assigned_to {
        query = query.filter(chats::Column::AssignedUserId.eq(user.0));
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
    let rows = crate::page::fetch(
        query
            .order_by(Expr::expr(activity), Order::Desc)
            .order_by_desc(chats::Column::Id),
        store.db(),
        page,
        page_size,
    )
    .await?;
    let Page {
        items,
        total,
        page,
        page_size,
    } = rows;
    Ok(Page {
        items: views(store, items.into_iter().map(Chat::from).collect()).await?,
        total,
        page,
        page_size,
    })
}

/// Shapes chats as views, reading their accounts in one query.
pub async fn views(store: &Store, chats: Vec<Chat>) -> StoreResult<Vec<ChatView>> {
    let account_ids: Vec<i64> = chats.iter().map(|c| c.account_id.0).collect();
    let accounts: HashMap<AccountId, AccountBrief> = accounts::Entity::find()
        .filter(accounts::Column::Id.is_in(account_ids))
        .all(store.db())
        .await?
        .into_iter()
        .map(|row| {
            let account = Account::from(row);
            (account.id, AccountBrief::from(&account))
        })
        .collect();
    Ok(chats
        .iter()
        .map(|chat| ChatView::new(chat, accounts.get(&chat.account_id)))
        .collect())
}

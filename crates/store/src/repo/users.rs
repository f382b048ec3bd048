//! Users: create, find, list, change and remove admins and operators.

use chrono::Utc;
use crm_core::account::Account;
use crm_core::chat::Chat;
use crm_core::event::DomainEvent;
use crm_core::ids::{AccountId, UserId};
use crm_core::user::{Role, User};
use crm_core::views::{AccountBrief, ChatView};
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};

use crate::entity::{accounts, chat_assignments, chats, users};
use crate::event_log::append;
use crate::page::Page;
use crate::{Db, Store, StoreResult};

/// Fields of a new user. The password is already hashed.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// Argon2 PHC hash.
    pub password_hash: String,
    /// Role.
    pub role: Role,
    /// Display name.
    pub display_name: String,
    /// UI language.
    pub language: String,
    /// Chat limit.
    pub max_chats: i32,
    /// Whether the user may log in.
    pub is_active: bool,
}

/// A partial change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    /// New role.
    pub role: Option<Role>,
    /// New active flag.
    pub is_active: Option<bool>,
    /// New chat limit.
    pub max_chats: Option<i32>,
    /// New display name.
    pub display_name: Option<String>,
    /// New language.
    pub language: Option<String>,
    /// New password hash.
    pub password_hash: Option<String>,
}

/// Stores a new user; a taken username is `StoreError::Duplicate`.
pub async fn create(store: &Store, user: NewUser) -> StoreResult<User> {
    let now = Utc::now();
    let model = users::ActiveModel {
        username: Set(user.username),
        password_hash: Set(user.password_hash),
        role: Set(Db(user.role)),
        is_active: Set(user.is_active),
        max_chats: Set(user.max_chats),
        display_name: Set(user.display_name),
        language: Set(user.language),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    Ok(User::from(model.insert(store.writes()).await?))
}

/// A user that has not been removed.
pub async fn find(store: &Store, id: UserId) -> StoreResult<Option<User>> {
    Ok(users::Entity::find_by_id(id.0)
        .filter(users::Column::DeletedAt.is_null())
        .one(store.db())
        .await?
        .map(User::from))
}

/// A user by login name, if not removed.
pub async fn find_by_username(store: &Store, username: &str) -> StoreResult<Option<User>> {
    Ok(users::Entity::find()
        .filter(users::Column::Username.eq(username))
        .filter(users::Column::DeletedAt.is_null())
        .one(store.db())
        .await?
        .map(User::from))
}

/// The user a login names, if not removed: exactly that username, or its lowercase form (usernames are stored
/// lowercased since they became case-insensitive). Compared here byte for byte, because MariaDB's PAD SPACE
/// collations would let `"anna "` find `anna`.
pub async fn find_by_login(store: &Store, login: &str) -> StoreResult<Option<User>> {
    let lowered = login.to_lowercase();
    let candidates = users::Entity::find()
        .filter(users::Column::Username.is_in([login, lowered.as_str()]))
        .filter(users::Column::DeletedAt.is_null())
        .all(store.db())
        .await?;
    let exact = candidates.iter().position(|user| user.username == login);
    let folded = candidates.iter().position(|user| user.username == lowered);
    Ok(exact
        .or(folded)
        .and_then(|index| candidates.into_iter().nth(index))
        .map(User::from))
}

/// Whether any user (removed ones too: their names stay theirs) has `username` in any letter case.
pub async fn username_taken(store: &Store, username: &str) -> StoreResult<bool> {
    let lowered = username.to_lowercase();
    let found = users::Entity::find()
        .filter(ExprTrait::eq(
            Func::lower(Expr::col(users::Column::Username)),
            lowered,
        ))
        .one(store.db())
        .await?;
    Ok(found.is_some())
}

/// One page of users (not removed), oldest first, optionally of one role.
pub async fn list(store: &Store, role: Option<Role>, page: u64, page_size: u64) -> StoreResult<Page<User>> {
    let mut query = users::Entity::find().filter(users::Column::DeletedAt.is_null());
    if let Some(role) = role {
        query = query.filter(users::Column::Role.eq(Db(role)));
    }
    Ok(
        crate::page::fetch(query.order_by_asc(users::Column::Id), store.db(), page, page_size)
            .await?
            .map(User::from),
    )
}

/// How many active admins exist (to refuse removing the last one).
pub async fn count_active_admins(store: &Store) -> StoreResult<u64> {
    Ok(users::Entity::find()
        .filter(users::Column::Role.eq(Db(Role::Admin)))
        .filter(users::Column::IsActive.eq(true))
        .filter(users::Column::DeletedAt.is_null())
        .count(store.db())
        .await?)
}

/// Applies `change` to user `id`; returns the updated user, or `None` if there is no such user.
pub async fn update(store: &Store, id: UserId, change: UserChange) -> StoreResult<Option<User>> {
    let Some(current) = users::Entity::find_by_id(id.0)
        .filter(users::Column::DeletedAt.is_null())
        .one(store.db())
        .await?
    else {
        return Ok(None);
    };
    let mut model: users::ActiveModel = current.into();
    if let Some(role) = change.role {
        model.role = Set(Db(role));
    }
    if let Some(is_active) = change.is_active {
        model.is_active = Set(is_active);
    }
    if let Some(max_chats) = change.max_chats {
        model.max_chats = Set(max_chats);
    }
    if let Some(display_name) = change.display_name {
        model.display_name = Set(display_name);
    }
    if let Some(language) = change.language {
        model.language = Set(language);
    }
    if let Some(password_hash) = change.password_hash {
        model.password_hash = Set(password_hash);
    }
    model.updated_at = Set(Utc::now());
    Ok(Some(User::from(model.update(store.writes()).await?)))
}

/// Records a successful login.
pub async fn touch_login(store: &Store, id: UserId) -> StoreResult<()> {
    users::Entity::update_many()
        .col_expr(users::Column::LastLoginAt, Expr::value(Utc::now()))
        .filter(users::Column::Id.eq(id.0))
        .exec(store.writes())
        .await?;
    Ok(())
}

/// Removes a user: the row stays for history, marked deleted and inactive, with its username freed
/// (renamed to `name~deleted~id`); its active chat assignments end. Returns false if there was no such user.
pub async fn soft_delete(store: &Store, id: UserId) -> StoreResult<bool> {
    let txn = store.begin_write().await?;
    let Some(current) = users::Entity::find_by_id(id.0)
        .filter(users::Column::DeletedAt.is_null())
        .one(&txn)
        .await?
    else {
        return Ok(false);
    };
    let now = Utc::now();
    let kept: String = current.username.chars().take(120).collect();
    let freed_name = format!("{kept}~deleted~{id}");
    let mut model: users::ActiveModel = current.into();
    model.username = Set(freed_name);
    model.is_active = Set(false);
    model.deleted_at = Set(Some(now));
    model.updated_at = Set(now);
    model.update(&txn).await?;
    // The chats they held are free again; everyone who sees them is told.
    let held: Vec<Chat> = chats::Entity::find()
        .filter(chats::Column::AssignedUserId.eq(id.0))
        .lock_exclusive()
        .all(&txn)
        .await?
        .into_iter()
        .map(Chat::from)
        .collect();
    chat_assignments::Entity::update_many()
        .col_expr(
            chat_assignments::Column::ActiveChatId,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(chat_assignments::Column::UnassignedAt, Expr::value(now))
        .filter(chat_assignments::Column::UserId.eq(id.0))
        .filter(chat_assignments::Column::ActiveChatId.is_not_null())
        .exec(&txn)
        .await?;
    chats::Entity::update_many()
        .col_expr(chats::Column::AssignedUserId, Expr::value(Option::<i64>::None))
        .filter(chats::Column::AssignedUserId.eq(id.0))
        .exec(&txn)
        .await?;
    let accounts: std::collections::HashMap<AccountId, AccountBrief> = accounts::Entity::find()
        .filter(accounts::Column::Id.is_in(held.iter().map(|chat| chat.account_id.0)))
        .all(&txn)
        .await?
        .into_iter()
        .map(|row| {
            let account = Account::from(row);
            (account.id, AccountBrief::from(&account))
        })
        .collect();
    let events: Vec<DomainEvent> = held
        .into_iter()
        .map(|mut chat| {
            chat.assigned_user_id = None;
            DomainEvent::ChatUpdated(ChatView::new(&chat, accounts.get(&chat.account_id)))
        })
        .collect();
    append(&txn, &events).await?;
    txn.commit().await?;
    if !events.is_empty() {
        store.signals().events.notify_one();
    }
    Ok(true)
}

/// How many chats the user holds now.
pub async fn active_chat_count(store: &Store, id: UserId) -> StoreResult<u64> {
    Ok(chats::Entity::find()
        .filter(chats::Column::AssignedUserId.eq(id.0))
        .count(store.db())
        .await?)
}

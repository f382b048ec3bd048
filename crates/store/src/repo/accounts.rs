//! Telegram accounts: stored with their secrets sealed, found by id or by bot token (through a keyed hash). Every
//! change admins can see is written together with its `account_status` event, in one transaction.

use chrono::Utc;
use crm_core::account::{Account, AccountStatus, AccountType, IntakeMode};
use crm_core::event::DomainEvent;
use crm_core::ids::AccountId;
use crm_core::secrets::{Sensitive, mask_secret};
use crm_core::views::AccountView;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set, UpdateMany,
};

use crate::entity::accounts;
use crate::event_log::append;
use crate::{Db, Store, StoreResult};

/// Purposes the secret columns are sealed for (bound into the ciphertext).
pub mod purpose {
    /// `accounts.api_hash_sealed`.
    pub const API_HASH: &str = "accounts.api_hash";
    /// `accounts.session_sealed`.
    pub const SESSION: &str = "accounts.session";
    /// `accounts.bot_token_sealed`.
    pub const BOT_TOKEN: &str = "accounts.bot_token";
    /// `accounts.bot_token_lookup`.
    pub const BOT_TOKEN_LOOKUP: &str = "accounts.bot_token_lookup";
    /// `accounts.webhook_secret_sealed`.
    pub const WEBHOOK_SECRET: &str = "accounts.webhook_secret";
    /// `accounts.pending_code_hash_sealed`.
    pub const PENDING_CODE_HASH: &str = "accounts.pending_code_hash";
}

/// A new account with its secrets in clear; they are sealed before the insert.
#[derive(Debug, Clone)]
pub struct NewAccount {
    /// Display name.
    pub name: String,
    /// Bot or personal.
    pub account_type: AccountType,
    /// Initial status.
    pub status: AccountStatus,
    /// Phone of a personal account.
    pub phone_number: Option<String>,
    /// MTProto application id.
    pub api_id: Option<i64>,
    /// MTProto application hash.
    pub api_hash: Option<Sensitive>,
    /// MTProto session bytes, encoded as text by the caller.
    pub session: Option<Sensitive>,
    /// Bot token.
    pub bot_token: Option<Sensitive>,
    /// Bot @username.
    pub bot_username: Option<String>,
    /// Secret for webhook calls.
    pub webhook_secret: Option<Sensitive>,
    /// Telegram id of the account itself.
    pub telegram_user_id: Option<i64>,
    /// The existing bot backend to forward updates to.
    pub forward_url: Option<String>,
}

/// The secrets of one account, opened.
#[derive(Debug, Clone, Default)]
pub struct AccountSecrets {
    /// MTProto application hash.
    pub api_hash: Option<Sensitive>,
    /// MTProto session.
    pub session: Option<Sensitive>,
    /// Bot token.
    pub bot_token: Option<Sensitive>,
    /// Webhook secret.
    pub webhook_secret: Option<Sensitive>,
}

fn open_row(store: &Store, row: &accounts::Model) -> StoreResult<AccountSecrets> {
    let secrets = store.secrets();
    let open = |purpose: &str, sealed: &Option<String>| -> StoreResult<Option<Sensitive>> {
        sealed
            .as_deref()
            .map(|s| secrets.open_str(purpose, s).map(Sensitive))
            .transpose()
            .map_err(Into::into)
    };
    Ok(AccountSecrets {
        api_hash: open(purpose::API_HASH, &row.api_hash_sealed)?,
        session: open(purpose::SESSION, &row.session_sealed)?,
        bot_token: open(purpose::BOT_TOKEN, &row.bot_token_sealed)?,
        webhook_secret: open(purpose::WEBHOOK_SECRET, &row.webhook_secret_sealed)?,
    })
}

/// How admins see `row`: the record, with a masked hint of its bot token.
fn view_of(store: &Store, row: accounts::Model) -> (Account, AccountView) {
    let hint = row
        .bot_token_sealed
        .as_deref()
        .and_then(|sealed| store.secrets().open_str(purpose::BOT_TOKEN, sealed).ok())
        .map(|token| mask_secret(&token, 4));
    let account = Account::from(row);
    let view = AccountView::new(&account, hint);
    (account, view)
}

/// Reads account `id` inside `conn` and logs its `account_status` event there.
pub(crate) async fn announce_in<C: ConnectionTrait>(
    conn: &C,
    store: &Store,
    id: i64,
) -> StoreResult<Option<Account>> {
    let Some(row) = accounts::Entity::find_by_id(id).one(conn).await? else {
        return Ok(None);
    };
    let (account, view) = view_of(store, row);
    append(
        conn,
        &[DomainEvent::AccountStatus {
            account: view,
            qr: None,
        }],
    )
    .await?;
    Ok(Some(account))
}

/// Applies `update` to account `id` and logs the account as it is afterwards, in one transaction.
pub(crate) async fn apply(
    store: &Store,
    id: AccountId,
    update: UpdateMany<accounts::Entity>,
) -> StoreResult<Option<Account>> {
    let txn = store.begin_write().await?;
    update
        .col_expr(accounts::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(accounts::Column::Id.eq(id.0))
        .exec(&txn)
        .await?;
    let account = announce_in(&txn, store, id.0).await?;
    txn.commit().await?;
    store.signals().events.notify_one();
    Ok(account)
}

/// Stores a new account (and tells admins); a duplicate phone number or bot token is `StoreError::Duplicate`.
pub async fn create(store: &Store, account: NewAccount) -> StoreResult<Account> {
    let secrets = store.secrets();
    let seal =
        |purpose: &str, value: &Option<Sensitive>| value.as_ref().map(|v| secrets.seal_str(purpose, &v.0));
    let now = Utc::now();
    let model = accounts::ActiveModel {
        name: Set(account.name),
        account_type: Set(Db(account.account_type)),
        status: Set(Db(account.status)),
        phone_number: Set(account.phone_number),
        api_id: Set(account.api_id),
        api_hash_sealed: Set(seal(purpose::API_HASH, &account.api_hash)),
        session_sealed: Set(seal(purpose::SESSION, &account.session)),
        bot_token_sealed: Set(seal(purpose::BOT_TOKEN, &account.bot_token)),
        bot_token_lookup: Set(account
            .bot_token
            .as_ref()
            .map(|t| secrets.lookup_hash(purpose::BOT_TOKEN_LOOKUP, &t.0))),
        bot_username: Set(account.bot_username),
        webhook_secret_sealed: Set(seal(purpose::WEBHOOK_SECRET, &account.webhook_secret)),
        telegram_user_id: Set(account.telegram_user_id),
        error_count: Set(0),
        intake_mode: Set(Db(IntakeMode::None)),
        forward_url: Set(account.forward_url),
        include_groups: Set(false),
        include_channels: Set(false),
        mark_read_in_telegram: Set(true),
        enabled: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    let txn = store.begin_write().await?;
    let row = model.insert(&txn).await?;
    let account = announce_in(&txn, store, row.id).await?;
    txn.commit().await?;
    store.signals().events.notify_one();
    account.ok_or_else(|| crate::StoreError::Database(sea_orm::DbErr::RecordNotFound("new account".into())))
}

/// An account by id (not a removed one).
pub async fn find(store: &Store, id: AccountId) -> StoreResult<Option<Account>> {
    Ok(accounts::Entity::find_by_id(id.0)
        .filter(accounts::Column::RemovedAt.is_null())
        .one(store.db())
        .await?
        .map(Account::from))
}

/// An account by id (not a removed one) with its secrets opened.
pub async fn find_with_secrets(
    store: &Store,
    id: AccountId,
) -> StoreResult<Option<(Account, AccountSecrets)>> {
    let Some(row) = accounts::Entity::find_by_id(id.0)
        .filter(accounts::Column::RemovedAt.is_null())
        .one(store.db())
        .await?
    else {
        return Ok(None);
    };
    let secrets = open_row(store, &row)?;
    Ok(Some((Account::from(row), secrets)))
}

/// The secrets of account `id`, opened (none for a missing account).
pub async fn secrets(store: &Store, id: AccountId) -> StoreResult<AccountSecrets> {
    let row = accounts::Entity::find_by_id(id.0).one(store.db()).await?;
    row.map_or_else(|| Ok(AccountSecrets::default()), |row| open_row(store, &row))
}

/// Account `id` as admins see it (not a removed one).
pub async fn view(store: &Store, id: AccountId) -> StoreResult<Option<AccountView>> {
    Ok(accounts::Entity::find_by_id(id.0)
        .filter(accounts::Column::RemovedAt.is_null())
        .one(store.db())
        .await?
        .map(|row| view_of(store, row).1))
}

/// The bot account whose token is `bot_token`, found through the keyed hash (the token is never compared in
/// clear in SQL).
pub async fn find_bot_by_token(store: &Store, bot_token: &str) -> StoreResult<Option<Account>> {
    let lookup = store.secrets().lookup_hash(purpose::BOT_TOKEN_LOOKUP, bot_token);
    Ok(accounts::Entity::find()
        .filter(accounts::Column::BotTokenLookup.eq(lookup))
        .filter(accounts::Column::AccountType.eq(Db(AccountType::Bot)))
        .filter(accounts::Column::RemovedAt.is_null())
        .one(store.db())
        .await?
        .map(Account::from))
}

/// A partial change of an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AccountChange {
    /// New display name.
    pub name: Option<String>,
    /// New forward URL (`Some(None)` removes it).
    pub forward_url: Option<Option<String>>,
    /// New intake mode.
    pub intake_mode: Option<IntakeMode>,
    /// New webhook URL (`Some(None)` removes it).
    pub webhook_url: Option<Option<String>>,
    /// New status.
    pub status: Option<AccountStatus>,
    /// Personal: collect groups.
    pub include_groups: Option<bool>,
    /// Personal: collect channels.
    pub include_channels: Option<bool>,
    /// Personal: mark chats read in Telegram.
    pub mark_read_in_telegram: Option<bool>,
}

/// One page of accounts (not removed ones), oldest first, as admins see them.
pub async fn list(store: &Store, page: u64, page_size: u64) -> StoreResult<crate::Page<AccountView>> {
    let rows = crate::page::fetch(
        accounts::Entity::find()
            .filter(accounts::Column::RemovedAt.is_null())
            .order_by_asc(accounts::Column::Id),
        store.db(),
        page,
        page_size,
    )
    .await?;
    Ok(rows.map(|row| view_of(store, row).1))
}

/// Applies `change` to account `id` (and tells admins); `None` if there is no such account.
pub async fn update(store: &Store, id: AccountId, change: AccountChange) -> StoreResult<Option<Account>> {
    if find(store, id).await?.is_none() {
        return Ok(None);
    }
    let mut update = accounts::Entity::update_many();
    if let Some(name) = change.name {
        update = update.col_expr(accounts::Column::Name, Expr::value(name));
    }
    if let Some(forward_url) = change.forward_url {
        update = update.col_expr(accounts::Column::ForwardUrl, Expr::value(forward_url));
    }
    if let Some(intake_mode) = change.intake_mode {
        update = update.col_expr(accounts::Column::IntakeMode, Expr::value(Db(intake_mode)));
    }
    if let Some(webhook_url) = change.webhook_url {
        update = update.col_expr(accounts::Column::WebhookUrl, Expr::value(webhook_url));
    }
    if let Some(status) = change.status {
        update = update.col_expr(accounts::Column::Status, Expr::value(Db(status)));
    }
    if let Some(include_groups) = change.include_groups {
        update = update.col_expr(accounts::Column::IncludeGroups, Expr::value(include_groups));
    }
    if let Some(include_channels) = change.include_channels {
        update = update.col_expr(accounts::Column::IncludeChannels, Expr::value(include_channels));
    }
    if let Some(mark_read) = change.mark_read_in_telegram {
        update = update.col_expr(accounts::Column::MarkReadInTelegram, Expr::value(mark_read));
    }
    apply(store, id, update).await
}

/// Bot accounts that should be polled now: intake `polling`, status `active`.
pub async fn bots_to_poll(store: &Store) -> StoreResult<Vec<Account>> {
    Ok(accounts::Entity::find()
        .filter(accounts::Column::AccountType.eq(Db(AccountType::Bot)))
        .filter(accounts::Column::IntakeMode.eq(Db(IntakeMode::Polling)))
        .filter(accounts::Column::Status.eq(Db(AccountStatus::Active)))
        .filter(accounts::Column::RemovedAt.is_null())
        .all(store.db())
        .await?
        .into_iter()
        .map(Account::from)
        .collect())
}

/// Moves a polled bot's offset forward (never back).
pub async fn advance_polling_offset(store: &Store, id: AccountId, offset: i64) -> StoreResult<()> {
    accounts::Entity::update_many()
        .col_expr(accounts::Column::PollingOffset, Expr::value(offset))
        .col_expr(accounts::Column::LastActivity, Expr::value(Utc::now()))
        .filter(accounts::Column::Id.eq(id.0))
        .filter(
            accounts::Column::PollingOffset
                .is_null()
                .or(accounts::Column::PollingOffset.lt(offset)),
        )
        .exec(store.writes())
        .await?;
    Ok(())
}

/// Records a failure on an account (its message and one more consecutive error), and tells admins.
pub async fn record_error(
    store: &Store,
    id: AccountId,
    message: &str,
    status: Option<AccountStatus>,
) -> StoreResult<()> {
    let mut update = accounts::Entity::update_many()
        .col_expr(accounts::Column::LastError, Expr::value(message))
        .col_expr(
            accounts::Column::ErrorCount,
            Expr::col(accounts::Column::ErrorCount).add(1),
        );
    if let Some(status) = status {
        update = update.col_expr(accounts::Column::Status, Expr::value(Db(status)));
    }
    apply(store, id, update).await?;
    Ok(())
}

/// Logs an event that goes with no change of ours (a QR login's fresh code, a removal), in its own transaction.
pub async fn log_event(store: &Store, event: DomainEvent) -> StoreResult<()> {
    append(store.writes(), &[event]).await?;
    store.signals().events.notify_one();
    Ok(())
}

//! Telegram accounts: stored with their secrets sealed, found by id or by bot token (through a keyed hash).

use chrono::Utc;
use crm_core::account::{AccountStatus, AccountType};
use crm_core::secrets::Sensitive;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

use crate::entity::accounts;
use crate::{Store, StoreResult};

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

/// Stores a new account; a duplicate phone number or bot token is `StoreError::Duplicate`.
pub async fn create(store: &Store, account: NewAccount) -> StoreResult<accounts::Model> {
    let secrets = store.secrets();
    let seal =
        |purpose: &str, value: &Option<Sensitive>| value.as_ref().map(|v| secrets.seal_str(purpose, &v.0));
    let now = Utc::now();
    let model = accounts::ActiveModel {
        name: Set(account.name),
        account_type: Set(account.account_type.as_str().to_owned()),
        status: Set(account.status.as_str().to_owned()),
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
        intake_mode: Set("none".to_owned()),
        forward_url: Set(account.forward_url),
        include_groups: Set(false),
        include_channels: Set(false),
        mark_read_in_telegram: Set(true),
        enabled: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    Ok(model.insert(store.db()).await?)
}

/// An account by id (not a removed one).
pub async fn find(store: &Store, id: i64) -> StoreResult<Option<accounts::Model>> {
    Ok(accounts::Entity::find_by_id(id)
        .filter(accounts::Column::RemovedAt.is_null())
        .one(store.db())
        .await?)
}

/// The bot account whose token is `bot_token`, found through the keyed hash (the token is never compared in
/// clear in SQL).
pub async fn find_bot_by_token(store: &Store, bot_token: &str) -> StoreResult<Option<accounts::Model>> {
    let lookup = store.secrets().lookup_hash(purpose::BOT_TOKEN_LOOKUP, bot_token);
    Ok(accounts::Entity::find()
        .filter(accounts::Column::BotTokenLookup.eq(lookup))
        .filter(accounts::Column::AccountType.eq(AccountType::Bot.as_str()))
        .one(store.db())
        .await?)
}

/// Opens the sealed columns of `account`.
pub fn open_secrets(store: &Store, account: &accounts::Model) -> StoreResult<AccountSecrets> {
    let secrets = store.secrets();
    let open = |purpose: &str, sealed: &Option<String>| -> StoreResult<Option<Sensitive>> {
        sealed
            .as_deref()
            .map(|s| secrets.open_str(purpose, s).map(Sensitive))
            .transpose()
            .map_err(Into::into)
    };
    Ok(AccountSecrets {
        api_hash: open(purpose::API_HASH, &account.api_hash_sealed)?,
        session: open(purpose::SESSION, &account.session_sealed)?,
        bot_token: open(purpose::BOT_TOKEN, &account.bot_token_sealed)?,
        webhook_secret: open(purpose::WEBHOOK_SECRET, &account.webhook_secret_sealed)?,
    })
}

/// A partial change of an account; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct AccountChange {
    /// New display name.
    pub name: Option<String>,
    /// New forward URL (`Some(None)` removes it).
    pub forward_url: Option<Option<String>>,
    /// New intake mode.
    pub intake_mode: Option<String>,
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

/// One page of accounts, oldest first.
pub async fn list(store: &Store, page: u64, page_size: u64) -> StoreResult<crate::Page<accounts::Model>> {
    use sea_orm::QueryOrder;
    crate::page::fetch(
        accounts::Entity::find()
            .filter(accounts::Column::RemovedAt.is_null())
            .order_by_asc(accounts::Column::Id),
        store.db(),
        page,
        page_size,
    )
    .await
}

/// Applies `change` to account `id`; `None` if there is no such account.
pub async fn update(store: &Store, id: i64, change: AccountChange) -> StoreResult<Option<accounts::Model>> {
    let Some(current) = find(store, id).await? else {
        return Ok(None);
    };
    let mut model: accounts::ActiveModel = current.into();
    if let Some(name) = change.name {
        model.name = Set(name);
    }
    if let Some(forward_url) = change.forward_url {
        model.forward_url = Set(forward_url);
    }
    if let Some(intake_mode) = change.intake_mode {
        model.intake_mode = Set(intake_mode);
    }
    if let Some(webhook_url) = change.webhook_url {
        model.webhook_url = Set(webhook_url);
    }
    if let Some(status) = change.status {
        model.status = Set(status.as_str().to_owned());
    }
    if let Some(include_groups) = change.include_groups {
        model.include_groups = Set(include_groups);
    }
    if let Some(include_channels) = change.include_channels {
        model.include_channels = Set(include_channels);
    }
    if let Some(mark_read) = change.mark_read_in_telegram {
        model.mark_read_in_telegram = Set(mark_read);
    }
    model.updated_at = Set(Utc::now());
    Ok(Some(model.update(store.db()).await?))
}

/// Bot accounts that should be polled now: intake `polling`, status `active`.
pub async fn bots_to_poll(store: &Store) -> StoreResult<Vec<accounts::Model>> {
    Ok(accounts::Entity::find()
        .filter(accounts::Column::AccountType.eq(AccountType::Bot.as_str()))
        .filter(accounts::Column::IntakeMode.eq("polling"))
        .filter(accounts::Column::Status.eq(AccountStatus::Active.as_str()))
        .all(store.db())
        .await?)
}

/// Moves a polled bot's offset forward (never back).
pub async fn advance_polling_offset(store: &Store, id: i64, offset: i64) -> StoreResult<()> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    accounts::Entity::update_many()
        .col_expr(accounts::Column::PollingOffset, Expr::value(offset))
        .col_expr(accounts::Column::LastActivity, Expr::value(Utc::now()))
        .filter(accounts::Column::Id.eq(id))
        .filter(
            accounts::Column::PollingOffset
                .is_null()
                .or(accounts::Column::PollingOffset.lt(offset)),
        )
        .exec(store.db())
        .await?;
    Ok(())
}

/// Records a failure on an account (its message and one more consecutive error).
pub async fn record_error(
    store: &Store,
    id: i64,
    message: &str,
    status: Option<AccountStatus>,
) -> StoreResult<()> {
    use sea_orm::sea_query::{Expr, ExprTrait};
    let mut update = accounts::Entity::update_many()
        .col_expr(accounts::Column::LastError, Expr::value(message))
        .col_expr(
            accounts::Column::ErrorCount,
            Expr::col(accounts::Column::ErrorCount).add(1),
        )
        .col_expr(accounts::Column::UpdatedAt, Expr::value(Utc::now()));
    if let Some(status) = status {
        update = update.col_expr(accounts::Column::Status, Expr::value(status.as_str()));
    }
    update
        .filter(accounts::Column::Id.eq(id))
        .exec(store.db())
        .await?;
    Ok(())
}

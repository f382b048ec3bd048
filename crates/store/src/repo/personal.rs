//! Personal accounts (MTProto): their sealed session (the [`SessionVault`] the gateway uses), the pending phone
//! login, the admin's intent to run them, and status changes with an error reason and retry time, each written
//! with its `account_status` event.

use chrono::{DateTime, Utc};
use crm_core::account::{Account, AccountStatus, AccountType, IntakeMode};
use crm_core::event::DomainEvent;
use crm_core::ids::AccountId;
use crm_core::personal::{AccountHandle, AppCredentials, BoxFuture, Profile, SessionVault, connection_lease};
use crm_core::secrets::Sensitive;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, EntityTrait, QueryFilter, Set, UpdateMany};

use crate::entity::accounts;
use crate::event_log::append;
use crate::repo::accounts::{announce_in, apply, purpose};
use crate::{Db, Store, StoreResult};

/// The sealed session column of `accounts`, as grammers-independent bytes.
#[derive(Clone)]
pub struct StoredSessions {
    store: Store,
}

impl StoredSessions {
    /// Sessions kept in `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl SessionVault for StoredSessions {
    fn load(&self, account_id: AccountId) -> BoxFuture<'_, Result<Option<Vec<u8>>, String>> {
        Box::pin(async move {
            let account = accounts::Entity::find_by_id(account_id.0)
                .one(self.store.db())
                .await
                .map_err(|e| e.to_string())?;
            let Some(sealed) = account.and_then(|a| a.session_sealed) else {
                return Ok(None);
            };
            self.store
                .secrets()
                .open(purpose::SESSION, &sealed)
                .map(Some)
                .map_err(|e| e.to_string())
        })
    }

    fn save(&self, account_id: AccountId, session: Vec<u8>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let sealed = self.store.secrets().seal(purpose::SESSION, &session);
            set_session(&self.store, account_id, Some(sealed))
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn clear(&self, account_id: AccountId) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            set_session(&self.store, account_id, None)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

async fn set_session(store: &Store, account_id: AccountId, sealed: Option<String>) -> StoreResult<()> {
    accounts::Entity::update_many()
        .col_expr(accounts::Column::SessionSealed, Expr::value(sealed))
        .col_expr(accounts::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(accounts::Column::Id.eq(account_id.0))
        .exec(store.writes())
        .await?;
    Ok(())
}

/// Records a phone login in progress: the sealed `phone_code_hash`, how the code was delivered; status
/// `authenticating`.
pub async fn begin_phone_login(
    store: &Store,
    account_id: AccountId,
    phone_code_hash: &Sensitive,
    code_type: &str,
) -> StoreResult<()> {
    let sealed = store
        .secrets()
        .seal_str(purpose::PENDING_CODE_HASH, &phone_code_hash.0);
    let update = accounts::Entity::update_many()
        .col_expr(accounts::Column::PendingCodeHashSealed, Expr::value(sealed))
        .col_expr(accounts::Column::PendingCodeType, Expr::value(code_type))
        .col_expr(
            accounts::Column::Status,
            Expr::value(Db(AccountStatus::Authenticating)),
        )
        .col_expr(accounts::Column::LastError, Expr::value(Option::<String>::None))
        .col_expr(accounts::Column::ErrorCode, Expr::value(Option::<String>::None));
    apply(store, account_id, update).await?;
    Ok(())
}

/// The pending `phone_code_hash` of an account, opened.
pub async fn pending_code_hash(store: &Store, account_id: AccountId) -> StoreResult<Option<Sensitive>> {
    let row = accounts::Entity::find_by_id(account_id.0).one(store.db()).await?;
    row.and_then(|row| row.pending_code_hash_sealed)
        .map(|sealed| {
            store
                .secrets()
                .open_str(purpose::PENDING_CODE_HASH, &sealed)
                .map(Sensitive)
        })
        .transpose()
        .map_err(Into::into)
}

fn with_status(update: UpdateMany<accounts::Entity>, status: AccountStatus) -> UpdateMany<accounts::Entity> {
    let mut update = update.col_expr(accounts::Column::Status, Expr::value(Db(status)));
    if status != AccountStatus::Error {
        update = update
            .col_expr(accounts::Column::ErrorCode, Expr::value(Option::<String>::None))
            .col_expr(
                accounts::Column::RetryAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            );
    }
    if status == AccountStatus::Active {
        update = update
            .col_expr(accounts::Column::LastError, Expr::value(Option::<String>::None))
            .col_expr(accounts::Column::ErrorCount, Expr::value(0))
            .col_expr(accounts::Column::LastActivity, Expr::value(Utc::now()));
    }
    update
}

/// Sets the status (and clears the error) without touching anything else.
pub async fn set_status(store: &Store, account_id: AccountId, status: AccountStatus) -> StoreResult<()> {
    apply(
        store,
        account_id,
        with_status(accounts::Entity::update_many(), status),
    )
    .await?;
    Ok(())
}

/// Sets the profile columns of an account update.
fn with_profile(update: UpdateMany<accounts::Entity>, profile: &Profile) -> UpdateMany<accounts::Entity> {
    update
        .col_expr(
            accounts::Column::TelegramUserId,
            Expr::value(profile.telegram_user_id),
        )
        .col_expr(
            accounts::Column::FirstName,
            Expr::value(profile.first_name.clone()),
        )
        .col_expr(accounts::Column::LastName, Expr::value(profile.last_name.clone()))
        .col_expr(accounts::Column::Username, Expr::value(profile.username.clone()))
}

/// A finished login: the profile, no pending login, enabled (the supervisor connects it at once), `inactive`
/// until it is connected.
pub async fn complete_login(store: &Store, account_id: AccountId, profile: &Profile) -> StoreResult<()> {
    let update = with_profile(accounts::Entity::update_many(), profile)
        .col_expr(
            accounts::Column::PendingCodeHashSealed,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            accounts::Column::PendingCodeType,
            Expr::value(Option::<String>::None),
        )
        .col_expr(accounts::Column::Status, Expr::value(Db(AccountStatus::Inactive)))
        .col_expr(accounts::Column::Enabled, Expr::value(true))
        .col_expr(accounts::Column::LastError, Expr::value(Option::<String>::None))
        .col_expr(accounts::Column::ErrorCode, Expr::value(Option::<String>::None))
        .col_expr(accounts::Column::ErrorCount, Expr::value(0))
        .col_expr(
            accounts::Column::RetryAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        );
    apply(store, account_id, update).await?;
    Ok(())
}

/// Records a failure: status `error` with its machine `code`, human `message`, and when to try again (`None`:
/// only a person can fix it).
pub async fn record_failure(
    store: &Store,
    account_id: AccountId,
    code: &str,
    message: &str,
    retry_at: Option<DateTime<Utc>>,
) -> StoreResult<()> {
    let update = accounts::Entity::update_many()
        .col_expr(accounts::Column::Status, Expr::value(Db(AccountStatus::Error)))
        .col_expr(accounts::Column::ErrorCode, Expr::value(code))
        .col_expr(accounts::Column::LastError, Expr::value(message))
        .col_expr(
            accounts::Column::ErrorCount,
            Expr::col(accounts::Column::ErrorCount).add(1),
        )
        .col_expr(accounts::Column::RetryAt, Expr::value(retry_at));
    apply(store, account_id, update).await?;
    Ok(())
}

/// Sets the admin's intent: `true` to run the account (start), `false` to stop it (status `stopped`).
pub async fn set_enabled(store: &Store, account_id: AccountId, enabled: bool) -> StoreResult<()> {
    let mut update = accounts::Entity::update_many()
        .col_expr(accounts::Column::Enabled, Expr::value(enabled))
        .col_expr(
            accounts::Column::RetryAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(accounts::Column::AccountType.eq(Db(AccountType::Personal)));
    if !enabled {
        update = update.col_expr(accounts::Column::Status, Expr::value(Db(AccountStatus::Stopped)));
    }
    apply(store, account_id, update).await?;
    Ok(())
}

/// Statuses during which a personal account is not connected: a login owns its session.
const LOGIN_STATUSES: [AccountStatus; 2] = [AccountStatus::Authenticating, AccountStatus::PasswordRequired];

/// Personal accounts the supervisor should connect now: enabled, with a session, not in the middle of a login,
/// and not waiting out an error.
pub async fn accounts_to_connect(store: &Store) -> StoreResult<Vec<Account>> {
    let now = Utc::now();
    Ok(accounts::Entity::find()
        .filter(accounts::Column::AccountType.eq(Db(AccountType::Personal)))
        .filter(accounts::Column::Enabled.eq(true))
        .filter(accounts::Column::SessionSealed.is_not_null())
        .filter(accounts::Column::Status.is_not_in(LOGIN_STATUSES.map(Db)))
        .filter(
            Condition::any()
                .add(accounts::Column::Status.ne(Db(AccountStatus::Error)))
                .add(accounts::Column::RetryAt.lte(now)),
        )
        .all(store.db())
        .await?
        .into_iter()
        .map(Account::from)
        .collect())
}

/// Every personal account (removed ones too).
pub async fn all_personal(store: &Store) -> StoreResult<Vec<Account>> {
    Ok(accounts::Entity::find()
        .filter(accounts::Column::AccountType.eq(Db(AccountType::Personal)))
        .all(store.db())
        .await?
        .into_iter()
        .map(Account::from)
        .collect())
}

/// Records that recent history was imported.
pub async fn mark_history_imported(store: &Store, account_id: AccountId) -> StoreResult<()> {
    let update = accounts::Entity::update_many()
        .col_expr(accounts::Column::HistoryImportedAt, Expr::value(Utc::now()));
    apply(store, account_id, update).await?;
    Ok(())
}

/// What a gateway needs to reach Telegram for `account`: `None` for a bot, or a personal account without its
/// phone or application credentials.
pub async fn handle(store: &Store, account: &Account) -> StoreResult<Option<AccountHandle>> {
    if account.kind != AccountType::Personal {
        return Ok(None);
    }
    let secrets = crate::repo::accounts::secrets(store, account.id).await?;
    let (Some(phone_number), Some(api_id), Some(api_hash)) =
        (account.phone_number.clone(), account.api_id, secrets.api_hash)
    else {
        return Ok(None);
    };
    let Ok(api_id) = i32::try_from(api_id) else {
        return Ok(None);
    };
    Ok(Some(AccountHandle {
        account_id: account.id,
        phone_number,
        credentials: AppCredentials { api_id, api_hash },
    }))
}

/// A connection came up: status `active`, no error, the profile as Telegram reports it now.
pub async fn complete_connect(store: &Store, account_id: AccountId, profile: &Profile) -> StoreResult<()> {
    let update = with_status(
        with_profile(accounts::Entity::update_many(), profile),
        AccountStatus::Active,
    );
    apply(store, account_id, update).await?;
    Ok(())
}

/// The personal account with this phone number, removed ones included (a new login revives it with its chats).
pub async fn find_by_phone(store: &Store, phone_number: &str) -> StoreResult<Option<Account>> {
    Ok(accounts::Entity::find()
        .filter(accounts::Column::AccountType.eq(Db(AccountType::Personal)))
        .filter(accounts::Column::PhoneNumber.eq(phone_number))
        .one(store.db())
        .await?
        .map(Account::from))
}

/// A personal account about to log in.
#[derive(Debug, Clone)]
pub struct NewPersonal {
    /// Display name.
    pub name: String,
    /// Phone number, `+` and digits.
    pub phone_number: String,
    /// Application id.
    pub api_id: i32,
    /// Application hash.
    pub api_hash: Sensitive,
    /// Collect groups and supergroups.
    pub include_groups: bool,
    /// Collect broadcast channels.
    pub include_channels: bool,
}

/// Creates the account of `new`, or (same phone) updates its name and credentials and revives it if it was
/// removed. The session is left as it is: the login replaces it.
pub async fn upsert(store: &Store, new: NewPersonal) -> StoreResult<Account> {
    let sealed_hash = store.secrets().seal_str(purpose::API_HASH, &new.api_hash.0);
    let now = Utc::now();
    if let Some(existing) = find_by_phone(store, &new.phone_number).await? {
        let update = accounts::Entity::update_many()
            .col_expr(accounts::Column::Name, Expr::value(new.name))
            .col_expr(accounts::Column::ApiId, Expr::value(i64::from(new.api_id)))
            .col_expr(accounts::Column::ApiHashSealed, Expr::value(sealed_hash))
            .col_expr(accounts::Column::IncludeGroups, Expr::value(new.include_groups))
            .col_expr(
                accounts::Column::IncludeChannels,
                Expr::value(new.include_channels),
            )
            .col_expr(
                accounts::Column::RemovedAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            );
        return apply(store, existing.id, update).await?.ok_or_else(|| {
            crate::StoreError::Database(sea_orm::DbErr::RecordNotFound("personal account".into()))
        });
    }
    let model = accounts::ActiveModel {
        name: Set(new.name),
        account_type: Set(Db(AccountType::Personal)),
        status: Set(Db(AccountStatus::Inactive)),
        phone_number: Set(Some(new.phone_number)),
        api_id: Set(Some(i64::from(new.api_id))),
        api_hash_sealed: Set(Some(sealed_hash)),
        error_count: Set(0),
        intake_mode: Set(Db(IntakeMode::None)),
        include_groups: Set(new.include_groups),
        include_channels: Set(new.include_channels),
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
    account
        .ok_or_else(|| crate::StoreError::Database(sea_orm::DbErr::RecordNotFound("personal account".into())))
}

/// Removes a personal account but keeps its chats: secrets and pending login wiped, stopped, hidden; admins are
/// told it was removed.
pub async fn remove_keeping_chats(store: &Store, account_id: AccountId) -> StoreResult<()> {
    let none = Option::<String>::None;
    let txn = store.begin_write().await?;
    accounts::Entity::update_many()
        .col_expr(accounts::Column::SessionSealed, Expr::value(none.clone()))
        .col_expr(accounts::Column::ApiHashSealed, Expr::value(none.clone()))
        .col_expr(accounts::Column::PendingCodeHashSealed, Expr::value(none.clone()))
        .col_expr(accounts::Column::PendingCodeType, Expr::value(none))
        .col_expr(accounts::Column::Enabled, Expr::value(false))
        .col_expr(accounts::Column::Status, Expr::value(Db(AccountStatus::Stopped)))
        .col_expr(accounts::Column::RemovedAt, Expr::value(Utc::now()))
        .col_expr(accounts::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(accounts::Column::Id.eq(account_id.0))
        .exec(&txn)
        .await?;
    append(&txn, &[DomainEvent::AccountRemoved { account_id }]).await?;
    txn.commit().await?;
    store.signals().events.notify_one();
    Ok(())
}

/// Deletes an account with its chats, messages and files' records; admins are told it was removed.
pub async fn purge(store: &Store, account_id: AccountId) -> StoreResult<()> {
    let txn = store.begin_write().await?;
    accounts::Entity::delete_by_id(account_id.0).exec(&txn).await?;
    append(&txn, &[DomainEvent::AccountRemoved { account_id }]).await?;
    txn.commit().await?;
    store.signals().events.notify_one();
    Ok(())
}

/// An admin's start: the account is enabled and, if it was stopped or failed, marked `inactive` so the
/// supervisor connects it at once (without waiting for an error's retry time).
pub async fn start(store: &Store, account: &Account) -> StoreResult<()> {
    set_enabled(store, account.id, true).await?;
    if matches!(account.status, AccountStatus::Error | AccountStatus::Stopped) {
        set_status(store, account.id, AccountStatus::Inactive).await?;
    }
    Ok(())
}

/// Waits until no instance holds the connection lease of `account_id` (it disconnected), checking every 100 ms
/// for at most `patience`. Returns the holder still connected when the patience ran out, if any.
pub async fn wait_until_disconnected(
    store: &Store,
    account_id: AccountId,
    patience: std::time::Duration,
) -> StoreResult<Option<String>> {
    let lease = connection_lease(account_id);
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let holder = crate::repo::leases::holder(store, &lease).await?;
        if holder.is_none() || tokio::time::Instant::now() >= deadline {
            return Ok(holder);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

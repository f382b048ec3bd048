//! Personal accounts (MTProto): their sealed session (the [`SessionVault`] the gateway uses), the pending
//! phone login, the admin's intent to run them, status changes with an error reason and retry time, and the
//! updates only personal accounts see (deletions, read receipts of our messages).

use chrono::{DateTime, Utc};
use crm_core::account::{AccountStatus, AccountType};
use crm_core::chat::ChatType;
use crm_core::message::{Direction, MessageStatus};
use crm_core::personal::{AccountHandle, AppCredentials, BoxFuture, CollectScope, Profile, SessionVault};
use crm_core::secrets::Sensitive;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QuerySelect};

use crate::entity::{accounts, chats, messages};
use crate::repo::accounts::purpose;
use crate::{Store, StoreResult};

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
    fn load(&self, account_id: i64) -> BoxFuture<'_, Result<Option<Vec<u8>>, String>> {
        Box::pin(async move {
            let account = accounts::Entity::find_by_id(account_id)
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

    fn save(&self, account_id: i64, session: Vec<u8>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let sealed = self.store.secrets().seal(purpose::SESSION, &session);
            set_session(&self.store, account_id, Some(sealed))
                .await
                .map_err(|e| e.to_string())
        })
    }

    fn clear(&self, account_id: i64) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            set_session(&self.store, account_id, None)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

async fn set_session(store: &Store, account_id: i64, sealed: Option<String>) -> StoreResult<()> {
    accounts::Entity::update_many()
        .col_expr(accounts::Column::SessionSealed, Expr::value(sealed))
        .col_expr(accounts::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(accounts::Column::Id.eq(account_id))
        .exec(store.db())
        .await?;
    Ok(())
}

/// Whether an account has a stored session.
pub fn has_session(account: &accounts::Model) -> bool {
    account.session_sealed.is_some()
}

/// Records a phone login in progress: the sealed `phone_code_hash`, how the code was delivered; status
/// `authenticating`.
pub async fn begin_phone_login(
    store: &Store,
    account_id: i64,
    phone_code_hash: &Sensitive,
    code_type: &str,
) -> StoreResult<()> {
    let sealed = store
        .secrets()
        .seal_str(purpose::PENDING_CODE_HASH, &phone_code_hash.0);
    accounts::Entity::update_many()
        .col_expr(accounts::Column::PendingCodeHashSealed, Expr::value(sealed))
        .col_expr(accounts::Column::PendingCodeType, Expr::value(code_type))
        .col_expr(
            accounts::Column::Status,
            Expr::value(AccountStatus::Authenticating.as_str()),
        )
        .col_expr(accounts::Column::LastError, Expr::value(Option::<String>::None))
        .col_expr(accounts::Column::ErrorCode, Expr::value(Option::<String>::None))
        .col_expr(accounts::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(accounts::Column::Id.eq(account_id))
        .exec(store.db())
        .await?;
    Ok(())
}

/// The pending `phone_code_hash` of an account, opened.
pub fn pending_code_hash(store: &Store, account: &accounts::Model) -> StoreResult<Option<Sensitive>> {
    account
        .pending_code_hash_sealed
        .as_deref()
        .map(|sealed| {
            store
                .secrets()
                .open_str(purpose::PENDING_CODE_HASH, sealed)
                .map(Sensitive)
        })
        .transpose()
        .map_err(Into::into)
}

/// Sets the status (and clears the error) without touching anything else.
pub async fn set_status(store: &Store, account_id: i64, status: AccountStatus) -> StoreResult<()> {
    let mut update = accounts::Entity::update_many()
        .col_expr(accounts::Column::Status, Expr::value(status.as_str()))
        .col_expr(accounts::Column::UpdatedAt, Expr::value(Utc::now()));
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
        .filter(accounts::Column::Id.eq(account_id))
        .exec(store.db())
        .await?;
    Ok(())
}

/// Sets the profile columns of an account update.
fn with_profile(
    update: sea_orm::UpdateMany<accounts::Entity>,
    profile: &Profile,
) -> sea_orm::UpdateMany<accounts::Entity> {
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
pub async fn complete_login(store: &Store, account_id: i64, profile: &Profile) -> StoreResult<()> {
    with_profile(accounts::Entity::update_many(), profile)
        .col_expr(
            accounts::Column::PendingCodeHashSealed,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            accounts::Column::PendingCodeType,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            accounts::Column::Status,
            Expr::value(AccountStatus::Inactive.as_str()),
        )
        .col_expr(accounts::Column::Enabled, Expr::value(true))
        .col_expr(accounts::Column::LastError, Expr::value(Option::<String>::None))
        .col_expr(accounts::Column::ErrorCode, Expr::value(Option::<String>::None))
        .col_expr(accounts::Column::ErrorCount, Expr::value(0))
        .col_expr(
            accounts::Column::RetryAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(accounts::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(accounts::Column::Id.eq(account_id))
        .exec(store.db())
        .await?;
    Ok(())
}

/// Records a failure: status `error` with its machine `code`, human `message`, and when to try again (`None`:
/// only a person can fix it).
pub async fn record_failure(
    store: &Store,
    account_id: i64,
    code: &str,
    message: &str,
    retry_at: Option<DateTime<Utc>>,
) -> StoreResult<()> {
    accounts::Entity::update_many()
        .col_expr(
            accounts::Column::Status,
            Expr::value(AccountStatus::Error.as_str()),
        )
        .col_expr(accounts::Column::ErrorCode, Expr::value(code))
        .col_expr(accounts::Column::LastError, Expr::value(message))
        .col_expr(
            accounts::Column::ErrorCount,
            Expr::col(accounts::Column::ErrorCount).add(1),
        )
        .col_expr(accounts::Column::RetryAt, Expr::value(retry_at))
        .col_expr(accounts::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(accounts::Column::Id.eq(account_id))
        .exec(store.db())
        .await?;
    Ok(())
}

/// Sets the admin's intent: `true` to run the account (start), `false` to stop it (status `stopped`).
pub async fn set_enabled(store: &Store, account_id: i64, enabled: bool) -> StoreResult<()> {
    let mut update = accounts::Entity::update_many()
        .col_expr(accounts::Column::Enabled, Expr::value(enabled))
        .col_expr(
            accounts::Column::RetryAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(accounts::Column::UpdatedAt, Expr::value(Utc::now()));
    if !enabled {
        update = update.col_expr(
            accounts::Column::Status,
            Expr::value(AccountStatus::Stopped.as_str()),
        );
    }
    update
        .filter(accounts::Column::Id.eq(account_id))
        .filter(accounts::Column::AccountType.eq(AccountType::Personal.as_str()))
        .exec(store.db())
        .await?;
    Ok(())
}

/// Statuses during which a personal account is not connected: a login owns its session.
const LOGIN_STATUSES: [&str; 2] = [
    AccountStatus::Authenticating.as_str(),
    AccountStatus::PasswordRequired.as_str(),
];

/// Whether a connected personal account should stay connected: enabled, with a session, not in the middle of a
/// login (the filter of [`accounts_to_connect`], minus the error retry time, which a live connection is past).
pub fn stays_connected(account: &accounts::Model) -> bool {
    account.enabled && has_session(account) && !logging_in(account)
}

/// Whether a login (code, password or QR) is in progress on the account.
pub fn logging_in(account: &accounts::Model) -> bool {
    LOGIN_STATUSES.contains(&account.status.as_str())
}

/// Personal accounts the supervisor should connect now: enabled, with a session, not in the middle of a login,
/// and not waiting out an error.
pub async fn accounts_to_connect(store: &Store) -> StoreResult<Vec<accounts::Model>> {
    let now = Utc::now();
    Ok(accounts::Entity::find()
        .filter(accounts::Column::AccountType.eq(AccountType::Personal.as_str()))
        .filter(accounts::Column::Enabled.eq(true))
        .filter(accounts::Column::SessionSealed.is_not_null())
        .filter(accounts::Column::Status.is_not_in(LOGIN_STATUSES))
        .filter(
            Condition::any()
                .add(accounts::Column::Status.ne(AccountStatus::Error.as_str()))
                .add(accounts::Column::RetryAt.lte(now)),
        )
        .all(store.db())
        .await?)
}

/// Every personal account id.
pub async fn all_personal(store: &Store) -> StoreResult<Vec<accounts::Model>> {
    Ok(accounts::Entity::find()
        .filter(accounts::Column::AccountType.eq(AccountType::Personal.as_str()))
        .all(store.db())
        .await?)
}

/// Records that recent history was imported.
pub async fn mark_history_imported(store: &Store, account_id: i64) -> StoreResult<()> {
    accounts::Entity::update_many()
        .col_expr(accounts::Column::HistoryImportedAt, Expr::value(Utc::now()))
        .filter(accounts::Column::Id.eq(account_id))
        .exec(store.db())
        .await?;
    Ok(())
}

/// Messages changed by a deletion or a read receipt: `(message id, chat id)` pairs.
pub type Touched = Vec<(i64, i64)>;

async fn chat_ids(store: &Store, account_id: i64, peer_id: Option<i64>) -> StoreResult<Vec<i64>> {
    let mut query = chats::Entity::find()
        .select_only()
        .column(chats::Column::Id)
        .filter(chats::Column::AccountId.eq(account_id));
    query = match peer_id {
        Some(peer_id) => query.filter(chats::Column::PeerId.eq(peer_id)),
        // Telegram names no chat for deletions in private chats and basic groups: their message ids are
        // unique across the account's chats of those kinds.
        None => query
            .filter(chats::Column::ChatType.is_in([ChatType::Private.as_str(), ChatType::Group.as_str()])),
    };
    Ok(query.into_tuple().all(store.db()).await?)
}

/// Marks messages deleted in Telegram as deleted (kept, visible to operators as deleted).
pub async fn mark_deleted(
    store: &Store,
    account_id: i64,
    peer_id: Option<i64>,
    telegram_message_ids: &[i64],
) -> StoreResult<Touched> {
    let chats = chat_ids(store, account_id, peer_id).await?;
    if chats.is_empty() || telegram_message_ids.is_empty() {
        return Ok(Vec::new());
    }
    let condition = Condition::all()
        .add(messages::Column::ChatId.is_in(chats))
        .add(messages::Column::TelegramMessageId.is_in(telegram_message_ids.iter().copied()))
        .add(messages::Column::IsDeleted.eq(false));
    let touched: Touched = messages::Entity::find()
        .select_only()
        .column(messages::Column::Id)
        .column(messages::Column::ChatId)
        .filter(condition.clone())
        .into_tuple()
        .all(store.db())
        .await?;
    messages::Entity::update_many()
        .col_expr(messages::Column::IsDeleted, Expr::value(true))
        .col_expr(messages::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(condition)
        .exec(store.db())
        .await?;
    Ok(touched)
}

/// Marks our outgoing messages in the chat read up to `max_id` (status `read`).
pub async fn mark_read_outbox(
    store: &Store,
    account_id: i64,
    peer_id: i64,
    max_id: i64,
) -> StoreResult<Touched> {
    let chats = chat_ids(store, account_id, Some(peer_id)).await?;
    if chats.is_empty() {
        return Ok(Vec::new());
    }
    let condition = Condition::all()
        .add(messages::Column::ChatId.is_in(chats))
        .add(messages::Column::Direction.eq(Direction::Outbound.as_str()))
        .add(messages::Column::Status.eq(MessageStatus::Sent.as_str()))
        .add(messages::Column::TelegramMessageId.lte(max_id));
    let touched: Touched = messages::Entity::find()
        .select_only()
        .column(messages::Column::Id)
        .column(messages::Column::ChatId)
        .filter(condition.clone())
        .into_tuple()
        .all(store.db())
        .await?;
    messages::Entity::update_many()
        .col_expr(
            messages::Column::Status,
            Expr::value(MessageStatus::Read.as_str()),
        )
        .col_expr(messages::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(condition)
        .exec(store.db())
        .await?;
    Ok(touched)
}

/// What a gateway needs to reach Telegram for `account`: `None` for a bot, or a personal account without its
/// phone or application credentials.
pub fn handle(store: &Store, account: &accounts::Model) -> StoreResult<Option<AccountHandle>> {
    if account.account_type != AccountType::Personal.as_str() {
        return Ok(None);
    }
    let secrets = crate::repo::accounts::open_secrets(store, account)?;
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

/// What the account collects.
pub fn scope(account: &accounts::Model) -> CollectScope {
    CollectScope {
        include_groups: account.include_groups,
        include_channels: account.include_channels,
    }
}

/// A connection came up: status `active`, no error, the profile as Telegram reports it now.
pub async fn complete_connect(store: &Store, account_id: i64, profile: &Profile) -> StoreResult<()> {
    with_profile(accounts::Entity::update_many(), profile)
        .filter(accounts::Column::Id.eq(account_id))
        .exec(store.db())
        .await?;
    set_status(store, account_id, AccountStatus::Active).await
}

/// The personal account with this phone number, removed ones included (a new login revives it with its chats).
pub async fn find_by_phone(store: &Store, phone_number: &str) -> StoreResult<Option<accounts::Model>> {
    Ok(accounts::Entity::find()
        .filter(accounts::Column::AccountType.eq(AccountType::Personal.as_str()))
        .filter(accounts::Column::PhoneNumber.eq(phone_number))
        .one(store.db())
        .await?)
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
pub async fn upsert(store: &Store, new: NewPersonal) -> StoreResult<accounts::Model> {
    use sea_orm::{ActiveModelTrait, Set};
    let sealed_hash = store.secrets().seal_str(purpose::API_HASH, &new.api_hash.0);
    let now = Utc::now();
    if let Some(existing) = find_by_phone(store, &new.phone_number).await? {
        let mut model: accounts::ActiveModel = existing.into();
        model.name = Set(new.name);
        model.api_id = Set(Some(i64::from(new.api_id)));
        model.api_hash_sealed = Set(Some(sealed_hash));
        model.include_groups = Set(new.include_groups);
        model.include_channels = Set(new.include_channels);
        model.removed_at = Set(None);
        model.updated_at = Set(now);
        return Ok(model.update(store.db()).await?);
    }
    let model = accounts::ActiveModel {
        name: Set(new.name),
        account_type: Set(AccountType::Personal.as_str().to_owned()),
        status: Set(AccountStatus::Inactive.as_str().to_owned()),
        phone_number: Set(Some(new.phone_number)),
        api_id: Set(Some(i64::from(new.api_id))),
        api_hash_sealed: Set(Some(sealed_hash)),
        error_count: Set(0),
        intake_mode: Set("none".to_owned()),
        include_groups: Set(new.include_groups),
        include_channels: Set(new.include_channels),
        mark_read_in_telegram: Set(true),
        enabled: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    };
    Ok(model.insert(store.db()).await?)
}

/// Removes a personal account but keeps its chats: secrets and pending login wiped, stopped, hidden.
pub async fn remove_keeping_chats(store: &Store, account_id: i64) -> StoreResult<()> {
    let none = Option::<String>::None;
    accounts::Entity::update_many()
        .col_expr(accounts::Column::SessionSealed, Expr::value(none.clone()))
        .col_expr(accounts::Column::ApiHashSealed, Expr::value(none.clone()))
        .col_expr(accounts::Column::PendingCodeHashSealed, Expr::value(none.clone()))
        .col_expr(accounts::Column::PendingCodeType, Expr::value(none))
        .col_expr(accounts::Column::Enabled, Expr::value(false))
        .col_expr(
            accounts::Column::Status,
            Expr::value(AccountStatus::Stopped.as_str()),
        )
        .col_expr(accounts::Column::RemovedAt, Expr::value(Utc::now()))
        .col_expr(accounts::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(accounts::Column::Id.eq(account_id))
        .exec(store.db())
        .await?;
    Ok(())
}

/// Deletes an account with its chats, messages and files' records.
pub async fn purge(store: &Store, account_id: i64) -> StoreResult<()> {
    accounts::Entity::delete_by_id(account_id)
        .exec(store.db())
        .await?;
    Ok(())
}

/// The name of the lease held by the instance connected to personal account `account_id`.
pub fn connection_lease(account_id: i64) -> String {
    format!("personal:{account_id}")
}

/// An admin's start: the account is enabled and, if it was stopped or failed, marked `inactive` so the
/// supervisor connects it at once (without waiting for an error's retry time).
pub async fn start(store: &Store, account: &accounts::Model) -> StoreResult<()> {
    set_enabled(store, account.id, true).await?;
    if [AccountStatus::Error.as_str(), AccountStatus::Stopped.as_str()].contains(&account.status.as_str()) {
        set_status(store, account.id, AccountStatus::Inactive).await?;
    }
    Ok(())
}

/// Waits until no instance holds the connection lease of `account_id` (it disconnected), checking every 100 ms
/// for at most `patience`. Returns the holder still connected when the patience ran out, if any.
pub async fn wait_until_disconnected(
    store: &Store,
    account_id: i64,
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

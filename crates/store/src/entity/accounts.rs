//! `accounts`: connected Telegram bots and personal accounts. Secret columns hold sealed values only.

use crm_core::account::{AccountStatus, AccountType, IntakeMode};
use sea_orm::entity::prelude::*;

use crate::Db;

/// One Telegram account.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "accounts")]
pub struct Model {
    /// Primary key.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Display name.
    pub name: String,
    /// Personal or bot.
    pub account_type: Db<AccountType>,
    /// Life-cycle state.
    pub status: Db<AccountStatus>,
    /// Phone number of a personal account, `+` and digits.
    pub phone_number: Option<String>,
    /// MTProto application id.
    pub api_id: Option<i64>,
    /// Sealed MTProto application hash.
    pub api_hash_sealed: Option<String>,
    /// Sealed MTProto session.
    pub session_sealed: Option<String>,
    /// Sealed bot token.
    pub bot_token_sealed: Option<String>,
    /// Keyed hash of the bot token, for lookups by token.
    #[sea_orm(unique)]
    pub bot_token_lookup: Option<String>,
    /// The bot's @username, from `getMe`.
    pub bot_username: Option<String>,
    /// Sealed secret Telegram sends in `X-Telegram-Bot-Api-Secret-Token`.
    pub webhook_secret_sealed: Option<String>,
    /// Telegram user id of the account itself.
    pub telegram_user_id: Option<i64>,
    /// Profile first name.
    pub first_name: Option<String>,
    /// Profile last name.
    pub last_name: Option<String>,
    /// Profile @username.
    pub username: Option<String>,
    /// Last time the account did anything.
    pub last_activity: Option<DateTimeUtc>,
    /// Human reason of the last failure.
    pub last_error: Option<String>,
    /// Consecutive failures.
    pub error_count: i32,
    /// How a bot receives updates.
    pub intake_mode: Db<IntakeMode>,
    /// The URL given to `setWebhook`.
    pub webhook_url: Option<String>,
    /// The existing bot backend every update is forwarded to.
    pub forward_url: Option<String>,
    /// Next `getUpdates` offset of a polled bot.
    pub polling_offset: Option<i64>,
    /// Personal account: collect groups and supergroups.
    pub include_groups: bool,
    /// Personal account: collect broadcast channels.
    pub include_channels: bool,
    /// Personal account: when an operator reads a chat, mark it read in Telegram too.
    pub mark_read_in_telegram: bool,
    /// Personal account: the admin wants it connected (start) or not (stop).
    pub enabled: bool,
    /// Personal account: sealed `phone_code_hash` of the login code request in progress.
    pub pending_code_hash_sealed: Option<String>,
    /// Personal account: how the pending login code was delivered.
    pub pending_code_type: Option<String>,
    /// Machine reason of the `error` status (`session_revoked`, `banned`, `flood_wait`, `network`, ...).
    pub error_code: Option<String>,
    /// Personal account in `error`: the supervisor tries again after this time.
    pub retry_at: Option<DateTimeUtc>,
    /// Personal account: when recent history was imported (once, on the first connection).
    pub history_imported_at: Option<DateTimeUtc>,
    /// Removed by an admin with its chats kept: secrets wiped, hidden from the account list.
    pub removed_at: Option<DateTimeUtc>,
    /// Creation time.
    pub created_at: DateTimeUtc,
    /// Last change.
    pub updated_at: DateTimeUtc,
}

/// No navigable relations; joins are written where needed.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

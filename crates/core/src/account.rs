//! Telegram accounts the inbox is connected to: bots and personal accounts, their life-cycle states, and the
//! account record as the rest of the system sees it (secrets are never part of it).

use chrono::{DateTime, Utc};

use crate::ids::AccountId;
use crate::string_enum;

string_enum! {
    /// How an account talks to Telegram.
    AccountType {
        /// A personal Telegram account over MTProto.
        Personal => "personal",
        /// A bot over the Bot API.
        Bot => "bot",
    }
}

string_enum! {
    /// Where an account is in its life cycle.
    AccountStatus {
        /// Created, not connected yet.
        Inactive => "inactive",
        /// A login (code, password or QR) is in progress.
        Authenticating => "authenticating",
        /// The cloud password is needed to finish a login.
        PasswordRequired => "password_required",
        /// Connected and receiving.
        Active => "active",
        /// Lost its connection; the supervisor is reconnecting.
        Reconnecting => "reconnecting",
        /// Stopped by an admin.
        Stopped => "stopped",
        /// Failed; `last_error` says why.
        Error => "error",
    }
}

string_enum! {
    /// How a bot receives its updates.
    IntakeMode {
        /// Not receiving (neither webhook nor polling set up).
        None => "none",
        /// Telegram posts updates to our webhook.
        Webhook => "webhook",
        /// An instance long-polls `getUpdates`.
        Polling => "polling",
    }
}

impl AccountType {
    /// Whether Telegram keeps a read position for the account's chats that we can move (personal accounts).
    pub fn has_read_state(self) -> bool {
        self == Self::Personal
    }

    /// Whether files over the automatic download limit can be fetched on request (personal accounts; bots
    /// cannot download more than the Bot API allows).
    pub fn fetches_on_demand(self) -> bool {
        self == Self::Personal
    }
}

impl AccountStatus {
    /// Whether a login (code, password or QR) owns the account's session now, so nothing may connect it.
    pub fn is_logging_in(self) -> bool {
        matches!(self, Self::Authenticating | Self::PasswordRequired)
    }

    /// Whether the account is (or is being) connected.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Active | Self::Reconnecting)
    }
}

/// A connected Telegram account as stored, without its secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Id.
    pub id: AccountId,
    /// Display name.
    pub name: String,
    /// Bot or personal.
    pub kind: AccountType,
    /// Life-cycle state.
    pub status: AccountStatus,
    /// Phone number of a personal account, `+` and digits.
    pub phone_number: Option<String>,
    /// MTProto application id.
    pub api_id: Option<i64>,
    /// The bot's @username.
    pub bot_username: Option<String>,
    /// Telegram user id of the account itself.
    pub telegram_user_id: Option<i64>,
    /// Profile first name.
    pub first_name: Option<String>,
    /// Profile last name.
    pub last_name: Option<String>,
    /// Profile @username.
    pub username: Option<String>,
    /// Last time the account did anything.
    pub last_activity: Option<DateTime<Utc>>,
    /// Human reason of the last failure.
    pub last_error: Option<String>,
    /// Consecutive failures.
    pub error_count: i32,
    /// How a bot receives updates.
    pub intake_mode: IntakeMode,
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
    /// Personal account: the admin wants it connected.
    pub enabled: bool,
    /// Personal account: a login session is stored.
    pub has_session: bool,
    /// Personal account: how the pending login code was delivered.
    pub pending_code_type: Option<String>,
    /// Machine reason of the `error` status.
    pub error_code: Option<String>,
    /// Personal account in `error`: the supervisor tries again after this time.
    pub retry_at: Option<DateTime<Utc>>,
    /// Personal account: when recent history was imported.
    pub history_imported_at: Option<DateTime<Utc>>,
    /// Removed by an admin with its chats kept.
    pub removed_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Account {
    /// Whether a connected personal account should stay connected: enabled, with a session, and no login in
    /// progress (the supervisor's rule; the error retry time does not apply to a live connection).
    pub fn stays_connected(&self) -> bool {
        self.enabled && self.has_session && !self.status.is_logging_in()
    }
}

//! The port to personal Telegram accounts (MTProto): what the login flows and the account supervisor ask of a
//! personal-account gateway, what it answers and how it fails. The grammers implementation and the scripted test
//! fake both live outside the core; nothing here names an MTProto library type.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::ids::{AccountId, PeerId, TelegramMessageId};
use crate::inbound::InboundEvent;
use crate::outbound::{DownloadedFile, OutgoingMessage, SendFuture};
pub use crate::ports::BoxFuture;
use crate::secrets::Sensitive;

/// The application credentials (from my.telegram.org) a personal account logs in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppCredentials {
    /// `api_id`.
    pub api_id: i32,
    /// `api_hash`, a secret.
    pub api_hash: Sensitive,
}

/// Which account a gateway call is about, with what it needs to reach Telegram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountHandle {
    /// Our account id; the gateway loads and saves the account's session through the [`SessionVault`] by it.
    pub account_id: AccountId,
    /// Phone number in international format (`+` and digits).
    pub phone_number: String,
    /// Application credentials.
    pub credentials: AppCredentials,
}

/// How Telegram delivered (or will deliver) a login code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeSent {
    /// Telegram's handle of this code request, needed to sign in or resend; kept sealed.
    pub phone_code_hash: Sensitive,
    /// Delivery of this code: `APP`, `SMS`, `CALL`, `FLASH_CALL`, `MISSED_CALL`, `EMAIL`, `FRAGMENT_SMS`.
    pub code_type: String,
    /// What a resend will switch to, if anything.
    pub next_type: Option<String>,
    /// Seconds before a resend is allowed, if Telegram says.
    pub timeout: Option<i32>,
}

/// The Telegram profile of a logged-in account.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profile {
    /// Telegram user id.
    pub telegram_user_id: i64,
    /// First name.
    pub first_name: Option<String>,
    /// Last name.
    pub last_name: Option<String>,
    /// @username.
    pub username: Option<String>,
    /// Phone number, when Telegram shares it.
    pub phone_number: Option<String>,
}

/// Where a login step left the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Logged in; the session is authorised and saved.
    Authenticated(Profile),
    /// The account has a cloud password; send it to finish.
    PasswordRequired {
        /// The password hint the owner set, if any.
        hint: Option<String>,
    },
}

/// A QR login token to show to the owner (scanned in Telegram under Settings → Devices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrToken {
    /// `tg://login?token=<base64url>`.
    pub login_url: String,
    /// When Telegram stops accepting this token.
    pub expires_at: DateTime<Utc>,
}

/// Progress of a QR login, reported while it runs.
pub trait QrProgress: Send + Sync {
    /// A new token to show (the first one, then a fresh one before each expiry).
    fn token(&self, token: QrToken);
}

/// How a call to Telegram failed, sorted by what the caller can do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UserError {
    /// The phone number is not valid.
    #[error("Telegram says the phone number is invalid; use the international format, + and digits")]
    InvalidPhone,
    /// The phone number has no Telegram account.
    #[error("this phone number is not registered in Telegram")]
    PhoneUnoccupied,
    /// Telegram banned the number or deactivated the account.
    #[error("Telegram has banned this phone number or deactivated the account")]
    Banned,
    /// `api_id`/`api_hash` are not valid.
    #[error("Telegram rejected the api_id/api_hash pair")]
    InvalidApiCredentials,
    /// The login code is wrong.
    #[error("the login code is not correct")]
    InvalidCode,
    /// The login code expired or was replaced by a newer one.
    #[error("the login code has expired or was replaced by a newer one; request a new code")]
    CodeExpired,
    /// The cloud password is wrong.
    #[error("the cloud password is not correct")]
    WrongPassword,
    /// A login step was called out of order (no code requested, no password asked).
    #[error("{0}")]
    LoginNotStarted(String),
    /// Flood control: wait this long.
    #[error("Telegram asks to wait {} seconds before trying again", .0.as_secs())]
    FloodWait(Duration),
    /// The session was revoked (logged out from another device) or never authorised.
    #[error("the Telegram session was revoked or has expired; log in again")]
    SessionRevoked,
    /// The same session is connected elsewhere (Telegram's `AUTH_KEY_DUPLICATED`).
    #[error("this session is connected from another place at the same time")]
    Duplicated,
    /// Telegram cannot be reached, or the connection broke.
    #[error("cannot reach Telegram: {0}")]
    Network(String),
    /// The peer (chat) is unknown or cannot be written to.
    #[error("{0}")]
    PeerUnavailable(String),
    /// Anything else Telegram answered.
    #[error("Telegram answered: {0}")]
    Other(String),
}

impl UserError {
    /// A stable machine-readable code for API errors and `last_error`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidPhone => "phone_invalid",
            Self::PhoneUnoccupied => "phone_unregistered",
            Self::Banned => "banned",
            Self::InvalidApiCredentials => "api_id_invalid",
            Self::InvalidCode => "code_invalid",
            Self::CodeExpired => "code_expired",
            Self::WrongPassword => "password_invalid",
            Self::LoginNotStarted(_) => "login_not_started",
            Self::FloodWait(_) => "flood_wait",
            Self::SessionRevoked => "session_revoked",
            Self::Duplicated => "session_duplicated",
            Self::Network(_) => "network",
            Self::PeerUnavailable(_) => "peer_unavailable",
            Self::Other(_) => "telegram_error",
        }
    }

    /// Whether reconnecting later can help (a revoked session or a ban needs a person).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::FloodWait(_) | Self::Network(_) | Self::Duplicated | Self::Other(_)
        )
    }
}

/// An update with the resume point to save once it is stored; saving it earlier could lose the update.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedUpdate {
    /// What happened.
    pub event: InboundEvent,
    /// Opaque checkpoint to hand back to [`Connection::checkpoint`] after the update is stored.
    pub checkpoint: Option<Checkpoint>,
}

/// A position in an account's update sequence, opaque to everything but the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint(pub serde_json::Value);

/// How much history to import on an account's first connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryLimits {
    /// Most recent dialogs.
    pub dialogs: u32,
    /// Most recent messages per dialog.
    pub messages_per_dialog: u32,
}

/// What to collect from an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CollectScope {
    /// Groups and supergroups.
    pub include_groups: bool,
    /// Broadcast channels.
    pub include_channels: bool,
}

impl CollectScope {
    /// What `account` is set to collect.
    pub fn of(account: &crate::account::Account) -> Self {
        Self {
            include_groups: account.include_groups,
            include_channels: account.include_channels,
        }
    }
}

/// A live connection of one personal account. Dropping it disconnects in the background; [`Connection::close`]
/// disconnects and waits until the socket is closed and the session saved, so the account can be connected
/// again (here or elsewhere) without two connections overlapping.
pub trait Connection: Send + Sync {
    /// The next update; an error means the connection is unusable and must be rebuilt.
    fn next_update(&self) -> BoxFuture<'_, Result<ReceivedUpdate, UserError>>;
    /// Disconnects and waits until the connection is gone and the session saved. Later calls do nothing.
    fn close(&self) -> BoxFuture<'_, ()>;
    /// Records that every update up to `checkpoint` is stored, so a reconnect resumes after it.
    fn checkpoint(&self, checkpoint: Checkpoint) -> BoxFuture<'_, Result<(), UserError>>;
    /// A cheap round trip proving the connection is alive (used by the watchdog).
    fn ping(&self) -> BoxFuture<'_, Result<(), UserError>>;
    /// Sends a message. `random_id` is fixed per outgoing message: Telegram drops a repeated one, so a retry
    /// after a crash never posts twice.
    fn send(&self, message: OutgoingMessage, random_id: i64) -> SendFuture<'_>;
    /// Marks the chat read in Telegram up to `max_id`.
    fn mark_read(&self, peer_id: PeerId, max_id: TelegramMessageId) -> BoxFuture<'_, Result<(), UserError>>;
    /// Downloads the media of a message, re-fetching the message first (file references expire). Refuses
    /// files larger than `max_bytes` with [`UserError::PeerUnavailable`] naming the size.
    fn download(
        &self,
        peer_id: PeerId,
        telegram_message_id: TelegramMessageId,
        max_bytes: u64,
    ) -> BoxFuture<'_, Result<DownloadedFile, UserError>>;
    /// Recent history, oldest first within each dialog, as new-message events.
    fn history(
        &self,
        limits: HistoryLimits,
        scope: CollectScope,
    ) -> BoxFuture<'_, Result<Vec<InboundEvent>, UserError>>;
}

/// Keeps the session of each personal account (auth keys, data-centre options, peer cache, update state),
/// sealed in the database. The gateway reads and writes it; nothing else looks inside.
pub trait SessionVault: Send + Sync {
    /// The stored session of `account_id`, if any.
    fn load(&self, account_id: AccountId) -> BoxFuture<'_, Result<Option<Vec<u8>>, String>>;
    /// Replaces the stored session of `account_id`.
    fn save(&self, account_id: AccountId, session: Vec<u8>) -> BoxFuture<'_, Result<(), String>>;
    /// Forgets the stored session of `account_id` (after a log-out or a revocation).
    fn clear(&self, account_id: AccountId) -> BoxFuture<'_, Result<(), String>>;
}

/// The name of the lease held by the instance connected to personal account `account_id`.
pub fn connection_lease(account_id: AccountId) -> String {
    format!("personal:{account_id}")
}

/// A live connection and the account's profile as Telegram reports it on connecting.
pub type Connected = (Arc<dyn Connection>, Profile);

/// Everything the inbox asks of Telegram for personal accounts.
pub trait UserGateway: Send + Sync + 'static {
    /// Starts a phone login: sends the code and remembers the fresh session.
    fn send_code(&self, account: &AccountHandle) -> BoxFuture<'_, Result<CodeSent, UserError>>;
    /// Asks Telegram to deliver the code again (switching to its `next_type`).
    fn resend_code(
        &self,
        account: &AccountHandle,
        phone_code_hash: &Sensitive,
    ) -> BoxFuture<'_, Result<CodeSent, UserError>>;
    /// Signs in with the code received.
    fn sign_in(
        &self,
        account: &AccountHandle,
        phone_code_hash: &Sensitive,
        code: &str,
    ) -> BoxFuture<'_, Result<LoginOutcome, UserError>>;
    /// Finishes a login with the cloud password.
    fn check_password(
        &self,
        account: &AccountHandle,
        password: &Sensitive,
    ) -> BoxFuture<'_, Result<LoginOutcome, UserError>>;
    /// Runs a QR login to its end, reporting each token to show; ends authenticated, asking for the password,
    /// or failed. Dropping the future cancels it.
    fn qr_login(
        &self,
        account: &AccountHandle,
        progress: Arc<dyn QrProgress>,
    ) -> BoxFuture<'_, Result<LoginOutcome, UserError>>;
    /// Connects an authorised account, catching up on what happened while it was away.
    fn connect(
        &self,
        account: &AccountHandle,
        scope: CollectScope,
    ) -> BoxFuture<'_, Result<Connected, UserError>>;
    /// Logs the stored session out at Telegram and forgets it. Call only while the account is not connected.
    fn log_out(&self, account: &AccountHandle) -> BoxFuture<'_, Result<(), UserError>>;
}

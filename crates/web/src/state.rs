//! Shared state of the web layer: the use cases, the store for reads and admin changes, the event bus and the
//! relay's ordered feed, the settings it needs and the login limiter.

use std::sync::Arc;
use std::time::Instant;

use crm_bus::Relay;
use crm_core::event::EventBus;
use crm_core::inbox::{Courier, Inbox};
use crm_core::personal::UserGateway;
use crm_store::Store;
use crm_telegram_bot::BotApi;

use crate::rate_limit::{LoginLimiter, PasswordWork};
use crate::webhook_accounts::WebhookAccounts;

/// Settings of the HTTP layer, taken from the server configuration.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Host names accepted in the `Host` header (`*` for any, `.example.com` for a domain and its subdomains).
    pub allowed_hosts: Vec<String>,
    /// Origins allowed to call the API from a browser.
    pub cors_allowed_origins: Vec<String>,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_forwarded_for: bool,
    /// Largest JSON body accepted, in bytes.
    pub max_json_body: usize,
    /// Where media files live.
    pub media_dir: std::path::PathBuf,
    /// Largest upload accepted, in bytes.
    pub max_upload_bytes: usize,
    /// Bytes of unsent uploads one user may hold.
    pub upload_quota_bytes: u64,
    /// Frames a WebSocket connection may have waiting before it is closed as too slow.
    pub ws_queue: usize,
    /// How long a removal or a new login waits for the instance connected to the account to let it go.
    pub disconnect_wait: std::time::Duration,
    /// Where a bot's `forward_url` may point.
    pub forward_destinations: crm_core::destinations::Destinations,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            cors_allowed_origins: Vec::new(),
            trust_forwarded_for: false,
            max_json_body: 1024 * 1024,
            media_dir: std::path::PathBuf::from("data/media"),
            max_upload_bytes: 50 * 1024 * 1024,
            upload_quota_bytes: 512 * 1024 * 1024,
            ws_queue: crate::ws::QUEUE,
            disconnect_wait: std::time::Duration::from_secs(30),
            forward_destinations: crm_core::destinations::Destinations::default(),
        }
    }
}

/// What the web layer is built from.
pub struct WebParts {
    /// The database, for reads and admin changes.
    pub store: Store,
    /// The message path's use cases.
    pub inbox: Arc<Inbox>,
    /// The job side of the outbox, for its counters.
    pub courier: Arc<Courier>,
    /// Notices between parts and instances.
    pub bus: Arc<dyn EventBus>,
    /// The ordered feed of committed events.
    pub relay: Arc<Relay>,
    /// The Bot API client.
    pub bot_api: BotApi,
    /// Personal accounts' way to Telegram (MTProto), for the login flows and log-outs.
    pub user_gateway: Arc<dyn UserGateway>,
}

/// Everything handlers share; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database, for reads and admin changes.
    pub store: Store,
    /// The message path's use cases.
    pub inbox: Arc<Inbox>,
    /// The job side of the outbox, for its counters.
    pub courier: Arc<Courier>,
    /// Notices between parts and instances.
    pub bus: Arc<dyn EventBus>,
    /// The ordered feed of committed events, for the WebSocket hub.
    pub relay: Arc<Relay>,
    /// HTTP settings.
    pub settings: Arc<WebSettings>,
    /// Login throttle.
    pub login_limiter: Arc<LoginLimiter>,
    /// The bound on password hashes computed at once.
    pub password_work: Arc<PasswordWork>,
    /// The Bot API client.
    pub bot_api: BotApi,
    /// Personal accounts' way to Telegram (MTProto), for the login flows and log-outs.
    pub user_gateway: Arc<dyn UserGateway>,
    /// QR logins running on this instance, and the sync throttle.
    pub accounts_runtime: Arc<crate::api::accounts::personal::common::AccountRuntime>,
    /// Wakes this instance's bot-polling supervisor after an intake switch.
    pub polling_waker: Arc<tokio::sync::Notify>,
    /// Bot accounts as the webhook checks them, kept between updates.
    pub webhook_accounts: Arc<WebhookAccounts>,
    /// When this instance started.
    pub started_at: Instant,
    /// Server version, for the status page.
    pub version: &'static str,
}

impl AppState {
    /// State over `parts`, with `settings`. Call it inside the runtime: it starts following the relay's feed
    /// for the webhook's account cache.
    pub fn new(parts: WebParts, settings: WebSettings) -> Self {
        let webhook_accounts = Arc::new(WebhookAccounts::default());
        let (_, feed) = parts.relay.subscribe();
        tokio::spawn(Arc::clone(&webhook_accounts).follow(feed));
        Self {
            webhook_accounts,
            store: parts.store,
            inbox: parts.inbox,
            courier: parts.courier,
            bus: parts.bus,
            relay: parts.relay,
            settings: Arc::new(settings),
            login_limiter: Arc::new(LoginLimiter::default()),
            password_work: Arc::new(PasswordWork::per_core()),
            bot_api: parts.bot_api,
            user_gateway: parts.user_gateway,
            accounts_runtime: Arc::default(),
            polling_waker: Arc::new(tokio::sync::Notify::new()),
            started_at: Instant::now(),
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

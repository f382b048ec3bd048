//! Configuration: defaults, then an optional `.env` file, then environment variables (12-factor). Accepts the
//! predecessor's variable names (`SECRET_KEY`, `DEBUG`, `DB_*`, `REDIS_*`, `DJANGO_LOG_LEVEL`, ...).
//!
//! Every setting is declared once here, as a clap argument bound to its variable; `crm config print-default`
//! prints them from the same declarations.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use clap::builder::BoolishValueParser;

/// Every setting, as read from the environment (or flags). `Debug` shows database and Redis URLs without
/// their passwords and never shows a secret.
#[derive(Clone, Args)]
pub struct Settings {
    /// Database URL: `sqlite://path`, `mysql://user:pass@host/db` or `postgres://...`; wins over `DB_*`.
    /// Unset, and with no `DB_NAME`, the embedded SQLite file `DATA_DIR/crm.sqlite3` is used.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// MySQL/MariaDB database name (the predecessor's setting; used when `DATABASE_URL` is unset).
    #[arg(long, env = "DB_NAME")]
    pub db_name: Option<String>,
    /// MySQL/MariaDB user.
    #[arg(long, env = "DB_USER", default_value = "root")]
    pub db_user: String,
    /// MySQL/MariaDB password.
    #[arg(long, env = "DB_PASSWORD", hide_env_values = true, default_value = "")]
    pub db_password: String,
    /// MySQL/MariaDB host.
    #[arg(long, env = "DB_HOST", default_value = "127.0.0.1")]
    pub db_host: String,
    /// MySQL/MariaDB port.
    #[arg(long, env = "DB_PORT", default_value_t = 3306)]
    pub db_port: u16,
    /// Largest number of pooled database connections.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,
    /// Redis URL for fan-out between instances (wins over `REDIS_HOST`).
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,
    /// Redis host (the predecessor's setting).
    #[arg(long, env = "REDIS_HOST")]
    pub redis_host: Option<String>,
    /// Redis port.
    #[arg(long, env = "REDIS_PORT", default_value_t = 6379)]
    pub redis_port: u16,
    /// Key for tokens, sealed secrets and signatures. Unset in embedded mode: generated into `DATA_DIR`.
    #[arg(long, env = "SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Earlier values of `SECRET_KEY`, comma-separated, still accepted to open stored secrets (key rotation).
    #[arg(
        long,
        env = "SECRET_KEY_FALLBACKS",
        hide_env_values = true,
        value_delimiter = ','
    )]
    pub secret_key_fallbacks: Vec<String>,
    /// Development mode: relaxes the start-up checks. A real boolean (`true`/`false`, `1`/`0`, `yes`/`no`).
    #[arg(long, env = "DEBUG", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub debug: bool,
    /// Host names the server answers to, comma-separated (`*` for any, `.example.com` for a domain).
    #[arg(
        long,
        env = "ALLOWED_HOSTS",
        default_value = "localhost,127.0.0.1,::1",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed to call the API, comma-separated (`https://crm.example.com`).
    #[arg(long, env = "CORS_ALLOWED_ORIGINS", default_value = "", value_delimiter = ',')]
    pub cors_allowed_origins: Vec<String>,
    /// Take the client address from `X-Forwarded-For` (only behind your own reverse proxy).
    #[arg(long, env = "TRUST_FORWARDED_FOR", default_value = "false", value_parser = BoolishValueParser::new(), action = clap::ArgAction::Set)]
    pub trust_forwarded_for: bool,
    /// Seconds a client has to send a request's headers; a kept-alive connection silent this long is closed.
    #[arg(long, env = "HTTP_HEADER_TIMEOUT_SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub http_header_timeout_secs: u64,
    /// Open client connections (WebSockets included) at most; 0 derives it from the open-files limit.
    #[arg(long, env = "HTTP_MAX_CONNECTIONS", default_value_t = 0)]
    pub http_max_connections: usize,
    /// Hosts (names or addresses, comma-separated) a bot's `forward_url` may use although they are local or
    /// private, for a bot backend on this machine or network. Anything else must be a public address.
    #[arg(
        long,
        env = "FORWARD_ALLOWED_HOSTS",
        default_value = "",
        value_delimiter = ','
    )]
    pub forward_allowed_hosts: Vec<String>,
    /// Address and port to listen on.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8000")]
    pub listen_addr: SocketAddr,
    /// Where the SQLite file, the generated secret key and media files live.
    #[arg(long, env = "DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Log level (`error`, `warn`, `info`, `debug`, `trace`) or a full filter; `RUST_LOG` wins when set.
    #[arg(long, env = "LOG_LEVEL")]
    pub log_level: Option<String>,
    /// The predecessor's name for `LOG_LEVEL`.
    #[arg(long, env = "DJANGO_LOG_LEVEL")]
    pub django_log_level: Option<String>,
    /// Log format: `auto` (coloured on a terminal, plain otherwise), `pretty`, `plain` or `json`.
    #[arg(long, env = "LOG_FORMAT", default_value = "auto", value_parser = ["auto", "pretty", "plain", "json"])]
    pub log_format: String,
    /// Password of the `admin` user created on the very first start (otherwise a random one is logged once).
    #[arg(long, env = "CRM_ADMIN_PASSWORD", hide_env_values = true)]
    pub crm_admin_password: Option<String>,
    /// Largest file operators may upload, in bytes (the Bot API's upload limit is 50 MB).
    #[arg(long, env = "MAX_UPLOAD_SIZE", default_value_t = 50 * 1024 * 1024)]
    pub max_upload_size: usize,
    /// Bytes of uploads one user may hold that were not sent yet (uploads are sent within seconds of being made;
    /// this bounds what an account can pile up on the disk).
    #[arg(long, env = "UPLOAD_QUOTA_BYTES", default_value_t = 512 * 1024 * 1024)]
    pub upload_quota_bytes: u64,
    /// Hours an upload that was never sent is kept before the daily housekeeping removes it.
    #[arg(long, env = "UPLOAD_RETENTION_HOURS", default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=8760))]
    pub upload_retention_hours: u32,
    /// Attempts before a message that keeps failing to send (5xx, timeouts, flood waits) is marked failed.
    #[arg(long, env = "SEND_MAX_ATTEMPTS", default_value_t = 8, value_parser = clap::value_parser!(i32).range(1..=100))]
    pub send_max_attempts: i32,
    /// Frames a WebSocket client may have waiting before it is closed as too slow (it then resumes).
    #[arg(long, env = "WS_QUEUE_FRAMES", default_value_t = 512, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub ws_queue_frames: u64,
    /// Base URL of the Bot API (Telegram's, or a self-hosted Bot API server).
    #[arg(
        long,
        env = "TELEGRAM_BOT_API_URL",
        default_value = "https://api.telegram.org"
    )]
    pub telegram_bot_api_url: String,
    /// Seconds one Bot API request may take before it counts as failed and is retried.
    #[arg(long, env = "TELEGRAM_BOT_API_TIMEOUT", default_value_t = 30)]
    pub telegram_bot_api_timeout: u64,
    /// Identifies this instance in job claims and leases (default: host name and process id).
    #[arg(long, env = "INSTANCE_ID")]
    pub instance_id: Option<String>,
    /// Personal accounts: media up to this many bytes are downloaded automatically; larger ones on demand.
    #[arg(long, env = "MEDIA_AUTO_DOWNLOAD_MAX_SIZE", default_value_t = 50 * 1024 * 1024)]
    pub media_auto_download_max_size: u64,
    /// Personal accounts: dialogs whose recent history is imported on the first connection.
    #[arg(long, env = "HISTORY_IMPORT_DIALOGS", default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub history_import_dialogs: u32,
    /// Personal accounts: messages imported per dialog on the first connection.
    #[arg(long, env = "HISTORY_IMPORT_MESSAGES", default_value_t = 50, value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub history_import_messages: u32,
    /// Personal accounts: seconds a connection may stay silent before the watchdog pings it (a failed ping
    /// rebuilds the connection and catches up).
    #[arg(long, env = "ACCOUNT_WATCHDOG_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub account_watchdog_secs: u64,
    /// Personal accounts: seconds an instance's hold on an account lasts unless renewed; an orphaned account
    /// moves to another instance after at most this plus a few seconds.
    #[arg(long, env = "ACCOUNT_LEASE_SECS", default_value_t = 20, value_parser = clap::value_parser!(u64).range(2..=600))]
    pub account_lease_secs: u64,
    /// For testing only: connect personal accounts to this `host:port` instead of Telegram's data centres
    /// (Telegram's test servers, or a local stand-in).
    #[arg(long, env = "TELEGRAM_DC_ADDRESS")]
    pub telegram_dc_address: Option<std::net::SocketAddr>,
}

const REDACTED: &str = "[redacted]";

fn redacted(value: &Option<String>) -> Option<&'static str> {
    value.as_ref().map(|_| REDACTED)
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = |value: &Option<String>| value.as_deref().map(redact_url);
        f.debug_struct("Settings")
            .field("database_url", &url(&self.database_url))
            .field("db_name", &self.db_name)
            .field("db_user", &self.db_user)
            .field("db_password", &(!self.db_password.is_empty()).then_some(REDACTED))
            .field("db_host", &self.db_host)
            .field("db_port", &self.db_port)
            .field("db_max_connections", &self.db_max_connections)
            .field("redis_url", &url(&self.redis_url))
            .field("redis_host", &self.redis_host)
            .field("redis_port", &self.redis_port)
            .field("secret_key", &redacted(&self.secret_key))
            .field(
                "secret_key_fallbacks",
                &vec![REDACTED; self.secret_key_fallbacks.len()],
            )
            .field("debug", &self.debug)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("cors_allowed_origins", &self.cors_allowed_origins)
            .field("trust_forwarded_for", &self.trust_forwarded_for)
            .field("http_header_timeout_secs", &self.http_header_timeout_secs)
            .field("http_max_connections", &self.http_max_connections)
            .field("forward_allowed_hosts", &self.forward_allowed_hosts)
            .field("listen_addr", &self.listen_addr)
            .field("data_dir", &self.data_dir)
            .field("log_level", &self.log_level)
            .field("django_log_level", &self.django_log_level)
            .field("log_format", &self.log_format)
            .field("crm_admin_password", &redacted(&self.crm_admin_password))
            .field("max_upload_size", &self.max_upload_size)
            .field("upload_quota_bytes", &self.upload_quota_bytes)
            .field("upload_retention_hours", &self.upload_retention_hours)
            .field("send_max_attempts", &self.send_max_attempts)
            .field("ws_queue_frames", &self.ws_queue_frames)
            .field("telegram_bot_api_url", &self.telegram_bot_api_url)
            .field("telegram_bot_api_timeout", &self.telegram_bot_api_timeout)
            .field("instance_id", &self.instance_id)
            .field("media_auto_download_max_size", &self.media_auto_download_max_size)
            .field("history_import_dialogs", &self.history_import_dialogs)
            .field("history_import_messages", &self.history_import_messages)
            .field("account_watchdog_secs", &self.account_watchdog_secs)
            .field("account_lease_secs", &self.account_lease_secs)
            .field("telegram_dc_address", &self.telegram_dc_address)
            .finish()
    }
}

fn redact_url(url: &str) -> String {
    crm_store::connect::redact_url(url)
}

/// Where the database is, resolved from the settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseChoice {
    /// The URL to connect to.
    pub url: String,
    /// True for the embedded SQLite default.
    pub embedded: bool,
}

fn encode(part: &str) -> String {
    url::form_urlencoded::byte_serialize(part.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

impl Settings {
    /// `DATABASE_URL`, else MySQL from `DB_*` when `DB_NAME` is set, else SQLite in `DATA_DIR`.
    pub fn database(&self) -> DatabaseChoice {
        if let Some(url) = self.database_url.as_deref().filter(|u| !u.trim().is_empty()) {
            let url = url.trim();
            let url = if url == "sqlite:" || url == "sqlite://" {
                self.default_sqlite_url()
            } else {
                url.to_owned()
            };
            let embedded = url.starts_with("sqlite:");
            return DatabaseChoice { url, embedded };
        }
        if let Some(name) = self.db_name.as_deref().filter(|n| !n.is_empty()) {
            let credentials = if self.db_password.is_empty() {
                encode(&self.db_user)
            } else {
                format!("{}:{}", encode(&self.db_user), encode(&self.db_password))
            };
            let url = format!(
                "mysql://{credentials}@{}:{}/{}",
                self.db_host,
                self.db_port,
                encode(name)
            );
            return DatabaseChoice { url, embedded: false };
        }
        DatabaseChoice {
            url: self.default_sqlite_url(),
            embedded: true,
        }
    }

    fn default_sqlite_url(&self) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            self.data_dir.join("crm.sqlite3").display()
        )
    }

    /// `REDIS_URL`, else one built from `REDIS_HOST`/`REDIS_PORT`.
    pub fn redis(&self) -> Option<String> {
        self.redis_url.clone().filter(|u| !u.is_empty()).or_else(|| {
            self.redis_host
                .as_ref()
                .filter(|h| !h.is_empty())
                .map(|h| format!("redis://{h}:{}", self.redis_port))
        })
    }

    /// `LOG_LEVEL`, else `DJANGO_LOG_LEVEL`, else `info`.
    pub fn log_filter(&self) -> String {
        self.log_level
            .clone()
            .or_else(|| self.django_log_level.clone())
            .unwrap_or_else(|| "info".to_owned())
            .to_lowercase()
    }

    /// This instance's id.
    pub fn instance_id(&self) -> String {
        self.instance_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_default();
            let host = if host.is_empty() { "crm".to_owned() } else { host };
            format!("{host}-{}", std::process::id())
        })
    }

    /// Settings from the environment alone, no flags (for tests and tools).
    pub fn defaults() -> Self {
        use clap::Parser;
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            settings: Settings,
        }
        // Every field has a default or is optional, so parsing no arguments always succeeds.
        Only::try_parse_from(["crm"])
            .map(|only| only.settings)
            .unwrap_or_else(|error| unreachable!("{error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Settings {
        let mut settings = Settings::defaults();
        settings.database_url = None;
        settings.db_name = None;
        settings.data_dir = PathBuf::from("/srv/crm");
        settings
    }

    #[test]
    fn nothing_configured_means_embedded_sqlite_in_the_data_dir() {
        let choice = base().database();
        assert!(choice.embedded);
        assert_eq!(choice.url, "sqlite:///srv/crm/crm.sqlite3?mode=rwc");
    }

    #[test]
    fn predecessor_db_variables_mean_mysql_with_escaped_credentials() {
        let mut settings = base();
        settings.db_name = Some("crm".into());
        settings.db_user = "crm user".into();
        settings.db_password = "p@ss:/word".into();
        settings.db_host = "db.local".into();
        let choice = settings.database();
        assert!(!choice.embedded);
        assert_eq!(
            choice.url,
            "mysql://crm%20user:p%40ss%3A%2Fword@db.local:3306/crm"
        );
    }

    #[test]
    fn database_url_wins_over_db_variables() {
        let mut settings = base();
        settings.db_name = Some("crm".into());
        settings.database_url = Some("postgres://localhost/crm".into());
        assert_eq!(
            settings.database(),
            DatabaseChoice {
                url: "postgres://localhost/crm".into(),
                embedded: false
            }
        );
        settings.database_url = Some("sqlite:".into());
        assert!(settings.database().embedded);
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        let mut settings = base();
        settings.database_url = Some("mysql://crm:db-hunter2@db/crm".into());
        settings.redis_url = Some("redis://:redis-hunter2@cache:6379/0".into());
        settings.db_password = "db-password-hunter2".into();
        settings.secret_key = Some("secret-key-hunter2".into());
        settings.secret_key_fallbacks = vec!["old-key-hunter2".into()];
        settings.crm_admin_password = Some("admin-hunter2".into());
        let shown = format!("{settings:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("mysql://crm:***@db/crm"), "{shown}");
        assert!(shown.contains(REDACTED));
    }

    #[test]
    fn redis_and_log_level_fall_back_to_predecessor_names() {
        let mut settings = base();
        assert_eq!(settings.redis(), None);
        settings.redis_host = Some("cache".into());
        assert_eq!(settings.redis().as_deref(), Some("redis://cache:6379"));
        settings.redis_url = Some("redis://other:1/0".into());
        assert_eq!(settings.redis().as_deref(), Some("redis://other:1/0"));
        settings.django_log_level = Some("DEBUG".into());
        assert_eq!(settings.log_filter(), "debug");
        settings.log_level = Some("warn".into());
        assert_eq!(settings.log_filter(), "warn");
    }
}

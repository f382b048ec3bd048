//! Building and running the whole server from its settings: database, migrations, first admin, event bus,
//! job runner and the HTTP API, with a graceful stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use crm_bus::{InProcessBus, RedisBus, Relay};
use crm_core::destinations::Destinations;
use crm_core::event::EventBus;
use crm_core::inbox::{Courier, CourierSettings, Inbox, InboxSettings};
use crm_core::outbound::Channels;
use crm_core::personal::{HistoryLimits, SessionVault, UserGateway};
use crm_core::ports::{Accounts, Clock, Database, EventLog, JobQueue, Leases, MediaStore, SystemClock};
use crm_core::secrets::SecretBox;
use crm_jobs::connected::ConnectedAccounts;
use crm_jobs::forward::Forwarder;
use crm_jobs::handlers::{Handlers, Housekeeping};
use crm_jobs::personal_channel::PersonalChannel;
use crm_jobs::polling::BotPolling;
use crm_jobs::supervisor::{AccountSupervisor, SupervisorParts, SupervisorSettings};
use crm_jobs::{Runner, RunnerSettings};
use crm_store::Store;
use crm_store::connect::{PoolSettings, redact_url};
use crm_store::files::MediaDir;
use crm_store::repo::personal::StoredSessions;
use crm_telegram_bot::{BotApi, BotChannel};
use crm_telegram_user::{GatewaySettings, GrammersGateway};
use crm_web::serve::ServeLimits;
use crm_web::{AppState, WebParts, WebSettings};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::bootstrap;
use crate::config::Settings;
use crate::secret_key;

/// How often bots in polling intake are looked for (an intake switch through the API wakes it at once).
const POLL_SCAN_EVERY: Duration = Duration::from_secs(10);

/// How long in-flight work may take to finish after a stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// A built server, bound to its port, ready to run.
pub struct Application {
    listener: TcpListener,
    router: axum::Router,
    store: Store,
    relay: Arc<Relay>,
    runner: Runner,
    polling: Arc<BotPolling>,
    supervisor: Arc<AccountSupervisor>,
    courier: Arc<Courier>,
    serve_limits: ServeLimits,
}

/// The HTTP server's limits from the settings. The open-files limit is first raised as far as the system allows
/// (as servers commonly do), then the connection cap is kept under it.
fn serve_limits(settings: &Settings) -> ServeLimits {
    let descriptors = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(error) => {
            tracing::debug!(%error, "the open-files limit is unknown");
            None
        }
    };
    let max_connections = ServeLimits::connections_allowed(settings.http_max_connections, descriptors);
    tracing::info!(
        max_connections,
        open_files_limit = descriptors,
        "client connections are capped"
    );
    ServeLimits {
        header_timeout: Duration::from_secs(settings.http_header_timeout_secs),
        max_connections,
        shutdown_grace: SHUTDOWN_GRACE,
    }
}

/// Builds the personal-account gateway over the vault that keeps sessions in the database.
pub type GatewayFactory = Box<dyn FnOnce(Arc<dyn SessionVault>) -> Arc<dyn UserGateway> + Send>;

/// The MTProto gateway (grammers), talking to Telegram or, for testing, to `TELEGRAM_DC_ADDRESS`.
pub fn grammers_gateway(settings: &Settings) -> GatewayFactory {
    let gateway_settings = GatewaySettings {
        dc_override: settings.telegram_dc_address,
        ..GatewaySettings::default()
    };
    Box::new(move |vault| Arc::new(GrammersGateway::new(vault, gateway_settings)))
}

/// Connects to the configured database and applies pending migrations, logging each step.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let database = settings.database();
    if database.embedded {
        crm_store::files::create_private_dir(&settings.data_dir)
            .with_context(|| format!("cannot create DATA_DIR {}", settings.data_dir.display()))?;
    }
    let key = secret_key::resolve(
        settings.secret_key.as_deref(),
        &settings.data_dir,
        database.embedded,
        settings.debug,
    )?;
    let secrets = SecretBox::new(&key, &settings.secret_key_fallbacks);
    let pool = PoolSettings {
        max_connections: settings.db_max_connections,
        ..PoolSettings::default()
    };
    tracing::info!(database = %redact_url(&database.url), "connecting to the database");
    let store = Store::connect(&database.url, &pool, secrets)
        .await
        .with_context(|| format!("cannot open the database {}", redact_url(&database.url)))?;
    let applied = store
        .migrate(|index, total, name| tracing::info!(migration = name, "applying migration {index}/{total}"))
        .await
        .context("database migration failed")?;
    tracing::info!(
        applied,
        backend = store.backend().as_str(),
        "database schema is up to date"
    );
    Ok(store)
}

impl Application {
    /// Opens the database, migrates it, creates the first admin if there is none, and binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let gateway = grammers_gateway(&settings);
        Self::build_with(settings, gateway).await
    }

    /// Like [`Application::build`], with personal accounts reaching Telegram through the gateway `gateway` builds.
    pub async fn build_with(settings: Settings, gateway: GatewayFactory) -> anyhow::Result<Self> {
        let store = open_store(&settings).await?;
        bootstrap::ensure_first_admin(&store, settings.crm_admin_password.as_deref()).await?;
        let bus: Arc<dyn EventBus> = match settings.redis() {
            Some(redis) => {
                tracing::info!(redis = %redact_url(&redis), "events go through Redis to every instance");
                RedisBus::start(&redis, &settings.instance_id()).map_err(anyhow::Error::msg)?
            }
            None => Arc::new(InProcessBus::default()),
        };
        let web = web_settings(&settings);
        let media_dir = web.media_dir.clone();
        let bot_api = BotApi::new(
            &settings.telegram_bot_api_url,
            Duration::from_secs(settings.telegram_bot_api_timeout),
        )
        .context("Bot API client")?;
        let database: Arc<dyn Database> = Arc::new(store.clone());
        let accounts: Arc<dyn Accounts> = Arc::new(store.clone());
        let leases: Arc<dyn Leases> = Arc::new(store.clone());
        let queue: Arc<dyn JobQueue> = Arc::new(store.clone());
        let event_log: Arc<dyn EventLog> = Arc::new(store.clone());
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let inbox_settings = InboxSettings {
            personal_download_limit: i64::try_from(settings.media_auto_download_max_size).unwrap_or(i64::MAX),
            send_max_attempts: settings.send_max_attempts,
        };
        let inbox = Arc::new(Inbox::new(
            Arc::clone(&database),
            Arc::clone(&clock),
            inbox_settings.clone(),
        ));
        let relay = Relay::new(event_log, Arc::clone(&bus), Arc::clone(&store.signals().events));
        let connected = ConnectedAccounts::default();
        let channels = Channels::new(
            Arc::new(BotChannel::new(bot_api.clone(), Arc::clone(&accounts))),
            Arc::new(PersonalChannel::new(connected.clone())),
        );
        let media: Arc<dyn MediaStore> = Arc::new(MediaDir::new(media_dir));
        let courier = Arc::new(Courier::new(
            database,
            clock,
            channels,
            Arc::clone(&media),
            CourierSettings {
                inbox: inbox_settings,
                ..CourierSettings::default()
            },
        ));
        let handlers = Handlers::new(
            Arc::clone(&courier),
            Forwarder::new(Arc::clone(&accounts), forward_destinations(&settings))
                .map_err(anyhow::Error::msg)?,
            Arc::clone(&queue),
            Housekeeping {
                media,
                unsent_upload_retention: Duration::from_secs(
                    u64::from(settings.upload_retention_hours) * 3600,
                ),
            },
        );
        let runner = Runner::new(
            queue,
            handlers,
            RunnerSettings::new(settings.instance_id()),
            Arc::clone(&store.signals().jobs),
            connected.clone(),
        );
        let user_gateway = gateway(Arc::new(StoredSessions::new(store.clone())));
        let state = AppState::new(
            WebParts {
                store: store.clone(),
                inbox: Arc::clone(&inbox),
                courier: Arc::clone(&courier),
                bus: Arc::clone(&bus),
                relay: Arc::clone(&relay),
                bot_api: bot_api.clone(),
                user_gateway: Arc::clone(&user_gateway),
            },
            web,
        );
        let supervisor = AccountSupervisor::new(
            SupervisorParts {
                inbox: Arc::clone(&inbox),
                accounts: Arc::clone(&accounts),
                leases: Arc::clone(&leases),
                gateway: user_gateway,
                bus,
                connected,
            },
            supervisor_settings(&settings),
        );
        let polling = BotPolling::new(
            inbox,
            accounts,
            leases,
            bot_api,
            settings.instance_id(),
            POLL_SCAN_EVERY,
            Arc::clone(&state.polling_waker),
        );
        let router = crm_web::router(state);
        let listener = TcpListener::bind(settings.listen_addr)
            .await
            .with_context(|| format!("cannot listen on {}", settings.listen_addr))?;
        Ok(Self {
            serve_limits: serve_limits(&settings),
            listener,
            router,
            store,
            relay,
            runner,
            polling,
            supervisor,
            courier,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The database handle.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The job side of the outbox (its counters tell how many bot sends were left unconfirmed).
    pub fn courier(&self) -> Arc<Courier> {
        Arc::clone(&self.courier)
    }

    /// Serves until `shutdown` completes, then stops accepting, lets in-flight requests and jobs finish
    /// (up to a grace period) and closes the database pool.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> anyhow::Result<()> {
        let address = self.listener.local_addr()?;
        let (stop_jobs, jobs_stopped) = tokio::sync::watch::channel(false);
        let relay = tokio::spawn(self.relay.run(jobs_stopped.clone()));
        let polling = tokio::spawn(self.polling.run(jobs_stopped.clone()));
        let supervisor = tokio::spawn(self.supervisor.run(jobs_stopped.clone()));
        let runner = tokio::spawn(self.runner.run(jobs_stopped));
        let service = self.router.map_request(crm_web::middleware::append_api_slash);
        tracing::info!(%address, "listening; API at http://{address}/api/");
        crm_web::serve::serve(self.listener, service, self.serve_limits, shutdown).await;
        tracing::info!("stopped accepting requests; finishing background work");
        stop_jobs.send_replace(true);
        if tokio::time::timeout(SHUTDOWN_GRACE, polling).await.is_err() {
            tracing::warn!("bot pollers did not stop in time; their leases lapse on their own");
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, supervisor).await.is_err() {
            tracing::warn!("personal accounts did not disconnect in time; their leases lapse on their own");
        }
        if tokio::time::timeout(SHUTDOWN_GRACE, runner).await.is_err() {
            tracing::warn!(
                "job runner did not stop in time; its claimed jobs will be retried after their lock lapses"
            );
        }
        // Last: events committed by the work above still reach the connected clients.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, relay).await;
        self.store.close().await.context("closing the database pool")?;
        tracing::info!("bye");
        Ok(())
    }
}

fn forward_destinations(settings: &Settings) -> Destinations {
    Destinations::new(settings.forward_allowed_hosts.iter().cloned())
}

fn web_settings(settings: &Settings) -> WebSettings {
    WebSettings {
        allowed_hosts: settings
            .allowed_hosts
            .iter()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .collect(),
        cors_allowed_origins: settings
            .cors_allowed_origins
            .iter()
            .map(|o| o.trim().to_owned())
            .filter(|o| !o.is_empty())
            .collect(),
        trust_forwarded_for: settings.trust_forwarded_for,
        media_dir: settings.data_dir.join("media"),
        max_upload_bytes: settings.max_upload_size,
        upload_quota_bytes: settings.upload_quota_bytes,
        ws_queue: usize::try_from(settings.ws_queue_frames).unwrap_or(crm_web::ws::QUEUE),
        forward_destinations: forward_destinations(settings),
        ..WebSettings::default()
    }
}

fn supervisor_settings(settings: &Settings) -> SupervisorSettings {
    let mut supervision = SupervisorSettings::new(settings.instance_id());
    supervision.lease_ttl = Duration::from_secs(settings.account_lease_secs);
    supervision.renew_every = Duration::from_secs(settings.account_lease_secs).div_f64(4.0);
    supervision.scan_every = supervision.renew_every;
    supervision.watchdog_idle = Duration::from_secs(settings.account_watchdog_secs);
    supervision.history = HistoryLimits {
        dialogs: settings.history_import_dialogs,
        messages_per_dialog: settings.history_import_messages,
    };
    supervision
}

/// Completes on `SIGTERM` or Ctrl-C.
pub async fn stop_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("Ctrl-C received, shutting down"),
        _ = terminate => tracing::info!("SIGTERM received, shutting down"),
    }
}

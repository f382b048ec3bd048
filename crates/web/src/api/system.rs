//! Health, status and operations: `GET /api/health/` for load balancers, `GET /api/system/status/` for admins,
//! `POST /api/system/control/` (restart, start or stop every personal account at run time) and `POST /api/sync/`
//! (connected personal accounts catch up now).

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use crm_core::event::AccountAction;
use crm_store::repo::{personal, stats};
use serde::Serialize;
use utoipa::ToSchema;

use crate::api::accounts::personal::{common, lifecycle};
use crate::auth::{Admin, CurrentUser};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// How long the health check waits for the database.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

/// Health of this instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `healthy`, `degraded` (serving, but events may not reach other instances) or `unhealthy`.
    pub status: &'static str,
    /// Server time.
    pub timestamp: DateTime<Utc>,
    /// `ok` or `unavailable`.
    pub database: &'static str,
    /// `ok`, or `degraded` when Redis is unreachable.
    pub bus: &'static str,
}

/// Answers 200 `healthy` when the database answers, 503 `unhealthy` otherwise. No authentication.
#[utoipa::path(get, path = "/api/health/", tag = "system",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(state): State<AppState>) -> Response {
    let database_ok = matches!(
        tokio::time::timeout(HEALTH_TIMEOUT, state.store.ping()).await,
        Ok(Ok(()))
    );
    let bus_degraded = state.bus.degraded();
    let body = Health {
        status: match (database_ok, bus_degraded) {
            (false, _) => "unhealthy",
            (true, true) => "degraded",
            (true, false) => "healthy",
        },
        timestamp: Utc::now(),
        database: if database_ok { "ok" } else { "unavailable" },
        bus: if bus_degraded { "degraded" } else { "ok" },
    };
    let status = if database_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Account counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountCounts {
    /// All accounts.
    pub total: u64,
    /// Accounts per status.
    pub by_status: BTreeMap<String, u64>,
}

/// Message counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageCounts {
    /// All messages.
    pub total: u64,
    /// Outgoing messages that failed.
    pub failed: u64,
}

/// What the system holds and how this instance runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct SystemStatus {
    /// `healthy`, or `degraded` when events may not reach other instances.
    pub status: &'static str,
    /// Server version.
    pub version: &'static str,
    /// Seconds since this instance started.
    pub uptime_seconds: u64,
    /// Database backend: `sqlite`, `mysql` or `postgres`.
    pub backend: &'static str,
    /// Accounts.
    pub accounts: AccountCounts,
    /// Chats.
    pub chats: u64,
    /// Messages.
    pub messages: MessageCounts,
    /// Jobs waiting or running.
    pub queue_depth: u64,
    /// Updates knowingly ignored by this instance since it started (every intake path), by kind.
    pub ignored_updates: BTreeMap<String, u64>,
    /// Bot replies this instance marked failed since it started because Telegram may have received them (an
    /// attempt whose answer never came): the one window where a send cannot be confirmed. Each shows its reason.
    pub unconfirmed_sends: u64,
    /// Server time.
    pub timestamp: DateTime<Utc>,
}

/// Counts and facts for admins.
#[utoipa::path(get, path = "/api/system/status/", tag = "system", security(("token" = [])),
    responses((status = 200, body = SystemStatus), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody)))]
pub async fn status(State(state): State<AppState>, _admin: Admin) -> ApiResult<Json<SystemStatus>> {
    let counts = stats::system_counts(&state.store).await?;
    Ok(Json(SystemStatus {
        status: if state.bus.degraded() {
            "degraded"
        } else {
            "healthy"
        },
        version: state.version,
        uptime_seconds: state.started_at.elapsed().as_secs(),
        backend: state.store.backend().as_str(),
        accounts: AccountCounts {
            total: counts.accounts_by_status.values().sum(),
            by_status: counts.accounts_by_status,
        },
        chats: counts.chats,
        messages: MessageCounts {
            total: counts.messages,
            failed: counts.failed_messages,
        },
        queue_depth: counts.queue_depth,
        ignored_updates: state.inbox.counters().ignored(),
        unconfirmed_sends: state.courier.unconfirmed(),
        timestamp: Utc::now(),
    }))
}

/// What to do with every personal account.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ControlAction {
    /// Disconnect and connect again every enabled account.
    #[default]
    RestartAll,
    /// Start every logged-in account.
    StartAll,
    /// Stop every account.
    StopAll,
}

/// A control request; an empty body means `restart_all`.
#[derive(Debug, Default, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// The action (default `restart_all`).
    #[serde(default)]
    pub action: ControlAction,
}

/// The result of a control request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ControlDone {
    /// `restarted`, `started` or `stopped`.
    pub status: &'static str,
    /// Human message.
    pub message: String,
    /// Personal accounts concerned.
    pub accounts: usize,
}

/// Restarts, starts or stops every personal account at run time (nothing else restarts).
#[utoipa::path(post, path = "/api/system/control/", tag = "system", request_body = Control, security(("token" = [])),
    responses((status = 200, body = ControlDone), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody)))]
pub async fn control(
    State(state): State<AppState>,
    _admin: Admin,
    body: axum::body::Bytes,
) -> ApiResult<Json<ControlDone>> {
    let control: Control = if body.iter().all(u8::is_ascii_whitespace) {
        Control::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|error| ApiError::invalid("invalid_json", format!("Invalid JSON body: {error}")))?
    };
    let accounts = personal::all_personal(&state.store).await?;
    let mut concerned = 0;
    for account in accounts.iter().filter(|a| a.removed_at.is_none()) {
        match control.action {
            ControlAction::StopAll => {
                lifecycle::stop(&state, account).await?;
            }
            ControlAction::StartAll if account.has_session => {
                lifecycle::start(&state, account).await?;
            }
            ControlAction::RestartAll if account.enabled && account.has_session => {
                lifecycle::restart(&state, account).await?;
            }
            ControlAction::StartAll | ControlAction::RestartAll => continue,
        }
        concerned += 1;
    }
    let (status, verb) = match control.action {
        ControlAction::RestartAll => ("restarted", "restarted"),
        ControlAction::StartAll => ("started", "started"),
        ControlAction::StopAll => ("stopped", "stopped"),
    };
    Ok(Json(ControlDone {
        status,
        message: format!("{concerned} personal account(s) {verb}"),
        accounts: concerned,
    }))
}

/// When the sync was triggered.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncTriggered {
    /// `sync_triggered`.
    pub status: &'static str,
    /// Now.
    pub timestamp: DateTime<Utc>,
}

/// Asks every connected personal account to catch up on missed updates now (the predecessor's UI calls this
/// every few seconds; repeated calls within a few seconds are merged).
#[utoipa::path(post, path = "/api/sync/", tag = "system", security(("token" = [])),
    responses((status = 200, body = SyncTriggered), (status = 401, body = crate::error::ErrorBody)))]
pub async fn sync(State(state): State<AppState>, _caller: CurrentUser) -> Json<SyncTriggered> {
    if state.accounts_runtime.sync_due() {
        common::command(&state, None, AccountAction::Sync);
    }
    Json(SyncTriggered {
        status: "sync_triggered",
        timestamp: Utc::now(),
    })
}

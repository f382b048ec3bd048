//! Health and status: `GET /api/health/` for load balancers and `GET /api/system/status/` for admins.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use crm_store::repo::stats;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Admin;
use crate::error::ApiResult;
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
    /// Webhook updates knowingly ignored by this instance since it started, by kind.
    pub ignored_updates: BTreeMap<String, u64>,
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
        ignored_updates: state.intake.ignored(),
        timestamp: Utc::now(),
    }))
}

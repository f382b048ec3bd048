//! The QR login: `POST /api/accounts/{id}/qr_login/` answers with the first code as an SVG, then runs on in a
//! task of its own, pushing every fresh code (before the previous one expires) and the outcome to admins as
//! `account_status` events.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use chrono::{DateTime, Utc};
use crm_core::account::AccountStatus;
use crm_core::event::DomainEvent;
use crm_core::ids::AccountId;
use crm_core::personal::{QrProgress, QrToken, UserError};
use crm_store::repo::accounts as account_repo;
use crm_store::repo::personal;
use serde::Serialize;
use serde_json::json;
use tokio::sync::watch;
use utoipa::ToSchema;

use super::common::{
    audit_login, disconnect, finish_login, handle_of, is_logged_in, login_failed, personal_account,
};
use crate::auth::{Admin, ClientAddr};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path};
use crate::state::AppState;

/// How long `qr_login` waits for Telegram's first token.
const FIRST_QR_TOKEN: Duration = Duration::from_secs(15);

/// A QR code to scan in Telegram (Settings → Devices → Link Desktop Device).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QrShown {
    /// The account being logged in.
    pub account_id: i64,
    /// `qr_required`; `already_authenticated`, or `password_required` when the login ended before showing a code.
    pub status: &'static str,
    /// The code as an SVG image.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub qr_svg: Option<String>,
    /// `tg://login?token=…`, what the code encodes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_url: Option<String>,
    /// When Telegram stops accepting this code; a fresh one is pushed as `account_status` before that.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

/// Renders `login_url` as an SVG QR code.
pub fn qr_svg(login_url: &str) -> ApiResult<String> {
    let code =
        qrcode::QrCode::new(login_url.as_bytes()).map_err(|error| ApiError::Internal(error.to_string()))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build())
}

/// Shows each token: keeps the latest for the waiting request and pushes it to admins.
struct QrPublisher {
    state: AppState,
    account_id: AccountId,
    latest: watch::Sender<Option<QrToken>>,
}

impl QrProgress for QrPublisher {
    fn token(&self, token: QrToken) {
        self.latest.send_replace(Some(token.clone()));
        let state = self.state.clone();
        let account_id = self.account_id;
        tokio::spawn(async move {
            let Ok(Some(account)) = account_repo::view(&state.store, account_id).await else {
                return;
            };
            let qr = json!({ "qr_svg": qr_svg(&token.login_url).ok(), "login_url": token.login_url,
                "expires_at": token.expires_at });
            let event = DomainEvent::AccountStatus {
                account,
                qr: Some(qr),
            };
            if let Err(error) = account_repo::log_event(&state.store, event).await {
                tracing::warn!(%error, "a fresh QR code could not be announced");
            }
        });
    }
}

/// The first code of a QR login, or `None` when the login ended well before showing one; when it failed first,
/// its error (a login task that ends drops the code's channel before it reports, so the report is awaited).
async fn first_token(
    shown: &mut watch::Receiver<Option<QrToken>>,
    outcome: &mut watch::Receiver<Option<Result<(), UserError>>>,
) -> ApiResult<Option<QrToken>> {
    let ended = || ApiError::Internal("the QR login task ended without an outcome".into());
    loop {
        if let Some(token) = shown.borrow_and_update().clone() {
            return Ok(Some(token));
        }
        if let Some(result) = outcome.borrow_and_update().clone() {
            return result.map(|()| None).map_err(ApiError::Telegram);
        }
        tokio::select! {
            changed = shown.changed() => if changed.is_err() {
                let reported = outcome.wait_for(Option::is_some).await.map_err(|_| ended())?.clone();
                return match reported {
                    Some(result) => result.map(|()| None).map_err(ApiError::Telegram),
                    None => Err(ended()),
                };
            },
            changed = outcome.changed() => changed.map_err(|_| ended())?,
        }
    }
}

/// Starts a QR login and returns the first code; the result arrives as `account_status` over the WebSocket and
/// in `GET /api/accounts/{id}/`. Runs in its own task, so it never slows another account.
#[utoipa::path(post, path = "/api/accounts/{id}/qr_login/", tag = "personal accounts", params(("id" = i64, Path)),
    security(("token" = [])),
    responses((status = 200, body = QrShown), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 429, body = crate::error::ErrorBody),
        (status = 503, body = crate::error::ErrorBody)))]
pub async fn qr_login(
    State(state): State<AppState>,
    Admin(admin): Admin,
    ClientAddr(address): ClientAddr,
    Path(id): Path<i64>,
) -> ApiResult<Json<QrShown>> {
    let id = AccountId(id);
    let account = personal_account(&state, id).await?;
    if is_logged_in(&account) {
        return Ok(Json(QrShown {
            account_id: id.0,
            status: "already_authenticated",
            qr_svg: None,
            login_url: None,
            expires_at: None,
        }));
    }
    let handle = handle_of(&state, &account).await?;
    personal::set_status(&state.store, id, AccountStatus::Authenticating).await?;
    disconnect(&state, id).await?;
    let (latest, mut shown) = watch::channel(None);
    let (finished, mut outcome) = watch::channel(None::<Result<(), UserError>>);
    let progress = Arc::new(QrPublisher {
        state: state.clone(),
        account_id: id,
        latest,
    });
    let task_state = state.clone();
    let task = tokio::spawn(async move {
        let result = task_state.user_gateway.qr_login(&handle, progress).await;
        let reported = match result {
            Ok(outcome) => finish_login(&task_state, id, outcome).await.map(|_| ()),
            Err(error) => Err(login_failed(&task_state, id, error.clone()).await),
        };
        let summary = match reported {
            Ok(()) => Ok(()),
            Err(ApiError::Telegram(error)) => Err(error),
            Err(other) => Err(UserError::Other(other.to_string())),
        };
        finished.send_replace(Some(summary));
    });
    state.accounts_runtime.replace(id, task);
    audit_login(&state, &admin, &address, id, "account.qr_login_started").await?;
    let first = tokio::time::timeout(FIRST_QR_TOKEN, first_token(&mut shown, &mut outcome))
        .await
        .map_err(|_| {
            ApiError::Telegram(UserError::Network(
                "Telegram did not issue a QR login token in time".into(),
            ))
        })??;
    let Some(first) = first else {
        let view = account_repo::view(&state.store, id)
            .await?
            .ok_or_else(|| ApiError::not_found("Account"))?;
        let status = if view.status == AccountStatus::PasswordRequired {
            "password_required"
        } else {
            "already_authenticated"
        };
        return Ok(Json(QrShown {
            account_id: id.0,
            status,
            qr_svg: None,
            login_url: None,
            expires_at: None,
        }));
    };
    Ok(Json(QrShown {
        account_id: id.0,
        status: "qr_required",
        qr_svg: Some(qr_svg(&first.login_url)?),
        login_url: Some(first.login_url),
        expires_at: Some(first.expires_at),
    }))
}

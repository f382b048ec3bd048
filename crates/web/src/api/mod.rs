//! The REST API under `/api/`: one module per resource, assembled here with the layers every route shares.

pub mod accounts;
pub mod auth;
pub mod chats;
pub mod media;
pub mod messages;
pub mod operators;
pub mod system;
pub mod webhook;

use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, Request};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Router, middleware};
use crm_telegram_bot::webhook::looks_like_bot_token;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use self::accounts::{bots, personal};
use crate::error::ApiError;
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

async fn unknown_route() -> impl IntoResponse {
    ApiError::not_found("Endpoint")
}

async fn wrong_method() -> impl IntoResponse {
    (
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(crate::error::ErrorBody {
            error: "Method not allowed on this endpoint.".into(),
            code: "method_not_allowed".into(),
            retry_after: None,
        }),
    )
}

/// The request path as logged: a bot token in it (the predecessor's `/api/webhook/bot/<bot_token>/`) is
/// replaced by `<bot-token>`, so that no log line carries a secret.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.split('/').any(looks_like_bot_token) {
        return std::borrow::Cow::Borrowed(path);
    }
    let redacted: Vec<&str> = path
        .split('/')
        .map(|segment| {
            if looks_like_bot_token(segment) {
                "<bot-token>"
            } else {
                segment
            }
        })
        .collect();
    std::borrow::Cow::Owned(redacted.join("/"))
}

/// Every API route with its layers: request ids, tracing, timeouts, body limit, CORS and the `Host` check.
pub fn router(state: AppState) -> Router {
    let settings = state.settings.clone();
    let api = Router::new()
        .route("/api/health/", get(system::health))
        .route("/api/system/status/", get(system::status))
        .route("/api/system/control/", post(system::control))
        .route("/api/sync/", post(system::sync))
        .route("/api/api-token-auth/", post(auth::obtain_token))
        .route("/api/auth/logout/", post(auth::logout))
        .route("/api/auth/me/", get(auth::me))
        .route("/api/operators/", get(operators::list).post(operators::create))
        .route(
            "/api/operators/{id}/",
            get(operators::retrieve)
                .patch(operators::update)
                .put(operators::update)
                .delete(operators::remove),
        )
        .route("/api/accounts/", get(accounts::list).post(accounts::create))
        .route("/api/accounts/authenticate/", post(personal::login::authenticate))
        .route(
            "/api/accounts/{id}/",
            get(accounts::retrieve)
                .patch(accounts::update)
                .delete(personal::lifecycle::remove),
        )
        .route(
            "/api/accounts/{id}/resend_code/",
            post(personal::login::resend_code),
        )
        .route(
            "/api/accounts/{id}/verify_otp/",
            post(personal::login::verify_otp),
        )
        .route("/api/accounts/{id}/qr_login/", post(personal::qr::qr_login))
        .route("/api/accounts/{id}/restart/", post(accounts::restart))
        .route("/api/accounts/{id}/set_webhook/", post(bots::set_webhook))
        .route("/api/accounts/{id}/delete_webhook/", post(bots::delete_webhook))
        .route("/api/accounts/{id}/set_polling/", post(bots::set_polling))
        .route("/api/accounts/{id}/start/", post(accounts::start))
        .route("/api/accounts/{id}/stop/", post(accounts::stop))
        .route("/api/chats/", get(chats::list))
        .route("/api/chats/{id}/", get(chats::retrieve))
        .route("/api/chats/{id}/mark_as_read/", post(chats::mark_as_read))
        .route("/api/chats/{id}/send_message/", post(messages::send_message))
        .route("/api/chats/{id}/assign/", post(chats::assign))
        .route("/api/chats/{id}/unassign/", post(chats::unassign))
        .route("/api/messages/", get(messages::list))
        .route("/api/messages/by_chat/", get(messages::by_chat))
        .route("/api/messages/{id}/", get(messages::retrieve))
        .route("/api/messages/{id}/reply/", post(messages::reply))
        .route("/api/messages/{id}/retry/", post(messages::retry))
        .route("/api/messages/{id}/download_media/", get(media::download_media))
        .route("/api/media/{id}/", get(media::file))
        .route("/api/media/{id}/fetch/", post(media::fetch))
        .route(
            "/api/upload/",
            post(media::upload).layer(DefaultBodyLimit::max(settings.max_upload_bytes + 64 * 1024)),
        )
        .route("/api/webhook/bot/", post(webhook::by_token))
        .route("/api/webhook/bot/{account}/", post(webhook::by_path))
        .route("/ws/messages/", get(crate::ws::upgrade))
        .route("/api/openapi.json", get(crate::openapi::document))
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method);
    api.layer(DefaultBodyLimit::max(settings.max_json_body))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::middleware::check_host,
        ))
        .layer(crate::middleware::cors(&settings))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(60),
        ))
        .layer(middleware::from_fn(crate::middleware::json_errors))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let request_id = request
                .headers()
                .get(&REQUEST_ID)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-");
            let path = loggable_path(request.uri().path());
            tracing::info_span!("request", method = %request.method(), %path, request_id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn bot_tokens_never_reach_the_logged_path() {
        let token = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw_";
        assert_eq!(
            loggable_path(&format!("/api/webhook/bot/{token}/")),
            "/api/webhook/bot/<bot-token>/"
        );
        assert_eq!(loggable_path("/api/webhook/bot/42/"), "/api/webhook/bot/42/");
        assert_eq!(loggable_path("/api/chats/"), "/api/chats/");
    }
}

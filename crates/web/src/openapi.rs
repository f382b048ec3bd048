//! The OpenAPI 3.1 document of the REST API, generated from the handlers' annotations and served at
//! `GET /api/openapi.json`.

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api::accounts::{bots, personal};
use crate::api::{accounts, auth, chats, media, messages, operators, system, webhook};

struct TokenAuth;

impl Modify for TokenAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`Token <token>` or `Bearer <token>`, from POST /api/api-token-auth/",
            ))),
        );
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "omnichannel-crm", description = "Shared inbox for Telegram bots and personal accounts."),
    paths(
        system::health, system::status, system::control, system::sync,
        auth::obtain_token, auth::logout, auth::me,
        operators::list, operators::create, operators::retrieve, operators::update, operators::remove,
        accounts::list, accounts::create, accounts::retrieve, accounts::update, bots::set_webhook,
        bots::delete_webhook, bots::set_polling, accounts::start, accounts::stop, accounts::restart,
        personal::lifecycle::remove, personal::login::authenticate, personal::login::resend_code,
        personal::login::verify_otp, personal::qr::qr_login,
        chats::list, chats::retrieve, chats::mark_as_read, chats::assign, chats::unassign,
        messages::list, messages::retrieve, messages::by_chat, messages::send_message, messages::reply, messages::retry,
        media::file, media::fetch, media::download_media, media::upload,
        webhook::by_path, webhook::by_token,
    ),
    components(schemas(crate::error::ErrorBody)),
    modifiers(&TokenAuth),
    tags((name = "system"), (name = "auth"), (name = "operators"), (name = "accounts"), (name = "personal accounts"), (name = "chats"), (name = "messages"), (name = "media"), (name = "webhook"))
)]
pub struct ApiDoc;

/// Serves the document.
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

//! Connecting bots: the token is checked with `getMe` and never shown again, webhooks are set and removed
//! through the Bot API with our secret, and only admins manage accounts.

use crm_store::entity::accounts;
use crm_testkit::{Fault, TestDatabase, on_every_backend, spawn_app};
use reqwest::{Method, StatusCode};
use sea_orm::EntityTrait;
use serde_json::json;

const TOKEN: &str = "7001002003:AAExistingShopBotTokenForTests_abcdefg";

on_every_backend!(bots_are_connected_with_their_token_checked_and_hidden);

async fn bots_are_connected_with_their_token_checked_and_hidden(database: TestDatabase) {
    let app = spawn_app(database).await;
    let admin = app.admin_token().await;
    let (_, operator) = app.create_operator(&admin, "olga").await;
    app.bot_api.add_bot(TOKEN, 7001002003, "shop_bot");

    let body = json!({"name": "Shop", "account_type": "bot", "bot_token": TOKEN});
    assert_eq!(
        app.post("/api/accounts/", Some(&operator), body.clone())
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/api/accounts/", Some(&operator)).await.status,
        StatusCode::FORBIDDEN
    );

    let created = app.post("/api/accounts/", Some(&admin), body.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    let id = created.body["id"].as_i64().unwrap();
    assert_eq!(created.body["bot_username"], "shop_bot");
    assert_eq!(created.body["telegram_user_id"], 7001002003_i64);
    assert_eq!(created.body["status"], "active");
    assert_eq!(created.body["bot_token_hint"], "••••defg");
    let text = created.body.to_string();
    assert!(
        !text.contains(TOKEN) && !text.contains("AAExisting"),
        "the token never comes back: {text}"
    );
    assert_eq!(app.bot_api.calls_of("getMe").len(), 1);
    assert_eq!(app.bot_api.calls_of("getMe")[0].token, TOKEN);

    let again = app.post("/api/accounts/", Some(&admin), body).await;
    assert_eq!(
        (again.status, again.body["code"].as_str()),
        (StatusCode::CONFLICT, Some("bot_exists"))
    );
    let unknown = app
        .post("/api/accounts/", Some(&admin), json!({"name": "X", "account_type": "bot", "bot_token": "7001002004:AANotKnownToTelegramAtAllForTests_xyz"}))
        .await;
    assert_eq!(
        (unknown.status, unknown.body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_bot_token"))
    );
    let malformed = app
        .post(
            "/api/accounts/",
            Some(&admin),
            json!({"name": "X", "account_type": "bot", "bot_token": "nope"}),
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    let personal = app
        .post(
            "/api/accounts/",
            Some(&admin),
            json!({"name": "X", "account_type": "personal"}),
        )
        .await;
    assert_eq!(personal.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        personal.body["code"], "phone_invalid",
        "a personal account needs its phone and credentials"
    );
    app.bot_api.add_bot(
        "7001002005:AAAnotherBotThatTelegramIsSlowFor_xyzw",
        7001002005,
        "slow_bot",
    );
    app.bot_api.fail_next("getMe", Fault::ServerError);
    let down = app
        .post("/api/accounts/", Some(&admin), json!({"name": "Y", "account_type": "bot", "bot_token": "7001002005:AAAnotherBotThatTelegramIsSlowFor_xyzw"}))
        .await;
    assert_eq!(
        (down.status, down.body["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable"))
    );
    let rows = accounts::Entity::find().all(app.store.db()).await.unwrap();
    assert_eq!(rows.len(), 1, "failed connections store nothing");
    assert!(
        !format!("{rows:?}").contains(TOKEN),
        "the token is sealed at rest"
    );

    // Webhook: set with our secret and the kinds we handle, then removed.
    let refused = app
        .post(
            &format!("/api/accounts/{id}/set_webhook/"),
            Some(&admin),
            json!({"base_url": "http://crm.example.com"}),
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "Telegram needs HTTPS");
    let set = app
        .post(
            &format!("/api/accounts/{id}/set_webhook/"),
            Some(&admin),
            json!({"base_url": "https://crm.example.com/"}),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
    assert_eq!(set.body["intake_mode"], "webhook");
    assert_eq!(
        set.body["webhook_url"],
        format!("https://crm.example.com/api/webhook/bot/{id}/")
    );
    let call = app.bot_api.calls_of("setWebhook").pop().unwrap();
    assert_eq!(
        call.params["url"],
        format!("https://crm.example.com/api/webhook/bot/{id}/")
    );
    let secret = call.params["secret_token"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 40);
    assert!(
        call.params["allowed_updates"]
            .as_array()
            .unwrap()
            .contains(&json!("message_reaction"))
    );
    assert!(
        !set.body.to_string().contains(&secret),
        "the webhook secret is not shown"
    );

    // The secret Telegram was given is the one the webhook accepts.
    let update = json!({"update_id": 1, "message": {"message_id": 1, "date": 1_700_000_000,
        "chat": {"id": 5, "type": "private", "first_name": "Eve"}, "from": {"id": 5, "first_name": "Eve"}, "text": "hi"}});
    let accepted = app
        .client
        .post(app.url(&format!("/api/webhook/bot/{id}/")))
        .header("X-Telegram-Bot-Api-Secret-Token", &secret)
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), StatusCode::OK);

    let removed = app
        .post(
            &format!("/api/accounts/{id}/delete_webhook/"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(
        (
            removed.body["intake_mode"].as_str(),
            removed.body["webhook_url"].is_null()
        ),
        (Some("none"), true)
    );
    assert_eq!(app.bot_api.calls_of("deleteWebhook").len(), 1);

    // Editing: rename, forward to an existing backend, stop forwarding.
    let patched = app
        .call(
            Method::PATCH,
            &format!("/api/accounts/{id}/"),
            Some(&admin),
            Some(json!({"name": "Shop support", "forward_url": "http://127.0.0.1:9/bot-backend"})),
        )
        .await;
    assert_eq!(
        (
            patched.body["name"].as_str(),
            patched.body["forward_url"].as_str()
        ),
        (Some("Shop support"), Some("http://127.0.0.1:9/bot-backend"))
    );
    let bad = app
        .call(
            Method::PATCH,
            &format!("/api/accounts/{id}/"),
            Some(&admin),
            Some(json!({"forward_url": "file:///etc/passwd"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let cleared = app
        .call(
            Method::PATCH,
            &format!("/api/accounts/{id}/"),
            Some(&admin),
            Some(json!({"forward_url": null})),
        )
        .await;
    assert!(cleared.body["forward_url"].is_null());
    assert_eq!(cleared.body["name"], "Shop support");

    let listed = app.get("/api/accounts/", Some(&admin)).await;
    assert_eq!(listed.body["count"], 1);
    assert!(!listed.body.to_string().contains(TOKEN));
    assert_eq!(
        app.get("/api/accounts/999999/", Some(&admin)).await.status,
        StatusCode::NOT_FOUND
    );
    app.stop().await;
}

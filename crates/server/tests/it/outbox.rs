//! Replies go through the durable outbox: stored `queued` before the API answers, sent by the job runner with
//! `reply_parameters`, delivered exactly once through 429, 5xx and lost requests, failed with the reason on a
//! refusal and retryable by hand; operators reach only their own chats.

use std::time::Duration;

use crm_testkit::app::spawn_app_with;
use crm_testkit::{Fault, TestApp, TestDatabase, on_every_backend};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "7002003004:AAOutboxBotTokenForTheTestSuite_abcdef";

on_every_backend!(
    replies_are_delivered_once_through_failures,
    outgoing_input_and_isolation
);

/// A bot connected through the API, a customer message in its chat, and that chat assigned to `olga`.
struct Setup {
    admin: String,
    olga: String,
    pavel: String,
    chat_id: i64,
    inbound_id: i64,
}

async fn setup(app: &TestApp) -> Setup {
    let admin = app.admin_token().await;
    let (olga_id, olga) = app.create_operator(&admin, "olga").await;
    let (_, pavel) = app.create_operator(&admin, "pavel").await;
    app.bot_api.add_bot(TOKEN, 7002003004, "outbox_bot");
    let created = app
        .post(
            "/api/accounts/",
            Some(&admin),
            json!({"name": "Shop", "account_type": "bot", "bot_token": TOKEN}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let update = json!({"update_id": 1, "message": {"message_id": 77, "date": 1_700_000_000,
        "chat": {"id": 4040, "type": "private", "first_name": "Ivan"}, "from": {"id": 4040, "first_name": "Ivan"}, "text": "Where is my order?"}});
    let response = app
        .client
        .post(app.url(&format!("/api/webhook/bot/{TOKEN}/")))
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let chats = app.get("/api/chats/", Some(&admin)).await;
    let chat_id = chats.body["results"][0]["id"].as_i64().unwrap();
    let assigned = app
        .post(
            &format!("/api/chats/{chat_id}/assign/"),
            Some(&admin),
            json!({"operator_id": olga_id}),
        )
        .await;
    assert_eq!(assigned.status, StatusCode::OK, "{}", assigned.body);
    let messages = app
        .get(&format!("/api/messages/by_chat/?chat_id={chat_id}"), Some(&olga))
        .await;
    let inbound_id = messages.body["results"][0]["id"].as_i64().unwrap();
    Setup {
        admin,
        olga,
        pavel,
        chat_id,
        inbound_id,
    }
}

fn sends_with_text(app: &TestApp, text: &str) -> usize {
    app.bot_api
        .calls_of("sendMessage")
        .iter()
        .filter(|c| c.params["text"] == text)
        .count()
}

async fn replies_are_delivered_once_through_failures(database: TestDatabase) {
    let app = spawn_app_with(database, |settings| settings.telegram_bot_api_timeout = 1).await;
    let s = setup(&app).await;

    let queued = app
        .post(
            &format!("/api/messages/{}/reply/", s.inbound_id),
            Some(&s.olga),
            json!({"text": "It ships today"}),
        )
        .await;
    assert_eq!(queued.status, StatusCode::CREATED, "{:?}", queued.body);
    assert_eq!(queued.body["status"], "queued", "stored before the API answers");
    assert!(queued.body["telegram_id"].is_null());
    assert_eq!(queued.body["is_outgoing"], true);
    assert_eq!(queued.body["from_user_name"], "olga");
    let id = queued.body["id"].as_i64().unwrap();
    let sent = app.message_reaching(&s.olga, id, "sent").await;
    let call = app.bot_api.calls_of("sendMessage").pop().unwrap();
    assert_eq!(call.token, TOKEN);
    assert_eq!(call.params["chat_id"], 4040);
    assert_eq!(call.params["reply_parameters"]["message_id"], 77);
    assert!(
        sent["telegram_id"].as_i64().unwrap() > 1000,
        "Telegram's id is stored"
    );
    assert_eq!(sent["reply_to_message"], s.inbound_id);

    let chat = app
        .get(&format!("/api/chats/{}/", s.chat_id), Some(&s.olga))
        .await
        .body;
    assert_eq!(
        (chat["message_count"].as_i64(), chat["unread_count"].as_i64()),
        (Some(2), Some(1)),
        "our reply is not unread"
    );

    // Flood control: wait retry_after, then deliver once.
    app.bot_api.fail_next("sendMessage", Fault::RetryAfter(1));
    let flood = app
        .post(
            &format!("/api/chats/{}/send_message/", s.chat_id),
            Some(&s.olga),
            json!({"text": "after a flood wait"}),
        )
        .await;
    app.message_reaching(&s.olga, flood.body["id"].as_i64().unwrap(), "sent")
        .await;
    assert_eq!(
        sends_with_text(&app, "after a flood wait"),
        2,
        "one refused, one delivered"
    );

    // A server error is retried with backoff. A request whose answer never comes (the 1 s timeout) may have
    // reached Telegram, and the Bot API has no way to send it again safely: it is not repeated but shown as
    // failed for the operator to check, and counted; retried by hand, it goes out.
    app.bot_api.fail_next("sendMessage", Fault::ServerError);
    app.bot_api
        .fail_next("sendMessage", Fault::Hang(Duration::from_secs(3)));
    let shaky = app
        .post(
            &format!("/api/chats/{}/send_message/", s.chat_id),
            Some(&s.olga),
            json!({"text": "through a bad network"}),
        )
        .await;
    let shaky_id = shaky.body["id"].as_i64().unwrap();
    let unconfirmed = app.message_reaching(&s.olga, shaky_id, "failed").await;
    assert!(
        unconfirmed["error"]
            .as_str()
            .unwrap()
            .starts_with("Delivery could not be confirmed"),
        "{unconfirmed}"
    );
    assert_eq!(
        sends_with_text(&app, "through a bad network"),
        2,
        "never repeated on its own"
    );
    let status = app.get("/api/system/status/", Some(&s.admin)).await.body;
    assert_eq!(status["unconfirmed_sends"], 1);
    app.post(
        &format!("/api/messages/{shaky_id}/retry/"),
        Some(&s.olga),
        json!({}),
    )
    .await;
    let delivered = app.message_reaching(&s.olga, shaky_id, "sent").await;
    assert_eq!(sends_with_text(&app, "through a bad network"), 3);
    assert!(delivered["error"].is_null());

    // A refusal fails at once with the reason; a retry by hand delivers it.
    app.bot_api.fail_next(
        "sendMessage",
        Fault::Reject(403, "Forbidden: bot was blocked by the user".into()),
    );
    let blocked = app
        .post(
            &format!("/api/chats/{}/send_message/", s.chat_id),
            Some(&s.olga),
            json!({"text": "are you there?"}),
        )
        .await;
    let blocked_id = blocked.body["id"].as_i64().unwrap();
    let failed = app.message_reaching(&s.olga, blocked_id, "failed").await;
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("bot was blocked by the user"),
        "{failed}"
    );
    assert_eq!(
        sends_with_text(&app, "are you there?"),
        1,
        "a refusal is not retried by itself"
    );
    let status = app.get("/api/system/status/", Some(&s.admin)).await.body;
    assert_eq!(status["messages"]["failed"], 1);
    let again = app
        .post(
            &format!("/api/messages/{blocked_id}/retry/"),
            Some(&s.olga),
            json!({}),
        )
        .await;
    assert_eq!(
        (again.status, again.body["status"].as_str()),
        (StatusCode::OK, Some("queued"))
    );
    app.message_reaching(&s.olga, blocked_id, "sent").await;
    assert_eq!(sends_with_text(&app, "are you there?"), 2);
    let not_failed = app
        .post(
            &format!("/api/messages/{blocked_id}/retry/"),
            Some(&s.olga),
            json!({}),
        )
        .await;
    assert_eq!(
        (not_failed.status, not_failed.body["code"].as_str()),
        (StatusCode::CONFLICT, Some("not_failed"))
    );
    app.stop().await;
}

async fn outgoing_input_and_isolation(database: TestDatabase) {
    let app = spawn_app_with(database, |_| {}).await;
    let s = setup(&app).await;
    let path = format!("/api/chats/{}/send_message/", s.chat_id);
    for (body, code) in [
        (json!({}), "invalid_field"),
        (json!({"text": "   "}), "invalid_field"),
        (json!({"text": "x".repeat(4097)}), "invalid_field"),
        (json!({"text": "hi", "media_path": "/etc/passwd"}), "unknown_file"),
        (json!({"text": "hi", "file_id": 1}), "unknown_file"),
        (json!({"text": 5}), "invalid_body"),
        (json!({"text": "hi", "parse_mode": "HTML"}), "invalid_body"),
    ] {
        let reply = app.post(&path, Some(&s.olga), body.clone()).await;
        assert_eq!(
            (reply.status, reply.body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some(code)),
            "{body}"
        );
    }
    assert_eq!(
        app.get(
            &format!("/api/messages/by_chat/?chat_id={}", s.chat_id),
            Some(&s.olga)
        )
        .await
        .body["count"],
        1,
        "nothing queued"
    );
    assert!(app.bot_api.calls_of("sendMessage").is_empty());

    // Pavel holds no chat: every way to this one is 404, and he sees no messages.
    for (method, url) in [
        ("POST", path.clone()),
        ("POST", format!("/api/messages/{}/reply/", s.inbound_id)),
        ("POST", format!("/api/messages/{}/retry/", s.inbound_id)),
        ("GET", format!("/api/messages/{}/", s.inbound_id)),
        ("GET", format!("/api/messages/by_chat/?chat_id={}", s.chat_id)),
    ] {
        let reply = if method == "GET" {
            app.get(&url, Some(&s.pavel)).await
        } else {
            app.post(&url, Some(&s.pavel), json!({"text": "hi"})).await
        };
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {url}");
    }
    assert_eq!(app.get("/api/messages/", Some(&s.pavel)).await.body["count"], 0);
    assert_eq!(app.get("/api/messages/", Some(&s.olga)).await.body["count"], 1);
    assert_eq!(
        app.get("/api/messages/by_chat/", Some(&s.olga)).await.body["code"],
        "invalid_query"
    );
    assert_eq!(
        app.get("/api/messages/by_chat/?chat_id=abc", Some(&s.olga))
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get(
            &format!("/api/messages/by_chat/?chat_id={}&limit=500", s.chat_id),
            Some(&s.olga)
        )
        .await
        .status,
        StatusCode::BAD_REQUEST
    );

    // Keyset paging through a longer history, newest first.
    for n in 0..7 {
        let update = json!({"update_id": 100 + n, "message": {"message_id": 100 + n, "date": 1_700_000_100 + n,
            "chat": {"id": 4040, "type": "private", "first_name": "Ivan"}, "from": {"id": 4040, "first_name": "Ivan"}, "text": format!("m{n}")}});
        app.client
            .post(app.url(&format!("/api/webhook/bot/{TOKEN}/")))
            .json(&update)
            .send()
            .await
            .unwrap();
    }
    let first = app
        .get(
            &format!("/api/messages/by_chat/?chat_id={}&limit=3", s.chat_id),
            Some(&s.olga),
        )
        .await
        .body;
    let texts = |page: &Value| {
        page["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(texts(&first), ["m6", "m5", "m4"]);
    assert_eq!(first["count"], 8);
    let next = first["next"].as_str().unwrap();
    let second: Value = app
        .client
        .get(next)
        .header("Authorization", format!("Token {}", s.olga))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(texts(&second), ["m3", "m2", "m1"]);
    let third: Value = app
        .client
        .get(second["next"].as_str().unwrap())
        .header("Authorization", format!("Token {}", s.olga))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(texts(&third), ["m0", "Where is my order?"]);
    assert!(third["next"].is_null());
    let admin_view = app
        .get(
            &format!("/api/messages/by_chat/?chat_id={}", s.chat_id),
            Some(&s.admin),
        )
        .await
        .body;
    assert_eq!(
        admin_view["results"][0]["text"], "m6",
        "page mode is newest first too"
    );
    app.stop().await;
}

on_every_backend!(a_send_gives_up_after_the_configured_attempts);

async fn a_send_gives_up_after_the_configured_attempts(database: TestDatabase) {
    let app = spawn_app_with(database, |settings| settings.send_max_attempts = 2).await;
    let s = setup(&app).await;
    app.bot_api.fail_next("sendMessage", Fault::ServerError);
    app.bot_api.fail_next("sendMessage", Fault::ServerError);
    let queued = app
        .post(
            &format!("/api/chats/{}/send_message/", s.chat_id),
            Some(&s.olga),
            json!({"text": "persistent trouble"}),
        )
        .await;
    let failed = app
        .message_reaching(&s.olga, queued.body["id"].as_i64().unwrap(), "failed")
        .await;
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("gave up after 2 attempts"),
        "{failed}"
    );
    assert_eq!(sends_with_text(&app, "persistent trouble"), 2);
    app.stop().await;
}

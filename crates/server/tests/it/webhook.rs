//! The bot webhook: authenticated by Telegram's secret (or the predecessor's token forms), stores each update
//! once, answers 200 for kinds it ignores, and accepts every real update of the shared corpus.

use crm_core::account::{AccountStatus, AccountType};
use crm_core::secrets::Sensitive;
use crm_store::entity::{chats, media_files, messages};
use crm_store::repo::accounts::{NewAccount, create};
use crm_testkit::corpus::{Expect, Msg, expectations};
use crm_testkit::{TestApp, TestDatabase, on_every_backend, spawn_app};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

const TOKEN: &str = "5550001112:AAFakeTokenForWebhookTestsOnly_abcdefg";
const SECRET: &str = "webhook-secret-of-the-test-bot";

on_every_backend!(
    webhook_authenticates_and_stores_each_update_once,
    the_real_update_corpus_is_accepted
);

async fn bot(app: &TestApp, status: AccountStatus) -> crm_core::ids::AccountId {
    crm_testkit::fixtures::bot_account_with_status(&app.store, "Shop", Some(TOKEN), Some(SECRET), status)
        .await
        .id
}

async fn post(app: &TestApp, path: &str, headers: &[(&str, &str)], body: &Value) -> (StatusCode, Value) {
    let mut request = app.client.post(app.url(path)).json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn text_update(update_id: i64, message_id: i64, text: &str) -> Value {
    json!({ "update_id": update_id, "message": { "message_id": message_id, "date": 1_700_000_000,
        "chat": { "id": 777, "type": "private", "first_name": "Mia" },
        "from": { "id": 777, "is_bot": false, "first_name": "Mia", "username": "mia" }, "text": text } })
}

async fn message_count(app: &TestApp) -> usize {
    messages::Entity::find().all(app.store.db()).await.unwrap().len()
}

async fn webhook_authenticates_and_stores_each_update_once(database: TestDatabase) {
    let app = spawn_app(database).await;
    let id = bot(&app, AccountStatus::Active).await;
    let path = format!("/api/webhook/bot/{id}/");
    let secret = [("X-Telegram-Bot-Api-Secret-Token", SECRET)];

    for (headers, why) in [
        (vec![], "no secret"),
        (
            vec![(
                "X-Telegram-Bot-Api-Secret-Token",
                "wrong-secret-of-the-test-bot!!",
            )],
            "wrong secret",
        ),
        (vec![("X-Telegram-Bot-Api-Secret-Token", "")], "empty secret"),
    ] {
        let (status, body) = post(&app, &path, &headers, &text_update(1, 1, "forged")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{why}");
        assert_eq!(body["code"], "not_authenticated", "{why}");
    }
    assert_eq!(message_count(&app).await, 0, "nothing stored from refused calls");
    assert!(
        chats::Entity::find()
            .all(app.store.db())
            .await
            .unwrap()
            .is_empty()
    );

    let (status, body) = post(&app, &path, &secret, &text_update(1, 1, "hello")).await;
    assert_eq!(
        (status, body),
        (
            StatusCode::OK,
            json!({"status": "processed", "outcome": "stored"})
        )
    );
    let (status, body) = post(&app, &path, &secret, &text_update(1, 1, "hello")).await;
    assert_eq!(
        (status, &body["outcome"]),
        (StatusCode::OK, &json!("duplicate")),
        "Telegram redelivered"
    );
    assert_eq!(message_count(&app).await, 1);
    let stored = messages::Entity::find()
        .one(app.store.db())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.text.as_deref(), stored.sender_name.as_deref()),
        (Some("hello"), Some("Mia"))
    );

    // The predecessor's token forms.
    let (status, _) = post(
        &app,
        &format!("/api/webhook/bot/{TOKEN}/"),
        &[],
        &text_update(2, 2, "by path token"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = post(
        &app,
        "/api/webhook/bot/",
        &[("X-Bot-Token", TOKEN)],
        &text_update(3, 3, "by header"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = post(
        &app,
        &format!("/api/webhook/bot/?token={TOKEN}"),
        &[],
        &text_update(4, 4, "by query"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = post(&app, "/api/webhook/bot/", &[], &text_update(5, 5, "no token")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let unknown_token = "5550001112:AAOtherTokenThatIsNotRegistered_xyzxyz";
    let (status, unknown_token_body) = post(
        &app,
        &format!("/api/webhook/bot/{unknown_token}/"),
        &[],
        &text_update(6, 6, "x"),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "an unknown token looks like a wrong one"
    );
    let (status, _) = post(
        &app,
        "/api/webhook/bot/not-a-token/",
        &[],
        &text_update(7, 7, "x"),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(message_count(&app).await, 4);

    // An unknown account id and a known one with a wrong secret get the same answer: ids cannot be enumerated.
    let (status, unknown_account) =
        post(&app, "/api/webhook/bot/999999/", &secret, &text_update(8, 8, "x")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let wrong_secret = [("X-Telegram-Bot-Api-Secret-Token", "not-the-secret")];
    let (status, known_account) = post(&app, &path, &wrong_secret, &text_update(8, 8, "x")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_account, known_account);
    assert_eq!(unknown_token_body, known_account);
    assert_eq!(known_account["code"], "not_authenticated", "{known_account}");

    // An update kind we do not handle is accepted and counted, so Telegram does not retry it.
    let (status, body) = post(
        &app,
        &path,
        &secret,
        &json!({"update_id": 9, "callback_query": {"id": "1"}}),
    )
    .await;
    assert_eq!((status, &body["outcome"]), (StatusCode::OK, &json!("ignored")));
    let admin = app.admin_token().await;
    let status_page = app.get("/api/system/status/", Some(&admin)).await;
    assert_eq!(status_page.body["ignored_updates"]["callback_query"], 1);

    let (status, body) = app
        .client
        .post(app.url(&path))
        .header("X-Telegram-Bot-Api-Secret-Token", SECRET)
        .body("{not json")
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body.json::<Value>().await.unwrap()["code"], "invalid_json");

    // A stopped bot refuses updates.
    let stopped = {
        let other = NewAccount {
            name: "Stopped".into(),
            account_type: AccountType::Bot,
            status: AccountStatus::Stopped,
            phone_number: None,
            api_id: None,
            api_hash: None,
            session: None,
            bot_token: Some(Sensitive(
                "5550009999:AAStoppedBotTokenForTests_abcdefghij".into(),
            )),
            bot_username: None,
            webhook_secret: Some(Sensitive(SECRET.into())),
            telegram_user_id: None,
            forward_url: None,
        };
        create(&app.store, other).await.unwrap().id
    };
    let (status, _) = post(
        &app,
        &format!("/api/webhook/bot/{stopped}/"),
        &secret,
        &text_update(10, 10, "x"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(message_count(&app).await, 4);
    app.stop().await;
}

async fn the_real_update_corpus_is_accepted(database: TestDatabase) {
    let Some(files) = crm_testkit::corpus::load() else {
        return;
    };
    let app = spawn_app(database).await;
    let id = bot(&app, AccountStatus::Active).await;
    let path = format!("/api/webhook/bot/{id}/");
    let secret = [("X-Telegram-Bot-Api-Secret-Token", SECRET)];
    for (name, update) in &files {
        let (status, body) = post(&app, &path, &secret, update).await;
        assert_eq!(status, StatusCode::OK, "{name}: {body}");
        assert_eq!(body["status"], "processed", "{name}");
    }
    // Everything again: Telegram redelivers; nothing new may appear.
    let before = message_count(&app).await;
    for (name, update) in &files {
        let (status, body) = post(&app, &path, &secret, update).await;
        assert_eq!(status, StatusCode::OK, "{name}");
        assert_ne!(body["outcome"], "stored", "{name} stored twice");
    }
    assert_eq!(message_count(&app).await, before);

    let db = app.store.db();
    let admin = app.admin_token().await;
    let ignored = app.get("/api/system/status/", Some(&admin)).await.body["ignored_updates"].clone();
    // Some samples are the same message (same chat and id) in other shapes: the first file, by name, is stored.
    let mut first_of = std::collections::HashMap::new();
    for (name, update) in &files {
        if let Some(message) = update.get("message") {
            first_of
                .entry((message["chat"]["id"].as_i64(), message["message_id"].as_i64()))
                .or_insert(name.clone());
        }
    }
    for (name, expect) in expectations() {
        let update = &files
            .iter()
            .find(|(file, _)| file == name)
            .expect("corpus file")
            .1;
        let kind = update
            .as_object()
            .unwrap()
            .keys()
            .find(|k| *k != "update_id")
            .unwrap()
            .clone();
        let body = &update[&kind];
        let chat = match body["chat"]["id"].as_i64() {
            Some(peer) => chats::Entity::find()
                .filter(chats::Column::AccountId.eq(id.0))
                .filter(chats::Column::PeerId.eq(peer))
                .one(db)
                .await
                .unwrap(),
            None => None,
        };
        match expect {
            // The doc_* samples share one chat, update id and message id: only the first (doc_audio) is stored,
            // and doc_edited_message edits it; both are checked below.
            Expect::Message(_) if name.starts_with("doc_") => {}
            Expect::Message(_)
                if first_of
                    .get(&(body["chat"]["id"].as_i64(), body["message_id"].as_i64()))
                    .is_some_and(|first| first != name) => {}
            Expect::Message(Msg {
                message_type,
                text,
                caption,
                sender_id,
                reply_to,
                media,
                ..
            }) => {
                let chat = chat.unwrap_or_else(|| panic!("{name}: no chat stored"));
                let stored = messages::Entity::find()
                    .filter(messages::Column::ChatId.eq(chat.id))
                    .filter(messages::Column::TelegramMessageId.eq(body["message_id"].as_i64().unwrap()))
                    .one(db)
                    .await
                    .unwrap()
                    .unwrap_or_else(|| panic!("{name}: no message stored"));
                assert_eq!(stored.message_type.0, message_type, "{name}: type");
                if let Some(text) = text {
                    assert_eq!(stored.text.as_deref(), Some(text), "{name}: text");
                }
                assert_eq!(stored.caption.as_deref(), caption, "{name}: caption");
                assert_eq!(stored.sender_id, sender_id, "{name}: sender");
                assert_eq!(stored.reply_to_telegram_id, reply_to, "{name}: reply");
                let file = media_files::Entity::find()
                    .filter(media_files::Column::MessageId.eq(stored.id))
                    .one(db)
                    .await
                    .unwrap();
                assert_eq!(file.is_some(), media, "{name}: a file to download");
                assert_eq!(stored.metadata["raw"], *body, "{name}: raw payload kept");
            }
            Expect::Blocked(blocked) => assert_eq!(chat.map(|c| c.is_blocked), Some(blocked), "{name}"),
            // Reactions on messages nobody stored change nothing and create no chat.
            Expect::Reaction { .. } => assert!(chat.is_none(), "{name}"),
            Expect::Ignored(kind) => assert!(
                ignored[kind].as_u64().unwrap_or(0) >= 1,
                "{name}: {kind} counted as ignored: {ignored}"
            ),
        }
    }

    let docs = chats::Entity::find()
        .filter(chats::Column::PeerId.eq(1111111))
        .one(db)
        .await
        .unwrap()
        .unwrap();
    let doc_messages = messages::Entity::find()
        .filter(messages::Column::ChatId.eq(docs.id))
        .all(db)
        .await
        .unwrap();
    assert_eq!(
        doc_messages.len(),
        1,
        "one update id and message id make one message"
    );
    assert_eq!(doc_messages[0].telegram_message_id, Some(1365));
    assert_eq!(
        doc_messages[0].message_type.0,
        crm_core::message::MessageType::Audio,
        "the first sample (alphabetically doc_audio) is the one stored"
    );
    assert_eq!(doc_messages[0].sender_id, Some(1111111));
    assert_eq!(
        doc_messages[0].text.as_deref(),
        Some("Edited text"),
        "doc_edited_message edits it"
    );
    assert!(doc_messages[0].edited_at.is_some());
    assert_eq!((docs.message_count, docs.unread_count), (1, 1));
    app.stop().await;
}

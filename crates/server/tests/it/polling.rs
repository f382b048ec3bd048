//! Long polling: a bot switched to polling is polled by this instance under a lease, the offset is kept in the
//! database, and a restart resumes without gaps or duplicates.

use std::time::Duration;

use crm_store::entity::accounts;
use crm_store::repo::leases;
use crm_testkit::app::spawn_app_on;
use crm_testkit::{TestApp, TestDatabase, eventually_within, on_every_backend, spawn_app};
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use serde_json::{Value, json};

const TOKEN: &str = "7005006007:AAPollingBotTokenForTheTestSuite_abcdef";

fn update(id: i64, text: &str) -> Value {
    json!({"update_id": id, "message": {"message_id": id, "date": 1_700_000_000 + id,
        "chat": {"id": 6060, "type": "private", "first_name": "Olek"}, "from": {"id": 6060, "first_name": "Olek"}, "text": text}})
}

/// How long the poller gets to reach each state.
const PATIENCE: Duration = Duration::from_secs(60);

async fn wait_for_messages(app: &TestApp, token: &str, count: i64) -> Value {
    eventually_within(
        PATIENCE,
        &format!("the chat to reach {count} messages"),
        || async {
            let chats = app.get("/api/chats/", Some(token)).await.body;
            (chats["results"][0]["message_count"].as_i64() == Some(count))
                .then(|| chats["results"][0].clone())
        },
    )
    .await
}

/// Waits until the stored polling offset of account `id` is `expected`.
async fn wait_for_offset(app: &TestApp, id: i64, expected: i64) {
    eventually_within(PATIENCE, &format!("the offset to reach {expected}"), || async {
        (offset(app, id).await == Some(expected)).then_some(())
    })
    .await;
}

async fn offset(app: &TestApp, id: i64) -> Option<i64> {
    accounts::Entity::find_by_id(id)
        .one(app.store.db())
        .await
        .unwrap()
        .unwrap()
        .polling_offset
}

on_every_backend!(polling_resumes_after_a_restart_without_gaps_or_duplicates);

async fn polling_resumes_after_a_restart_without_gaps_or_duplicates(database: TestDatabase) {
    let app = spawn_app(database).await;
    let admin = app.admin_token().await;
    app.bot_api.add_bot(TOKEN, 7005006007, "polled_bot");
    let created = app
        .post(
            "/api/accounts/",
            Some(&admin),
            json!({"name": "Polled", "account_type": "bot", "bot_token": TOKEN}),
        )
        .await;
    let id = created.body["id"].as_i64().unwrap();
    let switched = app
        .post(
            &format!("/api/accounts/{id}/set_polling/"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(
        (switched.status, switched.body["intake_mode"].as_str()),
        (StatusCode::OK, Some("polling"))
    );
    assert_eq!(
        app.bot_api.calls_of("deleteWebhook").len(),
        1,
        "Telegram refuses polls while a webhook is set"
    );

    app.bot_api
        .push_updates(TOKEN, [update(10, "first"), update(11, "second")]);
    let chat = wait_for_messages(&app, &admin, 2).await;
    assert_eq!(chat["last_message_preview"], "second");
    wait_for_offset(&app, id, 12).await;
    let holder = leases::holder(&app.store, &format!("bot-poll:{id}"))
        .await
        .unwrap();
    assert!(
        holder.is_some_and(|h| h.starts_with("test-")),
        "this instance holds the poll lease"
    );
    // The next poll, which may still be on its way, confirms the updates with the stored offset.
    eventually_within(
        PATIENCE,
        "a poll confirming the updates with offset 12",
        || async {
            let polls = app.bot_api.calls_of("getUpdates");
            polls.iter().any(|c| c.params["offset"] == 12).then_some(())
        },
    )
    .await;
    let polls = app.bot_api.calls_of("getUpdates");
    assert!(polls.iter().all(|c| {
        c.token == TOKEN
            && c.params["allowed_updates"]
                .as_array()
                .is_some_and(|a| a.contains(&json!("message")))
    }));

    // A crash after storing update 11 but before saving its offset: Telegram delivers 11 again with 12.
    let (database, bot_api) = app.shut_down().await;
    let app = spawn_app_on(database, bot_api, |_| {}).await;
    let mut row: accounts::ActiveModel = accounts::Entity::find_by_id(id)
        .one(app.store.db())
        .await
        .unwrap()
        .unwrap()
        .into();
    row.polling_offset = Set(Some(11));
    row.update(app.store.db()).await.unwrap();
    app.bot_api
        .push_updates(TOKEN, [update(11, "second"), update(12, "third")]);
    let admin = app.admin_token().await;
    app.post(&format!("/api/accounts/{id}/start/"), Some(&admin), json!({}))
        .await;
    let chat = wait_for_messages(&app, &admin, 3).await;
    assert_eq!(chat["last_message_preview"], "third");
    let messages = app
        .get(
            &format!("/api/messages/by_chat/?chat_id={}", chat["id"]),
            Some(&admin),
        )
        .await
        .body;
    let texts: Vec<&str> = messages["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["third", "second", "first"], "no gap and no duplicate");
    wait_for_offset(&app, id, 13).await;
    app.stop().await;
}

//! Forwarding to an existing bot backend: every update the CRM receives for the bot, handled or not, reaches
//! the backend unchanged with the bot's secret header, retried until it answers 2xx, once per update.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use crm_testkit::{TestApp, TestDatabase, eventually, on_every_backend, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};

const TOKEN: &str = "7003004005:AAForwardingBotTokenForTheTests_abcde";

/// One delivery the backend got: the secret header, the body, and the status it answered.
type Delivery = (Option<String>, Value, u16);

/// The existing bot's backend: answers with the scripted statuses, then 200, and records what it got.
#[derive(Clone, Default)]
struct Backend {
    script: Arc<Mutex<Vec<u16>>>,
    received: Arc<Mutex<Vec<Delivery>>>,
}

async fn start_backend(script: Vec<u16>) -> (String, Backend) {
    let backend = Backend {
        script: Arc::new(Mutex::new(script)),
        ..Backend::default()
    };
    let state = backend.clone();
    let router = axum::Router::new().route(
        "/telegram/webhook",
        post(move |headers: HeaderMap, axum::Json(body): axum::Json<Value>| {
            let state = state.clone();
            async move {
                let secret = headers
                    .get("x-telegram-bot-api-secret-token")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let status = {
                    let mut script = state.script.lock().unwrap();
                    if script.is_empty() { 200 } else { script.remove(0) }
                };
                state.received.lock().unwrap().push((secret, body, status));
                AxumStatus::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/telegram/webhook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, backend)
}

async fn wait_for_deliveries(backend: &Backend, count: usize) {
    eventually(&format!("the backend to get {count} deliveries"), || async {
        (backend.received.lock().unwrap().len() >= count).then_some(())
    })
    .await;
}

async fn post_update(app: &TestApp, update: &Value) {
    let response = app
        .client
        .post(app.url(&format!("/api/webhook/bot/{TOKEN}/")))
        .json(update)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

on_every_backend!(updates_reach_the_existing_bot_until_it_answers);

async fn updates_reach_the_existing_bot_until_it_answers(database: TestDatabase) {
    let app = spawn_app(database).await;
    let admin = app.admin_token().await;
    app.bot_api.add_bot(TOKEN, 7003004005, "legacy_bot");
    let (url, backend) = start_backend(vec![500, 503]).await;
    let created = app
        .post(
            "/api/accounts/",
            Some(&admin),
            json!({"name": "Legacy", "account_type": "bot", "bot_token": TOKEN, "forward_url": url}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    app.post(
        &format!("/api/accounts/{}/set_webhook/", created.body["id"]),
        Some(&admin),
        json!({"base_url": "https://crm.example.com"}),
    )
    .await;
    let secret = app.bot_api.calls_of("setWebhook")[0].params["secret_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // The exact bytes matter to the existing bot: odd fields and nulls must survive.
    let message = json!({"update_id": 501, "message": {"message_id": 1, "date": 1_700_000_000, "chat": {"id": 9, "type": "private"},
        "from": {"id": 9, "first_name": "Zoe", "last_name": null}, "text": "/start", "some_future_field": {"x": [1, 2]}}});
    let callback = json!({"update_id": 502, "callback_query": {"id": "cb1", "from": {"id": 9, "first_name": "Zoe"}, "data": "buy"}});
    post_update(&app, &message).await;
    post_update(&app, &callback).await;
    post_update(&app, &message).await; // Telegram redelivers: no second forward.

    // Two failures, then both updates arrive.
    wait_for_deliveries(&backend, 4).await;
    let received = backend.received.lock().unwrap().clone();
    let accepted = |update: &Value| {
        received
            .iter()
            .filter(|(_, body, status)| body == update && *status == 200)
            .count()
    };
    assert_eq!(accepted(&message), 1, "the message is delivered once");
    assert_eq!(
        accepted(&callback),
        1,
        "an update the inbox ignores is still forwarded"
    );
    assert_eq!(
        received.iter().filter(|(_, _, status)| *status != 200).count(),
        2,
        "the failed tries were retried"
    );
    assert!(
        received
            .iter()
            .all(|(_, body, _)| body == &message || body == &callback),
        "bodies arrive unchanged"
    );
    assert!(
        received
            .iter()
            .all(|(header, _, _)| header.as_deref() == Some(secret.as_str())),
        "the bot's secret header"
    );

    // The inbox stored the message once; the callback query is not a message.
    let chats = app.get("/api/chats/", Some(&admin)).await;
    assert_eq!(chats.body["count"], 1);
    assert_eq!(chats.body["results"][0]["message_count"], 1);
    app.stop().await;
    assert_eq!(
        backend.received.lock().unwrap().len(),
        4,
        "nothing forwarded twice"
    );
}

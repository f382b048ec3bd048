//! A stand-in for Telegram's Bot API on a loopback port: `POST /bot<token>/sendMessage` answers with the real
//! shape (`{"ok":true,"result":{"message_id":…,"date":…,"chat":{…},"text":…}}`) and every call is counted, as is
//! every text sent more than once (a duplicate send). Any other method answers `{"ok":true,"result":true}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::seed::BOT_ID;

#[derive(Default)]
struct Calls {
    by_method: HashMap<String, u64>,
    texts: HashMap<String, u64>,
    next_message_id: i64,
}

/// The running fake.
#[derive(Clone)]
pub struct FakeBotApi {
    /// The URL to configure as the Bot API's base.
    pub base_url: String,
    calls: Arc<Mutex<Calls>>,
}

/// What the fake has seen.
#[derive(Debug, Clone, Copy, Default)]
pub struct Seen {
    /// `sendMessage` calls.
    pub send_message: u64,
    /// Texts sent more than once (each extra copy counted).
    pub duplicates: u64,
    /// Calls of any other method.
    pub other: u64,
}

impl FakeBotApi {
    /// Starts the fake on a free loopback port; it serves until the process ends.
    pub async fn start() -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let fake = Self {
            base_url: format!("http://{}", listener.local_addr()?),
            calls: Arc::new(Mutex::new(Calls {
                next_message_id: 500_000,
                ..Calls::default()
            })),
        };
        let router = Router::new()
            .route("/{bot}/{method}", post(answer))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Ok(fake)
    }

    fn calls(&self) -> std::sync::MutexGuard<'_, Calls> {
        self.calls.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// What it has seen so far.
    pub fn seen(&self) -> Seen {
        let calls = self.calls();
        let send_message = calls.by_method.get("sendMessage").copied().unwrap_or(0);
        Seen {
            send_message,
            duplicates: calls.texts.values().map(|n| n.saturating_sub(1)).sum(),
            other: calls.by_method.values().sum::<u64>() - send_message,
        }
    }
}

async fn answer(
    State(fake): State<FakeBotApi>,
    Path((bot, method)): Path<(String, String)>,
    body: Bytes,
) -> Json<Value> {
    let params: Value = serde_json::from_slice(&body).unwrap_or_else(|_| json!({}));
    let mut calls = fake.calls();
    *calls.by_method.entry(method.clone()).or_insert(0) += 1;
    if method != "sendMessage" || !bot.starts_with("bot") {
        return Json(json!({"ok": true, "result": true}));
    }
    let text = params
        .get("text")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    *calls.texts.entry(text.clone()).or_insert(0) += 1;
    calls.next_message_id += 1;
    let chat_id = params
        .get("chat_id")
        .and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
        .unwrap_or(0);
    Json(json!({"ok": true, "result": {
        "message_id": calls.next_message_id,
        "from": {"id": BOT_ID, "is_bot": true, "first_name": "Bench bot", "username": "bench_bot"},
        "chat": {"id": chat_id, "first_name": "Customer", "type": "private"},
        "date": chrono::Utc::now().timestamp(),
        "text": text,
    }}))
}

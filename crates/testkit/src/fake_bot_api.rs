//! A stand-in for Telegram's Bot API server, speaking its real HTTP shapes (`POST /bot<token>/<method>` with
//! JSON or multipart, `{"ok": …, "result": …}` answers, `GET /file/bot<token>/<path>`). It records every call,
//! serves scripted updates to `getUpdates` and files to `getFile`, and can be told to answer 429 with
//! `retry_after`, 5xx, or to hang.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{StatusCode, header::CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// One call the fake received.
#[derive(Debug, Clone)]
pub struct RecordedCall {
    /// The bot token from the URL.
    pub token: String,
    /// The Bot API method.
    pub method: String,
    /// Parameters (JSON body, or multipart text fields).
    pub params: Value,
    /// An uploaded file: (field, file name, size, content type).
    pub upload: Option<(String, String, usize, String)>,
}

/// A scripted failure for the next call of a method.
#[derive(Debug, Clone)]
pub enum Fault {
    /// 429 with `parameters.retry_after`.
    RetryAfter(u64),
    /// 500 Internal Server Error.
    ServerError,
    /// 400/403 with a description.
    Reject(u16, String),
    /// No answer for this long, then a 504 without processing the call: the request is lost, as when
    /// Telegram never got it (the client should time out first).
    Hang(Duration),
}

#[derive(Default)]
struct World {
    bots: HashMap<String, Value>,
    calls: Vec<RecordedCall>,
    faults: HashMap<String, VecDeque<Fault>>,
    updates: HashMap<String, Vec<Value>>,
    files: HashMap<String, (String, Vec<u8>)>,
    too_big: Vec<String>,
    next_message_id: i64,
    answer_delay: Option<Duration>,
}

/// The running fake.
#[derive(Clone)]
pub struct FakeBotApi {
    /// Base URL to configure as `TELEGRAM_BOT_API_URL`.
    pub base_url: String,
    world: Arc<Mutex<World>>,
    new_updates: Arc<tokio::sync::Notify>,
}

fn ok(result: Value) -> Response {
    Json(json!({ "ok": true, "result": result })).into_response()
}

fn error(status: StatusCode, description: &str, parameters: Option<Value>) -> Response {
    let mut body = json!({ "ok": false, "error_code": status.as_u16(), "description": description });
    if let Some(parameters) = parameters {
        body["parameters"] = parameters;
    }
    (status, Json(body)).into_response()
}

impl FakeBotApi {
    /// Starts the fake on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address: SocketAddr = listener.local_addr().expect("address");
        let fake = Self {
            base_url: format!("http://{address}"),
            world: Arc::new(Mutex::new(World {
                next_message_id: 1000,
                ..World::default()
            })),
            new_updates: Arc::new(tokio::sync::Notify::new()),
        };
        let router = Router::new()
            .route("/{bot}/{method}", post(handle))
            .route("/file/{bot}/{*path}", get(download))
            .with_state(fake.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        fake
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Makes `token` a valid bot with this id and username.
    pub fn add_bot(&self, token: &str, id: i64, username: &str) {
        self.world().bots.insert(
            token.to_owned(),
            json!({ "id": id, "is_bot": true, "first_name": username, "username": username, "can_join_groups": true }),
        );
    }

    /// Queues updates for `getUpdates` of `token`.
    pub fn push_updates(&self, token: &str, updates: impl IntoIterator<Item = Value>) {
        self.world()
            .updates
            .entry(token.to_owned())
            .or_default()
            .extend(updates);
    }

    /// Makes a file downloadable by `file_id`.
    pub fn add_file(&self, file_id: &str, file_path: &str, bytes: Vec<u8>) {
        self.world()
            .files
            .insert(file_id.to_owned(), (file_path.to_owned(), bytes));
    }

    /// Makes `getFile` refuse `file_id` as Telegram does for files over 20 MB.
    pub fn add_too_big_file(&self, file_id: &str) {
        self.world().too_big.push(file_id.to_owned());
    }

    /// The next call of `method` fails with `fault` (several queue up in order).
    pub fn fail_next(&self, method: &str, fault: Fault) {
        self.world()
            .faults
            .entry(method.to_owned())
            .or_default()
            .push_back(fault);
    }

    /// From now on a send is taken (recorded, given its id) at once but answered only after `delay`: a slow
    /// Telegram, or a network that keeps the answer back.
    pub fn delay_answers(&self, delay: Duration) {
        self.world().answer_delay = Some(delay);
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.world().calls.clone()
    }

    /// Calls of one method so far.
    pub fn calls_of(&self, method: &str) -> Vec<RecordedCall> {
        self.calls().into_iter().filter(|c| c.method == method).collect()
    }
}

async fn read_params(request: Request) -> (Value, Option<(String, String, usize, String)>) {
    let is_multipart = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !is_multipart {
        let bytes = Bytes::from_request(request, &()).await.unwrap_or_default();
        return (serde_json::from_slice(&bytes).unwrap_or_else(|_| json!({})), None);
    }
    let mut params = serde_json::Map::new();
    let mut upload = None;
    if let Ok(mut multipart) = Multipart::from_request(request, &()).await {
        while let Ok(Some(field)) = multipart.next_field().await {
            let name = field.name().unwrap_or_default().to_owned();
            match field.file_name().map(str::to_owned) {
                Some(file_name) => {
                    let content_type = field.content_type().unwrap_or_default().to_owned();
                    let size = field.bytes().await.map(|b| b.len()).unwrap_or(0);
                    upload = Some((name, file_name, size, content_type));
                }
                None => {
                    let text = field.text().await.unwrap_or_default();
                    params.insert(name, Value::String(text));
                }
            }
        }
    }
    (Value::Object(params), upload)
}

fn sent_message(world: &mut World, params: &Value, extra: Value) -> Value {
    world.next_message_id += 1;
    let chat_id = params
        .get("chat_id")
        .and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.parse().ok())))
        .unwrap_or(0);
    let mut message = json!({ "message_id": world.next_message_id, "date": chrono::Utc::now().timestamp(),
        "chat": { "id": chat_id, "type": "private" } });
    if let (Some(target), Some(extra)) = (message.as_object_mut(), extra.as_object()) {
        target.extend(extra.clone());
    }
    message
}

async fn handle(
    State(fake): State<FakeBotApi>,
    Path((bot, method)): Path<(String, String)>,
    request: Request,
) -> Response {
    let Some(token) = bot.strip_prefix("bot").map(str::to_owned) else {
        return error(StatusCode::NOT_FOUND, "Not Found", None);
    };
    let (params, upload) = read_params(request).await;
    let fault = {
        let mut world = fake.world();
        world.calls.push(RecordedCall {
            token: token.clone(),
            method: method.clone(),
            params: params.clone(),
            upload: upload.clone(),
        });
        world.faults.get_mut(&method).and_then(VecDeque::pop_front)
    };
    match fault {
        Some(Fault::RetryAfter(seconds)) => {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("Too Many Requests: retry after {seconds}"),
                Some(json!({ "retry_after": seconds })),
            );
        }
        Some(Fault::ServerError) => {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error", None);
        }
        Some(Fault::Reject(code, description)) => {
            return error(
                StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
                &description,
                None,
            );
        }
        Some(Fault::Hang(duration)) => {
            tokio::time::sleep(duration).await;
            return error(StatusCode::GATEWAY_TIMEOUT, "Gateway Timeout", None);
        }
        None => {}
    }
    if method == "getUpdates" {
        return long_poll(&fake, &token, &params).await;
    }
    let (response, delay) = {
        let mut world = fake.world();
        let delay = world.answer_delay.filter(|_| method.starts_with("send"));
        (answer(&mut world, &token, &method, &params), delay)
    };
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    response
}

/// Processes a call that is neither faulted nor `getUpdates`.
fn answer(world: &mut World, token: &str, method: &str, params: &Value) -> Response {
    let Some(me) = world.bots.get(token).cloned() else {
        return error(StatusCode::UNAUTHORIZED, "Unauthorized", None);
    };
    match method {
        "getMe" => ok(me),
        "setWebhook" | "deleteWebhook" => ok(json!(true)),
        "sendMessage" => {
            let text = params.get("text").cloned().unwrap_or(Value::Null);
            let message = sent_message(world, params, json!({ "text": text }));
            ok(message)
        }
        "sendPhoto" | "sendVideo" | "sendDocument" | "sendAudio" | "sendVoice" => {
            let caption = params.get("caption").cloned().unwrap_or(Value::Null);
            let message = sent_message(world, params, json!({ "caption": caption }));
            ok(message)
        }
        "getFile" => {
            let file_id = params.get("file_id").and_then(Value::as_str).unwrap_or_default();
            if world.too_big.iter().any(|id| id == file_id) {
                return error(StatusCode::BAD_REQUEST, "Bad Request: file is too big", None);
            }
            match world.files.get(file_id) {
                Some((path, bytes)) => ok(
                    json!({ "file_id": file_id, "file_unique_id": format!("u{file_id}"),
                    "file_size": bytes.len(), "file_path": path }),
                ),
                None => error(StatusCode::BAD_REQUEST, "Bad Request: invalid file_id", None),
            }
        }
        _ => error(StatusCode::NOT_FOUND, "Not Found: method not found", None),
    }
}

/// `getUpdates` as Telegram answers it: confirmed updates (below `offset`) are forgotten; with none pending
/// the call waits up to `timeout` seconds for new ones.
async fn long_poll(fake: &FakeBotApi, token: &str, params: &Value) -> Response {
    let offset = params.get("offset").and_then(Value::as_i64).unwrap_or(0);
    let wait = Duration::from_secs(params.get("timeout").and_then(Value::as_u64).unwrap_or(0));
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let notified = fake.new_updates.notified();
        {
            let mut world = fake.world();
            if !world.bots.contains_key(token) {
                return error(StatusCode::UNAUTHORIZED, "Unauthorized", None);
            }
            let queue = world.updates.entry(token.to_owned()).or_default();
            queue.retain(|u| u.get("update_id").and_then(Value::as_i64).unwrap_or(0) >= offset);
            if !queue.is_empty() {
                return ok(Value::Array(queue.clone()));
            }
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return ok(json!([]));
        }
    }
}

async fn download(State(fake): State<FakeBotApi>, Path((bot, path)): Path<(String, String)>) -> Response {
    let world = fake.world();
    let known_bot = bot
        .strip_prefix("bot")
        .is_some_and(|token| world.bots.contains_key(token));
    match world.files.values().find(|(file_path, _)| *file_path == path) {
        Some((_, bytes)) if known_bot => (StatusCode::OK, bytes.clone()).into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

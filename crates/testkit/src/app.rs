//! The whole `crm` server started in-process on a free port over a test database, with a client that speaks
//! to it as an API user would.

use std::net::SocketAddr;

use std::sync::Arc;

use crm::app::GatewayFactory;
use crm::{Application, Settings};
use crm_store::Store;
use crm_telegram_user::{GatewaySettings, GrammersGateway};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::TestDatabase;
use crate::fake_bot_api::FakeBotApi;
use crate::fake_telegram::FakeTelegram;
use crate::store::SECRET_KEY;

/// Password of the `admin` user every test app starts with.
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    /// Base URL, `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// The bound address.
    pub address: SocketAddr,
    /// The app's own database handle, for assertions on stored state.
    pub store: Store,
    /// The database (kept alive with the app).
    pub database: TestDatabase,
    /// HTTP client.
    pub client: reqwest::Client,
    /// The Bot API stand-in the app talks to.
    pub bot_api: FakeBotApi,
    /// Telegram's side of the personal accounts (clones share the same world).
    pub telegram: FakeTelegram,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
}

/// Settings of a test app over `database_url`, with its data in `database.dir`.
pub fn test_settings(database: &TestDatabase, database_url: &str) -> Settings {
    let mut settings = Settings::defaults();
    settings.database_url = Some(database_url.to_owned());
    settings.data_dir = database.dir.path().join("data");
    settings.listen_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    settings.secret_key = Some(SECRET_KEY.to_owned());
    settings.crm_admin_password = Some(ADMIN_PASSWORD.to_owned());
    settings.debug = false;
    settings.instance_id = Some(format!("test-{}", uuid::Uuid::new_v4().simple()));
    // The stories' bot backends listen on loopback, which a real installation must allow on purpose too.
    settings.forward_allowed_hosts = vec!["127.0.0.1".to_owned()];
    settings
}

/// Starts the app on `database`.
pub async fn spawn_app(database: TestDatabase) -> TestApp {
    let url = database.url.clone();
    spawn_app_with(database, |settings| settings.database_url = Some(url)).await
}

/// Starts the app on `database` after `adjust` changed its settings.
pub async fn spawn_app_with(database: TestDatabase, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let bot_api = FakeBotApi::start().await;
    spawn_app_on(database, bot_api, adjust).await
}

/// Starts the app on `database`, talking to an existing Bot API stand-in.
pub async fn spawn_app_on(
    database: TestDatabase,
    bot_api: FakeBotApi,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    spawn_app_full(database, bot_api, FakeTelegram::new(), adjust).await
}

/// Starts the app on `database`, talking to existing Bot API and Telegram stand-ins.
pub async fn spawn_app_full(
    database: TestDatabase,
    bot_api: FakeBotApi,
    telegram: FakeTelegram,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    let world = telegram.clone();
    let gateway: GatewayFactory = Box::new(move |vault| world.gateway(vault));
    spawn(database, bot_api, telegram, gateway, adjust).await
}

/// Starts the app on `database` with its real MTProto gateway (grammers) connected to the test peer at `peer`
/// (its address and pre-shared auth key). `TestApp::telegram` is then unused.
pub async fn spawn_app_on_peer(
    database: TestDatabase,
    peer: &crate::mtproto::MtprotoPeer,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    spawn(
        database,
        FakeBotApi::start().await,
        FakeTelegram::new(),
        peer_gateway(peer),
        adjust,
    )
    .await
}

/// The real gateway pointed at the test peer, with the peer's auth key pre-shared.
pub fn peer_gateway(peer: &crate::mtproto::MtprotoPeer) -> GatewayFactory {
    let settings = GatewaySettings {
        dc_override: Some(peer.address()),
        preshared_auth_key: Some(peer.auth_key()),
        ..GatewaySettings::default()
    };
    Box::new(move |vault| Arc::new(GrammersGateway::new(vault, settings)))
}

/// Builds the app. Its start-up future is boxed: nested inline in the futures of `spawn_app` and the like, it
/// made computing their layout overflow rustc's query depth limit in release builds.
async fn build(settings: Settings, gateway: GatewayFactory) -> Application {
    Box::pin(Application::build_with(settings, gateway))
        .await
        .expect("the app builds")
}

async fn spawn(
    database: TestDatabase,
    bot_api: FakeBotApi,
    telegram: FakeTelegram,
    gateway: GatewayFactory,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    let mut settings = test_settings(&database, &database.url);
    settings.telegram_bot_api_url = bot_api.base_url.clone();
    adjust(&mut settings);
    let app = build(settings, gateway).await;
    let address = app.local_addr().expect("bound");
    let store = app.store().clone();
    let (shutdown, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));
    TestApp {
        base_url: format!("http://{address}"),
        address,
        store,
        database,
        client: reqwest::Client::new(),
        bot_api,
        telegram,
        shutdown: Some(shutdown),
        server: Some(server),
    }
}

/// A response: status and JSON body (`Value::Null` when the body is empty or not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// Parsed body.
    pub body: Value,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
}

impl TestApp {
    /// Absolute URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Sends a request with an optional token and JSON body.
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Token {token}"));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("a body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            body,
            headers,
        }
    }

    /// `GET path` with a token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.call(Method::GET, path, token, None).await
    }

    /// Delivers a Bot API `update` to bot `account`'s webhook with its `secret`, as Telegram does; the status.
    pub async fn deliver_update(
        &self,
        account: crm_core::ids::AccountId,
        secret: &str,
        update: &Value,
    ) -> StatusCode {
        self.client
            .post(self.url(&format!("/api/webhook/bot/{account}/")))
            .header("X-Telegram-Bot-Api-Secret-Token", secret)
            .json(update)
            .send()
            .await
            .expect("the webhook answers")
            .status()
    }

    /// `POST path` with a token and JSON body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.call(Method::POST, path, token, Some(body)).await
    }

    /// Logs in and returns the token; panics if the login fails.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let reply = self
            .post(
                "/api/api-token-auth/",
                None,
                serde_json::json!({ "username": username, "password": password }),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "login of {username} failed: {:?}",
            reply.body
        );
        reply.body["token"].as_str().expect("a token").to_owned()
    }

    /// A token of the built-in admin.
    pub async fn admin_token(&self) -> String {
        self.login("admin", ADMIN_PASSWORD).await
    }

    /// Creates an operator through the API and returns (id, token).
    pub async fn create_operator(&self, admin_token: &str, username: &str) -> (i64, String) {
        let password = format!("{username}-password");
        let reply = self
            .post(
                "/api/operators/",
                Some(admin_token),
                serde_json::json!({ "username": username, "password": password }),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "operator {username}: {:?}",
            reply.body
        );
        let id = reply.body["id"].as_i64().expect("an id");
        (id, self.login(username, &password).await)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(self) {
        self.shut_down().await;
    }

    /// Stops the server gracefully and gives back its database and Bot API stand-in (to start another).
    pub async fn shut_down(mut self) -> (TestDatabase, FakeBotApi) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            server
                .await
                .expect("server task")
                .expect("server stopped cleanly");
        }
        (self.database, self.bot_api)
    }
}

impl TestApp {
    /// Logs the personal account of `phone` in through the API by the code the MTProto test `peer` issued (no
    /// cloud password), and waits until it is connected; returns its id.
    pub async fn log_in_on_peer(&self, admin: &str, peer: &crate::mtproto::MtprotoPeer, phone: &str) -> i64 {
        let started = self
            .post(
                "/api/accounts/authenticate/",
                Some(admin),
                serde_json::json!({"phone_number": phone, "api_id": 12345, "api_hash": "0123456789abcdef0123456789abcdef"}),
            )
            .await;
        assert_eq!(started.body["status"], "otp_required", "{}", started.body);
        let id = started.body["account_id"].as_i64().expect("the account's id");
        let verified = self
            .post(
                &format!("/api/accounts/{id}/verify_otp/"),
                Some(admin),
                serde_json::json!({"otp_code": peer.login_code().expect("a code was sent")}),
            )
            .await;
        assert_eq!(verified.body["status"], "authenticated", "{}", verified.body);
        self.account_reaching(admin, id, "active").await;
        id
    }

    /// Waits until account `id`, read through the API with `token`, has `status` (the supervisor's work, for
    /// example); returns it.
    pub async fn account_reaching(&self, token: &str, id: i64, status: &str) -> Value {
        crate::eventually(&format!("account {id} to become {status}"), || async {
            let account = self.get(&format!("/api/accounts/{id}/"), Some(token)).await.body;
            (account["status"] == status).then_some(account)
        })
        .await
    }

    /// Waits until the messages of the chat with Telegram peer `peer_id` (read through the API with `token`,
    /// ordered by Telegram id) satisfy `ready`, which `what` describes; returns them.
    pub async fn peer_messages(
        &self,
        token: &str,
        peer_id: i64,
        what: &str,
        ready: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        crate::eventually(what, || async {
            let chats = self.get("/api/chats/?page=1", Some(token)).await.body;
            let chat = chats["results"]
                .as_array()?
                .iter()
                .find(|c| c["telegram_id"] == peer_id)?
                .clone();
            let path = format!("/api/messages/by_chat/?chat_id={}", chat["id"]);
            let mut messages = self.get(&path, Some(token)).await.body["results"]
                .as_array()?
                .clone();
            messages.sort_by_key(|m| m["telegram_id"].as_i64());
            ready(&messages).then_some(messages)
        })
        .await
    }

    /// Waits until the send job of outgoing message `message_id` has failed an attempt (and was rescheduled);
    /// returns the job.
    pub async fn send_job_after_a_failure(&self, message_id: i64) -> crm_store::entity::jobs::Model {
        use sea_orm::EntityTrait;
        crate::eventually(
            &format!("the send job of message {message_id} to fail once"),
            || async {
                let jobs = crm_store::entity::jobs::Entity::find()
                    .all(self.store.db())
                    .await
                    .ok()?;
                jobs.into_iter()
                    .find(|j| j.payload["message_id"] == message_id && j.last_error.is_some())
            },
        )
        .await
    }

    /// Waits until message `id`, read through the API with `token`, has `status` (sent by the job runner, for
    /// example); returns it.
    pub async fn message_reaching(&self, token: &str, id: i64, status: &str) -> Value {
        crate::eventually(&format!("message {id} to become {status}"), || async {
            let message = self.get(&format!("/api/messages/{id}/"), Some(token)).await.body;
            (message["status"] == status).then_some(message)
        })
        .await
    }
}

/// An instance of the app on a runtime of its own, so that it can be killed as a crashed process would be: every
/// task stops at once and nothing runs its clean-up (leases are not released, connections just vanish).
pub struct IsolatedApp {
    /// Base URL, `http://127.0.0.1:<port>`.
    pub base_url: String,
    runtime: Option<tokio::runtime::Runtime>,
}

impl IsolatedApp {
    /// Starts an instance over `database` (migrated or empty) with its data under `data_dir`, talking to the
    /// scripted `telegram`, after `adjust` changed its settings.
    pub async fn start(
        database: &TestDatabase,
        data_dir: &str,
        telegram: FakeTelegram,
        adjust: impl FnOnce(&mut Settings),
    ) -> Self {
        Self::start_with(
            database,
            data_dir,
            Box::new(move |vault| telegram.gateway(vault)),
            adjust,
        )
        .await
    }

    /// Like [`IsolatedApp::start`], with personal accounts going through `gateway`.
    pub async fn start_with(
        database: &TestDatabase,
        data_dir: &str,
        gateway: GatewayFactory,
        adjust: impl FnOnce(&mut Settings),
    ) -> Self {
        let mut settings = test_settings(database, &database.url);
        settings.data_dir = database.dir.path().join(data_dir);
        settings.telegram_bot_api_url = "http://127.0.0.1:9".into();
        adjust(&mut settings);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime for the instance");
        let (bound, address) = oneshot::channel();
        runtime.spawn(async move {
            let app = build(settings, gateway).await;
            let _ = bound.send(app.local_addr().expect("bound"));
            let _ = app.run(std::future::pending()).await;
        });
        let address = address.await.expect("the instance starts");
        Self {
            base_url: format!("http://{address}"),
            runtime: Some(runtime),
        }
    }

    /// Calls the instance's API and returns the JSON body (`Value::Null` when there is none).
    pub async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Value {
        let mut request = reqwest::Client::new().request(method, format!("{}{path}", self.base_url));
        if let Some(token) = token {
            request = request.header("Authorization", format!("Token {token}"));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("the instance answers");
        response.json().await.unwrap_or(Value::Null)
    }

    /// `GET path`.
    pub async fn get(&self, path: &str, token: &str) -> Value {
        self.call(Method::GET, path, Some(token), None).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, token: &str, body: Value) -> Value {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// A token of the `admin` every test app starts with.
    pub async fn admin_token(&self) -> String {
        let body = serde_json::json!({"username": "admin", "password": ADMIN_PASSWORD});
        let answer = self
            .call(Method::POST, "/api/api-token-auth/", None, Some(body))
            .await;
        answer["token"].as_str().expect("a token").to_owned()
    }

    /// Kills the instance: its tasks are dropped where they stand.
    pub fn kill(mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Drop for IsolatedApp {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

//! Two real `crm serve` processes on one MariaDB database and a Redis server: an update received by one reaches
//! an operator connected to the other; with Redis killed both report `degraded` and keep serving, and after
//! Redis returns a client that resumes gets every event it missed.

use std::time::Duration;

use crm_store::Store;
use crm_testkit::process::{CrmProcess, RedisServer, instance_environment};
use crm_testkit::store::{OpenStore, SECRET_KEY};
use crm_testkit::{TestDatabase, eventually, requirement};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const ADMIN_PASSWORD: &str = "cluster-admin-password";
const TOKEN: &str = "7007008009:AAClusterBotTokenForTheTestSuite_abcdef";
const WEBHOOK_SECRET: &str = "cluster-webhook-secret";

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(60), socket.next())
            .await
            .expect("a frame within 60 s (a bound, not a wait: frames come within seconds)");
        if let Message::Text(text) = frame.expect("open").expect("valid") {
            return serde_json::from_str(text.as_str()).expect("JSON");
        }
    }
}

async fn until(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let frame = next(socket).await;
        if frame["type"] == kind {
            return frame;
        }
    }
}

async fn health(client: &reqwest::Client, instance: &CrmProcess) -> Value {
    client
        .get(format!("{}/api/health/", instance.base_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn wait_health(client: &reqwest::Client, instance: &CrmProcess, status: &str) {
    eventually(&format!("{} to become {status}", instance.base_url), || async {
        (health(client, instance).await["status"] == status).then_some(())
    })
    .await;
}

async fn deliver(
    client: &reqwest::Client,
    instance: &CrmProcess,
    account: crm_core::ids::AccountId,
    message_id: i64,
    text: &str,
) {
    let update = json!({"update_id": message_id, "message": {"message_id": message_id, "date": 1_700_000_000 + message_id,
        "chat": {"id": 8080, "type": "private", "first_name": "Vera"}, "from": {"id": 8080, "first_name": "Vera"}, "text": text}});
    let response = client
        .post(format!("{}/api/webhook/bot/{account}/", instance.base_url))
        .header("X-Telegram-Bot-Api-Secret-Token", WEBHOOK_SECRET)
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// Two healthy `crm serve` processes sharing `database` and reaching Redis at `redis_url`, and a bot account
/// `name` set up in the database they share.
struct Pair {
    a: CrmProcess,
    b: CrmProcess,
    store: Store,
    account: crm_core::ids::AccountId,
}

async fn start_pair(
    database: &TestDatabase,
    redis: &RedisServer,
    redis_url: &str,
    client: &reqwest::Client,
    name: &str,
) -> Pair {
    let binary = env!("CARGO_BIN_EXE_crm");
    let environment = |instance: &str| {
        let mut environment = instance_environment(database, redis, instance, SECRET_KEY, ADMIN_PASSWORD);
        environment.insert("REDIS_URL", redis_url.to_owned());
        environment
    };
    let a = CrmProcess::start(binary, &environment("instance-a")).await;
    let b = CrmProcess::start(binary, &environment("instance-b")).await;
    wait_health(client, &a, "healthy").await;
    wait_health(client, &b, "healthy").await;
    let store = database.store().await;
    let account = crm_testkit::fixtures::bot_account(&store, name, Some(TOKEN), Some(WEBHOOK_SECRET))
        .await
        .id;
    Pair { a, b, store, account }
}

// Ignored, with the variable to set, unless both MariaDB and a redis-server binary are configured.
crm_testkit::on_backends!(
    [mysql] with [redis_server]: two_instances_share_events_through_redis_and_recover_from_its_loss,
    a_silent_redis_is_noticed_and_fan_out_returns_when_it_answers_again
);

async fn two_instances_share_events_through_redis_and_recover_from_its_loss(database: TestDatabase) {
    let redis_binary = requirement::REDIS_SERVER.require();
    let mut redis = RedisServer::start(&redis_binary).await;
    let client = reqwest::Client::new();
    // Setup through instance A (and the database both share).
    let Pair { a, b, store, account } = start_pair(&database, &redis, &redis.url(), &client, "Cluster").await;
    let login = |instance: &CrmProcess, username: &str, password: &str| {
        let request = client
            .post(format!("{}/api/api-token-auth/", instance.base_url))
            .json(&json!({"username": username, "password": password}));
        async move {
            request.send().await.unwrap().json::<Value>().await.unwrap()["token"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let admin = login(&a, "admin", ADMIN_PASSWORD).await;
    let olga: Value = client
        .post(format!("{}/api/operators/", a.base_url))
        .header("Authorization", format!("Token {admin}"))
        .json(&json!({"username": "olga", "password": "olga-password"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let olga_token = login(&b, "olga", "olga-password").await;
    deliver(&client, &a, account, 1, "first").await;
    let chats: Value = client
        .get(format!("{}/api/chats/", a.base_url))
        .header("Authorization", format!("Token {admin}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let chat_id = chats["results"][0]["id"].as_i64().unwrap();

    // Olga is connected to B; the assignment and the message happen on A.
    let (mut ws, _) = tokio_tungstenite::connect_async(format!(
        "ws://127.0.0.1:{}/ws/messages/?token={olga_token}",
        b.port
    ))
    .await
    .unwrap();
    assert_eq!(next(&mut ws).await["chats"], json!([]));
    client
        .post(format!("{}/api/chats/{chat_id}/assign/", a.base_url))
        .header("Authorization", format!("Token {admin}"))
        .json(&json!({"operator_id": olga["id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(until(&mut ws, "chat_added").await["chat"]["id"], chat_id);
    deliver(&client, &a, account, 2, "received by A").await;
    let seen = until(&mut ws, "new_message").await;
    assert_eq!(seen["message"]["text"], "received by A");
    let last_seen = until(&mut ws, "chat_updated").await["event_id"].as_i64().unwrap();

    // Redis goes away: both instances keep serving and say they are degraded.
    redis.kill().await;
    wait_health(&client, &a, "degraded").await;
    wait_health(&client, &b, "degraded").await;
    assert_eq!(health(&client, &b).await["bus"], "degraded");
    deliver(&client, &a, account, 3, "while Redis was down").await;

    // Redis returns: fan-out resumes on its own, and resuming fills the gap.
    redis.restart().await;
    wait_health(&client, &a, "healthy").await;
    wait_health(&client, &b, "healthy").await;
    ws.send(Message::Text(
        json!({"type": "resume", "since_event_id": last_seen})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    let missed = until(&mut ws, "new_message").await;
    assert_eq!(missed["message"]["text"], "while Redis was down");
    until(&mut ws, "resumed").await;
    deliver(&client, &a, account, 4, "after Redis returned").await;
    assert_eq!(
        until(&mut ws, "new_message").await["message"]["text"],
        "after Redis returned"
    );

    a.stop().await;
    b.stop().await;
    store.close().await.unwrap();
}

/// Redis becomes unreachable without a word (no FIN, no RST: a partition or a NAT that forgot the connection):
/// both instances notice within the heartbeat deadline and say `degraded`, and once Redis answers again events
/// flow between them within 30 s with nothing else done.
async fn a_silent_redis_is_noticed_and_fan_out_returns_when_it_answers_again(database: TestDatabase) {
    let redis_binary = requirement::REDIS_SERVER.require();
    let redis = RedisServer::start(&redis_binary).await;
    let proxy = crm_testkit::FaultProxy::start(format!("127.0.0.1:{}", redis.port).parse().unwrap())
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let redis_url = format!("redis://{}", proxy.local_addr);
    let Pair { a, b, store, account } = start_pair(&database, &redis, &redis_url, &client, "Silent").await;
    let admin: Value = client
        .post(format!("{}/api/api-token-auth/", b.base_url))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = admin["token"].as_str().unwrap().to_owned();
    let connect =
        || tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{}/ws/messages/?token={admin}", b.port));
    let (mut ws, _) = connect().await.unwrap();
    until(&mut ws, "initial_chats").await;
    deliver(&client, &a, account, 1, "before the silence").await;
    assert_eq!(
        until(&mut ws, "new_message").await["message"]["text"],
        "before the silence"
    );

    // Nothing passes and nothing is closed: both instances find out by themselves.
    proxy.blackhole();
    let silenced = tokio::time::Instant::now();
    wait_health(&client, &a, "degraded").await;
    wait_health(&client, &b, "degraded").await;
    let noticed = silenced.elapsed();
    assert_eq!(health(&client, &a).await["bus"], "degraded");

    // Redis answers again: both subscribe again by themselves, and B's operator gets A's next message live.
    proxy.restore();
    let restored = tokio::time::Instant::now();
    wait_health(&client, &a, "healthy").await;
    wait_health(&client, &b, "healthy").await;
    eventually("both instances to be subscribed again", || async {
        (redis.subscribers("crm:events").await == 2).then_some(())
    })
    .await;
    println!(
        "| Redis blackholed, two instances | mysql | both degraded {noticed:.1?} after the silence began; both \
         healthy and subscribed {:.1?} after it ended |",
        restored.elapsed()
    );
    let (mut ws, _) = connect().await.unwrap();
    until(&mut ws, "initial_chats").await;
    deliver(&client, &a, account, 2, "after the silence").await;
    assert_eq!(
        until(&mut ws, "new_message").await["message"]["text"],
        "after the silence"
    );

    a.stop().await;
    b.stop().await;
    store.close().await.unwrap();
}

//! The message path under concurrency, end to end: events from concurrent publishers on two instances reach every
//! WebSocket client once and in commit order (across a reconnect that resumes); replies are sent exactly once,
//! also when the database drops in the middle of sending; and the webhook answers every one of 20,000
//! Telegram-shaped updates on MariaDB without an error.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use crm_core::ids::EventSeq;
use crm_core::ports::EventLog;
use crm_testkit::app::spawn_app_with;
use crm_testkit::process::{CrmProcess, RedisServer, instance_environment};
use crm_testkit::store::{OpenStore, SECRET_KEY};
use crm_testkit::{
    FaultProxy, TestApp, TestDatabase, eventually, eventually_within, on_backends, requirement, spawn_app,
};
use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const ADMIN_PASSWORD: &str = "spine-admin-password";
const TOKEN: &str = "7008009001:AASpineBotTokenForTheTestSuite_abcdefgh";
const WEBHOOK_SECRET: &str = "spine-webhook-secret";

on_backends!([sqlite, mysql, postgres] with [redis_server]: every_client_gets_every_event_once_in_commit_order);
on_backends!([sqlite, mysql, postgres]: two_hundred_replies_make_two_hundred_sends);
on_backends!([mysql]:
    replies_are_sent_once_through_a_database_cut,
    the_webhook_answers_twenty_thousand_bursty_updates_without_an_error
);

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A Telegram-shaped text update: `date` has Telegram's one-second resolution, so bursts share it.
fn text_update(update_id: i64, peer: i64, date: i64, text: &str) -> Value {
    json!({"update_id": update_id, "message": {"message_id": update_id, "date": date,
        "chat": {"id": peer, "type": "private", "first_name": format!("Customer {peer}")},
        "from": {"id": peer, "is_bot": false, "first_name": format!("Customer {peer}")}, "text": text}})
}

async fn post_update(client: &reqwest::Client, base_url: &str, account: i64, update: &Value) -> StatusCode {
    client
        .post(format!("{base_url}/api/webhook/bot/{account}/"))
        .header("X-Telegram-Bot-Api-Secret-Token", WEBHOOK_SECRET)
        .json(update)
        .send()
        .await
        .map(|response| response.status())
        .unwrap_or(StatusCode::SERVICE_UNAVAILABLE)
}

async fn next_frame(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .expect("a frame within 30 s");
        match frame.expect("the socket is open").expect("a valid frame") {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("JSON"),
            Message::Close(close) => panic!("closed by the server: {close:?}"),
            _ => continue,
        }
    }
}

/// Opens the WebSocket (optionally resuming after `since`) and reads the initial chat list; returns the socket
/// and the `last_event_id` the list is as of.
async fn open_socket(port: u16, token: &str, since: Option<i64>) -> (Socket, i64) {
    let resume = since
        .map(|since| format!("&since_event_id={since}"))
        .unwrap_or_default();
    let url = format!("ws://127.0.0.1:{port}/ws/messages/?token={token}{resume}");
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("the WebSocket opens");
    let initial = next_frame(&mut socket).await;
    assert_eq!(initial["type"], "initial_chats", "{initial}");
    (socket, initial["last_event_id"].as_i64().unwrap())
}

/// Reads frames until `count` events (frames with an `event_id`) arrived; returns their ids, kinds and chats.
async fn collect_events(socket: &mut Socket, count: usize) -> Vec<(i64, String, Option<i64>)> {
    let mut events = Vec::with_capacity(count);
    while events.len() < count {
        let frame = next_frame(socket).await;
        if let Some(id) = frame["event_id"].as_i64() {
            let chat = frame["chat"]["id"]
                .as_i64()
                .or_else(|| frame["message"]["chat_id"].as_i64());
            events.push((id, frame["type"].as_str().unwrap_or_default().to_owned(), chat));
        }
    }
    events
}

async fn login(client: &reqwest::Client, base_url: &str, username: &str, password: &str) -> String {
    let body: Value = client
        .post(format!("{base_url}/api/api-token-auth/"))
        .json(&json!({"username": username, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["token"].as_str().expect("a token").to_owned()
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Value,
) -> Value {
    client
        .request(method, url)
        .header("Authorization", format!("Token {token}"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap_or(Value::Null)
}

const PUBLISHERS: i64 = 8;
const UPDATES_PER_PUBLISHER: i64 = 125;
const CHATS: i64 = 16;
/// Chats (by index) held by the operator.
const OPERATOR_CHATS: [i64; 4] = [0, 5, 10, 15];

fn peer_of(chat_index: i64) -> i64 {
    70_000 + chat_index
}

/// 8 publishers post 1,000 updates (2,000 events) to two instances at once; admins and an operator connected to
/// either instance receive exactly the events they may see, once each, in the log's order. One admin drops its
/// connection half-way and reconnects with `since_event_id`: together its two connections saw the same.
async fn every_client_gets_every_event_once_in_commit_order(database: TestDatabase) {
    let redis_binary = requirement::REDIS_SERVER.require();
    let redis = RedisServer::start(&redis_binary).await;
    let binary = env!("CARGO_BIN_EXE_crm");
    let environment = |name: &str| instance_environment(&database, &redis, name, SECRET_KEY, ADMIN_PASSWORD);
    let a = CrmProcess::start(binary, &environment("instance-a")).await;
    let b = CrmProcess::start(binary, &environment("instance-b")).await;
    let client = reqwest::Client::new();
    let store = database.store().await;
    let account = crm_testkit::fixtures::bot_account(&store, "Spine", Some(TOKEN), Some(WEBHOOK_SECRET))
        .await
        .id
        .0;
    let admin = login(&client, &a.base_url, "admin", ADMIN_PASSWORD).await;
    let operator = call(
        &client,
        reqwest::Method::POST,
        format!("{}/api/operators/", a.base_url),
        &admin,
        json!({"username": "olga", "password": "olga-password", "max_chats": 10}),
    )
    .await;
    let olga = login(&client, &b.base_url, "olga", "olga-password").await;

    // The chats exist before the race; four of them are Olga's.
    let mut chat_of_peer = HashMap::new();
    for index in 0..CHATS {
        let status = post_update(
            &client,
            &a.base_url,
            account,
            &text_update(index + 1, peer_of(index), 1_700_000_000, "hi"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let chats = call(
        &client,
        reqwest::Method::GET,
        format!("{}/api/chats/", a.base_url),
        &admin,
        json!({}),
    )
    .await;
    for chat in chats["results"].as_array().unwrap() {
        chat_of_peer.insert(
            chat["telegram_id"].as_i64().unwrap(),
            chat["id"].as_i64().unwrap(),
        );
    }
    assert_eq!(chat_of_peer.len() as i64, CHATS);
    let olgas_chats: HashSet<i64> = OPERATOR_CHATS
        .iter()
        .map(|index| chat_of_peer[&peer_of(*index)])
        .collect();
    for chat in &olgas_chats {
        let assigned = call(
            &client,
            reqwest::Method::POST,
            format!("{}/api/chats/{chat}/assign/", a.base_url),
            &admin,
            json!({"operator_id": operator["id"]}),
        )
        .await;
        assert_eq!(assigned["operator_id"], operator["id"], "{assigned}");
    }

    // Every update of the race, planned: which chat it goes to.
    let plan: Vec<(i64, i64)> = (0..PUBLISHERS * UPDATES_PER_PUBLISHER)
        .map(|n| (1_000 + n, peer_of((n * 7) % CHATS)))
        .collect();
    let updates_for_olga = plan
        .iter()
        .filter(|(_, peer)| olgas_chats.contains(&chat_of_peer[peer]))
        .count();
    let all_events = plan.len() * 2;
    let olgas_events = updates_for_olga * 2;

    // Both relays have numbered and delivered the set-up's events before the clients connect, so every client
    // starts from the same point.
    eventually(
        "the set-up's events to be delivered on both instances",
        || async {
            use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
            let unnumbered = crm_store::entity::events::Entity::find()
                .filter(crm_store::entity::events::Column::Seq.is_null())
                .count(store.db())
                .await
                .ok()?;
            let last = store.last_seq().await.ok()?.0;
            for port in [a.port, b.port] {
                let (probe, delivered) = open_socket(port, &admin, None).await;
                drop(probe);
                if delivered != last {
                    return None;
                }
            }
            (unnumbered == 0).then_some(())
        },
    )
    .await;
    let (mut admin_a, start_admin_a) = open_socket(a.port, &admin, None).await;
    let (mut admin_b, start_admin_b) = open_socket(b.port, &admin, None).await;
    let (mut olga_a, start_olga_a) = open_socket(a.port, &olga, None).await;
    let (mut olga_b, start_olga_b) = open_socket(b.port, &olga, None).await;
    let (mut resuming, start_resuming) = open_socket(b.port, &admin, None).await;
    let start = [
        start_admin_a,
        start_admin_b,
        start_olga_a,
        start_olga_b,
        start_resuming,
    ];
    assert!(
        start.iter().all(|s| *s == start[0]),
        "nothing happens between the connections: {start:?}"
    );
    let start = start[0];

    let readers = vec![
        tokio::spawn(async move { collect_events(&mut admin_a, all_events).await }),
        tokio::spawn(async move { collect_events(&mut admin_b, all_events).await }),
        tokio::spawn(async move { collect_events(&mut olga_a, olgas_events).await }),
        tokio::spawn(async move { collect_events(&mut olga_b, olgas_events).await }),
    ];
    let resumer = {
        let admin = admin.clone();
        let port = b.port;
        tokio::spawn(async move {
            let mut seen = collect_events(&mut resuming, all_events / 4).await;
            drop(resuming);
            let last = seen.last().unwrap().0;
            let (mut again, _) = open_socket(port, &admin, Some(last)).await;
            seen.extend(collect_events(&mut again, all_events - seen.len()).await);
            seen
        })
    };

    let publishers: Vec<_> = (0..PUBLISHERS)
        .map(|publisher| {
            let client = client.clone();
            let base_url = if publisher % 2 == 0 {
                a.base_url.clone()
            } else {
                b.base_url.clone()
            };
            let mine: Vec<(i64, i64)> = plan
                .iter()
                .skip(usize::try_from(publisher).unwrap())
                .step_by(usize::try_from(PUBLISHERS).unwrap())
                .copied()
                .collect();
            tokio::spawn(async move {
                for (n, (update_id, peer)) in mine.into_iter().enumerate() {
                    // Bursts within one second, as Telegram dates them.
                    let date = 1_700_000_100 + i64::try_from(n).unwrap() / 40;
                    let update = text_update(update_id, peer, date, &format!("update {update_id}"));
                    assert_eq!(
                        post_update(&client, &base_url, account, &update).await,
                        StatusCode::OK
                    );
                }
            })
        })
        .collect();
    for publisher in publishers {
        publisher.await.unwrap();
    }

    // What each may see, from the log itself.
    let log = eventually("every event to be numbered", || async {
        let log = store.read_after(EventSeq(start), 100_000).await.ok()?;
        (log.len() == all_events).then_some(log)
    })
    .await;
    let expected_all: Vec<i64> = log.iter().map(|event| event.seq.0).collect();
    let expected_olga: Vec<i64> = log
        .iter()
        .filter(|event| event.chat_id.is_some_and(|chat| olgas_chats.contains(&chat)))
        .map(|event| event.seq.0)
        .collect();
    assert_eq!(expected_olga.len(), olgas_events);
    let mut received = Vec::new();
    for reader in readers {
        received.push(reader.await.unwrap());
    }
    received.push(resumer.await.unwrap());
    let names = [
        "admin on A",
        "admin on B",
        "olga on A",
        "olga on B",
        "admin reconnecting to B",
    ];
    for (name, events) in names.iter().zip(&received) {
        let ids: Vec<i64> = events.iter().map(|(id, _, _)| *id).collect();
        let expected = if name.starts_with("olga") {
            &expected_olga
        } else {
            &expected_all
        };
        assert_eq!(
            &ids, expected,
            "{name}: every visible event once, in commit order"
        );
        // Within a chat, each message is announced before the chat update that counts it.
        let mut pending: BTreeMap<i64, usize> = BTreeMap::new();
        for (_, kind, chat) in events {
            let chat = chat.expect("every event of the race names its chat");
            let waiting = pending.entry(chat).or_default();
            match kind.as_str() {
                "new_message" => *waiting += 1,
                "chat_updated" => {
                    assert!(*waiting > 0, "{name}: chat {chat} updated before its message");
                    *waiting -= 1;
                }
                other => panic!("{name}: unexpected {other}"),
            }
        }
    }
    let stored = crm_store::repo::stats::system_counts(&store).await.unwrap();
    assert_eq!(stored.messages as usize, plan.len() + CHATS as usize);

    a.stop().await;
    b.stop().await;
    store.close().await.unwrap();
}

/// A bot connected through the API, with `chats` customers who wrote to it; returns the admin's token and the
/// chat ids by customer.
async fn bot_with_chats(app: &TestApp, chats: i64) -> (String, Vec<i64>) {
    let admin = app.admin_token().await;
    app.bot_api.add_bot(TOKEN, 7_008_009_001, "spine_bot");
    let created = app
        .post(
            "/api/accounts/",
            Some(&admin),
            json!({"name": "Spine", "account_type": "bot", "bot_token": TOKEN}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    for index in 0..chats {
        let response = app
            .client
            .post(app.url(&format!("/api/webhook/bot/{TOKEN}/")))
            .json(&text_update(index + 1, peer_of(index), 1_700_000_000, "hello"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let listed = app.get("/api/chats/", Some(&admin)).await.body;
    let mut ids: Vec<(i64, i64)> = listed["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|chat| {
            (
                chat["telegram_id"].as_i64().unwrap(),
                chat["id"].as_i64().unwrap(),
            )
        })
        .collect();
    ids.sort_unstable();
    assert_eq!(ids.len() as i64, chats);
    (admin, ids.into_iter().map(|(_, id)| id).collect())
}

/// 8 operators' worth of concurrent replies, 25 each, spread over `chats`; returns the accepted messages as
/// (id, chat, text).
async fn reply_concurrently(app: &TestApp, admin: &str, chats: &[i64]) -> Vec<(i64, i64, String)> {
    let senders: Vec<_> = (0..8)
        .map(|sender| {
            let client = app.client.clone();
            let base_url = app.base_url.clone();
            let admin = admin.to_owned();
            let chats = chats.to_vec();
            tokio::spawn(async move {
                let mut accepted = Vec::new();
                for n in 0..25 {
                    let chat = chats[(sender * 3 + n) % chats.len()];
                    let text = format!("reply {sender}-{n}");
                    let response = client
                        .post(format!("{base_url}/api/chats/{chat}/send_message/"))
                        .header("Authorization", format!("Token {admin}"))
                        .json(&json!({"text": text}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status(), StatusCode::CREATED);
                    let body: Value = response.json().await.unwrap();
                    assert_eq!(body["status"], "queued");
                    accepted.push((body["id"].as_i64().unwrap(), chat, text));
                }
                accepted
            })
        })
        .collect();
    let mut accepted = Vec::new();
    for sender in senders {
        accepted.extend(sender.await.unwrap());
    }
    accepted
}

/// Waits until every accepted reply is `sent`, then checks Telegram got each exactly once, each chat's in the
/// order they were accepted, and that nothing was left unconfirmed.
async fn assert_sent_exactly_once(app: &TestApp, admin: &str, accepted: &[(i64, i64, String)]) {
    let chats: HashSet<i64> = accepted.iter().map(|(_, chat, _)| *chat).collect();
    eventually_within(Duration::from_secs(120), "every reply to be sent", || async {
        let mut sent = 0;
        for chat in &chats {
            let page = app
                .get(
                    &format!("/api/messages/by_chat/?chat_id={chat}&limit=200"),
                    Some(admin),
                )
                .await
                .body;
            for message in page["results"].as_array()? {
                if message["is_outgoing"] == true {
                    assert_ne!(message["status"], "failed", "{message}");
                    if message["status"] == "sent" {
                        sent += 1;
                    }
                }
            }
        }
        (sent == accepted.len()).then_some(())
    })
    .await;
    let calls = app.bot_api.calls_of("sendMessage");
    let texts: Vec<String> = calls
        .iter()
        .map(|c| c.params["text"].as_str().unwrap().to_owned())
        .collect();
    let distinct: HashSet<&String> = texts.iter().collect();
    assert_eq!(calls.len(), accepted.len(), "one sendMessage per reply");
    assert_eq!(distinct.len(), accepted.len(), "no reply sent twice");
    // Per chat, Telegram got the replies in the order the API accepted them.
    let peer_of_chat: HashMap<i64, i64> = {
        let listed = app.get("/api/chats/", Some(admin)).await.body;
        listed["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|chat| {
                (
                    chat["id"].as_i64().unwrap(),
                    chat["telegram_id"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    for chat in &chats {
        let mut mine: Vec<&(i64, i64, String)> = accepted.iter().filter(|(_, c, _)| c == chat).collect();
        mine.sort_by_key(|(id, _, _)| *id);
        let expected: Vec<&str> = mine.iter().map(|(_, _, text)| text.as_str()).collect();
        let peer = peer_of_chat[chat];
        let delivered: Vec<&str> = calls
            .iter()
            .filter(|c| c.params["chat_id"].as_i64() == Some(peer))
            .map(|c| c.params["text"].as_str().unwrap())
            .collect();
        assert_eq!(delivered, expected, "chat {chat}: sent in the order accepted");
    }
    let status = app.get("/api/system/status/", Some(admin)).await.body;
    assert_eq!(
        status["unconfirmed_sends"], 0,
        "nothing left in the residual window"
    );
    assert_eq!(status["messages"]["failed"], 0);
}

async fn two_hundred_replies_make_two_hundred_sends(database: TestDatabase) {
    let app = spawn_app(database).await;
    let (admin, chats) = bot_with_chats(&app, 10).await;
    let accepted = reply_concurrently(&app, &admin, &chats).await;
    assert_eq!(accepted.len(), 200);
    assert_sent_exactly_once(&app, &admin, &accepted).await;
    app.stop().await;
}

/// The database behind a proxy is cut for 10 s while Telegram holds sends in flight (it answers after 300 ms):
/// outcomes that could not be recorded are recorded once it returns, never sent again, and nothing stays
/// queued.
async fn replies_are_sent_once_through_a_database_cut(database: TestDatabase) {
    let url = url::Url::parse(&database.url).unwrap();
    let target = tokio::net::lookup_host(format!(
        "{}:{}",
        url.host_str().unwrap(),
        url.port_or_known_default().unwrap()
    ))
    .await
    .unwrap()
    .next()
    .unwrap();
    let proxy = FaultProxy::start(target).await.unwrap();
    let mut through_proxy = url.clone();
    through_proxy.set_host(Some("127.0.0.1")).unwrap();
    through_proxy.set_port(Some(proxy.local_addr.port())).unwrap();
    let proxied = through_proxy.to_string();
    let app = spawn_app_with(database, |settings| settings.database_url = Some(proxied)).await;
    let (admin, chats) = bot_with_chats(&app, 20).await;
    app.bot_api.delay_answers(Duration::from_millis(300));
    let accepted = reply_concurrently(&app, &admin, &chats).await;
    assert_eq!(accepted.len(), 200);

    eventually("Telegram to be sending", || async {
        (app.bot_api.calls_of("sendMessage").len() >= 40).then_some(())
    })
    .await;
    proxy.cut();
    // The outage itself: the scenario is a database gone for ten seconds.
    tokio::time::sleep(Duration::from_secs(10)).await;
    let during = app.bot_api.calls_of("sendMessage").len();
    proxy.restore();
    assert!(
        during < accepted.len(),
        "the cut happened mid-send ({during} sent)"
    );
    assert_sent_exactly_once(&app, &admin, &accepted).await;
    app.stop().await;
}

/// 50 concurrent senders post 20,000 updates in one-second bursts into 20 chats: every one is answered 200 and
/// stored once, and each chat counts exactly its messages.
async fn the_webhook_answers_twenty_thousand_bursty_updates_without_an_error(database: TestDatabase) {
    const SENDERS: i64 = 50;
    const PER_SENDER: i64 = 400;
    const HOT_CHATS: i64 = 20;
    let app = spawn_app(database).await;
    let store = app.store.clone();
    let account = crm_testkit::fixtures::bot_account(&store, "Load", Some(TOKEN), Some(WEBHOOK_SECRET))
        .await
        .id
        .0;
    let senders: Vec<_> = (0..SENDERS)
        .map(|sender| {
            let client = app.client.clone();
            let base_url = app.base_url.clone();
            tokio::spawn(async move {
                let mut failures: BTreeMap<u16, usize> = BTreeMap::new();
                for n in 0..PER_SENDER {
                    let id = sender * PER_SENDER + n + 1;
                    let update = text_update(id, peer_of(id % HOT_CHATS), 1_700_000_000 + n / 20, "burst");
                    let status = post_update(&client, &base_url, account, &update).await;
                    if status != StatusCode::OK {
                        *failures.entry(status.as_u16()).or_default() += 1;
                    }
                }
                failures
            })
        })
        .collect();
    let mut failures: BTreeMap<u16, usize> = BTreeMap::new();
    for sender in senders {
        for (status, count) in sender.await.unwrap() {
            *failures.entry(status).or_default() += count;
        }
    }
    assert!(failures.is_empty(), "non-200 answers by status: {failures:?}");
    let admin = app.admin_token().await;
    let listed = app.get("/api/chats/", Some(&admin)).await.body;
    let counts: Vec<i64> = listed["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|chat| chat["message_count"].as_i64().unwrap())
        .collect();
    assert_eq!(counts.len() as i64, HOT_CHATS);
    assert!(
        counts
            .iter()
            .all(|count| *count == SENDERS * PER_SENDER / HOT_CHATS),
        "{counts:?}"
    );
    let stored = crm_store::repo::stats::system_counts(&store).await.unwrap();
    assert_eq!(
        stored.messages as i64,
        SENDERS * PER_SENDER,
        "each update stored once"
    );
    app.stop().await;
}

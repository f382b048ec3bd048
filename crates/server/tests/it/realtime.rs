//! The WebSocket: authentication, initial chat lists (chunked past 50), events filtered by role and by
//! assignment (taking effect at once), client requests, bad frames, and `resume` after a disconnect.

use std::time::Duration;

use crm_testkit::{TestApp, TestDatabase, on_every_backend, spawn_app};
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const TOKEN: &str = "7006007008:AARealtimeBotTokenForTheTestSuite_abcd";
const SECRET: &str = "realtime-webhook-secret";

async fn connect(app: &TestApp, token: &str) -> Socket {
    let url = format!("ws://{}/ws/messages/?token={token}", app.address);
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("the WebSocket opens");
    socket
}

/// The next JSON frame (bounded wait).
async fn next(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("a frame within 10 s");
        match frame.expect("the socket is open").expect("a valid frame") {
            Message::Text(text) => return serde_json::from_str(text.as_str()).expect("JSON"),
            Message::Close(close) => panic!("closed: {close:?}"),
            _ => continue,
        }
    }
}

/// Frames until one of `kind` arrives; returns it and the types skipped on the way.
async fn until(socket: &mut Socket, kind: &str) -> (Value, Vec<String>) {
    let mut skipped = Vec::new();
    loop {
        let frame = next(socket).await;
        if frame["type"] == kind {
            return (frame, skipped);
        }
        skipped.push(frame["type"].as_str().unwrap_or_default().to_owned());
    }
}

async fn send(socket: &mut Socket, value: Value) {
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .unwrap();
}

async fn deliver(app: &TestApp, account: crm_core::ids::AccountId, peer: i64, message_id: i64, text: &str) {
    let update = json!({"update_id": peer * 1000 + message_id, "message": {"message_id": message_id, "date": 1_700_000_000 + message_id,
        "chat": {"id": peer, "type": "private", "first_name": format!("Peer {peer}")}, "from": {"id": peer, "first_name": "P"}, "text": text}});
    assert_eq!(app.deliver_update(account, SECRET, &update).await, StatusCode::OK);
}

async fn chat_of_peer(app: &TestApp, admin: &str, peer: i64) -> i64 {
    let chats = app.get("/api/chats/?page=1", Some(admin)).await.body;
    chats["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["telegram_id"] == peer)
        .unwrap()["id"]
        .as_i64()
        .unwrap()
}

on_every_backend!(
    events_follow_roles_and_assignments,
    initial_lists_are_chunked_and_resume_replays_what_was_missed
);

async fn events_follow_roles_and_assignments(database: TestDatabase) {
    let app = spawn_app(database).await;
    let admin = app.admin_token().await;
    let (olga_id, olga) = app.create_operator(&admin, "olga").await;
    let (pavel_id, pavel) = app.create_operator(&admin, "pavel").await;
    let bot = crm_testkit::fixtures::bot_account(&app.store, "Live", Some(TOKEN), Some(SECRET))
        .await
        .id;
    deliver(&app, bot, 101, 1, "hello").await;
    deliver(&app, bot, 102, 1, "other customer").await;
    let chat_a = chat_of_peer(&app, &admin, 101).await;
    let chat_b = chat_of_peer(&app, &admin, 102).await;

    // No token, a bad token, a foreign origin: refused before the upgrade.
    for request in [
        format!("ws://{}/ws/messages/", app.address)
            .into_client_request()
            .unwrap(),
        format!("ws://{}/ws/messages/?token={}", app.address, "0".repeat(40))
            .into_client_request()
            .unwrap(),
    ] {
        match tokio_tungstenite::connect_async(request).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
            other => panic!("expected 401, got {other:?}"),
        }
    }
    let mut foreign = format!("ws://{}/ws/messages/?token={admin}", app.address)
        .into_client_request()
        .unwrap();
    foreign
        .headers_mut()
        .insert("Origin", "https://evil.example".parse().unwrap());
    assert!(
        matches!(tokio_tungstenite::connect_async(foreign).await, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 403)
    );
    // The same host on another port or scheme is another origin (another application on the machine).
    for other in [
        format!("http://{}:{}", app.address.ip(), app.address.port() + 1),
        format!("https://{}:{}", app.address.ip(), app.address.port() + 1),
    ] {
        let mut request = format!("ws://{}/ws/messages/?token={admin}", app.address)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert("Origin", other.parse().unwrap());
        assert!(
            matches!(tokio_tungstenite::connect_async(request).await, Err(tokio_tungstenite::tungstenite::Error::Http(r)) if r.status() == 403),
            "{other} may not open the WebSocket"
        );
    }

    // The token may also come as the WebSocket subprotocol, as browsers send it.
    let mut by_protocol = format!("ws://{}/ws/messages/", app.address)
        .into_client_request()
        .unwrap();
    by_protocol
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", olga.parse().unwrap());
    let (mut olga_ws, response) = tokio_tungstenite::connect_async(by_protocol).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], olga.as_str());
    let mut admin_ws = connect(&app, &admin).await;
    // The UI's session cookie works too, from an allowed origin.
    let mut by_cookie = format!("ws://{}/ws/messages/", app.address)
        .into_client_request()
        .unwrap();
    by_cookie.headers_mut().insert(
        "Cookie",
        format!("theme=dark; crm_session={pavel}").parse().unwrap(),
    );
    by_cookie
        .headers_mut()
        .insert("Origin", format!("http://{}", app.address).parse().unwrap());
    let (mut pavel_ws, _) = tokio_tungstenite::connect_async(by_cookie).await.unwrap();
    let initial = next(&mut admin_ws).await;
    assert_eq!(
        (
            initial["type"].as_str(),
            initial["chats"].as_array().unwrap().len()
        ),
        (Some("initial_chats"), 2)
    );
    assert_eq!(initial["chats"][0]["telegram_id"], 102, "newest activity first");
    assert_eq!(
        next(&mut olga_ws).await["chats"],
        json!([]),
        "operators see only their chats"
    );
    assert_eq!(next(&mut pavel_ws).await["chats"], json!([]));

    // Assigning gives the chat at once.
    app.post(
        &format!("/api/chats/{chat_a}/assign/"),
        Some(&admin),
        json!({"operator_id": olga_id}),
    )
    .await;
    let (added, _) = until(&mut olga_ws, "chat_added").await;
    assert_eq!(added["chat"]["id"], chat_a);
    let (updated, _) = until(&mut admin_ws, "chat_updated").await;
    assert_eq!(updated["chat"]["assigned_operator_id"], olga_id);

    deliver(&app, bot, 101, 2, "is my order ready?").await;
    let (seen, _) = until(&mut olga_ws, "new_message").await;
    assert_eq!(
        (
            seen["message"]["text"].as_str(),
            seen["message"]["chat_id"].as_i64()
        ),
        (Some("is my order ready?"), Some(chat_a))
    );
    assert!(seen["event_id"].as_i64().unwrap() > added["event_id"].as_i64().unwrap());
    let (admin_seen, _) = until(&mut admin_ws, "new_message").await;
    assert_eq!(admin_seen["event_id"], seen["event_id"]);
    // Pavel's first event is his own assignment: the message before it was never sent to him.
    app.post(
        &format!("/api/chats/{chat_b}/assign/"),
        Some(&admin),
        json!({"operator_id": pavel_id}),
    )
    .await;
    let first_for_pavel = next(&mut pavel_ws).await;
    assert_eq!(
        (
            first_for_pavel["type"].as_str(),
            first_for_pavel["chat"]["id"].as_i64()
        ),
        (Some("chat_added"), Some(chat_b))
    );

    // Requests.
    send(&mut olga_ws, json!({"type": "ping", "timestamp": 42})).await;
    assert_eq!(until(&mut olga_ws, "pong").await.0["timestamp"], 42);
    send(
        &mut olga_ws,
        json!({"type": "get_chat_messages", "chat_id": chat_a, "limit": 1}),
    )
    .await;
    let (page, _) = until(&mut olga_ws, "chat_messages").await;
    assert_eq!(page["messages"].as_array().unwrap().len(), 1);
    assert_eq!(
        (page["messages"][0]["text"].as_str(), page["has_more"].as_bool()),
        (Some("is my order ready?"), Some(true)),
        "the newest page"
    );
    send(&mut olga_ws, json!({"type": "mark_as_read", "chat_id": chat_a})).await;
    until(&mut olga_ws, "chat_marked_as_read").await;
    let (read, _) = until(&mut olga_ws, "chat_updated").await;
    assert_eq!(read["chat"]["unread_count"], 0);

    // Bad frames get an error frame; the connection (and everyone else's) stays up.
    for (frame, code) in [
        ("not json at all".to_owned(), "invalid_json"),
        (json!({"no": "type"}).to_string(), "invalid_message"),
        (json!({"type": "launch_rockets"}).to_string(), "unknown_type"),
        (
            json!({"type": "get_chat_messages", "chat_id": "x"}).to_string(),
            "invalid_field",
        ),
        (
            json!({"type": "get_chat_messages", "chat_id": chat_b}).to_string(),
            "not_found",
        ),
        (
            json!({"type": "mark_as_read", "chat_id": chat_b}).to_string(),
            "not_found",
        ),
        (
            json!({"type": "get_chat_messages", "chat_id": chat_a, "limit": 5000}).to_string(),
            "invalid_field",
        ),
        (
            json!({"type": "ping", "padding": "x".repeat(100 * 1024)}).to_string(),
            "frame_too_large",
        ),
    ] {
        olga_ws.send(Message::Text(frame.into())).await.unwrap();
        let (error, _) = until(&mut olga_ws, "error").await;
        assert_eq!(error["code"], code);
        assert!(error["message"].is_string());
    }
    let chat_b_row = app.get(&format!("/api/chats/{chat_b}/"), Some(&admin)).await.body;
    assert_eq!(
        chat_b_row["unread_count"], 1,
        "mark_as_read on someone else's chat changed nothing"
    );
    send(&mut pavel_ws, json!({"type": "ping"})).await;
    until(&mut pavel_ws, "pong").await;

    // Unassigning takes the chat away at once; later messages there do not reach her.
    app.post(&format!("/api/chats/{chat_a}/unassign/"), Some(&admin), json!({}))
        .await;
    let (removed, _) = until(&mut olga_ws, "chat_removed").await;
    assert_eq!(removed["chat_id"], chat_a);
    deliver(&app, bot, 101, 3, "still there?").await;
    until(&mut admin_ws, "new_message").await;
    app.post(
        &format!("/api/chats/{chat_b}/assign/"),
        Some(&admin),
        json!({"operator_id": olga_id}),
    )
    .await;
    let (next_for_olga, skipped) = until(&mut olga_ws, "chat_added").await;
    assert_eq!(next_for_olga["chat"]["id"], chat_b);
    assert!(
        skipped.is_empty(),
        "nothing about chat A after it was taken away: {skipped:?}"
    );

    // Logging out everywhere closes her socket.
    app.post("/api/auth/logout/?all=true", Some(&olga), json!({}))
        .await;
    let closed = loop {
        match tokio::time::timeout(Duration::from_secs(10), olga_ws.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(Some(frame)))) => break u16::from(frame.code),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(closed, 4001);
    app.stop().await;
}

async fn initial_lists_are_chunked_and_resume_replays_what_was_missed(database: TestDatabase) {
    let app = spawn_app(database).await;
    let admin = app.admin_token().await;
    let (olga_id, olga) = app.create_operator(&admin, "olga").await;
    let (pavel_id, _) = app.create_operator(&admin, "pavel").await;
    let bot = crm_testkit::fixtures::bot_account(&app.store, "Many", Some(TOKEN), Some(SECRET))
        .await
        .id;
    for peer in 0..120 {
        deliver(&app, bot, 5000 + peer, 1, "hi").await;
    }
    let mut admin_ws = connect(&app, &admin).await;
    let start = next(&mut admin_ws).await;
    assert_eq!(
        (start["type"].as_str(), start["total"].as_u64()),
        (Some("initial_chats_start"), Some(120))
    );
    let mut ids: Vec<i64> = start["chats"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_i64().unwrap())
        .collect();
    let mut chunks = 0;
    loop {
        let frame = next(&mut admin_ws).await;
        match frame["type"].as_str() {
            Some("initial_chats_chunk") => {
                chunks += 1;
                ids.extend(
                    frame["chats"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|c| c["id"].as_i64().unwrap()),
                );
            }
            Some("initial_chats_end") => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!((ids.len(), chunks), (120, 2));
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 120, "every chat exactly once");

    // Olga holds one chat; she disconnects while things happen, then resumes.
    let first = chat_of_peer(&app, &admin, 5119).await;
    let second = chat_of_peer(&app, &admin, 5118).await;
    app.post(
        &format!("/api/chats/{first}/assign/"),
        Some(&admin),
        json!({"operator_id": olga_id}),
    )
    .await;
    let mut olga_ws = connect(&app, &olga).await;
    let initial = next(&mut olga_ws).await;
    deliver(&app, bot, 5119, 2, "before the drop").await;
    let (message, _) = until(&mut olga_ws, "new_message").await;
    assert!(message["event_id"].as_i64().unwrap() > initial["last_event_id"].as_i64().unwrap());
    let seen = until(&mut olga_ws, "chat_updated").await.0["event_id"]
        .as_i64()
        .unwrap();
    drop(olga_ws);

    deliver(&app, bot, 5119, 3, "while away").await;
    app.post(
        &format!("/api/chats/{second}/assign/"),
        Some(&admin),
        json!({"operator_id": pavel_id}),
    )
    .await;
    app.post(
        &format!("/api/chats/{second}/assign/"),
        Some(&admin),
        json!({"operator_id": olga_id}),
    )
    .await;
    deliver(&app, bot, 5118, 2, "in the new chat").await;

    // Reconnecting with the last event she has replays what she missed before anything live.
    let url = format!(
        "ws://{}/ws/messages/?token={olga}&since_event_id={seen}",
        app.address
    );
    let (mut back, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("the WebSocket opens");
    next(&mut back).await;
    // The replay, then (once the relay has numbered them) any of the missed events still on their way live.
    let mut replayed = Vec::new();
    let mut last = seen;
    while replayed.len() < 6 {
        let frame = next(&mut back).await;
        if frame["type"] == "resumed" {
            continue;
        }
        let event_id = frame["event_id"].as_i64().unwrap();
        assert!(event_id > last, "strictly increasing event ids");
        last = event_id;
        let about = frame["chat"]["id"]
            .as_i64()
            .or(frame["message"]["chat_id"].as_i64())
            .or(frame["chat_id"].as_i64());
        replayed.push((frame["type"].as_str().unwrap().to_owned(), about));
    }
    let expected = [
        ("new_message", Some(first)),
        ("chat_updated", Some(first)),
        ("chat_added", Some(second)),
        ("chat_updated", Some(second)),
        ("new_message", Some(second)),
        ("chat_updated", Some(second)),
    ];
    let expected: Vec<(String, Option<i64>)> = expected.iter().map(|(k, c)| ((*k).to_owned(), *c)).collect();
    assert_eq!(
        replayed, expected,
        "exactly the missed events she may see, in order"
    );

    // A gap older than the retained log asks for a full reload.
    crm_store::event_log::purge_older_than(&app.store, chrono::Duration::seconds(-1))
        .await
        .unwrap();
    deliver(&app, bot, 5119, 4, "after the purge").await;
    send(&mut back, json!({"type": "resume", "since_event_id": 1})).await;
    let (resync, _) = until(&mut back, "resync_required").await;
    assert!(resync["last_event_id"].as_i64().unwrap() >= last);
    app.stop().await;
}

on_every_backend!(background_work_is_pushed_too);

async fn background_work_is_pushed_too(database: TestDatabase) {
    let app = spawn_app(database).await;
    let admin = app.admin_token().await;
    const POLLED: &str = "7006007009:AAPolledRealtimeBotTokenForTests_abcd";
    app.bot_api.add_bot(POLLED, 7006007009, "pushed_bot");
    let created = app
        .post(
            "/api/accounts/",
            Some(&admin),
            json!({"name": "Pushed", "account_type": "bot", "bot_token": POLLED}),
        )
        .await;
    let account = created.body["id"].as_i64().unwrap();
    let mut ws = connect(&app, &admin).await;
    next(&mut ws).await;

    // A polled update arrives as new_message, its chat as chat_updated.
    app.post(
        &format!("/api/accounts/{account}/set_polling/"),
        Some(&admin),
        json!({}),
    )
    .await;
    // The account's creation may still be on its way to this connection: its status comes first then.
    let status = loop {
        let (status, _) = until(&mut ws, "account_status").await;
        if status["account"]["intake_mode"] != "none" {
            break status;
        }
    };
    assert_eq!(
        (
            status["account"]["id"].as_i64(),
            status["account"]["intake_mode"].as_str()
        ),
        (Some(account), Some("polling"))
    );
    assert!(!status.to_string().contains(POLLED), "no token in account events");
    app.bot_api.push_updates(POLLED, [json!({"update_id": 1, "message": {"message_id": 9, "date": 1_700_000_000,
        "chat": {"id": 77, "type": "private", "first_name": "Ann"}, "from": {"id": 77, "first_name": "Ann"}, "text": "polled in"}})]);
    let (arrived, _) = until(&mut ws, "new_message").await;
    assert_eq!(arrived["message"]["text"], "polled in");
    let message_id = arrived["message"]["id"].as_i64().unwrap();

    // A reply is pushed as queued, then as sent when the runner delivered it.
    let reply = app
        .post(
            &format!("/api/messages/{message_id}/reply/"),
            Some(&admin),
            json!({"text": "pushed out"}),
        )
        .await;
    let reply_id = reply.body["id"].as_i64().unwrap();
    let (queued, _) = until(&mut ws, "new_message").await;
    assert_eq!(
        (
            queued["message"]["id"].as_i64(),
            queued["message"]["status"].as_str()
        ),
        (Some(reply_id), Some("queued"))
    );
    let (sent, _) = until(&mut ws, "message_updated").await;
    assert_eq!(
        (sent["message"]["id"].as_i64(), sent["message"]["status"].as_str()),
        (Some(reply_id), Some("sent"))
    );
    assert!(sent["message"]["telegram_id"].is_i64());
    app.stop().await;
}

/// A client that stops reading is closed with 4008 once its queue overflows, while a client that reads gets
/// everything on time; the slow one then resumes and receives exactly what it had not got.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_client_is_closed_and_resumes_without_slowing_others() {
    let database = TestDatabase::create(crm_testkit::TestBackend::Sqlite)
        .await
        .unwrap();
    let app = crm_testkit::app::spawn_app_with(database, |settings| settings.ws_queue_frames = 64).await;
    let admin = app.admin_token().await;
    let bot = crm_testkit::fixtures::bot_account(&app.store, "Flood", Some(TOKEN), Some(SECRET))
        .await
        .id;
    deliver(&app, bot, 900, 1, "start").await;
    let mut slow = connect(&app, &admin).await;
    let initial = next(&mut slow).await;
    let mut fast = connect(&app, &admin).await;
    next(&mut fast).await;
    const FLOOD: usize = 800;
    let reader = tokio::spawn(async move {
        let mut received = 0;
        while received < FLOOD {
            if next(&mut fast).await["type"] == "new_message" {
                received += 1;
            }
        }
        received
    });
    // About 10 KB of events per update: far more than the kernel buffers of a client that does not read.
    let long_text = "x".repeat(4000);
    for n in 0..FLOOD {
        deliver(&app, bot, 900, 2 + i64::try_from(n).unwrap(), &long_text).await;
    }
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(60), reader)
            .await
            .unwrap()
            .unwrap(),
        FLOOD,
        "the reading client got everything"
    );

    let mut got = 0;
    let mut last_event = initial["last_event_id"].as_i64().unwrap();
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(30), slow.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(text.as_str()).unwrap();
                if frame["type"] == "new_message" {
                    got += 1;
                }
                last_event = frame["event_id"].as_i64().unwrap_or(last_event);
            }
            Some(Ok(Message::Close(frame))) => break frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => {}
            other => panic!("expected a close frame, got {other:?}"),
        }
    };
    assert_eq!(code, Some(4008), "closed as too slow");
    assert!(
        got < FLOOD,
        "the slow client was cut off early ({got} of {FLOOD})"
    );

    let mut back = connect(&app, &admin).await;
    next(&mut back).await;
    send(&mut back, json!({"type": "resume", "since_event_id": last_event})).await;
    let mut replayed = 0;
    loop {
        let frame = next(&mut back).await;
        match frame["type"].as_str() {
            Some("new_message") => replayed += 1,
            Some("resumed") => break,
            _ => {}
        }
    }
    assert_eq!(got + replayed, FLOOD, "resume delivers exactly the rest");
    app.stop().await;
}

/// The close code the server ends `socket` with (bounded wait).
async fn close_code(socket: &mut Socket) -> u16 {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("the server closes within 10 s")
        {
            Some(Ok(Message::Close(Some(frame)))) => return u16::from(frame.code),
            Some(Ok(_)) => continue,
            other => panic!("expected a close frame, got {other:?}"),
        }
    }
}

on_every_backend!(logging_out_one_session_closes_only_its_sockets);

async fn logging_out_one_session_closes_only_its_sockets(database: TestDatabase) {
    let app = spawn_app(database).await;
    let admin = app.admin_token().await;
    let (_, first) = app.create_operator(&admin, "olga").await;
    let second = app.login("olga", "olga-password").await;

    // The REST API's `Authorization: Token` header opens the WebSocket too.
    let mut request = format!("ws://{}/ws/messages/", app.address)
        .into_client_request()
        .unwrap();
    request
        .headers_mut()
        .insert("Authorization", format!("Token {first}").parse().unwrap());
    let (mut by_header, _) = tokio_tungstenite::connect_async(request)
        .await
        .expect("a token in the Authorization header opens the WebSocket");
    until(&mut by_header, "initial_chats").await;
    let mut by_query = connect(&app, &first).await;
    until(&mut by_query, "initial_chats").await;
    let mut other_session = connect(&app, &second).await;
    until(&mut other_session, "initial_chats").await;

    let logout = app.post("/api/auth/logout/", Some(&first), json!({})).await;
    assert_eq!(logout.body, json!({"status": "logged_out", "revoked": 1}));
    assert_eq!(close_code(&mut by_header).await, 4001);
    assert_eq!(close_code(&mut by_query).await, 4001);

    // The other session lives on, and the logged-out token opens nothing any more.
    send(&mut other_session, json!({"type": "ping", "timestamp": 7})).await;
    let (pong, _) = until(&mut other_session, "pong").await;
    assert_eq!(pong["timestamp"], 7);
    let refused =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/messages/?token={first}", app.address)).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("a revoked token must not open the WebSocket: {other:?}"),
    }
    app.stop().await;
}

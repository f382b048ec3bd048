//! Fuzzing the WebSocket's client frames (property-based generation, on stable Rust): frames of every known type
//! with fields of the wrong type, out of range or missing, unknown types, text that is not JSON, frames over the
//! size limit and binary frames, sent by an operator who holds no chat. Each is followed by a numbered `ping`:
//! the matching `pong` proves the connection survived the frame and answered in order, and no answer ever
//! carries a chat or a message. 400 frames per backend, or a fifth of `FUZZ_CASES` when it is set.

use std::time::Duration;

use crm_testkit::{TestDatabase, on_every_backend, spawn_app};
use futures::{SinkExt, StreamExt};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

on_every_backend!(hostile_frames_never_break_the_connection_or_leak);

/// A client frame: text or binary.
#[derive(Debug, Clone)]
enum Frame {
    Text(String),
    Binary(Vec<u8>),
}

fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        Just(json!(i64::MAX)),
        Just(json!(-1)),
        ".{0,20}".prop_map(Value::String),
        prop::collection::vec(any::<i64>().prop_map(Value::from), 0..4).prop_map(Value::Array),
        Just(json!({"nested": {"chat_id": 1}})),
    ]
}

fn frame() -> impl Strategy<Value = Frame> {
    let kinds = prop_oneof![
        Just("ping".to_owned()),
        Just("get_chat_messages".to_owned()),
        Just("mark_as_read".to_owned()),
        Just("resume".to_owned()),
        "[a-z_]{0,20}",
    ];
    let fields = prop::collection::btree_map(
        prop_oneof![
            Just("chat_id".to_owned()),
            Just("limit".to_owned()),
            Just("before".to_owned()),
            Just("since_event_id".to_owned()),
            Just("timestamp".to_owned()),
            "[a-z_]{1,10}",
        ],
        field_value(),
        0..5,
    );
    prop_oneof![
        6 => (kinds, fields).prop_map(|(kind, fields)| {
            let mut object: serde_json::Map<String, Value> = fields.into_iter().collect();
            object.insert("type".to_owned(), Value::String(kind));
            Frame::Text(Value::Object(object).to_string())
        }),
        1 => ".{0,200}".prop_map(Frame::Text),
        1 => field_value().prop_map(|v| Frame::Text(v.to_string())),
        1 => Just(Frame::Text(format!("{{\"type\":\"ping\",\"pad\":\"{}\"}}", "x".repeat(70 * 1024)))),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Frame::Binary),
    ]
}

async fn hostile_frames_never_break_the_connection_or_leak(database: TestDatabase) {
    let app = spawn_app(database).await;
    let admin = app.admin_token().await;
    let (_, olga) = app.create_operator(&admin, "olga").await;
    let account = crm_testkit::fixtures::bot_account(
        &app.store,
        "Fuzz",
        Some("7012001200:AAFuzzBotTokenForTheTestSuite_abcdefg"),
        Some("fuzz-secret"),
    )
    .await
    .id;
    let update = json!({"update_id": 1, "message": {"message_id": 1, "date": 1_700_000_000,
        "chat": {"id": 5151, "type": "private", "first_name": "Hidden"}, "text": "not for olga"}});
    assert_eq!(app.deliver_update(account, "fuzz-secret", &update).await, 200);

    let frames = std::env::var("FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(2_000)
        / 5;
    let mut runner = TestRunner::deterministic();
    let strategy = frame();
    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/messages/?token={olga}", app.address))
            .await
            .unwrap();
    // Found by this fuzzer: a `resume` from the largest number overflowed and killed the connection.
    socket
        .send(Message::Text(
            json!({"type": "resume", "since_event_id": i64::MAX})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .unwrap();
        let Some(Ok(Message::Text(text))) = next else {
            panic!("the connection broke: {next:?}")
        };
        let answer: Value = serde_json::from_str(text.as_str()).unwrap();
        if answer["type"] == "resync_required" {
            break;
        }
    }
    let mut errors = 0;
    for number in 0..frames {
        let frame = strategy.new_tree(&mut runner).unwrap().current();
        let message = match &frame {
            Frame::Text(text) => Message::Text(text.clone().into()),
            Frame::Binary(bytes) => Message::Binary(bytes.clone().into()),
        };
        socket.send(message).await.unwrap();
        socket
            .send(Message::Text(
                json!({"type": "ping", "timestamp": number}).to_string().into(),
            ))
            .await
            .unwrap();
        loop {
            let next = tokio::time::timeout(Duration::from_secs(10), socket.next())
                .await
                .unwrap_or_else(|_| panic!("no answer within 10 s after {frame:?}"));
            let text = match next {
                Some(Ok(Message::Text(text))) => text.to_string(),
                Some(Ok(Message::Close(close))) => panic!("closed by {frame:?}: {close:?}"),
                Some(Ok(_)) => continue,
                other => panic!("the connection broke after {frame:?}: {other:?}"),
            };
            assert!(
                !text.contains("not for olga") && !text.contains("Hidden"),
                "{frame:?} leaked: {text}"
            );
            let answer: Value = serde_json::from_str(&text).expect("the server answers JSON");
            match answer["type"].as_str() {
                Some("pong") if answer["timestamp"] == number => break,
                Some("error") => errors += 1,
                Some("chat_messages" | "chat_marked_as_read") => panic!("{frame:?} reached a chat: {text}"),
                _ => {}
            }
        }
    }
    println!(
        "| WebSocket frames fuzz | {} | {frames} hostile frames, {errors} refused with an error, connection alive \
         throughout |",
        app.store.backend().as_str()
    );
    assert!(
        errors > 0,
        "the generator produced frames the server had to refuse"
    );
    app.stop().await;
}

//! Personal Telegram accounts through the scripted Telegram stand-in: phone and QR logins (resend, cloud password,
//! Telegram's errors), the supervisor (connect, collect both directions, edits, deletions, read receipts, media,
//! history import, drops, stalls, revocation), the outbox (`random_id`, flood waits), and the life cycle.

use std::time::Duration;

use chrono::{TimeZone, Utc};
use crm_core::chat::ChatType;
use crm_core::ids::{MediaFileId, PeerId, TelegramMessageId};
use crm_core::inbound::{ChatRef, InboundEvent, InboundMessage, MediaRef, Sender};
use crm_core::message::{Direction, MessageType};
use crm_core::outbound::DownloadedFile;
use crm_core::personal::UserError;
use crm_testkit::app::spawn_app_with;
use crm_testkit::{
    FakeUser, IsolatedApp, OpenStore, SendFault, TestApp, TestDatabase, eventually, eventually_within,
    on_every_backend,
};
use reqwest::StatusCode;
use sea_orm::EntityTrait;
use serde_json::{Value, json};

const PHONE: &str = "+491701234567";
const API_HASH: &str = "0123456789abcdef0123456789abcdef";
const OWNER_ID: i64 = 555_000_111;
const CUSTOMER: i64 = 777_000_222;

on_every_backend!(
    phone_login_with_resend_and_cloud_password,
    login_errors_are_clear_and_change_nothing_else,
    qr_login_with_cloud_password,
    a_connected_account_collects_everything_it_should,
    replies_go_out_once_with_their_random_id,
    drops_stalls_and_revocations_are_survived_or_reported,
    life_cycle_and_operations
);

// Two instances sharing one database need a server backend.
crm_testkit::on_backends!([mysql]: a_killed_owner_hands_its_account_over_within_30_seconds);

/// An app whose personal accounts reconnect quickly (a 4 s lease renewed every second, a 2 s watchdog) and
/// download media up to 1000 bytes on their own.
async fn app(database: TestDatabase) -> TestApp {
    spawn_app_with(database, |settings| {
        settings.account_lease_secs = 4;
        settings.account_watchdog_secs = 2;
        settings.media_auto_download_max_size = 1000;
    })
    .await
}

fn owner(password: Option<&str>) -> FakeUser {
    FakeUser {
        user_id: OWNER_ID,
        first_name: "Olga".into(),
        password: password.map(Into::into),
        hint: password.map(|_| "the usual".into()),
    }
}

fn customer_chat() -> ChatRef {
    ChatRef {
        peer_id: PeerId(CUSTOMER),
        chat_type: ChatType::Private,
        title: None,
        username: Some("customer".into()),
        first_name: Some("Carl".into()),
        last_name: None,
    }
}

fn message(id: i64, direction: Direction, text: &str) -> InboundMessage {
    InboundMessage {
        chat: customer_chat(),
        telegram_message_id: TelegramMessageId(id),
        direction,
        message_type: MessageType::Text,
        text: Some(text.into()),
        caption: None,
        sender: Some(Sender {
            id: if direction == Direction::Inbound {
                CUSTOMER
            } else {
                OWNER_ID
            },
            name: Some("Carl".into()),
            username: None,
        }),
        reply_to_telegram_id: None,
        date: Utc.timestamp_opt(1_760_000_000 + id, 0).unwrap(),
        edited_at: None,
        media: None,
        metadata: crm_core::metadata::MessageMetadata::default(),
    }
}

fn new_message(id: i64, direction: Direction, text: &str) -> InboundEvent {
    InboundEvent::NewMessage(message(id, direction, text))
}

/// Logs the owner in by phone code through the API; returns the account id.
async fn log_in(app: &TestApp, admin: &str) -> i64 {
    app.telegram.add_user(PHONE, owner(None));
    let started = app
        .post(
            "/api/accounts/authenticate/",
            Some(admin),
            json!({"phone_number": PHONE, "api_id": 12345, "api_hash": API_HASH, "name": "Olga's phone"}),
        )
        .await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.body);
    let id = started.body["account_id"].as_i64().unwrap();
    let code = app.telegram.code_for(id).unwrap();
    let verified = app
        .post(
            &format!("/api/accounts/{id}/verify_otp/"),
            Some(admin),
            json!({"otp_code": code}),
        )
        .await;
    assert_eq!(verified.body["status"], "authenticated", "{}", verified.body);
    id
}

async fn account(app: &TestApp, admin: &str, id: i64) -> Value {
    app.get(&format!("/api/accounts/{id}/"), Some(admin)).await.body
}

async fn phone_login_with_resend_and_cloud_password(database: TestDatabase) {
    let app = app(database).await;
    let admin = app.admin_token().await;
    app.telegram.add_user(PHONE, owner(Some("correct horse")));

    let started = app
        .post(
            "/api/accounts/authenticate/",
            Some(&admin),
            json!({"phone_number": "+49 170 123-45-67", "api_id": 12345, "api_hash": API_HASH}),
        )
        .await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.body);
    assert_eq!(started.body["status"], "otp_required");
    assert_eq!(started.body["code_type"], "APP");
    assert_eq!(started.body["next_type"], "SMS");
    assert_eq!(started.body["timeout"], 60);
    let id = started.body["account_id"]
        .as_i64()
        .expect("the account id is returned");
    assert_eq!(started.body["account"]["status"], "authenticating");
    assert_eq!(
        started.body["account"]["phone_number"], PHONE,
        "the phone is stored normalised"
    );
    assert!(
        started.body.get("phone_code_hash").is_none(),
        "the code hash stays on the server"
    );
    let first_code = app.telegram.code_for(id).unwrap();

    let resent = app
        .post(
            &format!("/api/accounts/{id}/resend_code/"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(resent.status, StatusCode::OK, "{}", resent.body);
    assert_eq!(resent.body["status"], "otp_resent");
    assert_eq!(resent.body["code_type"], "SMS");
    let code = app.telegram.code_for(id).unwrap();
    assert_ne!(code, first_code);

    let stale = app
        .post(
            &format!("/api/accounts/{id}/verify_otp/"),
            Some(&admin),
            json!({"otp_code": first_code}),
        )
        .await;
    assert_eq!(stale.status, StatusCode::BAD_REQUEST);
    assert_eq!(stale.body["code"], "code_invalid");

    let needs_password = app
        .post(
            &format!("/api/accounts/{id}/verify_otp/"),
            Some(&admin),
            json!({"otp_code": code}),
        )
        .await;
    assert_eq!(needs_password.status, StatusCode::OK, "{}", needs_password.body);
    assert_eq!(needs_password.body["status"], "password_required");
    assert_eq!(needs_password.body["hint"], "the usual");
    assert_eq!(account(&app, &admin, id).await["status"], "password_required");

    let wrong = app
        .post(
            &format!("/api/accounts/{id}/verify_otp/"),
            Some(&admin),
            json!({"password": "battery staple"}),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert_eq!(wrong.body["code"], "password_invalid");
    assert_eq!(
        account(&app, &admin, id).await["status"],
        "password_required",
        "a wrong password can be retried"
    );

    let done = app
        .post(
            &format!("/api/accounts/{id}/verify_otp/"),
            Some(&admin),
            json!({"password": "correct horse"}),
        )
        .await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body["status"], "authenticated");
    assert!(
        done.body.get("session_string").is_none(),
        "the session is never returned"
    );
    assert_eq!(done.body["account"]["telegram_user_id"], OWNER_ID);
    assert_eq!(done.body["account"]["enabled"], true);

    let connected = app.account_reaching(&admin, id, "active").await;
    assert_eq!(connected["first_name"], "Olga");
    assert_eq!(connected["pending_code_type"], Value::Null);

    let stored = crm_store::entity::accounts::Entity::find_by_id(id)
        .one(app.store.db())
        .await
        .unwrap()
        .unwrap();
    let sealed = stored.session_sealed.expect("the session is stored");
    assert!(
        !sealed.contains("user_id"),
        "the session is sealed, not plain: {sealed}"
    );
    let again = app
        .post(
            "/api/accounts/authenticate/",
            Some(&admin),
            json!({"phone_number": PHONE, "api_id": 12345, "api_hash": API_HASH}),
        )
        .await;
    assert_eq!(again.body["status"], "already_authenticated");
    assert_eq!(again.body["account_id"], id);
    assert_eq!(app.telegram.overlaps(), Vec::<i64>::new());
    app.stop().await;
}

async fn login_errors_are_clear_and_change_nothing_else(database: TestDatabase) {
    let app = app(database).await;
    let admin = app.admin_token().await;
    let (_, operator) = app.create_operator(&admin, "olga").await;
    let body = json!({"phone_number": PHONE, "api_id": 12345, "api_hash": API_HASH});

    let forbidden = app
        .post("/api/accounts/authenticate/", Some(&operator), body.clone())
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);

    for (bad, code) in [
        (
            json!({"phone_number": "12345", "api_id": 1, "api_hash": API_HASH}),
            "phone_invalid",
        ),
        (
            json!({"phone_number": PHONE, "api_id": 0, "api_hash": API_HASH}),
            "invalid_field",
        ),
        (
            json!({"phone_number": PHONE, "api_id": 1, "api_hash": "not-a-hash"}),
            "invalid_field",
        ),
        (
            json!({"phone_number": PHONE, "api_id": 1, "api_hash": API_HASH, "extra": 1}),
            "invalid_body",
        ),
    ] {
        let refused = app.post("/api/accounts/authenticate/", Some(&admin), bad).await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
        assert_eq!(refused.body["code"], code, "{}", refused.body);
    }
    let listed = app.get("/api/accounts/", Some(&admin)).await.body;
    assert_eq!(listed["count"], 0, "refused input stores nothing");

    let unknown = app
        .post("/api/accounts/authenticate/", Some(&admin), body.clone())
        .await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST);
    assert_eq!(unknown.body["code"], "phone_unregistered");

    app.telegram.add_user(PHONE, owner(None));
    app.telegram
        .fail_next_send_code(UserError::FloodWait(Duration::from_secs(420)));
    let flooded = app
        .post("/api/accounts/authenticate/", Some(&admin), body.clone())
        .await;
    assert_eq!(flooded.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(flooded.body["code"], "flood_wait");
    assert_eq!(flooded.body["retry_after"], 420);
    assert_eq!(flooded.headers["retry-after"], "420");
    let listed = app.get("/api/accounts/", Some(&admin)).await.body;
    assert_eq!(
        listed["count"], 0,
        "a first login that failed leaves no account behind to block a new try"
    );

    let started = app.post("/api/accounts/authenticate/", Some(&admin), body).await;
    assert_eq!(started.body["status"], "otp_required", "{}", started.body);
    let id = started.body["account_id"].as_i64().unwrap();
    let wrong = app
        .post(
            &format!("/api/accounts/{id}/verify_otp/"),
            Some(&admin),
            json!({"otp_code": "00000"}),
        )
        .await;
    assert_eq!(wrong.body["code"], "code_invalid");
    assert_eq!(
        account(&app, &admin, id).await["status"],
        "authenticating",
        "a wrong code can be corrected"
    );
    for bad in [
        json!({}),
        json!({"otp_code": "12a45"}),
        json!({"otp_code": 12345}),
    ] {
        let refused = app
            .post(&format!("/api/accounts/{id}/verify_otp/"), Some(&admin), bad)
            .await;
        assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    }
    app.telegram.expire_code(id);
    let expired = app
        .post(
            &format!("/api/accounts/{id}/verify_otp/"),
            Some(&admin),
            json!({"otp_code": app.telegram.code_for(id).unwrap()}),
        )
        .await;
    assert_eq!(expired.status, StatusCode::BAD_REQUEST);
    assert_eq!(expired.body["code"], "code_expired");
    let missing = app
        .post(
            "/api/accounts/999999/verify_otp/",
            Some(&admin),
            json!({"otp_code": "12345"}),
        )
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    app.stop().await;
}

async fn qr_login_with_cloud_password(database: TestDatabase) {
    let app = app(database).await;
    let admin = app.admin_token().await;
    app.telegram.add_user(PHONE, owner(Some("pw")));
    let created = app
        .post(
            "/api/accounts/",
            Some(&admin),
            json!({"name": "QR", "account_type": "personal", "phone_number": PHONE, "api_id": 777, "api_hash": API_HASH}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["status"], "inactive");
    let id = created.body["id"].as_i64().unwrap();

    // Telegram out of reach: the same clear 503 as a phone login, not a 500.
    app.telegram
        .fail_next_qr_login(UserError::Network("connection refused".into()));
    let unreachable = app
        .post(&format!("/api/accounts/{id}/qr_login/"), Some(&admin), json!({}))
        .await;
    assert_eq!(
        (unreachable.status, unreachable.body["code"].as_str()),
        (StatusCode::SERVICE_UNAVAILABLE, Some("network")),
        "{}",
        unreachable.body
    );

    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/messages/?token={admin}", app.address))
            .await
            .expect("the WebSocket opens");
    let shown = app
        .post(&format!("/api/accounts/{id}/qr_login/"), Some(&admin), json!({}))
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert_eq!(shown.body["status"], "qr_required");
    let url = shown.body["login_url"].as_str().unwrap();
    assert!(url.starts_with("tg://login?token="), "{url}");
    let svg = shown.body["qr_svg"].as_str().unwrap();
    assert!(svg.contains("<svg") && svg.contains("</svg>"), "an SVG image");
    assert!(shown.body["expires_at"].as_str().is_some());

    let pushed = account_event(&mut socket, |e| e["qr"]["login_url"].is_string()).await;
    assert_eq!(
        pushed["qr"]["login_url"], shown.body["login_url"],
        "the code is pushed to admins"
    );
    assert!(pushed["qr"]["qr_svg"].as_str().unwrap().contains("<svg"));

    app.telegram.scan_qr(id, PHONE);
    let asked = account_event(&mut socket, |e| e["account"]["status"] == "password_required").await;
    assert_eq!(asked["account"]["id"], id);
    app.account_reaching(&admin, id, "password_required").await;
    let done = app
        .post(
            &format!("/api/accounts/{id}/verify_otp/"),
            Some(&admin),
            json!({"password": "pw"}),
        )
        .await;
    assert_eq!(done.body["status"], "authenticated", "{}", done.body);
    account_event(&mut socket, |e| e["account"]["status"] == "active").await;
    app.account_reaching(&admin, id, "active").await;
    app.stop().await;
}

/// The next `account_status` frame accepted by `wanted` (bounded wait).
async fn account_event(
    socket: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    wanted: impl Fn(&Value) -> bool,
) -> Value {
    use futures::StreamExt;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(15), socket.next())
            .await
            .expect("an account_status event within 15 s")
            .expect("the socket is open")
            .expect("a valid frame");
        if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
            let event: Value = serde_json::from_str(text.as_str()).unwrap();
            if event["type"] == "account_status" && wanted(&event) {
                return event;
            }
        }
    }
}

async fn a_connected_account_collects_everything_it_should(database: TestDatabase) {
    let app = app(database).await;
    let admin = app.admin_token().await;
    let id = log_in(&app, &admin).await;
    let mut history = message(1, Direction::Inbound, "from before");
    history.telegram_message_id = TelegramMessageId(1);
    app.telegram
        .set_history(id, vec![InboundEvent::NewMessage(history)]);
    app.account_reaching(&admin, id, "active").await;

    app.telegram
        .push(id, new_message(2, Direction::Inbound, "hello from the customer"));
    app.telegram.push(
        id,
        new_message(3, Direction::Outbound, "written on the owner's phone"),
    );
    let mut photo = message(4, Direction::Inbound, "");
    photo.message_type = MessageType::Document;
    photo.text = None;
    photo.caption = Some("the contract".into());
    photo.media = Some(MediaRef {
        file_id: "document:42".into(),
        file_unique_id: Some("document:42".into()),
        file_size: Some(9),
        file_name: Some("contract.pdf".into()),
        mime_type: Some("application/pdf".into()),
    });
    app.telegram.put_media(
        id,
        CUSTOMER,
        4,
        DownloadedFile {
            bytes: b"%PDF-1.4\n".to_vec(),
            file_name: Some("contract.pdf".into()),
            mime_type: Some("application/pdf".into()),
        },
    );
    app.telegram.push(id, InboundEvent::NewMessage(photo));
    let mut edit = message(2, Direction::Inbound, "hello, edited");
    edit.edited_at = Some(Utc::now());
    app.telegram.push(id, InboundEvent::EditedMessage(edit));
    app.telegram.push(
        id,
        InboundEvent::Deleted {
            peer_id: None,
            telegram_message_ids: vec![TelegramMessageId(1)],
        },
    );
    app.telegram.push(
        id,
        InboundEvent::ReadByPeer {
            peer_id: PeerId(CUSTOMER),
            max_id: TelegramMessageId(3),
        },
    );

    let messages = app
        .peer_messages(&admin, CUSTOMER, "every update stored", |m| {
            m.len() == 4
                && m[0]["is_deleted"] == true
                && m[1]["text"] == "hello, edited"
                && m[2]["status"] == "read"
                && m[3]["media"]["status"] == "stored"
        })
        .await;
    assert_eq!(messages[0]["text"], "from before", "history was imported");
    assert!(messages[1]["edited_at"].as_str().is_some());
    assert_eq!(
        messages[2]["direction"], "out",
        "the owner's own message is outgoing"
    );
    assert_eq!(messages[3]["media"]["file_name"], "contract.pdf");
    assert_eq!(messages[3]["media"]["content_type"], "application/pdf");
    let file = app
        .client
        .get(app.url(messages[3]["media"]["url"].as_str().unwrap()))
        .header("Authorization", format!("Token {admin}"))
        .send()
        .await
        .unwrap();
    assert_eq!(file.bytes().await.unwrap().as_ref(), b"%PDF-1.4\n");
    let imported = account(&app, &admin, id).await;
    assert!(imported["history_imported_at"].as_str().is_some());

    // Restarting the connection imports nothing twice and replays nothing already stored.
    let restarted = app
        .post(&format!("/api/accounts/{id}/restart/"), Some(&admin), json!({}))
        .await;
    assert_eq!(restarted.status, StatusCode::OK);
    eventually("a second connection", || async {
        (app.telegram.connects(id) >= 2).then_some(())
    })
    .await;
    app.telegram
        .push(id, new_message(5, Direction::Inbound, "after the restart"));
    let messages = app
        .peer_messages(&admin, CUSTOMER, "the new message", |m| m.len() == 5)
        .await;
    assert_eq!(messages[4]["text"], "after the restart");

    // An operator reads the chat: Telegram is told too.
    let chat_id = messages[0]["chat_id"].as_i64().unwrap();
    let read = app
        .post(
            &format!("/api/chats/{chat_id}/mark_as_read/"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(read.status, StatusCode::OK);
    eventually("the read mark in Telegram", || async {
        app.telegram
            .read_marks()
            .contains(&(id, CUSTOMER, 5))
            .then_some(())
    })
    .await;

    // A file over the automatic limit waits for someone to ask for it.
    let mut video = message(6, Direction::Inbound, "");
    video.message_type = MessageType::Video;
    video.text = None;
    video.media = Some(MediaRef {
        file_id: "document:43".into(),
        file_unique_id: None,
        file_size: Some(5000),
        file_name: Some("clip.mp4".into()),
        mime_type: Some("video/mp4".into()),
    });
    let mut clip = b"\x00\x00\x00\x18ftypmp42".to_vec();
    clip.resize(5000, 0);
    app.telegram.put_media(
        id,
        CUSTOMER,
        6,
        DownloadedFile {
            bytes: clip.clone(),
            file_name: Some("clip.mp4".into()),
            mime_type: Some("video/mp4".into()),
        },
    );
    app.telegram.push(id, InboundEvent::NewMessage(video));
    let messages = app
        .peer_messages(&admin, CUSTOMER, "the large video", |m| m.len() == 6)
        .await;
    assert_eq!(messages[5]["media"]["status"], "too_large");
    let media_id = messages[5]["media"]["id"].as_i64().unwrap();
    let fetch = app
        .post(&format!("/api/media/{media_id}/fetch/"), Some(&admin), json!({}))
        .await;
    assert_eq!(fetch.status, StatusCode::ACCEPTED, "{}", fetch.body);
    assert_eq!(fetch.body["status"], "pending");
    let again = app
        .post(&format!("/api/media/{media_id}/fetch/"), Some(&admin), json!({}))
        .await;
    assert_eq!(
        again.status,
        StatusCode::CONFLICT,
        "a fetch in progress is not queued twice"
    );
    app.peer_messages(&admin, CUSTOMER, "the fetched video", |m| {
        m[5]["media"]["status"] == "stored"
    })
    .await;
    let stored = crm_store::repo::media::find(&app.store, MediaFileId(media_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.file_size, Some(5000));
    assert_eq!(stored.content_type.as_deref(), Some("video/mp4"));
    assert_eq!(app.telegram.overlaps(), Vec::<i64>::new());
    app.stop().await;
}

async fn replies_go_out_once_with_their_random_id(database: TestDatabase) {
    let app = app(database).await;
    let admin = app.admin_token().await;
    let id = log_in(&app, &admin).await;
    app.account_reaching(&admin, id, "active").await;
    app.telegram
        .push(id, new_message(10, Direction::Inbound, "can you help?"));
    let inbound = app
        .peer_messages(&admin, CUSTOMER, "the question", |m| m.len() == 1)
        .await;
    let inbound_id = inbound[0]["id"].as_i64().unwrap();

    // The first attempt reaches Telegram but its answer is lost: the retry reuses the random_id.
    app.telegram.fail_next_send(id, SendFault::LoseAcknowledgement);
    let reply = app
        .post(
            &format!("/api/messages/{inbound_id}/reply/"),
            Some(&admin),
            json!({"text": "sure"}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let reply_id = reply.body["id"].as_i64().unwrap();
    let sent = app.message_reaching(&admin, reply_id, "sent").await;
    let delivered = app.telegram.sent();
    assert_eq!(delivered.len(), 1, "posted once: {delivered:?}");
    assert_eq!(delivered[0].message.text.as_deref(), Some("sure"));
    assert_eq!(
        delivered[0].message.reply_to_telegram_id,
        Some(TelegramMessageId(10))
    );
    assert_eq!(sent["telegram_id"], delivered[0].telegram_message_id);

    // A short flood wait is slept through.
    let chat_id = inbound[0]["chat_id"].as_i64().unwrap();
    app.telegram
        .fail_next_send(id, SendFault::FloodWait(Duration::from_secs(1)));
    let quick = app
        .post(
            &format!("/api/chats/{chat_id}/send_message/"),
            Some(&admin),
            json!({"text": "now"}),
        )
        .await;
    app.message_reaching(&admin, quick.body["id"].as_i64().unwrap(), "sent")
        .await;
    assert_eq!(app.telegram.sent().len(), 2);

    // A long one reschedules the job instead of holding a worker, and the chat's next reply waits behind it:
    // the customer gets the replies in the order they were written.
    app.telegram
        .fail_next_send(id, SendFault::FloodWait(Duration::from_secs(3600)));
    let waiting = app
        .post(
            &format!("/api/chats/{chat_id}/send_message/"),
            Some(&admin),
            json!({"text": "later"}),
        )
        .await;
    let waiting_id = waiting.body["id"].as_i64().unwrap();
    let job = app.send_job_after_a_failure(waiting_id).await;
    assert!(
        job.run_at > Utc::now() + chrono::Duration::minutes(55),
        "run_at {}",
        job.run_at
    );
    assert_eq!(job.pinned_account_id, Some(id));
    let behind = app
        .post(
            &format!("/api/chats/{chat_id}/send_message/"),
            Some(&admin),
            json!({"text": "after the wait"}),
        )
        .await;
    let behind_id = behind.body["id"].as_i64().unwrap();
    for message in [waiting_id, behind_id] {
        assert_eq!(
            app.get(&format!("/api/messages/{message}/"), Some(&admin))
                .await
                .body["status"],
            "queued"
        );
    }
    assert_eq!(
        app.telegram.sent().len(),
        2,
        "nothing overtakes the waiting reply"
    );
    app.stop().await;
}

async fn drops_stalls_and_revocations_are_survived_or_reported(database: TestDatabase) {
    let app = app(database).await;
    let admin = app.admin_token().await;
    let id = log_in(&app, &admin).await;
    app.account_reaching(&admin, id, "active").await;
    app.telegram.push(id, new_message(20, Direction::Inbound, "one"));
    app.peer_messages(&admin, CUSTOMER, "the first message", |m| m.len() == 1)
        .await;

    app.telegram.drop_connection(id);
    app.telegram
        .push(id, new_message(21, Direction::Inbound, "sent while reconnecting"));
    app.peer_messages(&admin, CUSTOMER, "the message sent during the drop", |m| {
        m.len() == 2
    })
    .await;

    let before = app.telegram.connects(id);
    app.telegram.stall(id);
    app.telegram
        .push(id, new_message(22, Direction::Inbound, "sent into a dead socket"));
    app.telegram
        .push(id, new_message(23, Direction::Inbound, "also lost on the wire"));
    let messages = app
        .peer_messages(&admin, CUSTOMER, "the watchdog's catch-up", |m| m.len() == 4)
        .await;
    assert!(
        app.telegram.connects(id) > before,
        "the stalled connection was rebuilt"
    );
    let texts: Vec<_> = messages
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        texts,
        [
            "one",
            "sent while reconnecting",
            "sent into a dead socket",
            "also lost on the wire"
        ]
    );

    // A failed reconnect is retried with backoff; a long flood wait parks the account until it is over.
    let before = app.telegram.connects(id);
    app.telegram
        .fail_next_connect(id, UserError::Network("connection refused".into()));
    app.telegram.drop_connection(id);
    eventually("a reconnect after the failed one", || async {
        (app.telegram.connects(id) > before).then_some(())
    })
    .await;
    app.account_reaching(&admin, id, "active").await;
    app.telegram
        .fail_next_connect(id, UserError::FloodWait(Duration::from_secs(3600)));
    app.telegram.drop_connection(id);
    let waiting = app.account_reaching(&admin, id, "error").await;
    assert_eq!(waiting["error_code"], "flood_wait");
    let retry_at: chrono::DateTime<Utc> = serde_json::from_value(waiting["retry_at"].clone()).unwrap();
    assert!(
        retry_at > Utc::now() + chrono::Duration::minutes(55),
        "{retry_at}"
    );
    let started = app
        .post(&format!("/api/accounts/{id}/start/"), Some(&admin), json!({}))
        .await;
    assert_eq!(started.status, StatusCode::OK, "an admin may retry at once");
    app.account_reaching(&admin, id, "active").await;

    app.telegram.revoke(id);
    let failed = app.account_reaching(&admin, id, "error").await;
    assert_eq!(failed["error_code"], "session_revoked");
    assert_eq!(
        failed["retry_at"],
        Value::Null,
        "a revoked session waits for a new login"
    );
    let relogin = app
        .post(
            "/api/accounts/authenticate/",
            Some(&admin),
            json!({"phone_number": PHONE, "api_id": 12345, "api_hash": API_HASH}),
        )
        .await;
    assert_eq!(
        relogin.body["status"], "otp_required",
        "a revoked account asks for a new login"
    );
    assert_eq!(app.telegram.overlaps(), Vec::<i64>::new());
    app.stop().await;
}

async fn life_cycle_and_operations(database: TestDatabase) {
    let app = app(database).await;
    let admin = app.admin_token().await;
    let (_, operator) = app.create_operator(&admin, "olga").await;
    let id = log_in(&app, &admin).await;
    app.account_reaching(&admin, id, "active").await;

    let stopped = app
        .post(&format!("/api/accounts/{id}/stop/"), Some(&admin), json!({}))
        .await;
    assert_eq!(stopped.body["status"], "stopped");
    eventually("the disconnect", || async {
        (!app.telegram.is_connected(id)).then_some(())
    })
    .await;
    app.telegram
        .push(id, new_message(30, Direction::Inbound, "while stopped"));

    let started = app
        .post(&format!("/api/accounts/{id}/start/"), Some(&admin), json!({}))
        .await;
    assert_eq!(started.status, StatusCode::OK);
    app.account_reaching(&admin, id, "active").await;
    app.peer_messages(&admin, CUSTOMER, "the message sent while stopped", |m| {
        m.len() == 1
    })
    .await;

    let control = app.post("/api/system/control/", Some(&operator), json!({})).await;
    assert_eq!(control.status, StatusCode::FORBIDDEN);
    let bad = app
        .post("/api/system/control/", Some(&admin), json!({"action": "explode"}))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    // A second account is not disturbed when the first one is restarted.
    app.telegram.add_user(
        "+491709999999",
        FakeUser {
            user_id: 555_000_999,
            first_name: "Boris".into(),
            password: None,
            hint: None,
        },
    );
    let second = app
        .post(
            "/api/accounts/authenticate/",
            Some(&admin),
            json!({"phone_number": "+491709999999", "api_id": 12345, "api_hash": API_HASH}),
        )
        .await;
    let second_id = second.body["account_id"].as_i64().unwrap();
    let code = app.telegram.code_for(second_id).unwrap();
    app.post(
        &format!("/api/accounts/{second_id}/verify_otp/"),
        Some(&admin),
        json!({"otp_code": code}),
    )
    .await;
    app.account_reaching(&admin, second_id, "active").await;
    let connects = app.telegram.connects(id);
    let restarted_one = app
        .post(&format!("/api/accounts/{id}/restart/"), Some(&admin), json!({}))
        .await;
    assert_eq!(restarted_one.status, StatusCode::OK);
    eventually("the restart", || async {
        (app.telegram.connects(id) > connects).then_some(())
    })
    .await;
    assert_eq!(
        app.telegram.connects(second_id),
        1,
        "the other account stayed connected"
    );
    app.post(
        &format!("/api/accounts/{second_id}/stop/"),
        Some(&admin),
        json!({}),
    )
    .await;
    app.account_reaching(&admin, second_id, "stopped").await;

    let connects = app.telegram.connects(id);
    let restarted = app.post("/api/system/control/", Some(&admin), json!({})).await;
    assert_eq!(restarted.body["status"], "restarted", "{}", restarted.body);
    assert_eq!(restarted.body["accounts"], 1);
    eventually("the reconnect", || async {
        (app.telegram.connects(id) > connects).then_some(())
    })
    .await;
    let stop_all = app
        .post(
            "/api/system/control/",
            Some(&admin),
            json!({"action": "stop_all"}),
        )
        .await;
    assert_eq!(stop_all.body["status"], "stopped");
    app.account_reaching(&admin, id, "stopped").await;
    let start_all = app
        .post(
            "/api/system/control/",
            Some(&admin),
            json!({"action": "start_all"}),
        )
        .await;
    assert_eq!(start_all.body["accounts"], 2, "every logged-in account");
    app.account_reaching(&admin, id, "active").await;
    app.account_reaching(&admin, second_id, "active").await;

    let sync = app.post("/api/sync/", Some(&operator), json!({})).await;
    assert_eq!(sync.status, StatusCode::OK);
    assert_eq!(sync.body["status"], "sync_triggered");

    let patched = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/accounts/{id}/"),
            Some(&admin),
            Some(json!({"include_groups": true, "mark_read_in_telegram": false})),
        )
        .await;
    assert_eq!(patched.body["include_groups"], true, "{}", patched.body);
    assert_eq!(patched.body["mark_read_in_telegram"], false);

    let removed = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/accounts/{id}/"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{}", removed.body);
    assert_eq!(removed.body["logged_out"], true);
    assert_eq!(removed.body["purged"], false);
    assert!(app.telegram.was_logged_out(id));
    assert_eq!(
        app.get(&format!("/api/accounts/{id}/"), Some(&admin))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let chats = app.get("/api/chats/", Some(&admin)).await.body;
    assert_eq!(chats["count"], 1, "the chats stay as history");
    let row = crm_store::entity::accounts::Entity::find_by_id(id)
        .one(app.store.db())
        .await
        .unwrap()
        .expect("the account row stays for its chats");
    assert!(row.removed_at.is_some());
    assert!(
        row.session_sealed.is_none() && row.api_hash_sealed.is_none(),
        "its secrets are wiped"
    );
    assert_eq!(
        app.telegram.overlaps(),
        Vec::<i64>::new(),
        "never connected twice, not even for the log-out"
    );
    app.stop().await;
}

/// Two instances on one MariaDB database with the default lease: the account is connected by exactly one; when
/// that one is killed, the other takes it over within 30 s, catches up on what arrived meanwhile, and the account
/// is never connected twice.
async fn a_killed_owner_hands_its_account_over_within_30_seconds(database: TestDatabase) {
    let telegram = crm_testkit::FakeTelegram::new();
    telegram.add_user(PHONE, owner(None));
    let a = IsolatedApp::start(&database, "a", telegram.clone(), |s| {
        s.instance_id = Some("instance-a".into())
    })
    .await;
    let b = IsolatedApp::start(&database, "b", telegram.clone(), |s| {
        s.instance_id = Some("instance-b".into())
    })
    .await;
    let token = a.admin_token().await;
    let started = b
        .post(
            "/api/accounts/authenticate/",
            &token,
            json!({"phone_number": PHONE, "api_id": 12345, "api_hash": API_HASH}),
        )
        .await;
    let id = started["account_id"].as_i64().unwrap();
    // The code is submitted to the other instance: the pending login lives in the database.
    let verified = a
        .post(
            &format!("/api/accounts/{id}/verify_otp/"),
            &token,
            json!({"otp_code": telegram.code_for(id).unwrap()}),
        )
        .await;
    assert_eq!(verified["status"], "authenticated", "{verified}");

    let store = database.store().await;
    let lease = crm_core::personal::connection_lease(crm_core::ids::AccountId(id));
    let owner_instance = eventually("one instance to connect the account", || async {
        // A read failing under load is retried, not fatal.
        let holder = crm_store::repo::leases::holder(&store, &lease).await.ok()??;
        telegram.is_connected(id).then_some(holder)
    })
    .await;
    let (survivor, survivor_name) = if owner_instance == "instance-a" {
        a.kill();
        (b, "instance-b")
    } else {
        b.kill();
        (a, "instance-a")
    };
    let killed_at = std::time::Instant::now();
    telegram.push(
        id,
        new_message(40, Direction::Inbound, "while nobody was connected"),
    );
    let within = Duration::from_secs(30);
    eventually_within(within, "the survivor to take the account over", || async {
        let holder = crm_store::repo::leases::holder(&store, &lease)
            .await
            .ok()
            .flatten();
        (holder.as_deref() == Some(survivor_name) && telegram.is_connected(id)).then_some(())
    })
    .await;
    assert!(killed_at.elapsed() < within, "no takeover within 30 s");
    eprintln!("takeover after {:?}", killed_at.elapsed());
    eventually("the message that arrived meanwhile", || async {
        let chats = survivor.get("/api/chats/", &token).await;
        (chats["results"][0]["last_message_preview"] == "while nobody was connected").then_some(())
    })
    .await;
    assert_eq!(
        telegram.overlaps(),
        Vec::<i64>::new(),
        "the account was never connected twice"
    );
    survivor.kill();
}

//! End to end through the real MTProto code: `crm`'s API, WebSocket and job runner, with the real grammers client
//! connected over TCP to the local MTProto test peer (`crm_testkit::mtproto`). SQLite and MariaDB.

use std::time::Duration;

use crm_testkit::app::spawn_app_on_peer;
use crm_testkit::mtproto::{MediaKind, MtprotoPeer, PushedMedia};
use crm_testkit::{OpenStore, TestApp, TestDatabase, eventually};
use reqwest::StatusCode;
use serde_json::{Value, json};

const OWNER: i64 = 5_550_001;
const OWNER_PHONE: &str = "+491705550001";
const CUSTOMER: i64 = 7_770_002;
const API_HASH: &str = "0123456789abcdef0123456789abcdef";

// SQLite and, when configured, MariaDB (ignored with the variable to set otherwise).
crm_testkit::on_backends!([sqlite, mysql]:
    phone_login_with_resend_and_cloud_password,
    qr_login_with_cloud_password,
    messages_media_history_and_replies_travel_both_ways,
    drops_stalls_flood_waits_and_revocation,
    a_reply_with_a_photo_is_posted_once_across_a_crash
);

// Two instances sharing one database need a server backend.
crm_testkit::on_backends!([mysql]: a_killed_owner_hands_the_session_over_without_duplicates);

async fn peer(password: Option<(&str, &str)>) -> MtprotoPeer {
    let peer = MtprotoPeer::start().await.expect("the peer listens");
    peer.add_user(OWNER, OWNER_PHONE, "Olga", password);
    peer.add_user(CUSTOMER, "+491707770002", "Carl", None);
    peer
}

async fn app(database: TestDatabase, peer: &MtprotoPeer) -> TestApp {
    spawn_app_on_peer(database, peer, |settings| {
        settings.account_lease_secs = 4;
        settings.account_watchdog_secs = 2;
    })
    .await
}

/// Logs the owner in by phone code through the API (no cloud password); returns the account id.
async fn log_in(app: &TestApp, admin: &str, peer: &MtprotoPeer) -> i64 {
    app.log_in_on_peer(admin, peer, OWNER_PHONE).await
}

fn assert_clean(peer: &MtprotoPeer) {
    assert_eq!(
        peer.duplicate_connections(),
        0,
        "never two connections on one key"
    );
    let refused: Vec<_> = peer
        .service_events()
        .into_iter()
        .filter(|e| e.starts_with("refused"))
        .collect();
    assert!(refused.is_empty(), "the peer refused packets: {refused:?}");
}

async fn phone_login_with_resend_and_cloud_password(database: TestDatabase) {
    let peer = peer(Some(("correct horse", "the usual"))).await;
    let app = app(database, &peer).await;
    let admin = app.admin_token().await;
    let started = app
        .post(
            "/api/accounts/authenticate/",
            Some(&admin),
            json!({"phone_number": OWNER_PHONE, "api_id": 12345, "api_hash": API_HASH}),
        )
        .await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.body);
    assert_eq!(started.body["status"], "otp_required");
    let id = started.body["account_id"].as_i64().unwrap();
    let first = peer.login_code().unwrap();
    let resent = app
        .post(
            &format!("/api/accounts/{id}/resend_code/"),
            Some(&admin),
            json!({}),
        )
        .await;
    assert_eq!(resent.body["status"], "otp_resent", "{}", resent.body);
    let code = peer.login_code().unwrap();
    assert_ne!(code, first, "a resend issues a new code");
    let asked = app
        .post(
            &format!("/api/accounts/{id}/verify_otp/"),
            Some(&admin),
            json!({"otp_code": code}),
        )
        .await;
    assert_eq!(asked.body["status"], "password_required", "{}", asked.body);
    assert_eq!(asked.body["hint"], "the usual");
    let wrong = app
        .post(
            &format!("/api/accounts/{id}/verify_otp/"),
            Some(&admin),
            json!({"password": "nope"}),
        )
        .await;
    assert_eq!(
        wrong.body["code"], "password_invalid",
        "the SRP check refuses a wrong password"
    );
    let done = app
        .post(
            &format!("/api/accounts/{id}/verify_otp/"),
            Some(&admin),
            json!({"password": "correct horse"}),
        )
        .await;
    assert_eq!(done.body["status"], "authenticated", "{}", done.body);
    assert_eq!(done.body["account"]["telegram_user_id"], OWNER);
    let active = app.account_reaching(&admin, id, "active").await;
    assert_eq!(active["first_name"], "Olga");
    assert_eq!(peer.authorized(), Some(OWNER));
    assert_clean(&peer);
    app.stop().await;
}

async fn qr_login_with_cloud_password(database: TestDatabase) {
    let peer = peer(Some(("pw", "hint"))).await;
    let app = app(database, &peer).await;
    let admin = app.admin_token().await;
    let created = app
        .post(
            "/api/accounts/",
            Some(&admin),
            json!({"name": "QR", "account_type": "personal", "phone_number": OWNER_PHONE, "api_id": 12345, "api_hash": API_HASH}),
        )
        .await;
    let id = created.body["id"].as_i64().unwrap();
    let shown = app
        .post(&format!("/api/accounts/{id}/qr_login/"), Some(&admin), json!({}))
        .await;
    assert_eq!(shown.body["status"], "qr_required", "{}", shown.body);
    assert!(
        shown.body["login_url"]
            .as_str()
            .unwrap()
            .starts_with("tg://login?token=")
    );
    assert!(peer.qr_token_shown());
    peer.scan_qr(OWNER);
    app.account_reaching(&admin, id, "password_required").await;
    let done = app
        .post(
            &format!("/api/accounts/{id}/verify_otp/"),
            Some(&admin),
            json!({"password": "pw"}),
        )
        .await;
    assert_eq!(done.body["status"], "authenticated", "{}", done.body);
    app.account_reaching(&admin, id, "active").await;
    assert_clean(&peer);
    app.stop().await;
}

async fn messages_media_history_and_replies_travel_both_ways(database: TestDatabase) {
    let peer = peer(None).await;
    let earlier = peer.customer_writes(OWNER, CUSTOMER, "written before the login");
    let app = app(database, &peer).await;
    let admin = app.admin_token().await;
    let id = log_in(&app, &admin, &peer).await;
    app.peer_messages(&admin, CUSTOMER, "the imported history", |m| {
        m.iter().any(|m| m["telegram_id"] == earlier)
    })
    .await;

    let (mut socket, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/ws/messages/?token={admin}", app.address))
            .await
            .unwrap();
    let live = peer.customer_writes(OWNER, CUSTOMER, "hello, live");
    let pushed = next_of(&mut socket, "new_message").await;
    assert_eq!(pushed["message"]["text"], "hello, live");
    assert_eq!(pushed["message"]["telegram_id"], live);

    let photo = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00test-photo".to_vec();
    let photo_id = peer.customer_sends_media(
        OWNER,
        CUSTOMER,
        PushedMedia {
            kind: MediaKind::Photo,
            bytes: photo.clone(),
            file_name: String::new(),
            mime_type: "image/jpeg".into(),
            caption: "our photo".into(),
        },
    );
    let messages = app
        .peer_messages(&admin, CUSTOMER, "the photo, downloaded", |m| {
            m.iter()
                .any(|m| m["telegram_id"] == photo_id && m["media"]["status"] == "stored")
        })
        .await;
    let stored = messages.iter().find(|m| m["telegram_id"] == photo_id).unwrap();
    let file = app
        .client
        .get(app.url(stored["media"]["url"].as_str().unwrap()))
        .header("Authorization", format!("Token {admin}"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(file.as_ref(), photo.as_slice(), "the bytes the customer sent");

    let own = peer.owner_writes_elsewhere(OWNER, CUSTOMER, "from my phone");
    let messages = app
        .peer_messages(&admin, CUSTOMER, "the owner's own message", |m| {
            m.iter().any(|m| m["telegram_id"] == own)
        })
        .await;
    assert_eq!(
        messages.iter().find(|m| m["telegram_id"] == own).unwrap()["direction"],
        "out"
    );

    // A reply with a photo reaches the peer once.
    let upload = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDRreply".to_vec())
            .file_name("reply.png"),
    );
    let uploaded: Value = app
        .client
        .post(app.url("/api/upload/"))
        .header("Authorization", format!("Token {admin}"))
        .multipart(upload)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let inbound_id = messages.iter().find(|m| m["telegram_id"] == live).unwrap()["id"]
        .as_i64()
        .unwrap();
    let reply = app
        .post(
            &format!("/api/messages/{inbound_id}/reply/"),
            Some(&admin),
            json!({"text": "here you are", "file_id": uploaded["id"]}),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    let sent = app
        .message_reaching(&admin, reply.body["id"].as_i64().unwrap(), "sent")
        .await;
    let delivered = peer.sent();
    assert_eq!(delivered.len(), 1, "{delivered:?}");
    assert_eq!(delivered[0].peer_id, CUSTOMER);
    assert_eq!(delivered[0].text, "here you are");
    assert!(
        delivered[0]
            .media
            .as_deref()
            .is_some_and(|m| m.ends_with(b"IHDRreply"))
    );
    assert_eq!(sent["telegram_id"], delivered[0].message_id);
    let _ = id;
    assert_clean(&peer);
    app.stop().await;
}

async fn drops_stalls_flood_waits_and_revocation(database: TestDatabase) {
    let peer = peer(None).await;
    let app = app(database, &peer).await;
    let admin = app.admin_token().await;
    let id = log_in(&app, &admin, &peer).await;

    peer.drop_connections();
    let during_drop = peer.customer_writes(OWNER, CUSTOMER, "while the socket was down");
    peer.set_stalled(true);
    let during_stall = peer.customer_writes(OWNER, CUSTOMER, "into a silent connection");
    // The stall lasts until the app noticed it on its own: it gave up on a connection the peer left silent.
    eventually("the app to give up on the stalled connection", || async {
        let events = peer.service_events();
        events
            .iter()
            .any(|event| event == "closed by the client while stalled")
            .then_some(())
    })
    .await;
    peer.set_stalled(false);
    let messages = app
        .peer_messages(&admin, CUSTOMER, "both messages, once", |m| {
            m.iter().any(|m| m["telegram_id"] == during_drop)
                && m.iter().any(|m| m["telegram_id"] == during_stall)
        })
        .await;
    assert_eq!(messages.len(), 2, "nothing twice: {messages:?}");

    peer.flood_next_send(3600);
    let chat_id = messages[0]["chat_id"].as_i64().unwrap();
    let waiting = app
        .post(
            &format!("/api/chats/{chat_id}/send_message/"),
            Some(&admin),
            json!({"text": "later"}),
        )
        .await;
    let waiting_id = waiting.body["id"].as_i64().unwrap();
    let job = app.send_job_after_a_failure(waiting_id).await;
    assert!(job.run_at > chrono::Utc::now() + chrono::Duration::minutes(55));

    peer.revoke_session();
    let failed = app.account_reaching(&admin, id, "error").await;
    assert_eq!(failed["error_code"], "session_revoked");
    assert_clean(&peer);
    app.stop().await;
}

async fn next_of(
    socket: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
    kind: &str,
) -> Value {
    use futures::StreamExt;
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(15), socket.next())
            .await
            .expect("a frame within 15 s")
            .unwrap()
            .unwrap();
        if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
            let event: Value = serde_json::from_str(text.as_str()).unwrap();
            if event["type"] == kind {
                return event;
            }
        }
    }
}

/// Two instances on MariaDB with the real client: the account is connected by one; killing it moves the account
/// to the other, which catches up; the peer never sees two connections on the key.
async fn a_killed_owner_hands_the_session_over_without_duplicates(database: TestDatabase) {
    let peer = peer(None).await;
    let named = |name: &'static str| move |s: &mut crm::Settings| s.instance_id = Some(name.into());
    let a = crm_testkit::IsolatedApp::start_with(
        &database,
        "a",
        crm_testkit::app::peer_gateway(&peer),
        named("instance-a"),
    )
    .await;
    let b = crm_testkit::IsolatedApp::start_with(
        &database,
        "b",
        crm_testkit::app::peer_gateway(&peer),
        named("instance-b"),
    )
    .await;
    let token = a.admin_token().await;
    let started = a
        .post(
            "/api/accounts/authenticate/",
            &token,
            json!({"phone_number": OWNER_PHONE, "api_id": 12345, "api_hash": API_HASH}),
        )
        .await;
    let id = started["account_id"].as_i64().unwrap();
    let verified = b
        .post(
            &format!("/api/accounts/{id}/verify_otp/"),
            &token,
            json!({"otp_code": peer.login_code().unwrap()}),
        )
        .await;
    assert_eq!(verified["status"], "authenticated", "{verified}");
    let store = database.store().await;
    let lease = crm_core::personal::connection_lease(crm_core::ids::AccountId(id));
    let owner = eventually("one instance to connect", || async {
        // A read failing under load is retried, not fatal.
        let holder = crm_store::repo::leases::holder(&store, &lease).await.ok()??;
        (peer.open_connections() > 0).then_some(holder)
    })
    .await;
    let (survivor, survivor_name) = if owner == "instance-a" {
        a.kill();
        (b, "instance-b")
    } else {
        b.kill();
        (a, "instance-a")
    };
    let killed_at = std::time::Instant::now();
    let meanwhile = peer.customer_writes(OWNER, CUSTOMER, "while the owner was dead");
    eventually("the takeover", || async {
        let holder = crm_store::repo::leases::holder(&store, &lease)
            .await
            .ok()
            .flatten();
        (holder.as_deref() == Some(survivor_name)).then_some(())
    })
    .await;
    assert!(killed_at.elapsed() < Duration::from_secs(30));
    eventually("the message sent meanwhile", || async {
        let chats = survivor.get("/api/chats/", &token).await;
        (chats["results"][0]["last_message_preview"] == "while the owner was dead").then_some(())
    })
    .await;
    let _ = meanwhile;
    assert_clean(&peer);
    survivor.kill();
}

/// A reply with a photo reaches Telegram but `crm` dies (killed, no clean-up) before the acknowledgement
/// arrives. The restarted instance (same `INSTANCE_ID`) resumes the job at once and sends again with the same
/// `random_id`: the peer keeps one message and answers with its id, which the reply records.
async fn a_reply_with_a_photo_is_posted_once_across_a_crash(database: TestDatabase) {
    let peer = peer(None).await;
    let settings = |s: &mut crm::Settings| {
        s.instance_id = Some("crm-1".into());
        s.account_lease_secs = 4;
        s.account_watchdog_secs = 2;
    };
    let first = crm_testkit::IsolatedApp::start_with(
        &database,
        "data",
        crm_testkit::app::peer_gateway(&peer),
        settings,
    )
    .await;
    let token = first.admin_token().await;
    let started = first
        .post(
            "/api/accounts/authenticate/",
            &token,
            json!({"phone_number": OWNER_PHONE, "api_id": 12345, "api_hash": API_HASH}),
        )
        .await;
    let id = started["account_id"].as_i64().unwrap();
    first
        .post(
            &format!("/api/accounts/{id}/verify_otp/"),
            &token,
            json!({"otp_code": peer.login_code().unwrap()}),
        )
        .await;
    peer.customer_writes(OWNER, CUSTOMER, "please confirm");
    let chat_id = eventually("the customer's chat", || async {
        first.get("/api/chats/", &token).await["results"][0]["id"].as_i64()
    })
    .await;

    let photo = b"\xFF\xD8\xFF\xE0\x00\x10JFIF\x00the-signed-form".to_vec();
    let uploaded: Value = reqwest::Client::new()
        .post(format!("{}/api/upload/", first.base_url))
        .header("Authorization", format!("Token {token}"))
        .multipart(reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(photo.clone()).file_name("form.jpg"),
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    peer.swallow_next_send_answer();
    let reply = first
        .post(
            &format!("/api/chats/{chat_id}/send_message/"),
            &token,
            json!({"text": "confirmed", "file_id": uploaded["id"]}),
        )
        .await;
    let reply_id = reply["id"].as_i64().unwrap();
    eventually("the send to reach the peer", || async {
        (peer.sent().len() == 1).then_some(())
    })
    .await;
    first.kill();
    peer.set_stalled(false);

    let second = crm_testkit::IsolatedApp::start_with(
        &database,
        "data",
        crm_testkit::app::peer_gateway(&peer),
        settings,
    )
    .await;
    let sent = eventually("the reply to be recorded as sent after the restart", || async {
        let message = second.get(&format!("/api/messages/{reply_id}/"), &token).await;
        (message["status"] == "sent").then_some(message)
    })
    .await;
    let delivered = peer.sent();
    assert_eq!(delivered.len(), 1, "posted once: {delivered:?}");
    assert_eq!(sent["telegram_id"], delivered[0].message_id);
    assert_eq!(
        delivered[0].media.as_deref(),
        Some(photo.as_slice()),
        "the photo, whole"
    );
    eventually("the restarted instance's own send in the peer's log", || async {
        let sends = peer
            .calls()
            .iter()
            .filter(|c| c.as_str() == "messages.sendMedia")
            .count();
        (sends >= 2).then_some(())
    })
    .await;
    assert_clean(&peer);
    second.kill();
}

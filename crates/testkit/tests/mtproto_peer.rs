//! The real grammers client of `crm-telegram-user` against the MTProto test peer over TCP on 127.0.0.1: phone
//! and QR logins with a cloud password, pushed updates, idempotent sends, catching up after a disconnect, and
//! the faults the adapter must map.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crm_core::ids::{AccountId, PeerId, TelegramMessageId};
use crm_core::inbound::InboundEvent;
use crm_core::message::{Direction, MessageType};
use crm_core::outbound::{OutgoingMedia, OutgoingMessage, SendError, SentMessage};
use crm_core::personal::{
    AccountHandle, AppCredentials, BoxFuture, CollectScope, Connection, LoginOutcome, QrProgress, QrToken,
    ReceivedUpdate, SessionVault, UserError, UserGateway,
};
use crm_core::secrets::Sensitive;
use crm_telegram_user::{DbSession, GatewaySettings, GrammersGateway};
use crm_testkit::mtproto::{MediaKind, MtprotoPeer, PushedMedia};
use grammers_session::Session as _;

const OWNER: i64 = 1001;
const CUSTOMER: i64 = 2002;
const CUSTOMER_PEER: PeerId = PeerId(CUSTOMER);

/// A message id of the test peer as the core types it.
fn tg(id: i32) -> TelegramMessageId {
    TelegramMessageId(i64::from(id))
}
const PHONE: &str = "+15550001";
const WAIT: Duration = Duration::from_secs(20);

/// The session vault, in memory.
#[derive(Default)]
struct MemoryVault(Mutex<HashMap<AccountId, Vec<u8>>>);

impl SessionVault for MemoryVault {
    fn load(&self, account_id: AccountId) -> BoxFuture<'_, Result<Option<Vec<u8>>, String>> {
        Box::pin(async move { Ok(self.0.lock().unwrap().get(&account_id).cloned()) })
    }
    fn save(&self, account_id: AccountId, session: Vec<u8>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.0.lock().unwrap().insert(account_id, session);
            Ok(())
        })
    }
    fn clear(&self, account_id: AccountId) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.0.lock().unwrap().remove(&account_id);
            Ok(())
        })
    }
}

fn account() -> AccountHandle {
    AccountHandle {
        account_id: AccountId(7),
        phone_number: PHONE.into(),
        credentials: AppCredentials {
            api_id: 12345,
            api_hash: Sensitive("0123456789abcdef".into()),
        },
    }
}

fn gateway(peer: &MtprotoPeer) -> GrammersGateway {
    GrammersGateway::new(
        Arc::new(MemoryVault::default()),
        GatewaySettings {
            dc_override: Some(peer.address()),
            preshared_auth_key: Some(peer.auth_key()),
            ..GatewaySettings::default()
        },
    )
}

/// A peer with the owner (optionally with a cloud password) and one customer.
async fn world(password: Option<(&str, &str)>) -> MtprotoPeer {
    let peer = MtprotoPeer::start().await.unwrap();
    peer.add_user(OWNER, PHONE, "Olga", password);
    peer.add_user(CUSTOMER, "+15550002", "Carl", None);
    peer
}

/// Logs the owner in by phone code (no password).
async fn logged_in(peer: &MtprotoPeer, gateway: &GrammersGateway) {
    let sent = gateway.send_code(&account()).await.unwrap();
    let code = peer.login_code().unwrap();
    let outcome = gateway
        .sign_in(&account(), &sent.phone_code_hash, &code)
        .await
        .unwrap();
    assert!(matches!(outcome, LoginOutcome::Authenticated(_)), "{outcome:?}");
}

/// Connects the logged-in owner.
async fn connected(gateway: &GrammersGateway) -> Arc<dyn Connection> {
    let (connection, _) = gateway
        .connect(&account(), CollectScope::default())
        .await
        .unwrap();
    connection
}

async fn next(connection: &dyn Connection) -> ReceivedUpdate {
    tokio::time::timeout(WAIT, connection.next_update())
        .await
        .expect("an update in time")
        .expect("the connection works")
}

/// The next new message, skipping anything else (checkpointing what it skips).
async fn next_message(connection: &dyn Connection) -> (crm_core::inbound::InboundMessage, ReceivedUpdate) {
    loop {
        let received = next(connection).await;
        if let InboundEvent::NewMessage(message) = &received.event {
            return (message.clone(), received);
        }
        if let Some(checkpoint) = received.checkpoint {
            connection.checkpoint(checkpoint).await.unwrap();
        }
    }
}

fn text(peer_id: PeerId, text: &str) -> OutgoingMessage {
    OutgoingMessage {
        peer_id,
        text: Some(text.to_owned()),
        reply_to_telegram_id: None,
        media: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_login_with_resend_and_cloud_password() {
    let peer = world(Some(("correct horse", "a horse"))).await;
    let gateway = gateway(&peer);

    let sent = gateway.send_code(&account()).await.unwrap();
    assert_eq!(sent.code_type, "APP");
    assert_eq!(sent.next_type.as_deref(), Some("SMS"));
    let resent = gateway
        .resend_code(&account(), &sent.phone_code_hash)
        .await
        .unwrap();
    assert_eq!(resent.code_type, "SMS");
    assert_eq!(resent.next_type.as_deref(), Some("CALL"));

    let code = peer.login_code().unwrap();
    let wrong = if code == "00000" { "11111" } else { "00000" };
    assert_eq!(
        gateway.sign_in(&account(), &resent.phone_code_hash, wrong).await,
        Err(UserError::InvalidCode)
    );
    let outcome = gateway
        .sign_in(&account(), &resent.phone_code_hash, &code)
        .await
        .unwrap();
    assert_eq!(
        outcome,
        LoginOutcome::PasswordRequired {
            hint: Some("a horse".into())
        }
    );
    assert_eq!(
        gateway
            .check_password(&account(), &Sensitive("battery staple".into()))
            .await,
        Err(UserError::WrongPassword)
    );
    let LoginOutcome::Authenticated(profile) = gateway
        .check_password(&account(), &Sensitive("correct horse".into()))
        .await
        .unwrap()
    else {
        panic!("not authenticated");
    };
    assert_eq!(profile.telegram_user_id, OWNER);
    assert_eq!(profile.first_name.as_deref(), Some("Olga"));
    assert_eq!(profile.phone_number.as_deref(), Some(PHONE));
    assert_eq!(peer.authorized(), Some(OWNER));
    assert_eq!(peer.duplicate_connections(), 0);
    // The pre-shared key was used from the first packet: no RSA exchange was attempted (it would be refused
    // as an unknown auth_key_id); the client learnt the salt and got a new session.
    let events = peer.service_events();
    assert!(
        !events.iter().any(|event| event.starts_with("refused")),
        "{events:?}"
    );
    assert!(
        events.iter().any(|event| event == "bad_server_salt"),
        "{events:?}"
    );
    assert!(
        events.iter().any(|event| event == "new_session_created"),
        "{events:?}"
    );
    let init = peer.init_connections();
    assert!(!init.is_empty());
    assert!(init.iter().all(|info| info.api_id == 12345
        && info.layer == Some(grammers_tl_types::LAYER)
        && info.device_model == "omnichannel-crm"));
    let calls = peer.calls();
    for expected in [
        "help.getConfig",
        "auth.sendCode",
        "auth.resendCode",
        "auth.signIn",
        "account.getPassword",
        "auth.checkPassword",
    ] {
        assert!(
            calls.iter().any(|call| call == expected),
            "{expected} missing from {calls:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_code_is_reported() {
    let peer = world(None).await;
    let gateway = gateway(&peer);
    let sent = gateway.send_code(&account()).await.unwrap();
    let code = peer.login_code().unwrap();
    peer.expire_login_code();
    assert_eq!(
        gateway.sign_in(&account(), &sent.phone_code_hash, &code).await,
        Err(UserError::CodeExpired)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_customer_message_arrives_as_a_new_message() {
    let peer = world(None).await;
    let gateway = gateway(&peer);
    logged_in(&peer, &gateway).await;
    let (connection, profile) = gateway
        .connect(&account(), CollectScope::default())
        .await
        .unwrap();
    assert_eq!(profile.telegram_user_id, OWNER);
    // The first update may come through the catch-up difference the stream starts with...
    peer.customer_writes(OWNER, CUSTOMER, "catching up");
    next_message(connection.as_ref()).await;
    let differences = |peer: &MtprotoPeer| {
        peer.calls()
            .iter()
            .filter(|call| *call == "updates.getDifference")
            .count()
    };
    let before = differences(&peer);

    // ...this one is pushed on the socket.
    let id = peer.customer_writes(OWNER, CUSTOMER, "hello from Carl");
    let received = next(connection.as_ref()).await;
    let InboundEvent::NewMessage(message) = &received.event else {
        panic!("{received:?}");
    };
    assert_eq!(message.chat.peer_id, CUSTOMER_PEER);
    assert_eq!(message.chat.first_name.as_deref(), Some("Carl"));
    assert_eq!(message.direction, Direction::Inbound);
    assert_eq!(message.telegram_message_id, tg(id));
    assert_eq!(message.text.as_deref(), Some("hello from Carl"));
    assert!(received.checkpoint.is_some());
    assert_eq!(
        differences(&peer),
        before,
        "delivered by the push, not by a difference"
    );
    assert_eq!(peer.duplicate_connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_random_id_sent_twice_creates_one_message() {
    let peer = world(None).await;
    let gateway = gateway(&peer);
    logged_in(&peer, &gateway).await;
    let connection = connected(&gateway).await;
    // The customer must be known to the session (access hash) before we can write to them.
    peer.customer_writes(OWNER, CUSTOMER, "hi");
    next_message(connection.as_ref()).await;

    let first = connection
        .send(text(CUSTOMER_PEER, "once"), 424_242)
        .await
        .unwrap();
    // Telegram answers a repeat with what the first call produced.
    let second = connection
        .send(text(CUSTOMER_PEER, "once"), 424_242)
        .await
        .unwrap();
    let sent = peer.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].random_id, 424_242);
    assert_eq!(sent[0].text, "once");
    assert_eq!(Some(tg(sent[0].message_id)), first.telegram_message_id);
    assert_eq!(second.telegram_message_id, first.telegram_message_id);

    // While the first call is still in progress Telegram says RANDOM_ID_DUPLICATE: it has the message, so the
    // send counts as done (without an id: the first call's answer carries it), never as a failure to repeat.
    peer.duplicate_in_progress_on_next_repeat();
    let busy = connection.send(text(CUSTOMER_PEER, "once"), 424_242).await;
    assert!(
        matches!(
            busy,
            Ok(SentMessage {
                telegram_message_id: None,
                ..
            })
        ),
        "{busy:?}"
    );
    assert_eq!(peer.sent().len(), 1, "still one message at the peer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_pushed_while_disconnected_arrives_after_reconnecting() {
    let peer = world(None).await;
    let vault = Arc::new(MemoryVault::default());
    let settings = GatewaySettings {
        dc_override: Some(peer.address()),
        preshared_auth_key: Some(peer.auth_key()),
        ..GatewaySettings::default()
    };
    let gateway = GrammersGateway::new(vault.clone(), settings);
    logged_in(&peer, &gateway).await;

    let connection = connected(&gateway).await;
    peer.customer_writes(OWNER, CUSTOMER, "before");
    let (message, received) = next_message(connection.as_ref()).await;
    assert_eq!(message.text.as_deref(), Some("before"));
    let checkpoint = received.checkpoint.unwrap();
    let pts = checkpoint.0["primary"]["pts"]
        .as_i64()
        .expect("a private message moves the account-wide pts");
    connection.checkpoint(checkpoint).await.unwrap();
    // The periodic flush saves the checkpointed state; reconnecting must start from it.
    let saved: Arc<dyn SessionVault> = vault.clone();
    crm_testkit::eventually("the periodic flush to save the checkpointed state", || async {
        let stored = DbSession::load(Arc::clone(&saved), account().account_id, None)
            .await
            .ok()?;
        (i64::from(stored.updates_state().await.ok()?.pts) >= pts).then_some(())
    })
    .await;

    peer.drop_connections();
    drop(connection);
    crm_testkit::eventually("the old connection to close", || async {
        (peer.open_connections() == 0).then_some(())
    })
    .await;
    let missed = peer.customer_writes(OWNER, CUSTOMER, "while you were away");

    let connection = connected(&gateway).await;
    let (message, _) = next_message(connection.as_ref()).await;
    assert_eq!(message.text.as_deref(), Some("while you were away"));
    assert_eq!(message.telegram_message_id, tg(missed));
    assert!(peer.calls().iter().any(|call| call == "updates.getDifference"));
    assert_eq!(peer.duplicate_connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flood_wait_on_send_is_retry_after() {
    let peer = world(None).await;
    let gateway = gateway(&peer);
    logged_in(&peer, &gateway).await;
    let connection = connected(&gateway).await;
    peer.customer_writes(OWNER, CUSTOMER, "hi");
    next_message(connection.as_ref()).await;

    // A long wait reaches the caller like a short one (see `a_short_flood_wait_reaches_the_caller_at_once`).
    peer.flood_next_send(120);
    let result = connection.send(text(CUSTOMER_PEER, "too fast"), 1).await;
    assert!(
        matches!(result, Err(SendError::RetryAfter(wait, _)) if wait == Duration::from_secs(120)),
        "{result:?}"
    );
    assert!(peer.sent().is_empty());
    connection.send(text(CUSTOMER_PEER, "later"), 1).await.unwrap();
    assert_eq!(peer.sent().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_session_cannot_connect() {
    let peer = world(None).await;
    let gateway = gateway(&peer);
    logged_in(&peer, &gateway).await;
    peer.revoke_session();
    let result = gateway.connect(&account(), CollectScope::default()).await;
    assert!(
        matches!(result, Err(UserError::SessionRevoked)),
        "{:?}",
        result.err()
    );
}

struct Tokens(Mutex<Vec<QrToken>>);

impl QrProgress for Tokens {
    fn token(&self, token: QrToken) {
        self.0.lock().unwrap().push(token);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qr_login_after_a_scan() {
    let peer = Arc::new(world(None).await);
    let gateway = gateway(&peer);
    let tokens = Arc::new(Tokens(Mutex::new(Vec::new())));
    let scanner = {
        let peer = Arc::clone(&peer);
        tokio::spawn(async move {
            crm_testkit::eventually("a QR token", || async { peer.qr_token_shown().then_some(()) }).await;
            peer.scan_qr(OWNER);
        })
    };
    let outcome = tokio::time::timeout(WAIT, gateway.qr_login(&account(), tokens.clone()))
        .await
        .expect("the QR login ends")
        .unwrap();
    scanner.await.unwrap();
    let LoginOutcome::Authenticated(profile) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(profile.telegram_user_id, OWNER);
    assert!(
        tokens.0.lock().unwrap()[0]
            .login_url
            .starts_with("tg://login?token=")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_photo_downloads() {
    let peer = world(None).await;
    let gateway = gateway(&peer);
    logged_in(&peer, &gateway).await;
    let connection = connected(&gateway).await;
    let photo: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let id = peer.customer_sends_media(
        OWNER,
        CUSTOMER,
        PushedMedia {
            kind: MediaKind::Photo,
            bytes: photo.clone(),
            file_name: String::new(),
            mime_type: String::new(),
            caption: "look".into(),
        },
    );
    let (message, _) = next_message(connection.as_ref()).await;
    assert_eq!(message.telegram_message_id, tg(id));
    assert!(message.media.is_some(), "{message:?}");
    let file = connection
        .download(CUSTOMER_PEER, tg(id), 10_000_000)
        .await
        .unwrap();
    assert_eq!(file.bytes, photo);

    // File references expire; the adapter fetches the message again before downloading.
    peer.rotate_file_references();
    let again = connection
        .download(CUSTOMER_PEER, tg(id), 10_000_000)
        .await
        .unwrap();
    assert_eq!(again.bytes, photo);
    // A file over the limit is refused with its size.
    let refused = connection.download(CUSTOMER_PEER, tg(id), 1000).await;
    assert!(
        matches!(refused, Err(UserError::PeerUnavailable(_))),
        "{refused:?}"
    );
}

/// The next update of any kind, checkpointed.
async fn next_update(connection: &dyn Connection) -> InboundEvent {
    let received = next(connection).await;
    if let Some(checkpoint) = received.checkpoint.clone() {
        connection.checkpoint(checkpoint).await.unwrap();
    }
    received.event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_edits_deletions_read_receipts_media_and_groups_are_mapped() {
    let peer = world(None).await;
    peer.add_group(555, "Support group");
    let gateway = gateway(&peer);
    logged_in(&peer, &gateway).await;
    let scope = CollectScope {
        include_groups: true,
        include_channels: false,
    };
    let (connection, _) = gateway.connect(&account(), scope).await.unwrap();

    let ours = peer.owner_writes_elsewhere(OWNER, CUSTOMER, "sent from my phone");
    let (message, _) = next_message(connection.as_ref()).await;
    assert_eq!(message.direction, Direction::Outbound);
    assert_eq!(message.chat.peer_id, CUSTOMER_PEER);
    assert_eq!(message.telegram_message_id, tg(ours));

    peer.edit(OWNER, ours, "sent from my phone (edited)");
    match next_update(connection.as_ref()).await {
        InboundEvent::EditedMessage(edited) => {
            assert_eq!(edited.telegram_message_id, tg(ours));
            assert_eq!(edited.text.as_deref(), Some("sent from my phone (edited)"));
        }
        other => panic!("{other:?}"),
    }

    peer.read_outbox(OWNER, CUSTOMER, ours);
    assert_eq!(
        next_update(connection.as_ref()).await,
        InboundEvent::ReadByPeer {
            peer_id: CUSTOMER_PEER,
            max_id: tg(ours)
        }
    );

    peer.delete(OWNER, &[ours]);
    assert_eq!(
        next_update(connection.as_ref()).await,
        InboundEvent::Deleted {
            peer_id: None,
            telegram_message_ids: vec![tg(ours)]
        }
    );

    let in_group = peer.group_message(OWNER, 555, CUSTOMER, "hello group");
    let (message, _) = next_message(connection.as_ref()).await;
    assert_eq!(message.chat.peer_id, PeerId(-555));
    assert_eq!(message.telegram_message_id, tg(in_group));
    assert_eq!(message.text.as_deref(), Some("hello group"));

    for (kind, expected, name, mime) in [
        (
            MediaKind::Document,
            MessageType::Document,
            "invoice.pdf",
            "application/pdf",
        ),
        (MediaKind::Voice, MessageType::Voice, "voice.ogg", "audio/ogg"),
    ] {
        let media = PushedMedia {
            kind,
            bytes: vec![7; 1000],
            file_name: name.into(),
            mime_type: mime.into(),
            caption: String::new(),
        };
        let id = peer.customer_sends_media(OWNER, CUSTOMER, media);
        let (message, _) = next_message(connection.as_ref()).await;
        assert_eq!(message.telegram_message_id, tg(id));
        assert_eq!(message.message_type, expected, "{message:?}");
        let file = connection
            .download(CUSTOMER_PEER, tg(id), 1_000_000)
            .await
            .unwrap();
        assert_eq!(file.bytes, vec![7; 1000]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_marks_media_sends_and_history_reach_the_peer() {
    let peer = world(None).await;
    let gateway = gateway(&peer);
    logged_in(&peer, &gateway).await;
    let connection = connected(&gateway).await;
    let first = peer.customer_writes(OWNER, CUSTOMER, "one");
    next_message(connection.as_ref()).await;

    connection.mark_read(CUSTOMER_PEER, tg(first)).await.unwrap();
    assert_eq!(
        peer.reads(),
        vec![crm_testkit::mtproto::ReadMark {
            peer_id: CUSTOMER,
            max_id: first
        }]
    );

    let bytes: Vec<u8> = (0..700_000u32).map(|i| (i % 253) as u8).collect();
    let message = OutgoingMessage {
        peer_id: CUSTOMER_PEER,
        text: Some("the contract".into()),
        reply_to_telegram_id: None,
        media: Some(OutgoingMedia {
            kind: MessageType::Document,
            bytes: bytes.clone(),
            file_name: "contract.pdf".into(),
            content_type: "application/pdf".into(),
        }),
    };
    let sent = connection.send(message, 99).await.unwrap();
    let at_peer = peer.sent();
    assert_eq!(at_peer.len(), 1);
    assert_eq!(Some(tg(at_peer[0].message_id)), sent.telegram_message_id);
    assert_eq!(at_peer[0].text, "the contract");
    assert_eq!(at_peer[0].media.as_deref(), Some(bytes.as_slice()));

    let history = connection
        .history(
            crm_core::personal::HistoryLimits {
                dialogs: 10,
                messages_per_dialog: 10,
            },
            CollectScope::default(),
        )
        .await
        .unwrap();
    let ids: Vec<Option<TelegramMessageId>> = history
        .iter()
        .filter_map(|event| match event {
            InboundEvent::NewMessage(message) => Some(Some(message.telegram_message_id)),
            _ => None,
        })
        .collect();
    assert_eq!(ids, vec![Some(tg(first)), sent.telegram_message_id]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_peer_loses_nothing_once_the_connection_is_rebuilt() {
    let peer = world(None).await;
    let gateway = gateway(&peer);
    logged_in(&peer, &gateway).await;
    let connection = connected(&gateway).await;

    peer.set_stalled(true);
    let a = peer.customer_writes(OWNER, CUSTOMER, "a");
    let b = peer.customer_writes(OWNER, CUSTOMER, "b");
    // Pings go unanswered, which is how the watchdog notices.
    assert!(
        tokio::time::timeout(Duration::from_secs(2), connection.ping())
            .await
            .is_err()
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), connection.next_update())
            .await
            .is_err()
    );

    drop(connection);
    peer.set_stalled(false);
    crm_testkit::eventually("the stalled connection to close", || async {
        (peer.open_connections() == 0).then_some(())
    })
    .await;
    let connection = connected(&gateway).await;
    let (first, _) = next_message(connection.as_ref()).await;
    let (second, _) = next_message(connection.as_ref()).await;
    assert_eq!(
        (first.telegram_message_id, second.telegram_message_id),
        (tg(a), tg(b))
    );
    assert_eq!(peer.duplicate_connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_live_connection_on_the_same_key_is_refused_and_recorded() {
    let peer = world(None).await;
    let gateway = gateway(&peer);
    logged_in(&peer, &gateway).await;
    let (_first, _) = gateway
        .connect(&account(), CollectScope::default())
        .await
        .unwrap();
    let second = gateway.connect(&account(), CollectScope::default()).await;
    assert!(matches!(second, Err(UserError::Duplicated)), "{:?}", second.err());
    assert_eq!(peer.duplicate_connections(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_whose_answer_is_lost_is_not_posted_twice() {
    let peer = world(None).await;
    let gateway = gateway(&peer);
    logged_in(&peer, &gateway).await;
    let connection = connected(&gateway).await;
    peer.customer_writes(OWNER, CUSTOMER, "hi");
    next_message(connection.as_ref()).await;

    peer.cut_after_next_send();
    let result = tokio::time::timeout(WAIT, connection.send(text(CUSTOMER_PEER, "did it go?"), 77))
        .await
        .expect("the send ends");
    // grammers retries the call once on a new connection after the I/O error (the adapter's retry policy keeps
    // that from grammers' default) with the same random_id, and gets the first call's answer: one message, and
    // the caller learns its id.
    let sent = result.unwrap();
    let at_peer = peer.sent();
    assert_eq!(at_peer.len(), 1);
    assert_eq!(Some(tg(at_peer[0].message_id)), sent.telegram_message_id);
    let sends = peer
        .calls()
        .iter()
        .filter(|call| *call == "messages.sendMessage")
        .count();
    assert_eq!(sends, 2);
    assert!(
        peer.service_events()
            .iter()
            .any(|event| event == "cut before answering")
    );
    assert_eq!(peer.duplicate_connections(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_revoked_while_connected_is_reported() {
    let peer = world(None).await;
    let gateway = gateway(&peer);
    logged_in(&peer, &gateway).await;
    let connection = connected(&gateway).await;
    peer.revoke_session();
    let result = tokio::time::timeout(WAIT, connection.ping())
        .await
        .expect("the ping ends");
    assert_eq!(result, Err(UserError::SessionRevoked));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qr_login_of_an_account_with_a_password_then_the_password() {
    let peer = Arc::new(world(Some(("pw", "pet name"))).await);
    let gateway = gateway(&peer);
    let tokens = Arc::new(Tokens(Mutex::new(Vec::new())));
    let scanner = {
        let peer = Arc::clone(&peer);
        tokio::spawn(async move {
            crm_testkit::eventually("a QR token", || async { peer.qr_token_shown().then_some(()) }).await;
            peer.scan_qr(OWNER);
        })
    };
    let outcome = tokio::time::timeout(WAIT, gateway.qr_login(&account(), tokens))
        .await
        .expect("the QR login ends")
        .unwrap();
    scanner.await.unwrap();
    assert_eq!(
        outcome,
        LoginOutcome::PasswordRequired {
            hint: Some("pet name".into())
        }
    );
    let outcome = gateway
        .check_password(&account(), &Sensitive("pw".into()))
        .await
        .unwrap();
    assert!(
        matches!(outcome, LoginOutcome::Authenticated(ref p) if p.telegram_user_id == OWNER),
        "{outcome:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_number_is_unoccupied_and_log_out_forgets_the_session() {
    let peer = MtprotoPeer::start().await.unwrap();
    let gateway = gateway(&peer);
    let sent = gateway.send_code(&account()).await.unwrap();
    let code = peer.login_code().unwrap();
    assert_eq!(
        gateway.sign_in(&account(), &sent.phone_code_hash, &code).await,
        Err(UserError::PhoneUnoccupied)
    );

    peer.add_user(OWNER, PHONE, "Olga", None);
    logged_in(&peer, &gateway).await;
    assert_eq!(peer.authorized(), Some(OWNER));
    gateway.log_out(&account()).await.unwrap();
    assert_eq!(peer.authorized(), None);
    assert!(peer.calls().iter().any(|call| call == "auth.logOut"));
    let after = gateway.connect(&account(), CollectScope::default()).await;
    assert!(
        matches!(after, Err(UserError::SessionRevoked)),
        "{:?}",
        after.err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_message_from_a_known_sender_arrives() {
    let peer = world(None).await;
    let gateway = gateway(&peer);
    logged_in(&peer, &gateway).await;
    let connection = connected(&gateway).await;
    peer.customer_writes(OWNER, CUSTOMER, "full");
    next_message(connection.as_ref()).await;

    let id = peer.customer_writes_short(OWNER, CUSTOMER, "short");
    let (message, _) = next_message(connection.as_ref()).await;
    assert_eq!(message.telegram_message_id, tg(id));
    assert_eq!(message.chat.peer_id, CUSTOMER_PEER);
    assert_eq!(message.text.as_deref(), Some("short"));
    connection.send(text(CUSTOMER_PEER, "answer"), 8).await.unwrap();
}

/// Telegram sends most private text messages as `updateShortMessage`, without the sender's user. A first
/// message from a new customer is then "incomplete" (<https://core.telegram.org/api/updates>): the adapter
/// fetches the message again (`messages.getMessages`) for the customer's name and access hash, so the chat is
/// named and can be answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_message_from_a_new_sender_can_be_answered() {
    let peer = world(None).await;
    let gateway = gateway(&peer);
    logged_in(&peer, &gateway).await;
    peer.add_user(3003, "+15550003", "Nina", None);
    let connection = connected(&gateway).await;
    // Once the stream has caught up (the first update), later ones come from the socket.
    peer.customer_writes(OWNER, 3003, "someone else");
    next_message(connection.as_ref()).await;
    let fetches = |peer: &MtprotoPeer| {
        peer.calls()
            .iter()
            .filter(|call| *call == "messages.getMessages")
            .count()
    };
    assert_eq!(
        fetches(&peer),
        0,
        "a message that came with its users needs no fetch"
    );

    let id = peer.customer_writes_short(OWNER, CUSTOMER, "first contact");
    let (message, _) = next_message(connection.as_ref()).await;
    assert_eq!(message.telegram_message_id, tg(id));
    assert_eq!(message.chat.peer_id, CUSTOMER_PEER);
    assert_eq!(message.chat.first_name.as_deref(), Some("Carl"));
    assert_eq!(message.text.as_deref(), Some("first contact"));
    assert_eq!(fetches(&peer), 1);

    let reply = connection.send(text(CUSTOMER_PEER, "welcome"), 5).await.unwrap();
    let sent = peer.sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].text, "welcome");
    assert_eq!(Some(tg(sent[0].message_id)), reply.telegram_message_id);

    // The customer is known now: their next short message is not fetched again (the reply itself comes back as
    // an outgoing message first).
    let thanks = peer.customer_writes_short(OWNER, CUSTOMER, "thanks");
    loop {
        let (message, _) = next_message(connection.as_ref()).await;
        if message.telegram_message_id == tg(thanks) {
            assert_eq!(message.chat.peer_id, CUSTOMER_PEER);
            break;
        }
        assert_eq!(message.direction, Direction::Outbound, "{message:?}");
    }
    assert_eq!(fetches(&peer), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_number_of_another_data_centre_is_followed() {
    let peer = world(None).await;
    let vault = Arc::new(MemoryVault::default());
    let gateway = GrammersGateway::new(
        vault.clone(),
        GatewaySettings {
            dc_override: Some(peer.address()),
            preshared_auth_key: Some(peer.auth_key()),
            ..GatewaySettings::default()
        },
    );
    peer.migrate_phone_to(4);
    let sent = gateway.send_code(&account()).await.unwrap();
    let stored: serde_json::Value = serde_json::from_slice(&vault.0.lock().unwrap()[&AccountId(7)]).unwrap();
    assert_eq!(stored["home_dc"], 4, "{stored}");
    let code = peer.login_code().unwrap();
    let outcome = gateway
        .sign_in(&account(), &sent.phone_code_hash, &code)
        .await
        .unwrap();
    assert!(matches!(outcome, LoginOutcome::Authenticated(_)), "{outcome:?}");
    let (_connection, profile) = gateway
        .connect(&account(), CollectScope::default())
        .await
        .unwrap();
    assert_eq!(profile.telegram_user_id, OWNER);
    assert_eq!(peer.duplicate_connections(), 0);
}

/// A `FLOOD_WAIT` is not slept through inside the call (grammers' default policy would sleep through up to
/// 60 s): even a short one comes back at once as `SendError::RetryAfter`, for the outbox to reschedule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_flood_wait_reaches_the_caller_at_once() {
    let peer = world(None).await;
    let gateway = gateway(&peer);
    logged_in(&peer, &gateway).await;
    let connection = connected(&gateway).await;
    peer.customer_writes(OWNER, CUSTOMER, "hi");
    next_message(connection.as_ref()).await;
    peer.flood_next_send(42);
    let started = std::time::Instant::now();
    let result = connection.send(text(CUSTOMER_PEER, "x"), 3).await;
    assert!(
        matches!(result, Err(SendError::RetryAfter(wait, _)) if wait == Duration::from_secs(42)),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(peer.sent().is_empty());
    let sends = peer
        .calls()
        .iter()
        .filter(|call| *call == "messages.sendMessage")
        .count();
    assert_eq!(sends, 1, "not retried inside the call");
    connection.send(text(CUSTOMER_PEER, "x"), 3).await.unwrap();
    assert_eq!(peer.sent().len(), 1);
}

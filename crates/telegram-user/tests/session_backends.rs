//! [`DbSession`] over the vault production uses (crm-store's `StoredSessions`) on SQLite, MySQL/MariaDB and
//! PostgreSQL: what grammers writes during a login comes back whole in a new session, that session is one
//! grammers and the gateway can work with, and the database column only ever holds sealed bytes.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use crm_core::personal::{AccountHandle, AppCredentials, CollectScope, SessionVault, UserError, UserGateway};
use crm_core::secrets::{SecretBox, Sensitive};
use crm_store::Store;
use crm_store::connect::PoolSettings;
use crm_store::repo::personal::{NewPersonal, StoredSessions};
use crm_telegram_user::{DbSession, GatewaySettings, GrammersGateway};
use crm_testkit_db::{TestDatabase, on_every_backend};
use grammers_session::Session as _;
use grammers_session::types::{
    ChannelKind, ChannelState, PeerAuth, PeerId, PeerInfo, UpdateState, UpdatesState,
};
use grammers_session::updates::MessageBoxes;
use grammers_tl_types as tl;

const SECRET_KEY: &str = "telegram-user-session-test-key";
const PHONE: &str = "+491701234567";
const API_ID: i32 = 12345;
const API_HASH: &str = "0123456789abcdef0123456789abcdef";
const HOME_DC: i32 = 4;
const OWNER: i64 = 555_000_111;
const OWNER_HASH: i64 = 6_148_914_691_236_517_205;
const CHANNEL: i64 = 1_987_654_321;
const CHANNEL_HASH: i64 = -7_364_111_222_333_444_555;

on_every_backend!(a_session_survives_the_database_and_is_stored_sealed);

/// A 256-byte permanent auth key without repeats that could hide a partial match.
fn auth_key() -> [u8; 256] {
    std::array::from_fn(|index| (index as u8).wrapping_mul(37).wrapping_add(11))
}

fn owner() -> PeerInfo {
    PeerInfo::User {
        id: OWNER,
        auth: Some(PeerAuth::from_hash(OWNER_HASH)),
        bot: Some(false),
        is_self: Some(true),
    }
}

fn channel() -> PeerInfo {
    PeerInfo::Channel {
        id: CHANNEL,
        auth: Some(PeerAuth::from_hash(CHANNEL_HASH)),
        kind: Some(ChannelKind::Megagroup),
    }
}

fn expected_updates() -> UpdatesState {
    UpdatesState {
        pts: 1234,
        qts: 7,
        date: 1_760_000_000,
        seq: 56,
        channels: vec![ChannelState {
            id: CHANNEL,
            pts: 890,
        }],
    }
}

async fn open_store(database: &TestDatabase, secret_key: &str) -> Store {
    Store::connect(
        &database.url,
        &PoolSettings::default(),
        SecretBox::new(secret_key, &[]),
    )
    .await
    .unwrap()
}

async fn a_session_survives_the_database_and_is_stored_sealed(database: TestDatabase) {
    let store = open_store(&database, SECRET_KEY).await;
    store.migrate(|_, _, _| {}).await.unwrap();
    let account = crm_store::repo::personal::upsert(
        &store,
        NewPersonal {
            name: "Olga's phone".into(),
            phone_number: PHONE.into(),
            api_id: API_ID,
            api_hash: Sensitive(API_HASH.into()),
            include_groups: true,
            include_channels: false,
        },
    )
    .await
    .unwrap();
    let vault: Arc<dyn SessionVault> = Arc::new(StoredSessions::new(store.clone()));
    assert_eq!(
        vault.load(account.id).await.unwrap(),
        None,
        "a new account has no session"
    );

    // What grammers does to a session during a login: home data centre, its auth key, the own user, the peers
    // that come with answers, the update state.
    let session = DbSession::load(Arc::clone(&vault), account.id, None)
        .await
        .unwrap();
    session.set_home_dc_id(HOME_DC).await.unwrap();
    let mut home = session.dc_option(HOME_DC).unwrap().unwrap();
    home.auth_key = Some(auth_key());
    session.set_dc_option(&home).await.unwrap();
    let written_through = DbSession::load(Arc::clone(&vault), account.id, None)
        .await
        .unwrap();
    assert_eq!(
        written_through.dc_option(HOME_DC).unwrap(),
        Some(home.clone()),
        "keys are saved at once"
    );
    assert_eq!(
        written_through.self_user().unwrap(),
        None,
        "peers wait for the flush"
    );

    session.cache_peer(owner()).await.unwrap();
    session.cache_peer(channel()).await.unwrap();
    session
        .set_update_state(UpdateState::Primary {
            pts: 1234,
            date: 1_760_000_000,
            seq: 56,
        })
        .await
        .unwrap();
    session
        .set_update_state(UpdateState::Secondary { qts: 7 })
        .await
        .unwrap();
    session
        .set_update_state(UpdateState::Channel {
            id: CHANNEL,
            pts: 890,
        })
        .await
        .unwrap();
    session.flush().await.unwrap();
    drop(session);

    // A new session over the same vault (as after a restart, or on another instance) has all of it.
    let restored = DbSession::load(Arc::clone(&vault), account.id, None)
        .await
        .unwrap();
    assert_eq!(restored.home_dc_id().unwrap(), HOME_DC);
    assert_eq!(restored.dc_option(HOME_DC).unwrap(), Some(home.clone()));
    assert_eq!(
        restored.dc_option(HOME_DC).unwrap().unwrap().auth_key,
        Some(auth_key())
    );
    assert!(restored.has_home_auth_key().unwrap());
    for other in (1..=5).filter(|dc| *dc != HOME_DC) {
        let option = restored
            .dc_option(other)
            .unwrap()
            .expect("every data centre is known");
        assert_eq!(option.auth_key, None, "only the home data centre has a key");
    }
    assert_eq!(restored.peer(PeerId::self_user()).await.unwrap(), Some(owner()));
    assert_eq!(restored.self_user().unwrap(), Some(owner()));
    assert_eq!(
        restored.peer(PeerId::user(OWNER).unwrap()).await.unwrap(),
        Some(owner())
    );
    let channel_ref = restored
        .peer_ref(PeerId::channel(CHANNEL).unwrap())
        .await
        .unwrap()
        .expect("the channel is cached with its access hash");
    assert_eq!(channel_ref.id, PeerId::channel(CHANNEL).unwrap());
    assert_eq!(channel_ref.auth.hash(), CHANNEL_HASH);
    let tl::enums::InputPeer::Channel(input) = tl::enums::InputPeer::from(&channel_ref) else {
        panic!("a channel reference becomes an input channel");
    };
    assert_eq!((input.channel_id, input.access_hash), (CHANNEL, CHANNEL_HASH));
    assert_eq!(
        restored.peer(PeerId::user(OWNER + 1).unwrap()).await.unwrap(),
        None,
        "nothing invented"
    );
    let updates = restored.updates_state().await.unwrap();
    assert_eq!(updates, expected_updates());
    // grammers' update machinery resumes from exactly that state.
    assert_eq!(MessageBoxes::load(updates.clone()).session_state(), updates);

    // The column holds sealed bytes only; opened with the store's key they are the session.
    use sea_orm::EntityTrait;
    let sealed = crm_store::entity::accounts::Entity::find_by_id(account.id.0)
        .one(store.db())
        .await
        .unwrap()
        .unwrap()
        .session_sealed
        .expect("the session is in accounts.session_sealed");
    let key_hex: String = auth_key().iter().map(|byte| format!("{byte:02x}")).collect();
    let secrets = [
        ("auth key (hex)", key_hex.clone()),
        ("auth key (HEX)", key_hex.to_uppercase()),
        ("auth key (base64)", STANDARD.encode(auth_key())),
        ("auth key (base64url)", URL_SAFE_NO_PAD.encode(auth_key())),
        ("channel access hash", CHANNEL_HASH.to_string()),
        ("own access hash", OWNER_HASH.to_string()),
    ];
    for (what, plain) in &secrets {
        assert!(
            !sealed.contains(plain.as_str()),
            "accounts.session_sealed shows the {what}"
        );
    }
    for readable in ["auth_key", "dc_options", "access_hash", "{"] {
        assert!(
            !sealed.contains(readable),
            "accounts.session_sealed is readable: {readable}"
        );
    }
    let opened = String::from_utf8(vault.load(account.id).await.unwrap().unwrap()).unwrap();
    // The session stores the key as standard base64 and the hashes as numbers: what the column must not show.
    for (what, plain) in [&secrets[2], &secrets[4], &secrets[5]] {
        assert!(
            opened.contains(plain.as_str()),
            "the opened session has the {what}"
        );
    }
    let other_store = open_store(&database, "another-secret-key").await;
    assert!(
        StoredSessions::new(other_store.clone())
            .load(account.id)
            .await
            .is_err(),
        "another secret key cannot open the session"
    );
    other_store.close().await.unwrap();

    // The gateway takes the restored session as logged in: it goes to Telegram (here a port that was just
    // closed, so nothing leaves the machine) instead of refusing with a revoked session.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let gateway = GrammersGateway::new(
        Arc::clone(&vault),
        GatewaySettings {
            dc_override: Some(closed),
            ..GatewaySettings::default()
        },
    );
    let handle = AccountHandle {
        account_id: account.id,
        phone_number: PHONE.into(),
        credentials: AppCredentials {
            api_id: API_ID,
            api_hash: Sensitive(API_HASH.into()),
        },
    };
    let connected = tokio::time::timeout(
        Duration::from_secs(60),
        gateway.connect(&handle, CollectScope::default()),
    )
    .await
    .expect("a refused connection fails quickly");
    let error = connected.map(|_| ()).unwrap_err();
    assert!(matches!(error, UserError::Network(_)), "{error:?}");
    let after = DbSession::load(Arc::clone(&vault), account.id, None)
        .await
        .unwrap();
    assert_eq!(
        after.dc_option(HOME_DC).unwrap(),
        Some(home),
        "a failed connection keeps the key and Telegram's address"
    );
    assert_eq!(after.self_user().unwrap(), Some(owner()));
    store.close().await.unwrap();
}

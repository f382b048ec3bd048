//! Opening a migrated store on a test database, and the stored bot accounts the stories start from.
//!
//! The server's tests get the same accounts from `crm_testkit::fixtures`; the store's tests cannot use that
//! crate (it depends on this one), so the few lines live here.

use crm_core::account::{Account, AccountStatus, AccountType};
use crm_core::secrets::{SecretBox, Sensitive};
use crm_store::Store;
use crm_store::connect::PoolSettings;
use crm_store::repo::accounts::{NewAccount, create};
use crm_testkit_db::TestDatabase;

pub const SECRET_KEY: &str = "store-test-secret-key";

/// A store on `database` as another instance would open it: connected, no migrations run.
pub async fn open_store(database: &TestDatabase) -> Store {
    Store::connect(
        &database.url,
        &PoolSettings::default(),
        SecretBox::new(SECRET_KEY, &[]),
    )
    .await
    .expect("connect")
}

pub async fn migrated_store(database: &TestDatabase) -> Store {
    let store = open_store(database).await;
    let mut seen = Vec::new();
    let applied = store
        .migrate(|index, total, name| seen.push((index, total, name.to_owned())))
        .await
        .unwrap();
    assert_eq!(applied, seen.len());
    assert!(applied >= 1, "a fresh database gets every migration");
    assert_eq!(seen[0].0, 1);
    store
}

/// An active bot account named `name` with this token (optional) and no webhook secret; its own Telegram id is
/// the token's numeric part.
pub async fn bot_account(store: &Store, name: &str, token: Option<&str>) -> Account {
    let telegram_user_id = token
        .and_then(|t| t.split(':').next())
        .and_then(|id| id.parse().ok());
    create(
        store,
        NewAccount {
            name: name.to_owned(),
            account_type: AccountType::Bot,
            status: AccountStatus::Active,
            phone_number: None,
            api_id: None,
            api_hash: None,
            session: None,
            bot_token: token.map(|t| Sensitive(t.to_owned())),
            bot_username: Some(format!("{}_bot", name.to_lowercase().replace(' ', "_"))),
            webhook_secret: None,
            telegram_user_id,
            forward_url: None,
        },
    )
    .await
    .expect("bot account stored")
}

/// The message path's use cases over `store`.
pub fn inbox(store: &Store) -> std::sync::Arc<crm_core::inbox::Inbox> {
    std::sync::Arc::new(crm_core::inbox::Inbox::new(
        std::sync::Arc::new(store.clone()),
        std::sync::Arc::new(crm_core::ports::SystemClock),
        crm_core::inbox::InboxSettings::default(),
    ))
}

/// A user of the inbox.
pub async fn user(store: &Store, name: &str, role: crm_core::user::Role) -> crm_core::user::User {
    crm_store::repo::users::create(
        store,
        crm_store::repo::users::NewUser {
            username: name.into(),
            password_hash: "not-a-real-hash".into(),
            role,
            display_name: name.into(),
            language: "en".into(),
            max_chats: 10,
            is_active: true,
        },
    )
    .await
    .unwrap()
}

/// Every event written so far, numbered (the relay's work, done here by hand).
pub async fn sequenced(store: &Store) -> Vec<crm_core::event::StoredEvent> {
    use crm_core::ports::EventLog;
    let mut all = Vec::new();
    loop {
        let batch = store.sequence_pending(100).await.unwrap();
        if batch.is_empty() {
            return all;
        }
        all.extend(batch);
    }
}

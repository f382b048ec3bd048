//! Secrets at rest: sealed in the database, opened only with the key, found by token through a keyed hash.

use crm_core::account::{AccountStatus, AccountType};
use crm_core::secrets::{SecretBox, Sensitive};
use crm_store::connect::PoolSettings;
use crm_store::entity::accounts;
use crm_store::repo::accounts::{self as account_repo, NewAccount};
use crm_store::{Store, StoreError};
use crm_testkit_db::{TestBackend, TestDatabase, on_every_backend};
use sea_orm::EntityTrait;

use crate::support::migrated_store;

on_every_backend!(secrets_are_sealed_at_rest_and_open_only_with_the_key);

const BOT_TOKEN: &str = "7412589630:AAHclearTokenMustNeverBeStoredInClear";
const API_HASH: &str = "0123456789abcdefCLEARAPIHASH";
const SESSION: &str = "CLEAR-MTPROTO-SESSION-AUTH-KEY-BYTES";
const WEBHOOK_SECRET: &str = "CLEARwebhookSECRETvalue";

async fn secrets_are_sealed_at_rest_and_open_only_with_the_key(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let created = account_repo::create(
        &store,
        NewAccount {
            name: "Support".into(),
            account_type: AccountType::Personal,
            status: AccountStatus::Inactive,
            phone_number: Some("+79990001122".into()),
            api_id: Some(123456),
            api_hash: Some(Sensitive(API_HASH.into())),
            session: Some(Sensitive(SESSION.into())),
            bot_token: Some(Sensitive(BOT_TOKEN.into())),
            bot_username: None,
            webhook_secret: Some(Sensitive(WEBHOOK_SECRET.into())),
            telegram_user_id: None,
            forward_url: None,
        },
    )
    .await
    .unwrap();

    let row = accounts::Entity::find_by_id(created.id.0)
        .one(store.db())
        .await
        .unwrap()
        .unwrap();
    let everything_stored = format!("{row:?}");
    for secret in [BOT_TOKEN, API_HASH, SESSION, WEBHOOK_SECRET] {
        assert!(
            !everything_stored.contains(secret),
            "{secret} stored in clear: {everything_stored}"
        );
    }
    let opened = account_repo::secrets(&store, created.id).await.unwrap();
    assert_eq!(opened.bot_token, Some(Sensitive(BOT_TOKEN.into())));
    assert_eq!(opened.api_hash, Some(Sensitive(API_HASH.into())));
    assert_eq!(opened.session, Some(Sensitive(SESSION.into())));
    assert_eq!(opened.webhook_secret, Some(Sensitive(WEBHOOK_SECRET.into())));
    assert!(
        !format!("{opened:?}").contains(SESSION),
        "Debug output redacts secrets"
    );

    // Bots are found by token without the token being stored; only bots match.
    assert!(
        account_repo::find_bot_by_token(&store, BOT_TOKEN)
            .await
            .unwrap()
            .is_none(),
        "a personal account is not a bot"
    );

    // Another SECRET_KEY cannot open them; the old key as a fallback can.
    let other = Store::connect(
        &database.url,
        &PoolSettings::default(),
        SecretBox::new("another-secret-key", &[]),
    )
    .await
    .unwrap();
    assert!(matches!(
        account_repo::secrets(&other, created.id).await,
        Err(StoreError::Secret(_))
    ));
    let rotated = Store::connect(
        &database.url,
        &PoolSettings::default(),
        SecretBox::new("another-secret-key", &[crate::support::SECRET_KEY.to_owned()]),
    )
    .await
    .unwrap();
    assert_eq!(
        account_repo::secrets(&rotated, created.id).await.unwrap().session,
        Some(Sensitive(SESSION.into()))
    );

    if database.backend == TestBackend::Sqlite {
        store.close().await.unwrap();
        other.close().await.unwrap();
        rotated.close().await.unwrap();
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(database.dir.path()).unwrap() {
            bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
        }
        assert!(bytes.len() > 4096, "the database files were read");
        for secret in [BOT_TOKEN, API_HASH, SESSION, WEBHOOK_SECRET] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} found in the SQLite files"
            );
        }
        assert!(
            bytes.windows(12).any(|w| w == b"+79990001122"),
            "non-secret columns are readable, so the scan works"
        );
    }
}

on_every_backend!(bots_are_found_by_token_through_the_keyed_hash);

async fn bots_are_found_by_token_through_the_keyed_hash(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let bot = crate::support::bot_account(&store, "Shop bot", Some(BOT_TOKEN)).await;
    let found = account_repo::find_bot_by_token(&store, BOT_TOKEN)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, bot.id);
    assert!(
        account_repo::find_bot_by_token(&store, "7412589630:wrong")
            .await
            .unwrap()
            .is_none()
    );
    let row = accounts::Entity::find_by_id(found.id.0)
        .one(store.db())
        .await
        .unwrap()
        .unwrap();
    assert!(row.bot_token_lookup.is_some());
    assert_ne!(row.bot_token_lookup.as_deref(), Some(BOT_TOKEN));
}

//! Opening a migrated store on a test database.

use crm_core::secrets::SecretBox;
use crm_store::Store;
use crm_store::connect::PoolSettings;
use crm_testkit::TestDatabase;

pub const SECRET_KEY: &str = "store-test-secret-key";

pub async fn migrated_store(database: &TestDatabase) -> Store {
    let store = Store::connect(
        &database.url,
        &PoolSettings::default(),
        SecretBox::new(SECRET_KEY, &[]),
    )
    .await
    .expect("connect");
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

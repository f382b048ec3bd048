//! The store of a test database as the test apps open it: the `SECRET_KEY` every test app runs with, and
//! [`OpenStore::store`] for assertions beside running instances. Kept apart from `app` so that both the app
//! helpers and tests that only need a store use the same key without importing each other.

use std::future::Future;

use crm_testkit_db::TestDatabase;

/// `SECRET_KEY` of test apps.
pub const SECRET_KEY: &str = "test-secret-key-that-is-long-enough";

/// Opens a [`crm_store::Store`] on a [`TestDatabase`].
pub trait OpenStore {
    /// A store of its own on this database, with the test apps' [`SECRET_KEY`] (for assertions beside running
    /// instances).
    fn store(&self) -> impl Future<Output = crm_store::Store> + Send;
}

impl OpenStore for TestDatabase {
    async fn store(&self) -> crm_store::Store {
        crm_store::Store::connect(
            &self.url,
            &crm_store::connect::PoolSettings::default(),
            crm_core::secrets::SecretBox::new(SECRET_KEY, &[]),
        )
        .await
        .expect("the test database opens")
    }
}

//! Test-only helpers: a fresh database per test on SQLite, MySQL/MariaDB and PostgreSQL, the whole app spawned
//! on port 0, an HTTP client for it, scripted stand-ins for the Bot API and for Telegram's MTProto side, and a TCP
//! proxy that can cut a connection to simulate an outage.

// Test-only crate: failing loudly on a broken fixture is the point, so `expect` is allowed here.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod app;
pub mod corpus;
pub mod database;
pub mod fake_bot_api;
pub mod fake_telegram;
pub mod fixtures;
pub mod mtproto;
pub mod process;
pub mod proxy;

pub use app::{IsolatedApp, TestApp, spawn_app};
pub use database::{TestBackend, TestDatabase};
pub use fake_bot_api::{FakeBotApi, Fault};
pub use fake_telegram::{FakeTelegram, FakeUser, SendFault};
pub use proxy::FaultProxy;

/// Declares one `#[tokio::test]` per backend for each story: `story(TestDatabase)` runs as `story::sqlite`,
/// `story::mysql` and `story::postgres`. A server backend whose URL variable is unset is skipped with a note;
/// with the variable set, an unreachable server fails the test.
#[macro_export]
macro_rules! on_every_backend {
    ($($story:ident),* $(,)?) => {
        $(
            mod $story {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    $crate::database::run_story($crate::TestBackend::Sqlite, super::$story).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn mysql() {
                    $crate::database::run_story($crate::TestBackend::MySql, super::$story).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    $crate::database::run_story($crate::TestBackend::Postgres, super::$story).await;
                }
            }
        )*
    };
}

/// Polls `check` every 50 ms until it gives `Some`, and returns that; fails the test after 30 s, naming `what`.
/// For state reached by background work (job runner, pollers), where there is nothing to await directly.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

//! Test-only helpers that need no part of omnichannel-crm, so that any crate may dev-depend on them without a
//! dependency cycle: a fresh database per test on SQLite, MySQL/MariaDB and PostgreSQL ([`TestDatabase`],
//! [`run_story`]), stories declared once and run on every backend ([`on_every_backend!`]), and waits on
//! background work ([`eventually`]).

// Test-only crate: failing loudly on a broken fixture is the point, so `expect` is allowed here.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod database;
pub mod wait;

pub use database::{TestBackend, TestDatabase, run_story};
pub use wait::eventually;

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
                    $crate::run_story($crate::TestBackend::Sqlite, super::$story).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn mysql() {
                    $crate::run_story($crate::TestBackend::MySql, super::$story).await;
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    $crate::run_story($crate::TestBackend::Postgres, super::$story).await;
                }
            }
        )*
    };
}

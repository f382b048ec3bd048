//! Test-only helpers that need no part of omnichannel-crm, so that any crate may dev-depend on them without a
//! dependency cycle: a fresh database per test on SQLite, MySQL/MariaDB and PostgreSQL ([`TestDatabase`],
//! [`run_story`]), stories declared once and run on every backend ([`on_every_backend!`], [`on_backends!`]),
//! tests marked as needing an optional service ([`needs!`]), and waits on background work ([`eventually`]).
//!
//! A story that cannot run because a service is not configured is reported as **ignored** with the variable to
//! set, never as passed: the build script sets one `cfg` per configured variable, and the macros, expanded with
//! this crate's `cfg`s, add `#[ignore = "…"]` to the tests whose service is missing. Under `CI=true` a missing
//! variable fails the build of the tests instead.

// Test-only crate: failing loudly on a broken fixture is the point, so `expect` is allowed here.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod database;
pub mod requirement;
pub mod wait;

pub use database::{TestBackend, TestDatabase, run_story};
pub use requirement::{Requirement, is_ci};
pub use wait::{eventually, eventually_within};

/// Declares one `#[tokio::test]` per backend for each story: `story(TestDatabase)` runs as `story::sqlite`,
/// `story::mysql` and `story::postgres`. The server variants are ignored (with the variable to set) unless
/// `CRM_TEST_MYSQL_URL` / `CRM_TEST_POSTGRES_URL` were set when the tests were built; with a variable set, an
/// unreachable server fails the test.
#[macro_export]
macro_rules! on_every_backend {
    ($($story:ident),* $(,)?) => {
        $crate::on_backends!([sqlite, mysql, postgres]: $($story),*);
    };
}

/// Like [`on_every_backend!`] for some backends only, optionally with services every variant needs:
/// `on_backends!([sqlite, mysql]: story_a, story_b)` declares `story_a::sqlite`, `story_a::mysql`, …;
/// `on_backends!([mysql] with [redis_server]: story)` declares `story::mysql`, ignored unless both MySQL and
/// a Redis server are configured. Backends: `sqlite`, `mysql`, `postgres`; services: see [`needs!`].
#[macro_export]
macro_rules! on_backends {
    ($backends:tt with $needs:tt : $($story:ident),* $(,)?) => {
        $(
            mod $story {
                $crate::__backend_tests!($backends $needs $story);
            }
        )*
    };
    ($backends:tt : $($story:ident),* $(,)?) => {
        $(
            mod $story {
                $crate::__backend_tests!($backends [] $story);
            }
        )*
    };
}

/// One test per backend of one story (the expansion of [`on_backends!`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __backend_tests {
    ([] $needs:tt $story:ident) => {};
    ([sqlite $(, $rest:ident)*] [$($need:ident),*] $story:ident) => {
        $crate::needs! {
            [$($need),*]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                $crate::run_story($crate::TestBackend::Sqlite, super::$story).await;
            }
        }
        $crate::__backend_tests!([$($rest),*] [$($need),*] $story);
    };
    ([mysql $(, $rest:ident)*] [$($need:ident),*] $story:ident) => {
        $crate::needs! {
            [mysql $(, $need)*]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn mysql() {
                $crate::run_story($crate::TestBackend::MySql, super::$story).await;
            }
        }
        $crate::__backend_tests!([$($rest),*] [$($need),*] $story);
    };
    ([postgres $(, $rest:ident)*] [$($need:ident),*] $story:ident) => {
        $crate::needs! {
            [postgres $(, $need)*]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                $crate::run_story($crate::TestBackend::Postgres, super::$story).await;
            }
        }
        $crate::__backend_tests!([$($rest),*] [$($need),*] $story);
    };
}

/// Marks the tests inside as needing optional services: `needs! { [mysql, redis_server] #[tokio::test] async
/// fn story() { … } }`. Each test is ignored, with the variable to set as the reason, unless every listed
/// service was configured when the tests were built: `mysql` (`CRM_TEST_MYSQL_URL`), `postgres`
/// (`CRM_TEST_POSTGRES_URL`), `redis_server` (`CRM_TEST_REDIS_SERVER`). The test itself should still ask for
/// what it uses through [`Requirement::require`] (or [`run_story`]), so that running it with `--ignored`
/// without the service fails instead of passing.
#[macro_export]
macro_rules! needs {
    ([] $($item:item)*) => { $($item)* };
    ([mysql $(, $rest:ident)*] $($item:item)*) => {
        $crate::__needs_mysql! { [$($rest),*] $($item)* }
    };
    ([postgres $(, $rest:ident)*] $($item:item)*) => {
        $crate::__needs_postgres! { [$($rest),*] $($item)* }
    };
    ([redis_server $(, $rest:ident)*] $($item:item)*) => {
        $crate::__needs_redis_server! { [$($rest),*] $($item)* }
    };
}

/// `needs!` with MySQL/MariaDB configured: the remaining needs decide.
#[cfg(crm_test_mysql)]
#[doc(hidden)]
#[macro_export]
macro_rules! __needs_mysql {
    ([$($rest:ident),*] $($item:item)*) => { $crate::needs! { [$($rest),*] $($item)* } };
}

/// `needs!` without MySQL/MariaDB: ignored, saying what to set.
#[cfg(not(crm_test_mysql))]
#[doc(hidden)]
#[macro_export]
macro_rules! __needs_mysql {
    ([$($rest:ident),*] $($item:item)*) => {
        $(
            #[ignore = "set CRM_TEST_MYSQL_URL to run this story on MySQL/MariaDB"]
            $item
        )*
    };
}

/// `needs!` with PostgreSQL configured: the remaining needs decide.
#[cfg(crm_test_postgres)]
#[doc(hidden)]
#[macro_export]
macro_rules! __needs_postgres {
    ([$($rest:ident),*] $($item:item)*) => { $crate::needs! { [$($rest),*] $($item)* } };
}

/// `needs!` without PostgreSQL: ignored, saying what to set.
#[cfg(not(crm_test_postgres))]
#[doc(hidden)]
#[macro_export]
macro_rules! __needs_postgres {
    ([$($rest:ident),*] $($item:item)*) => {
        $(
            #[ignore = "set CRM_TEST_POSTGRES_URL to run this story on PostgreSQL"]
            $item
        )*
    };
}

/// `needs!` with a Redis server binary configured: the remaining needs decide.
#[cfg(crm_test_redis_server)]
#[doc(hidden)]
#[macro_export]
macro_rules! __needs_redis_server {
    ([$($rest:ident),*] $($item:item)*) => { $crate::needs! { [$($rest),*] $($item)* } };
}

/// `needs!` without a Redis server binary: ignored, saying what to set.
#[cfg(not(crm_test_redis_server))]
#[doc(hidden)]
#[macro_export]
macro_rules! __needs_redis_server {
    ([$($rest:ident),*] $($item:item)*) => {
        $(
            #[ignore = "set CRM_TEST_REDIS_SERVER (a redis-server binary) to run this story"]
            $item
        )*
    };
}

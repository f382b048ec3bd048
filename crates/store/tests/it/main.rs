//! Integration tests of the store, each run on SQLite, MySQL/MariaDB and PostgreSQL.

// Story helpers are plain async functions, not #[test] items, so the test exemption does not reach them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod events;
mod inbox;
mod jobs;
mod leases;
mod outbox;
mod schema;
mod secrets;
mod support;
mod uploads;
mod writer;

//! Story tests of the `crm` server through its HTTP API (and, for the command line, the built binary).
//! Stories that touch the database run on SQLite, MySQL/MariaDB and PostgreSQL.

// Story helpers are plain async functions, not #[test] items, so the test exemption does not reach them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod accounts;
mod auth;
mod binary;
mod chats;
mod cluster;
mod faults;
mod forwarding;
mod hardening;
mod health;
mod isolation;
mod media;
mod mtproto;
mod operators;
mod outbox;
mod parity;
mod personal;
mod polling;
mod realtime;
mod roles;
mod spine;
mod webhook;
mod ws_fuzz;

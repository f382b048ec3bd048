//! Test-only helpers that need the app: the whole `crm` server spawned on port 0 with an HTTP client for it,
//! real `crm` processes, scripted stand-ins for the Bot API and for Telegram's MTProto side, a TCP proxy that can
//! cut a connection to simulate an outage, the shared corpus of Bot API updates and stored fixtures.
//!
//! Per-test databases, the backend macros and [`eventually`] live in `crm-testkit-db` (which depends on no
//! part of the app, so library crates can use it without a dependency cycle) and are re-exported here.

// Test-only crate: failing loudly on a broken fixture is the point, so `expect` is allowed here.
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod app;
pub mod corpus;
pub mod fake_bot_api;
pub mod fake_telegram;
pub mod fixtures;
pub mod mtproto;
pub mod process;
pub mod proxy;
pub mod store;

pub use app::{IsolatedApp, TestApp, spawn_app};
pub use crm_testkit_db::{
    Requirement, TestBackend, TestDatabase, eventually, eventually_within, needs, on_backends,
    on_every_backend, requirement, run_story,
};
pub use fake_bot_api::{FakeBotApi, Fault};
pub use fake_telegram::{FakeTelegram, FakeUser, SendFault};
pub use proxy::FaultProxy;
pub use store::OpenStore;

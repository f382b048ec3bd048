//! Personal-account adapter of omnichannel-crm: crm-core's [`crm_core::personal::UserGateway`] over the
//! grammers MTProto client.
//!
//! - `session`: the grammers session of an account, kept in memory and saved through crm-core's
//!   `SessionVault`.
//! - `login`: phone-code, password and QR logins, and log-out.
//! - `pool`: a running grammers sender pool, and the one bounded path every request takes.
//! - `connection`: a live connection (updates with checkpoints; send, read, download, history).
//! - `checkpoint`, `outgoing`, `files`: the pure parts of a connection (resume positions, send requests and
//!   their outcome, file locations).
//! - `mapping`: raw MTProto updates and messages to crm-core events and their typed metadata.
//! - `errors`: grammers failures to crm-core errors.
//!
//! Callers see [`GrammersGateway`], [`GatewaySettings`] and crm-core's types. The one grammers-typed item
//! that leaves the crate is [`DbSession`] (a grammers `Session`), exported so that its persistence through the
//! vault production uses can be tested from outside the crate, on every database backend
//! (`tests/session_backends.rs`); the server only ever uses the gateway.

mod checkpoint;
mod connection;
mod errors;
mod files;
mod gateway;
mod login;
mod mapping;
mod outgoing;
mod pool;
mod session;

pub use gateway::{GatewaySettings, GrammersGateway};
pub use session::{DbSession, SessionError};

//! Domain types, rules and ports of omnichannel-crm.
//!
//! This crate does no I/O: it knows no database, web framework or Telegram library. Everything else depends on
//! it, and it depends on none of them.

pub mod account;
pub mod chat;
pub mod error;
pub mod event;
pub mod inbound;
mod macros;
pub mod media;
pub mod message;
pub mod outbound;
pub mod password;
pub mod personal;
pub mod secrets;
pub mod token;
pub mod user;

pub use error::{CoreError, CoreResult};

//! Domain types, use cases and ports of omnichannel-crm.
//!
//! This crate does no I/O: it knows no database, web framework or Telegram library. The use cases of the
//! message path ([`inbox`]) work through the ports ([`ports`], [`outbound`], [`personal`]) that the other crates
//! implement, and return the events they produced. Everything else depends on this crate, and it depends on none
//! of them.

pub mod account;
pub mod chat;
pub mod destinations;
pub mod error;
pub mod event;
pub mod ids;
pub mod inbound;
pub mod inbox;
pub mod jobs;
mod macros;
pub mod media;
pub mod message;
pub mod metadata;
pub mod outbound;
pub mod password;
pub mod personal;
pub mod ports;
pub mod secrets;
pub mod token;
pub mod user;
pub mod views;

pub use error::{CoreError, CoreResult};
pub use macros::StringEnum;

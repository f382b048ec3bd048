//! Database layer: connects by URL to SQLite, MySQL/MariaDB or PostgreSQL, applies migrations, implements the
//! core's ports (the transactional [`crm_core::ports::Database`], the [`crm_core::ports::EventLog`], the media
//! directory) and offers repositories over the schema that take and return the core's records. No entity
//! `Model` leaves this crate. Secret columns are sealed with `crm_core::secrets::SecretBox` before they reach
//! any query.

pub mod connect;
mod db_enum;
pub mod entity;
pub mod error;
pub mod event_log;
pub mod files;
pub mod migration;
pub mod page;
mod ports;
mod records;
pub mod repo;
mod tx;
mod writer;

pub use connect::{Backend, Store};
pub use db_enum::Db;
pub use error::{StoreError, StoreResult};
pub use page::Page;

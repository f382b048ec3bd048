//! Database layer: connects by URL to SQLite, MySQL/MariaDB or PostgreSQL, applies migrations, and offers
//! repositories over the schema. Secret columns are sealed with `crm_core::secrets::SecretBox` before they
//! reach any query.

pub mod connect;
pub mod entity;
pub mod error;
pub mod files;
pub mod migration;
pub mod page;
pub mod repo;

pub use connect::{Backend, Store};
pub use error::{StoreError, StoreResult};
pub use page::Page;

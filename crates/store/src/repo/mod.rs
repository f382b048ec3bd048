//! Repositories: one module per aggregate, each a set of functions over [`crate::Store`] that take and return
//! the core's records and views. The message path's writes are not here: they are the core's use cases, run
//! through [`crate::tx::SqlTx`].

pub mod accounts;
pub mod audit;
pub mod chats;
pub mod jobs;
pub mod leases;
pub mod media;
pub mod messages;
pub mod personal;
pub mod stats;
pub mod tokens;
pub mod users;

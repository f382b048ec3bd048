//! Repositories: one module per aggregate, each a set of functions over [`crate::Store`].

pub mod accounts;
pub mod assignments;
pub mod audit;
pub mod chats;
pub mod events;
pub mod forwarding;
pub mod inbox;
pub mod jobs;
pub mod leases;
pub mod media;
pub mod messages;
pub mod outbox;
pub mod personal;
pub mod stats;
pub mod tokens;
pub mod users;

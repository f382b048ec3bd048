//! SeaORM entities: one module per table, matching the migrations column for column.

pub mod accounts;
pub mod api_tokens;
pub mod audit_log;
pub mod chat_assignments;
pub mod chats;
pub mod event_sequence;
pub mod events;
pub mod jobs;
pub mod leases;
pub mod media_files;
pub mod messages;
pub mod users;

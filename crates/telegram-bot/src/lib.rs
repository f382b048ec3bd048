//! The Telegram Bot API adapter. Updates are read leniently from JSON (explicit nulls, legacy fields, update
//! kinds newer than this code) and mapped to channel-neutral [`crm_core::inbound::InboundEvent`]s.

pub mod client;
pub mod send;
pub mod update;
pub mod webhook;

pub use client::{BotApi, BotApiError};
pub use update::{map_update, update_id};

//! The Telegram Bot API adapter. Updates are read leniently from JSON (explicit nulls, legacy fields, update
//! kinds newer than this code) and mapped to channel-neutral [`crm_core::inbound::InboundEvent`]s.

pub mod channel;
pub mod client;
mod metadata;
pub mod send;
pub mod update;
pub mod webhook;

pub use channel::BotChannel;
pub use client::{BotApi, BotApiError};

/// Update kinds a bot's webhook or poll asks Telegram for: the ones the inbox handles.
pub const ALLOWED_UPDATES: &[&str] = &[
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "my_chat_member",
    "message_reaction",
];
pub use update::{map_update, update_id};

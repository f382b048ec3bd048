//! Conversations with one Telegram peer through one account.

use crate::string_enum;

string_enum! {
    /// The kind of Telegram chat.
    ChatType {
        /// One-to-one with a user.
        Private => "private",
        /// A basic group.
        Group => "group",
        /// A supergroup.
        Supergroup => "supergroup",
        /// A broadcast channel.
        Channel => "channel",
    }
}

//! Telegram accounts the inbox is connected to: bots and personal accounts, and their life-cycle states.

use crate::string_enum;

string_enum! {
    /// How an account talks to Telegram.
    AccountType {
        /// A personal Telegram account over MTProto.
        Personal => "personal",
        /// A bot over the Bot API.
        Bot => "bot",
    }
}

string_enum! {
    /// Where an account is in its life cycle.
    AccountStatus {
        /// Created, not connected yet.
        Inactive => "inactive",
        /// A login (code, password or QR) is in progress.
        Authenticating => "authenticating",
        /// The cloud password is needed to finish a login.
        PasswordRequired => "password_required",
        /// Connected and receiving.
        Active => "active",
        /// Lost its connection; the supervisor is reconnecting.
        Reconnecting => "reconnecting",
        /// Stopped by an admin.
        Stopped => "stopped",
        /// Failed; `last_error` says why.
        Error => "error",
    }
}

//! How grammers' failures become crm-core's: RPC error names to [`UserError`], and [`UserError`] to the
//! [`SendError`] the outbox acts on.

use std::time::Duration;

use crm_core::outbound::SendError;
use crm_core::personal::UserError;
use grammers_mtsender::{InvocationError, RpcError};

/// Errors naming a chat we cannot reach or write to.
const PEER_ERRORS: &[&str] = &[
    "PEER_ID_INVALID",
    "USER_IS_BLOCKED",
    "CHAT_WRITE_FORBIDDEN",
    "INPUT_USER_DEACTIVATED",
    "CHANNEL_PRIVATE",
    "CHANNEL_INVALID",
    "CHAT_ID_INVALID",
    "CHAT_ADMIN_REQUIRED",
    "CHAT_RESTRICTED",
    "USER_BANNED_IN_CHANNEL",
    "YOU_BLOCKED_USER",
    "USER_PRIVACY_RESTRICTED",
    "CHAT_SEND_PLAIN_FORBIDDEN",
    "CHAT_SEND_MEDIA_FORBIDDEN",
];

/// Errors meaning the session's authorisation is gone.
const REVOKED_ERRORS: &[&str] = &[
    "AUTH_KEY_UNREGISTERED",
    "AUTH_KEY_INVALID",
    "AUTH_KEY_PERM_EMPTY",
    "SESSION_REVOKED",
    "SESSION_EXPIRED",
];

/// Maps an RPC error Telegram answered.
pub fn map_rpc_error(error: &RpcError) -> UserError {
    let name = error.name.as_str();
    // Flood errors carry their wait in `value` (grammers strips the digits from the name).
    if let Some(seconds) = error.value
        && (error.code == 420 || name.ends_with("_WAIT"))
    {
        return UserError::FloodWait(Duration::from_secs(u64::from(seconds)));
    }
    match name {
        "PHONE_NUMBER_INVALID" => UserError::InvalidPhone,
        "PHONE_NUMBER_UNOCCUPIED" => UserError::PhoneUnoccupied,
        "PHONE_NUMBER_BANNED" => UserError::Banned,
        // A deactivated (deleted or banned) account cannot be logged into again: Banned says so, where
        // SessionRevoked would invite a pointless new login.
        name if name.starts_with("USER_DEACTIVATED") => UserError::Banned,
        "API_ID_INVALID" | "API_ID_PUBLISHED_FLOOD" => UserError::InvalidApiCredentials,
        "PHONE_CODE_INVALID" | "PHONE_CODE_EMPTY" => UserError::InvalidCode,
        "PHONE_CODE_EXPIRED" => UserError::CodeExpired,
        "PASSWORD_HASH_INVALID" => UserError::WrongPassword,
        "AUTH_KEY_DUPLICATED" => UserError::Duplicated,
        name if REVOKED_ERRORS.contains(&name) => UserError::SessionRevoked,
        name if PEER_ERRORS.contains(&name) => UserError::PeerUnavailable(peer_message(name)),
        _ if error.code == 401 => UserError::SessionRevoked,
        _ => UserError::Other(name.to_owned()),
    }
}

fn peer_message(name: &str) -> String {
    let reason = match name {
        "USER_IS_BLOCKED" => "the user blocked this account",
        "YOU_BLOCKED_USER" => "this account blocked the user",
        "INPUT_USER_DEACTIVATED" => "the user's account was deleted",
        "CHAT_WRITE_FORBIDDEN" | "CHAT_SEND_PLAIN_FORBIDDEN" | "CHAT_SEND_MEDIA_FORBIDDEN" => {
            "this account may not write in the chat"
        }
        "USER_PRIVACY_RESTRICTED" => "the user's privacy settings forbid it",
        _ => "the chat is unknown or not accessible",
    };
    format!("{reason} ({name})")
}

/// Maps any failure of a grammers invocation.
pub fn map_invocation_error(error: &InvocationError) -> UserError {
    match error {
        InvocationError::Rpc(rpc) => map_rpc_error(rpc),
        InvocationError::Io(_)
        | InvocationError::Transport(_)
        | InvocationError::Dropped(_)
        | InvocationError::Deserialize(_)
        | InvocationError::Authentication(_) => UserError::Network(error.to_string()),
        InvocationError::Session(inner) => UserError::Other(format!("session: {inner}")),
        InvocationError::InvalidDc => UserError::Other("unknown data centre".to_owned()),
    }
}

/// What the outbox should do after a failed send.
///
/// Flood waits are retried after the wait; network trouble, a duplicated session and a revoked session are
/// transient (the message waits, unsent, until the account is connected again after a re-login); everything
/// else (unknown or blocked chat, bad request, banned account) cannot succeed by retrying.
///
/// Network trouble includes a request that timed out or lost its connection after it may have reached
/// Telegram. That is still transient, never [`SendError::Ambiguous`]: every attempt of a message carries the
/// same `random_id`, which Telegram deduplicates, so a retry cannot post the message twice.
pub fn to_send_error(error: UserError) -> SendError {
    match error {
        UserError::FloodWait(wait) => SendError::RetryAfter(wait, error.to_string()),
        UserError::Network(_) | UserError::SessionRevoked | UserError::Duplicated => {
            SendError::Transient(error.to_string())
        }
        _ => SendError::Permanent(error.to_string()),
    }
}

/// Grammers wraps Telegram's answer to a failed upload in an I/O error; unwrap it to keep its meaning.
pub fn upload_error(error: &std::io::Error) -> UserError {
    match error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<InvocationError>())
    {
        Some(invocation) => map_invocation_error(invocation),
        None => UserError::Network(format!("upload failed: {error}")),
    }
}

/// Like [`to_send_error`] for an invocation error, keeping Telegram's own server trouble (5xx, -503
/// timeouts) transient.
pub fn invocation_to_send_error(error: &InvocationError) -> SendError {
    if let InvocationError::Rpc(rpc) = error
        && (rpc.code >= 500 || rpc.code < 0)
    {
        return SendError::Transient(format!("Telegram answered {}: {}", rpc.code, rpc.name));
    }
    to_send_error(map_invocation_error(error))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use grammers_tl_types as tl;

    fn rpc(code: i32, message: &str) -> RpcError {
        RpcError::from(tl::types::RpcError {
            error_code: code,
            error_message: message.to_owned(),
        })
    }

    fn user(code: i32, message: &str) -> UserError {
        map_invocation_error(&InvocationError::Rpc(rpc(code, message)))
    }

    #[test]
    fn login_errors_map_to_their_kinds() {
        assert_eq!(user(400, "PHONE_NUMBER_INVALID"), UserError::InvalidPhone);
        assert_eq!(user(400, "PHONE_NUMBER_UNOCCUPIED"), UserError::PhoneUnoccupied);
        assert_eq!(user(400, "PHONE_NUMBER_BANNED"), UserError::Banned);
        assert_eq!(user(401, "USER_DEACTIVATED_BAN"), UserError::Banned);
        assert_eq!(user(401, "USER_DEACTIVATED"), UserError::Banned);
        assert_eq!(user(400, "API_ID_INVALID"), UserError::InvalidApiCredentials);
        assert_eq!(
            user(400, "API_ID_PUBLISHED_FLOOD"),
            UserError::InvalidApiCredentials
        );
        assert_eq!(user(400, "PHONE_CODE_INVALID"), UserError::InvalidCode);
        assert_eq!(user(400, "PHONE_CODE_EMPTY"), UserError::InvalidCode);
        assert_eq!(user(400, "PHONE_CODE_EXPIRED"), UserError::CodeExpired);
        assert_eq!(user(400, "PASSWORD_HASH_INVALID"), UserError::WrongPassword);
    }

    #[test]
    fn flood_waits_carry_their_seconds() {
        assert_eq!(
            user(420, "FLOOD_WAIT_31"),
            UserError::FloodWait(Duration::from_secs(31))
        );
        assert_eq!(
            user(420, "FLOOD_PREMIUM_WAIT_5"),
            UserError::FloodWait(Duration::from_secs(5))
        );
        assert_eq!(
            user(400, "SLOWMODE_WAIT_60"),
            UserError::FloodWait(Duration::from_secs(60))
        );
    }

    #[test]
    fn session_and_peer_errors_map() {
        for name in [
            "AUTH_KEY_UNREGISTERED",
            "SESSION_REVOKED",
            "SESSION_EXPIRED",
            "AUTH_KEY_INVALID",
            "SOMETHING_NEW",
        ] {
            assert_eq!(user(401, name), UserError::SessionRevoked, "{name}");
        }
        assert_eq!(user(406, "AUTH_KEY_DUPLICATED"), UserError::Duplicated);
        for name in [
            "PEER_ID_INVALID",
            "USER_IS_BLOCKED",
            "CHAT_WRITE_FORBIDDEN",
            "INPUT_USER_DEACTIVATED",
        ] {
            match user(400, name) {
                UserError::PeerUnavailable(message) => assert!(message.contains(name)),
                other => panic!("{name} mapped to {other:?}"),
            }
        }
        assert_eq!(
            user(400, "MESSAGE_EMPTY"),
            UserError::Other("MESSAGE_EMPTY".into())
        );
        assert!(matches!(
            map_invocation_error(&InvocationError::Dropped("gone")),
            UserError::Network(_)
        ));
        assert!(matches!(
            map_invocation_error(&InvocationError::Io(std::io::Error::other("reset"))),
            UserError::Network(_)
        ));
        let timed_out = InvocationError::from(crate::pool::timed_out(Duration::from_secs(60)));
        assert!(matches!(
            map_invocation_error(&timed_out),
            UserError::Network(reason) if reason.contains("did not answer within 60s")
        ));
    }

    #[test]
    fn upload_failures_keep_telegrams_reason() {
        let rpc = RpcError::from(tl::types::RpcError {
            error_code: 420,
            error_message: "FLOOD_WAIT_3".into(),
        });
        let wrapped = std::io::Error::other(InvocationError::Rpc(rpc));
        assert_eq!(
            upload_error(&wrapped),
            UserError::FloodWait(Duration::from_secs(3))
        );
        assert!(matches!(
            upload_error(&std::io::Error::other("reset")),
            UserError::Network(_)
        ));
    }

    #[test]
    fn send_errors_follow_what_retrying_can_do() {
        assert_eq!(
            invocation_to_send_error(&InvocationError::Rpc(rpc(420, "FLOOD_WAIT_7"))),
            SendError::RetryAfter(
                Duration::from_secs(7),
                UserError::FloodWait(Duration::from_secs(7)).to_string()
            )
        );
        assert!(matches!(
            invocation_to_send_error(&InvocationError::Rpc(rpc(500, "RPC_CALL_FAIL"))),
            SendError::Transient(_)
        ));
        assert!(matches!(
            invocation_to_send_error(&InvocationError::Rpc(rpc(-503, "Timeout"))),
            SendError::Transient(_)
        ));
        assert!(matches!(
            invocation_to_send_error(&InvocationError::Rpc(rpc(400, "USER_IS_BLOCKED"))),
            SendError::Permanent(_)
        ));
        assert!(matches!(
            invocation_to_send_error(&InvocationError::Rpc(rpc(401, "AUTH_KEY_UNREGISTERED"))),
            SendError::Transient(_)
        ));
        assert!(matches!(
            to_send_error(UserError::Network("down".into())),
            SendError::Transient(_)
        ));
        assert!(matches!(
            to_send_error(UserError::Other("MEDIA_INVALID".into())),
            SendError::Permanent(_)
        ));
    }
}

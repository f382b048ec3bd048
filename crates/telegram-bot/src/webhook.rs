//! Authenticating webhook calls: Telegram's `X-Telegram-Bot-Api-Secret-Token`, compared in constant time, and
//! the shape of the bot tokens the predecessor's clients put in the URL.

use subtle::ConstantTimeEq;

/// The header Telegram sends with the secret given to `setWebhook`.
pub const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// Whether `provided` equals `expected`, in time independent of where they differ.
pub fn secret_matches(expected: &str, provided: &str) -> bool {
    expected.len() == provided.len() && bool::from(expected.as_bytes().ct_eq(provided.as_bytes()))
}

/// Whether `token` has the shape of a bot token (`<digits>:<35+ url-safe characters>`).
pub fn looks_like_bot_token(token: &str) -> bool {
    let Some((id, secret)) = token.split_once(':') else {
        return false;
    };
    (5..=15).contains(&id.len())
        && id.bytes().all(|b| b.is_ascii_digit())
        && (30..=64).contains(&secret.len())
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_exactly() {
        assert!(secret_matches("abc", "abc"));
        assert!(!secret_matches("abc", "abd"));
        assert!(!secret_matches("abc", "abcd"));
        assert!(!secret_matches("abc", ""));
    }

    #[test]
    fn bot_token_shapes() {
        assert!(looks_like_bot_token(
            "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"
        ));
        assert!(!looks_like_bot_token("123456789"));
        assert!(!looks_like_bot_token("12a:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1"));
        assert!(!looks_like_bot_token("123456789:short"));
        assert!(!looks_like_bot_token(
            "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PAL/../x"
        ));
    }
}

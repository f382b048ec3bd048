//! Secrets at rest: authenticated encryption of bot tokens, API hashes and MTProto sessions, and keyed hashes
//! for looking a secret up without storing it in clear. All keys derive from `SECRET_KEY`.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Prefix of every sealed value, so the format can change later without guessing.
const SEALED_PREFIX: &str = "v1.";
const NONCE_LEN: usize = 24;

/// Why a sealed value could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    /// Not produced by [`SecretBox::seal`].
    #[error("sealed value has an unknown format")]
    Format,
    /// Sealed with another key, for another purpose, or altered.
    #[error("sealed value cannot be opened with the configured SECRET_KEY (was it changed?)")]
    Key,
}

/// Encrypts and decrypts secrets with keys derived from the server's `SECRET_KEY`.
///
/// Each value is sealed for a *purpose* (for example `accounts.bot_token`), which is bound as associated data:
/// a value copied into another column does not open.
#[derive(Clone)]
pub struct SecretBox {
    current: XChaCha20Poly1305,
    fallbacks: Vec<XChaCha20Poly1305>,
    lookup_key: [u8; 32],
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox([redacted])")
    }
}

fn derive(secret_key: &str, info: &[u8]) -> [u8; 32] {
    let hkdf = Hkdf::<Sha256>::new(Some(b"omnichannel-crm"), secret_key.as_bytes());
    let mut key = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so expand cannot fail.
    let _ = hkdf.expand(info, &mut key);
    key
}

fn cipher(secret_key: &str) -> XChaCha20Poly1305 {
    XChaCha20Poly1305::new(&derive(secret_key, b"secrets-at-rest v1").into())
}

impl SecretBox {
    /// Derives the keys from `SECRET_KEY`. `fallbacks` are older keys still accepted for opening, so the key
    /// can be rotated (values are re-sealed with the current key when written again).
    pub fn new(secret_key: &str, fallbacks: &[String]) -> Self {
        Self {
            current: cipher(secret_key),
            fallbacks: fallbacks.iter().map(|key| cipher(key)).collect(),
            lookup_key: derive(secret_key, b"lookup-hash v1"),
        }
    }

    /// Encrypts `plaintext` for `purpose`; the result is printable ASCII safe for any text column.
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext,
            aad: purpose.as_bytes(),
        };
        // XChaCha20Poly1305 encryption only fails for inputs beyond 256 GiB.
        let ciphertext = self
            .current
            .encrypt(XNonce::from_slice(&nonce), payload)
            .unwrap_or_default();
        let mut raw = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        raw.extend_from_slice(&nonce);
        raw.extend_from_slice(&ciphertext);
        format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw))
    }

    /// Encrypts a string secret.
    pub fn seal_str(&self, purpose: &str, plaintext: &str) -> String {
        self.seal(purpose, plaintext.as_bytes())
    }

    /// Decrypts a value sealed for `purpose` with the current or a fallback key.
    pub fn open(&self, purpose: &str, sealed: &str) -> Result<Vec<u8>, SecretError> {
        let encoded = sealed.strip_prefix(SEALED_PREFIX).ok_or(SecretError::Format)?;
        let raw = URL_SAFE_NO_PAD.decode(encoded).map_err(|_| SecretError::Format)?;
        if raw.len() < NONCE_LEN {
            return Err(SecretError::Format);
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        std::iter::once(&self.current)
            .chain(self.fallbacks.iter())
            .find_map(|key| {
                key.decrypt(
                    XNonce::from_slice(nonce),
                    Payload {
                        msg: ciphertext,
                        aad: purpose.as_bytes(),
                    },
                )
                .ok()
            })
            .ok_or(SecretError::Key)
    }

    /// Decrypts a string secret.
    pub fn open_str(&self, purpose: &str, sealed: &str) -> Result<String, SecretError> {
        String::from_utf8(self.open(purpose, sealed)?).map_err(|_| SecretError::Format)
    }

    /// A keyed hash (HMAC-SHA256, hex) of `value` for `purpose`: equal inputs give equal outputs, so a column of
    /// these can be searched and made unique, but the secret cannot be recovered from it.
    pub fn lookup_hash(&self, purpose: &str, value: &str) -> String {
        // HMAC accepts keys of any length.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.lookup_key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// A secret string that never shows itself in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive(pub String);

impl std::fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Shows only the last `visible` characters of a secret, for display (`••••abcd`).
pub fn mask_secret(secret: &str, visible: usize) -> String {
    let chars: Vec<char> = secret.chars().collect();
    if chars.len() <= visible * 2 {
        return "••••".to_owned();
    }
    let tail: String = chars[chars.len() - visible..].iter().collect();
    format!("••••{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_purpose() {
        let secrets = SecretBox::new("key one", &[]);
        let sealed = secrets.seal_str("accounts.bot_token", "123456:ABC-secret");
        assert!(!sealed.contains("ABC-secret"));
        assert_eq!(
            secrets.open_str("accounts.bot_token", &sealed).unwrap(),
            "123456:ABC-secret"
        );
        assert_eq!(
            secrets.open_str("accounts.api_hash", &sealed),
            Err(SecretError::Key)
        );
        assert_eq!(
            SecretBox::new("key two", &[]).open_str("accounts.bot_token", &sealed),
            Err(SecretError::Key)
        );
        assert_eq!(
            secrets.open_str("accounts.bot_token", "plain"),
            Err(SecretError::Format)
        );
    }

    #[test]
    fn each_seal_uses_a_fresh_nonce() {
        let secrets = SecretBox::new("k", &[]);
        assert_ne!(secrets.seal_str("p", "same"), secrets.seal_str("p", "same"));
    }

    #[test]
    fn rotated_keys_still_open_through_fallbacks() {
        let old = SecretBox::new("old key", &[]);
        let sealed = old.seal_str("p", "session bytes");
        let rotated = SecretBox::new("new key", &["old key".to_owned()]);
        assert_eq!(rotated.open_str("p", &sealed).unwrap(), "session bytes");
    }

    #[test]
    fn lookup_hashes_are_stable_keyed_and_purpose_bound() {
        let a = SecretBox::new("k", &[]);
        assert_eq!(a.lookup_hash("bot", "t"), a.lookup_hash("bot", "t"));
        assert_ne!(a.lookup_hash("bot", "t"), a.lookup_hash("other", "t"));
        assert_ne!(
            a.lookup_hash("bot", "t"),
            SecretBox::new("k2", &[]).lookup_hash("bot", "t")
        );
        assert_eq!(a.lookup_hash("bot", "t").len(), 64);
    }

    #[test]
    fn masks_and_redacts() {
        assert_eq!(mask_secret("123456:ABCDEFGH", 4), "••••EFGH");
        assert_eq!(mask_secret("short", 4), "••••");
        assert_eq!(format!("{:?}", Sensitive("pw".into())), "[redacted]");
    }
}

//! Password hashing with argon2id (PHC strings), and verification that takes as long for unknown users.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::rngs::OsRng;

use crate::{CoreError, CoreResult};

/// Hashes `password` with argon2id and a random salt. CPU-heavy: call it off the async executor.
pub fn hash_password(password: &str) -> CoreResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|_| CoreError::invalid("password cannot be hashed"))
}

/// Checks `password` against a stored PHC hash. `None` (unknown user) still spends the same work on a dummy
/// hash, so response times do not reveal which usernames exist.
pub fn verify_password(password: &str, stored_hash: Option<&str>) -> bool {
    let dummy;
    let hash_text = match stored_hash {
        Some(hash) => hash,
        None => {
            dummy = dummy_hash();
            dummy.as_str()
        }
    };
    let Ok(parsed) = PasswordHash::new(hash_text) else {
        return false;
    };
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && stored_hash.is_some()
}

fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| hash_password("dummy password for timing").unwrap_or_default())
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_only_the_right_password() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", Some(&hash)));
        assert!(!verify_password("wrong horse", Some(&hash)));
        assert!(!verify_password("correct horse", None));
        assert!(!verify_password("x", Some("not a hash")));
    }
}

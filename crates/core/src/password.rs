//! Password hashing with argon2id (PHC strings), and verification that takes as long for unknown users.

use std::cell::RefCell;

use argon2::Argon2;
use argon2::password_hash::{self, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
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
    let ok = if parsed.algorithm.as_str().starts_with("argon2") {
        verify_argon2_in_reused_memory(password, &parsed)
    } else {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    };
    ok && stored_hash.is_some()
}

thread_local! {
    /// Argon2's working memory (about 19 MiB), kept per thread and reused. Allocating and freeing it on every
    /// check left the allocator holding hundreds of MiB after a burst of logins, never returned.
    static ARGON2_MEMORY: RefCell<Vec<argon2::Block>> = const { RefCell::new(Vec::new()) };
}

/// Checks `password` against an argon2 PHC hash, computing into this thread's reused memory; the comparison
/// is constant-time.
fn verify_argon2_in_reused_memory(password: &str, hash: &PasswordHash<'_>) -> bool {
    let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else {
        return false;
    };
    let Ok(algorithm) = argon2::Algorithm::try_from(hash.algorithm) else {
        return false;
    };
    let version = match hash.version.map(argon2::Version::try_from) {
        None => argon2::Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let Ok(params) = argon2::Params::try_from(hash) else {
        return false;
    };
    let mut salt_buffer = [0_u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buffer) else {
        return false;
    };
    let blocks = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    let mut computed = vec![0_u8; expected.len()];
    let hashed = ARGON2_MEMORY.with_borrow_mut(|memory| {
        memory.resize(blocks, argon2::Block::new());
        argon2.hash_password_into_with_memory(password.as_bytes(), salt, &mut computed, &mut memory[..blocks])
    });
    hashed.is_ok() && password_hash::Output::new(&computed).is_ok_and(|output| output == expected)
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

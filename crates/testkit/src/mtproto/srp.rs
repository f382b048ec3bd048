//! The server side of Telegram's SRP-2048 cloud-password check (<https://core.telegram.org/api/srp>), with
//! the algorithm `SHA256(SHA256(...) + PBKDF2-HMAC-SHA512 ×100000 + SHA256)` and modexp over Telegram's 2048-bit
//! safe prime (generator 3). The peer keeps only the verifier `v = g^x mod p`, never the password.

use hmac::{Hmac, Mac as _};
use num_bigint::BigUint;
use sha2::{Digest as _, Sha256, Sha512};

/// Telegram's 2048-bit safe prime for SRP (public; clients check it is a safe prime).
const PRIME_HEX: &str = "c71caeb9c6b1c9048e6c522f70f13f73980d40238e3e21c14934d037563d930f48198a0aa7c14058229493d22530f4dbfa336f6e0ac925139543aed44cce7c3720fd51f69458705ac68cd4fe6b6b13abdc9746512969328454f18faf8c595f642477fe96bb2a941d5bcd1d4ac8cc49880708fa9b378e3c4f3a9060bee67cf9a4a4a695811051907e162753b56b0f6b410dba74d8a84b2a14b3144e0ef1284754fd17ed950d5965b4b9dd46582db1178d169c6bc465b0d6ff9ca3928fef5b9ae4e418fc15e83ebea0f87fa9ff5eed70050ded2849f47bf959d956850ce929851f0d8115f635b105ee2e4e15d04b2454bf6f4fadf034b10403119cd8e3b92fcc5b";
/// The generator.
pub const G: i32 = 3;

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// `SH(data, salt) = H(salt | data | salt)`.
fn salted(data: &[u8], salt: &[u8]) -> [u8; 32] {
    sha256(&[salt, data, salt])
}

/// PBKDF2-HMAC-SHA512, one 64-byte block.
fn pbkdf2_sha512(password: &[u8], salt: &[u8], rounds: u32) -> [u8; 64] {
    let mac = |data: &[&[u8]]| -> [u8; 64] {
        let mut mac = Hmac::<Sha512>::new_from_slice(password).expect("HMAC takes keys of any length");
        for part in data {
            mac.update(part);
        }
        mac.finalize().into_bytes().into()
    };
    let mut u = mac(&[salt, &1u32.to_be_bytes()]);
    let mut out = u;
    for _ in 1..rounds {
        u = mac(&[&u]);
        for (o, b) in out.iter_mut().zip(u.iter()) {
            *o ^= b;
        }
    }
    out
}

/// `PH2(password, salt1, salt2)`.
fn ph2(password: &[u8], salt1: &[u8], salt2: &[u8]) -> [u8; 32] {
    let ph1 = salted(&salted(password, salt1), salt2);
    salted(&pbkdf2_sha512(&ph1, salt1, 100_000), salt2)
}

fn pad256(value: &BigUint) -> [u8; 256] {
    let bytes = value.to_bytes_be();
    let mut out = [0u8; 256];
    let start = 256usize.saturating_sub(bytes.len());
    out[start..].copy_from_slice(&bytes[bytes.len().saturating_sub(256)..]);
    out
}

/// The prime, big-endian.
pub fn prime_bytes() -> Vec<u8> {
    prime().to_bytes_be()
}

fn prime() -> BigUint {
    BigUint::parse_bytes(PRIME_HEX.as_bytes(), 16).unwrap_or_default()
}

/// A cloud password as the server stores it.
#[derive(Debug, Clone)]
pub struct Verifier {
    /// `salt1` of the algorithm.
    pub salt1: Vec<u8>,
    /// `salt2` of the algorithm.
    pub salt2: Vec<u8>,
    v: BigUint,
}

impl Verifier {
    /// The verifier of `password` with fresh salts (slow: 100 000 PBKDF2 rounds).
    pub fn new(password: &str) -> Self {
        let salt1: Vec<u8> = (0..40).map(|_| rand::random::<u8>()).collect();
        let salt2: Vec<u8> = (0..16).map(|_| rand::random::<u8>()).collect();
        let x = BigUint::from_bytes_be(&ph2(password.as_bytes(), &salt1, &salt2));
        let v = BigUint::from(3u32).modpow(&x, &prime());
        Self { salt1, salt2, v }
    }

    /// A new challenge: the secret `b` and the public `B = k·v + g^b mod p`.
    pub fn challenge(&self) -> Challenge {
        let p = prime();
        let b = BigUint::from_bytes_be(&(0..256).map(|_| rand::random::<u8>()).collect::<Vec<_>>());
        let k = BigUint::from_bytes_be(&sha256(&[&pad256(&p), &pad256(&BigUint::from(3u32))]));
        let g_b = (k * &self.v + BigUint::from(3u32).modpow(&b, &p)) % &p;
        Challenge {
            srp_id: rand::random(),
            b,
            g_b: pad256(&g_b).to_vec(),
        }
    }

    /// Whether `(a, m1)` (the client's `A` and `M1`) prove knowledge of the password for `challenge`.
    pub fn check(&self, challenge: &Challenge, a: &[u8], m1: &[u8]) -> bool {
        let p = prime();
        let big_a = BigUint::from_bytes_be(a);
        if big_a <= BigUint::from(1u32) || big_a >= &p - 1u32 {
            return false;
        }
        let a_pad = pad256(&big_a);
        let u = BigUint::from_bytes_be(&sha256(&[&a_pad, &challenge.g_b]));
        let s = (big_a * self.v.modpow(&u, &p)).modpow(&challenge.b, &p);
        let k_a = sha256(&[&pad256(&s)]);
        let h_p = sha256(&[&pad256(&p)]);
        let h_g = sha256(&[&pad256(&BigUint::from(3u32))]);
        let xored: Vec<u8> = h_p.iter().zip(h_g.iter()).map(|(x, y)| x ^ y).collect();
        let expected = sha256(&[
            &xored,
            &sha256(&[&self.salt1]),
            &sha256(&[&self.salt2]),
            &a_pad,
            &challenge.g_b,
            &k_a,
        ]);
        expected.as_slice() == m1
    }
}

/// One `account.getPassword` challenge.
#[derive(Debug, Clone)]
pub struct Challenge {
    /// `srp_id`, echoed by the client.
    pub srp_id: i64,
    b: BigUint,
    /// `srp_B`, 256 bytes.
    pub g_b: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grammers_answer_passes_only_with_the_right_password() {
        let verifier = Verifier::new("hunter2");
        let challenge = verifier.challenge();
        let p = prime_bytes();
        assert_eq!(p.len(), 256);
        let a: Vec<u8> = (0..256).map(|i| (i * 31 + 1) as u8).collect();
        let answer = |password: &str| {
            grammers_crypto::two_factor_auth::calculate_2fa(
                &verifier.salt1,
                &verifier.salt2,
                &p,
                &G,
                challenge.g_b.clone(),
                a.clone(),
                password,
            )
        };
        let (m1, g_a) = answer("hunter2");
        assert!(verifier.check(&challenge, &g_a, &m1));
        let (m1, g_a) = answer("hunter3");
        assert!(!verifier.check(&challenge, &g_a, &m1));
    }
}

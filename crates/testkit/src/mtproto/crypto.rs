//! The server side of the MTProto 2.0 envelope: `auth_key_id (8) | msg_key (16) | AES-256-IGE(plaintext)`.
//! Keys come from SHA-256 of the auth key and `msg_key`, with `x = 0` for what the client sends and `x = 8`
//! for what the server sends; `msg_key` is the middle of SHA-256 over part of the auth key and the padded
//! plaintext, which the peer checks on every client packet.

use sha2::Digest as _;
use sha2::Sha256;

/// Offset into the auth key for client-to-server packets.
const CLIENT: usize = 0;
/// Offset into the auth key for server-to-client packets.
const SERVER: usize = 8;

/// Why a client packet was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    /// Too short, or the ciphertext is not a whole number of AES blocks.
    #[error("the packet is not an encrypted MTProto message")]
    Malformed,
    /// Encrypted with another auth key.
    #[error("unknown auth_key_id")]
    UnknownKey,
    /// `msg_key` does not match the decrypted plaintext (tampered, or the wrong key).
    #[error("msg_key mismatch")]
    MsgKey,
}

/// The auth key the peer shares with its client, with its id.
#[derive(Clone)]
pub struct ServerKey {
    data: [u8; 256],
    id: [u8; 8],
}

impl ServerKey {
    /// Wraps a 256-byte auth key; its id is the low 64 bits of its SHA-1.
    pub fn new(data: [u8; 256]) -> Self {
        let sha = sha1::Sha1::digest(data);
        let mut id = [0u8; 8];
        id.copy_from_slice(&sha[12..20]);
        Self { data, id }
    }

    /// The raw key.
    pub fn bytes(&self) -> [u8; 256] {
        self.data
    }

    /// `auth_key_id`, as it leads every encrypted packet.
    pub fn id(&self) -> [u8; 8] {
        self.id
    }

    fn msg_key(&self, x: usize, padded: &[u8]) -> [u8; 16] {
        let large = Sha256::new()
            .chain_update(&self.data[88 + x..120 + x])
            .chain_update(padded)
            .finalize();
        let mut key = [0u8; 16];
        key.copy_from_slice(&large[8..24]);
        key
    }

    fn aes_key_iv(&self, x: usize, msg_key: &[u8; 16]) -> ([u8; 32], [u8; 32]) {
        let a = Sha256::new()
            .chain_update(msg_key)
            .chain_update(&self.data[x..x + 36])
            .finalize();
        let b = Sha256::new()
            .chain_update(&self.data[40 + x..76 + x])
            .chain_update(msg_key)
            .finalize();
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&a[..8]);
        key[8..24].copy_from_slice(&b[8..24]);
        key[24..].copy_from_slice(&a[24..]);
        let mut iv = [0u8; 32];
        iv[..8].copy_from_slice(&b[..8]);
        iv[8..24].copy_from_slice(&a[8..24]);
        iv[24..].copy_from_slice(&b[24..]);
        (key, iv)
    }

    /// Decrypts a client packet, checking the key id and `msg_key`; returns the padded plaintext
    /// (`salt | session_id | message...`).
    pub fn open(&self, packet: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
        if packet.len() < 24 + 32 || !(packet.len() - 24).is_multiple_of(16) {
            return Err(EnvelopeError::Malformed);
        }
        if packet[..8] != self.id {
            return Err(EnvelopeError::UnknownKey);
        }
        let mut msg_key = [0u8; 16];
        msg_key.copy_from_slice(&packet[8..24]);
        let (key, iv) = self.aes_key_iv(CLIENT, &msg_key);
        let mut plaintext = packet[24..].to_vec();
        grammers_crypto::aes::ige_decrypt(&mut plaintext, &key, &iv);
        if self.msg_key(CLIENT, &plaintext) != msg_key {
            return Err(EnvelopeError::MsgKey);
        }
        Ok(plaintext)
    }

    /// Encrypts a server packet from its plaintext (`salt | session_id | message`), adding 12 to 1024 bytes
    /// of random padding so the length is a multiple of 16 (here 16 to 31 bytes, as grammers does).
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut padded = plaintext.to_vec();
        let padding = 16 + (16 - padded.len() % 16);
        padded.extend((0..padding).map(|_| rand::random::<u8>()));
        let msg_key = self.msg_key(SERVER, &padded);
        let (key, iv) = self.aes_key_iv(SERVER, &msg_key);
        grammers_crypto::aes::ige_encrypt(&mut padded, &key, &iv);
        let mut packet = Vec::with_capacity(24 + padded.len());
        packet.extend_from_slice(&self.id);
        packet.extend_from_slice(&msg_key);
        packet.extend_from_slice(&padded);
        packet
    }

    /// Encrypts as the client would (`x = 0`), for tests of the server side.
    #[cfg(test)]
    pub fn seal_as_client(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut padded = plaintext.to_vec();
        let padding = 16 + (16 - padded.len() % 16);
        padded.extend(std::iter::repeat_n(7u8, padding));
        let msg_key = self.msg_key(CLIENT, &padded);
        let (key, iv) = self.aes_key_iv(CLIENT, &msg_key);
        grammers_crypto::aes::ige_encrypt(&mut padded, &key, &iv);
        [self.id.as_slice(), &msg_key, &padded].concat()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use grammers_crypto::{AuthKey, DequeBuffer};

    fn key() -> [u8; 256] {
        std::array::from_fn(|i| (i * 7 + 3) as u8)
    }

    #[test]
    fn grammers_reads_what_the_peer_seals() {
        // grammers' client-side decrypt uses x = 8: what the server seals must open there.
        let server = ServerKey::new(key());
        let mut packet = server.seal(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]);
        let plain = grammers_crypto::decrypt_data_v2(&mut packet, &AuthKey::from_bytes(key())).unwrap();
        assert_eq!(
            &plain[..16],
            &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]
        );
    }

    #[test]
    fn the_peer_opens_what_grammers_encrypts_and_refuses_tampering() {
        let server = ServerKey::new(key());
        let mut buffer = DequeBuffer::with_capacity(32, 64);
        buffer.extend((0..32u8).collect::<Vec<_>>());
        grammers_crypto::encrypt_data_v2(&mut buffer, &AuthKey::from_bytes(key()));
        let packet: Vec<u8> = buffer[..].to_vec();
        let plain = server.open(&packet).unwrap();
        assert_eq!(&plain[..32], (0..32u8).collect::<Vec<_>>().as_slice());

        let mut tampered = packet.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(server.open(&tampered), Err(EnvelopeError::MsgKey));
        let other = ServerKey::new([9; 256]);
        assert_eq!(other.open(&packet), Err(EnvelopeError::UnknownKey));
        assert_eq!(server.open(&packet[..20]), Err(EnvelopeError::Malformed));
        assert_eq!(
            server.open(&server.seal_as_client(&[5; 16])).unwrap()[..16],
            [5; 16]
        );
    }
}

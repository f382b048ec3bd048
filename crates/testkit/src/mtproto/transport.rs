//! The MTProto "full" transport, which grammers' `SenderPool` speaks (no tag byte): every packet is
//! `length (4, LE, whole packet) | seq (4, LE, per direction from 0) | payload | crc32 (4, LE, of all before)`.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Largest packet accepted from a client (grammers never sends more than a 1 MiB container).
const MAX_PACKET: usize = 2 * 1024 * 1024;

/// Why a packet could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The socket failed or closed.
    #[error("socket: {0}")]
    Io(#[from] std::io::Error),
    /// The length field is impossible.
    #[error("bad packet length {0}")]
    BadLength(usize),
    /// The packet's sequence number is not the expected one.
    #[error("bad transport seq: expected {expected}, got {got}")]
    BadSeq {
        /// The next expected sequence number.
        expected: u32,
        /// What the packet carried.
        got: u32,
    },
    /// The checksum does not match.
    #[error("bad crc32")]
    BadCrc,
}

/// The reading side of a full-transport connection.
pub struct FullReader {
    socket: OwnedReadHalf,
    seq: u32,
}

impl FullReader {
    /// Reads packets from `socket`.
    pub fn new(socket: OwnedReadHalf) -> Self {
        Self { socket, seq: 0 }
    }

    /// The payload of the next packet, checking its length, sequence number and checksum.
    pub async fn read(&mut self) -> Result<Vec<u8>, TransportError> {
        let mut head = [0u8; 8];
        self.socket.read_exact(&mut head).await?;
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        if !(12..=MAX_PACKET).contains(&len) || !len.is_multiple_of(4) {
            return Err(TransportError::BadLength(len));
        }
        let seq = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let mut rest = vec![0u8; len - 8];
        self.socket.read_exact(&mut rest).await?;
        if seq != self.seq {
            return Err(TransportError::BadSeq {
                expected: self.seq,
                got: seq,
            });
        }
        let crc_at = rest.len() - 4;
        let got = u32::from_le_bytes([rest[crc_at], rest[crc_at + 1], rest[crc_at + 2], rest[crc_at + 3]]);
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&head);
        hasher.update(&rest[..crc_at]);
        if hasher.finalize() != got {
            return Err(TransportError::BadCrc);
        }
        self.seq = self.seq.wrapping_add(1);
        rest.truncate(crc_at);
        Ok(rest)
    }
}

/// The writing side of a full-transport connection.
pub struct FullWriter {
    socket: OwnedWriteHalf,
    seq: u32,
}

impl FullWriter {
    /// Writes packets to `socket`.
    pub fn new(socket: OwnedWriteHalf) -> Self {
        Self { socket, seq: 0 }
    }

    /// Frames and sends `payload` (a multiple of 4 bytes).
    pub async fn write(&mut self, payload: &[u8]) -> std::io::Result<()> {
        let packet = frame(self.seq, payload);
        self.seq = self.seq.wrapping_add(1);
        self.socket.write_all(&packet).await?;
        self.socket.flush().await
    }

    /// Sends a transport-level error (a negative length, e.g. `-404` for an unknown auth key) and closes.
    pub async fn write_status(&mut self, status: i32) -> std::io::Result<()> {
        self.socket.write_all(&(-status).to_le_bytes()).await?;
        self.socket.shutdown().await
    }
}

/// One framed packet.
pub fn frame(seq: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len() + 12).unwrap_or(u32::MAX);
    let mut packet = Vec::with_capacity(payload.len() + 12);
    packet.extend_from_slice(&len.to_le_bytes());
    packet.extend_from_slice(&seq.to_le_bytes());
    packet.extend_from_slice(payload);
    let crc = crc32fast::hash(&packet);
    packet.extend_from_slice(&crc.to_le_bytes());
    packet
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_carries_length_seq_and_crc() {
        let packet = frame(3, &[1, 2, 3, 4]);
        assert_eq!(packet.len(), 16);
        assert_eq!(&packet[0..4], &16u32.to_le_bytes());
        assert_eq!(&packet[4..8], &3u32.to_le_bytes());
        assert_eq!(&packet[12..16], &crc32fast::hash(&packet[..12]).to_le_bytes());
    }
}

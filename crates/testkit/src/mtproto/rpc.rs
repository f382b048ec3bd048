//! The messages inside the envelope: reading what a client sends (containers, `gzip_packed`, acks, pings,
//! salts, and calls wrapped in `invokeWithLayer`/`initConnection`/`invokeAfterMsg`/`invokeWithoutUpdates`),
//! and writing what the server answers (`rpc_result`, `rpc_error`, `new_session_created`, `bad_server_salt`,
//! `future_salts`, `pong`, `msgs_ack`, containers) with server message ids and sequence numbers.

use std::io::Read as _;
use std::time::{SystemTime, UNIX_EPOCH};

use grammers_tl_types::{self as tl, Cursor, Deserializable, Identifiable, Serializable};

/// `rpc_result#f35c6d01 req_msg_id:long result:Object`.
const RPC_RESULT: u32 = 0xf35c_6d01;
/// `msg_container#73f1f8dc messages:vector<%Message>`.
const MSG_CONTAINER: u32 = 0x73f1_f8dc;
/// `gzip_packed#3072cfa1 packed_data:bytes`.
const GZIP_PACKED: u32 = 0x3072_cfa1;

/// Why a client message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Shorter than its header says, or a TL value is cut.
    #[error("truncated message")]
    Truncated,
    /// A `gzip_packed` body does not inflate.
    #[error("bad gzip_packed body")]
    Gzip,
}

impl From<tl::deserialize::Error> for DecodeError {
    fn from(_: tl::deserialize::Error) -> Self {
        Self::Truncated
    }
}

/// The header of a decrypted client packet and the message in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Server salt the client used.
    pub salt: i64,
    /// The client's session id.
    pub session_id: i64,
    /// The (top-level) message.
    pub message: Message,
}

/// One MTProto message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Message id.
    pub msg_id: i64,
    /// Sequence number (odd for content-related messages).
    pub seq_no: i32,
    /// TL-serialized body.
    pub body: Vec<u8>,
}

impl Message {
    /// The constructor id of the body.
    pub fn constructor(&self) -> Option<u32> {
        self.body
            .get(..4)
            .map(|id| u32::from_le_bytes([id[0], id[1], id[2], id[3]]))
    }

    /// Whether the client expects an acknowledgement (an odd sequence number).
    pub fn is_content_related(&self) -> bool {
        self.seq_no % 2 == 1
    }
}

/// Reads the decrypted plaintext of a client packet (`salt | session_id | msg_id | seq_no | length | body`).
pub fn parse_packet(plaintext: &[u8]) -> Result<Packet, DecodeError> {
    let mut cursor = Cursor::from_slice(plaintext);
    let salt = i64::deserialize(&mut cursor)?;
    let session_id = i64::deserialize(&mut cursor)?;
    let message = read_message(&mut cursor)?;
    Ok(Packet {
        salt,
        session_id,
        message,
    })
}

fn read_message(cursor: &mut Cursor) -> Result<Message, DecodeError> {
    let msg_id = i64::deserialize(cursor)?;
    let seq_no = i32::deserialize(cursor)?;
    let len = usize::try_from(i32::deserialize(cursor)?).map_err(|_| DecodeError::Truncated)?;
    let mut body = vec![0u8; len];
    cursor.read_exact(&mut body)?;
    Ok(Message { msg_id, seq_no, body })
}

/// The messages of `message`: the inner ones of a container, each with a `gzip_packed` body inflated.
pub fn flatten(message: Message) -> Result<Vec<Message>, DecodeError> {
    if message.constructor() != Some(MSG_CONTAINER) {
        return Ok(vec![inflate(message)?]);
    }
    let mut cursor = Cursor::from_slice(&message.body[4..]);
    let count = i32::deserialize(&mut cursor)?;
    let mut messages = Vec::new();
    for _ in 0..count {
        messages.push(inflate(read_message(&mut cursor)?)?);
    }
    Ok(messages)
}

fn inflate(mut message: Message) -> Result<Message, DecodeError> {
    while message.constructor() == Some(GZIP_PACKED) {
        let packed = Vec::<u8>::from_bytes(&message.body[4..])?;
        let mut body = Vec::new();
        flate2::read::GzDecoder::new(packed.as_slice())
            .read_to_end(&mut body)
            .map_err(|_| DecodeError::Gzip)?;
        message.body = body;
    }
    Ok(message)
}

/// The rest of a buffer, unparsed: the `query:!X` of a wrapper call.
struct Rest(Vec<u8>);

impl Deserializable for Rest {
    fn deserialize(buf: &mut Cursor) -> tl::deserialize::Result<Self> {
        let mut rest = Vec::new();
        buf.read_to_end(&mut rest)?;
        Ok(Self(rest))
    }
}

/// What the client's connection said about itself in `initConnection`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    /// API layer of `invokeWithLayer`.
    pub layer: Option<i32>,
    /// `api_id`.
    pub api_id: i32,
    /// Device model.
    pub device_model: String,
    /// App version.
    pub app_version: String,
}

/// A client message, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// `msgs_ack`.
    Ack(Vec<i64>),
    /// `ping` or `ping_delay_disconnect`.
    Ping {
        /// The id to echo in `pong`.
        ping_id: i64,
    },
    /// `get_future_salts`.
    GetFutureSalts {
        /// How many salts.
        num: i32,
    },
    /// `destroy_session`.
    DestroySession {
        /// The session to forget.
        session_id: i64,
    },
    /// An API call, its wrappers peeled.
    Call {
        /// `initConnection`, when the call came in one.
        init: Option<ClientInfo>,
        /// The bare call (constructor id first).
        query: Vec<u8>,
    },
}

/// Classifies one (flattened) client message.
pub fn classify(message: &Message) -> Result<Inbound, DecodeError> {
    let id = message.constructor().ok_or(DecodeError::Truncated)?;
    let mut cursor = Cursor::from_slice(&message.body[4..]);
    Ok(match id {
        tl::types::MsgsAck::CONSTRUCTOR_ID => {
            Inbound::Ack(tl::types::MsgsAck::deserialize(&mut cursor)?.msg_ids)
        }
        tl::functions::Ping::CONSTRUCTOR_ID => Inbound::Ping {
            ping_id: tl::functions::Ping::deserialize(&mut cursor)?.ping_id,
        },
        tl::functions::PingDelayDisconnect::CONSTRUCTOR_ID => Inbound::Ping {
            ping_id: tl::functions::PingDelayDisconnect::deserialize(&mut cursor)?.ping_id,
        },
        tl::functions::GetFutureSalts::CONSTRUCTOR_ID => Inbound::GetFutureSalts {
            num: tl::functions::GetFutureSalts::deserialize(&mut cursor)?.num,
        },
        tl::functions::DestroySession::CONSTRUCTOR_ID => Inbound::DestroySession {
            session_id: tl::functions::DestroySession::deserialize(&mut cursor)?.session_id,
        },
        _ => {
            let (init, query) = peel(message.body.clone(), None)?;
            Inbound::Call { init, query }
        }
    })
}

/// Peels the invoke wrappers off a call.
fn peel(body: Vec<u8>, mut init: Option<ClientInfo>) -> Result<(Option<ClientInfo>, Vec<u8>), DecodeError> {
    let mut body = body;
    let mut layer = None;
    loop {
        let id = Message {
            msg_id: 0,
            seq_no: 0,
            body: body.clone(),
        }
        .constructor()
        .ok_or(DecodeError::Truncated)?;
        let mut cursor = Cursor::from_slice(&body[4..]);
        body = match id {
            tl::functions::InvokeWithLayer::<()>::CONSTRUCTOR_ID => {
                let call = tl::functions::InvokeWithLayer::<Rest>::deserialize(&mut cursor)?;
                layer = Some(call.layer);
                call.query.0
            }
            tl::functions::InitConnection::<()>::CONSTRUCTOR_ID => {
                let call = tl::functions::InitConnection::<Rest>::deserialize(&mut cursor)?;
                init = Some(ClientInfo {
                    layer,
                    api_id: call.api_id,
                    device_model: call.device_model,
                    app_version: call.app_version,
                });
                call.query.0
            }
            tl::functions::InvokeAfterMsg::<()>::CONSTRUCTOR_ID => {
                tl::functions::InvokeAfterMsg::<Rest>::deserialize(&mut cursor)?
                    .query
                    .0
            }
            tl::functions::InvokeAfterMsgs::<()>::CONSTRUCTOR_ID => {
                tl::functions::InvokeAfterMsgs::<Rest>::deserialize(&mut cursor)?
                    .query
                    .0
            }
            tl::functions::InvokeWithoutUpdates::<()>::CONSTRUCTOR_ID => {
                tl::functions::InvokeWithoutUpdates::<Rest>::deserialize(&mut cursor)?
                    .query
                    .0
            }
            _ => return Ok((init, body)),
        };
    }
}

/// Server message ids and sequence numbers of one session.
#[derive(Debug, Default)]
pub struct Outbox {
    last_msg_id: i64,
    sent_content: i32,
}

impl Outbox {
    /// A time-based message id, ≡ 1 (mod 4) for answers and ≡ 3 (mod 4) for anything else, always growing.
    pub fn msg_id(&mut self, response: bool) -> i64 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let seconds = i64::try_from(now.as_secs()).unwrap_or(0);
        let fraction = i64::from(now.subsec_nanos()) << 2;
        let mut id = (seconds << 32) | (fraction & 0xffff_fffc);
        if id <= self.last_msg_id {
            id = (self.last_msg_id | 3) + 1;
        }
        id = (id & !3) | if response { 1 } else { 3 };
        self.last_msg_id = id;
        id
    }

    /// The next sequence number: `2n + 1` for a content-related message (counting it), `2n` otherwise.
    pub fn seq_no(&mut self, content_related: bool) -> i32 {
        if content_related {
            self.sent_content += 1;
            self.sent_content * 2 - 1
        } else {
            self.sent_content * 2
        }
    }

    /// A message with a fresh id and sequence number.
    pub fn message(&mut self, body: Vec<u8>, response: bool, content_related: bool) -> Message {
        Message {
            msg_id: self.msg_id(response),
            seq_no: self.seq_no(content_related),
            body,
        }
    }
}

/// `rpc_result` answering `req_msg_id` with the serialized `result`.
pub fn rpc_result(req_msg_id: i64, result: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(12 + result.len());
    RPC_RESULT.serialize(&mut body);
    req_msg_id.serialize(&mut body);
    body.extend_from_slice(result);
    body
}

/// `rpc_result` carrying `rpc_error`.
pub fn rpc_error(req_msg_id: i64, code: i32, message: &str) -> Vec<u8> {
    let error = tl::enums::RpcError::Error(tl::types::RpcError {
        error_code: code,
        error_message: message.to_owned(),
    });
    rpc_result(req_msg_id, &error.to_bytes())
}

/// `new_session_created`.
pub fn new_session_created(first_msg_id: i64, server_salt: i64) -> Vec<u8> {
    tl::enums::NewSession::Created(tl::types::NewSessionCreated {
        first_msg_id,
        unique_id: rand::random(),
        server_salt,
    })
    .to_bytes()
}

/// `bad_server_salt` (error 48) for a message sent with the wrong salt.
pub fn bad_server_salt(message: &Message, salt: i64) -> Vec<u8> {
    tl::enums::BadMsgNotification::BadServerSalt(tl::types::BadServerSalt {
        bad_msg_id: message.msg_id,
        bad_msg_seqno: message.seq_no,
        error_code: 48,
        new_server_salt: salt,
    })
    .to_bytes()
}

/// `future_salts`: `num` hours of the same salt, one per hour from now (so a client never runs short).
pub fn future_salts(req_msg_id: i64, num: i32, salt: i64) -> Vec<u8> {
    let now = i32::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs(),
    )
    .unwrap_or(i32::MAX);
    let salts = (0..num.clamp(2, 64))
        .map(|hour| tl::types::FutureSalt {
            valid_since: now.saturating_add(hour * 3600).saturating_sub(3600),
            valid_until: now.saturating_add(hour * 3600 + 3600),
            salt,
        })
        .collect();
    tl::enums::FutureSalts::Salts(tl::types::FutureSalts {
        req_msg_id,
        now,
        salts: tl::RawVec(salts),
    })
    .to_bytes()
}

/// `pong`.
pub fn pong(msg_id: i64, ping_id: i64) -> Vec<u8> {
    tl::enums::Pong::Pong(tl::types::Pong { msg_id, ping_id }).to_bytes()
}

/// `msgs_ack`.
pub fn msgs_ack(msg_ids: Vec<i64>) -> Vec<u8> {
    tl::enums::MsgsAck::Ack(tl::types::MsgsAck { msg_ids }).to_bytes()
}

/// `destroy_session_ok`.
pub fn destroy_session_ok(session_id: i64) -> Vec<u8> {
    tl::enums::DestroySessionRes::DestroySessionOk(tl::types::DestroySessionOk { session_id }).to_bytes()
}

/// The plaintext of a server packet: one message, or a container of several.
pub fn server_plaintext(
    salt: i64,
    session_id: i64,
    outbox: &mut Outbox,
    mut messages: Vec<Message>,
) -> Vec<u8> {
    let message = if messages.len() == 1 {
        messages.remove(0)
    } else {
        let mut body = Vec::new();
        MSG_CONTAINER.serialize(&mut body);
        i32::try_from(messages.len())
            .unwrap_or(i32::MAX)
            .serialize(&mut body);
        for message in &messages {
            write_message(&mut body, message);
        }
        outbox.message(body, false, false)
    };
    let mut plaintext = Vec::new();
    salt.serialize(&mut plaintext);
    session_id.serialize(&mut plaintext);
    write_message(&mut plaintext, &message);
    plaintext
}

fn write_message(buffer: &mut Vec<u8>, message: &Message) {
    message.msg_id.serialize(buffer);
    message.seq_no.serialize(buffer);
    i32::try_from(message.body.len())
        .unwrap_or(i32::MAX)
        .serialize(buffer);
    buffer.extend_from_slice(&message.body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_ids_grow_and_carry_their_kind() {
        let mut outbox = Outbox::default();
        let a = outbox.msg_id(true);
        let b = outbox.msg_id(false);
        let c = outbox.msg_id(true);
        assert!(a < b && b < c);
        assert_eq!((a % 4, b % 4, c % 4), (1, 3, 1));
        assert_eq!(
            (outbox.seq_no(true), outbox.seq_no(false), outbox.seq_no(true)),
            (1, 2, 3)
        );
    }

    #[test]
    fn wrappers_are_peeled_and_init_connection_is_read() {
        let call = tl::functions::InvokeWithLayer {
            layer: tl::LAYER,
            query: tl::functions::InitConnection {
                api_id: 7,
                device_model: "dev".into(),
                system_version: "sys".into(),
                app_version: "1".into(),
                system_lang_code: "en".into(),
                lang_pack: String::new(),
                lang_code: "en".into(),
                proxy: None,
                params: None,
                query: tl::functions::help::GetConfig {},
            },
        };
        let message = Message {
            msg_id: 4,
            seq_no: 1,
            body: call.to_bytes(),
        };
        let Inbound::Call { init, query } = classify(&message).unwrap() else {
            panic!("not a call");
        };
        assert_eq!(init.unwrap().layer, Some(tl::LAYER));
        assert_eq!(query, tl::functions::help::GetConfig {}.to_bytes());
    }

    #[test]
    fn containers_and_gzip_are_flattened() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, &tl::functions::Ping { ping_id: 9 }.to_bytes()).unwrap();
        let mut packed = Vec::new();
        GZIP_PACKED.serialize(&mut packed);
        gz.finish().unwrap().serialize(&mut packed);
        let mut outbox = Outbox::default();
        let inner = vec![
            outbox.message(packed, false, true),
            outbox.message(msgs_ack(vec![1]), false, false),
        ];
        let plain = server_plaintext(1, 2, &mut outbox, inner);
        let packet = parse_packet(&plain).unwrap();
        assert_eq!((packet.salt, packet.session_id), (1, 2));
        let flat = flatten(packet.message).unwrap();
        assert_eq!(classify(&flat[0]).unwrap(), Inbound::Ping { ping_id: 9 });
        assert_eq!(classify(&flat[1]).unwrap(), Inbound::Ack(vec![1]));
    }
}

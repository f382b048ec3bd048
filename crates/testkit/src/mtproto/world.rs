//! The scripted world behind the peer: its users and groups, the login in progress on the shared auth key,
//! each logged-in account's [`AccountState`], uploaded and pushed files, what the client sent, the faults the
//! test armed, and the dispatch of every API call the client makes to its answer.

use std::collections::{BTreeMap, HashMap};

use grammers_tl_types::{self as tl, Cursor, Deserializable, Identifiable, Serializable};

use crate::mtproto::blank::{blank_chat, blank_config, blank_dialog, blank_message, blank_user};
use crate::mtproto::srp::{self, Challenge, Verifier};
use crate::mtproto::state::{AccountState, now};

/// The data centre the peer claims to be.
pub const THIS_DC: i32 = 2;

/// An error answer: code and message, as in `rpc_error`.
pub type RpcFailure = (i32, String);

fn failure(code: i32, message: &str) -> RpcFailure {
    (code, message.to_owned())
}

fn bad_request(_: tl::deserialize::Error) -> RpcFailure {
    failure(400, "INPUT_REQUEST_INVALID")
}

/// A Telegram user of the world.
#[derive(Debug, Clone)]
pub struct UserRecord {
    /// User id.
    pub id: i64,
    /// Access hash (what the client must present).
    pub access_hash: i64,
    /// Phone number, `+` and digits.
    pub phone: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: Option<String>,
    /// Cloud password, if set.
    pub password: Option<Verifier>,
    /// Password hint.
    pub hint: Option<String>,
}

/// A file the peer can serve.
#[derive(Debug, Clone)]
pub struct StoredFile {
    /// Access hash of the photo or document.
    pub access_hash: i64,
    /// Current file reference (the client must present it).
    pub file_reference: Vec<u8>,
    /// Contents.
    pub bytes: Vec<u8>,
}

/// A message the client sent (text or media).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRecord {
    /// Account that sent it.
    pub account: i64,
    /// Dialog id (users positive, basic groups negative).
    pub peer_id: i64,
    /// The `random_id` of the request.
    pub random_id: i64,
    /// Message id the peer created.
    pub message_id: i32,
    /// Text or caption.
    pub text: String,
    /// The uploaded file, for media.
    pub media: Option<Vec<u8>>,
}

/// A `messages.readHistory` the client made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadMark {
    /// Dialog id.
    pub peer_id: i64,
    /// Highest message id read.
    pub max_id: i32,
}

/// The code of a phone login in progress.
#[derive(Debug, Clone)]
pub struct PendingCode {
    /// Phone number it was sent to.
    pub phone: String,
    /// `phone_code_hash`.
    pub hash: String,
    /// The code.
    pub code: String,
    /// How many times it was (re)sent: 0 by app, 1 by SMS, 2 by call.
    pub sends: u32,
    /// Expired by the test.
    pub expired: bool,
}

/// Faults armed by the test.
#[derive(Debug, Default, Clone)]
pub struct Faults {
    /// Connections are open but nothing is answered or pushed.
    pub stalled: bool,
    /// The next send fails with `FLOOD_WAIT_<seconds>`.
    pub flood_next_send: Option<u32>,
    /// Every call fails with `AUTH_KEY_UNREGISTERED`.
    pub revoked: bool,
    /// The next send is carried out, then the connection is cut before the answer goes out.
    pub cut_after_next_send: bool,
    /// With `cut_after_next_send`: the peer also stalls at that moment, so the client's retry gets no answer
    /// either (as if the client's machine died right after sending).
    pub stall_after_cut: bool,
    /// The next `auth.sendCode` answers `PHONE_MIGRATE_<dc>` (the number lives in another data centre).
    pub phone_migrate: Option<i32>,
    /// The next repeated `random_id` is refused with `RANDOM_ID_DUPLICATE`, as Telegram does while the first
    /// call is still being processed.
    pub duplicate_in_progress: bool,
}

/// What a QR login is at.
#[derive(Debug, Clone, Default)]
struct QrLogin {
    tokens: Vec<Vec<u8>>,
    scanned_by: Option<i64>,
}

/// The world of the peer.
#[derive(Debug, Default)]
pub struct World {
    /// Users by id.
    pub users: BTreeMap<i64, UserRecord>,
    /// Basic groups by id.
    pub chats: BTreeMap<i64, String>,
    /// The account the shared auth key is logged in as.
    pub authorized: Option<i64>,
    /// Per-account state, by user id.
    pub accounts: HashMap<i64, AccountState>,
    /// The phone code of the login in progress.
    pub code: Option<PendingCode>,
    /// The user whose cloud password the login waits for.
    password_for: Option<i64>,
    challenge: Option<Challenge>,
    qr: QrLogin,
    /// Uploaded file parts by file id, then part number.
    uploads: HashMap<i64, BTreeMap<i32, Vec<u8>>>,
    /// Files the peer serves, by photo or document id.
    pub files: HashMap<i64, StoredFile>,
    /// Messages the client sent.
    pub sent: Vec<SentRecord>,
    /// Read marks the client set.
    pub reads: Vec<ReadMark>,
    /// Armed faults.
    pub faults: Faults,
    /// Every call's constructor name, in order (for assertions and debugging).
    pub calls: Vec<String>,
    /// Set by a send armed with [`Faults::cut_after_next_send`]: the connection must close unanswered.
    pub cut_connection: bool,
}

/// The dialog id of a raw peer.
pub fn dialog_id(peer: &tl::enums::Peer) -> i64 {
    match peer {
        tl::enums::Peer::User(user) => user.user_id,
        tl::enums::Peer::Chat(chat) => -chat.chat_id,
        tl::enums::Peer::Channel(channel) => -1_000_000_000_000 - channel.channel_id,
    }
}

/// The peers a message references (sender and chat).
fn message_peers(message: &tl::enums::Message) -> Vec<tl::enums::Peer> {
    match message {
        tl::enums::Message::Message(message) => message
            .from_id
            .iter()
            .cloned()
            .chain([message.peer_id.clone()])
            .collect(),
        tl::enums::Message::Service(message) => message
            .from_id
            .iter()
            .cloned()
            .chain([message.peer_id.clone()])
            .collect(),
        tl::enums::Message::Empty(_) => Vec::new(),
    }
}

/// The peers an update references.
fn update_peers(update: &tl::enums::Update) -> Vec<tl::enums::Peer> {
    match update {
        tl::enums::Update::NewMessage(new) => message_peers(&new.message),
        tl::enums::Update::EditMessage(edit) => message_peers(&edit.message),
        tl::enums::Update::ReadHistoryOutbox(read) => vec![read.peer.clone()],
        tl::enums::Update::ReadHistoryInbox(read) => vec![read.peer.clone()],
        tl::enums::Update::PeerBlocked(blocked) => vec![blocked.peer_id.clone()],
        _ => Vec::new(),
    }
}

/// The raw peer of a dialog id (users and basic groups).
pub fn peer_of(dialog_id: i64) -> tl::enums::Peer {
    if dialog_id > 0 {
        tl::types::PeerUser { user_id: dialog_id }.into()
    } else {
        tl::types::PeerChat { chat_id: -dialog_id }.into()
    }
}

fn random_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|_| rand::random::<u8>()).collect()
}

impl World {
    /// The TL user of `record`, as seen by `viewer`.
    pub fn tl_user(record: &UserRecord, viewer: Option<i64>) -> tl::enums::User {
        let mut user = blank_user();
        user.id = record.id;
        user.is_self = viewer == Some(record.id);
        user.access_hash = Some(record.access_hash);
        user.first_name = Some(record.first_name.clone());
        user.last_name = record.last_name.clone();
        user.phone = Some(record.phone.trim_start_matches('+').to_owned());
        user.into()
    }

    /// The users and chats a client needs to read `peers` (and the account's own user), as Telegram sends
    /// along with updates and answers: only the ones referenced.
    fn peers_of(
        &self,
        peers: impl IntoIterator<Item = tl::enums::Peer>,
    ) -> (Vec<tl::enums::User>, Vec<tl::enums::Chat>) {
        let mut user_ids: std::collections::BTreeSet<i64> = self.authorized.into_iter().collect();
        let mut chat_ids = std::collections::BTreeSet::new();
        for peer in peers {
            match peer {
                tl::enums::Peer::User(user) => {
                    user_ids.insert(user.user_id);
                }
                tl::enums::Peer::Chat(chat) => {
                    chat_ids.insert(chat.chat_id);
                }
                tl::enums::Peer::Channel(_) => {}
            }
        }
        let users = user_ids
            .iter()
            .filter_map(|id| self.users.get(id))
            .map(|user| Self::tl_user(user, self.authorized))
            .collect();
        let chats = chat_ids
            .iter()
            .filter_map(|id| self.chats.get(id).map(|title| (id, title)))
            .map(|(id, title)| {
                let mut chat = blank_chat();
                chat.id = *id;
                chat.title = title.clone();
                chat.participants_count = 2;
                chat.date = now();
                chat.version = 1;
                chat.into()
            })
            .collect();
        (users, chats)
    }

    /// The account state of `user`, created on first use.
    pub fn account(&mut self, user: i64) -> &mut AccountState {
        self.accounts.entry(user).or_default()
    }

    /// An `updates` carrying `updates`, with the users and chats they reference.
    pub fn updates_of(&self, updates: Vec<tl::enums::Update>) -> tl::enums::Updates {
        let (users, chats) = self.peers_of(updates.iter().flat_map(update_peers));
        tl::types::Updates {
            updates,
            users,
            chats,
            date: now(),
            seq: 0,
        }
        .into()
    }

    /// A new message in `owner`'s account (not yet stored).
    pub fn new_message(&mut self, owner: i64, dialog: i64, from: i64, text: &str) -> tl::types::Message {
        let mut message = blank_message();
        message.id = self.account(owner).next_message_id();
        message.out = from == owner;
        message.from_id = Some(peer_of(from));
        message.peer_id = if dialog > 0 && from != owner {
            peer_of(from)
        } else {
            peer_of(dialog)
        };
        message.date = now();
        message.message = text.to_owned();
        message
    }

    /// Registers a file the peer serves; returns its id, access hash and file reference.
    pub fn store_file(&mut self, bytes: Vec<u8>) -> (i64, i64, Vec<u8>) {
        let id = rand::random::<i64>() & i64::MAX;
        let access_hash = rand::random();
        let file_reference = random_bytes(8);
        self.files.insert(
            id,
            StoredFile {
                access_hash,
                file_reference: file_reference.clone(),
                bytes,
            },
        );
        (id, access_hash, file_reference)
    }

    /// Media for stored file `id`.
    pub fn media_of(
        &self,
        id: i64,
        kind: MediaKind,
        name: &str,
        mime: &str,
    ) -> Option<tl::enums::MessageMedia> {
        let file = self.files.get(&id)?;
        let size = i64::try_from(file.bytes.len()).unwrap_or(i64::MAX);
        Some(match kind {
            MediaKind::Photo => tl::types::MessageMediaPhoto {
                spoiler: false,
                live_photo: false,
                photo: Some(
                    tl::types::Photo {
                        has_stickers: false,
                        id,
                        access_hash: file.access_hash,
                        file_reference: file.file_reference.clone(),
                        date: now(),
                        sizes: vec![
                            tl::types::PhotoSize {
                                r#type: "x".into(),
                                w: 800,
                                h: 600,
                                size: i32::try_from(size).unwrap_or(i32::MAX),
                            }
                            .into(),
                        ],
                        video_sizes: None,
                        dc_id: THIS_DC,
                    }
                    .into(),
                ),
                ttl_seconds: None,
                video: None,
            }
            .into(),
            MediaKind::Document | MediaKind::Voice => {
                let mut attributes: Vec<tl::enums::DocumentAttribute> = vec![
                    tl::types::DocumentAttributeFilename {
                        file_name: name.to_owned(),
                    }
                    .into(),
                ];
                if kind == MediaKind::Voice {
                    attributes.push(
                        tl::types::DocumentAttributeAudio {
                            voice: true,
                            duration: 3,
                            title: None,
                            performer: None,
                            waveform: None,
                        }
                        .into(),
                    );
                }
                tl::types::MessageMediaDocument {
                    nopremium: false,
                    spoiler: false,
                    video: false,
                    round: false,
                    voice: kind == MediaKind::Voice,
                    document: Some(
                        tl::types::Document {
                            id,
                            access_hash: file.access_hash,
                            file_reference: file.file_reference.clone(),
                            date: now(),
                            mime_type: mime.to_owned(),
                            size,
                            thumbs: None,
                            video_thumbs: None,
                            dc_id: THIS_DC,
                            attributes,
                        }
                        .into(),
                    ),
                    alt_documents: None,
                    video_cover: None,
                    video_timestamp: None,
                    ttl_seconds: None,
                }
                .into()
            }
        })
    }

    fn me(&self) -> Result<i64, RpcFailure> {
        self.authorized
            .ok_or_else(|| failure(401, "AUTH_KEY_UNREGISTERED"))
    }

    fn authorization(&mut self, user: i64) -> Result<Vec<u8>, RpcFailure> {
        self.authorized = Some(user);
        self.password_for = None;
        self.challenge = None;
        self.code = None;
        self.account(user);
        let record = self
            .users
            .get(&user)
            .ok_or_else(|| failure(400, "USER_ID_INVALID"))?;
        Ok(
            tl::enums::auth::Authorization::Authorization(tl::types::auth::Authorization {
                setup_password_required: false,
                otherwise_relogin_days: None,
                tmp_sessions: None,
                future_auth_token: None,
                user: Self::tl_user(record, Some(user)),
            })
            .to_bytes(),
        )
    }

    fn input_peer_id(&self, peer: &tl::enums::InputPeer) -> Result<i64, RpcFailure> {
        match peer {
            tl::enums::InputPeer::PeerSelf => self.me(),
            tl::enums::InputPeer::User(user) => match self.users.get(&user.user_id) {
                Some(record) if record.access_hash == user.access_hash => Ok(user.user_id),
                _ => Err(failure(400, "PEER_ID_INVALID")),
            },
            tl::enums::InputPeer::Chat(chat) if self.chats.contains_key(&chat.chat_id) => Ok(-chat.chat_id),
            _ => Err(failure(400, "PEER_ID_INVALID")),
        }
    }

    fn messages_answer(&self, messages: Vec<tl::enums::Message>) -> Vec<u8> {
        let (users, chats) = self.peers_of(messages.iter().flat_map(message_peers));
        tl::enums::messages::Messages::Messages(tl::types::messages::Messages {
            messages,
            topics: Vec::new(),
            chats,
            users,
        })
        .to_bytes()
    }

    fn sent_code(&self, code: &PendingCode) -> Vec<u8> {
        let length = 5;
        let (kind, next): (tl::enums::auth::SentCodeType, _) = match code.sends {
            0 => (
                tl::types::auth::SentCodeTypeApp { length }.into(),
                Some(tl::enums::auth::CodeType::Sms),
            ),
            1 => (
                tl::types::auth::SentCodeTypeSms { length }.into(),
                Some(tl::enums::auth::CodeType::Call),
            ),
            _ => (tl::types::auth::SentCodeTypeCall { length }.into(), None),
        };
        tl::enums::auth::SentCode::Code(tl::types::auth::SentCode {
            r#type: kind,
            phone_code_hash: code.hash.clone(),
            next_type: next,
            timeout: Some(60),
        })
        .to_bytes()
    }

    fn config(&self, address: std::net::SocketAddr) -> Vec<u8> {
        let mut config = blank_config();
        config.date = now();
        config.expires = now() + 3600;
        config.this_dc = THIS_DC;
        config.dc_options = (1..=5)
            .map(|id| {
                tl::types::DcOption {
                    ipv6: address.is_ipv6(),
                    media_only: false,
                    tcpo_only: false,
                    cdn: false,
                    r#static: true,
                    this_port_only: false,
                    id,
                    ip_address: address.ip().to_string(),
                    port: i32::from(address.port()),
                    secret: None,
                }
                .into()
            })
            .collect();
        config.chat_size_max = 200;
        config.megagroup_size_max = 200_000;
        config.forwarded_count_max = 100;
        config.edit_time_limit = 172_800;
        config.message_length_max = 4096;
        config.caption_length_max = 1024;
        config.webfile_dc_id = THIS_DC;
        config.me_url_prefix = "https://t.me/".into();
        tl::enums::Config::Config(config).to_bytes()
    }

    /// Answers one API call (`query` starts with its constructor id) made over the peer at `address`.
    pub fn dispatch(&mut self, query: &[u8], address: std::net::SocketAddr) -> Result<Vec<u8>, RpcFailure> {
        use tl::functions as f;
        let id = query
            .get(..4)
            .map(|id| u32::from_le_bytes([id[0], id[1], id[2], id[3]]))
            .ok_or_else(|| failure(400, "INPUT_REQUEST_INVALID"))?;
        let mut cursor = Cursor::from_slice(&query[4..]);
        macro_rules! decode {
            ($t:ty) => {
                <$t>::deserialize(&mut cursor).map_err(bad_request)?
            };
        }
        if self.faults.revoked {
            self.calls.push(format!("{id:08x} (revoked)"));
            return Err(failure(401, "AUTH_KEY_UNREGISTERED"));
        }
        let name = match id {
            f::help::GetConfig::CONSTRUCTOR_ID => "help.getConfig",
            f::help::GetNearestDc::CONSTRUCTOR_ID => "help.getNearestDc",
            f::auth::SendCode::CONSTRUCTOR_ID => "auth.sendCode",
            f::auth::ResendCode::CONSTRUCTOR_ID => "auth.resendCode",
            f::auth::SignIn::CONSTRUCTOR_ID => "auth.signIn",
            f::account::GetPassword::CONSTRUCTOR_ID => "account.getPassword",
            f::auth::CheckPassword::CONSTRUCTOR_ID => "auth.checkPassword",
            f::auth::ExportLoginToken::CONSTRUCTOR_ID => "auth.exportLoginToken",
            f::auth::LogOut::CONSTRUCTOR_ID => "auth.logOut",
            f::users::GetUsers::CONSTRUCTOR_ID => "users.getUsers",
            f::updates::GetState::CONSTRUCTOR_ID => "updates.getState",
            f::updates::GetDifference::CONSTRUCTOR_ID => "updates.getDifference",
            f::messages::SendMessage::CONSTRUCTOR_ID => "messages.sendMessage",
            f::messages::SendMedia::CONSTRUCTOR_ID => "messages.sendMedia",
            f::messages::ReadHistory::CONSTRUCTOR_ID => "messages.readHistory",
            f::messages::GetMessages::CONSTRUCTOR_ID => "messages.getMessages",
            f::messages::GetHistory::CONSTRUCTOR_ID => "messages.getHistory",
            f::messages::GetDialogs::CONSTRUCTOR_ID => "messages.getDialogs",
            f::upload::SaveFilePart::CONSTRUCTOR_ID => "upload.saveFilePart",
            f::upload::SaveBigFilePart::CONSTRUCTOR_ID => "upload.saveBigFilePart",
            f::upload::GetFile::CONSTRUCTOR_ID => "upload.getFile",
            _ => {
                self.calls.push(format!("{id:08x}"));
                return Err(failure(400, "METHOD_NOT_MODELLED"));
            }
        };
        self.calls.push(name.to_owned());
        match id {
            f::help::GetConfig::CONSTRUCTOR_ID => Ok(self.config(address)),
            f::help::GetNearestDc::CONSTRUCTOR_ID => Ok(tl::enums::NearestDc::Dc(tl::types::NearestDc {
                country: "XX".into(),
                this_dc: THIS_DC,
                nearest_dc: THIS_DC,
            })
            .to_bytes()),
            f::auth::SendCode::CONSTRUCTOR_ID => {
                let request = decode!(f::auth::SendCode);
                if let Some(dc) = self.faults.phone_migrate.take() {
                    return Err((303, format!("PHONE_MIGRATE_{dc}")));
                }
                if !request.phone_number.starts_with('+')
                    && !request.phone_number.chars().all(|c| c.is_ascii_digit())
                {
                    return Err(failure(400, "PHONE_NUMBER_INVALID"));
                }
                let code = PendingCode {
                    phone: request.phone_number,
                    hash: format!("{:016x}", rand::random::<u64>()),
                    code: format!("{:05}", rand::random::<u32>() % 100_000),
                    sends: 0,
                    expired: false,
                };
                let answer = self.sent_code(&code);
                self.code = Some(code);
                Ok(answer)
            }
            f::auth::ResendCode::CONSTRUCTOR_ID => {
                let request = decode!(f::auth::ResendCode);
                let Some(code) = self
                    .code
                    .as_mut()
                    .filter(|code| code.hash == request.phone_code_hash)
                else {
                    return Err(failure(400, "PHONE_CODE_EXPIRED"));
                };
                if code.sends >= 2 {
                    return Err(failure(400, "SEND_CODE_UNAVAILABLE"));
                }
                code.sends += 1;
                code.code = format!("{:05}", rand::random::<u32>() % 100_000);
                let code = code.clone();
                Ok(self.sent_code(&code))
            }
            f::auth::SignIn::CONSTRUCTOR_ID => {
                let request = decode!(f::auth::SignIn);
                let code = self
                    .code
                    .clone()
                    .filter(|code| code.hash == request.phone_code_hash && code.phone == request.phone_number)
                    .ok_or_else(|| failure(400, "PHONE_CODE_EXPIRED"))?;
                if code.expired {
                    return Err(failure(400, "PHONE_CODE_EXPIRED"));
                }
                if request.phone_code.as_deref() != Some(code.code.as_str()) {
                    return Err(failure(400, "PHONE_CODE_INVALID"));
                }
                let Some(user) = self.users.values().find(|user| user.phone == code.phone).cloned() else {
                    return Ok(tl::enums::auth::Authorization::SignUpRequired(
                        tl::types::auth::AuthorizationSignUpRequired {
                            terms_of_service: None,
                        },
                    )
                    .to_bytes());
                };
                if user.password.is_some() {
                    self.password_for = Some(user.id);
                    return Err(failure(401, "SESSION_PASSWORD_NEEDED"));
                }
                self.authorization(user.id)
            }
            f::account::GetPassword::CONSTRUCTOR_ID => {
                let user = self
                    .password_for
                    .or(self.authorized)
                    .and_then(|id| self.users.get(&id))
                    .cloned();
                let (verifier, hint) = match user {
                    Some(UserRecord {
                        password: Some(verifier),
                        hint,
                        ..
                    }) => (Some(verifier), hint),
                    _ => (None, None),
                };
                let challenge = verifier.as_ref().map(Verifier::challenge);
                let algo = |salt1: Vec<u8>, salt2: Vec<u8>| -> tl::enums::PasswordKdfAlgo {
                    tl::types::PasswordKdfAlgoSha256Sha256Pbkdf2Hmacsha512iter100000Sha256ModPow {
                        salt1,
                        salt2,
                        g: srp::G,
                        p: srp::prime_bytes(),
                    }
                    .into()
                };
                let answer = tl::enums::account::Password::Password(tl::types::account::Password {
                    has_recovery: false,
                    has_secure_values: false,
                    has_password: verifier.is_some(),
                    current_algo: verifier.as_ref().map(|v| algo(v.salt1.clone(), v.salt2.clone())),
                    srp_b: challenge.as_ref().map(|c| c.g_b.clone()),
                    srp_id: challenge.as_ref().map(|c| c.srp_id),
                    hint,
                    email_unconfirmed_pattern: None,
                    new_algo: algo(random_bytes(32), random_bytes(16)),
                    new_secure_algo: tl::enums::SecurePasswordKdfAlgo::Unknown,
                    secure_random: random_bytes(256),
                    pending_reset_date: None,
                    login_email_pattern: None,
                });
                self.challenge = challenge;
                Ok(answer.to_bytes())
            }
            f::auth::CheckPassword::CONSTRUCTOR_ID => {
                let request = decode!(f::auth::CheckPassword);
                let user = self
                    .password_for
                    .ok_or_else(|| failure(400, "PASSWORD_HASH_INVALID"))?;
                let tl::enums::InputCheckPasswordSrp::Srp(answer) = request.password else {
                    return Err(failure(400, "PASSWORD_HASH_INVALID"));
                };
                let challenge = self
                    .challenge
                    .take()
                    .ok_or_else(|| failure(400, "SRP_ID_INVALID"))?;
                if challenge.srp_id != answer.srp_id {
                    return Err(failure(400, "SRP_ID_INVALID"));
                }
                let verifier = self
                    .users
                    .get(&user)
                    .and_then(|user| user.password.clone())
                    .ok_or_else(|| failure(400, "PASSWORD_HASH_INVALID"))?;
                if !verifier.check(&challenge, &answer.a, &answer.m1) {
                    return Err(failure(400, "PASSWORD_HASH_INVALID"));
                }
                self.authorization(user)
            }
            f::auth::ExportLoginToken::CONSTRUCTOR_ID => {
                let _ = decode!(f::auth::ExportLoginToken);
                if let Some(user) = self.qr.scanned_by.take() {
                    self.qr = QrLogin::default();
                    if self.users.get(&user).is_some_and(|user| user.password.is_some()) {
                        self.password_for = Some(user);
                        return Err(failure(401, "SESSION_PASSWORD_NEEDED"));
                    }
                    let authorization = self.authorization(user)?;
                    let authorization =
                        tl::enums::auth::Authorization::from_bytes(&authorization).map_err(bad_request)?;
                    return Ok(
                        tl::enums::auth::LoginToken::Success(tl::types::auth::LoginTokenSuccess {
                            authorization,
                        })
                        .to_bytes(),
                    );
                }
                let token = random_bytes(16);
                self.qr.tokens.push(token.clone());
                Ok(tl::enums::auth::LoginToken::Token(tl::types::auth::LoginToken {
                    expires: now() + 30,
                    token,
                })
                .to_bytes())
            }
            f::auth::LogOut::CONSTRUCTOR_ID => {
                self.me()?;
                self.authorized = None;
                Ok(tl::enums::auth::LoggedOut::Out(tl::types::auth::LoggedOut {
                    future_auth_token: None,
                })
                .to_bytes())
            }
            f::users::GetUsers::CONSTRUCTOR_ID => {
                let request = decode!(f::users::GetUsers);
                let me = self.me()?;
                let users: Vec<tl::enums::User> = request
                    .id
                    .iter()
                    .filter_map(|input| match input {
                        tl::enums::InputUser::UserSelf => self.users.get(&me),
                        tl::enums::InputUser::User(user) => self.users.get(&user.user_id),
                        _ => None,
                    })
                    .map(|record| Self::tl_user(record, Some(me)))
                    .collect();
                Ok(users.to_bytes())
            }
            f::updates::GetState::CONSTRUCTOR_ID => {
                let me = self.me()?;
                Ok(tl::enums::updates::State::State(self.account(me).state()).to_bytes())
            }
            f::updates::GetDifference::CONSTRUCTOR_ID => {
                let request = decode!(f::updates::GetDifference);
                let me = self.me()?;
                let limit = request
                    .pts_total_limit
                    .and_then(|l| usize::try_from(l).ok())
                    .unwrap_or(100);
                let missed = self.account(me).missed_since(request.pts, limit);
                let Some(missed) = missed else {
                    let state = self.account(me).state();
                    return Ok(
                        tl::enums::updates::Difference::Empty(tl::types::updates::DifferenceEmpty {
                            date: state.date,
                            seq: state.seq,
                        })
                        .to_bytes(),
                    );
                };
                let (users, chats) = self.peers_of(
                    missed
                        .new_messages
                        .iter()
                        .flat_map(message_peers)
                        .chain(missed.other_updates.iter().flat_map(update_peers)),
                );
                let state = tl::enums::updates::State::State(missed.state);
                Ok(if missed.partial {
                    tl::enums::updates::Difference::Slice(tl::types::updates::DifferenceSlice {
                        new_messages: missed.new_messages,
                        new_encrypted_messages: Vec::new(),
                        other_updates: missed.other_updates,
                        chats,
                        users,
                        intermediate_state: state,
                    })
                } else {
                    tl::enums::updates::Difference::Difference(tl::types::updates::Difference {
                        new_messages: missed.new_messages,
                        new_encrypted_messages: Vec::new(),
                        other_updates: missed.other_updates,
                        chats,
                        users,
                        state,
                    })
                }
                .to_bytes())
            }
            f::messages::SendMessage::CONSTRUCTOR_ID => {
                let request = decode!(f::messages::SendMessage);
                self.send(request.peer, request.random_id, request.message, None)
            }
            f::messages::SendMedia::CONSTRUCTOR_ID => {
                let request = decode!(f::messages::SendMedia);
                let (file, kind, name, mime) = match &request.media {
                    tl::enums::InputMedia::UploadedPhoto(photo) => (
                        &photo.file,
                        MediaKind::Photo,
                        "photo.jpg".to_owned(),
                        "image/jpeg".to_owned(),
                    ),
                    tl::enums::InputMedia::UploadedDocument(document) => {
                        let name = document
                            .attributes
                            .iter()
                            .find_map(|attribute| match attribute {
                                tl::enums::DocumentAttribute::Filename(name) => Some(name.file_name.clone()),
                                _ => None,
                            })
                            .unwrap_or_default();
                        (
                            &document.file,
                            MediaKind::Document,
                            name,
                            document.mime_type.clone(),
                        )
                    }
                    _ => return Err(failure(400, "MEDIA_INVALID")),
                };
                let (file_id, parts) = match file {
                    tl::enums::InputFile::File(file) => (file.id, file.parts),
                    tl::enums::InputFile::Big(file) => (file.id, file.parts),
                    _ => return Err(failure(400, "MEDIA_INVALID")),
                };
                let uploaded = self.uploads.remove(&file_id).unwrap_or_default();
                if i32::try_from(uploaded.len()).unwrap_or(-1) != parts {
                    return Err(failure(400, "FILE_PARTS_INVALID"));
                }
                let bytes: Vec<u8> = uploaded.into_values().flatten().collect();
                self.send(
                    request.peer,
                    request.random_id,
                    request.message,
                    Some((bytes, kind, name, mime)),
                )
            }
            f::messages::ReadHistory::CONSTRUCTOR_ID => {
                let request = decode!(f::messages::ReadHistory);
                let me = self.me()?;
                let peer_id = self.input_peer_id(&request.peer)?;
                self.reads.push(ReadMark {
                    peer_id,
                    max_id: request.max_id,
                });
                let account = self.account(me);
                account.log_update(1, |pts, pts_count| {
                    tl::types::UpdateReadHistoryInbox {
                        folder_id: None,
                        peer: peer_of(peer_id),
                        top_msg_id: None,
                        max_id: request.max_id,
                        still_unread_count: 0,
                        pts,
                        pts_count,
                    }
                    .into()
                });
                let pts = account.pts;
                Ok(
                    tl::enums::messages::AffectedMessages::Messages(tl::types::messages::AffectedMessages {
                        pts,
                        pts_count: 1,
                    })
                    .to_bytes(),
                )
            }
            f::messages::GetMessages::CONSTRUCTOR_ID => {
                let request = decode!(f::messages::GetMessages);
                let me = self.me()?;
                let account = self.account(me);
                let messages = request
                    .id
                    .iter()
                    .filter_map(|input| match input {
                        tl::enums::InputMessage::Id(id) => {
                            account.messages.get(&id.id).cloned().map(Into::into)
                        }
                        _ => None,
                    })
                    .collect();
                Ok(self.messages_answer(messages))
            }
            f::messages::GetHistory::CONSTRUCTOR_ID => {
                let request = decode!(f::messages::GetHistory);
                let me = self.me()?;
                let peer_id = self.input_peer_id(&request.peer)?;
                let limit = usize::try_from(request.limit.clamp(1, 100)).unwrap_or(100);
                let messages = self
                    .account(me)
                    .messages
                    .values()
                    .rev()
                    .filter(|message| dialog_id(&message.peer_id) == peer_id)
                    .filter(|message| request.offset_id <= 0 || message.id < request.offset_id)
                    .take(limit)
                    .cloned()
                    .map(Into::into)
                    .collect();
                Ok(self.messages_answer(messages))
            }
            f::messages::GetDialogs::CONSTRUCTOR_ID => {
                let _ = decode!(f::messages::GetDialogs);
                let me = self.me()?;
                let account = self.account(me);
                let mut tops: BTreeMap<i64, tl::types::Message> = BTreeMap::new();
                for message in account.messages.values() {
                    tops.insert(dialog_id(&message.peer_id), message.clone());
                }
                let mut latest: Vec<tl::types::Message> = tops.into_values().collect();
                latest.sort_by_key(|message| std::cmp::Reverse(message.id));
                let dialogs = latest
                    .iter()
                    .map(|message| {
                        let mut dialog = blank_dialog();
                        dialog.peer = message.peer_id.clone();
                        dialog.top_message = message.id;
                        dialog.into()
                    })
                    .collect();
                let messages: Vec<tl::enums::Message> = latest.into_iter().map(Into::into).collect();
                let (users, chats) = self.peers_of(messages.iter().flat_map(message_peers));
                Ok(
                    tl::enums::messages::Dialogs::Dialogs(tl::types::messages::Dialogs {
                        dialogs,
                        messages,
                        chats,
                        users,
                    })
                    .to_bytes(),
                )
            }
            f::upload::SaveFilePart::CONSTRUCTOR_ID => {
                let request = decode!(f::upload::SaveFilePart);
                self.uploads
                    .entry(request.file_id)
                    .or_default()
                    .insert(request.file_part, request.bytes);
                Ok(true.to_bytes())
            }
            f::upload::SaveBigFilePart::CONSTRUCTOR_ID => {
                let request = decode!(f::upload::SaveBigFilePart);
                self.uploads
                    .entry(request.file_id)
                    .or_default()
                    .insert(request.file_part, request.bytes);
                Ok(true.to_bytes())
            }
            f::upload::GetFile::CONSTRUCTOR_ID => {
                let request = decode!(f::upload::GetFile);
                self.me()?;
                let (id, access_hash, reference) = match &request.location {
                    tl::enums::InputFileLocation::InputPhotoFileLocation(l) => {
                        (l.id, l.access_hash, &l.file_reference)
                    }
                    tl::enums::InputFileLocation::InputDocumentFileLocation(l) => {
                        (l.id, l.access_hash, &l.file_reference)
                    }
                    _ => return Err(failure(400, "LOCATION_INVALID")),
                };
                let file = self
                    .files
                    .get(&id)
                    .filter(|file| file.access_hash == access_hash)
                    .ok_or_else(|| failure(400, "LOCATION_INVALID"))?;
                if &file.file_reference != reference {
                    return Err(failure(400, "FILE_REFERENCE_EXPIRED"));
                }
                let start = usize::try_from(request.offset)
                    .unwrap_or(usize::MAX)
                    .min(file.bytes.len());
                let end = start
                    .saturating_add(usize::try_from(request.limit).unwrap_or(0))
                    .min(file.bytes.len());
                Ok(tl::enums::upload::File::File(tl::types::upload::File {
                    r#type: tl::enums::storage::FileType::FileUnknown,
                    mtime: now(),
                    bytes: file.bytes[start..end].to_vec(),
                })
                .to_bytes())
            }
            _ => Err(failure(400, "METHOD_NOT_MODELLED")),
        }
    }

    fn send(
        &mut self,
        peer: tl::enums::InputPeer,
        random_id: i64,
        text: String,
        media: Option<(Vec<u8>, MediaKind, String, String)>,
    ) -> Result<Vec<u8>, RpcFailure> {
        let me = self.me()?;
        let peer_id = self.input_peer_id(&peer)?;
        if let Some(seconds) = self.faults.flood_next_send.take() {
            return Err((420, format!("FLOOD_WAIT_{seconds}")));
        }
        if let Some(first) = self.account(me).sends.get(&(peer_id, random_id)).cloned() {
            if std::mem::take(&mut self.faults.duplicate_in_progress) {
                return Err(failure(500, "RANDOM_ID_DUPLICATE"));
            }
            return Ok(first);
        }
        let mut message = self.new_message(me, peer_id, me, &text);
        let has_media = media.is_some();
        let mut kept = None;
        if let Some((bytes, kind, name, mime)) = media {
            kept = Some(bytes.clone());
            let (id, _, _) = self.store_file(bytes);
            message.media = self.media_of(id, kind, &name, &mime);
        }
        if std::mem::take(&mut self.faults.cut_after_next_send) {
            self.cut_connection = true;
            self.faults.stalled |= std::mem::take(&mut self.faults.stall_after_cut);
        }
        let account = self.account(me);
        let update = account.add_message(message.clone());
        let pts = account.pts;
        self.sent.push(SentRecord {
            account: me,
            peer_id,
            random_id,
            message_id: message.id,
            text,
            media: kept,
        });
        let answer = if has_media {
            self.updates_of(vec![
                tl::types::UpdateMessageId {
                    id: message.id,
                    random_id,
                }
                .into(),
                update,
            ])
            .to_bytes()
        } else {
            tl::enums::Updates::UpdateShortSentMessage(tl::types::UpdateShortSentMessage {
                out: true,
                id: message.id,
                pts,
                pts_count: 1,
                date: message.date,
                media: None,
                entities: None,
                ttl_period: None,
            })
            .to_bytes()
        };
        self.account(me)
            .sends
            .insert((peer_id, random_id), answer.clone());
        Ok(answer)
    }

    /// Gives every file a new file reference (Telegram's expire after a while), in stored messages too: a
    /// client holding an old message must fetch it again to download.
    pub fn rotate_file_references(&mut self) {
        for file in self.files.values_mut() {
            file.file_reference = random_bytes(8);
        }
        let files = &self.files;
        for account in self.accounts.values_mut() {
            for message in account.messages.values_mut() {
                match &mut message.media {
                    Some(tl::enums::MessageMedia::Photo(media)) => {
                        if let Some(tl::enums::Photo::Photo(photo)) = &mut media.photo
                            && let Some(file) = files.get(&photo.id)
                        {
                            photo.file_reference = file.file_reference.clone();
                        }
                    }
                    Some(tl::enums::MessageMedia::Document(media)) => {
                        if let Some(tl::enums::Document::Document(document)) = &mut media.document
                            && let Some(file) = files.get(&document.id)
                        {
                            document.file_reference = file.file_reference.clone();
                        }
                    }
                    _ => {}
                }
            }
        }
    }

    /// Accepts the QR login as `user` (the owner scanned the code); returns the `updateLoginToken` push.
    pub fn scan_qr(&mut self, user: i64) -> Push {
        self.qr.scanned_by = Some(user);
        Push(
            tl::enums::Updates::UpdateShort(tl::types::UpdateShort {
                update: tl::enums::Update::LoginToken,
                date: now(),
            })
            .to_bytes(),
        )
    }

    /// Whether a QR token was exported since the last login.
    pub fn qr_token_shown(&self) -> bool {
        !self.qr.tokens.is_empty()
    }
}

/// What kind of media a pushed or sent message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// A photo.
    Photo,
    /// A document (file).
    Document,
    /// A voice note.
    Voice,
}

/// A serialized `Updates` to push to the live connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push(pub Vec<u8>);

//! A test-only MTProto server ("peer") that the real grammers client of `crm-telegram-user` talks to over TCP
//! on 127.0.0.1. It skips the key exchange (the client's session is given the peer's auth key through
//! `GatewaySettings::preshared_auth_key`, which only code can set) and speaks the rest: the full transport
//! ([`transport`]), the MTProto 2.0 envelope ([`crypto`]), the service messages ([`rpc`]), per-account update
//! state ([`state`]), SRP passwords ([`srp`]) and a scripted world answering the API calls the adapter makes
//! ([`world`]).
//!
//! Simplifications: one auth key for everything (every data centre is this peer, `this_dc = 2`); one
//! authorised account at a time on that key; `updates` are pushed with `seq = 0` (ordering by `pts` only);
//! no channels or secret chats (`qts` stays 0); answers are never gzip-packed; client `msg_id`s are not checked
//! against the clock (no `bad_msg_notification` 16/17); a second connection on the key while another session
//! is live is refused with `AUTH_KEY_DUPLICATED` (stricter than Telegram, which allows parallel connections
//! and refuses only the same key used from two places), so tests can assert the adapter never does it.

pub mod blank;
pub mod crypto;
pub mod rpc;
pub mod srp;
pub mod state;
pub mod transport;
pub mod world;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use grammers_tl_types::{self as tl, Serializable};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::mtproto::crypto::{EnvelopeError, ServerKey};
use crate::mtproto::rpc::{ClientInfo, Inbound, Message, Outbox};
use crate::mtproto::state::now;
use crate::mtproto::transport::{FullReader, FullWriter};
pub use crate::mtproto::world::{MediaKind, ReadMark, SentRecord};
use crate::mtproto::world::{Push, UserRecord, World};

/// How long a new connection waits for an older one with the same key to go away before it is refused as a
/// duplicate (a client that just dropped its old connection is not a duplicate).
const DUPLICATE_GRACE: Duration = Duration::from_secs(2);

/// What the test tells one live connection.
enum Command {
    Push(Vec<u8>),
    Close,
}

struct Live {
    commands: mpsc::UnboundedSender<Command>,
    session_id: Option<i64>,
}

struct Shared {
    world: Mutex<World>,
    key: ServerKey,
    salt: i64,
    address: SocketAddr,
    connections: Mutex<HashMap<u64, Live>>,
    duplicates: Mutex<u32>,
    /// Service messages the peer sent (`bad_server_salt`, `new_session_created`, ...) and packets it refused.
    events: Mutex<Vec<String>>,
    /// What each `initConnection` said.
    clients: Mutex<Vec<ClientInfo>>,
}

impl Shared {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn connections(&self) -> MutexGuard<'_, HashMap<u64, Live>> {
        self.connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn event(&self, event: &str) {
        self.events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(event.to_owned());
    }

    fn push(&self, push: Push) {
        if self.world().faults.stalled {
            return;
        }
        for live in self.connections().values() {
            if live.session_id.is_some() {
                let _ = live.commands.send(Command::Push(push.0.clone()));
            }
        }
    }
}

/// Media a customer sends through the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedMedia {
    /// Photo, document or voice note.
    pub kind: MediaKind,
    /// Contents.
    pub bytes: Vec<u8>,
    /// File name (documents and voice notes).
    pub file_name: String,
    /// MIME type (documents and voice notes).
    pub mime_type: String,
    /// Caption.
    pub caption: String,
}

/// A running MTProto peer. Dropping it stops the server and closes every connection.
pub struct MtprotoPeer {
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

impl Drop for MtprotoPeer {
    fn drop(&mut self) {
        self.server.abort();
        for live in self.shared.connections().values() {
            let _ = live.commands.send(Command::Close);
        }
    }
}

impl MtprotoPeer {
    /// Starts a peer on a free port of 127.0.0.1 with a random auth key.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let key: [u8; 256] = std::array::from_fn(|_| rand::random());
        let shared = Arc::new(Shared {
            world: Mutex::new(World::default()),
            key: ServerKey::new(key),
            salt: rand::random(),
            address,
            connections: Mutex::new(HashMap::new()),
            duplicates: Mutex::new(0),
            events: Mutex::new(Vec::new()),
            clients: Mutex::new(Vec::new()),
        });
        let accepting = Arc::clone(&shared);
        let server = tokio::spawn(async move {
            let mut next_id = 0u64;
            while let Ok((stream, _)) = listener.accept().await {
                next_id += 1;
                let (tx, rx) = mpsc::unbounded_channel();
                accepting.connections().insert(
                    next_id,
                    Live {
                        commands: tx,
                        session_id: None,
                    },
                );
                tokio::spawn(serve(Arc::clone(&accepting), next_id, stream, rx));
            }
        });
        Ok(Self { shared, server })
    }

    /// Where the peer listens (give it to `GatewaySettings::dc_override`).
    pub fn address(&self) -> SocketAddr {
        self.shared.address
    }

    /// The auth key the peer shares with its client (give it to `GatewaySettings::preshared_auth_key`).
    pub fn auth_key(&self) -> [u8; 256] {
        self.shared.key.bytes()
    }

    /// Adds a user with `id`, `phone` (`+` and digits) and `first_name`, optionally with a cloud password
    /// (computing its SRP verifier takes a moment).
    pub fn add_user(&self, id: i64, phone: &str, first_name: &str, password: Option<(&str, &str)>) {
        let record = UserRecord {
            id,
            access_hash: rand::random(),
            phone: phone.to_owned(),
            first_name: first_name.to_owned(),
            last_name: None,
            password: password.map(|(password, _)| srp::Verifier::new(password)),
            hint: password.map(|(_, hint)| hint.to_owned()),
        };
        self.shared.world().users.insert(id, record);
    }

    /// Adds a basic group.
    pub fn add_group(&self, chat_id: i64, title: &str) {
        self.shared.world().chats.insert(chat_id, title.to_owned());
    }

    /// The login code last sent (or resent), if a phone login is in progress.
    pub fn login_code(&self) -> Option<String> {
        self.shared.world().code.as_ref().map(|code| code.code.clone())
    }

    /// Makes the code in flight expired (`PHONE_CODE_EXPIRED` on sign-in).
    pub fn expire_login_code(&self) {
        if let Some(code) = self.shared.world().code.as_mut() {
            code.expired = true;
        }
    }

    /// Whether a QR login token was exported.
    pub fn qr_token_shown(&self) -> bool {
        self.shared.world().qr_token_shown()
    }

    /// The owner `user` scans the QR code: pushes `updateLoginToken`; the next export answers success (or
    /// `SESSION_PASSWORD_NEEDED` for an account with a cloud password).
    pub fn scan_qr(&self, user: i64) {
        let push = self.shared.world().scan_qr(user);
        self.shared.push(push);
    }

    /// The user the shared auth key is logged in as.
    pub fn authorized(&self) -> Option<i64> {
        self.shared.world().authorized
    }

    fn deliver(&self, owner: i64, message: tl::types::Message) -> i32 {
        let id = message.id;
        let push = {
            let mut world = self.shared.world();
            let update = world.account(owner).add_message(message);
            Push(world.updates_of(vec![update]).to_bytes())
        };
        self.push_for(owner, push);
        id
    }

    fn push_for(&self, owner: i64, push: Push) {
        if self.shared.world().authorized == Some(owner) {
            self.shared.push(push);
        }
    }

    /// Customer `from` writes `text` to account `owner`; returns the message id.
    pub fn customer_writes(&self, owner: i64, from: i64, text: &str) -> i32 {
        let message = self.shared.world().new_message(owner, from, from, text);
        self.deliver(owner, message)
    }

    /// Customer `from` writes `text` to account `owner`, pushed as the short `updateShortMessage` (no user
    /// data; a client that does not know `from` must fetch the difference); returns the message id.
    pub fn customer_writes_short(&self, owner: i64, from: i64, text: &str) -> i32 {
        let (id, push) = {
            let mut world = self.shared.world();
            let message = world.new_message(owner, from, from, text);
            let account = world.account(owner);
            account.add_message(message.clone());
            let short = tl::types::UpdateShortMessage {
                out: false,
                mentioned: false,
                media_unread: false,
                silent: false,
                id: message.id,
                user_id: from,
                message: message.message.clone(),
                pts: account.pts,
                pts_count: 1,
                date: message.date,
                fwd_from: None,
                via_bot_id: None,
                reply_to: None,
                entities: None,
                ttl_period: None,
            };
            (
                message.id,
                Push(tl::enums::Updates::UpdateShortMessage(short).to_bytes()),
            )
        };
        self.push_for(owner, push);
        id
    }

    /// Customer `from` sends `media` (photo, document or voice) to account `owner`; returns the message id.
    pub fn customer_sends_media(&self, owner: i64, from: i64, media: PushedMedia) -> i32 {
        let message = {
            let mut world = self.shared.world();
            let mut message = world.new_message(owner, from, from, &media.caption);
            let (id, _, _) = world.store_file(media.bytes);
            message.media = world.media_of(id, media.kind, &media.file_name, &media.mime_type);
            message
        };
        self.deliver(owner, message)
    }

    /// The owner writes `text` to `to` from another device (an outgoing message).
    pub fn owner_writes_elsewhere(&self, owner: i64, to: i64, text: &str) -> i32 {
        let message = self.shared.world().new_message(owner, to, owner, text);
        self.deliver(owner, message)
    }

    /// `from` writes `text` in basic group `chat_id`, seen by `owner`.
    pub fn group_message(&self, owner: i64, chat_id: i64, from: i64, text: &str) -> i32 {
        let message = self.shared.world().new_message(owner, -chat_id, from, text);
        self.deliver(owner, message)
    }

    /// Edits message `id` of `owner` to `text`.
    pub fn edit(&self, owner: i64, id: i32, text: &str) {
        let push = {
            let mut world = self.shared.world();
            let account = world.account(owner);
            let Some(message) = account.messages.get_mut(&id) else {
                return;
            };
            message.message = text.to_owned();
            message.edit_date = Some(now());
            let message = message.clone();
            let update = account.log_update(1, |pts, pts_count| {
                tl::types::UpdateEditMessage {
                    message: message.into(),
                    pts,
                    pts_count,
                }
                .into()
            });
            Push(world.updates_of(vec![update]).to_bytes())
        };
        self.push_for(owner, push);
    }

    /// Deletes messages `ids` of `owner`.
    pub fn delete(&self, owner: i64, ids: &[i32]) {
        let push = {
            let mut world = self.shared.world();
            let account = world.account(owner);
            for id in ids {
                account.messages.remove(id);
            }
            let count = i32::try_from(ids.len()).unwrap_or(i32::MAX);
            let update = account.log_update(count, |pts, pts_count| {
                tl::types::UpdateDeleteMessages {
                    messages: ids.to_vec(),
                    pts,
                    pts_count,
                }
                .into()
            });
            Push(world.updates_of(vec![update]).to_bytes())
        };
        self.push_for(owner, push);
    }

    /// The owner blocks (or unblocks) user `peer` from another device: `updatePeerBlocked`.
    pub fn block(&self, owner: i64, peer: i64, blocked: bool) {
        let push = {
            let world = self.shared.world();
            let update = tl::types::UpdatePeerBlocked {
                blocked,
                blocked_my_stories_from: false,
                peer_id: world::peer_of(peer),
            }
            .into();
            Push(world.updates_of(vec![update]).to_bytes())
        };
        self.push_for(owner, push);
    }

    /// Customer `from` pins message `id` in their chat with `owner`: a service message, which the inbox ignores.
    pub fn pin(&self, owner: i64, from: i64, id: i32) -> i32 {
        let push_and_id = {
            let mut world = self.shared.world();
            let account = world.account(owner);
            let service_id = account.next_message_id();
            let service: tl::enums::Message = tl::types::MessageService {
                out: false,
                mentioned: false,
                media_unread: false,
                reactions_are_possible: false,
                silent: false,
                post: false,
                legacy: false,
                id: service_id,
                from_id: Some(world::peer_of(from)),
                peer_id: world::peer_of(from),
                saved_peer_id: None,
                reply_to: Some(
                    tl::types::MessageReplyHeader {
                        reply_to_scheduled: false,
                        forum_topic: false,
                        quote: false,
                        reply_to_ephemeral: false,
                        reply_to_msg_id: Some(id),
                        reply_to_peer_id: None,
                        reply_from: None,
                        reply_media: None,
                        reply_to_top_id: None,
                        quote_text: None,
                        quote_entities: None,
                        quote_offset: None,
                        todo_item_id: None,
                        poll_option: None,
                    }
                    .into(),
                ),
                date: now(),
                action: tl::enums::MessageAction::PinMessage,
                reactions: None,
                ttl_period: None,
            }
            .into();
            let update = account.log_update(1, |pts, pts_count| {
                tl::types::UpdateNewMessage {
                    message: service,
                    pts,
                    pts_count,
                }
                .into()
            });
            (Push(world.updates_of(vec![update]).to_bytes()), service_id)
        };
        self.push_for(owner, push_and_id.0);
        push_and_id.1
    }

    /// Customer `peer` read `owner`'s messages up to `max_id`.
    pub fn read_outbox(&self, owner: i64, peer: i64, max_id: i32) {
        let push = {
            let mut world = self.shared.world();
            let update = world.account(owner).log_update(1, |pts, pts_count| {
                tl::types::UpdateReadHistoryOutbox {
                    peer: world::peer_of(peer),
                    max_id,
                    pts,
                    pts_count,
                }
                .into()
            });
            Push(world.updates_of(vec![update]).to_bytes())
        };
        self.push_for(owner, push);
    }

    /// Closes every live connection (the client sees the socket drop).
    pub fn drop_connections(&self) {
        for live in self.shared.connections().values() {
            let _ = live.commands.send(Command::Close);
        }
    }

    /// Stalls (or un-stalls): connections stay open but nothing is answered or pushed; pushes still land in
    /// the account state, so a client recovers them by `getDifference` later.
    pub fn set_stalled(&self, stalled: bool) {
        self.shared.world().faults.stalled = stalled;
    }

    /// The next send fails with `FLOOD_WAIT_<seconds>`.
    pub fn flood_next_send(&self, seconds: u32) {
        self.shared.world().faults.flood_next_send = Some(seconds);
    }

    /// The next send creates its message, then the connection is cut before the answer is written (the
    /// client cannot know whether it went out).
    pub fn cut_after_next_send(&self) {
        self.shared.world().faults.cut_after_next_send = true;
    }

    /// The next send creates its message, then the connection is cut and the peer stalls (see
    /// [`MtprotoPeer::set_stalled`]): no answer reaches the client, however it retries. For killing the client
    /// between a send and its acknowledgement.
    pub fn swallow_next_send_answer(&self) {
        let mut world = self.shared.world();
        world.faults.cut_after_next_send = true;
        world.faults.stall_after_cut = true;
    }

    /// The next repeated `random_id` is refused with `RANDOM_ID_DUPLICATE` (Telegram's answer while the first
    /// call is still in progress); later repeats get the first answer again.
    pub fn duplicate_in_progress_on_next_repeat(&self) {
        self.shared.world().faults.duplicate_in_progress = true;
    }

    /// The next `auth.sendCode` answers `PHONE_MIGRATE_<dc>`; every data centre is this peer, so the client
    /// comes back on a new connection for "data centre `dc`".
    pub fn migrate_phone_to(&self, dc: i32) {
        self.shared.world().faults.phone_migrate = Some(dc);
    }

    /// Gives every file a new file reference; downloads with an old one fail with `FILE_REFERENCE_EXPIRED`.
    pub fn rotate_file_references(&self) {
        self.shared.world().rotate_file_references();
    }

    /// Revokes the session: every call fails with `AUTH_KEY_UNREGISTERED`.
    pub fn revoke_session(&self) {
        let mut world = self.shared.world();
        world.faults.revoked = true;
        world.authorized = None;
    }

    /// Messages the client sent, in order.
    pub fn sent(&self) -> Vec<SentRecord> {
        self.shared.world().sent.clone()
    }

    /// Read marks the client set, in order.
    pub fn reads(&self) -> Vec<ReadMark> {
        self.shared.world().reads.clone()
    }

    /// Every API call the client made, by TL name (hex constructor id for calls the peer does not model).
    pub fn calls(&self) -> Vec<String> {
        self.shared.world().calls.clone()
    }

    /// How many connections were refused with `AUTH_KEY_DUPLICATED` (a second live connection on the key).
    pub fn duplicate_connections(&self) -> u32 {
        *self
            .shared
            .duplicates
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The service messages the peer sent (`bad_server_salt`, `new_session_created`, `future_salts`, `pong`,
    /// `destroy_session_ok`, `AUTH_KEY_DUPLICATED`) and the packets it refused (`refused: <why>`), in order.
    /// A client that tried the RSA key exchange would show up here as `refused: unknown auth_key_id`. Stalls
    /// (see [`MtprotoPeer::set_stalled`]) show up too: `left unanswered while stalled` once per connection
    /// whose request went unanswered, and `closed by the client while stalled` when the client gave up on such
    /// a connection while the stall lasted.
    pub fn service_events(&self) -> Vec<String> {
        self.shared
            .events
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// What the client said in each `initConnection` (layer, `api_id`, device, app version), in order.
    pub fn init_connections(&self) -> Vec<ClientInfo> {
        self.shared
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// How many connections are open now.
    pub fn open_connections(&self) -> usize {
        self.shared.connections().len()
    }
}

/// Per-connection session state.
struct Session {
    id: i64,
    outbox: Outbox,
    announced: bool,
}

async fn serve(
    shared: Arc<Shared>,
    id: u64,
    stream: TcpStream,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let mut reader = FullReader::new(read);
    let mut writer = FullWriter::new(write);
    let mut session: Option<Session> = None;
    let mut duplicated = false;
    // Whether this connection left a request unanswered because of a stall.
    let mut stalled_on = false;
    loop {
        tokio::select! {
            packet = reader.read() => {
                let Ok(packet) = packet else {
                    if stalled_on && shared.world().faults.stalled {
                        shared.event("closed by the client while stalled");
                    }
                    break;
                };
                let plaintext = match shared.key.open(&packet) {
                    Ok(plaintext) => plaintext,
                    Err(error) => {
                        shared.event(&format!("refused: {error}"));
                        if error == EnvelopeError::UnknownKey {
                            let _ = writer.write_status(404).await;
                        }
                        break;
                    }
                };
                let Ok(parsed) = rpc::parse_packet(&plaintext) else {
                    shared.event("refused: unreadable message");
                    break;
                };
                if session.as_ref().is_none_or(|s| s.id != parsed.session_id) {
                    if session.is_none() {
                        duplicated = is_duplicate(&shared, id, parsed.session_id).await;
                        if duplicated {
                            shared.event("AUTH_KEY_DUPLICATED");
                            *shared.duplicates.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += 1;
                        }
                    }
                    if let Some(live) = shared.connections().get_mut(&id) {
                        live.session_id = Some(parsed.session_id);
                    }
                    session = Some(Session { id: parsed.session_id, outbox: Outbox::default(), announced: false });
                }
                let Some(current) = session.as_mut() else { break };
                if shared.world().faults.stalled {
                    if !stalled_on {
                        shared.event("left unanswered while stalled");
                    }
                    stalled_on = true;
                    continue;
                }
                let replies = if parsed.salt == shared.salt {
                    answer(&shared, current, parsed.message, duplicated)
                } else {
                    shared.event("bad_server_salt");
                    let body = rpc::bad_server_salt(&parsed.message, shared.salt);
                    vec![current.outbox.message(body, true, false)]
                };
                if std::mem::take(&mut shared.world().cut_connection) {
                    shared.event("cut before answering");
                    break;
                }
                if replies.is_empty() {
                    continue;
                }
                let plain = rpc::server_plaintext(shared.salt, current.id, &mut current.outbox, replies);
                if writer.write(&shared.key.seal(&plain)).await.is_err() {
                    break;
                }
            }
            command = commands.recv() => match command {
                Some(Command::Push(body)) => {
                    let Some(current) = session.as_mut() else { continue };
                    let message = current.outbox.message(body, false, true);
                    let plain = rpc::server_plaintext(shared.salt, current.id, &mut current.outbox, vec![message]);
                    if writer.write(&shared.key.seal(&plain)).await.is_err() {
                        break;
                    }
                }
                Some(Command::Close) | None => break,
            },
        }
    }
    shared.connections().remove(&id);
}

/// Whether another connection with the same key and another session stays open past the grace period.
async fn is_duplicate(shared: &Shared, id: u64, session_id: i64) -> bool {
    let deadline = tokio::time::Instant::now() + DUPLICATE_GRACE;
    loop {
        let other = shared
            .connections()
            .iter()
            .any(|(other, live)| *other != id && live.session_id.is_some_and(|s| s != session_id));
        if !other {
            return false;
        }
        if tokio::time::Instant::now() >= deadline {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The replies to one client message (a container is answered in one packet).
fn answer(shared: &Shared, session: &mut Session, message: Message, duplicated: bool) -> Vec<Message> {
    let first_msg_id = message.msg_id;
    let Ok(messages) = rpc::flatten(message) else {
        return Vec::new();
    };
    let mut replies = Vec::new();
    if !session.announced {
        session.announced = true;
        shared.event("new_session_created");
        let body = rpc::new_session_created(first_msg_id, shared.salt);
        replies.push(session.outbox.message(body, false, true));
    }
    let mut acks = Vec::new();
    for message in messages {
        if message.is_content_related() {
            acks.push(message.msg_id);
        }
        let Ok(inbound) = rpc::classify(&message) else {
            continue;
        };
        let body = match inbound {
            Inbound::Ack(_) => continue,
            Inbound::Ping { ping_id } => {
                shared.event("pong");
                rpc::pong(message.msg_id, ping_id)
            }
            Inbound::GetFutureSalts { num } => {
                shared.event("future_salts");
                rpc::future_salts(message.msg_id, num, shared.salt)
            }
            Inbound::DestroySession { session_id } => {
                shared.event("destroy_session_ok");
                rpc::destroy_session_ok(session_id)
            }
            Inbound::Call { init, query } => {
                if let Some(info) = init {
                    shared
                        .clients
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(info);
                }
                if duplicated {
                    rpc::rpc_error(message.msg_id, 406, "AUTH_KEY_DUPLICATED")
                } else {
                    match shared.world().dispatch(&query, shared.address) {
                        Ok(result) => rpc::rpc_result(message.msg_id, &result),
                        Err((code, text)) => rpc::rpc_error(message.msg_id, code, &text),
                    }
                }
            }
        };
        replies.push(session.outbox.message(body, true, true));
    }
    if !acks.is_empty() {
        replies.push(session.outbox.message(rpc::msgs_ack(acks), false, false));
    }
    replies
}

//! A scripted stand-in for Telegram behind the personal-account port ([`UserGateway`]): it plays Telegram's side of
//! the logins (codes, resend, cloud password, QR scans, `FLOOD_WAIT`, expired codes), keeps a per-account update log
//! with sequence numbers so a reconnecting client gets what it missed (like `getDifference`), deduplicates sends by
//! `random_id` as Telegram does, and injects faults: dropped connections, silent stalls, revoked sessions. It fails
//! loudly if one account is ever connected twice at the same time.
//!
//! Sessions go through the real [`SessionVault`] (the database), as the real gateway's do: the "session" is a small
//! JSON document with the user id and the last stored update's sequence number.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::Utc;
use crm_core::ids::{AccountId, PeerId, TelegramMessageId};
use crm_core::inbound::InboundEvent;
use crm_core::outbound::{DownloadedFile, OutgoingMessage, SendError, SendFuture, SentMessage};
use crm_core::personal::{
    AccountHandle, BoxFuture, Checkpoint, CodeSent, CollectScope, Connection, HistoryLimits, LoginOutcome,
    Profile, QrProgress, QrToken, ReceivedUpdate, SessionVault, UserError, UserGateway,
};
use crm_core::secrets::Sensitive;
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};

/// A Telegram user the fake knows, by phone number.
#[derive(Debug, Clone)]
pub struct FakeUser {
    /// Telegram user id.
    pub user_id: i64,
    /// First name.
    pub first_name: String,
    /// Cloud password, if the user set one.
    pub password: Option<String>,
    /// Its hint.
    pub hint: Option<String>,
}

/// A message the fake received through `send`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentRecord {
    /// The account that sent it.
    pub account_id: i64,
    /// What was sent.
    pub message: OutgoingMessage,
    /// Its `random_id`.
    pub random_id: i64,
    /// The id Telegram gave it.
    pub telegram_message_id: i64,
}

#[derive(Default)]
struct PendingLogin {
    phone_code_hash: String,
    code: String,
    expired: bool,
    resends: u32,
}

struct Live {
    generation: u64,
    sender: mpsc::UnboundedSender<Result<ReceivedUpdate, UserError>>,
}

#[derive(Default)]
struct World {
    users: HashMap<String, FakeUser>,
    logins: HashMap<i64, PendingLogin>,
    password_pending: HashSet<i64>,
    qr_scans: HashMap<i64, String>,
    next_code: u32,
    send_code_faults: Vec<UserError>,
    qr_login_faults: Vec<UserError>,
    connect_faults: HashMap<i64, Vec<UserError>>,
    revoked: HashSet<i64>,
    /// Connections (by generation) whose socket went silently dead.
    dead: HashSet<u64>,
    /// Every update of each account, with its sequence number (1, 2, ...).
    log: HashMap<i64, Vec<(i64, InboundEvent)>>,
    live: HashMap<i64, Live>,
    generation: u64,
    overlaps: Vec<i64>,
    connects: HashMap<i64, u32>,
    sent: Vec<SentRecord>,
    random_ids: HashMap<(i64, i64), i64>,
    next_message_id: i64,
    send_faults: HashMap<i64, Vec<SendFault>>,
    read_marks: Vec<(i64, i64, i64)>,
    media: HashMap<(i64, i64, i64), DownloadedFile>,
    history: HashMap<i64, Vec<InboundEvent>>,
    logged_out: HashSet<i64>,
}

/// How the next send of an account fails.
#[derive(Debug, Clone)]
pub enum SendFault {
    /// Telegram answers `FLOOD_WAIT_<seconds>`.
    FloodWait(Duration),
    /// Telegram stores the message but the answer is lost (the connection breaks before the acknowledgement).
    LoseAcknowledgement,
}

/// The stand-in; clones share one world.
#[derive(Clone)]
pub struct FakeTelegram {
    world: Arc<Mutex<World>>,
    vault: Arc<Mutex<Option<Arc<dyn SessionVault>>>>,
    changed: Arc<Notify>,
}

impl Default for FakeTelegram {
    fn default() -> Self {
        Self::new()
    }
}

fn session_bytes(user_id: i64, sequence: i64) -> Vec<u8> {
    json!({ "user_id": user_id, "sequence": sequence })
        .to_string()
        .into_bytes()
}

fn parse_session(bytes: &[u8]) -> Option<(i64, i64)> {
    let value: Value = serde_json::from_slice(bytes).ok()?;
    Some((value["user_id"].as_i64()?, value["sequence"].as_i64()?))
}

impl FakeTelegram {
    /// An empty world.
    pub fn new() -> Self {
        Self {
            world: Arc::new(Mutex::new(World {
                next_code: 12345,
                next_message_id: 1000,
                ..World::default()
            })),
            vault: Arc::new(Mutex::new(None)),
            changed: Arc::new(Notify::new()),
        }
    }

    fn world(&self) -> MutexGuard<'_, World> {
        self.world
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The gateway the app uses, keeping sessions in `vault`.
    pub fn gateway(&self, vault: Arc<dyn SessionVault>) -> Arc<dyn UserGateway> {
        *self
            .vault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(vault);
        Arc::new(self.clone())
    }

    fn vault(&self) -> Result<Arc<dyn SessionVault>, UserError> {
        self.vault
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| UserError::Other("the fake has no session vault".into()))
    }

    /// Registers a Telegram user with this phone number.
    pub fn add_user(&self, phone: &str, user: FakeUser) {
        self.world().users.insert(phone.to_owned(), user);
    }

    /// The login code last sent for `account_id`.
    pub fn code_for(&self, account_id: i64) -> Option<String> {
        self.world().logins.get(&account_id).map(|l| l.code.clone())
    }

    /// Expires the pending code of `account_id`.
    pub fn expire_code(&self, account_id: i64) {
        if let Some(login) = self.world().logins.get_mut(&account_id) {
            login.expired = true;
        }
    }

    /// The next `send_code` fails with `error`.
    pub fn fail_next_send_code(&self, error: UserError) {
        self.world().send_code_faults.push(error);
    }

    /// The next QR login fails with `error` before it shows a code (Telegram unreachable, for example).
    pub fn fail_next_qr_login(&self, error: UserError) {
        self.world().qr_login_faults.push(error);
    }

    /// The next connect of `account_id` fails with `error`.
    pub fn fail_next_connect(&self, account_id: i64, error: UserError) {
        self.world()
            .connect_faults
            .entry(account_id)
            .or_default()
            .push(error);
    }

    /// The owner of `phone` scans the QR code shown for `account_id`.
    pub fn scan_qr(&self, account_id: i64, phone: &str) {
        self.world().qr_scans.insert(account_id, phone.to_owned());
        self.changed.notify_waiters();
    }

    /// Telegram pushes `update` to `account_id`: logged with the next sequence number, delivered at once if the
    /// account is connected and not stalled.
    pub fn push(&self, account_id: i64, update: InboundEvent) -> i64 {
        let mut world = self.world();
        let log = world.log.entry(account_id).or_default();
        let sequence = log.last().map_or(1, |(s, _)| s + 1);
        log.push((sequence, update.clone()));
        if let Some(live) = world
            .live
            .get(&account_id)
            .filter(|live| !world.dead.contains(&live.generation))
        {
            let _ = live.sender.send(Ok(ReceivedUpdate {
                event: update,
                checkpoint: Some(Checkpoint(json!(sequence))),
            }));
        }
        sequence
    }

    /// Breaks the live connection of `account_id` (its next read fails).
    pub fn drop_connection(&self, account_id: i64) {
        let world = self.world();
        if let Some(live) = world.live.get(&account_id) {
            let _ = live
                .sender
                .send(Err(UserError::Network("connection reset by peer".into())));
        }
    }

    /// The current connection of `account_id` goes silently dead: it stays open, nothing more arrives on it and
    /// pings go unanswered. A new connection works.
    pub fn stall(&self, account_id: i64) {
        let mut world = self.world();
        if let Some(generation) = world.live.get(&account_id).map(|live| live.generation) {
            world.dead.insert(generation);
        }
    }

    /// Revokes the session of `account_id` (logged out from another device): the live connection fails, and so
    /// does every connect.
    pub fn revoke(&self, account_id: i64) {
        let mut world = self.world();
        world.revoked.insert(account_id);
        if let Some(live) = world.live.get(&account_id) {
            let _ = live.sender.send(Err(UserError::SessionRevoked));
        }
    }

    /// The next send of `account_id` fails with `fault`.
    pub fn fail_next_send(&self, account_id: i64, fault: SendFault) {
        self.world()
            .send_faults
            .entry(account_id)
            .or_default()
            .push(fault);
    }

    /// Every message Telegram accepted, in order (a repeated `random_id` appears once).
    pub fn sent(&self) -> Vec<SentRecord> {
        self.world().sent.clone()
    }

    /// `(account, peer, max_id)` of every read mark.
    pub fn read_marks(&self) -> Vec<(i64, i64, i64)> {
        self.world().read_marks.clone()
    }

    /// Makes the media of message `telegram_message_id` in `peer_id` downloadable.
    pub fn put_media(&self, account_id: i64, peer_id: i64, telegram_message_id: i64, file: DownloadedFile) {
        self.world()
            .media
            .insert((account_id, peer_id, telegram_message_id), file);
    }

    /// The history `account_id` returns on its first connection.
    pub fn set_history(&self, account_id: i64, history: Vec<InboundEvent>) {
        self.world().history.insert(account_id, history);
    }

    /// Accounts that were ever connected twice at the same time (must stay empty).
    pub fn overlaps(&self) -> Vec<i64> {
        self.world().overlaps.clone()
    }

    /// How many times `account_id` connected.
    pub fn connects(&self, account_id: i64) -> u32 {
        self.world().connects.get(&account_id).copied().unwrap_or(0)
    }

    /// Whether `account_id` is connected now.
    pub fn is_connected(&self, account_id: i64) -> bool {
        self.world().live.contains_key(&account_id)
    }

    /// Whether `account_id`'s session was logged out.
    pub fn was_logged_out(&self, account_id: i64) -> bool {
        self.world().logged_out.contains(&account_id)
    }

    fn user(&self, phone: &str) -> Result<FakeUser, UserError> {
        self.world()
            .users
            .get(phone)
            .cloned()
            .ok_or(UserError::PhoneUnoccupied)
    }

    fn profile(user: &FakeUser, phone: &str) -> Profile {
        Profile {
            telegram_user_id: user.user_id,
            first_name: Some(user.first_name.clone()),
            last_name: None,
            username: None,
            phone_number: Some(phone.to_owned()),
        }
    }

    async fn authorize(&self, account: &AccountHandle, user: &FakeUser) -> Result<LoginOutcome, UserError> {
        self.vault()?
            .save(account.account_id, session_bytes(user.user_id, 0))
            .await
            .map_err(UserError::Other)?;
        let mut world = self.world();
        world.revoked.remove(&account.account_id.0);
        world.password_pending.remove(&account.account_id.0);
        world.logins.remove(&account.account_id.0);
        Ok(LoginOutcome::Authenticated(Self::profile(
            user,
            &account.phone_number,
        )))
    }

    fn new_code(&self, account_id: i64, resends: u32) -> CodeSent {
        let mut world = self.world();
        world.next_code += 1;
        let code = world.next_code.to_string();
        let phone_code_hash = format!("hash-{account_id}-{code}");
        world.logins.insert(
            account_id,
            PendingLogin {
                phone_code_hash: phone_code_hash.clone(),
                code,
                expired: false,
                resends,
            },
        );
        let (code_type, next_type) = if resends == 0 {
            ("APP", Some("SMS"))
        } else {
            ("SMS", None)
        };
        CodeSent {
            phone_code_hash: Sensitive(phone_code_hash),
            code_type: code_type.into(),
            next_type: next_type.map(Into::into),
            timeout: Some(60),
        }
    }

    fn open_live(
        &self,
        account_id: i64,
    ) -> (u64, mpsc::UnboundedReceiver<Result<ReceivedUpdate, UserError>>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let mut world = self.world();
        world.generation += 1;
        let generation = world.generation;
        if world.live.contains_key(&account_id) {
            world.overlaps.push(account_id);
        }
        world.live.insert(account_id, Live { generation, sender });
        *world.connects.entry(account_id).or_default() += 1;
        (generation, receiver)
    }

    fn close_live(&self, account_id: i64, generation: u64) {
        let mut world = self.world();
        if world
            .live
            .get(&account_id)
            .is_some_and(|l| l.generation == generation)
        {
            world.live.remove(&account_id);
        }
    }
}

impl UserGateway for FakeTelegram {
    fn send_code(&self, account: &AccountHandle) -> BoxFuture<'_, Result<CodeSent, UserError>> {
        let account = account.clone();
        Box::pin(async move {
            if let Some(error) = self.world().send_code_faults.pop() {
                return Err(error);
            }
            self.user(&account.phone_number)?;
            Ok(self.new_code(account.account_id.0, 0))
        })
    }

    fn resend_code(
        &self,
        account: &AccountHandle,
        phone_code_hash: &Sensitive,
    ) -> BoxFuture<'_, Result<CodeSent, UserError>> {
        let account = account.clone();
        let hash = phone_code_hash.0.clone();
        Box::pin(async move {
            let resends = {
                let world = self.world();
                let login = world
                    .logins
                    .get(&account.account_id.0)
                    .filter(|l| l.phone_code_hash == hash)
                    .ok_or(UserError::CodeExpired)?;
                login.resends + 1
            };
            Ok(self.new_code(account.account_id.0, resends))
        })
    }

    fn sign_in(
        &self,
        account: &AccountHandle,
        phone_code_hash: &Sensitive,
        code: &str,
    ) -> BoxFuture<'_, Result<LoginOutcome, UserError>> {
        let account = account.clone();
        let hash = phone_code_hash.0.clone();
        let code = code.to_owned();
        Box::pin(async move {
            let user = self.user(&account.phone_number)?;
            {
                let mut world = self.world();
                let login = world
                    .logins
                    .get(&account.account_id.0)
                    .filter(|l| l.phone_code_hash == hash && !l.expired)
                    .ok_or(UserError::CodeExpired)?;
                if login.code != code {
                    return Err(UserError::InvalidCode);
                }
                if user.password.is_some() {
                    world.logins.remove(&account.account_id.0);
                    world.password_pending.insert(account.account_id.0);
                    return Ok(LoginOutcome::PasswordRequired {
                        hint: user.hint.clone(),
                    });
                }
            }
            self.authorize(&account, &user).await
        })
    }

    fn check_password(
        &self,
        account: &AccountHandle,
        password: &Sensitive,
    ) -> BoxFuture<'_, Result<LoginOutcome, UserError>> {
        let account = account.clone();
        let password = password.0.clone();
        Box::pin(async move {
            let user = self.user(&account.phone_number)?;
            if !self.world().password_pending.contains(&account.account_id.0) {
                return Err(UserError::LoginNotStarted("no password was asked for".into()));
            }
            if user.password.as_deref() != Some(password.as_str()) {
                return Err(UserError::WrongPassword);
            }
            self.authorize(&account, &user).await
        })
    }

    fn qr_login(
        &self,
        account: &AccountHandle,
        progress: Arc<dyn QrProgress>,
    ) -> BoxFuture<'_, Result<LoginOutcome, UserError>> {
        let account = account.clone();
        Box::pin(async move {
            if let Some(error) = self.world().qr_login_faults.pop() {
                return Err(error);
            }
            let mut round = 0u32;
            loop {
                round += 1;
                let token = format!("qr-{}-{round}", account.account_id.0);
                progress.token(QrToken {
                    login_url: format!("tg://login?token={token}"),
                    expires_at: Utc::now() + chrono::Duration::seconds(30),
                });
                let changed = self.changed.notified();
                let scanned = self.world().qr_scans.remove(&account.account_id.0);
                if let Some(phone) = scanned {
                    let user = self.user(&phone)?;
                    if user.password.is_some() {
                        self.vault()?
                            .save(account.account_id, session_bytes(user.user_id, 0))
                            .await
                            .map_err(UserError::Other)?;
                        self.world().password_pending.insert(account.account_id.0);
                        return Ok(LoginOutcome::PasswordRequired {
                            hint: user.hint.clone(),
                        });
                    }
                    let scanned_by = AccountHandle {
                        phone_number: phone,
                        ..account.clone()
                    };
                    return self.authorize(&scanned_by, &user).await;
                }
                // The token is refreshed every 30 s in real life; here when the test asks (or after a while).
                tokio::select! {
                    _ = changed => {}
                    _ = tokio::time::sleep(Duration::from_secs(25)) => {}
                }
            }
        })
    }

    fn connect(
        &self,
        account: &AccountHandle,
        _scope: CollectScope,
    ) -> BoxFuture<'_, Result<(Arc<dyn Connection>, Profile), UserError>> {
        let account = account.clone();
        Box::pin(async move {
            if let Some(error) = self
                .world()
                .connect_faults
                .get_mut(&account.account_id.0)
                .and_then(Vec::pop)
            {
                return Err(error);
            }
            if self.world().revoked.contains(&account.account_id.0) {
                return Err(UserError::SessionRevoked);
            }
            let stored = self
                .vault()?
                .load(account.account_id)
                .await
                .map_err(UserError::Other)?
                .and_then(|bytes| parse_session(&bytes))
                .ok_or(UserError::SessionRevoked)?;
            let (user_id, sequence) = stored;
            let user = self
                .world()
                .users
                .values()
                .find(|u| u.user_id == user_id)
                .cloned()
                .ok_or(UserError::SessionRevoked)?;
            let (generation, receiver) = self.open_live(account.account_id.0);
            // Catch up: everything logged after the stored sequence, like getDifference.
            let missed: Vec<(i64, InboundEvent)> = self
                .world()
                .log
                .get(&account.account_id.0)
                .map(|log| log.iter().filter(|(s, _)| *s > sequence).cloned().collect())
                .unwrap_or_default();
            let connection = FakeConnection {
                fake: self.clone(),
                account_id: account.account_id.0,
                user_id,
                generation,
                missed: Mutex::new(missed.into_iter().collect()),
                receiver: tokio::sync::Mutex::new(receiver),
            };
            Ok((
                Arc::new(connection) as Arc<dyn Connection>,
                Self::profile(&user, &account.phone_number),
            ))
        })
    }

    fn log_out(&self, account: &AccountHandle) -> BoxFuture<'_, Result<(), UserError>> {
        let account_id = account.account_id.0;
        Box::pin(async move {
            {
                let mut world = self.world();
                if world.live.contains_key(&account_id) {
                    world.overlaps.push(account_id);
                }
                world.logged_out.insert(account_id);
                world.revoked.insert(account_id);
            }
            self.vault()?
                .clear(AccountId(account_id))
                .await
                .map_err(UserError::Other)
        })
    }
}

/// One live connection of the fake.
struct FakeConnection {
    fake: FakeTelegram,
    account_id: i64,
    user_id: i64,
    generation: u64,
    missed: Mutex<std::collections::VecDeque<(i64, InboundEvent)>>,
    receiver: tokio::sync::Mutex<mpsc::UnboundedReceiver<Result<ReceivedUpdate, UserError>>>,
}

impl Drop for FakeConnection {
    fn drop(&mut self) {
        self.fake.close_live(self.account_id, self.generation);
    }
}

impl FakeConnection {
    fn stalled(&self) -> bool {
        self.fake.world().dead.contains(&self.generation)
    }
}

impl Connection for FakeConnection {
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move { self.fake.close_live(self.account_id, self.generation) })
    }

    fn next_update(&self) -> BoxFuture<'_, Result<ReceivedUpdate, UserError>> {
        Box::pin(async move {
            let missed = self
                .missed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .pop_front();
            if let Some((sequence, update)) = missed {
                return Ok(ReceivedUpdate {
                    event: update,
                    checkpoint: Some(Checkpoint(json!(sequence))),
                });
            }
            let mut receiver = self.receiver.lock().await;
            loop {
                let next = receiver.recv().await;
                // A stalled socket delivers nothing, but still notices that it was closed or revoked.
                match next {
                    Some(Ok(update)) if self.stalled() => drop(update),
                    Some(result) => return result,
                    None => return Err(UserError::Network("connection closed".into())),
                }
            }
        })
    }

    fn checkpoint(&self, checkpoint: Checkpoint) -> BoxFuture<'_, Result<(), UserError>> {
        Box::pin(async move {
            let sequence = checkpoint
                .0
                .as_i64()
                .ok_or_else(|| UserError::Other("bad checkpoint".into()))?;
            self.fake
                .vault()?
                .save(AccountId(self.account_id), session_bytes(self.user_id, sequence))
                .await
                .map_err(UserError::Other)
        })
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), UserError>> {
        Box::pin(async move {
            if self.stalled() {
                // A dead socket never answers; the supervisor's timeout decides.
                std::future::pending::<()>().await;
            }
            Ok(())
        })
    }

    fn send(&self, message: OutgoingMessage, random_id: i64) -> SendFuture<'_> {
        Box::pin(async move {
            let mut world = self.fake.world();
            let fault = world.send_faults.get_mut(&self.account_id).and_then(Vec::pop);
            if let Some(SendFault::FloodWait(wait)) = fault {
                return Err(SendError::RetryAfter(
                    wait,
                    format!("FLOOD_WAIT_{}", wait.as_secs()),
                ));
            }
            let key = (self.account_id, random_id);
            let telegram_message_id = match world.random_ids.get(&key) {
                Some(id) => *id,
                None => {
                    world.next_message_id += 1;
                    let id = world.next_message_id;
                    world.random_ids.insert(key, id);
                    world.sent.push(SentRecord {
                        account_id: self.account_id,
                        message,
                        random_id,
                        telegram_message_id: id,
                    });
                    id
                }
            };
            if matches!(fault, Some(SendFault::LoseAcknowledgement)) {
                return Err(SendError::Transient(
                    "connection lost before Telegram answered".into(),
                ));
            }
            Ok(SentMessage {
                telegram_message_id: Some(TelegramMessageId(telegram_message_id)),
                date: Utc::now(),
            })
        })
    }

    fn mark_read(&self, peer_id: PeerId, max_id: TelegramMessageId) -> BoxFuture<'_, Result<(), UserError>> {
        Box::pin(async move {
            self.fake
                .world()
                .read_marks
                .push((self.account_id, peer_id.0, max_id.0));
            Ok(())
        })
    }

    fn download(
        &self,
        peer_id: PeerId,
        telegram_message_id: TelegramMessageId,
        max_bytes: u64,
    ) -> BoxFuture<'_, Result<DownloadedFile, UserError>> {
        Box::pin(async move {
            let file = self
                .fake
                .world()
                .media
                .get(&(self.account_id, peer_id.0, telegram_message_id.0))
                .cloned()
                .ok_or_else(|| UserError::PeerUnavailable("MESSAGE_ID_INVALID".into()))?;
            if u64::try_from(file.bytes.len()).unwrap_or(u64::MAX) > max_bytes {
                return Err(UserError::PeerUnavailable(format!(
                    "the file is larger than {max_bytes} bytes"
                )));
            }
            Ok(file)
        })
    }

    fn history(
        &self,
        limits: HistoryLimits,
        _scope: CollectScope,
    ) -> BoxFuture<'_, Result<Vec<InboundEvent>, UserError>> {
        Box::pin(async move {
            let history = self
                .fake
                .world()
                .history
                .get(&self.account_id)
                .cloned()
                .unwrap_or_default();
            let limit = usize::try_from(limits.dialogs.saturating_mul(limits.messages_per_dialog))
                .unwrap_or(usize::MAX);
            Ok(history.into_iter().take(limit).collect())
        })
    }
}

//! `DbSession`: the grammers session of one personal account, held in memory and persisted as bytes through
//! crm-core's [`SessionVault`]. Data-centre options and auth keys are written through at once (losing one
//! would lose the login); the peer cache and the update state are written by [`DbSession::flush`].

use std::collections::HashMap;
use std::net::{SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use crm_core::ids::AccountId;
use crm_core::personal::{SessionVault, UserError};
use grammers_session::types::{
    ChannelKind, ChannelState, DcOption, PeerAuth, PeerId, PeerInfo, UpdateState, UpdatesState,
};
use grammers_session::{BoxFuture, Session, SessionData};
use grammers_tl_types as tl;
use serde::{Deserialize, Serialize};

/// Version of the stored format; bump it when [`StoredSession`] changes incompatibly.
const FORMAT_VERSION: u32 = 1;

/// Why the session could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// The in-memory lock was poisoned by a panic elsewhere.
    #[error("session lock is poisoned")]
    Poisoned,
    /// The vault refused to save or load.
    #[error("session vault: {0}")]
    Vault(String),
    /// The stored bytes cannot be read.
    #[error("stored session cannot be read: {0}")]
    Corrupt(String),
}

impl From<SessionError> for UserError {
    fn from(error: SessionError) -> Self {
        UserError::Other(error.to_string())
    }
}

/// The Bot API dialog id of a cached peer (users positive, basic groups `-id`, channels `-100…`).
pub fn peer_info_dialog_id(peer: &PeerInfo) -> Option<i64> {
    match peer {
        PeerInfo::User { id, .. } => Some(*id),
        PeerInfo::Chat { id } => id.checked_neg(),
        PeerInfo::Channel { id, .. } => channel_dialog_id(*id),
    }
}

/// The Bot API dialog id of a channel or supergroup with bare id `id`.
pub fn channel_dialog_id(id: i64) -> Option<i64> {
    1_000_000_000_000_i64.checked_add(id).map(|value| -value)
}

struct Inner {
    home_dc: i32,
    dc_options: HashMap<i32, DcOption>,
    /// Keyed by Bot API dialog id, computed without grammers' range checks (which panic on odd ids).
    peers: HashMap<i64, PeerInfo>,
    updates_state: UpdatesState,
    dirty: bool,
}

/// The grammers [`Session`] of one account, persisted through a [`SessionVault`].
pub struct DbSession {
    vault: Arc<dyn SessionVault>,
    account_id: AccountId,
    dc_override: Option<SocketAddr>,
    inner: Mutex<Inner>,
    // Serialises snapshot-and-save, so an older snapshot never lands after a newer one.
    save_lock: tokio::sync::Mutex<()>,
}

#[derive(Serialize, Deserialize)]
struct StoredSession {
    version: u32,
    home_dc: i32,
    dc_options: Vec<StoredDc>,
    peers: Vec<StoredPeer>,
    updates: StoredUpdates,
}

#[derive(Serialize, Deserialize)]
struct StoredDc {
    id: i32,
    ipv4: SocketAddrV4,
    ipv6: SocketAddrV6,
    /// Base64 of the 256-byte permanent auth key.
    auth_key: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum StoredPeer {
    User {
        id: i64,
        access_hash: Option<i64>,
        bot: Option<bool>,
        is_self: Option<bool>,
    },
    Chat {
        id: i64,
    },
    Channel {
        id: i64,
        access_hash: Option<i64>,
        channel_kind: Option<String>,
    },
}

#[derive(Serialize, Deserialize, Default)]
struct StoredUpdates {
    pts: i32,
    qts: i32,
    date: i32,
    seq: i32,
    channels: Vec<(i64, i32)>,
}

fn kind_name(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Broadcast => "broadcast",
        ChannelKind::Megagroup => "megagroup",
        ChannelKind::Gigagroup => "gigagroup",
        ChannelKind::Community => "community",
    }
}

fn kind_from_name(name: &str) -> Option<ChannelKind> {
    match name {
        "broadcast" => Some(ChannelKind::Broadcast),
        "megagroup" => Some(ChannelKind::Megagroup),
        "gigagroup" => Some(ChannelKind::Gigagroup),
        "community" => Some(ChannelKind::Community),
        _ => None,
    }
}

impl StoredPeer {
    fn from_info(peer: &PeerInfo) -> Self {
        match peer {
            PeerInfo::User {
                id,
                auth,
                bot,
                is_self,
            } => Self::User {
                id: *id,
                access_hash: auth.map(PeerAuth::hash),
                bot: *bot,
                is_self: *is_self,
            },
            PeerInfo::Chat { id } => Self::Chat { id: *id },
            PeerInfo::Channel { id, auth, kind } => Self::Channel {
                id: *id,
                access_hash: auth.map(PeerAuth::hash),
                channel_kind: kind.map(|kind| kind_name(kind).to_owned()),
            },
        }
    }

    fn into_info(self) -> PeerInfo {
        match self {
            Self::User {
                id,
                access_hash,
                bot,
                is_self,
            } => PeerInfo::User {
                id,
                auth: access_hash.map(PeerAuth::from_hash),
                bot,
                is_self,
            },
            Self::Chat { id } => PeerInfo::Chat { id },
            Self::Channel {
                id,
                access_hash,
                channel_kind,
            } => PeerInfo::Channel {
                id,
                auth: access_hash.map(PeerAuth::from_hash),
                kind: channel_kind.as_deref().and_then(kind_from_name),
            },
        }
    }
}

/// Replaces the addresses of `option` with `address`, keeping the other family consistent.
fn apply_override(option: &mut DcOption, address: SocketAddr) {
    match address {
        SocketAddr::V4(v4) => {
            option.ipv4 = v4;
            option.ipv6 = SocketAddrV6::new(v4.ip().to_ipv6_mapped(), v4.port(), 0, 0);
        }
        SocketAddr::V6(v6) => {
            option.ipv6 = v6;
            if let Some(v4) = v6.ip().to_ipv4_mapped() {
                option.ipv4 = SocketAddrV4::new(v4, v6.port());
            }
        }
    }
}

impl Inner {
    fn from_data(data: SessionData) -> Self {
        Self {
            home_dc: data.home_dc,
            dc_options: data.dc_options,
            peers: data
                .peer_infos
                .into_values()
                .filter_map(|peer| peer_info_dialog_id(&peer).map(|id| (id, peer)))
                .collect(),
            updates_state: data.updates_state,
            dirty: false,
        }
    }

    fn from_bytes(bytes: &[u8]) -> Result<Self, SessionError> {
        let stored: StoredSession =
            serde_json::from_slice(bytes).map_err(|e| SessionError::Corrupt(e.to_string()))?;
        if stored.version != FORMAT_VERSION {
            return Err(SessionError::Corrupt(format!(
                "unknown format version {}",
                stored.version
            )));
        }
        let mut dc_options = HashMap::new();
        for dc in stored.dc_options {
            let auth_key = match dc.auth_key {
                None => None,
                Some(encoded) => {
                    let raw = STANDARD
                        .decode(encoded)
                        .map_err(|_| SessionError::Corrupt("auth key is not base64".into()))?;
                    Some(
                        <[u8; 256]>::try_from(raw.as_slice())
                            .map_err(|_| SessionError::Corrupt("auth key is not 256 bytes".into()))?,
                    )
                }
            };
            dc_options.insert(
                dc.id,
                DcOption {
                    id: dc.id,
                    ipv4: dc.ipv4,
                    ipv6: dc.ipv6,
                    auth_key,
                },
            );
        }
        let peers = stored
            .peers
            .into_iter()
            .map(StoredPeer::into_info)
            .filter_map(|peer| peer_info_dialog_id(&peer).map(|id| (id, peer)))
            .collect();
        Ok(Self {
            home_dc: stored.home_dc,
            dc_options,
            peers,
            updates_state: UpdatesState {
                pts: stored.updates.pts,
                qts: stored.updates.qts,
                date: stored.updates.date,
                seq: stored.updates.seq,
                channels: stored
                    .updates
                    .channels
                    .into_iter()
                    .map(|(id, pts)| ChannelState { id, pts })
                    .collect(),
            },
            dirty: false,
        })
    }

    fn to_bytes(&self) -> Result<Vec<u8>, SessionError> {
        let mut dc_options: Vec<StoredDc> = self
            .dc_options
            .values()
            .map(|dc| StoredDc {
                id: dc.id,
                ipv4: dc.ipv4,
                ipv6: dc.ipv6,
                auth_key: dc.auth_key.map(|key| STANDARD.encode(key)),
            })
            .collect();
        dc_options.sort_by_key(|dc| dc.id);
        let stored = StoredSession {
            version: FORMAT_VERSION,
            home_dc: self.home_dc,
            dc_options,
            peers: self.peers.values().map(StoredPeer::from_info).collect(),
            updates: StoredUpdates {
                pts: self.updates_state.pts,
                qts: self.updates_state.qts,
                date: self.updates_state.date,
                seq: self.updates_state.seq,
                channels: self
                    .updates_state
                    .channels
                    .iter()
                    .map(|channel| (channel.id, channel.pts))
                    .collect(),
            },
        };
        serde_json::to_vec(&stored).map_err(|e| SessionError::Corrupt(e.to_string()))
    }

    fn self_user(&self) -> Option<&PeerInfo> {
        self.peers.values().find(|peer| {
            matches!(
                peer,
                PeerInfo::User {
                    is_self: Some(true),
                    ..
                }
            )
        })
    }

    fn cache(&mut self, peer: PeerInfo) {
        let Some(key) = peer_info_dialog_id(&peer) else {
            return;
        };
        if matches!(
            peer,
            PeerInfo::User {
                is_self: Some(true),
                ..
            }
        ) {
            // Only one account owns a session: a new self user demotes any other.
            for other in self.peers.values_mut() {
                if let PeerInfo::User { id, is_self, .. } = other
                    && *id != key
                    && *is_self == Some(true)
                {
                    *is_self = Some(false);
                    self.dirty = true;
                }
            }
        }
        // Peers come with every update; only a change is worth saving.
        let changed = match self.peers.get_mut(&key) {
            Some(known) => {
                let before = known.clone();
                if !known.extend_info(&peer) {
                    *known = peer;
                }
                *known != before
            }
            None => {
                self.peers.insert(key, peer);
                true
            }
        };
        self.dirty |= changed;
    }
}

impl DbSession {
    fn build(
        vault: Arc<dyn SessionVault>,
        account_id: AccountId,
        dc_override: Option<SocketAddr>,
        mut inner: Inner,
    ) -> Self {
        if let Some(address) = dc_override {
            for option in inner.dc_options.values_mut() {
                apply_override(option, address);
            }
        }
        Self {
            vault,
            account_id,
            dc_override,
            inner: Mutex::new(inner),
            save_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// The stored session of `account_id`, or a fresh one (grammers' defaults, no auth key) if none is stored.
    /// `dc_override` replaces the address of every data centre (for test servers or a local stand-in).
    pub async fn load(
        vault: Arc<dyn SessionVault>,
        account_id: AccountId,
        dc_override: Option<SocketAddr>,
    ) -> Result<Self, SessionError> {
        let stored = vault.load(account_id).await.map_err(SessionError::Vault)?;
        let inner = match stored {
            Some(bytes) => Inner::from_bytes(&bytes)?,
            None => Inner::from_data(SessionData::default()),
        };
        Ok(Self::build(vault, account_id, dc_override, inner))
    }

    /// A fresh session (no auth key, no peers), replacing whatever the vault holds for `account_id` once it is
    /// first saved. Every new login starts here so no earlier key is reused.
    pub(crate) fn fresh(
        vault: Arc<dyn SessionVault>,
        account_id: AccountId,
        dc_override: Option<SocketAddr>,
    ) -> Self {
        Self::build(
            vault,
            account_id,
            dc_override,
            Inner::from_data(SessionData::default()),
        )
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>, SessionError> {
        self.inner.lock().map_err(|_| SessionError::Poisoned)
    }

    /// Writes the whole session to the vault now.
    pub(crate) async fn save(&self) -> Result<(), SessionError> {
        let _guard = self.save_lock.lock().await;
        let bytes = {
            let mut inner = self.lock()?;
            inner.dirty = false;
            inner.to_bytes()?
        };
        if let Err(error) = self.vault.save(self.account_id, bytes).await {
            if let Ok(mut inner) = self.lock() {
                inner.dirty = true;
            }
            return Err(SessionError::Vault(error));
        }
        Ok(())
    }

    /// Saves the peer cache and update state if they changed since the last save.
    pub async fn flush(&self) -> Result<(), SessionError> {
        if self.lock()?.dirty {
            self.save().await
        } else {
            Ok(())
        }
    }

    /// Whether the home data centre has an auth key (a login was at least started with this session).
    pub fn has_home_auth_key(&self) -> Result<bool, SessionError> {
        let inner = self.lock()?;
        Ok(inner
            .dc_options
            .get(&inner.home_dc)
            .is_some_and(|option| option.auth_key.is_some()))
    }

    /// The account's own user, if a login completed in this session.
    pub fn self_user(&self) -> Result<Option<PeerInfo>, SessionError> {
        Ok(self.lock()?.self_user().cloned())
    }

    /// A cached peer by its Bot API dialog id.
    pub(crate) fn peer_by_dialog_id(&self, dialog_id: i64) -> Result<Option<PeerInfo>, SessionError> {
        Ok(self.lock()?.peers.get(&dialog_id).cloned())
    }

    /// Caches the peers Telegram sent along with updates or answers (skipping `min` ones, whose access hash
    /// cannot be used); saved by the next [`Self::flush`].
    pub(crate) fn cache_raw_peers(
        &self,
        users: &[tl::enums::User],
        chats: &[tl::enums::Chat],
    ) -> Result<(), SessionError> {
        let mut inner = self.lock()?;
        for user in users {
            if let tl::enums::User::User(raw) = user
                && !raw.min
                && raw.access_hash.is_some()
            {
                inner.cache(PeerInfo::from(raw));
            }
        }
        for chat in chats {
            let usable = match chat {
                tl::enums::Chat::Chat(_) | tl::enums::Chat::Forbidden(_) => true,
                tl::enums::Chat::Channel(channel) => !channel.min && channel.access_hash.is_some(),
                tl::enums::Chat::ChannelForbidden(_) => true,
                _ => false,
            };
            if usable {
                inner.cache(PeerInfo::from(chat));
            }
        }
        Ok(())
    }
}

impl DbSession {
    /// For a local MTProto test peer only (see `GatewaySettings::preshared_auth_key`): gives every data centre
    /// without an auth key `key`, when the addresses are overridden (a peer knowing the same key); the key is
    /// saved with the next write. Without `dc_override` it does nothing, so Telegram's data centres never get
    /// a key that was not negotiated with them.
    pub(crate) fn preshare_auth_key(&self, key: [u8; 256]) -> Result<(), SessionError> {
        if self.dc_override.is_none() {
            return Ok(());
        }
        let mut guard = self.lock()?;
        let inner = &mut *guard;
        for option in inner.dc_options.values_mut() {
            if option.auth_key.is_none() {
                option.auth_key = Some(key);
                inner.dirty = true;
            }
        }
        Ok(())
    }
}

impl Session for DbSession {
    type Error = SessionError;

    fn home_dc_id(&self) -> Result<i32, SessionError> {
        Ok(self.lock()?.home_dc)
    }

    fn set_home_dc_id(&self, dc_id: i32) -> BoxFuture<'_, Result<(), SessionError>> {
        Box::pin(async move {
            self.lock()?.home_dc = dc_id;
            self.save().await
        })
    }

    fn dc_option(&self, dc_id: i32) -> Result<Option<DcOption>, SessionError> {
        Ok(self.lock()?.dc_options.get(&dc_id).cloned())
    }

    fn set_dc_option(&self, dc_option: &DcOption) -> BoxFuture<'_, Result<(), SessionError>> {
        let mut dc_option = dc_option.clone();
        if let Some(address) = self.dc_override {
            apply_override(&mut dc_option, address);
        }
        Box::pin(async move {
            let changed = {
                let mut inner = self.lock()?;
                let changed = inner.dc_options.get(&dc_option.id) != Some(&dc_option);
                inner.dc_options.insert(dc_option.id, dc_option);
                changed
            };
            if changed { self.save().await } else { Ok(()) }
        })
    }

    fn peer(&self, peer: PeerId) -> BoxFuture<'_, Result<Option<PeerInfo>, SessionError>> {
        Box::pin(async move {
            let inner = self.lock()?;
            Ok(match peer.bot_api_dialog_id() {
                Some(id) => inner.peers.get(&id).cloned(),
                None => inner.self_user().cloned(),
            })
        })
    }

    fn cache_peer(&self, peer: PeerInfo) -> BoxFuture<'_, Result<(), SessionError>> {
        Box::pin(async move {
            self.lock()?.cache(peer);
            Ok(())
        })
    }

    fn updates_state(&self) -> BoxFuture<'_, Result<UpdatesState, SessionError>> {
        Box::pin(async move { Ok(self.lock()?.updates_state.clone()) })
    }

    fn set_update_state(&self, update: UpdateState) -> BoxFuture<'_, Result<(), SessionError>> {
        Box::pin(async move {
            let mut inner = self.lock()?;
            let state = &mut inner.updates_state;
            match update {
                UpdateState::All(all) => *state = all,
                UpdateState::Primary { pts, date, seq } => {
                    state.pts = pts;
                    state.date = date;
                    state.seq = seq;
                }
                UpdateState::Secondary { qts } => state.qts = qts,
                UpdateState::Channel { id, pts } => {
                    match state.channels.iter_mut().find(|channel| channel.id == id) {
                        Some(channel) => channel.pts = pts,
                        None => state.channels.push(ChannelState { id, pts }),
                    }
                }
            }
            inner.dirty = true;
            Ok(())
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crm_core::personal::BoxFuture as CoreFuture;
    use std::net::{Ipv4Addr, Ipv6Addr};

    /// An in-memory vault that counts saves.
    #[derive(Default)]
    pub(crate) struct MemoryVault {
        pub(crate) stored: Mutex<HashMap<AccountId, Vec<u8>>>,
        pub(crate) saves: Mutex<usize>,
    }

    impl MemoryVault {
        pub(crate) fn bytes(&self, account_id: AccountId) -> Option<Vec<u8>> {
            self.stored.lock().unwrap().get(&account_id).cloned()
        }
    }

    impl SessionVault for MemoryVault {
        fn load(&self, account_id: AccountId) -> CoreFuture<'_, Result<Option<Vec<u8>>, String>> {
            Box::pin(async move { Ok(self.bytes(account_id)) })
        }
        fn save(&self, account_id: AccountId, session: Vec<u8>) -> CoreFuture<'_, Result<(), String>> {
            Box::pin(async move {
                self.stored.lock().unwrap().insert(account_id, session);
                *self.saves.lock().unwrap() += 1;
                Ok(())
            })
        }
        fn clear(&self, account_id: AccountId) -> CoreFuture<'_, Result<(), String>> {
            Box::pin(async move {
                self.stored.lock().unwrap().remove(&account_id);
                Ok(())
            })
        }
    }

    fn stored_json(vault: &MemoryVault) -> serde_json::Value {
        serde_json::from_slice(&vault.bytes(AccountId(7)).unwrap()).unwrap()
    }

    #[tokio::test]
    async fn everything_survives_a_reload_and_only_keys_are_written_through() {
        let vault = Arc::new(MemoryVault::default());
        let session = DbSession::load(vault.clone(), AccountId(7), None).await.unwrap();
        assert_eq!(session.home_dc_id().unwrap(), 2);
        assert!(vault.bytes(AccountId(7)).is_none());

        let mut option = session.dc_option(4).unwrap().unwrap();
        option.auth_key = Some([9u8; 256]);
        session.set_dc_option(&option).await.unwrap();
        session.set_home_dc_id(4).await.unwrap();
        let written = stored_json(&vault);
        assert_eq!(written["version"], 1);
        assert_eq!(written["home_dc"], 4);
        let dc4 = written["dc_options"]
            .as_array()
            .unwrap()
            .iter()
            .find(|dc| dc["id"] == 4)
            .unwrap();
        assert!(dc4["auth_key"].is_string(), "the auth key is saved at once");
        assert!(written["peers"].as_array().unwrap().is_empty());

        session
            .cache_peer(PeerInfo::User {
                id: 1000,
                auth: Some(PeerAuth::from_hash(55)),
                bot: Some(false),
                is_self: Some(true),
            })
            .await
            .unwrap();
        session
            .cache_peer(PeerInfo::Channel {
                id: 777,
                auth: Some(PeerAuth::from_hash(66)),
                kind: Some(ChannelKind::Megagroup),
            })
            .await
            .unwrap();
        session
            .set_update_state(UpdateState::Primary {
                pts: 10,
                date: 20,
                seq: 30,
            })
            .await
            .unwrap();
        session
            .set_update_state(UpdateState::Secondary { qts: 5 })
            .await
            .unwrap();
        session
            .set_update_state(UpdateState::Channel { id: 777, pts: 99 })
            .await
            .unwrap();
        assert!(
            stored_json(&vault)["peers"].as_array().unwrap().is_empty(),
            "peers wait for flush"
        );
        let saves_before = *vault.saves.lock().unwrap();
        session.flush().await.unwrap();
        assert_eq!(*vault.saves.lock().unwrap(), saves_before + 1);
        session.flush().await.unwrap();
        assert_eq!(
            *vault.saves.lock().unwrap(),
            saves_before + 1,
            "a clean session is not saved again"
        );

        let reloaded = DbSession::load(vault.clone(), AccountId(7), None).await.unwrap();
        assert_eq!(reloaded.home_dc_id().unwrap(), 4);
        assert_eq!(reloaded.dc_option(4).unwrap().unwrap().auth_key, Some([9u8; 256]));
        assert_eq!(reloaded.dc_option(1).unwrap().unwrap().auth_key, None);
        assert_eq!(
            reloaded.peer(PeerId::self_user()).await.unwrap(),
            Some(PeerInfo::User {
                id: 1000,
                auth: Some(PeerAuth::from_hash(55)),
                bot: Some(false),
                is_self: Some(true),
            })
        );
        assert_eq!(
            reloaded.peer_by_dialog_id(-1_000_000_000_777).unwrap(),
            Some(PeerInfo::Channel {
                id: 777,
                auth: Some(PeerAuth::from_hash(66)),
                kind: Some(ChannelKind::Megagroup),
            })
        );
        let state = reloaded.updates_state().await.unwrap();
        assert_eq!((state.pts, state.date, state.seq, state.qts), (10, 20, 30, 5));
        assert_eq!(state.channels, vec![ChannelState { id: 777, pts: 99 }]);
    }

    #[tokio::test]
    async fn the_override_replaces_every_address_even_from_telegrams_config() {
        let vault = Arc::new(MemoryVault::default());
        let address: SocketAddr = "127.0.0.1:4430".parse().unwrap();
        let session = DbSession::load(vault, AccountId(1), Some(address)).await.unwrap();
        for dc in 1..=5 {
            let option = session.dc_option(dc).unwrap().unwrap();
            assert_eq!(SocketAddr::V4(option.ipv4), address);
            assert_eq!(option.ipv6.ip().to_ipv4_mapped(), Some(Ipv4Addr::LOCALHOST));
        }
        session
            .set_dc_option(&DcOption {
                id: 2,
                ipv4: SocketAddrV4::new(Ipv4Addr::new(149, 154, 167, 50), 443),
                ipv6: SocketAddrV6::new(Ipv6Addr::LOCALHOST, 443, 0, 0),
                auth_key: None,
            })
            .await
            .unwrap();
        assert_eq!(
            SocketAddr::V4(session.dc_option(2).unwrap().unwrap().ipv4),
            address
        );
    }

    #[tokio::test]
    async fn corrupt_or_foreign_bytes_are_refused() {
        let vault = Arc::new(MemoryVault::default());
        vault
            .stored
            .lock()
            .unwrap()
            .insert(AccountId(3), b"nonsense".to_vec());
        assert!(matches!(
            DbSession::load(vault.clone(), AccountId(3), None).await,
            Err(SessionError::Corrupt(_))
        ));
        vault.stored.lock().unwrap().insert(
            AccountId(3),
            br#"{"version":9,"home_dc":2,"dc_options":[],"peers":[],"updates":{"pts":0,"qts":0,"date":0,"seq":0,"channels":[]}}"#.to_vec(),
        );
        assert!(matches!(
            DbSession::load(vault, AccountId(3), None).await,
            Err(SessionError::Corrupt(_))
        ));
    }

    #[tokio::test]
    async fn a_new_self_user_demotes_the_old_one() {
        let session = DbSession::fresh(Arc::new(MemoryVault::default()), AccountId(1), None);
        for id in [1, 2] {
            session
                .cache_peer(PeerInfo::User {
                    id,
                    auth: Some(PeerAuth::from_hash(id)),
                    bot: Some(false),
                    is_self: Some(true),
                })
                .await
                .unwrap();
        }
        assert!(matches!(
            session.self_user().unwrap(),
            Some(PeerInfo::User { id: 2, .. })
        ));
        session.flush().await.unwrap();
        session
            .cache_peer(PeerInfo::User {
                id: 2,
                auth: Some(PeerAuth::from_hash(2)),
                bot: Some(false),
                is_self: Some(true),
            })
            .await
            .unwrap();
        assert!(
            !session.lock().unwrap().dirty,
            "a known peer does not dirty the session"
        );
    }
}

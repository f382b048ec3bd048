//! `GrammersGateway`: crm-core's [`UserGateway`] over grammers. It owns the settings and the vault, hands the
//! login steps to [`crate::login`] and builds connections for authorised accounts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crm_core::personal::{
    AccountHandle, BoxFuture, CodeSent, CollectScope, Connection, LoginOutcome, Profile, QrProgress,
    SessionVault, UserError, UserGateway,
};
use crm_core::secrets::Sensitive;
use grammers_mtsender::{AutoSleep, ConnectionParams};
use grammers_session::types::PeerInfo;
use grammers_tl_types as tl;

use crate::connection::GrammersConnection;
use crate::errors::map_invocation_error;
use crate::login::Login;
use crate::mapping::profile_from_user;
use crate::pool::{Pool, Timeouts};
use crate::session::DbSession;

/// How the gateway reaches Telegram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewaySettings {
    /// Connect every data centre at this address instead of Telegram's (Telegram's test servers or a local
    /// stand-in); `None` in production.
    pub dc_override: Option<SocketAddr>,
    /// Device model shown in the account's list of active sessions.
    pub device_model: String,
    /// System version shown in the list of active sessions.
    pub system_version: String,
    /// Application version shown in the list of active sessions.
    pub app_version: String,
    /// Longest wait for Telegram's answer to one request (a send, a read receipt, a page of history, one chunk
    /// of a file, a login step). An unanswered request fails as a network error, so no call can hang.
    pub request_timeout: Duration,
    /// Longest a whole file upload or download may take. Each chunk of a download is also bounded by
    /// `request_timeout`; an upload is one grammers call, bounded as a whole only.
    pub transfer_timeout: Duration,
    /// For a local MTProto test peer only; never set from configuration. The auth key every overridden data
    /// centre without one is given (only when `dc_override` is set), so the client skips the RSA key exchange
    /// against a peer that knows the same key. No setting or variable reaches it: it can only be set by code
    /// that builds `GatewaySettings` itself, and the server leaves it `None`.
    pub preshared_auth_key: Option<[u8; 256]>,
}

impl Default for GatewaySettings {
    fn default() -> Self {
        Self {
            dc_override: None,
            device_model: "omnichannel-crm".to_owned(),
            system_version: "server".to_owned(),
            app_version: env!("CARGO_PKG_VERSION").to_owned(),
            request_timeout: Duration::from_secs(60),
            transfer_timeout: Duration::from_secs(10 * 60),
            preshared_auth_key: None,
        }
    }
}

impl GatewaySettings {
    /// Gives `session` the pre-shared auth key of a local test peer, if one is set (see
    /// [`Self::preshared_auth_key`]); does nothing otherwise.
    pub(crate) fn preshare(&self, session: &DbSession) -> Result<(), crate::session::SessionError> {
        match self.preshared_auth_key {
            Some(key) => session.preshare_auth_key(key),
            None => Ok(()),
        }
    }

    /// The bounds of calls to Telegram.
    pub(crate) fn timeouts(&self) -> Timeouts {
        Timeouts {
            request: self.request_timeout,
            transfer: self.transfer_timeout,
        }
    }

    /// The grammers connection parameters of these settings.
    ///
    /// A `FLOOD_WAIT` reaches the caller at once (only a zero wait is retried, at once): grammers' default
    /// policy sleeps through waits of up to a minute inside the call, which would hold sends and logins that
    /// long and hide the wait from the outbox and the login API (they reschedule, or answer with the wait).
    /// grammers' single retry after an I/O error stays: it makes a send whose answer was lost come out right
    /// (same `random_id`, so Telegram answers with the first message).
    pub(crate) fn connection_params(&self) -> ConnectionParams {
        ConnectionParams {
            device_model: self.device_model.clone(),
            system_version: self.system_version.clone(),
            app_version: self.app_version.clone(),
            use_ipv6: self.dc_override.is_some_and(|address| address.is_ipv6()),
            retry_policy: Box::new(AutoSleep {
                threshold: Duration::ZERO,
                ..AutoSleep::default()
            }),
            ..ConnectionParams::default()
        }
    }
}

/// The personal-account gateway over grammers, keeping sessions in a [`SessionVault`].
pub struct GrammersGateway {
    vault: Arc<dyn SessionVault>,
    settings: GatewaySettings,
}

impl GrammersGateway {
    /// A gateway storing sessions in `vault`.
    pub fn new(vault: Arc<dyn SessionVault>, settings: GatewaySettings) -> Self {
        Self { vault, settings }
    }

    fn login(&self) -> Login<'_> {
        Login {
            vault: &self.vault,
            settings: &self.settings,
        }
    }

    async fn open(
        &self,
        account: &AccountHandle,
        scope: CollectScope,
    ) -> Result<(Arc<dyn Connection>, Profile), UserError> {
        let session = Arc::new(
            DbSession::load(
                Arc::clone(&self.vault),
                account.account_id,
                self.settings.dc_override,
            )
            .await?,
        );
        if !matches!(session.self_user()?, Some(PeerInfo::User { .. })) || !session.has_home_auth_key()? {
            return Err(UserError::SessionRevoked);
        }
        self.settings.preshare(&session)?;
        let mut pool = Pool::start(Arc::clone(&session), account.credentials.api_id, &self.settings);
        let users = pool
            .invoke(&tl::functions::users::GetUsers {
                id: vec![tl::enums::InputUser::UserSelf],
            })
            .await
            .map_err(|e| map_invocation_error(&e))?;
        let Some(tl::enums::User::User(me)) = users.into_iter().next() else {
            return Err(UserError::SessionRevoked);
        };
        session.cache_raw_peers(&[tl::enums::User::User(me.clone())], &[])?;
        let updates = pool
            .take_updates()
            .ok_or_else(|| UserError::Other("update channel already taken".to_owned()))?;
        let connection = GrammersConnection::start(pool, session, updates, scope, me.id).await?;
        Ok((Arc::new(connection), profile_from_user(&me)))
    }
}

impl UserGateway for GrammersGateway {
    fn send_code(&self, account: &AccountHandle) -> BoxFuture<'_, Result<CodeSent, UserError>> {
        let account = account.clone();
        Box::pin(async move { self.login().send_code(&account).await })
    }

    fn resend_code(
        &self,
        account: &AccountHandle,
        phone_code_hash: &Sensitive,
    ) -> BoxFuture<'_, Result<CodeSent, UserError>> {
        let (account, hash) = (account.clone(), phone_code_hash.clone());
        Box::pin(async move { self.login().resend_code(&account, &hash).await })
    }

    fn sign_in(
        &self,
        account: &AccountHandle,
        phone_code_hash: &Sensitive,
        code: &str,
    ) -> BoxFuture<'_, Result<LoginOutcome, UserError>> {
        let (account, hash, code) = (account.clone(), phone_code_hash.clone(), code.to_owned());
        Box::pin(async move { self.login().sign_in(&account, &hash, &code).await })
    }

    fn check_password(
        &self,
        account: &AccountHandle,
        password: &Sensitive,
    ) -> BoxFuture<'_, Result<LoginOutcome, UserError>> {
        let (account, password) = (account.clone(), password.clone());
        Box::pin(async move { self.login().check_password(&account, &password).await })
    }

    fn qr_login(
        &self,
        account: &AccountHandle,
        progress: Arc<dyn QrProgress>,
    ) -> BoxFuture<'_, Result<LoginOutcome, UserError>> {
        let account = account.clone();
        Box::pin(async move { self.login().qr_login(&account, progress).await })
    }

    fn connect(
        &self,
        account: &AccountHandle,
        scope: CollectScope,
    ) -> BoxFuture<'_, Result<(Arc<dyn Connection>, Profile), UserError>> {
        let account = account.clone();
        Box::pin(async move { self.open(&account, scope).await })
    }

    fn log_out(&self, account: &AccountHandle) -> BoxFuture<'_, Result<(), UserError>> {
        let account = account.clone();
        Box::pin(async move { self.login().log_out(&account).await })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::session::tests::MemoryVault;
    use crm_core::ids::AccountId;
    use crm_core::personal::AppCredentials;
    use grammers_mtsender::{InvocationError, RetryContext, RpcError};
    use std::num::NonZeroU32;
    use std::ops::ControlFlow;

    fn account() -> AccountHandle {
        AccountHandle {
            account_id: AccountId(7),
            phone_number: "+15550001".into(),
            credentials: AppCredentials {
                api_id: 1,
                api_hash: Sensitive("hash".into()),
            },
        }
    }

    fn gateway(vault: Arc<MemoryVault>) -> GrammersGateway {
        // A closed local port: nothing here may reach the network.
        GrammersGateway::new(
            vault,
            GatewaySettings {
                dc_override: Some("127.0.0.1:9".parse().unwrap()),
                ..GatewaySettings::default()
            },
        )
    }

    #[tokio::test]
    async fn connecting_without_a_logged_in_session_is_a_revoked_session() {
        let vault = Arc::new(MemoryVault::default());
        let result = gateway(vault.clone())
            .connect(&account(), CollectScope::default())
            .await;
        assert!(matches!(result, Err(UserError::SessionRevoked)));
        assert!(
            vault.bytes(AccountId(7)).is_none(),
            "a failed connect writes nothing"
        );
    }

    #[tokio::test]
    async fn login_steps_out_of_order_are_refused_before_any_network() {
        let vault = Arc::new(MemoryVault::default());
        let gateway = gateway(vault);
        let hash = Sensitive("h".into());
        assert!(matches!(
            gateway.sign_in(&account(), &hash, "12345").await,
            Err(UserError::LoginNotStarted(_))
        ));
        assert!(matches!(
            gateway.check_password(&account(), &Sensitive("pw".into())).await,
            Err(UserError::LoginNotStarted(_))
        ));
        assert!(matches!(
            gateway.resend_code(&account(), &hash).await,
            Err(UserError::LoginNotStarted(_))
        ));
    }

    #[tokio::test]
    async fn logging_out_without_a_key_just_forgets_the_session() {
        let vault = Arc::new(MemoryVault::default());
        DbSession::fresh(vault.clone(), AccountId(7), None)
            .save()
            .await
            .unwrap();
        assert!(vault.bytes(AccountId(7)).is_some());
        gateway(vault.clone()).log_out(&account()).await.unwrap();
        assert!(vault.bytes(AccountId(7)).is_none());
    }

    #[tokio::test]
    async fn a_new_login_replaces_the_old_session_before_reaching_telegram() {
        let vault = Arc::new(MemoryVault::default());
        let old = DbSession::fresh(vault.clone(), AccountId(7), None);
        let mut option = grammers_session::Session::dc_option(&old, 2).unwrap().unwrap();
        option.auth_key = Some([1; 256]);
        grammers_session::Session::set_dc_option(&old, &option)
            .await
            .unwrap();
        grammers_session::Session::cache_peer(
            &old,
            PeerInfo::User {
                id: 5,
                auth: None,
                bot: None,
                is_self: Some(true),
            },
        )
        .await
        .unwrap();
        old.flush().await.unwrap();

        // A port that was just closed: the connection is refused locally, nothing leaves the machine.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let gateway = GrammersGateway::new(
            vault.clone(),
            GatewaySettings {
                dc_override: Some(closed),
                ..GatewaySettings::default()
            },
        );
        let result = gateway.send_code(&account()).await;
        assert!(matches!(result, Err(UserError::Network(_))), "{result:?}");

        let stored = DbSession::load(vault, AccountId(7), None).await.unwrap();
        assert_eq!(stored.self_user().unwrap(), None);
        assert!(!stored.has_home_auth_key().unwrap());
    }

    fn retry(
        params: &ConnectionParams,
        error: InvocationError,
        fail_count: u32,
    ) -> ControlFlow<(), Duration> {
        params.retry_policy.should_retry(&RetryContext {
            fail_count: NonZeroU32::new(fail_count).unwrap(),
            slept_so_far: Duration::ZERO,
            error,
        })
    }

    #[test]
    fn flood_waits_reach_the_caller_and_an_io_error_is_retried_once() {
        let params = GatewaySettings::default().connection_params();
        for message in [
            "FLOOD_WAIT_1",
            "FLOOD_WAIT_42",
            "SLOWMODE_WAIT_5",
            "FLOOD_WAIT_3600",
        ] {
            let flood = InvocationError::Rpc(RpcError::from(tl::types::RpcError {
                error_code: 420,
                error_message: message.to_owned(),
            }));
            assert_eq!(retry(&params, flood, 1), ControlFlow::Break(()), "{message}");
        }
        let io = || InvocationError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(matches!(retry(&params, io(), 1), ControlFlow::Continue(_)));
        assert_eq!(retry(&params, io(), 2), ControlFlow::Break(()));
        let other = InvocationError::Rpc(RpcError::from(tl::types::RpcError {
            error_code: 400,
            error_message: "PEER_ID_INVALID".to_owned(),
        }));
        assert_eq!(retry(&params, other, 1), ControlFlow::Break(()));
    }

    #[test]
    fn settings_debug_and_ipv6_override() {
        let settings = GatewaySettings {
            dc_override: Some("[::1]:443".parse().unwrap()),
            ..GatewaySettings::default()
        };
        assert!(settings.connection_params().use_ipv6);
        assert!(!GatewaySettings::default().connection_params().use_ipv6);
        assert_eq!(
            GatewaySettings::default().timeouts(),
            Timeouts {
                request: Duration::from_secs(60),
                transfer: Duration::from_secs(600),
            }
        );
        assert!(format!("{settings:?}").contains("dc_override"));
    }
}

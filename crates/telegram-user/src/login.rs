//! The login flows (phone code, cloud password, QR code) and log-out, each over a short-lived client.
//!
//! Every step is a raw request over the session stored in the vault, so whichever instance holds that session
//! can finish a login another one started (grammers' own `LoginToken` cannot be stored). A login starts from a
//! fresh session, so an earlier account's auth key is never reused.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use crm_core::personal::{
    AccountHandle, CodeSent, LoginOutcome, QrProgress, QrToken, SessionVault, UserError,
};
use crm_core::secrets::Sensitive;
use grammers_mtsender::InvocationError;
use grammers_session::Session as _;
use grammers_session::types::{PeerAuth, PeerInfo, UpdateState, UpdatesState};
use grammers_session::updates::UpdatesLike;
use grammers_tl_types as tl;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::errors::map_invocation_error;
use crate::gateway::GatewaySettings;
use crate::mapping::profile_from_user;
use crate::pool::Pool;
use crate::session::DbSession;

/// How often a QR login asks Telegram whether the token was accepted, besides listening for the update.
const QR_POLL: Duration = Duration::from_secs(2);

/// The delivery name of a sent code.
pub fn sent_code_type_name(kind: &tl::enums::auth::SentCodeType) -> &'static str {
    use tl::enums::auth::SentCodeType as T;
    match kind {
        T::App(_) => "APP",
        T::Sms(_) | T::FirebaseSms(_) | T::SmsWord(_) | T::SmsPhrase(_) => "SMS",
        T::Call(_) => "CALL",
        T::FlashCall(_) => "FLASH_CALL",
        T::MissedCall(_) => "MISSED_CALL",
        T::EmailCode(_) | T::SetUpEmailRequired(_) => "EMAIL",
        T::FragmentSms(_) => "FRAGMENT_SMS",
    }
}

/// The delivery name of the next code type.
pub fn code_type_name(kind: &tl::enums::auth::CodeType) -> &'static str {
    use tl::enums::auth::CodeType as T;
    match kind {
        T::Sms => "SMS",
        T::Call => "CALL",
        T::FlashCall => "FLASH_CALL",
        T::MissedCall => "MISSED_CALL",
        T::FragmentSms => "FRAGMENT_SMS",
    }
}

/// What the caller learns of a sent code.
pub fn code_sent(code: &tl::types::auth::SentCode) -> CodeSent {
    CodeSent {
        phone_code_hash: Sensitive(code.phone_code_hash.clone()),
        code_type: sent_code_type_name(&code.r#type).to_owned(),
        next_type: code
            .next_type
            .as_ref()
            .map(|kind| code_type_name(kind).to_owned()),
        timeout: code.timeout,
    }
}

/// The `tg://login` URL of a QR login token (base64url without padding).
pub fn qr_login_url(token: &[u8]) -> String {
    format!("tg://login?token={}", URL_SAFE_NO_PAD.encode(token))
}

/// How long before its expiry a shown QR token is replaced by a newer one.
const QR_REFRESH_MARGIN: Duration = Duration::from_secs(3);

/// Whether a freshly exported token should replace the one on screen: only when it differs and the shown one
/// is about to expire, so the code does not change under the owner's camera at every poll.
fn should_show(shown: Option<&QrToken>, fresh: &QrToken, now: DateTime<Utc>) -> bool {
    match shown {
        None => true,
        Some(shown) if shown.login_url == fresh.login_url => false,
        Some(shown) => {
            let margin = chrono::Duration::from_std(QR_REFRESH_MARGIN).unwrap_or_default();
            now + margin >= shown.expires_at
        }
    }
}

/// Whether raw updates carry `updateLoginToken` (the QR code was scanned).
fn is_login_token(updates: &UpdatesLike) -> bool {
    let has = |list: &[tl::enums::Update]| {
        list.iter()
            .any(|update| matches!(update, tl::enums::Update::LoginToken))
    };
    match updates {
        UpdatesLike::Updates(tl::enums::Updates::UpdateShort(short)) => {
            matches!(short.update, tl::enums::Update::LoginToken)
        }
        UpdatesLike::Updates(tl::enums::Updates::Updates(all)) => has(&all.updates),
        UpdatesLike::Updates(tl::enums::Updates::Combined(all)) => has(&all.updates),
        _ => false,
    }
}

/// The SRP answer to the account's password challenge, refusing the parameters grammers would panic on.
pub fn password_check(
    password: &tl::types::account::Password,
    secret: &[u8],
) -> Result<tl::types::InputCheckPasswordSrp, UserError> {
    let invalid =
        |what: &str| UserError::Other(format!("Telegram sent unusable password parameters ({what})"));
    if !password.has_password {
        return Err(UserError::LoginNotStarted(
            "this account has no cloud password".to_owned(),
        ));
    }
    let algo = match &password.current_algo {
        Some(tl::enums::PasswordKdfAlgo::Sha256Sha256Pbkdf2Hmacsha512iter100000Sha256ModPow(algo)) => algo,
        Some(tl::enums::PasswordKdfAlgo::Unknown) => return Err(invalid("unknown algorithm")),
        None => return Err(invalid("no algorithm")),
    };
    let srp_b = password.srp_b.as_ref().ok_or_else(|| invalid("no srp_B"))?;
    let srp_id = password.srp_id.ok_or_else(|| invalid("no srp_id"))?;
    // calculate_2fa pads these to 256 bytes and check_p_and_g panics on a generator outside 2..=7.
    if srp_b.len() > 256 || password.secure_random.len() > 256 || algo.p.len() != 256 {
        return Err(invalid("sizes"));
    }
    if !(2..=7).contains(&algo.g) {
        return Err(invalid("generator"));
    }
    if !grammers_crypto::two_factor_auth::check_p_and_g(&algo.p, &algo.g) {
        return Err(invalid("prime"));
    }
    let (m1, g_a) = grammers_crypto::two_factor_auth::calculate_2fa(
        &algo.salt1,
        &algo.salt2,
        &algo.p,
        &algo.g,
        srp_b.clone(),
        password.secure_random.clone(),
        secret,
    );
    Ok(tl::types::InputCheckPasswordSrp {
        srp_id,
        a: g_a.to_vec(),
        m1: m1.to_vec(),
    })
}

/// The login flows of one gateway.
pub struct Login<'a> {
    /// Where sessions live.
    pub vault: &'a Arc<dyn SessionVault>,
    /// Connection settings.
    pub settings: &'a GatewaySettings,
}

/// A short-lived client over one session.
struct Attempt {
    session: Arc<DbSession>,
    pool: Pool,
}

impl Attempt {
    fn start(session: DbSession, account: &AccountHandle, settings: &GatewaySettings) -> Self {
        let session = Arc::new(session);
        let pool = Pool::start(Arc::clone(&session), account.credentials.api_id, settings);
        Self { session, pool }
    }

    async fn invoke<R: tl::RemoteCall>(&self, request: &R) -> Result<R::Return, InvocationError> {
        self.pool.invoke(request).await
    }

    /// Makes `dc_id` the home data centre, dropping the connection to the old one (as grammers does).
    async fn migrate(&self, dc_id: i32) -> Result<(), UserError> {
        let old = self.session.home_dc_id()?;
        self.pool.handle.disconnect_from_dc(old);
        self.session.set_home_dc_id(dc_id).await?;
        Ok(())
    }

    /// Invokes `request`, following one `*_MIGRATE_X` redirect to the account's data centre.
    async fn invoke_migrating<R: tl::RemoteCall>(&self, request: &R) -> Result<R::Return, UserError> {
        match self.invoke(request).await {
            Err(InvocationError::Rpc(error)) if error.code == 303 => {
                let dc_id = error
                    .value
                    .and_then(|value| i32::try_from(value).ok())
                    .ok_or_else(|| UserError::Other(error.name.clone()))?;
                self.migrate(dc_id).await?;
                self.invoke(request).await.map_err(|e| map_invocation_error(&e))
            }
            other => other.map_err(|e| map_invocation_error(&e)),
        }
    }

    /// Stops the client and saves what changed.
    async fn finish(self) -> Result<(), UserError> {
        self.pool.shutdown().await;
        self.session.flush().await?;
        Ok(())
    }

    /// Records the logged-in user and the update state, as grammers' private `complete_login` does.
    async fn complete(
        &self,
        authorization: tl::enums::auth::Authorization,
    ) -> Result<LoginOutcome, UserError> {
        let authorization = match authorization {
            tl::enums::auth::Authorization::Authorization(authorization) => authorization,
            // Third-party clients may not create accounts.
            tl::enums::auth::Authorization::SignUpRequired(_) => {
                return Err(UserError::PhoneUnoccupied);
            }
        };
        let tl::enums::User::User(user) = &authorization.user else {
            return Err(UserError::Other(
                "Telegram returned no user for the login".to_owned(),
            ));
        };
        self.session
            .cache_peer(PeerInfo::User {
                id: user.id,
                auth: user.access_hash.map(PeerAuth::from_hash),
                bot: Some(user.bot),
                is_self: Some(true),
            })
            .await?;
        // Without the state, the first connection asks for it; nothing is lost either way.
        if let Ok(tl::enums::updates::State::State(state)) =
            self.invoke(&tl::functions::updates::GetState {}).await
        {
            self.session
                .set_update_state(UpdateState::All(UpdatesState {
                    pts: state.pts,
                    qts: state.qts,
                    date: state.date,
                    seq: state.seq,
                    channels: Vec::new(),
                }))
                .await?;
        }
        self.session.save().await?;
        Ok(LoginOutcome::Authenticated(profile_from_user(user)))
    }

    async fn password_required(&self) -> Result<LoginOutcome, UserError> {
        let tl::enums::account::Password::Password(password) = self
            .invoke(&tl::functions::account::GetPassword {})
            .await
            .map_err(|e| map_invocation_error(&e))?;
        Ok(LoginOutcome::PasswordRequired {
            hint: password.hint.filter(|hint| !hint.is_empty()),
        })
    }
}

/// Stops the client of `attempt` whatever `result` is, then returns `result` (or the failure to save).
async fn finishing<T>(attempt: Attempt, result: Result<T, UserError>) -> Result<T, UserError> {
    let finished = attempt.finish().await;
    let value = result?;
    finished?;
    Ok(value)
}

impl Login<'_> {
    async fn stored(&self, account: &AccountHandle) -> Result<Attempt, UserError> {
        let session = DbSession::load(
            Arc::clone(self.vault),
            account.account_id,
            self.settings.dc_override,
        )
        .await?;
        if !session.has_home_auth_key()? {
            return Err(UserError::LoginNotStarted(
                "no login is in progress; request a code first".to_owned(),
            ));
        }
        self.settings.preshare(&session)?;
        Ok(Attempt::start(session, account, self.settings))
    }

    async fn fresh(&self, account: &AccountHandle) -> Result<Attempt, UserError> {
        let session = DbSession::fresh(
            Arc::clone(self.vault),
            account.account_id,
            self.settings.dc_override,
        );
        self.settings.preshare(&session)?;
        // Replaces the stored session at once, so no later step can pick up an older key.
        session.save().await?;
        Ok(Attempt::start(session, account, self.settings))
    }

    /// `auth.sendCode` over a fresh session.
    pub async fn send_code(&self, account: &AccountHandle) -> Result<CodeSent, UserError> {
        let attempt = self.fresh(account).await?;
        let request = tl::functions::auth::SendCode {
            phone_number: account.phone_number.clone(),
            api_id: account.credentials.api_id,
            api_hash: account.credentials.api_hash.0.clone(),
            settings: tl::types::CodeSettings {
                allow_flashcall: false,
                current_number: false,
                allow_app_hash: false,
                allow_missed_call: false,
                allow_firebase: false,
                unknown_number: false,
                logout_tokens: None,
                token: None,
                app_sandbox: None,
            }
            .into(),
        };
        let result = attempt.invoke_migrating(&request).await.and_then(sent_code);
        finishing(attempt, result).await
    }

    /// `auth.resendCode` over the stored session.
    pub async fn resend_code(
        &self,
        account: &AccountHandle,
        phone_code_hash: &Sensitive,
    ) -> Result<CodeSent, UserError> {
        let attempt = self.stored(account).await?;
        let request = tl::functions::auth::ResendCode {
            phone_number: account.phone_number.clone(),
            phone_code_hash: phone_code_hash.0.clone(),
            reason: None,
        };
        let result = attempt.invoke_migrating(&request).await.and_then(sent_code);
        finishing(attempt, result).await
    }

    /// `auth.signIn` with the code.
    pub async fn sign_in(
        &self,
        account: &AccountHandle,
        phone_code_hash: &Sensitive,
        code: &str,
    ) -> Result<LoginOutcome, UserError> {
        let attempt = self.stored(account).await?;
        let request = tl::functions::auth::SignIn {
            phone_number: account.phone_number.clone(),
            phone_code_hash: phone_code_hash.0.clone(),
            phone_code: Some(code.to_owned()),
            email_verification: None,
        };
        let result = match attempt.invoke(&request).await {
            Ok(authorization) => attempt.complete(authorization).await,
            Err(error) if error.is("SESSION_PASSWORD_NEEDED") => attempt.password_required().await,
            Err(error) => Err(map_invocation_error(&error)),
        };
        finishing(attempt, result).await
    }

    /// `auth.checkPassword` with the SRP answer for `password`.
    pub async fn check_password(
        &self,
        account: &AccountHandle,
        password: &Sensitive,
    ) -> Result<LoginOutcome, UserError> {
        let attempt = self.stored(account).await?;
        let result = check_password_with(&attempt, password).await;
        finishing(attempt, result).await
    }

    /// Runs a QR login to its end.
    pub async fn qr_login(
        &self,
        account: &AccountHandle,
        progress: Arc<dyn QrProgress>,
    ) -> Result<LoginOutcome, UserError> {
        let mut attempt = self.fresh(account).await?;
        let updates = attempt.pool.take_updates();
        let result = run_qr(&attempt, account, progress.as_ref(), updates).await;
        finishing(attempt, result).await
    }

    /// `auth.logOut`, then forgets the session. A session Telegram already dropped is simply forgotten.
    pub async fn log_out(&self, account: &AccountHandle) -> Result<(), UserError> {
        let session = DbSession::load(
            Arc::clone(self.vault),
            account.account_id,
            self.settings.dc_override,
        )
        .await?;
        if session.has_home_auth_key()? {
            self.settings.preshare(&session)?;
            let attempt = Attempt::start(session, account, self.settings);
            let result = attempt.invoke(&tl::functions::auth::LogOut {}).await;
            // Stop the runner before clearing, so it cannot save the session again afterwards.
            attempt.pool.shutdown().await;
            match result.map_err(|e| map_invocation_error(&e)) {
                Ok(_) | Err(UserError::SessionRevoked | UserError::Banned) => {}
                Err(other) => return Err(other),
            }
        }
        self.vault
            .clear(account.account_id)
            .await
            .map_err(|e| UserError::Other(format!("session vault: {e}")))
    }
}

fn sent_code(answer: tl::enums::auth::SentCode) -> Result<CodeSent, UserError> {
    match answer {
        tl::enums::auth::SentCode::Code(code) => Ok(code_sent(&code)),
        tl::enums::auth::SentCode::Success(_) => Err(UserError::Other(
            "Telegram logged in without a code; request a new one".to_owned(),
        )),
        tl::enums::auth::SentCode::PaymentRequired(_) => Err(UserError::Other(
            "Telegram asks for a payment to send the login code".to_owned(),
        )),
    }
}

async fn check_password_with(attempt: &Attempt, password: &Sensitive) -> Result<LoginOutcome, UserError> {
    let tl::enums::account::Password::Password(challenge) = attempt
        .invoke(&tl::functions::account::GetPassword {})
        .await
        .map_err(|e| map_invocation_error(&e))?;
    let secret = password.0.clone();
    // The key derivation (100 000 PBKDF2 rounds) and the prime check are CPU work.
    let srp = tokio::task::spawn_blocking(move || password_check(&challenge, secret.as_bytes()))
        .await
        .map_err(|e| UserError::Other(format!("password check failed: {e}")))??;
    let request = tl::functions::auth::CheckPassword {
        password: tl::enums::InputCheckPasswordSrp::Srp(srp),
    };
    match attempt.invoke(&request).await {
        Ok(authorization) => attempt.complete(authorization).await,
        Err(error) => Err(map_invocation_error(&error)),
    }
}

fn expiry(expires: i32) -> DateTime<Utc> {
    DateTime::from_timestamp(i64::from(expires), 0).unwrap_or_else(Utc::now)
}

/// Waits up to `timeout` for `updateLoginToken`.
async fn wait_for_scan(updates: &mut Option<mpsc::Receiver<UpdatesLike>>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let Some(receiver) = updates.as_mut() else {
        tokio::time::sleep_until(deadline).await;
        return;
    };
    loop {
        match tokio::time::timeout_at(deadline, receiver.recv()).await {
            Ok(Some(received)) if is_login_token(&received) => return,
            Ok(Some(_)) => {}
            Ok(None) => {
                *updates = None;
                tokio::time::sleep_until(deadline).await;
                return;
            }
            Err(_) => return,
        }
    }
}

async fn run_qr(
    attempt: &Attempt,
    account: &AccountHandle,
    progress: &dyn QrProgress,
    mut updates: Option<mpsc::Receiver<UpdatesLike>>,
) -> Result<LoginOutcome, UserError> {
    let export = tl::functions::auth::ExportLoginToken {
        api_id: account.credentials.api_id,
        api_hash: account.credentials.api_hash.0.clone(),
        except_ids: Vec::new(),
    };
    let mut shown: Option<QrToken> = None;
    let mut answer = attempt.invoke(&export).await;
    loop {
        let token = match answer {
            Err(error) if error.is("SESSION_PASSWORD_NEEDED") => return attempt.password_required().await,
            Err(error) => return Err(map_invocation_error(&error)),
            Ok(token) => token,
        };
        match token {
            tl::enums::auth::LoginToken::Token(token) => {
                let fresh = QrToken {
                    login_url: qr_login_url(&token.token),
                    expires_at: expiry(token.expires),
                };
                if should_show(shown.as_ref(), &fresh, Utc::now()) {
                    progress.token(fresh.clone());
                    shown = Some(fresh);
                }
                wait_for_scan(&mut updates, QR_POLL).await;
                answer = attempt.invoke(&export).await;
            }
            tl::enums::auth::LoginToken::MigrateTo(migrate) => {
                attempt.migrate(migrate.dc_id).await?;
                answer = match attempt
                    .invoke(&tl::functions::auth::ImportLoginToken { token: migrate.token })
                    .await
                {
                    Ok(tl::enums::auth::LoginToken::MigrateTo(_)) => {
                        return Err(UserError::Other(
                            "Telegram redirected the QR login twice".to_owned(),
                        ));
                    }
                    other => other,
                };
            }
            tl::enums::auth::LoginToken::Success(success) => {
                return attempt.complete(success.authorization).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn qr_urls_are_base64url_without_padding() {
        assert_eq!(qr_login_url(&[0xfb, 0xff, 0xfe]), "tg://login?token=-__-");
        assert_eq!(qr_login_url(b"ab"), "tg://login?token=YWI");
    }

    #[test]
    fn a_shown_qr_code_is_replaced_only_near_its_expiry() {
        let now = Utc::now();
        let token = |url: &str, seconds: i64| QrToken {
            login_url: url.to_owned(),
            expires_at: now + chrono::Duration::seconds(seconds),
        };
        assert!(should_show(None, &token("a", 30), now));
        assert!(!should_show(Some(&token("a", 30)), &token("a", 30), now));
        assert!(!should_show(Some(&token("a", 20)), &token("b", 30), now));
        assert!(should_show(Some(&token("a", 2)), &token("b", 30), now));
        assert!(should_show(Some(&token("a", -5)), &token("b", 30), now));
    }

    #[test]
    fn code_types_have_stable_names() {
        use tl::enums::auth::SentCodeType as T;
        let cases: Vec<(T, &str)> = vec![
            (tl::types::auth::SentCodeTypeApp { length: 5 }.into(), "APP"),
            (tl::types::auth::SentCodeTypeSms { length: 5 }.into(), "SMS"),
            (tl::types::auth::SentCodeTypeCall { length: 5 }.into(), "CALL"),
            (
                tl::types::auth::SentCodeTypeFlashCall { pattern: "x".into() }.into(),
                "FLASH_CALL",
            ),
            (
                tl::types::auth::SentCodeTypeMissedCall {
                    prefix: "+1".into(),
                    length: 4,
                }
                .into(),
                "MISSED_CALL",
            ),
            (
                tl::types::auth::SentCodeTypeSetUpEmailRequired {
                    apple_signin_allowed: false,
                    google_signin_allowed: false,
                }
                .into(),
                "EMAIL",
            ),
            (
                tl::types::auth::SentCodeTypeFragmentSms {
                    url: "https://fragment.com".into(),
                    length: 5,
                }
                .into(),
                "FRAGMENT_SMS",
            ),
            (
                tl::types::auth::SentCodeTypeSmsWord { beginning: None }.into(),
                "SMS",
            ),
        ];
        for (kind, name) in cases {
            assert_eq!(sent_code_type_name(&kind), name);
        }
        assert_eq!(code_type_name(&tl::enums::auth::CodeType::Call), "CALL");
        assert_eq!(
            code_type_name(&tl::enums::auth::CodeType::FragmentSms),
            "FRAGMENT_SMS"
        );

        let sent = code_sent(&tl::types::auth::SentCode {
            r#type: tl::types::auth::SentCodeTypeApp { length: 5 }.into(),
            phone_code_hash: "hash".into(),
            next_type: Some(tl::enums::auth::CodeType::Sms),
            timeout: Some(60),
        });
        assert_eq!(sent.phone_code_hash, Sensitive("hash".into()));
        assert_eq!(sent.code_type, "APP");
        assert_eq!(sent.next_type.as_deref(), Some("SMS"));
        assert_eq!(sent.timeout, Some(60));
    }

    fn challenge() -> tl::types::account::Password {
        tl::types::account::Password {
            has_recovery: false,
            has_secure_values: false,
            has_password: true,
            current_algo: Some(
                tl::types::PasswordKdfAlgoSha256Sha256Pbkdf2Hmacsha512iter100000Sha256ModPow {
                    salt1: vec![1],
                    salt2: vec![2],
                    g: 3,
                    p: vec![7; 256],
                }
                .into(),
            ),
            srp_b: Some(vec![5; 256]),
            srp_id: Some(9),
            hint: None,
            email_unconfirmed_pattern: None,
            new_algo: tl::enums::PasswordKdfAlgo::Unknown,
            new_secure_algo: tl::enums::SecurePasswordKdfAlgo::Unknown,
            secure_random: vec![3; 256],
            pending_reset_date: None,
            login_email_pattern: None,
        }
    }

    #[test]
    fn password_parameters_grammers_would_panic_on_are_refused() {
        let mut no_algo = challenge();
        no_algo.current_algo = None;
        let mut unknown = challenge();
        unknown.current_algo = Some(tl::enums::PasswordKdfAlgo::Unknown);
        let mut no_b = challenge();
        no_b.srp_b = None;
        let mut no_id = challenge();
        no_id.srp_id = None;
        let mut long_b = challenge();
        long_b.srp_b = Some(vec![1; 300]);
        let mut bad_g = challenge();
        bad_g.current_algo = Some(
            tl::types::PasswordKdfAlgoSha256Sha256Pbkdf2Hmacsha512iter100000Sha256ModPow {
                salt1: vec![],
                salt2: vec![],
                g: 11,
                p: vec![7; 256],
            }
            .into(),
        );
        for (case, name) in [
            (no_algo, "no algo"),
            (unknown, "unknown"),
            (no_b, "no srp_B"),
            (no_id, "no srp_id"),
            (long_b, "long srp_B"),
            (bad_g, "bad g"),
        ] {
            assert!(
                matches!(password_check(&case, b"pw"), Err(UserError::Other(_))),
                "{name}"
            );
        }
        let mut none = challenge();
        none.has_password = false;
        assert!(matches!(
            password_check(&none, b"pw"),
            Err(UserError::LoginNotStarted(_))
        ));
    }

    #[test]
    fn only_login_token_updates_end_the_wait() {
        let short = |update: tl::enums::Update| {
            UpdatesLike::Updates(tl::types::UpdateShort { update, date: 1 }.into())
        };
        assert!(is_login_token(&short(tl::enums::Update::LoginToken)));
        assert!(!is_login_token(&short(tl::enums::Update::Config)));
        assert!(!is_login_token(&UpdatesLike::ConnectionClosed));
    }
}

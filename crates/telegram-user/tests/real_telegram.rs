//! Opt-in smoke test of [`GrammersGateway`] against the real Telegram. It is `#[ignore]`d, so a plain
//! `cargo test` reports it as ignored; it runs with `--ignored` and then needs `CRM_TG_API_ID`,
//! `CRM_TG_API_HASH` (from <https://my.telegram.org>) and `CRM_TG_PHONE` (`+` and digits), failing with their
//! names when one is missing. Use a test account you own: every first step makes Telegram send a login code,
//! and too many requests earn a flood wait.
//!
//! Logging in takes two runs, because the code arrives only after the first one.
//!
//! 1. Request a code:
//!
//!    ```sh
//!    CRM_TG_API_ID=12345 CRM_TG_API_HASH=0123… CRM_TG_PHONE=+491701234567 \
//!      cargo test -p crm-telegram-user --test real_telegram -- --ignored --nocapture
//!    ```
//!
//!    This asserts that Telegram answered with a delivery type and prints the `phone_code_hash` to stderr. Treat
//!    that hash as a secret of the test account. Telegram binds it to the auth key of the session that asked for
//!    the code, so the session is kept for the second run in a file: `CRM_TG_SESSION_FILE`, by default
//!    `real_telegram.session` under cargo's target temporary directory. The file is not encrypted (it holds an
//!    auth key, not logged in yet); a successful second run deletes it.
//!
//! 2. Sign in with the code that arrived, within a few minutes and with the same session file:
//!
//!    ```sh
//!    CRM_TG_API_ID=12345 CRM_TG_API_HASH=0123… CRM_TG_PHONE=+491701234567 \
//!      CRM_TG_PHONE_CODE_HASH=<printed hash> CRM_TG_CODE=12345 [CRM_TG_PASSWORD=<cloud password>] \
//!      cargo test -p crm-telegram-user --test real_telegram -- --ignored --nocapture
//!    ```
//!
//!    This signs in (with the cloud password when the account has one), connects, prints the profile, then logs
//!    the session out again and deletes the session file, so no authorisation is left behind. Should it fail
//!    after signing in, the session lived only in this test's memory: end it in Telegram under
//!    Settings → Devices.
//!
//! Telegram's test data centres are not used: `GatewaySettings::default()` reaches the production ones.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crm_core::ids::AccountId;
use crm_core::personal::{
    AccountHandle, AppCredentials, BoxFuture, CollectScope, LoginOutcome, SessionVault, UserGateway,
};
use crm_core::secrets::Sensitive;
use crm_telegram_user::{GatewaySettings, GrammersGateway};

/// The account id the sessions are kept under; any number does, the vault is this test's own.
const ACCOUNT_ID: AccountId = AccountId(1);
/// Longest wait for one answer from Telegram.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// An in-memory [`SessionVault`], seeded from and saved to the session file between the two runs.
#[derive(Default)]
struct MemoryVault {
    sessions: Mutex<HashMap<AccountId, Vec<u8>>>,
}

impl MemoryVault {
    fn get(&self) -> Option<Vec<u8>> {
        self.sessions.lock().unwrap().get(&ACCOUNT_ID).cloned()
    }

    fn put(&self, session: Vec<u8>) {
        self.sessions.lock().unwrap().insert(ACCOUNT_ID, session);
    }
}

impl SessionVault for MemoryVault {
    fn load(&self, account_id: AccountId) -> BoxFuture<'_, Result<Option<Vec<u8>>, String>> {
        let session = self.sessions.lock().unwrap().get(&account_id).cloned();
        Box::pin(async move { Ok(session) })
    }

    fn save(&self, account_id: AccountId, session: Vec<u8>) -> BoxFuture<'_, Result<(), String>> {
        self.sessions.lock().unwrap().insert(account_id, session);
        Box::pin(async { Ok(()) })
    }

    fn clear(&self, account_id: AccountId) -> BoxFuture<'_, Result<(), String>> {
        self.sessions.lock().unwrap().remove(&account_id);
        Box::pin(async { Ok(()) })
    }
}

fn variable(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.trim().is_empty())
}

fn session_file() -> PathBuf {
    variable("CRM_TG_SESSION_FILE").map_or_else(
        || PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("real_telegram.session"),
        PathBuf::from,
    )
}

async fn within<T>(what: &str, step: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP_TIMEOUT, step)
        .await
        .unwrap_or_else(|_| panic!("Telegram did not answer {what} within {STEP_TIMEOUT:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "contacts the real Telegram with your test account: run with --ignored and CRM_TG_API_ID, \
            CRM_TG_API_HASH, CRM_TG_PHONE set (see the top of tests/real_telegram.rs)"]
async fn login_against_real_telegram() {
    let (Some(api_id), Some(api_hash), Some(phone)) = (
        variable("CRM_TG_API_ID"),
        variable("CRM_TG_API_HASH"),
        variable("CRM_TG_PHONE"),
    ) else {
        panic!(
            "set CRM_TG_API_ID, CRM_TG_API_HASH and CRM_TG_PHONE to run this against the real Telegram \
             (see the comment at the top of tests/real_telegram.rs)"
        );
    };
    let account = AccountHandle {
        account_id: ACCOUNT_ID,
        phone_number: phone,
        credentials: AppCredentials {
            api_id: api_id.trim().parse().expect("CRM_TG_API_ID is a number"),
            api_hash: Sensitive(api_hash.trim().to_owned()),
        },
    };
    let vault = Arc::new(MemoryVault::default());
    let gateway = GrammersGateway::new(vault.clone(), GatewaySettings::default());
    let file = session_file();

    let Some(code) = variable("CRM_TG_CODE") else {
        let sent = within("the code request", gateway.send_code(&account))
            .await
            .expect("Telegram sends a login code");
        let known = [
            "APP",
            "SMS",
            "CALL",
            "FLASH_CALL",
            "MISSED_CALL",
            "EMAIL",
            "FRAGMENT_SMS",
        ];
        assert!(known.contains(&sent.code_type.as_str()), "{sent:?}");
        assert!(
            !sent.phone_code_hash.0.is_empty(),
            "Telegram names the code request"
        );
        std::fs::write(&file, vault.get().expect("the login session is saved")).unwrap();
        println!(
            "code sent by {} (next: {:?}, resend after {:?} s)",
            sent.code_type, sent.next_type, sent.timeout
        );
        eprintln!(
            "phone_code_hash (a secret of the test account, only for the second run): {}\n\
             session kept in {} for the second run; now run again with CRM_TG_PHONE_CODE_HASH and CRM_TG_CODE",
            sent.phone_code_hash.0,
            file.display()
        );
        return;
    };

    let phone_code_hash = Sensitive(
        variable("CRM_TG_PHONE_CODE_HASH")
            .expect("CRM_TG_CODE needs CRM_TG_PHONE_CODE_HASH, printed by the first run"),
    );
    let stored = std::fs::read(&file).unwrap_or_else(|error| {
        panic!(
            "CRM_TG_CODE needs the session of the first run in {}: {error}",
            file.display()
        )
    });
    vault.put(stored);
    let outcome = within(
        "the code",
        gateway.sign_in(&account, &phone_code_hash, code.trim()),
    )
    .await
    .expect("Telegram accepts the code");
    let outcome = match outcome {
        LoginOutcome::PasswordRequired { hint } => {
            let password = variable("CRM_TG_PASSWORD").unwrap_or_else(|| {
                panic!(
                    "the account has a cloud password (hint: {hint:?}); set CRM_TG_PASSWORD and run the second step \
                     again, or start over from the first if Telegram refuses the code then"
                )
            });
            within(
                "the password",
                gateway.check_password(&account, &Sensitive(password)),
            )
            .await
            .expect("Telegram accepts the cloud password")
        }
        authenticated => authenticated,
    };
    let LoginOutcome::Authenticated(signed_in) = outcome else {
        panic!("the login did not finish: {outcome:?}");
    };
    println!("signed in: {signed_in:?}");

    let (connection, profile) = within(
        "the connection",
        gateway.connect(&account, CollectScope::default()),
    )
    .await
    .expect("the signed-in session connects");
    println!("connected as: {profile:?}");
    assert_eq!(profile.telegram_user_id, signed_in.telegram_user_id);
    within("a ping", connection.ping())
        .await
        .expect("the connection answers");
    // Closing saves the session before it returns (dropping would save it in the background, which could land
    // after the log-out and store the session again).
    within("closing the connection", connection.close()).await;
    drop(connection);
    within("the log-out", gateway.log_out(&account))
        .await
        .expect("the session logs out");
    assert!(vault.get().is_none(), "a logged-out session is forgotten");
    std::fs::remove_file(&file).unwrap();
}

//! Stored objects tests start from, created directly in the database.

use crm_core::account::Account;
use crm_core::account::{AccountStatus, AccountType};
use crm_core::secrets::Sensitive;
use crm_store::Store;
use crm_store::repo::accounts::{NewAccount, create};

/// An active bot account named `name` with this token (optional) and webhook secret; its own Telegram id is
/// the token's numeric part.
pub async fn bot_account(store: &Store, name: &str, token: Option<&str>, secret: Option<&str>) -> Account {
    bot_account_with_status(store, name, token, secret, AccountStatus::Active).await
}

/// Like [`bot_account`], in a given status.
pub async fn bot_account_with_status(
    store: &Store,
    name: &str,
    token: Option<&str>,
    secret: Option<&str>,
    status: AccountStatus,
) -> Account {
    let telegram_user_id = token
        .and_then(|t| t.split(':').next())
        .and_then(|id| id.parse().ok());
    create(
        store,
        NewAccount {
            name: name.to_owned(),
            account_type: AccountType::Bot,
            status,
            phone_number: None,
            api_id: None,
            api_hash: None,
            session: None,
            bot_token: token.map(|t| Sensitive(t.to_owned())),
            bot_username: Some(format!("{}_bot", name.to_lowercase().replace(' ', "_"))),
            webhook_secret: secret.map(|s| Sensitive(s.to_owned())),
            telegram_user_id,
            forward_url: None,
        },
    )
    .await
    .expect("bot account stored")
}

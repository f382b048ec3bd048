//! Forwarding a bot's updates, unchanged, to the bot's existing backend (`forward_url`), with the bot's webhook
//! secret in Telegram's header, retried until that backend answers 2xx. The URL may carry a token of its own,
//! so it never appears in logs or job errors.

use std::sync::Arc;
use std::time::Duration;

use crm_core::ids::AccountId;
use crm_core::ports::Accounts;
use crm_telegram_bot::webhook::SECRET_HEADER;
use serde_json::Value;

use crate::runner::JobOutcome;

/// Hands updates to existing bot backends.
pub struct Forwarder {
    accounts: Arc<dyn Accounts>,
    http: reqwest::Client,
}

impl Forwarder {
    /// A forwarder with its own HTTP client (10 s per attempt), reading webhook secrets through `accounts`.
    pub fn new(accounts: Arc<dyn Accounts>) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.without_url().to_string())?;
        Ok(Self { accounts, http })
    }

    /// Posts `update` of bot `account_id` to `url`.
    pub async fn forward(&self, account_id: AccountId, url: &str, update: &Value) -> JobOutcome {
        let secrets = match self.accounts.find(account_id).await {
            Ok(Some(_)) => match self.accounts.bot_secrets(account_id).await {
                Ok(secrets) => secrets,
                Err(error) => return JobOutcome::Retry(error.to_string()),
            },
            Ok(None) => return JobOutcome::Dead("the bot account no longer exists".into()),
            Err(error) => return JobOutcome::Retry(error.to_string()),
        };
        let mut request = self.http.post(url).json(update);
        if let Some(secret) = secrets.webhook_secret {
            request = request.header(SECRET_HEADER, secret.0);
        }
        match request.send().await {
            Ok(response) if response.status().is_success() => {
                tracing::debug!(account_id = %account_id, "update forwarded to the existing bot");
                JobOutcome::Done
            }
            Ok(response) => JobOutcome::Retry(format!("the existing bot answered {}", response.status())),
            Err(error) => JobOutcome::Retry(format!("forward failed: {}", error.without_url())),
        }
    }
}

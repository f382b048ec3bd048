//! Forwarding a bot's updates, unchanged, to the bot's existing backend (`forward_url`), with the bot's webhook
//! secret in Telegram's header, retried until that backend answers 2xx. The URL may carry a token of its own,
//! so it never appears in logs or job errors. Only public addresses are reached (checked again on every
//! resolution, so a name cannot be re-pointed at an internal address after it was accepted), unless the host
//! was allowed on purpose, and redirects are not followed.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crm_core::destinations::Destinations;
use crm_core::ids::AccountId;
use crm_core::ports::Accounts;
use crm_telegram_bot::webhook::SECRET_HEADER;
use serde_json::Value;

use crate::runner::JobOutcome;

/// Hands updates to existing bot backends.
pub struct Forwarder {
    accounts: Arc<dyn Accounts>,
    http: reqwest::Client,
    destinations: Arc<Destinations>,
}

/// Resolves names to their permitted addresses only.
struct PermittedAddresses(Arc<Destinations>);

impl reqwest::dns::Resolve for PermittedAddresses {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let destinations = Arc::clone(&self.0);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|address| destinations.address_permitted(&host, address.ip()))
                .collect();
            if addresses.is_empty() {
                return Err(format!("{host} has no public address (see FORWARD_ALLOWED_HOSTS)").into());
            }
            let addresses: reqwest::dns::Addrs = Box::new(addresses.into_iter());
            Ok(addresses)
        })
    }
}

impl Forwarder {
    /// A forwarder with its own HTTP client (10 s per attempt), reading webhook secrets through `accounts`, and
    /// reaching only what `destinations` permits.
    pub fn new(accounts: Arc<dyn Accounts>, destinations: Destinations) -> Result<Self, String> {
        let destinations = Arc::new(destinations);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(PermittedAddresses(Arc::clone(&destinations))))
            .build()
            .map_err(|e| e.without_url().to_string())?;
        Ok(Self {
            accounts,
            http,
            destinations,
        })
    }

    /// Posts `update` of bot `account_id` to `url`.
    pub async fn forward(&self, account_id: AccountId, url: &str, update: &Value) -> JobOutcome {
        // An address in the URL is not resolved, so the resolver cannot check it.
        let host = url::Url::parse(url)
            .ok()
            .and_then(|parsed| parsed.host_str().map(str::to_owned));
        if !host.is_some_and(|host| self.destinations.host_permitted(&host)) {
            return JobOutcome::Dead(
                "forward_url points to a local or private address that FORWARD_ALLOWED_HOSTS does not list"
                    .into(),
            );
        }
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

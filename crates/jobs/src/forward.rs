//! The `forward_update` job: hands every update a bot receives, unchanged, to the bot's existing backend
//! (`forward_url`), with the bot's webhook secret in Telegram's header, retrying until that backend answers 2xx.
//! The URL may carry a token of its own, so it never appears in logs or job errors.

use std::sync::Arc;
use std::time::Duration;

use crm_store::Store;
use crm_store::entity::accounts;
use crm_store::repo::accounts as account_repo;
use crm_store::repo::forwarding::FORWARD_UPDATE;
use crm_telegram_bot::webhook::SECRET_HEADER;
use sea_orm::EntityTrait;

use crate::runner::{BoxFuture, JobContext, JobError, JobHandler};

/// Forwards updates to existing bot backends.
pub struct ForwardUpdates {
    store: Store,
    http: reqwest::Client,
}

impl ForwardUpdates {
    /// A handler with its own HTTP client (10 s per attempt).
    pub fn new(store: Store) -> Result<Arc<Self>, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| e.without_url().to_string())?;
        Ok(Arc::new(Self { store, http }))
    }

    async fn forward(&self, job: JobContext) -> Result<(), JobError> {
        let (Some(account_id), Some(url), Some(update)) = (
            job.payload["account_id"].as_i64(),
            job.payload["url"].as_str(),
            job.payload.get("update"),
        ) else {
            return Err(JobError::Permanent(
                "forward_update job with a malformed payload".into(),
            ));
        };
        let account = accounts::Entity::find_by_id(account_id)
            .one(self.store.db())
            .await
            .map_err(|error| JobError::Retry(error.to_string()))?;
        let Some(account) = account else {
            return Err(JobError::Permanent("the bot account no longer exists".into()));
        };
        let secrets = account_repo::open_secrets(&self.store, &account)
            .map_err(|error| JobError::Retry(error.to_string()))?;
        let mut request = self.http.post(url).json(update);
        if let Some(secret) = secrets.webhook_secret {
            request = request.header(SECRET_HEADER, secret.0);
        }
        let response = request
            .send()
            .await
            .map_err(|error| JobError::Retry(format!("forward failed: {}", error.without_url())))?;
        let status = response.status();
        if status.is_success() {
            tracing::debug!(account_id, "update forwarded to the existing bot");
            return Ok(());
        }
        Err(JobError::Retry(format!("the existing bot answered {status}")))
    }
}

impl JobHandler for ForwardUpdates {
    fn kind(&self) -> &'static str {
        FORWARD_UPDATE
    }

    fn run(&self, job: JobContext) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(self.forward(job))
    }
}

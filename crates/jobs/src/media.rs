//! The `download_media` job: fetches a received file from Telegram (`getFile`, then the file URL of the same
//! Bot API base), decides its type from the bytes, and stores it under `DATA_DIR/media/` with a generated name.
//! Files over the Bot API's 20 MB limit are recorded as too large to download. Personal accounts download through
//! their live connection (the job is pinned to the instance holding it), up to their own limit.

use std::path::PathBuf;
use std::sync::Arc;

use crm_core::account::AccountType;
use crm_core::event::ChangeFeed;
use crm_core::personal::UserError;
use crm_store::Store;
use crm_store::entity::{accounts, chats, media_files, messages};
use crm_store::repo::accounts as account_repo;
use crm_store::repo::inbox::MAX_DOWNLOAD_BYTES;
use crm_store::repo::media::{self, DOWNLOAD_MEDIA, PENDING, StoredFile};
use crm_telegram_bot::{BotApi, BotApiError};

use crate::connected::ConnectedAccounts;
use crate::runner::{BoxFuture, JobContext, JobError, JobHandler};

/// Downloads received files.
pub struct DownloadMedia {
    store: Store,
    bot_api: BotApi,
    connected: ConnectedAccounts,
    personal_max_bytes: u64,
    media_dir: PathBuf,
    feed: Arc<dyn ChangeFeed>,
}

impl DownloadMedia {
    /// A handler downloading bots' files through `bot_api` and personal accounts' through their live connection
    /// in `connected` (up to `personal_max_bytes` unless a job asks for more), storing them under `media_dir`
    /// and reporting each outcome to `feed`.
    pub fn new(
        store: Store,
        bot_api: BotApi,
        connected: ConnectedAccounts,
        personal_max_bytes: u64,
        media_dir: PathBuf,
        feed: Arc<dyn ChangeFeed>,
    ) -> Arc<Self> {
        Arc::new(Self {
            store,
            bot_api,
            connected,
            personal_max_bytes,
            media_dir,
            feed,
        })
    }

    /// Downloads through a personal account's connection: `Ok(Err(size))` when the file is over the limit.
    async fn personal_bytes(
        &self,
        account: &accounts::Model,
        message: &messages::Model,
        chat: &chats::Model,
        max_bytes: u64,
    ) -> Result<Result<Vec<u8>, Option<i64>>, JobError> {
        let Some(connection) = self.connected.get(account.id) else {
            return Err(JobError::Retry(
                "the personal account is not connected on this instance".into(),
            ));
        };
        let Some(telegram_message_id) = message.telegram_message_id else {
            return Err(JobError::Permanent("the message has no Telegram id".into()));
        };
        match connection
            .download(chat.peer_id, telegram_message_id, max_bytes)
            .await
        {
            Ok(file) => Ok(Ok(file.bytes)),
            Err(UserError::PeerUnavailable(reason)) if reason.contains("larger than") => Ok(Err(None)),
            Err(UserError::FloodWait(wait)) => Err(JobError::RetryAt(
                chrono::Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default(),
                "Telegram asked to wait before downloading".into(),
            )),
            Err(error) if error.is_retryable() => Err(JobError::Retry(error.to_string())),
            Err(error) => Err(JobError::Permanent(error.to_string())),
        }
    }

    /// Tells connected users the file of a message changed state.
    async fn changed(&self, id: i64) {
        if let Ok(Some(row)) = media::find(&self.store, id).await
            && let Some(message_id) = row.message_id
        {
            self.feed.message_changed(message_id, false, None);
        }
    }

    async fn failed(&self, id: i64, reason: String) -> Result<(), JobError> {
        media::mark_failed(&self.store, id, &reason)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        self.changed(id).await;
        Err(JobError::Permanent(reason))
    }

    async fn too_large(&self, id: i64, size: Option<i64>) -> Result<(), JobError> {
        media::mark_too_large(&self.store, id, size)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        self.changed(id).await;
        tracing::info!(
            media_file_id = id,
            size,
            "file too large to download through the Bot API"
        );
        Ok(())
    }

    async fn download(&self, job: JobContext) -> Result<(), JobError> {
        let retry = |error: crm_store::StoreError| JobError::Retry(error.to_string());
        let Some(id) = job
            .payload
            .get("media_file_id")
            .and_then(serde_json::Value::as_i64)
        else {
            return Err(JobError::Permanent(
                "download_media job without media_file_id".into(),
            ));
        };
        let Some(row) = media::find(&self.store, id).await.map_err(retry)? else {
            return Ok(());
        };
        if row.status != PENDING {
            return Ok(());
        }
        let origin = match row.message_id {
            Some(message_id) => crm_store::repo::messages::origin(&self.store, message_id)
                .await
                .map_err(retry)?,
            None => None,
        };
        let Some(crm_store::repo::messages::Origin {
            message,
            chat,
            account,
        }) = origin
        else {
            return self
                .failed(id, "the message, chat or account no longer exists".into())
                .await;
        };
        let bytes = if account.account_type == AccountType::Personal.as_str() {
            let max_bytes = job
                .payload
                .get("max_bytes")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(self.personal_max_bytes);
            match self.personal_bytes(&account, &message, &chat, max_bytes).await {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(size)) => return self.too_large(id, size.or(row.file_size)).await,
                Err(JobError::Permanent(reason)) => return self.failed(id, reason).await,
                Err(JobError::Retry(reason)) if job.is_last_attempt() => {
                    return self.failed(id, reason).await;
                }
                Err(other) => return Err(other),
            }
        } else {
            match self.bot_bytes(&account, &row, &job).await? {
                Ok(bytes) => bytes,
                Err(size) => return self.too_large(id, size).await,
            }
        };
        self.keep(id, &bytes).await
    }

    /// Downloads through the Bot API: `Ok(Err(size))` when the file is over its limit.
    async fn bot_bytes(
        &self,
        account: &accounts::Model,
        row: &media_files::Model,
        job: &JobContext,
    ) -> Result<Result<Vec<u8>, Option<i64>>, JobError> {
        let retry = |error: crm_store::StoreError| JobError::Retry(error.to_string());
        let id = row.id;
        let (Some(token), Some(file_id)) = (
            account_repo::open_secrets(&self.store, account)
                .map_err(retry)?
                .bot_token,
            row.telegram_file_id.clone(),
        ) else {
            return self
                .failed(id, "no bot token or file id to download with".into())
                .await
                .map(|()| Err(None));
        };
        let outcome = async {
            let info = self.bot_api.get_file(&token.0, &file_id).await?;
            let size = info.file_size.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
            if size.is_some_and(|s| s > MAX_DOWNLOAD_BYTES) {
                return Ok(Err(size));
            }
            let path = info
                .file_path
                .ok_or_else(|| BotApiError::Invalid("getFile returned no file_path".into()))?;
            let limit = u64::try_from(MAX_DOWNLOAD_BYTES).unwrap_or(u64::MAX);
            self.bot_api.download(&token.0, &path, limit).await.map(Ok)
        }
        .await;
        match outcome {
            Ok(Ok(bytes)) => Ok(Ok(bytes)),
            Ok(Err(size)) => Ok(Err(size)),
            Err(BotApiError::Rejected(_, description)) if description.contains("too big") => {
                Ok(Err(row.file_size))
            }
            Err(BotApiError::Invalid(description)) if description.contains("larger than") => {
                Ok(Err(row.file_size))
            }
            Err(error) if error.is_transient() && !job.is_last_attempt() => {
                Err(JobError::Retry(error.to_string()))
            }
            Err(error) => self.failed(id, error.to_string()).await.map(|()| Err(None)),
        }
    }

    /// Stores downloaded bytes under a generated name and records them.
    async fn keep(&self, id: i64, bytes: &[u8]) -> Result<(), JobError> {
        let retry = |error: crm_store::StoreError| JobError::Retry(error.to_string());
        let sniffed = crm_core::media::sniff(bytes);
        let storage_path = crm_store::files::store_file(&self.media_dir, bytes, &sniffed.extension)
            .await
            .map_err(|error| JobError::Retry(format!("cannot write the media file: {error}")))?;
        let stored = StoredFile {
            storage_path,
            content_type: sniffed.content_type,
            file_size: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
            sha256: crm_core::media::sha256_hex(bytes),
        };
        media::mark_stored(&self.store, id, stored).await.map_err(retry)?;
        self.changed(id).await;
        tracing::debug!(media_file_id = id, "media downloaded");
        Ok(())
    }
}

impl JobHandler for DownloadMedia {
    fn kind(&self) -> &'static str {
        DOWNLOAD_MEDIA
    }

    fn run(&self, job: JobContext) -> BoxFuture<'_, Result<(), JobError>> {
        Box::pin(self.download(job))
    }
}

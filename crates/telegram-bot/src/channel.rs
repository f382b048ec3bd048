//! The Bot API as core's [`ChannelGateway`] for bot accounts: sending (through [`crate::send`]), downloading a
//! received file (`getFile`, then the file itself, within the Bot API's 20 MB), and marking read, which bots do
//! not have. A bot send cannot be repeated safely: the Bot API has no idempotency key.

use std::sync::Arc;

use crm_core::account::Account;
use crm_core::ids::{PeerId, TelegramMessageId};
use crm_core::outbound::{
    ChannelGateway, DownloadError, DownloadedFile, FileLocation, OutgoingMessage, SendError, SendFuture,
};
use crm_core::ports::{Accounts, BoxFuture};
use crm_core::secrets::Sensitive;

use crate::client::{BotApi, BotApiError, MAX_DOWNLOAD_BYTES};

/// Bot accounts' channel.
pub struct BotChannel {
    api: BotApi,
    accounts: Arc<dyn Accounts>,
}

impl BotChannel {
    /// Calls `api` with each account's token, opened through `accounts`.
    pub fn new(api: BotApi, accounts: Arc<dyn Accounts>) -> Self {
        Self { api, accounts }
    }

    async fn token(&self, account: &Account) -> Result<Sensitive, String> {
        match self.accounts.bot_secrets(account.id).await {
            Ok(secrets) => secrets
                .token
                .ok_or_else(|| "the bot account has no token".to_owned()),
            Err(error) => Err(error.to_string()),
        }
    }
}

fn download_error(error: BotApiError, declared: Option<i64>) -> DownloadError {
    match error {
        BotApiError::Rejected(_, description) if description.contains("too big") => {
            DownloadError::TooLarge(declared)
        }
        BotApiError::RetryAfter(wait, description) => DownloadError::RetryAfter(wait, description),
        other if other.is_transient() => DownloadError::Transient(other.to_string()),
        other => DownloadError::Permanent(other.to_string()),
    }
}

impl ChannelGateway for BotChannel {
    fn repeats_safely(&self) -> bool {
        false
    }

    fn send<'a>(&'a self, account: &'a Account, message: OutgoingMessage, _random_id: i64) -> SendFuture<'a> {
        Box::pin(async move {
            let token = self.token(account).await.map_err(|reason| {
                if reason.contains("no token") {
                    SendError::Permanent(reason)
                } else {
                    SendError::Transient(reason)
                }
            })?;
            crate::send::send(&self.api, &token.0, message).await
        })
    }

    fn download<'a>(
        &'a self,
        account: &'a Account,
        file: FileLocation,
        max_bytes: u64,
    ) -> BoxFuture<'a, Result<DownloadedFile, DownloadError>> {
        Box::pin(async move {
            let token = self.token(account).await.map_err(DownloadError::Transient)?;
            let file_id = file
                .file_id
                .ok_or_else(|| DownloadError::Permanent("the file has no Bot API file id".into()))?;
            let limit = max_bytes.min(MAX_DOWNLOAD_BYTES);
            let info = self
                .api
                .get_file(&token.0, &file_id)
                .await
                .map_err(|error| download_error(error, None))?;
            let size = info.file_size.map(|s| i64::try_from(s).unwrap_or(i64::MAX));
            if info.file_size.is_some_and(|s| s > limit) {
                return Err(DownloadError::TooLarge(size));
            }
            let path = info
                .file_path
                .ok_or_else(|| DownloadError::Permanent("getFile returned no file_path".into()))?;
            let bytes = self
                .api
                .download(&token.0, &path, limit)
                .await
                .map_err(|error| match error {
                    BotApiError::Invalid(description) if description.contains("larger than") => {
                        DownloadError::TooLarge(size)
                    }
                    other => download_error(other, size),
                })?;
            Ok(DownloadedFile {
                bytes,
                file_name: None,
                mime_type: None,
            })
        })
    }

    fn mark_read<'a>(
        &'a self,
        _account: &'a Account,
        _peer_id: PeerId,
        _max_id: TelegramMessageId,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async { Ok(()) })
    }
}

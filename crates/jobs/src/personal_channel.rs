//! Personal accounts as core's [`ChannelGateway`]: calls go through the account's live MTProto connection on
//! this instance (jobs that need one are pinned to the instance holding the account). Repeating a send is safe:
//! every attempt carries the message's fixed `random_id`, and Telegram drops a repeat.

use crm_core::account::Account;
use crm_core::ids::{PeerId, TelegramMessageId};
use crm_core::outbound::{
    ChannelGateway, DownloadError, DownloadedFile, FileLocation, OutgoingMessage, SendError, SendFuture,
};
use crm_core::personal::UserError;
use crm_core::ports::BoxFuture;

use crate::connected::ConnectedAccounts;

/// Personal accounts' channel.
pub struct PersonalChannel {
    connected: ConnectedAccounts,
}

impl PersonalChannel {
    /// Calls through the live connections in `connected`.
    pub fn new(connected: ConnectedAccounts) -> Self {
        Self { connected }
    }
}

fn not_here() -> String {
    "the personal account is not connected on this instance".into()
}

impl ChannelGateway for PersonalChannel {
    fn repeats_safely(&self) -> bool {
        true
    }

    fn send<'a>(&'a self, account: &'a Account, message: OutgoingMessage, random_id: i64) -> SendFuture<'a> {
        Box::pin(async move {
            let connection = self
                .connected
                .get(account.id)
                .ok_or_else(|| SendError::Transient(not_here()))?;
            connection.send(message, random_id).await
        })
    }

    fn download<'a>(
        &'a self,
        account: &'a Account,
        file: FileLocation,
        max_bytes: u64,
    ) -> BoxFuture<'a, Result<DownloadedFile, DownloadError>> {
        Box::pin(async move {
            let connection = self
                .connected
                .get(account.id)
                .ok_or_else(|| DownloadError::Transient(not_here()))?;
            let message = file
                .telegram_message_id
                .ok_or_else(|| DownloadError::Permanent("the message has no Telegram id".into()))?;
            connection
                .download(file.peer_id, message, max_bytes)
                .await
                .map_err(|error| match error {
                    UserError::PeerUnavailable(reason) if reason.contains("larger than") => {
                        DownloadError::TooLarge(None)
                    }
                    UserError::FloodWait(wait) => {
                        DownloadError::RetryAfter(wait, "Telegram asked to wait before downloading".into())
                    }
                    error if error.is_retryable() => DownloadError::Transient(error.to_string()),
                    error => DownloadError::Permanent(error.to_string()),
                })
        })
    }

    fn mark_read<'a>(
        &'a self,
        account: &'a Account,
        peer_id: PeerId,
        max_id: TelegramMessageId,
    ) -> BoxFuture<'a, Result<(), SendError>> {
        Box::pin(async move {
            let connection = self
                .connected
                .get(account.id)
                .ok_or_else(|| SendError::Transient(not_here()))?;
            connection
                .mark_read(peer_id, max_id)
                .await
                .map_err(|error| match error {
                    UserError::FloodWait(wait) => SendError::RetryAfter(wait, error.to_string()),
                    error if error.is_retryable() => SendError::Transient(error.to_string()),
                    error => SendError::Permanent(error.to_string()),
                })
        })
    }
}

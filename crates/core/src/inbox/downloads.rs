//! Received files: the courier's download of a file (within the automatic limit of its account's kind, or a
//! limit of its own for a fetch on demand), typed from its bytes and recorded with the message's update, and
//! an operator's request to fetch a file that was too large or failed.

use chrono::{DateTime, Utc};

use crate::account::Account;
use crate::event::DomainEvent;
use crate::ids::MediaFileId;
use crate::inbox::MAX_ON_DEMAND_BYTES;
use crate::inbox::delivery::Courier;
use crate::inbox::outbox::visible_chat;
use crate::jobs::JobRequest;
use crate::media::{MediaFile, MediaStatus, sha256_hex, sniff};
use crate::outbound::{DownloadError, FileLocation};
use crate::ports::{BoxFuture, Transaction, Tx, execute};
use crate::user::User;
use crate::views::MessageView;
use crate::{CoreError, CoreResult};

/// How a download ended, for the job runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Downloaded {
    /// Stored on disk.
    Stored,
    /// Over the limit; recorded as too large.
    TooLarge,
    /// Nothing to do (stored already, or gone).
    Nothing,
    /// Given up on; the file shows `failed`.
    Failed(String),
    /// Try again no earlier than this time.
    RetryAt(DateTime<Utc>, String),
    /// Try again with backoff.
    Retry(String),
}

impl Courier {
    /// Downloads received file `file` (with a limit of its own for a fetch on demand).
    #[tracing::instrument(name = "download", skip(self))]
    pub async fn download(
        &self,
        file: MediaFileId,
        max_bytes: Option<u64>,
        last_attempt: bool,
    ) -> CoreResult<Downloaded> {
        let Some(target) = execute(self.database.as_ref(), DownloadTarget { file }).await? else {
            return Ok(Downloaded::Nothing);
        };
        let Some((account, location)) = target.source else {
            return self
                .record_download(
                    file,
                    FileOutcome::Failed("the message, chat or account no longer exists".into()),
                )
                .await;
        };
        let limit = max_bytes
            .unwrap_or_else(|| u64::try_from(self.settings.inbox.download_limit(account.kind)).unwrap_or(0));
        let channel = self.channels.of(account.kind);
        let result = tokio::time::timeout(
            self.settings.call_timeout,
            channel.download(&account, location, limit),
        )
        .await
        .unwrap_or_else(|_| Err(DownloadError::Transient("the download timed out".into())));
        match result {
            Ok(downloaded) => {
                let sniffed = sniff(&downloaded.bytes);
                let path = self.media.write(&downloaded.bytes, &sniffed.extension).await?;
                let stored = StoredFile {
                    storage_path: path,
                    content_type: sniffed.content_type,
                    file_size: i64::try_from(downloaded.bytes.len()).unwrap_or(i64::MAX),
                    sha256: sha256_hex(&downloaded.bytes),
                };
                self.record_download(file, FileOutcome::Stored(stored)).await
            }
            Err(DownloadError::TooLarge(size)) => {
                self.record_download(file, FileOutcome::TooLarge(size.or(target.file.file_size)))
                    .await
            }
            Err(DownloadError::RetryAfter(wait, reason)) if !last_attempt => Ok(Downloaded::RetryAt(
                self.clock.now() + chrono::Duration::from_std(wait).unwrap_or_default(),
                reason,
            )),
            Err(DownloadError::Transient(reason)) if !last_attempt => Ok(Downloaded::Retry(reason)),
            Err(error) => {
                self.record_download(file, FileOutcome::Failed(error.to_string()))
                    .await
            }
        }
    }

    async fn record_download(&self, file: MediaFileId, outcome: FileOutcome) -> CoreResult<Downloaded> {
        let work = RecordDownload {
            file,
            outcome,
            now: self.clock.now(),
        };
        execute(self.database.as_ref(), work).await
    }
}

/// The file to download and where it is.
struct Target {
    file: MediaFile,
    source: Option<(Account, FileLocation)>,
}

/// Reads a pending file with the account and message it came through.
struct DownloadTarget {
    file: MediaFileId,
}

impl Transaction for DownloadTarget {
    type Output = Option<Target>;

    fn body<'t>(&'t self, tx: &'t mut dyn Tx) -> BoxFuture<'t, CoreResult<Option<Target>>> {
        Box::pin(async move {
            let Some(file) = tx.media_file(self.file).await? else {
                return Ok(None);
            };
            if file.status != MediaStatus::Pending {
                return Ok(None);
            }
            let message = match file.message_id {
                Some(id) => tx.message(id).await?,
                None => None,
            };
            let Some(message) = message else {
                return Ok(Some(Target { file, source: None }));
            };
            let chat = tx.lock_chat(message.chat_id).await?;
            let account = match &chat {
                Some(chat) => tx.account(chat.account_id).await?,
                None => None,
            };
            let source = chat.zip(account).map(|(chat, account)| {
                let location = FileLocation {
                    peer_id: chat.peer_id,
                    telegram_message_id: message.telegram_message_id,
                    file_id: file.telegram_file_id.clone(),
                };
                (account, location)
            });
            Ok(Some(Target { file, source }))
        })
    }
}

/// What a finished download produced.
#[derive(Debug, Clone)]
struct StoredFile {
    storage_path: String,
    content_type: String,
    file_size: i64,
    sha256: String,
}

enum FileOutcome {
    Stored(StoredFile),
    TooLarge(Option<i64>),
    Failed(String),
}

/// Records a download's outcome and announces the message's new file state.
struct RecordDownload {
    file: MediaFileId,
    outcome: FileOutcome,
    now: DateTime<Utc>,
}

impl Transaction for RecordDownload {
    type Output = Downloaded;

    fn body<'t>(&'t self, tx: &'t mut dyn Tx) -> BoxFuture<'t, CoreResult<Downloaded>> {
        Box::pin(async move {
            let Some(mut file) = tx.media_file(self.file).await? else {
                return Ok(Downloaded::Nothing);
            };
            let downloaded = match &self.outcome {
                FileOutcome::Stored(stored) => {
                    file.status = MediaStatus::Stored;
                    file.storage_path = Some(stored.storage_path.clone());
                    file.content_type = Some(stored.content_type.clone());
                    file.file_size = Some(stored.file_size);
                    file.sha256 = Some(stored.sha256.clone());
                    file.error = None;
                    Downloaded::Stored
                }
                FileOutcome::TooLarge(size) => {
                    file.status = MediaStatus::TooLarge;
                    file.file_size = size.or(file.file_size);
                    file.error = Some("too large to download".into());
                    Downloaded::TooLarge
                }
                FileOutcome::Failed(reason) => {
                    file.status = MediaStatus::Failed;
                    file.error = Some(reason.clone());
                    Downloaded::Failed(reason.clone())
                }
            };
            file.updated_at = self.now;
            tx.update_media_file(&file).await?;
            if let Some(message) = match file.message_id {
                Some(id) => tx.message(id).await?,
                None => None,
            } {
                tx.append_events(vec![DomainEvent::MessageUpdated(MessageView::new(
                    &message,
                    Some(&file),
                ))])
                .await?;
            }
            Ok(downloaded)
        })
    }
}

/// The unit of work of [`crate::inbox::Inbox::fetch_media`].
pub(super) struct FetchOnDemand {
    pub(super) user: User,
    pub(super) file: MediaFileId,
    pub(super) now: DateTime<Utc>,
}

impl Transaction for FetchOnDemand {
    type Output = MessageView;

    fn body<'t>(&'t self, tx: &'t mut dyn Tx) -> BoxFuture<'t, CoreResult<MessageView>> {
        Box::pin(async move {
            let not_found = || CoreError::not_found("File");
            let file = tx.media_file(self.file).await?.ok_or_else(not_found)?;
            let Some(message_id) = file.message_id else {
                // An upload not sent yet: only its uploader (or an admin) may learn that it exists.
                let own = self.user.role == crate::user::Role::Admin
                    || file.uploaded_by_user_id == Some(self.user.id);
                return Err(if own {
                    CoreError::invalid_as(
                        "not_fetchable",
                        "Only files received by personal accounts can be fetched on demand.",
                    )
                } else {
                    not_found()
                });
            };
            let chat_id = tx.message(message_id).await?.ok_or_else(not_found)?.chat_id;
            let chat = visible_chat(tx, &self.user, chat_id)
                .await
                .map_err(|_| not_found())?;
            let account = tx.account(chat.account_id).await?.ok_or_else(not_found)?;
            if !account.kind.fetches_on_demand() {
                return Err(CoreError::invalid_as(
                    "not_fetchable",
                    "Only files received by personal accounts can be fetched on demand.",
                ));
            }
            let Some(mut file) = tx.media_file(self.file).await? else {
                return Err(not_found());
            };
            if !matches!(file.status, MediaStatus::TooLarge | MediaStatus::Failed) {
                return Err(CoreError::Conflict {
                    code: "media_not_fetchable",
                    message: "The file is already stored or being downloaded.".into(),
                });
            }
            file.status = MediaStatus::Pending;
            file.error = None;
            file.updated_at = self.now;
            tx.update_media_file(&file).await?;
            tx.enqueue(JobRequest::download(
                file.id,
                Some(MAX_ON_DEMAND_BYTES),
                Some(account.id),
                self.now,
            ))
            .await?;
            let message = tx.message(message_id).await?.ok_or_else(not_found)?;
            let view = MessageView::new(&message, Some(&file));
            tx.append_events(vec![DomainEvent::MessageUpdated(view.clone())])
                .await?;
            Ok(view)
        })
    }
}

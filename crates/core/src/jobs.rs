//! Background work as data: every kind of job with its typed input ([`JobPayload`]), and a request to enqueue
//! one ([`JobRequest`]) inside the transaction of the change that needs it, so the job exists exactly when the
//! change does.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::CoreError;
use crate::ids::{AccountId, ChatId, JobId, MediaFileId, MessageId};
use crate::string_enum;

string_enum! {
    /// Where a job stands.
    JobStatus {
        /// Waiting for its `run_at`.
        Pending => "pending",
        /// Claimed by a worker until its lock lapses.
        Running => "running",
        /// Finished successfully.
        Done => "done",
        /// Gave up after its attempts or a permanent failure; can be requeued by hand.
        Dead => "dead",
    }
}

/// A job a worker claimed, as its handler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedJob {
    /// Id.
    pub id: JobId,
    /// Kind and input.
    pub payload: JobPayload,
    /// This attempt's number, from 1.
    pub attempt: i32,
    /// Attempts allowed; on the last one a passing failure is final.
    pub max_attempts: i32,
    /// The claim, which only its holder may complete.
    pub claim: String,
}

impl ClaimedJob {
    /// Whether this is the last attempt.
    pub fn is_last_attempt(&self) -> bool {
        self.attempt >= self.max_attempts
    }
}

/// Attempts before a transiently failing send is given up (`SEND_MAX_ATTEMPTS`).
pub const DEFAULT_SEND_ATTEMPTS: i32 = 8;
/// Attempts before a forward is dead-lettered (with backoff capped at 15 minutes: several hours).
pub const FORWARD_ATTEMPTS: i32 = 30;
/// Attempts of a download.
pub const DOWNLOAD_ATTEMPTS: i32 = 8;
/// Attempts of marking a chat read in Telegram.
pub const MARK_READ_ATTEMPTS: i32 = 3;

/// A job's kind and input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum JobPayload {
    /// Deliver a queued outgoing message through its account's channel.
    SendMessage {
        /// The message.
        message_id: MessageId,
    },
    /// Download a received file.
    DownloadMedia {
        /// The file's record.
        media_file_id: MediaFileId,
        /// A limit of its own (a download on demand), instead of the automatic one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_bytes: Option<u64>,
    },
    /// Hand a bot's raw update to its existing backend.
    ForwardUpdate {
        /// The bot account.
        account_id: AccountId,
        /// The backend's URL.
        url: String,
        /// The update, unchanged.
        update: Value,
    },
    /// Mark a chat read in Telegram after an operator read it (personal accounts).
    MarkReadInTelegram {
        /// The chat.
        chat_id: ChatId,
    },
    /// Daily clean-up (old events, old revoked tokens).
    Housekeeping {
        /// The day it is for.
        date: String,
    },
}

impl JobPayload {
    /// The kind as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::SendMessage { .. } => "send_message",
            Self::DownloadMedia { .. } => "download_media",
            Self::ForwardUpdate { .. } => "forward_update",
            Self::MarkReadInTelegram { .. } => "mark_read_in_telegram",
            Self::Housekeeping { .. } => "housekeeping",
        }
    }

    /// The stored input (with the kind in it).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads a stored job: its `kind` column and its input.
    pub fn from_stored(kind: &str, payload: &Value) -> Result<Self, CoreError> {
        let mut value = payload.clone();
        if let Some(fields) = value.as_object_mut() {
            fields.insert("kind".into(), Value::String(kind.to_owned()));
        }
        serde_json::from_value(value).map_err(|error| {
            CoreError::invalid(format!("job of kind `{kind}` has an unreadable input: {error}"))
        })
    }
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRequest {
    /// Kind and input.
    pub payload: JobPayload,
    /// Earliest run time.
    pub run_at: DateTime<Utc>,
    /// Attempts before it is dead-lettered.
    pub max_attempts: i32,
    /// Makes the enqueue idempotent: a second job with the same key is not added.
    pub dedupe_key: Option<String>,
    /// Run only on the instance connected to this personal account (it needs the live connection).
    pub pinned_account_id: Option<AccountId>,
    /// Jobs with the same key run one at a time, in the order they were enqueued (sends of one chat).
    pub order_key: Option<String>,
}

impl JobRequest {
    /// A job due at `now`, with 10 attempts and no key.
    pub fn new(payload: JobPayload, now: DateTime<Utc>) -> Self {
        Self {
            payload,
            run_at: now,
            max_attempts: 10,
            dedupe_key: None,
            pinned_account_id: None,
            order_key: None,
        }
    }

    /// Sending message `message_id` of chat `chat_id`, after the chat's earlier sends. `generation` counts
    /// manual retries, so a retry gets a job of its own.
    pub fn send(
        message_id: MessageId,
        chat_id: ChatId,
        generation: u32,
        max_attempts: i32,
        personal_account: Option<AccountId>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            max_attempts,
            dedupe_key: Some(format!("send_message:{message_id}:{generation}")),
            pinned_account_id: personal_account,
            order_key: Some(format!("chat:{chat_id}")),
            ..Self::new(JobPayload::SendMessage { message_id }, now)
        }
    }

    /// Downloading file `media_file_id`, on the instance holding `pinned` for personal accounts.
    pub fn download(
        media_file_id: MediaFileId,
        max_bytes: Option<u64>,
        pinned: Option<AccountId>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            max_attempts: DOWNLOAD_ATTEMPTS,
            // A download on demand is a new job; the automatic one is enqueued once.
            dedupe_key: max_bytes
                .is_none()
                .then(|| format!("download_media:{media_file_id}")),
            pinned_account_id: pinned,
            ..Self::new(
                JobPayload::DownloadMedia {
                    media_file_id,
                    max_bytes,
                },
                now,
            )
        }
    }

    /// Forwarding a bot's update to its existing backend, once per update id.
    pub fn forward(account_id: AccountId, url: &str, update: &Value, now: DateTime<Utc>) -> Self {
        Self {
            max_attempts: FORWARD_ATTEMPTS,
            dedupe_key: update
                .get("update_id")
                .and_then(Value::as_i64)
                .map(|id| format!("forward_update:{account_id}:{id}")),
            ..Self::new(
                JobPayload::ForwardUpdate {
                    account_id,
                    url: url.to_owned(),
                    update: update.clone(),
                },
                now,
            )
        }
    }

    /// Marking chat `chat_id` read in Telegram through personal account `account_id`.
    pub fn mark_read(chat_id: ChatId, account_id: AccountId, now: DateTime<Utc>) -> Self {
        Self {
            max_attempts: MARK_READ_ATTEMPTS,
            pinned_account_id: Some(account_id),
            ..Self::new(JobPayload::MarkReadInTelegram { chat_id }, now)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn payloads_round_trip_through_kind_and_input() {
        let payload = JobPayload::DownloadMedia {
            media_file_id: MediaFileId(7),
            max_bytes: Some(10),
        };
        let stored = payload.to_json();
        assert_eq!(payload.kind(), "download_media");
        assert_eq!(JobPayload::from_stored(payload.kind(), &stored), Ok(payload));
        // Jobs stored before the input carried its kind still read.
        let old = json!({ "message_id": 5 });
        assert_eq!(
            JobPayload::from_stored("send_message", &old),
            Ok(JobPayload::SendMessage {
                message_id: MessageId(5)
            })
        );
        assert!(JobPayload::from_stored("send_message", &json!({})).is_err());
        assert!(JobPayload::from_stored("teleport", &old).is_err());
    }

    #[test]
    fn sends_of_one_chat_share_an_order_key_and_retries_get_their_own_job() {
        let now = Utc::now();
        let first = JobRequest::send(MessageId(1), ChatId(9), 0, 8, None, now);
        let retry = JobRequest::send(MessageId(1), ChatId(9), 1, 8, None, now);
        assert_eq!(first.order_key, retry.order_key);
        assert_ne!(first.dedupe_key, retry.dedupe_key);
    }
}

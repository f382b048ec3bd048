//! Marking a chat read: its unread count drops to zero, and a personal account that wants it marks the chat
//! read in Telegram too (a job on the instance holding the account, which the courier runs).

use chrono::{DateTime, Utc};

use crate::CoreResult;
use crate::account::Account;
use crate::event::DomainEvent;
use crate::ids::{ChatId, PeerId, TelegramMessageId};
use crate::inbox::delivery::{Courier, Delivered};
use crate::inbox::outbox::{chat_view, visible_chat};
use crate::jobs::JobRequest;
use crate::outbound::SendError;
use crate::ports::{BoxFuture, Transaction, Tx, execute};
use crate::user::User;
use crate::views::ChatView;

/// The unit of work of [`crate::inbox::Inbox::mark_read`].
pub(super) struct MarkRead {
    pub(super) user: User,
    pub(super) chat_id: ChatId,
    pub(super) now: DateTime<Utc>,
}

impl Transaction for MarkRead {
    type Output = ChatView;

    fn body<'t>(&'t self, tx: &'t mut dyn Tx) -> BoxFuture<'t, CoreResult<ChatView>> {
        Box::pin(async move {
            let mut chat = visible_chat(tx, &self.user, self.chat_id).await?;
            chat.unread_count = 0;
            chat.last_read_at = Some(self.now);
            tx.update_chat(&chat).await?;
            if let Some(account) = tx.account(chat.account_id).await?
                && account.kind.has_read_state()
                && account.mark_read_in_telegram
            {
                tx.enqueue(JobRequest::mark_read(chat.id, account.id, self.now))
                    .await?;
            }
            let view = chat_view(tx, &chat).await?;
            tx.append_events(vec![DomainEvent::ChatUpdated(view.clone())])
                .await?;
            Ok(view)
        })
    }
}

impl Courier {
    /// Marks chat `chat` read in Telegram up to the customer's newest message.
    #[tracing::instrument(name = "mark_read_in_telegram", skip(self))]
    pub async fn mark_read_in_telegram(&self, chat: ChatId) -> CoreResult<Delivered> {
        let Some((account, peer, max_id)) = execute(self.database.as_ref(), ReadTarget { chat }).await?
        else {
            return Ok(Delivered::Nothing);
        };
        let channel = self.channels.of(account.kind);
        let result = tokio::time::timeout(
            self.settings.call_timeout,
            channel.mark_read(&account, peer, max_id),
        )
        .await
        .unwrap_or_else(|_| Err(SendError::Transient("marking read timed out".into())));
        Ok(match result {
            Ok(()) => Delivered::Done,
            Err(SendError::Permanent(reason)) => Delivered::Failed(reason),
            Err(SendError::RetryAfter(wait, reason)) => Delivered::RetryAt(
                self.clock.now() + chrono::Duration::from_std(wait).unwrap_or_default(),
                reason,
            ),
            Err(error) => Delivered::Retry(error.to_string()),
        })
    }
}

/// Reads what marking a chat read in Telegram needs.
struct ReadTarget {
    chat: ChatId,
}

impl Transaction for ReadTarget {
    type Output = Option<(Account, PeerId, TelegramMessageId)>;

    fn body<'t>(&'t self, tx: &'t mut dyn Tx) -> BoxFuture<'t, CoreResult<Self::Output>> {
        Box::pin(async move {
            let Some(chat) = tx.lock_chat(self.chat).await? else {
                return Ok(None);
            };
            let Some(account) = tx.account(chat.account_id).await? else {
                return Ok(None);
            };
            let newest = tx.newest_inbound_telegram_id(chat.id).await?;
            Ok(newest.map(|max_id| (account, chat.peer_id, max_id)))
        })
    }
}

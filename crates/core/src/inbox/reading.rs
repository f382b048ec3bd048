//! Marking a chat read: its unread count drops to zero, and a personal account that wants it marks the chat
//! read in Telegram too (a job on the instance holding the account).

use chrono::{DateTime, Utc};

use crate::CoreResult;
use crate::event::DomainEvent;
use crate::ids::ChatId;
use crate::inbox::outbox::{chat_view, visible_chat};
use crate::jobs::JobRequest;
use crate::ports::{BoxFuture, Transaction, Tx};
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

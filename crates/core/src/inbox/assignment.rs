//! Who holds a chat: assigning (a transfer when someone held it), with the holder's `max_chats` enforced under
//! a lock on the holder, and releasing. Every earlier assignment stays as history; the former and the new holder
//! are told, so their chat lists follow.

use chrono::{DateTime, Utc};

use crate::event::DomainEvent;
use crate::ids::{ChatId, UserId};
use crate::inbox::outbox::{chat_view, visible_chat};
use crate::ports::{BoxFuture, Transaction, Tx};
use crate::user::{Role, User};
use crate::{CoreError, CoreResult};

/// Who holds a chat after an assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    /// The assignment's id.
    pub id: i64,
    /// The holder.
    pub operator_id: UserId,
}

/// The unit of work of [`crate::inbox::Inbox::assign`].
pub(super) struct Assign {
    pub(super) user: User,
    pub(super) chat_id: ChatId,
    pub(super) operator: Option<UserId>,
    pub(super) now: DateTime<Utc>,
}

impl Transaction for Assign {
    type Output = Assignment;

    fn body<'t>(&'t self, tx: &'t mut dyn Tx) -> BoxFuture<'t, CoreResult<Assignment>> {
        Box::pin(async move {
            // Locks in the one order every use case keeps: the chat, then the user.
            let mut chat = visible_chat(tx, &self.user, self.chat_id).await?;
            let target = self.operator.unwrap_or(self.user.id);
            if self.user.role != Role::Admin && target != self.user.id {
                return Err(CoreError::Forbidden(
                    "You do not have permission to perform this action.".into(),
                ));
            }
            if chat.assigned_user_id == Some(target)
                && let Some(id) = tx.active_assignment(chat.id).await?
            {
                return Ok(Assignment {
                    id,
                    operator_id: target,
                });
            }
            let holder = tx
                .lock_user(target)
                .await?
                .filter(|user| user.is_active)
                .ok_or_else(|| CoreError::invalid("operator_id must name an active user"))?;
            let held = tx.count_held(target).await?;
            if held >= u64::try_from(holder.max_chats).unwrap_or(0) {
                return Err(CoreError::invalid_as(
                    "max_chats_reached",
                    format!("Maximum chats limit reached ({})", holder.max_chats),
                ));
            }
            let previous = chat.assigned_user_id;
            tx.end_assignment(chat.id, self.now).await?;
            let id = tx
                .start_assignment(chat.id, target, self.user.id, self.now)
                .await?;
            chat.assigned_user_id = Some(target);
            tx.update_chat(&chat).await?;
            let view = chat_view(tx, &chat).await?;
            let mut events = Vec::with_capacity(3);
            if let Some(previous) = previous.filter(|p| *p != target) {
                events.push(DomainEvent::ChatRemoved {
                    user_id: previous,
                    chat_id: chat.id,
                });
            }
            events.push(DomainEvent::ChatAdded {
                user_id: target,
                chat: view.clone(),
            });
            events.push(DomainEvent::ChatUpdated(view));
            tx.append_events(events).await?;
            Ok(Assignment {
                id,
                operator_id: target,
            })
        })
    }
}

/// The unit of work of [`crate::inbox::Inbox::release`].
pub(super) struct Release {
    pub(super) user: User,
    pub(super) chat_id: ChatId,
    pub(super) now: DateTime<Utc>,
}

impl Transaction for Release {
    type Output = ();

    fn body<'t>(&'t self, tx: &'t mut dyn Tx) -> BoxFuture<'t, CoreResult<()>> {
        Box::pin(async move {
            let mut chat = visible_chat(tx, &self.user, self.chat_id).await?;
            let Some(holder) = chat.assigned_user_id else {
                return Err(CoreError::NotFound("Chat is not assigned".into()));
            };
            tx.end_assignment(chat.id, self.now).await?;
            chat.assigned_user_id = None;
            tx.update_chat(&chat).await?;
            let view = chat_view(tx, &chat).await?;
            tx.append_events(vec![
                DomainEvent::ChatRemoved {
                    user_id: holder,
                    chat_id: chat.id,
                },
                DomainEvent::ChatUpdated(view),
            ])
            .await?;
            Ok(())
        })
    }
}

//! The API side of the outbox: an operator's message is checked, stored as `queued` with its send job (ordered
//! after the chat's earlier sends) and announced, all in one unit of work, so an accepted message is never lost.
//! A failed message can be queued again by hand.

use chrono::{DateTime, Utc};
use rand::Rng;

use crate::account::AccountType;
use crate::chat::{Chat, LastMessage, preview_of};
use crate::event::DomainEvent;
use crate::ids::{ChatId, MediaFileId, MessageId};
use crate::jobs::JobRequest;
use crate::media::MediaFile;
use crate::message::{Direction, Message, MessageStatus, MessageType, NewMessage};
use crate::metadata::{MessageMetadata, OutboxState};
use crate::ports::{BoxFuture, Transaction, Tx};
use crate::user::{Role, User};
use crate::views::{AccountBrief, ChatView, MessageView};
use crate::{CoreError, CoreResult};

/// Longest text of a message (Telegram's limit).
pub const MAX_TEXT: usize = 4096;
/// Telegram's limit for a caption.
pub const MAX_CAPTION: usize = 1024;

/// Where an operator's message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendTarget {
    /// A new message in a chat.
    Chat(ChatId),
    /// A reply to a stored message, in its chat.
    ReplyTo(MessageId),
}

/// What an operator sends: text, an uploaded file, or both (the text becomes the caption).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// Text, trimmed; empty counts as none.
    pub text: Option<String>,
    /// An upload of theirs not sent yet.
    pub upload: Option<MediaFileId>,
}

impl Reply {
    /// The text, trimmed; blank counts as none.
    fn trimmed_text(&self) -> Option<String> {
        self.text
            .as_deref()
            .map(str::trim)
            .filter(|text| !text.is_empty())
            .map(str::to_owned)
    }

    /// Checks the rules that need no database: something to send, within Telegram's length limits.
    pub(super) fn validated(&self) -> CoreResult<Self> {
        let text = self.trimmed_text();
        let (limit, what) = if self.upload.is_some() {
            (MAX_CAPTION, "a caption")
        } else {
            (MAX_TEXT, "text")
        };
        if text.as_ref().is_some_and(|t| t.chars().count() > limit) {
            return Err(CoreError::invalid(format!(
                "{what} may have at most {limit} characters"
            )));
        }
        if text.is_none() && self.upload.is_none() {
            return Err(CoreError::invalid("Either text or file_id is required."));
        }
        Ok(Self {
            text,
            upload: self.upload,
        })
    }
}

/// How an upload is presented, from its sniffed type.
fn kind_of_upload(content_type: &str) -> MessageType {
    match content_type.split(';').next().unwrap_or_default() {
        "image/jpeg" | "image/png" | "image/webp" => MessageType::Photo,
        "video/mp4" => MessageType::Video,
        "audio/ogg" => MessageType::Voice,
        t if t.starts_with("audio/") => MessageType::Audio,
        _ => MessageType::Document,
    }
}

fn unknown_upload() -> CoreError {
    CoreError::invalid_as(
        "unknown_file",
        "file_id (or media_path) must name an upload of yours that was not sent yet.",
    )
}

/// Locks chat `chat_id` if `user` may see it.
pub(super) async fn visible_chat(tx: &mut dyn Tx, user: &User, chat_id: ChatId) -> CoreResult<Chat> {
    tx.lock_chat(chat_id)
        .await?
        .filter(|chat| chat.visible_to(user.viewer()))
        .ok_or_else(|| CoreError::not_found("Chat"))
}

/// The view of `chat` with its account, read in the transaction.
pub(super) async fn chat_view(tx: &mut dyn Tx, chat: &Chat) -> CoreResult<ChatView> {
    let account = tx.account(chat.account_id).await?;
    Ok(ChatView::new(
        chat,
        account.as_ref().map(AccountBrief::from).as_ref(),
    ))
}

/// The unit of work of [`crate::inbox::Inbox::send`].
pub(super) struct Send {
    pub(super) user: User,
    pub(super) target: SendTarget,
    pub(super) reply: Reply,
    pub(super) now: DateTime<Utc>,
    pub(super) max_attempts: i32,
}

impl Transaction for Send {
    type Output = MessageView;

    fn body<'t>(&'t self, tx: &'t mut dyn Tx) -> BoxFuture<'t, CoreResult<MessageView>> {
        Box::pin(async move {
            let (chat_id, parent) = match self.target {
                SendTarget::Chat(chat_id) => (chat_id, None),
                SendTarget::ReplyTo(message_id) => {
                    let parent = tx
                        .message(message_id)
                        .await?
                        .ok_or_else(|| CoreError::not_found("Message"))?;
                    (parent.chat_id, Some(parent))
                }
            };
            let mut chat = visible_chat(tx, &self.user, chat_id)
                .await
                .map_err(|error| match parent {
                    // A reply to a message of a chat the caller cannot see: the message is what they asked for.
                    Some(_) => CoreError::not_found("Message"),
                    None => error,
                })?;
            let account = tx
                .account(chat.account_id)
                .await?
                .ok_or_else(|| CoreError::not_found("Chat"))?;
            // Checked once the caller is known to see the chat, so nobody learns from the answer about a chat
            // they cannot see.
            let reply = self.reply.validated()?;
            let upload = match reply.upload {
                Some(id) => Some(
                    tx.unsent_upload(id)
                        .await?
                        .filter(|file| {
                            self.user.role == Role::Admin || file.uploaded_by_user_id == Some(self.user.id)
                        })
                        .ok_or_else(unknown_upload)?,
                ),
                None => None,
            };
            let message_type = upload.as_ref().map_or(MessageType::Text, |file| {
                kind_of_upload(file.content_type.as_deref().unwrap_or_default())
            });
            let (text, caption) = match upload {
                Some(_) => (None, reply.text.clone()),
                None => (reply.text.clone(), None),
            };
            let new = NewMessage {
                chat_id,
                telegram_message_id: None,
                direction: Direction::Outbound,
                message_type,
                text,
                caption,
                sender_id: None,
                sender_name: Some(self.user.shown_name().to_owned()),
                sender_username: None,
                sent_by_user_id: Some(self.user.id),
                reply_to_message_id: parent.as_ref().map(|p| p.id),
                reply_to_telegram_id: parent.as_ref().and_then(|p| p.telegram_message_id),
                status: MessageStatus::Queued,
                telegram_date: self.now,
                edited_at: None,
                metadata: MessageMetadata {
                    outbox: Some(OutboxState {
                        random_id: Some(rand::thread_rng().r#gen::<i64>()),
                        ..OutboxState::default()
                    }),
                    ..MessageMetadata::default()
                },
                created_at: self.now,
            };
            let id = tx
                .insert_message(&new)
                .await?
                .ok_or_else(|| CoreError::internal("a queued message collided with a stored one"))?;
            let mut file: Option<MediaFile> = None;
            if let Some(mut upload) = upload {
                if !tx.attach_upload(upload.id, id).await? {
                    return Err(CoreError::invalid_as(
                        "unknown_file",
                        "That upload was already sent.",
                    ));
                }
                upload.message_id = Some(id);
                file = Some(upload);
            }
            let personal = (account.kind == AccountType::Personal).then_some(account.id);
            tx.enqueue(JobRequest::send(
                id,
                chat_id,
                0,
                self.max_attempts,
                personal,
                self.now,
            ))
            .await?;
            let message = Message::stored(id, new);
            let last = LastMessage {
                id,
                preview: preview_of(message.text.as_deref(), message.caption.as_deref()),
                outgoing: true,
            };
            chat.count_message(last, self.now, false);
            chat.updated_at = self.now;
            tx.update_chat(&chat).await?;
            let view = MessageView::new(&message, file.as_ref());
            let brief = AccountBrief::from(&account);
            tx.append_events(vec![
                DomainEvent::NewMessage(view.clone()),
                DomainEvent::ChatUpdated(ChatView::new(&chat, Some(&brief))),
            ])
            .await?;
            Ok(view)
        })
    }
}

/// The unit of work of [`crate::inbox::Inbox::retry`].
pub(super) struct Retry {
    pub(super) user: User,
    pub(super) message_id: MessageId,
    pub(super) now: DateTime<Utc>,
    pub(super) max_attempts: i32,
}

impl Transaction for Retry {
    type Output = MessageView;

    fn body<'t>(&'t self, tx: &'t mut dyn Tx) -> BoxFuture<'t, CoreResult<MessageView>> {
        Box::pin(async move {
            let not_found = || CoreError::not_found("Message");
            let chat_id = tx.message(self.message_id).await?.ok_or_else(not_found)?.chat_id;
            let chat = visible_chat(tx, &self.user, chat_id)
                .await
                .map_err(|_| not_found())?;
            // Read again under the chat's lock: the delivery records its outcomes under it too.
            let mut message = tx.message(self.message_id).await?.ok_or_else(not_found)?;
            if message.status != MessageStatus::Failed || !message.is_outgoing() {
                return Err(CoreError::Conflict {
                    code: "not_failed",
                    message: "Only a failed outgoing message can be retried.".into(),
                });
            }
            let random_id = message.metadata.random_id();
            let outbox = message.metadata.outbox.get_or_insert_with(OutboxState::default);
            outbox.retries += 1;
            outbox.error = None;
            outbox.failed_at = None;
            outbox.in_flight_since = None;
            outbox.random_id = Some(random_id.unwrap_or_else(|| rand::thread_rng().r#gen::<i64>()));
            let generation = outbox.retries;
            // The legacy top-level reason (rows from before the typed outbox state) goes too.
            message.metadata.extra.remove("error");
            message.status = MessageStatus::Queued;
            message.updated_at = self.now;
            tx.update_message(&message).await?;
            let account = tx.account(chat.account_id).await?;
            let personal = account
                .filter(|account| account.kind == AccountType::Personal)
                .map(|account| account.id);
            tx.enqueue(JobRequest::send(
                message.id,
                chat.id,
                generation,
                self.max_attempts,
                personal,
                self.now,
            ))
            .await?;
            let files = tx.files_of(std::slice::from_ref(&message.id)).await?;
            let view = MessageView::new(&message, files.get(&message.id));
            tx.append_events(vec![DomainEvent::MessageUpdated(view.clone())])
                .await?;
            Ok(view)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_need_content_within_limits() {
        let text = |t: &str| Reply {
            text: Some(t.into()),
            upload: None,
        };
        assert_eq!(text("  hi  ").validated().unwrap().text.as_deref(), Some("hi"));
        assert_eq!(text("  hi  ").trimmed_text().as_deref(), Some("hi"));
        assert!(text("   ").validated().is_err(), "blank text is no text");
        assert!(text(&"x".repeat(MAX_TEXT + 1)).validated().is_err());
        let caption = Reply {
            text: Some("x".repeat(MAX_CAPTION + 1)),
            upload: Some(MediaFileId(1)),
        };
        assert!(caption.validated().is_err(), "captions are shorter than texts");
        let file_only = Reply {
            text: None,
            upload: Some(MediaFileId(1)),
        };
        assert!(file_only.validated().is_ok());
        assert_eq!(kind_of_upload("image/png"), MessageType::Photo);
        assert_eq!(kind_of_upload("audio/mpeg"), MessageType::Audio);
        assert_eq!(kind_of_upload("application/pdf"), MessageType::Document);
    }
}

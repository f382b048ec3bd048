//! Intake: one unit of work per arrival that locks (or creates) the chat, stores the message once (idempotent
//! on Telegram's id), records its file and queues the download, links replies, updates the chat's counters
//! and newest message with one statement, forwards a bot's raw update when the account asks for it, and writes
//! the events with payloads built from what it holds. Every channel comes through here, so a block, an edit or a
//! deletion is stored and announced the same way whatever brought it.

use serde_json::Value;

use crate::CoreResult;
use crate::account::{Account, AccountType};
use crate::chat::{Chat, LastMessage, preview_of};
use crate::event::DomainEvent;
use crate::ids::{ChatId, MessageId, PeerId, TelegramMessageId};
use crate::inbound::{ChatRef, InboundEvent, InboundMessage};
use crate::inbox::InboxSettings;
use crate::jobs::JobRequest;
use crate::media::{MediaFile, MediaStatus, NewDownload, display_file_name};
use crate::message::{Direction, Message, MessageStatus, NewMessage};
use crate::metadata::Reaction;
use crate::ports::{BoxFuture, Transaction, Tx};
use crate::views::{AccountBrief, ChatView, MessageView};

/// What arrived, and through which account.
#[derive(Debug, Clone)]
pub struct Arrival {
    /// The account it arrived through.
    pub account: Account,
    /// What happened, in channel-neutral terms.
    pub event: InboundEvent,
    /// The raw Bot API update, for a bot that forwards its updates to an existing backend.
    pub raw_update: Option<Value>,
}

/// What receiving did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A new message was stored.
    Stored,
    /// The message was already stored (a redelivery); nothing changed.
    Duplicate,
    /// A stored message or chat changed (edit, reaction, block, deletion, read receipt).
    Updated,
    /// Nothing to store (an ignored kind, or a reaction on an unknown message).
    Ignored,
}

impl Outcome {
    /// The wire name (`stored`, `duplicate`, `updated`, `ignored`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::Duplicate => "duplicate",
            Self::Updated => "updated",
            Self::Ignored => "ignored",
        }
    }
}

/// The result of receiving one arrival.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Intake {
    /// What happened.
    pub outcome: Outcome,
    /// The chat concerned, if any.
    pub chat_id: Option<ChatId>,
    /// The message concerned, if any.
    pub message_id: Option<MessageId>,
}

impl Intake {
    /// An update the inbox does not handle.
    pub(super) fn ignored() -> Self {
        Self::new(Outcome::Ignored, None, None)
    }

    fn new(outcome: Outcome, chat_id: Option<ChatId>, message_id: Option<MessageId>) -> Self {
        Self {
            outcome,
            chat_id,
            message_id,
        }
    }
}

/// The unit of work of [`crate::inbox::Inbox::receive`].
pub(super) struct Receive {
    pub(super) arrival: Arrival,
    pub(super) now: chrono::DateTime<chrono::Utc>,
    pub(super) settings: InboxSettings,
}

impl Transaction for Receive {
    type Output = Intake;

    fn body<'t>(&'t self, tx: &'t mut dyn Tx) -> BoxFuture<'t, CoreResult<Intake>> {
        Box::pin(async move {
            let account = &self.arrival.account;
            if let (Some(url), Some(update)) = (&account.forward_url, &self.arrival.raw_update) {
                tx.enqueue(JobRequest::forward(account.id, url, update, self.now))
                    .await?;
            }
            match &self.arrival.event {
                InboundEvent::NewMessage(message) => {
                    let chat = self.chat(tx, &message.chat).await?;
                    self.store_message(tx, chat, message).await
                }
                InboundEvent::EditedMessage(message) => self.edit_message(tx, message).await,
                InboundEvent::MembershipChanged { chat, blocked, .. } => {
                    let Held { mut chat, .. } = self.chat(tx, chat).await?;
                    chat.is_blocked = *blocked;
                    chat.updated_at = self.now;
                    tx.update_chat(&chat).await?;
                    tx.append_events(vec![DomainEvent::ChatUpdated(self.chat_view(&chat))])
                        .await?;
                    Ok(Intake::new(Outcome::Updated, Some(chat.id), None))
                }
                InboundEvent::ReactionChanged {
                    chat,
                    telegram_message_id,
                    user_id,
                    reactions,
                    ..
                } => {
                    self.react(tx, chat.peer_id, *telegram_message_id, *user_id, reactions)
                        .await
                }
                InboundEvent::Deleted {
                    peer_id,
                    telegram_message_ids,
                } => {
                    let found = tx
                        .messages_by_telegram_ids(account.id, *peer_id, telegram_message_ids)
                        .await?;
                    self.update_each(tx, found, |message| {
                        let fresh = !message.is_deleted;
                        message.is_deleted = true;
                        fresh
                    })
                    .await
                }
                InboundEvent::ReadByPeer { peer_id, max_id } => {
                    let found = tx.sent_up_to(account.id, *peer_id, *max_id).await?;
                    self.update_each(tx, found, |message| {
                        let unread = message.status == MessageStatus::Sent;
                        if unread {
                            message.status = MessageStatus::Read;
                        }
                        unread
                    })
                    .await
                }
                InboundEvent::Ignored { .. } => Ok(Intake::new(Outcome::Ignored, None, None)),
            }
        })
    }
}

/// A locked chat, and whether Telegram reported new names for it.
struct Held {
    chat: Chat,
    renamed: bool,
}

impl Receive {
    fn brief(&self) -> AccountBrief {
        AccountBrief::from(&self.arrival.account)
    }

    fn chat_view(&self, chat: &Chat) -> ChatView {
        ChatView::new(chat, Some(&self.brief()))
    }

    /// Locks the chat of the reported peer, creating it on its first message, and takes its new names.
    async fn chat(&self, tx: &mut dyn Tx, reported: &ChatRef) -> CoreResult<Held> {
        let account = self.arrival.account.id;
        let mut chat = match tx.lock_chat_by_peer(account, reported.peer_id).await? {
            Some(chat) => chat,
            None => tx.create_chat(account, reported, self.now).await?,
        };
        let renamed = chat.take_names(reported);
        if renamed {
            chat.updated_at = self.now;
        }
        Ok(Held { chat, renamed })
    }

    async fn store_message(
        &self,
        tx: &mut dyn Tx,
        held: Held,
        message: &InboundMessage,
    ) -> CoreResult<Intake> {
        let Held { mut chat, renamed } = held;
        let reply_to = match message.reply_to_telegram_id {
            Some(parent) => tx
                .message_by_telegram_id(chat.id, parent)
                .await?
                .map(|parent| parent.id),
            None => None,
        };
        let new = NewMessage {
            chat_id: chat.id,
            telegram_message_id: Some(message.telegram_message_id),
            direction: message.direction,
            message_type: message.message_type,
            text: message.text.clone(),
            caption: message.caption.clone(),
            sender_id: message.sender.as_ref().map(|s| s.id),
            sender_name: message.sender.as_ref().and_then(|s| s.name.clone()),
            sender_username: message.sender.as_ref().and_then(|s| s.username.clone()),
            sent_by_user_id: None,
            reply_to_message_id: reply_to,
            reply_to_telegram_id: message.reply_to_telegram_id,
            status: match message.direction {
                Direction::Inbound => MessageStatus::Received,
                Direction::Outbound => MessageStatus::Sent,
            },
            telegram_date: message.date,
            edited_at: message.edited_at,
            metadata: message.metadata.clone(),
            created_at: self.now,
        };
        let Some(id) = tx.insert_message(&new).await? else {
            if renamed {
                tx.update_chat(&chat).await?;
                tx.append_events(vec![DomainEvent::ChatUpdated(self.chat_view(&chat))])
                    .await?;
            }
            return Ok(Intake::new(Outcome::Duplicate, Some(chat.id), None));
        };
        let stored = Message::stored(id, new);
        let file = match &message.media {
            Some(media) => Some(self.record_file(tx, &chat, id, media).await?),
            None => None,
        };
        if chat.has_orphan_replies {
            tx.link_replies(chat.id, message.telegram_message_id, id).await?;
        }
        if message.reply_to_telegram_id.is_some() && reply_to.is_none() {
            chat.has_orphan_replies = true;
        }
        let last = LastMessage {
            id,
            preview: preview_of(stored.text.as_deref(), stored.caption.as_deref()),
            outgoing: stored.is_outgoing(),
        };
        chat.count_message(last, message.date, message.direction == Direction::Inbound);
        chat.updated_at = self.now;
        tx.update_chat(&chat).await?;
        tx.append_events(vec![
            DomainEvent::NewMessage(MessageView::new(&stored, file.as_ref())),
            DomainEvent::ChatUpdated(self.chat_view(&chat)),
        ])
        .await?;
        Ok(Intake::new(Outcome::Stored, Some(chat.id), Some(id)))
    }

    /// Records the file of a new message and queues its download, unless Telegram says it is over the
    /// automatic limit (it can then be fetched on demand).
    async fn record_file(
        &self,
        tx: &mut dyn Tx,
        chat: &Chat,
        message_id: MessageId,
        media: &crate::inbound::MediaRef,
    ) -> CoreResult<MediaFile> {
        let kind = self.arrival.account.kind;
        let too_large = media
            .file_size
            .is_some_and(|size| size > self.settings.download_limit(kind));
        let file = tx
            .insert_download(&NewDownload {
                message_id,
                status: if too_large {
                    MediaStatus::TooLarge
                } else {
                    MediaStatus::Pending
                },
                file_name: media
                    .file_name
                    .as_deref()
                    .map(|name| display_file_name(name, "file")),
                content_type: media.mime_type.clone(),
                file_size: media.file_size,
                telegram_file_id: media.file_id.clone(),
                telegram_file_unique_id: media.file_unique_id.clone(),
                created_at: self.now,
            })
            .await?;
        if !too_large {
            // A personal account's files come through its live connection: the job runs where it is held.
            let pinned = (kind == AccountType::Personal).then_some(chat.account_id);
            tx.enqueue(JobRequest::download(file.id, None, pinned, self.now))
                .await?;
        }
        Ok(file)
    }

    async fn edit_message(&self, tx: &mut dyn Tx, edit: &InboundMessage) -> CoreResult<Intake> {
        let held = self.chat(tx, &edit.chat).await?;
        let Some(mut stored) = tx
            .message_by_telegram_id(held.chat.id, edit.telegram_message_id)
            .await?
        else {
            // An edit of a message we never saw: keep it as a message, marked edited.
            return self.store_message(tx, held, edit).await;
        };
        let Held { mut chat, renamed } = held;
        stored.text.clone_from(&edit.text);
        stored.caption.clone_from(&edit.caption);
        stored.edited_at = Some(edit.edited_at.unwrap_or(self.now));
        stored.metadata.entities.clone_from(&edit.metadata.entities);
        // The message as first received stays in `raw`; the edited version is kept beside it.
        if let Some(raw) = &edit.metadata.raw {
            stored.metadata.extra.insert("edited_raw".into(), raw.clone());
        }
        stored.updated_at = self.now;
        tx.update_message(&stored).await?;
        let mut events = vec![DomainEvent::MessageUpdated(self.message_view(tx, &stored).await?)];
        let newest = chat
            .last_message
            .as_ref()
            .is_some_and(|last| last.id == stored.id);
        if newest {
            if let Some(last) = chat.last_message.as_mut() {
                last.preview = preview_of(stored.text.as_deref(), stored.caption.as_deref());
            }
            chat.updated_at = self.now;
        }
        if newest || renamed {
            tx.update_chat(&chat).await?;
            events.push(DomainEvent::ChatUpdated(self.chat_view(&chat)));
        }
        tx.append_events(events).await?;
        Ok(Intake::new(Outcome::Updated, Some(chat.id), Some(stored.id)))
    }

    async fn react(
        &self,
        tx: &mut dyn Tx,
        peer: PeerId,
        telegram_message_id: TelegramMessageId,
        who: Option<i64>,
        reactions: &[Reaction],
    ) -> CoreResult<Intake> {
        let Some(chat) = tx.lock_chat_by_peer(self.arrival.account.id, peer).await? else {
            return Ok(Intake::new(Outcome::Ignored, None, None));
        };
        let Some(mut stored) = tx.message_by_telegram_id(chat.id, telegram_message_id).await? else {
            return Ok(Intake::new(Outcome::Ignored, Some(chat.id), None));
        };
        stored.metadata.set_reactions(who, reactions.to_vec());
        stored.updated_at = self.now;
        tx.update_message(&stored).await?;
        let view = self.message_view(tx, &stored).await?;
        tx.append_events(vec![DomainEvent::MessageUpdated(view)]).await?;
        Ok(Intake::new(Outcome::Updated, Some(chat.id), Some(stored.id)))
    }

    /// Applies `change` to each message (it says whether it changed anything), stores and announces the changed
    /// ones.
    async fn update_each(
        &self,
        tx: &mut dyn Tx,
        messages: Vec<Message>,
        change: impl Fn(&mut Message) -> bool,
    ) -> CoreResult<Intake> {
        let mut changed = Vec::new();
        for mut message in messages {
            if change(&mut message) {
                message.updated_at = self.now;
                tx.update_message(&message).await?;
                changed.push(message);
            }
        }
        let Some(first) = changed.first() else {
            return Ok(Intake::new(Outcome::Ignored, None, None));
        };
        let (chat_id, message_id) = (first.chat_id, first.id);
        let ids: Vec<MessageId> = changed.iter().map(|m| m.id).collect();
        let files = tx.files_of(&ids).await?;
        let events = changed
            .iter()
            .map(|message| DomainEvent::MessageUpdated(MessageView::new(message, files.get(&message.id))))
            .collect();
        tx.append_events(events).await?;
        Ok(Intake::new(Outcome::Updated, Some(chat_id), Some(message_id)))
    }

    async fn message_view(&self, tx: &mut dyn Tx, message: &Message) -> CoreResult<MessageView> {
        let files = tx.files_of(std::slice::from_ref(&message.id)).await?;
        Ok(MessageView::new(message, files.get(&message.id)))
    }
}

//! The outbox through the core's use cases on a real database, with a scripted channel in place of Telegram:
//! an operator's reply is sent exactly once; an attempt whose outcome was lost is never repeated on the Bot API
//! (it fails as unconfirmed and is counted) and repeated with the same `random_id` on MTProto; passing failures
//! retry until the last attempt; a personal account's echo merges into the operator's message; and concurrent
//! operators neither lose a reply nor break a chat's counters or an operator's chat limit.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use crm_core::account::{Account, AccountStatus, AccountType};
use crm_core::chat::{ChatType, Viewer};
use crm_core::ids::{ChatId, MessageId, PeerId, TelegramMessageId};
use crm_core::inbound::{ChatRef, InboundEvent, InboundMessage};
use crm_core::inbox::{Arrival, Courier, CourierSettings, Delivered, Inbox, Reply, SendTarget, UNCONFIRMED};
use crm_core::jobs::JobPayload;
use crm_core::message::{Direction, MessageStatus, MessageType};
use crm_core::metadata::MessageMetadata;
use crm_core::outbound::{
    ChannelGateway, Channels, DownloadError, DownloadedFile, FileLocation, OutgoingMessage, SendError,
    SendFuture, SentMessage,
};
use crm_core::ports::BoxFuture;
use crm_core::secrets::Sensitive;
use crm_core::user::{Role, User};
use crm_store::Store;
use crm_store::files::MediaDir;
use crm_store::repo::accounts::{NewAccount, create};
use crm_store::repo::{chats as chat_repo, jobs as job_repo, messages as message_repo};
use crm_testkit_db::{TestDatabase, on_every_backend};
use tokio::sync::Notify;

use crate::support::{bot_account, inbox, migrated_store, sequenced, user};

on_every_backend!(
    a_reply_is_sent_once_and_recorded,
    a_lost_bot_attempt_is_never_repeated,
    a_lost_personal_attempt_is_repeated_with_the_same_random_id,
    an_ambiguous_bot_send_fails_unconfirmed_until_retried_by_hand,
    passing_failures_retry_until_the_last_attempt,
    a_personal_echo_merges_into_the_operators_message,
    concurrent_operators_lose_no_reply_and_keep_counts,
    concurrent_assignments_respect_the_chat_limit,
);

/// What the scripted channel does with one call.
#[derive(Clone)]
enum Script {
    Accept(i64),
    Fail(SendError),
    /// Never answers (the process "dies" while Telegram has the request).
    Hang,
}

/// A channel that answers sends from a script (accepting with increasing ids once the script is used up) and
/// records every call.
struct ScriptedChannel {
    repeats_safely: bool,
    script: Mutex<VecDeque<Script>>,
    calls: Mutex<Vec<(OutgoingMessage, i64)>>,
    next_id: Mutex<i64>,
    called: Notify,
}

impl ScriptedChannel {
    fn new(repeats_safely: bool, script: Vec<Script>) -> Arc<Self> {
        Arc::new(Self {
            repeats_safely,
            script: Mutex::new(script.into()),
            calls: Mutex::new(Vec::new()),
            next_id: Mutex::new(1000),
            called: Notify::new(),
        })
    }

    fn calls(&self) -> Vec<(OutgoingMessage, i64)> {
        self.calls.lock().unwrap().clone()
    }
}

impl ChannelGateway for ScriptedChannel {
    fn repeats_safely(&self) -> bool {
        self.repeats_safely
    }

    fn send<'a>(&'a self, _account: &'a Account, message: OutgoingMessage, random_id: i64) -> SendFuture<'a> {
        Box::pin(async move {
            self.calls.lock().unwrap().push((message, random_id));
            self.called.notify_one();
            let step = self.script.lock().unwrap().pop_front();
            match step {
                Some(Script::Accept(id)) => Ok(sent(id)),
                Some(Script::Fail(error)) => Err(error),
                Some(Script::Hang) => std::future::pending().await,
                None => {
                    let mut next = self.next_id.lock().unwrap();
                    *next += 1;
                    Ok(sent(*next))
                }
            }
        })
    }

    fn download<'a>(
        &'a self,
        _account: &'a Account,
        _file: FileLocation,
        _max_bytes: u64,
    ) -> BoxFuture<'a, Result<DownloadedFile, DownloadError>> {
        Box::pin(async { Err(DownloadError::Permanent("no files here".into())) })
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

fn sent(id: i64) -> SentMessage {
    SentMessage {
        telegram_message_id: Some(TelegramMessageId(id)),
        date: Utc::now(),
    }
}

/// The courier of `store`, with `channel` serving both account kinds.
fn courier(store: &Store, channel: &Arc<ScriptedChannel>) -> Courier {
    let gateway: Arc<dyn ChannelGateway> = channel.clone();
    Courier::new(
        Arc::new(store.clone()),
        Arc::new(crm_core::ports::SystemClock),
        Channels::new(Arc::clone(&gateway), gateway),
        Arc::new(MediaDir::new(std::env::temp_dir())),
        CourierSettings::default(),
    )
}

async fn personal_account(store: &Store) -> Account {
    create(
        store,
        NewAccount {
            name: "Sales phone".into(),
            account_type: AccountType::Personal,
            status: AccountStatus::Active,
            phone_number: Some("+15550000001".into()),
            api_id: Some(1),
            api_hash: Some(Sensitive("hash".into())),
            session: None,
            bot_token: None,
            bot_username: None,
            webhook_secret: None,
            telegram_user_id: Some(777),
            forward_url: None,
        },
    )
    .await
    .unwrap()
}

/// Message `id` with `text` in the private chat with `peer`, from the customer or (`Outbound`) from the account.
fn message_in(peer: i64, id: i64, direction: Direction, text: &str) -> InboundMessage {
    InboundMessage {
        chat: ChatRef {
            peer_id: PeerId(peer),
            chat_type: ChatType::Private,
            title: None,
            username: None,
            first_name: Some("Customer".into()),
            last_name: None,
        },
        telegram_message_id: TelegramMessageId(id),
        direction,
        message_type: MessageType::Text,
        text: Some(text.into()),
        caption: None,
        sender: None,
        reply_to_telegram_id: None,
        date: Utc::now(),
        edited_at: None,
        media: None,
        metadata: MessageMetadata::default(),
    }
}

async fn receive(inbox: &Inbox, account: &Account, message: InboundMessage) -> crm_core::inbox::Intake {
    inbox
        .receive(Arrival {
            account: account.clone(),
            event: InboundEvent::NewMessage(message),
            raw_update: None,
        })
        .await
        .unwrap()
}

/// What most stories start from: an admin, an account of one kind and a customer's chat with it.
struct Scene {
    store: Store,
    inbox: Arc<Inbox>,
    admin: User,
    account: Account,
    chat: ChatId,
}

async fn scene(database: &TestDatabase, kind: AccountType) -> Scene {
    let store = migrated_store(database).await;
    let inbox = inbox(&store);
    let admin = user(&store, "admin", Role::Admin).await;
    let account = match kind {
        AccountType::Bot => bot_account(&store, "bot", Some("123:secret")).await,
        AccountType::Personal => personal_account(&store).await,
    };
    let chat = customer_chat(&inbox, &account, 42).await;
    Scene {
        store,
        inbox,
        admin,
        account,
        chat,
    }
}

/// A customer's message in `account`'s chat with `peer`, so the chat exists; returns the chat.
async fn customer_chat(inbox: &Inbox, account: &Account, peer: i64) -> ChatId {
    let intake = receive(inbox, account, message_in(peer, 1, Direction::Inbound, "hello")).await;
    intake.chat_id.unwrap()
}

fn text(body: &str) -> Reply {
    Reply {
        text: Some(body.into()),
        upload: None,
    }
}

async fn stored(store: &Store, id: MessageId) -> crm_core::message::Message {
    message_repo::find_visible(store, Viewer::Admin, id)
        .await
        .unwrap()
        .unwrap()
}

/// The message ids of the queued send jobs, oldest first.
async fn queued_sends(store: &Store) -> Vec<MessageId> {
    job_repo::of_kind(store, "send_message")
        .await
        .unwrap()
        .into_iter()
        .filter_map(|job| match job.payload {
            Some(JobPayload::SendMessage { message_id }) => Some(message_id),
            _ => None,
        })
        .collect()
}

async fn a_reply_is_sent_once_and_recorded(database: TestDatabase) {
    let Scene {
        store,
        inbox,
        admin,
        chat,
        ..
    } = scene(&database, AccountType::Bot).await;
    let channel = ScriptedChannel::new(false, vec![Script::Accept(555)]);
    let courier = courier(&store, &channel);
    sequenced(&store).await;

    let queued = inbox
        .send(&admin, SendTarget::Chat(chat), text("  on our way  "))
        .await
        .unwrap();
    assert_eq!(
        (queued.status, queued.text.as_deref()),
        (MessageStatus::Queued, Some("on our way"))
    );
    let id = MessageId(queued.id);
    assert_eq!(queued_sends(&store).await, [id], "stored with its send job");
    let announced: Vec<String> = sequenced(&store).await.into_iter().map(|e| e.kind).collect();
    assert_eq!(announced, ["new_message", "chat_updated"]);

    assert_eq!(courier.deliver(id, 1, false).await.unwrap(), Delivered::Done);
    let calls = channel.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0.peer_id, PeerId(42));
    assert_eq!(calls[0].0.text.as_deref(), Some("on our way"));
    let message = stored(&store, id).await;
    assert_eq!(message.status, MessageStatus::Sent);
    assert_eq!(message.telegram_message_id, Some(TelegramMessageId(555)));
    let outbox = message.metadata.outbox.clone().unwrap();
    assert_eq!(
        (outbox.attempts, outbox.in_flight_since, outbox.error),
        (1, None, None)
    );
    assert_eq!(
        outbox.random_id,
        Some(calls[0].1),
        "the random id is kept with the message"
    );
    let events = sequenced(&store).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "message_updated");
    assert_eq!(events[0].payload["message"]["status"], "sent");
    assert_eq!(events[0].payload["message"]["telegram_id"], 555);

    // The job running again (a retried claim) finds nothing to do.
    assert_eq!(courier.deliver(id, 2, false).await.unwrap(), Delivered::Nothing);
    assert_eq!(channel.calls().len(), 1, "sent exactly once");
    assert_eq!(courier.unconfirmed(), 0);
}

/// Starts a delivery that reaches the channel and then dies before any answer (the process crashed, or the job
/// was cancelled): the attempt's start is recorded, its outcome is not.
async fn lose_an_attempt(courier: &Courier, channel: &ScriptedChannel, id: MessageId) {
    let called = channel.called.notified();
    tokio::select! {
        outcome = courier.deliver(id, 1, false) => panic!("the attempt was to hang, but ended: {outcome:?}"),
        () = called => {}
    }
}

async fn a_lost_bot_attempt_is_never_repeated(database: TestDatabase) {
    let Scene {
        store,
        inbox,
        admin,
        chat,
        ..
    } = scene(&database, AccountType::Bot).await;
    let channel = ScriptedChannel::new(false, vec![Script::Hang]);
    let courier = courier(&store, &channel);
    let id = MessageId(
        inbox
            .send(&admin, SendTarget::Chat(chat), text("once"))
            .await
            .unwrap()
            .id,
    );

    lose_an_attempt(&courier, &channel, id).await;
    assert!(
        stored(&store, id)
            .await
            .metadata
            .outbox
            .unwrap()
            .in_flight_since
            .is_some()
    );

    // The next attempt cannot know whether Telegram took the first: it does not send again.
    let outcome = courier.deliver(id, 2, false).await.unwrap();
    assert_eq!(outcome, Delivered::Failed(UNCONFIRMED.into()));
    assert_eq!(channel.calls().len(), 1, "the Bot API was called once");
    assert_eq!(courier.unconfirmed(), 1, "the residual window is counted");
    let message = stored(&store, id).await;
    assert_eq!(message.status, MessageStatus::Failed);
    let view = message_repo::views(&store, vec![message])
        .await
        .unwrap()
        .pop()
        .unwrap();
    assert_eq!(
        view.error.as_deref(),
        Some(UNCONFIRMED),
        "the operator is told to check"
    );

    // The operator checked and retries by hand: that is a new send, made once.
    inbox.retry(&admin, id).await.unwrap();
    assert_eq!(courier.deliver(id, 1, false).await.unwrap(), Delivered::Done);
    assert_eq!(channel.calls().len(), 2);
    assert_eq!(stored(&store, id).await.status, MessageStatus::Sent);
}

async fn a_lost_personal_attempt_is_repeated_with_the_same_random_id(database: TestDatabase) {
    let Scene {
        store,
        inbox,
        admin,
        chat,
        ..
    } = scene(&database, AccountType::Personal).await;
    let channel = ScriptedChannel::new(true, vec![Script::Hang, Script::Accept(77)]);
    let courier = courier(&store, &channel);
    let id = MessageId(
        inbox
            .send(&admin, SendTarget::Chat(chat), text("hi"))
            .await
            .unwrap()
            .id,
    );
    let random_id = stored(&store, id).await.metadata.random_id().unwrap();

    lose_an_attempt(&courier, &channel, id).await;
    assert_eq!(courier.deliver(id, 2, false).await.unwrap(), Delivered::Done);
    let calls = channel.calls();
    assert_eq!(
        calls.len(),
        2,
        "MTProto drops a repeat, so the attempt is made again"
    );
    assert!(
        calls.iter().all(|(_, r)| *r == random_id),
        "both with the message's fixed random id"
    );
    let message = stored(&store, id).await;
    assert_eq!(
        (message.status, message.telegram_message_id),
        (MessageStatus::Sent, Some(TelegramMessageId(77)))
    );
    assert_eq!(message.metadata.outbox.unwrap().attempts, 2);
    assert_eq!(courier.unconfirmed(), 0);
}

async fn an_ambiguous_bot_send_fails_unconfirmed_until_retried_by_hand(database: TestDatabase) {
    let Scene {
        store,
        inbox,
        admin,
        chat,
        ..
    } = scene(&database, AccountType::Bot).await;
    let channel = ScriptedChannel::new(
        false,
        vec![Script::Fail(SendError::Ambiguous(
            "connection reset after the request".into(),
        ))],
    );
    let courier = courier(&store, &channel);
    let id = MessageId(
        inbox
            .send(&admin, SendTarget::Chat(chat), text("hi"))
            .await
            .unwrap()
            .id,
    );

    let Delivered::Failed(reason) = courier.deliver(id, 1, false).await.unwrap() else {
        panic!("an ambiguous bot send is not retried automatically");
    };
    assert!(
        reason.starts_with(UNCONFIRMED) && reason.contains("connection reset"),
        "{reason}"
    );
    assert_eq!(courier.unconfirmed(), 1);
    assert_eq!(stored(&store, id).await.status, MessageStatus::Failed);
    assert_eq!(
        courier.deliver(id, 2, false).await.unwrap(),
        Delivered::Nothing,
        "a failed message stays put"
    );
    assert_eq!(channel.calls().len(), 1);

    let retried = inbox.retry(&admin, id).await.unwrap();
    assert_eq!((retried.status, retried.error), (MessageStatus::Queued, None));
    assert_eq!(
        queued_sends(&store).await,
        [id, id],
        "a second send job, of the next generation"
    );
    assert_eq!(courier.deliver(id, 1, false).await.unwrap(), Delivered::Done);
    assert_eq!(channel.calls().len(), 2);
    let error = inbox.retry(&admin, id).await.unwrap_err();
    assert!(
        matches!(
            error,
            crm_core::CoreError::Conflict {
                code: "not_failed",
                ..
            }
        ),
        "{error:?}"
    );
}

async fn passing_failures_retry_until_the_last_attempt(database: TestDatabase) {
    let Scene {
        store,
        inbox,
        admin,
        chat,
        ..
    } = scene(&database, AccountType::Bot).await;
    let channel = ScriptedChannel::new(
        false,
        vec![
            Script::Fail(SendError::Transient("502 Bad Gateway".into())),
            Script::Fail(SendError::RetryAfter(
                std::time::Duration::from_secs(30),
                "Too Many Requests".into(),
            )),
            Script::Fail(SendError::Transient("502 Bad Gateway".into())),
        ],
    );
    let courier = courier(&store, &channel);
    let id = MessageId(
        inbox
            .send(&admin, SendTarget::Chat(chat), text("hi"))
            .await
            .unwrap()
            .id,
    );

    assert_eq!(
        courier.deliver(id, 1, false).await.unwrap(),
        Delivered::Retry("502 Bad Gateway".into())
    );
    let message = stored(&store, id).await;
    assert_eq!(
        message.status,
        MessageStatus::Queued,
        "still queued for the next attempt"
    );
    assert_eq!(
        message.metadata.outbox.unwrap().in_flight_since,
        None,
        "the attempt's outcome is recorded"
    );
    let before = Utc::now();
    let Delivered::RetryAt(at, reason) = courier.deliver(id, 2, false).await.unwrap() else {
        panic!("a long flood wait reschedules the job");
    };
    assert!(
        at >= before + chrono::Duration::seconds(29),
        "not before Telegram's wait"
    );
    assert_eq!(reason, "Too Many Requests");
    let Delivered::Failed(reason) = courier.deliver(id, 3, true).await.unwrap() else {
        panic!("the last attempt's failure is final");
    };
    assert!(
        reason.contains("gave up after 3 attempts") && reason.contains("502"),
        "{reason}"
    );
    let message = stored(&store, id).await;
    assert_eq!(message.status, MessageStatus::Failed);
    assert_eq!(message.metadata.outbox.unwrap().attempts, 3);
    assert_eq!(channel.calls().len(), 3);
    assert_eq!(courier.unconfirmed(), 0, "none of these reached Telegram");
}

async fn a_personal_echo_merges_into_the_operators_message(database: TestDatabase) {
    let Scene {
        store,
        inbox,
        admin,
        account: phone,
        chat,
    } = scene(&database, AccountType::Personal).await;
    let channel = ScriptedChannel::new(true, vec![Script::Accept(900)]);
    let courier = courier(&store, &channel);
    let id = MessageId(
        inbox
            .send(&admin, SendTarget::Chat(chat), text("hi"))
            .await
            .unwrap()
            .id,
    );

    // The account's update stream delivers its own outgoing message before the send's answer is recorded.
    let echo = message_in(42, 900, Direction::Outbound, "hi");
    let echo_id = receive(&inbox, &phone, echo).await.message_id.unwrap();
    assert_eq!(
        chat_repo::view(&store, Viewer::Admin, chat)
            .await
            .unwrap()
            .unwrap()
            .message_count,
        3
    );
    sequenced(&store).await;

    assert_eq!(courier.deliver(id, 1, false).await.unwrap(), Delivered::Done);
    assert!(
        message_repo::find_visible(&store, Viewer::Admin, echo_id)
            .await
            .unwrap()
            .is_none(),
        "the echo goes"
    );
    let message = stored(&store, id).await;
    assert_eq!(
        (message.status, message.telegram_message_id),
        (MessageStatus::Sent, Some(TelegramMessageId(900)))
    );
    let view = chat_repo::view(&store, Viewer::Admin, chat)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        view.message_count, 2,
        "the customer's message and the operator's, once"
    );
    let kinds: Vec<String> = sequenced(&store).await.into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["message_removed", "message_updated", "chat_updated"]);
}

async fn concurrent_operators_lose_no_reply_and_keep_counts(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let inbox = inbox(&store);
    let admin = user(&store, "admin", Role::Admin).await;
    let bot = bot_account(&store, "bot", Some("123:secret")).await;
    let chats: Vec<ChatId> = {
        let mut chats = Vec::new();
        for peer in 0..3 {
            chats.push(customer_chat(&inbox, &bot, 100 + peer).await);
        }
        chats
    };
    sequenced(&store).await;
    const OPERATORS: usize = 8;
    const EACH: usize = 15;
    let operators = (0..OPERATORS).map(|operator| {
        let inbox = Arc::clone(&inbox);
        let admin = admin.clone();
        let chats = chats.clone();
        tokio::spawn(async move {
            let mut mine = Vec::new();
            for n in 0..EACH {
                let chat = chats[(operator + n) % chats.len()];
                let view = inbox
                    .send(&admin, SendTarget::Chat(chat), text(&format!("{operator}-{n}")))
                    .await
                    .expect("every reply is accepted");
                mine.push(MessageId(view.id));
            }
            mine
        })
    });
    let mut accepted = Vec::new();
    for operator in operators {
        accepted.extend(operator.await.unwrap());
    }
    assert_eq!(accepted.len(), OPERATORS * EACH);
    let mut jobs = queued_sends(&store).await;
    jobs.sort();
    accepted.sort();
    assert_eq!(jobs, accepted, "one send job per accepted reply");
    let mut total = 0;
    for chat in &chats {
        let view = chat_repo::view(&store, Viewer::Admin, *chat)
            .await
            .unwrap()
            .unwrap();
        total += view.message_count - 1;
    }
    assert_eq!(total as usize, OPERATORS * EACH, "each chat counts its replies");
    let events = sequenced(&store).await;
    assert_eq!(events.len(), OPERATORS * EACH * 2);
    assert!(events.windows(2).all(|w| w[1].seq.0 == w[0].seq.0 + 1));
}

async fn concurrent_assignments_respect_the_chat_limit(database: TestDatabase) {
    let store = migrated_store(&database).await;
    let inbox = inbox(&store);
    let admin = user(&store, "admin", Role::Admin).await;
    let operator: User = user(&store, "operator", Role::Operator).await;
    let limit = usize::try_from(operator.max_chats).unwrap();
    let bot = bot_account(&store, "bot", Some("123:secret")).await;
    let mut chats = Vec::new();
    for peer in 0..(limit as i64 + 6) {
        chats.push(customer_chat(&inbox, &bot, 100 + peer).await);
    }
    sequenced(&store).await;
    let attempts = chats.iter().map(|chat| {
        let inbox = Arc::clone(&inbox);
        let admin = admin.clone();
        let (chat, to) = (*chat, operator.id);
        tokio::spawn(async move { inbox.assign(&admin, chat, Some(to)).await })
    });
    let mut granted = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(assignment) => {
                assert_eq!(assignment.operator_id, operator.id);
                granted += 1;
            }
            Err(crm_core::CoreError::Invalid { code, .. }) => assert_eq!(code, "max_chats_reached"),
            Err(other) => panic!("an assignment failed with {other:?}, not the chat limit"),
        }
    }
    assert_eq!(granted, limit, "exactly the operator's limit, under concurrency");
    let held = chat_repo::held_by(&store, operator.id).await.unwrap();
    assert_eq!(held.len(), limit);
    let added = sequenced(&store)
        .await
        .into_iter()
        .filter(|e| e.kind == "chat_added")
        .count();
    assert_eq!(added, limit, "the operator is told of each chat they got");

    // The operator sees exactly the chats they hold; releasing one hands it back.
    for chat in &chats {
        let visible = chat_repo::view(&store, operator.viewer(), *chat)
            .await
            .unwrap()
            .is_some();
        assert_eq!(visible, held.contains(chat), "chat {chat}");
    }
    inbox.release(&operator, held[0]).await.unwrap();
    assert!(
        chat_repo::view(&store, operator.viewer(), held[0])
            .await
            .unwrap()
            .is_none()
    );
    let kinds: Vec<String> = sequenced(&store).await.into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["chat_removed", "chat_updated"]);
}

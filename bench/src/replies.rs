//! Replies: operators' messages through the HTTP API (`POST /api/chats/{id}/send_message/`), each stored as
//! `queued` with its send job and sent by the job runner to the fake Bot API. After the requests it waits (up to
//! the time limit) until no reply is queued, then counts what reached the fake, what the database says, and the
//! sends the courier could not confirm.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crm_core::inbox::Courier;
use crm_core::message::MessageStatus;
use crm_store::entity::messages;
use crm_store::{Db, Store};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;

use crate::fake_bot_api::{FakeBotApi, Seen};
use crate::load;
use crate::report::{Answer, Figures, progress};

/// Where the replies go and who sends them.
pub struct Plan<'a> {
    /// HTTP client.
    pub client: &'a reqwest::Client,
    /// `http://127.0.0.1:<port>`.
    pub base: &'a str,
    /// An admin's API token.
    pub token: &'a str,
    /// The store, to watch the replies' status.
    pub store: &'a Store,
    /// The app's courier, for its unconfirmed count.
    pub courier: Arc<Courier>,
    /// The fake Bot API the app sends to.
    pub fake: &'a FakeBotApi,
    /// Chats to reply in.
    pub chats: &'a [i64],
}

/// What the reply scenario measured.
pub struct Replies {
    /// The API requests.
    pub figures: Figures,
    /// What the fake Bot API saw.
    pub seen: Seen,
    /// Replies the database shows as sent.
    pub sent: u64,
    /// Replies the database shows as failed.
    pub failed: u64,
    /// Replies still queued when the wait ended.
    pub queued: u64,
    /// Sends the courier could not confirm.
    pub unconfirmed: u64,
    /// From the first request to the last reply leaving the queue.
    pub drained_in: Duration,
}

async fn count(store: &Store, status: MessageStatus) -> u64 {
    messages::Entity::find()
        .filter(messages::Column::SentByUserId.is_not_null())
        .filter(messages::Column::Status.eq(Db(status)))
        .count(store.db())
        .await
        .unwrap_or(u64::MAX)
}

/// Sends `replies` replies with `concurrency` senders over 100 chats, then waits for the queue to drain.
pub async fn run(plan: Plan<'_>, replies: usize, concurrency: usize, limit: Duration) -> Replies {
    let started = Instant::now();
    let spread = plan.chats.len().clamp(1, 100);
    let figures = load::closed(
        format!("replies via API, concurrency {concurrency}"),
        replies,
        concurrency,
        limit,
        |n| {
            let chat = plan.chats.get(n % spread * (plan.chats.len() / spread)).copied();
            let request = plan
                .client
                .post(format!(
                    "{}/api/chats/{}/send_message/",
                    plan.base,
                    chat.unwrap_or(0)
                ))
                .header("Authorization", format!("Token {}", plan.token))
                .json(&json!({"text": format!("Thank you, reply number {n} from the bench")}))
                .send();
            async move { Answer::of(request.await).await }
        },
    )
    .await;
    progress(format!(
        "{} replies accepted; waiting for the job runner to send them",
        figures.latencies.len() - figures.non_2xx()
    ));
    let mut last_report = Instant::now();
    let mut queued = count(plan.store, MessageStatus::Queued).await;
    while queued > 0 && started.elapsed() < limit * 2 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        queued = count(plan.store, MessageStatus::Queued).await;
        if last_report.elapsed() > Duration::from_secs(5) {
            progress(format!("{queued} replies still queued"));
            last_report = Instant::now();
        }
    }
    let drained_in = started.elapsed();
    Replies {
        figures,
        seen: plan.fake.seen(),
        sent: count(plan.store, MessageStatus::Sent).await,
        failed: count(plan.store, MessageStatus::Failed).await,
        queued,
        unconfirmed: plan.courier.unconfirmed(),
        drained_in,
    }
}

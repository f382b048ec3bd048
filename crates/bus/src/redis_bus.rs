//! Events between instances over Redis pub/sub. Every event is delivered to this instance's subscribers at once
//! and published to a Redis channel by one writer task (keeping the order); a reader task hands other
//! instances' events to local subscribers. When Redis is unreachable the bus reports itself degraded, keeps
//! serving local connections, and reconnects on its own; clients fill the gap with `resume` from the event log.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crm_core::event::{Event, EventBus};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use crate::InProcessBus;

/// The Redis channel events travel on.
pub const CHANNEL: &str = "crm:events";
/// Events waiting for the Redis writer before new ones are dropped (and the bus reported degraded).
const OUTBOX: usize = 10_000;
/// Pause between reconnection attempts.
const RETRY: Duration = Duration::from_secs(1);

#[derive(Serialize, Deserialize)]
struct Envelope {
    origin: String,
    event: Event,
}

/// An [`EventBus`] shared by every instance connected to the same Redis.
pub struct RedisBus {
    local: InProcessBus,
    outgoing: mpsc::Sender<Event>,
    publishing_ok: Arc<AtomicBool>,
    receiving_ok: Arc<AtomicBool>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus")
            .field("degraded", &self.degraded())
            .finish()
    }
}

impl RedisBus {
    /// A bus on the Redis at `url`, for the instance `instance`. Fails only on an unusable URL; an unreachable
    /// Redis makes the bus start degraded and keep retrying.
    pub fn start(url: &str, instance: &str) -> Result<Arc<Self>, String> {
        let client = redis::Client::open(url).map_err(|error| format!("invalid REDIS_URL: {error}"))?;
        let (outgoing, pending) = mpsc::channel(OUTBOX);
        let bus = Arc::new(Self {
            local: InProcessBus::default(),
            outgoing,
            publishing_ok: Arc::new(AtomicBool::new(true)),
            receiving_ok: Arc::new(AtomicBool::new(false)),
        });
        tokio::spawn(write(
            client.clone(),
            instance.to_owned(),
            pending,
            Arc::clone(&bus.publishing_ok),
        ));
        let flags = [Arc::clone(&bus.receiving_ok), Arc::clone(&bus.publishing_ok)];
        tokio::spawn(read(client, instance.to_owned(), bus.local.clone(), flags));
        Ok(bus)
    }
}

async fn write(
    client: redis::Client,
    origin: String,
    mut pending: mpsc::Receiver<Event>,
    ok: Arc<AtomicBool>,
) {
    let mut connection = None;
    while let Some(event) = pending.recv().await {
        let Ok(payload) = serde_json::to_string(&Envelope {
            origin: origin.clone(),
            event,
        }) else {
            continue;
        };
        // One retry on a fresh connection; after that the event is left to `resume`.
        for _ in 0..2 {
            if connection.is_none() {
                connection = client.get_multiplexed_async_connection().await.ok();
            }
            let Some(conn) = connection.as_mut() else { break };
            let sent: redis::RedisResult<i64> = redis::cmd("PUBLISH")
                .arg(CHANNEL)
                .arg(&payload)
                .query_async(conn)
                .await;
            if sent.is_ok() {
                ok.store(true, Ordering::Relaxed);
                break;
            }
            connection = None;
        }
        if connection.is_none() && ok.swap(false, Ordering::Relaxed) {
            tracing::warn!("Redis unreachable: events reach only this instance's connections");
        }
    }
}

/// Receives other instances' events. `flags` are (receiving, publishing): a working subscription proves Redis
/// reachable again, so both turn healthy.
async fn read(client: redis::Client, origin: String, local: InProcessBus, flags: [Arc<AtomicBool>; 2]) {
    let [ok, publishing_ok] = flags;
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => {
                if pubsub.subscribe(CHANNEL).await.is_ok() {
                    ok.store(true, Ordering::Relaxed);
                    publishing_ok.store(true, Ordering::Relaxed);
                    tracing::info!("receiving events from other instances through Redis");
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        let Ok(payload) = message.get_payload::<String>() else {
                            continue;
                        };
                        match serde_json::from_str::<Envelope>(&payload) {
                            Ok(envelope) if envelope.origin != origin => local.publish(envelope.event),
                            Ok(_) => {}
                            Err(error) => tracing::warn!(%error, "unreadable event from Redis ignored"),
                        }
                    }
                }
                if ok.swap(false, Ordering::Relaxed) {
                    tracing::warn!("lost the Redis subscription; reconnecting");
                }
            }
            Err(_) => ok.store(false, Ordering::Relaxed),
        }
        tokio::time::sleep(RETRY).await;
    }
}

impl EventBus for RedisBus {
    fn publish(&self, event: Event) {
        self.local.publish(event.clone());
        if self.outgoing.try_send(event).is_err() {
            self.publishing_ok.store(false, Ordering::Relaxed);
        }
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.local.subscribe()
    }

    fn degraded(&self) -> bool {
        !self.receiving_ok.load(Ordering::Relaxed) || !self.publishing_ok.load(Ordering::Relaxed)
    }
}

/// Publishes one event to every instance on the Redis at `url` and returns once Redis accepted it (for short-lived
/// processes such as the command line, which have no bus of their own).
pub async fn publish_once(url: &str, origin: &str, event: Event) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|error| format!("invalid REDIS_URL: {error}"))?;
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .map_err(|error| format!("Redis is unreachable: {error}"))?;
    let payload = serde_json::to_string(&Envelope {
        origin: origin.to_owned(),
        event,
    })
    .map_err(|error| error.to_string())?;
    redis::cmd("PUBLISH")
        .arg(CHANNEL)
        .arg(payload)
        .query_async::<i64>(&mut connection)
        .await
        .map(|_| ())
        .map_err(|error| format!("Redis refused the event: {error}"))
}

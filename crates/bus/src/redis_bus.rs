//! Events between instances over Redis pub/sub. Every event is delivered to this instance's subscribers at once
//! and published to a Redis channel by one writer task (keeping the order); a reader task hands other
//! instances' events to local subscribers. When Redis is unreachable the bus reports itself degraded, keeps
//! serving local connections, and reconnects on its own; clients fill the gap with `resume` from the event log.
//!
//! A connection that dies without a word (a partition, a NAT or firewall forgetting it, a Redis that hangs)
//! gives no error to wait for, so the reader proves its subscription alive: every few seconds it publishes a
//! heartbeat and must receive it back through its own subscription in time, or it drops the subscription,
//! reports the bus degraded and subscribes again. Every Redis call has a deadline.

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
/// The channel heartbeats travel on (apart from events, so that instances of older versions never see them).
pub const HEARTBEAT_CHANNEL: &str = "crm:heartbeat";
/// Pause between reconnection attempts.
const RETRY: Duration = Duration::from_secs(1);
/// How often the reader sends a heartbeat through Redis to itself.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(3);
/// A subscription whose own heartbeat has not come back for this long is dead.
const HEARTBEAT_DEADLINE: Duration = Duration::from_secs(10);
/// The longest any one Redis call (connect, subscribe, publish) may take.
const CALL_DEADLINE: Duration = Duration::from_secs(3);

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
    let mut failed_at: Option<tokio::time::Instant> = None;
    while let Some(event) = pending.recv().await {
        // While Redis is away, events are not held up one deadline each: they are left to `resume` until the
        // next attempt is due.
        if connection.is_none() && failed_at.is_some_and(|at| at.elapsed() < RETRY) {
            continue;
        }
        let Ok(payload) = serde_json::to_string(&Envelope {
            origin: origin.clone(),
            event,
        }) else {
            continue;
        };
        // One retry on a fresh connection; after that the event is left to `resume`.
        for _ in 0..2 {
            if connection.is_none() {
                connection = connect(&client).await;
            }
            let Some(conn) = connection.as_mut() else { break };
            if publish(conn, CHANNEL, &payload).await {
                ok.store(true, Ordering::Relaxed);
                break;
            }
            connection = None;
        }
        if connection.is_none() {
            failed_at = Some(tokio::time::Instant::now());
            if ok.swap(false, Ordering::Relaxed) {
                tracing::warn!("Redis unreachable: events reach only this instance's connections");
            }
        } else {
            failed_at = None;
        }
    }
}

/// A multiplexed connection, or `None` when Redis does not answer within the deadline.
async fn connect(client: &redis::Client) -> Option<redis::aio::MultiplexedConnection> {
    tokio::time::timeout(CALL_DEADLINE, client.get_multiplexed_async_connection())
        .await
        .ok()
        .and_then(Result::ok)
}

/// Publishes `payload` on `channel`; false when Redis refused it or did not answer within the deadline.
async fn publish(connection: &mut redis::aio::MultiplexedConnection, channel: &str, payload: &str) -> bool {
    let mut command = redis::cmd("PUBLISH");
    command.arg(channel).arg(payload);
    let sent = command.query_async::<i64>(connection);
    matches!(tokio::time::timeout(CALL_DEADLINE, sent).await, Ok(Ok(_)))
}

/// A subscription to the events and heartbeat channels, or `None` when Redis does not answer in time.
async fn subscribe(client: &redis::Client) -> Option<redis::aio::PubSub> {
    let mut pubsub = tokio::time::timeout(CALL_DEADLINE, client.get_async_pubsub())
        .await
        .ok()?
        .ok()?;
    let subscribed =
        tokio::time::timeout(CALL_DEADLINE, pubsub.subscribe(&[CHANNEL, HEARTBEAT_CHANNEL])).await;
    matches!(subscribed, Ok(Ok(()))).then_some(pubsub)
}

/// Receives other instances' events. `flags` are (receiving, publishing): a working subscription proves Redis
/// reachable again, so both turn healthy.
async fn read(client: redis::Client, origin: String, local: InProcessBus, flags: [Arc<AtomicBool>; 2]) {
    let [ok, publishing_ok] = flags;
    loop {
        if let Some(pubsub) = subscribe(&client).await {
            ok.store(true, Ordering::Relaxed);
            publishing_ok.store(true, Ordering::Relaxed);
            tracing::info!("receiving events from other instances through Redis");
            listen(&client, &origin, &local, pubsub).await;
            if ok.swap(false, Ordering::Relaxed) {
                tracing::warn!("lost the Redis subscription; reconnecting");
            }
        } else if ok.swap(false, Ordering::Relaxed) {
            tracing::warn!("Redis unreachable: events of other instances do not arrive");
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Hands other instances' events to local subscribers until the subscription ends or its heartbeat stops
/// coming back.
async fn listen(client: &redis::Client, origin: &str, local: &InProcessBus, pubsub: redis::aio::PubSub) {
    let mut messages = pubsub.into_on_message();
    let mut heartbeats = tokio::time::interval(HEARTBEAT_EVERY);
    let mut sender = None;
    let mut sent: u64 = 0;
    let mut last_returned = tokio::time::Instant::now();
    loop {
        tokio::select! {
            message = messages.next() => {
                let Some(message) = message else { return };
                let Ok(payload) = message.get_payload::<String>() else {
                    continue;
                };
                if message.get_channel_name() == HEARTBEAT_CHANNEL {
                    if payload.strip_prefix(origin).is_some_and(|rest| rest.starts_with(' ')) {
                        last_returned = tokio::time::Instant::now();
                    }
                    continue;
                }
                match serde_json::from_str::<Envelope>(&payload) {
                    Ok(envelope) if envelope.origin != origin => local.publish(envelope.event),
                    Ok(_) => {}
                    Err(error) => tracing::warn!(%error, "unreadable event from Redis ignored"),
                }
            }
            _ = heartbeats.tick() => {
                if last_returned.elapsed() > HEARTBEAT_DEADLINE {
                    tracing::warn!("the Redis subscription stopped answering");
                    return;
                }
                if sender.is_none() {
                    sender = connect(client).await;
                }
                sent += 1;
                let beat = format!("{origin} {sent}");
                if let Some(connection) = sender.as_mut()
                    && !publish(connection, HEARTBEAT_CHANNEL, &beat).await
                {
                    sender = None;
                }
            }
        }
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

//! The relay: one per instance, it carries the committed event log to this instance's WebSocket hub, in order,
//! without a gap.
//!
//! - **Sequencing.** Woken whenever a local unit of work wrote events (and every few seconds, for events a
//!   crashed instance left), it numbers the committed events through the [`EventLog`] and announces each batch
//!   on the bus ([`Event::Logged`]), which carries it to every instance.
//! - **Delivery.** It hands events to local subscribers strictly in number order. A batch that continues what was
//!   delivered goes out as it is; a batch that leaves a gap (an announcement lost on the way, Redis down) makes it
//!   read the missing numbers from the log first. A periodic look at the log's last number catches a lost tail.
//!
//! So a subscriber sees every committed event exactly once, in commit order, whichever instance produced it,
//! and one that reconnects resumes from the log after its last number. The relay also passes the bus's notices
//! for WebSocket sessions (a user changed, sessions revoked) to [`Relay::notices`], so sessions never receive
//! (and clone) the log's batches themselves.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crm_core::event::{Event, EventBus, StoredEvent};
use crm_core::ids::EventSeq;
use crm_core::ports::EventLog;
use tokio::sync::{Notify, broadcast, watch};

/// Events numbered per sequencing round.
const SEQUENCE_BATCH: u32 = 512;
/// Events read from the log per catch-up query.
const CATCH_UP_BATCH: u32 = 1000;
/// How often the log is checked for events nobody announced (a crashed instance's, a lost announcement).
const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// How many delivered events a slow subscriber may fall behind before it is told it lagged.
pub const FEED_CAPACITY: usize = 4096;

/// The ordered feed of committed events for this instance.
pub struct Relay {
    log: Arc<dyn EventLog>,
    bus: Arc<dyn EventBus>,
    appended: Arc<Notify>,
    feed: broadcast::Sender<Arc<StoredEvent>>,
    notices: broadcast::Sender<Event>,
    delivered: AtomicI64,
}

impl Relay {
    /// A relay numbering and reading events through `log`, announcing them on `bus`, woken by `appended`
    /// (notified after every commit that wrote events).
    pub fn new(log: Arc<dyn EventLog>, bus: Arc<dyn EventBus>, appended: Arc<Notify>) -> Arc<Self> {
        let (feed, _) = broadcast::channel(FEED_CAPACITY);
        let (notices, _) = broadcast::channel(FEED_CAPACITY);
        Arc::new(Self {
            log,
            bus,
            appended,
            feed,
            notices,
            delivered: AtomicI64::new(0),
        })
    }

    /// Notices for WebSocket sessions from the bus: `UserChanged`, `SessionsRevoked` and `TokenRevoked`.
    pub fn notices(&self) -> broadcast::Receiver<Event> {
        self.notices.subscribe()
    }

    /// Starts receiving events, and tells the number of the last one delivered before: every event after it
    /// arrives through the receiver, in order.
    pub fn subscribe(&self) -> (EventSeq, broadcast::Receiver<Arc<StoredEvent>>) {
        // Subscribe first: an event delivered in between is then both in the receiver and at or below the
        // number, and the subscriber skips it; the other order could lose it.
        let receiver = self.feed.subscribe();
        (self.delivered(), receiver)
    }

    /// The number of the last event delivered here.
    pub fn delivered(&self) -> EventSeq {
        EventSeq(self.delivered.load(Ordering::Acquire))
    }

    /// Runs until `shutdown` turns true: starts from the log's current end, then numbers and delivers.
    pub async fn run(self: Arc<Self>, shutdown: watch::Receiver<bool>) {
        match self.log.last_seq().await {
            Ok(last) => self.delivered.store(last.0, Ordering::Release),
            Err(error) => {
                tracing::warn!(%error, "event log unreadable at start; delivering from the beginning")
            }
        }
        let sequencer = tokio::spawn(Arc::clone(&self).sequence(shutdown.clone()));
        self.deliver(shutdown).await;
        let _ = sequencer.await;
    }

    /// Numbers committed events whenever a commit wrote some (or a sweep finds some), and announces them.
    async fn sequence(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                _ = self.appended.notified() => {}
                _ = sweep.tick() => {}
            }
            loop {
                match self.log.sequence_pending(SEQUENCE_BATCH).await {
                    Ok(events) if events.is_empty() => break,
                    Ok(events) => {
                        let full = events.len() == SEQUENCE_BATCH as usize;
                        self.bus.publish(Event::Logged { events });
                        if !full {
                            break;
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "events not numbered yet; retrying on the next commit or sweep");
                        break;
                    }
                }
            }
        }
    }

    /// Delivers announced batches in order, filling gaps from the log.
    async fn deliver(&self, mut shutdown: watch::Receiver<bool>) {
        let mut announcements = self.bus.subscribe();
        let mut sweep = tokio::time::interval(SWEEP_EVERY);
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                announced = announcements.recv() => match announced {
                    Ok(Event::Logged { events }) => self.accept(events).await,
                    Ok(notice @ (Event::UserChanged { .. } | Event::SessionsRevoked { .. } | Event::TokenRevoked { .. })) => {
                        let _ = self.notices.send(notice);
                    }
                    Ok(Event::AccountControl { .. }) => {}
                    // Announcements were dropped while this task was busy: the log has them.
                    Err(broadcast::error::RecvError::Lagged(_)) => self.catch_up(None).await,
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = sweep.tick() => {
                    if let Ok(last) = self.log.last_seq().await
                        && last > self.delivered()
                    {
                        self.catch_up(Some(last)).await;
                    }
                }
            }
        }
    }

    /// Delivers an announced batch: what continues the feed at once, after reading any gap before it.
    async fn accept(&self, events: Vec<StoredEvent>) {
        let Some(first) = events.first().map(|event| event.seq) else {
            return;
        };
        if first.0 > self.delivered().0 + 1 {
            self.catch_up(Some(EventSeq(first.0 - 1))).await;
        }
        for event in events {
            self.publish(event);
        }
    }

    /// Reads and delivers events after the last delivered one, up to `until` (or the end of the log).
    async fn catch_up(&self, until: Option<EventSeq>) {
        loop {
            let after = self.delivered();
            if until.is_some_and(|until| after >= until) {
                return;
            }
            match self.log.read_after(after, CATCH_UP_BATCH).await {
                Ok(events) if events.is_empty() => return,
                Ok(events) => {
                    for event in events {
                        if until.is_some_and(|until| event.seq > until) {
                            return;
                        }
                        self.publish(event);
                    }
                }
                Err(error) => {
                    tracing::warn!(%error, "events could not be read from the log; the next sweep tries again");
                    return;
                }
            }
        }
    }

    /// Hands `event` to the subscribers if it is the next one; an event delivered already is skipped.
    fn publish(&self, event: StoredEvent) {
        let delivered = self.delivered.load(Ordering::Acquire);
        if event.seq.0 != delivered + 1 {
            return;
        }
        self.delivered.store(event.seq.0, Ordering::Release);
        // No subscriber is not an error: nobody is connected to care.
        let _ = self.feed.send(Arc::new(event));
    }
}

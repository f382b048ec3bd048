//! Event bus implementations: the in-process bus for the embedded single-instance mode, and the Redis bus
//! that carries events between several instances; and the relay, which turns the committed event log into an
//! ordered feed for this instance's WebSocket hub.

pub mod redis_bus;
pub mod relay;

pub use redis_bus::RedisBus;
pub use relay::Relay;

use crm_core::event::{Event, EventBus};
use tokio::sync::broadcast;

/// How many events a subscriber may fall behind before it is told it lagged.
pub const DEFAULT_CAPACITY: usize = 4096;

/// Delivers events to subscribers in this process through a `tokio::sync::broadcast` channel.
#[derive(Debug, Clone)]
pub struct InProcessBus {
    sender: broadcast::Sender<Event>,
}

impl InProcessBus {
    /// A bus whose subscribers may fall `capacity` events behind.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self { sender }
    }
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl EventBus for InProcessBus {
    fn publish(&self, event: Event) {
        // No subscriber is not an error: nobody is connected to care.
        let receivers = self.sender.send(event).unwrap_or(0);
        tracing::trace!(receivers, "event published");
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_subscriber_receives_events_in_order() {
        let bus = InProcessBus::new(8);
        let mut first = bus.subscribe();
        let mut second = bus.subscribe();
        bus.publish(Event::UserChanged { user_id: 1 });
        bus.publish(Event::SessionsRevoked { user_id: 2 });
        for receiver in [&mut first, &mut second] {
            assert_eq!(receiver.recv().await.unwrap(), Event::UserChanged { user_id: 1 });
            assert_eq!(
                receiver.recv().await.unwrap(),
                Event::SessionsRevoked { user_id: 2 }
            );
        }
    }

    #[tokio::test]
    async fn a_slow_subscriber_lags_instead_of_blocking_the_publisher() {
        let bus = InProcessBus::new(2);
        let mut slow = bus.subscribe();
        for user_id in 0..5 {
            bus.publish(Event::UserChanged { user_id });
        }
        assert!(matches!(
            slow.recv().await,
            Err(broadcast::error::RecvError::Lagged(3))
        ));
        assert_eq!(slow.recv().await.unwrap(), Event::UserChanged { user_id: 3 });
    }

    #[test]
    fn publishing_without_subscribers_is_fine() {
        InProcessBus::default().publish(Event::UserChanged { user_id: 1 });
    }
}

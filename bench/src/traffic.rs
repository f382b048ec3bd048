//! Traffic shaped like Telegram's: updates carry the second they were sent as `date` (so hundreds share one),
//! nine in ten go to a few hot chats (bursts from the same customers), the tenth to any seeded chat, and every
//! update and message id is new.

use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::{Value, json};

/// Peer id of the first seeded chat; chat `n` has peer `FIRST_PEER + n`.
pub const FIRST_PEER: i64 = 1_000_000;

/// One update to send.
#[derive(Debug, Clone, Copy)]
pub struct Update {
    /// `update_id`, also used as the message id (unique in every chat).
    pub id: i64,
    /// The customer's Telegram id, which is the private chat's id.
    pub peer: i64,
    /// Unix seconds: the current second.
    pub date: i64,
}

impl Update {
    /// The seeded chat's number (its peer minus [`FIRST_PEER`]).
    pub fn customer(&self) -> i64 {
        self.peer - FIRST_PEER
    }

    /// The text of the message.
    pub fn text(&self) -> String {
        format!("Hello, this is about order #{}: when will it ship?", self.id)
    }

    /// The Bot API update, as Telegram posts it to a webhook.
    pub fn body(&self) -> Value {
        let customer = self.customer();
        let user = json!({"id": self.peer, "is_bot": false, "first_name": format!("Customer {customer}"),
            "username": format!("customer_{customer}"), "language_code": "en"});
        let chat = json!({"id": self.peer, "first_name": format!("Customer {customer}"),
            "username": format!("customer_{customer}"), "type": "private"});
        json!({"update_id": self.id, "message": {"message_id": self.id, "from": user, "chat": chat,
            "date": self.date, "text": self.text()}})
    }
}

/// The generator of updates, shared by every sender.
#[derive(Debug)]
pub struct Traffic {
    next_id: AtomicI64,
    hot: Vec<i64>,
    chats: i64,
}

impl Traffic {
    /// Updates over `chats` seeded chats, `hot` of them (spread evenly) getting nine in ten updates; ids start
    /// at `first_id`.
    pub fn new(chats: i64, hot: usize, first_id: i64) -> Self {
        let chats = chats.max(1);
        let hot = i64::try_from(hot).unwrap_or(chats).clamp(1, chats);
        let step = chats / hot;
        Self {
            next_id: AtomicI64::new(first_id),
            hot: (0..hot).map(|k| FIRST_PEER + k * step).collect(),
            chats,
        }
    }

    /// Peer ids of the hot chats.
    #[cfg(test)]
    pub fn hot_peers(&self) -> &[i64] {
        &self.hot
    }

    /// The `n`-th update of a scenario, dated now.
    pub fn update(&self, n: usize) -> Update {
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let peer = if n % 10 == 9 {
            FIRST_PEER + n.wrapping_mul(7919).rem_euclid(self.chats)
        } else {
            let index = usize::try_from(n).unwrap_or(0) % self.hot.len().max(1);
            self.hot.get(index).copied().unwrap_or(FIRST_PEER)
        };
        Update {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            peer,
            date: chrono::Utc::now().timestamp(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nine_in_ten_updates_go_to_the_hot_chats() {
        let traffic = Traffic::new(1_000, 20, 1);
        let updates: Vec<Update> = (0..1_000).map(|n| traffic.update(n)).collect();
        let hot = updates
            .iter()
            .filter(|u| traffic.hot_peers().contains(&u.peer))
            .count();
        assert!((900..=1_000).contains(&hot), "{hot}");
        let mut ids: Vec<i64> = updates.iter().map(|u| u.id).collect();
        ids.dedup();
        assert_eq!(ids.len(), 1_000);
        assert!(
            updates
                .iter()
                .all(|u| (FIRST_PEER..FIRST_PEER + 1_000).contains(&u.peer))
        );
    }
}

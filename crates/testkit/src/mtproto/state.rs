//! Per-account state of the peer: the update sequence (`pts`, `qts`, `date`, `seq`) with the log of every
//! update by `pts`, so `updates.getDifference` returns exactly what a client missed; messages by id (one id
//! space per account, as for private chats and basic groups); `random_id` dedupe with the first answer kept.

use std::collections::{BTreeMap, HashMap};
use std::time::{SystemTime, UNIX_EPOCH};

use grammers_tl_types as tl;

/// Now, in Unix seconds.
pub fn now() -> i32 {
    i32::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs(),
    )
    .unwrap_or(i32::MAX)
}

/// One update in an account's common box, with where it left `pts`.
#[derive(Debug, Clone)]
pub struct Logged {
    /// `pts` after the update.
    pub pts: i32,
    /// The update (with its `pts` and `pts_count`).
    pub update: tl::enums::Update,
}

/// Everything the peer knows of one logged-in account.
#[derive(Debug)]
pub struct AccountState {
    /// Current `pts` of the common box.
    pub pts: i32,
    /// Current `qts` (secret chats and bots; stays 0 here).
    pub qts: i32,
    /// `seq` of the `updates` sequence; the peer sends `updates` with `seq = 0`, so it stays 0.
    pub seq: i32,
    /// Date of the last update.
    pub date: i32,
    /// Every update by `pts`.
    pub log: Vec<Logged>,
    /// Messages by id.
    pub messages: BTreeMap<i32, tl::types::Message>,
    /// The answer each send got, by dialog id and `random_id`: a repeat is answered with it again and creates
    /// nothing (Telegram's documented deduplication, <https://core.telegram.org/api/updates>).
    pub sends: HashMap<(i64, i64), Vec<u8>>,
    last_message_id: i32,
}

impl Default for AccountState {
    fn default() -> Self {
        Self {
            pts: 1,
            qts: 0,
            seq: 0,
            date: now(),
            log: Vec::new(),
            messages: BTreeMap::new(),
            sends: HashMap::new(),
            last_message_id: 0,
        }
    }
}

/// Which updates a `getDifference` from `pts` returns.
#[derive(Debug, Clone)]
pub struct Missed {
    /// New messages (from `updateNewMessage`).
    pub new_messages: Vec<tl::enums::Message>,
    /// Everything else.
    pub other_updates: Vec<tl::enums::Update>,
    /// The state after them.
    pub state: tl::types::updates::State,
    /// Whether more remain after these (a `differenceSlice`).
    pub partial: bool,
}

impl AccountState {
    /// The next message id.
    pub fn next_message_id(&mut self) -> i32 {
        self.last_message_id += 1;
        self.last_message_id
    }

    /// `updates.State`.
    pub fn state(&self) -> tl::types::updates::State {
        tl::types::updates::State {
            pts: self.pts,
            qts: self.qts,
            date: self.date,
            seq: self.seq,
            unread_count: 0,
        }
    }

    /// Logs a `pts`-carrying update built by `make(pts, pts_count)` and returns it.
    pub fn log_update(
        &mut self,
        pts_count: i32,
        make: impl FnOnce(i32, i32) -> tl::enums::Update,
    ) -> tl::enums::Update {
        self.pts += pts_count;
        self.date = now();
        let update = make(self.pts, pts_count);
        self.log.push(Logged {
            pts: self.pts,
            update: update.clone(),
        });
        update
    }

    /// Stores `message` and logs its `updateNewMessage`; returns the update.
    pub fn add_message(&mut self, message: tl::types::Message) -> tl::enums::Update {
        self.messages.insert(message.id, message.clone());
        self.log_update(1, |pts, pts_count| {
            tl::types::UpdateNewMessage {
                message: message.into(),
                pts,
                pts_count,
            }
            .into()
        })
    }

    /// What a client at `pts` missed, at most `limit` updates.
    pub fn missed_since(&self, pts: i32, limit: usize) -> Option<Missed> {
        if pts >= self.pts {
            return None;
        }
        let pending: Vec<&Logged> = self.log.iter().filter(|logged| logged.pts > pts).collect();
        let partial = pending.len() > limit;
        let taken = &pending[..pending.len().min(limit)];
        let mut missed = Missed {
            new_messages: Vec::new(),
            other_updates: Vec::new(),
            state: self.state(),
            partial,
        };
        if let Some(last) = taken.last()
            && partial
        {
            missed.state.pts = last.pts;
        }
        for logged in taken {
            match &logged.update {
                tl::enums::Update::NewMessage(new) => missed.new_messages.push(new.message.clone()),
                other => missed.other_updates.push(other.clone()),
            }
        }
        Some(missed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mtproto::blank::blank_message;

    #[test]
    fn the_difference_holds_what_came_after_the_client_pts() {
        let mut state = AccountState::default();
        let start = state.pts;
        for _ in 0..3 {
            let mut message = blank_message();
            message.id = state.next_message_id();
            state.add_message(message);
        }
        assert!(state.missed_since(start + 3, 10).is_none());
        let missed = state.missed_since(start + 1, 10).unwrap();
        assert_eq!(missed.new_messages.len(), 2);
        assert!(!missed.partial);
        let slice = state.missed_since(start, 2).unwrap();
        assert!(slice.partial);
        assert_eq!(slice.state.pts, start + 2);
    }
}

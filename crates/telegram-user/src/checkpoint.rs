//! Checkpoints: where each update leaves its update box (account-wide `pts`, `qts`, per-channel `pts`), kept as
//! opaque JSON by the caller and turned back into session update state once the update is stored.

use std::collections::BTreeMap;

use crm_core::personal::{Checkpoint, UserError};
use grammers_session::types::UpdateState;
use grammers_session::updates::{MessageBox, State};
use serde::{Deserialize, Serialize};

/// Resume positions per update box, as stored in a [`Checkpoint`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Format version.
    pub v: u32,
    /// Account-wide `pts` with the `date` and `seq` that came with it.
    pub primary: Option<Primary>,
    /// Secondary `qts`.
    pub qts: Option<i32>,
    /// `pts` per channel (bare id).
    pub channels: BTreeMap<i64, i32>,
}

/// The account-wide position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Primary {
    /// Persistent timestamp.
    pub pts: i32,
    /// Date of the state.
    pub date: i32,
    /// Sequence number.
    pub seq: i32,
}

impl Position {
    /// The position an update leaves its box at.
    pub fn of(state: &State) -> Self {
        let mut position = Self {
            v: 1,
            ..Self::default()
        };
        match state.message_box {
            Some(MessageBox::Common { pts }) => {
                position.primary = Some(Primary {
                    pts,
                    date: state.date,
                    seq: state.seq,
                });
            }
            Some(MessageBox::Secondary { qts }) => position.qts = Some(qts),
            Some(MessageBox::Channel { channel_id, pts }) => {
                position.channels.insert(channel_id, pts);
            }
            None => {}
        }
        position
    }

    /// Adds a later position (its boxes win).
    pub fn merge(&mut self, later: Self) {
        self.v = 1;
        if later.primary.is_some() {
            self.primary = later.primary;
        }
        if later.qts.is_some() {
            self.qts = later.qts;
        }
        self.channels.extend(later.channels);
    }

    fn is_empty(&self) -> bool {
        self.primary.is_none() && self.qts.is_none() && self.channels.is_empty()
    }

    /// As an opaque checkpoint.
    pub fn to_checkpoint(&self) -> Option<Checkpoint> {
        if self.is_empty() {
            return None;
        }
        serde_json::to_value(self).ok().map(Checkpoint)
    }

    /// Reads a checkpoint this module made.
    pub fn from_checkpoint(checkpoint: Checkpoint) -> Result<Self, UserError> {
        serde_json::from_value(checkpoint.0)
            .map_err(|e| UserError::Other(format!("unreadable checkpoint: {e}")))
    }

    /// The session updates that record this position.
    pub fn updates(&self) -> Vec<UpdateState> {
        let mut updates = Vec::new();
        if let Some(primary) = self.primary {
            updates.push(UpdateState::Primary {
                pts: primary.pts,
                date: primary.date,
                seq: primary.seq,
            });
        }
        if let Some(qts) = self.qts {
            updates.push(UpdateState::Secondary { qts });
        }
        for (&id, &pts) in &self.channels {
            updates.push(UpdateState::Channel { id, pts });
        }
        updates
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn checkpoints_round_trip_and_later_positions_win() {
        let mut pending = Position::of(&State {
            date: 10,
            seq: 2,
            message_box: Some(MessageBox::Common { pts: 100 }),
        });
        pending.merge(Position::of(&State {
            date: 11,
            seq: 3,
            message_box: Some(MessageBox::Channel {
                channel_id: 777,
                pts: 5,
            }),
        }));
        pending.merge(Position::of(&State {
            date: 12,
            seq: 3,
            message_box: Some(MessageBox::Common { pts: 101 }),
        }));
        let checkpoint = pending.to_checkpoint().unwrap();
        let back = Position::from_checkpoint(checkpoint).unwrap();
        assert_eq!(back, pending);
        let updates = back.updates();
        assert_eq!(updates.len(), 2);
        assert!(matches!(
            updates[0],
            UpdateState::Primary {
                pts: 101,
                date: 12,
                seq: 3
            }
        ));
        assert!(matches!(updates[1], UpdateState::Channel { id: 777, pts: 5 }));
        assert_eq!(
            Position::of(&State {
                date: 1,
                seq: 1,
                message_box: None
            })
            .to_checkpoint(),
            None
        );
    }
}

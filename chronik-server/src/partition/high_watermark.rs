//! The high watermark consumers read below. On the leader, the lowest log end among the ISR
//! members, where the leader's own end is its [`Partition::committable_end`] — its durable end with `fsync = "always"` (a consumer
//! never sees a record that a crash could still take away), its log end with `interval`/`never`.
//! Alone in the ISR that is the single-node rule. On a follower it is what the leader reported,
//! capped at the follower's own committable end (which is also where it fetches from next).
//!
//! The HW only moves forward on a leader; a follower's may move back after a truncation. Every rise
//! wakes long-polling fetches (the broker's `data_changed`) and acks=all writes waiting on this
//! partition (`leader_changed`).

use std::sync::atomic::Ordering;

use super::partition::Partition;
use crate::config::FsyncMode;

impl Partition {
    /// How far this replica counts as having stored its log, for the high watermark: with
    /// `fsync = "always"` only what is durable (a consumer never sees, and a leader never counts, what a
    /// crash of this broker could still take back), otherwise the log end. The leader's own entry in
    /// the HW computation, the offset a follower fetches from (its log end as the leader sees it) and
    /// the cap on a follower's HW are all this one value.
    pub fn committable_end(&self) -> i64 {
        let end = self.log_end_offset();
        if self.fsync == FsyncMode::Always { self.flusher.durable_end_offset().min(end) } else { end }
    }

    /// Recomputes the leader's high watermark from the ISR (no-op on a follower). Never moves it back.
    pub fn update_high_watermark(&self) {
        let leader_end = self.committable_end();
        let hw = self.role.lock().as_leader().and_then(|s| s.high_watermark(leader_end));
        if let Some(hw) = hw {
            self.advance_high_watermark(hw);
        }
    }

    /// A follower learns the leader's high watermark: its own is that, capped at what it holds
    /// (durably, with `fsync = "always"`). It may move back after a truncation.
    pub fn set_follower_high_watermark(&self, leader_hw: i64) {
        let hw = leader_hw.min(self.committable_end());
        let before = self.high_watermark.swap(hw, Ordering::AcqRel);
        if hw > before {
            self.data_changed.send_modify(|v| *v = v.wrapping_add(1));
        }
    }

    pub(super) fn advance_high_watermark(&self, to: i64) {
        let before = self.high_watermark.fetch_max(to, Ordering::AcqRel);
        if to > before {
            self.data_changed.send_modify(|v| *v = v.wrapping_add(1));
            self.leader_changed.send_modify(|()| ());
        }
    }
}

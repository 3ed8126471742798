//! What a partition leader knows about its followers, and the rules built on it (Kafka's replica
//! manager, as plain data): each follower's log end offset (learnt from the offset it fetches from —
//! a follower only asks for offset N once everything below N is durable on it), when it was last caught
//! up, the high watermark (lowest log end in the ISR, never going backwards) and whether the ISR should
//! shrink (a member not caught up for `replica_lag_time_max_ms`) or expand (a replica that reached the
//! high watermark). No I/O and no clock: times are passed in, in milliseconds.

use std::collections::BTreeMap;

/// A follower's progress as seen by the leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FollowerProgress {
    /// Everything below this is stored (durably) on the follower; `None` until it fetched in this term.
    pub log_end: Option<i64>,
    /// Last time its fetch reached the leader's log end (or the end as of its previous fetch).
    pub last_caught_up_ms: i64,
    /// The leader's log end when this follower last fetched, and when that was (Kafka's rule: a fetch
    /// reaching the end of the previous fetch proves the follower was caught up at that earlier time).
    last_fetch_leader_end: i64,
    last_fetch_ms: i64,
}

/// Leader-side replication state of one partition for one leader epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaState {
    /// This broker (the leader).
    pub leader: i32,
    pub leader_epoch: i32,
    /// Where the leader's current epoch starts; a replica is only taken back into the ISR once it holds
    /// something of this epoch, so it has truncated to this leader's history.
    pub epoch_start_offset: i64,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    followers: BTreeMap<i32, FollowerProgress>,
}

/// What the leader should change in the ISR (committed through the metadata, then applied here).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IsrChange {
    Shrink(Vec<i32>),
    Expand(Vec<i32>),
}

impl ReplicaState {
    /// State for a broker that just became (or stays) leader at `leader_epoch`. Every ISR member counts
    /// as caught up `now_ms`, so it gets a full lag window to show up before it is dropped.
    pub fn new(leader: i32, leader_epoch: i32, epoch_start_offset: i64, replicas: Vec<i32>, isr: Vec<i32>, now_ms: i64) -> Self {
        let followers = replicas
            .iter()
            .filter(|r| **r != leader)
            .map(|r| {
                let progress = FollowerProgress { log_end: None, last_caught_up_ms: now_ms, last_fetch_leader_end: -1, last_fetch_ms: now_ms };
                (*r, progress)
            })
            .collect();
        ReplicaState { leader, leader_epoch, epoch_start_offset, replicas, isr, followers }
    }

    /// The metadata changed the replica set or ISR without a new epoch: keep what is known of the
    /// followers that remain.
    pub fn update_membership(&mut self, replicas: Vec<i32>, isr: Vec<i32>, now_ms: i64) {
        self.followers.retain(|r, _| replicas.contains(r));
        for r in replicas.iter().filter(|r| **r != self.leader) {
            self.followers.entry(*r).or_insert(FollowerProgress {
                log_end: None,
                last_caught_up_ms: now_ms,
                last_fetch_leader_end: -1,
                last_fetch_ms: now_ms,
            });
        }
        self.replicas = replicas;
        self.isr = isr;
    }

    pub fn follower(&self, id: i32) -> Option<&FollowerProgress> {
        self.followers.get(&id)
    }

    /// A follower fetched from `fetch_offset` while the leader's log ended at `leader_end`. Returns
    /// false for a broker that is not a follower of this partition (its fetch must be refused).
    pub fn on_follower_fetch(&mut self, follower: i32, fetch_offset: i64, leader_end: i64, now_ms: i64) -> bool {
        let Some(p) = self.followers.get_mut(&follower) else { return false };
        p.log_end = Some(fetch_offset.min(leader_end));
        if fetch_offset >= leader_end {
            p.last_caught_up_ms = now_ms;
        } else if fetch_offset >= p.last_fetch_leader_end && p.last_fetch_leader_end >= 0 {
            p.last_caught_up_ms = p.last_caught_up_ms.max(p.last_fetch_ms);
        }
        p.last_fetch_leader_end = leader_end;
        p.last_fetch_ms = now_ms;
        true
    }

    /// The high watermark the ISR allows: the lowest log end among ISR members, the leader counting
    /// with `leader_end` (its durable end when every append is fsynced). `None` while some ISR member's
    /// position is unknown. Callers keep the maximum of this and the current value: the HW never drops.
    pub fn high_watermark(&self, leader_end: i64) -> Option<i64> {
        let mut hw = leader_end;
        for member in &self.isr {
            if *member == self.leader {
                continue;
            }
            hw = hw.min(self.followers.get(member)?.log_end?);
        }
        Some(hw)
    }

    /// ISR members (never the leader) not caught up within `lag_max_ms`. Shrinking never empties the
    /// ISR: the leader stays.
    pub fn shrink_candidates(&self, now_ms: i64, lag_max_ms: i64) -> Vec<i32> {
        self.isr
            .iter()
            .copied()
            .filter(|m| *m != self.leader)
            .filter(|m| self.followers.get(m).is_none_or(|p| now_ms.saturating_sub(p.last_caught_up_ms) > lag_max_ms))
            .collect()
    }

    /// Replicas outside the ISR whose log reaches the high watermark and the start of this epoch, and
    /// that were caught up within `lag_max_ms`.
    pub fn expand_candidates(&self, high_watermark: i64, now_ms: i64, lag_max_ms: i64) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| *r != self.leader && !self.isr.contains(r))
            .filter(|r| {
                self.followers.get(r).is_some_and(|p| {
                    p.log_end.is_some_and(|end| end >= high_watermark && end >= self.epoch_start_offset)
                        && now_ms.saturating_sub(p.last_caught_up_ms) <= lag_max_ms
                })
            })
            .collect()
    }

    /// The ISR change to propose now, if any: shrinking first (it is what keeps acks=all moving).
    pub fn isr_change(&self, high_watermark: i64, now_ms: i64, lag_max_ms: i64) -> Option<IsrChange> {
        let out = self.shrink_candidates(now_ms, lag_max_ms);
        if !out.is_empty() {
            let mut isr: Vec<i32> = self.isr.iter().copied().filter(|m| !out.contains(m)).collect();
            if !isr.contains(&self.leader) {
                isr.insert(0, self.leader);
            }
            return Some(IsrChange::Shrink(isr));
        }
        let join = self.expand_candidates(high_watermark, now_ms, lag_max_ms);
        if !join.is_empty() {
            let mut isr = self.isr.clone();
            isr.extend(join);
            // Keep replica order, so the same ISR is always written the same way.
            isr.sort_by_key(|m| self.replicas.iter().position(|r| r == m).unwrap_or(usize::MAX));
            return Some(IsrChange::Expand(isr));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAG: i64 = 10_000;

    fn leader_state(isr: &[i32]) -> ReplicaState {
        ReplicaState::new(1, 5, 100, vec![1, 2, 3], isr.to_vec(), 0)
    }

    #[test]
    fn high_watermark_is_lowest_isr_end() {
        let mut s = leader_state(&[1, 2, 3]);
        assert_eq!(s.high_watermark(150), None, "unknown follower positions hold the HW");
        s.on_follower_fetch(2, 140, 150, 1);
        assert_eq!(s.high_watermark(150), None);
        s.on_follower_fetch(3, 120, 150, 1);
        assert_eq!(s.high_watermark(150), Some(120));
        // The leader's own (durable) end counts too.
        assert_eq!(s.high_watermark(110), Some(110));
        // A follower asking past the leader's end is capped at it.
        s.on_follower_fetch(3, 500, 150, 2);
        assert_eq!(s.follower(3).and_then(|p| p.log_end), Some(150));
        // Only ISR members count.
        let mut s = leader_state(&[1, 2]);
        s.on_follower_fetch(2, 150, 150, 1);
        assert_eq!(s.high_watermark(150), Some(150));
        // Alone in the ISR: the leader's end.
        assert_eq!(leader_state(&[1]).high_watermark(77), Some(77));
    }

    #[test]
    fn fetch_from_unknown_broker_is_refused() {
        let mut s = leader_state(&[1, 2, 3]);
        assert!(!s.on_follower_fetch(9, 0, 10, 1));
        assert!(s.on_follower_fetch(2, 0, 10, 1));
    }

    #[test]
    fn lagging_member_is_shrunk_but_never_the_leader() {
        let mut s = leader_state(&[1, 2, 3]);
        s.on_follower_fetch(2, 150, 150, 9_000);
        s.on_follower_fetch(3, 100, 150, 9_000);
        assert_eq!(s.isr_change(100, 10_000, LAG), None, "within the lag window nobody leaves");
        assert_eq!(s.isr_change(100, 10_001, LAG), Some(IsrChange::Shrink(vec![1, 2])));
        // Caught-up follower keeps its place.
        s.on_follower_fetch(3, 150, 150, 10_001);
        assert_eq!(s.isr_change(150, 10_001, LAG), None);
        // Even if every follower lags, the leader stays.
        assert_eq!(s.isr_change(150, 40_000, LAG), Some(IsrChange::Shrink(vec![1])));
    }

    #[test]
    fn previous_fetch_end_counts_as_caught_up() {
        let mut s = leader_state(&[1, 2]);
        s.on_follower_fetch(2, 100, 150, 1_000); // behind
        s.on_follower_fetch(2, 150, 200, 5_000); // reached the end of the previous fetch
        assert_eq!(s.follower(2).map(|p| p.last_caught_up_ms), Some(1_000));
        assert_eq!(s.isr_change(150, 11_001, LAG), Some(IsrChange::Shrink(vec![1])));
        assert_eq!(s.isr_change(150, 11_000, LAG), None, "exactly the lag window is still in time");
    }

    #[test]
    fn caught_up_replica_rejoins_in_replica_order() {
        let mut s = leader_state(&[1, 2]);
        s.on_follower_fetch(2, 150, 150, 1);
        s.on_follower_fetch(3, 90, 150, 1);
        assert_eq!(s.isr_change(150, 2, LAG), None, "below the HW: not yet");
        s.on_follower_fetch(3, 150, 150, 3);
        assert_eq!(s.isr_change(150, 3, LAG), Some(IsrChange::Expand(vec![1, 2, 3])));
        // Reaching the HW is not enough when it has nothing of this epoch yet (epoch starts at 100).
        let mut s = leader_state(&[1, 2]);
        s.on_follower_fetch(3, 90, 90, 1);
        assert_eq!(s.isr_change(90, 1, LAG), None);
    }

    #[test]
    fn membership_update_keeps_known_progress() {
        let mut s = leader_state(&[1, 2, 3]);
        s.on_follower_fetch(2, 150, 150, 1);
        s.update_membership(vec![1, 2], vec![1, 2], 5);
        assert_eq!(s.follower(2).and_then(|p| p.log_end), Some(150));
        assert!(s.follower(3).is_none());
        assert_eq!(s.high_watermark(150), Some(150));
    }
}

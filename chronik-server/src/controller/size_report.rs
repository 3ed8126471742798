//! When a broker's heartbeat carries the sizes of the replicas it hosts: to a leader (of a term) that
//! has not had them yet, when the set of hosted replicas changed, and otherwise every
//! [`SIZE_REPORT_EVERY_HEARTBEATS`] heartbeats — sizes grow with every produce, so "when changed"
//! alone would mean every heartbeat. A heartbeat the leader did not accept is retried with sizes.
//! Plain code: the heartbeat task feeds it the leader it heartbeats to and what this broker hosts.

use chronik_raft::{NodeId, SizeReport};

/// Heartbeats between two size reports to the same leader when nothing but sizes changed (about
/// 5 s at the default 1 s heartbeat interval).
pub const SIZE_REPORT_EVERY_HEARTBEATS: u32 = 5;

/// The sender's memory: what it last reported to whom.
#[derive(Debug, Default)]
pub struct SizeReporter {
    /// (leader, term) the last accepted report went to.
    reported_to: Option<(NodeId, u64)>,
    /// The hosted replicas (topic, partition) of the last accepted report.
    hosted: Vec<(String, i32)>,
    /// Heartbeats since the last accepted report.
    since: u32,
    /// Logged once that this broker hosts more replicas than a report may carry.
    warned_over_bound: bool,
    /// The partition-set generation (`PartitionManager::generation`) read before the hosted replicas
    /// were last listed for [`SizeReporter::due`]: while it is unchanged, so is the hosted set.
    listed_at_generation: Option<u64>,
}

impl SizeReporter {
    /// Whether the next heartbeat to `leader` (in `term`) may carry sizes, so the hosted replicas must
    /// be listed for [`SizeReporter::due`]; `generation` is the partition set's, read now. When false,
    /// `due` would answer `None`: the heartbeat goes without listing thousands of replicas.
    pub fn needs_listing(&self, leader: NodeId, term: u64, generation: u64) -> bool {
        self.due_whatever_is_hosted(leader, term) || self.listed_at_generation != Some(generation)
    }

    /// A report is due whatever this broker hosts: to a new leader (or term), or after
    /// [`SIZE_REPORT_EVERY_HEARTBEATS`] heartbeats without one.
    fn due_whatever_is_hosted(&self, leader: NodeId, term: u64) -> bool {
        self.reported_to != Some((leader, term)) || self.since >= SIZE_REPORT_EVERY_HEARTBEATS
    }

    /// The report to put in the next heartbeat to `leader` (in `term`), given what this broker hosts
    /// now (`replicas`, sorted by topic and partition, listed after `generation` was read); `None`: a
    /// heartbeat without sizes.
    pub fn due(&mut self, leader: NodeId, term: u64, replicas: Vec<(String, i32, u64)>, generation: u64) -> Option<SizeReport> {
        // A report that is refused clears `reported_to`, so the generation may be noted here already.
        self.listed_at_generation = Some(generation);
        let hosted_changed = replicas.len() != self.hosted.len() || replicas.iter().zip(&self.hosted).any(|((t, p, _), (ht, hp))| t != ht || p != hp);
        if !hosted_changed && !self.due_whatever_is_hosted(leader, term) {
            return None;
        }
        let count = replicas.len();
        let report = SizeReport::bounded(replicas);
        if report.is_none() && !self.warned_over_bound {
            self.warned_over_bound = true;
            tracing::warn!(replicas = count, max = chronik_raft::SIZE_REPORT_REPLICAS_MAX, "this broker hosts more replicas than a size report may carry; the controller plans by replica count only");
        }
        report
    }

    /// Called after each heartbeat: `sent` is the report it carried (if any), `accepted` whether the
    /// leader took it.
    pub fn after(&mut self, leader: NodeId, term: u64, sent: Option<&SizeReport>, accepted: bool) {
        match (sent, accepted) {
            (Some(report), true) => {
                self.reported_to = Some((leader, term));
                self.hosted = report.replicas.iter().map(|(t, p, _)| (t.clone(), *p)).collect();
                self.since = 0;
            }
            (Some(_), false) => self.reported_to = None,
            (None, _) => self.since = self.since.saturating_add(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosted(sizes: &[u64]) -> Vec<(String, i32, u64)> {
        sizes.iter().enumerate().map(|(i, b)| ("t".to_string(), i as i32, *b)).collect()
    }

    /// One heartbeat: the report it carried, as the leader accepted it or not.
    fn beat(r: &mut SizeReporter, leader: NodeId, term: u64, sizes: &[u64], accepted: bool) -> Option<SizeReport> {
        // A new generation per hosted-set size: enough for these tests, which change the set by size.
        let generation = sizes.len() as u64;
        let report = if r.needs_listing(leader, term, generation) { r.due(leader, term, hosted(sizes), generation) } else { None };
        r.after(leader, term, report.as_ref(), accepted);
        report
    }

    #[test]
    fn the_replicas_are_listed_only_when_a_report_may_be_due() {
        let mut r = SizeReporter::default();
        assert!(r.needs_listing(1, 3, 7), "nothing reported yet");
        let report = r.due(1, 3, hosted(&[10]), 7);
        r.after(1, 3, report.as_ref(), true);
        assert!(!r.needs_listing(1, 3, 7), "same leader, term and partition set, not yet N heartbeats");
        assert!(r.needs_listing(1, 3, 8), "the partition set changed");
        assert!(r.needs_listing(2, 3, 7), "another leader");
        for _ in 0..SIZE_REPORT_EVERY_HEARTBEATS {
            r.after(1, 3, None, true);
        }
        assert!(r.needs_listing(1, 3, 7), "N heartbeats without sizes");
    }

    #[test]
    fn reports_to_a_new_leader_then_every_n_heartbeats() {
        let mut r = SizeReporter::default();
        assert!(beat(&mut r, 1, 3, &[10], true).is_some(), "first heartbeat to a leader carries sizes");
        for i in 0..SIZE_REPORT_EVERY_HEARTBEATS {
            assert!(beat(&mut r, 1, 3, &[10 + u64::from(i)], true).is_none(), "only sizes changed: wait");
        }
        assert!(beat(&mut r, 1, 3, &[99], true).is_some(), "every N heartbeats");
        assert!(beat(&mut r, 2, 4, &[99], true).is_some(), "a new leader gets them at once");
        assert!(beat(&mut r, 2, 5, &[99], true).is_some(), "so does the same leader in a new term");
    }

    #[test]
    fn reports_when_the_hosted_replicas_change_or_a_report_was_refused() {
        let mut r = SizeReporter::default();
        beat(&mut r, 1, 3, &[10], true);
        let report = beat(&mut r, 1, 3, &[10, 0], true).expect("a replica was added");
        assert_eq!(report.replicas.len(), 2);
        assert!(beat(&mut r, 1, 3, &[10], false).is_some(), "a replica went away");
        assert!(beat(&mut r, 1, 3, &[10], true).is_some(), "the last report was refused: send again");
        assert!(beat(&mut r, 1, 3, &[10], true).is_none());
    }

    #[test]
    fn an_empty_broker_reports_that_it_hosts_nothing() {
        let mut r = SizeReporter::default();
        assert_eq!(beat(&mut r, 1, 3, &[], true), Some(SizeReport::default()));
    }

    #[test]
    fn too_many_replicas_send_no_report() {
        let mut r = SizeReporter::default();
        let many = vec![0; chronik_raft::SIZE_REPORT_REPLICAS_MAX + 1];
        assert!(beat(&mut r, 1, 3, &many, true).is_none());
        assert!(beat(&mut r, 1, 3, &many, true).is_none());
    }
}

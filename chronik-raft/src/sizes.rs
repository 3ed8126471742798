//! Replica sizes as brokers report them to the metadata leader with their heartbeats, so the
//! controller can plan moves by bytes as well as by replica count.
//!
//! - [`SizeReport`]: what one broker sends — every replica it hosts with its log size in bytes, at
//!   most [`SIZE_REPORT_REPLICAS_MAX`] of them. It rides in the broker heartbeat as an optional field,
//!   so an older peer's heartbeat (without it) still decodes, and an older leader ignores it.
//! - [`SizeReports`]: the leader's memory of the latest report of each broker, stamped with the term
//!   it was received in. Kept in memory only, next to liveness, never in the Raft log: sizes change all
//!   the time and a new leader learns them again from the next heartbeats.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::types::NodeId;

/// Most replicas one report may list. A broker hosting more sends no report (the controller then
/// plans by replica count only), and a leader ignores a longer one: the bound keeps a heartbeat small
/// (at most a few MiB of JSON with Kafka's longest topic names) whatever a peer sends.
pub const SIZE_REPORT_REPLICAS_MAX: usize = 50_000;

/// The replicas one broker hosts, each as (topic, partition, log size in bytes).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SizeReport {
    pub replicas: Vec<(String, i32, u64)>,
}

impl SizeReport {
    /// A report of `replicas`, or `None` when there are more than [`SIZE_REPORT_REPLICAS_MAX`].
    pub fn bounded(replicas: Vec<(String, i32, u64)>) -> Option<SizeReport> {
        (replicas.len() <= SIZE_REPORT_REPLICAS_MAX).then_some(SizeReport { replicas })
    }

    /// Whether a received report is within the bound (a peer's message is never trusted to be).
    pub fn within_bound(&self) -> bool {
        self.replicas.len() <= SIZE_REPORT_REPLICAS_MAX
    }

    /// The reported sizes by (topic, partition); a partition listed twice keeps its larger size.
    pub fn by_partition(&self) -> BTreeMap<(String, i32), u64> {
        let mut out = BTreeMap::new();
        for (topic, partition, bytes) in &self.replicas {
            let e = out.entry((topic.clone(), *partition)).or_insert(0);
            *e = (*e).max(*bytes);
        }
        out
    }
}

/// The latest report of each broker, with the leader term it arrived in.
#[derive(Debug, Default)]
pub struct SizeReports {
    latest: Mutex<HashMap<NodeId, (u64, Arc<SizeReport>)>>,
}

impl SizeReports {
    /// Keep `report` as `broker`'s latest, received while leading `term`. Returns false (and keeps
    /// nothing) for a report over the bound.
    pub fn record(&self, broker: NodeId, term: u64, report: SizeReport) -> bool {
        if !report.within_bound() {
            return false;
        }
        self.latest.lock().insert(broker, (term, Arc::new(report)));
        true
    }

    /// The reports received in `term`, by broker: a report from an earlier term (this node led
    /// before, lost the leadership and got it back) does not count.
    pub fn of_term(&self, term: u64) -> BTreeMap<NodeId, Arc<SizeReport>> {
        self.latest.lock().iter().filter(|(_, (t, _))| *t == term).map(|(b, (_, r))| (*b, r.clone())).collect()
    }

    /// Forget everything (this node stopped leading).
    pub fn clear(&self) {
        self.latest.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::PeerRpc;

    fn report(n: usize) -> Vec<(String, i32, u64)> {
        (0..n).map(|i| ("t".to_string(), i as i32, i as u64 * 10)).collect()
    }

    #[test]
    fn the_bound_holds_on_both_sides() {
        assert!(SizeReport::bounded(report(SIZE_REPORT_REPLICAS_MAX)).is_some());
        assert!(SizeReport::bounded(report(SIZE_REPORT_REPLICAS_MAX + 1)).is_none());
        let table = SizeReports::default();
        let too_long = SizeReport { replicas: report(SIZE_REPORT_REPLICAS_MAX + 1) };
        assert!(!table.record(2, 5, too_long), "a peer's oversized report is refused");
        assert!(table.of_term(5).is_empty());
    }

    #[test]
    fn reports_count_only_in_the_term_they_arrived() {
        let table = SizeReports::default();
        assert!(table.record(1, 3, SizeReport { replicas: report(2) }));
        assert!(table.record(2, 4, SizeReport::default()));
        assert_eq!(table.of_term(4).keys().copied().collect::<Vec<_>>(), vec![2], "an empty report is a report");
        assert_eq!(table.of_term(3).keys().copied().collect::<Vec<_>>(), vec![1]);
        table.clear();
        assert!(table.of_term(4).is_empty());
    }

    #[test]
    fn duplicates_keep_the_larger_size() {
        let r = SizeReport { replicas: vec![("a".into(), 0, 5), ("a".into(), 0, 9), ("b".into(), 1, 1)] };
        let m = r.by_partition();
        assert_eq!(m[&("a".to_string(), 0)], 9);
        assert_eq!(m.len(), 2);
    }

    /// The heartbeat's wire form: sizes are a compact array, and a heartbeat without them (an older
    /// peer's) still decodes; an older leader's decoder ignores the field it does not know.
    #[test]
    fn heartbeat_encoding_is_compatible_both_ways() {
        let hb = PeerRpc::BrokerHeartbeat { broker: 2, sizes: Some(SizeReport { replicas: vec![("orders".into(), 3, 1024)] }) };
        let json = serde_json::to_string(&hb).expect("encode");
        assert_eq!(json, r#"{"BrokerHeartbeat":{"broker":2,"sizes":{"replicas":[["orders",3,1024]]}}}"#);
        match serde_json::from_str::<PeerRpc>(&json).expect("decode") {
            PeerRpc::BrokerHeartbeat { broker: 2, sizes: Some(s) } => assert_eq!(s.replicas.len(), 1),
            other => panic!("decoded {other:?}"),
        }
        let old = r#"{"BrokerHeartbeat":{"broker":2}}"#;
        assert!(matches!(serde_json::from_str::<PeerRpc>(old).expect("old form"), PeerRpc::BrokerHeartbeat { broker: 2, sizes: None }));
        let none = serde_json::to_string(&PeerRpc::BrokerHeartbeat { broker: 2, sizes: None }).expect("encode");
        assert_eq!(none, old, "no sizes: the old wire form exactly");

        // The old message type, as a leader that predates sizes decodes it.
        #[derive(serde::Deserialize)]
        enum OldRpc {
            BrokerHeartbeat { broker: NodeId },
        }
        let OldRpc::BrokerHeartbeat { broker } = serde_json::from_str::<OldRpc>(&json).expect("an old leader decodes a new heartbeat");
        assert_eq!(broker, 2);
    }
}

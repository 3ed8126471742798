//! Broker liveness as seen by the metadata leader: when each broker last heartbeated. Kept in
//! memory only — a new leader starts with an empty table and gives every broker a full session
//! before fencing it (the controller's grace period), so a leader change never fences live brokers.

use std::collections::HashMap;
use std::time::Instant;

use parking_lot::Mutex;

use crate::types::NodeId;

#[derive(Debug, Default)]
pub struct Liveness {
    seen: Mutex<HashMap<NodeId, Instant>>,
}

impl Liveness {
    pub fn record(&self, broker: NodeId) {
        self.seen.lock().insert(broker, Instant::now());
    }

    pub fn last_seen(&self, broker: NodeId) -> Option<Instant> {
        self.seen.lock().get(&broker).copied()
    }

    /// Forget everything (this node stopped leading).
    pub fn clear(&self) {
        self.seen.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_clears() {
        let l = Liveness::default();
        assert!(l.last_seen(2).is_none());
        l.record(2);
        let first = l.last_seen(2).unwrap();
        l.record(2);
        assert!(l.last_seen(2).unwrap() >= first);
        l.clear();
        assert!(l.last_seen(2).is_none());
    }
}

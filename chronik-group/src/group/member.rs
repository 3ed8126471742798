//! One member of a classic consumer group, as the coordinator sees it.

use bytes::Bytes;

/// A member's view of itself plus the coordinator's bookkeeping about it.
#[derive(Debug, Clone)]
pub struct Member {
    /// Coordinator-issued id (client.id + "-" + uuid); the key of the member in its group.
    pub member_id: String,
    /// `group.instance.id` of a static member: it keeps its member id across restarts.
    pub group_instance_id: Option<String>,
    /// For DescribeGroups.
    pub client_id: String,
    /// For DescribeGroups.
    pub client_host: String,
    /// No heartbeat, join or sync for this long removes the member.
    pub session_timeout_ms: u64,
    /// How long a rebalance waits for this member to rejoin.
    pub rebalance_timeout_ms: u64,
    /// Protocol type (e.g. "consumer"); every member of a group has the same one.
    pub protocol_type: String,
    /// Supported protocols in the member's order of preference, with their metadata.
    pub protocols: Vec<(String, Bytes)>,
    /// Assignment handed out by the leader in the last completed sync.
    pub assignment: Bytes,
    /// A JoinGroup of this member is waiting for the join phase to complete.
    pub awaiting_join: bool,
    /// A SyncGroup of this member is waiting for the leader's assignment.
    pub awaiting_sync: bool,
    /// Last time (coordinator ms) the member proved it is alive.
    pub last_seen_ms: u64,
}

impl Member {
    /// Metadata this member sent for `protocol`, empty if it does not support it.
    pub fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(name, _)| name == protocol)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    /// Whether the member supports `protocol`.
    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(name, _)| name == protocol)
    }

    /// Members waiting on a response are alive by definition (Kafka's `shouldKeepAlive`): their
    /// client is blocked in our call and cannot heartbeat.
    pub fn session_expired(&self, now_ms: u64) -> bool {
        !self.awaiting_join
            && !self.awaiting_sync
            && now_ms >= self.last_seen_ms.saturating_add(self.session_timeout_ms)
    }

    /// Same protocols with the same metadata, in the same order: a rejoin that changes nothing.
    pub fn same_protocols(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }
}

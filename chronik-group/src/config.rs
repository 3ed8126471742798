//! Coordinator configuration and the limits it enforces.

/// Kafka's `group.min.session.timeout.ms` default.
pub const SESSION_TIMEOUT_MS_MIN_DEFAULT: i32 = 6_000;
/// Kafka's `group.max.session.timeout.ms` default.
pub const SESSION_TIMEOUT_MS_MAX_DEFAULT: i32 = 1_800_000;
/// Kafka's `group.initial.rebalance.delay.ms` default.
pub const INITIAL_REBALANCE_DELAY_MS_DEFAULT: u64 = 3_000;
/// How many internal logs hold committed offsets (groups are spread over them by hash).
pub const OFFSETS_PARTITIONS_DEFAULT: u32 = 8;
/// Bound on live groups, so a client looping over fresh group ids cannot exhaust memory.
pub const GROUPS_MAX_DEFAULT: usize = 100_000;
/// Kafka's `group.max.size` is unbounded by default; we bound it so one group cannot grow without limit.
pub const MEMBERS_PER_GROUP_MAX_DEFAULT: usize = 1_000;
/// Kafka's `offset.metadata.max.bytes`: longer commit metadata gets OFFSET_METADATA_TOO_LARGE.
pub const OFFSET_METADATA_BYTES_MAX: usize = 4_096;

/// Settings of one broker's group coordinator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// Joins asking for a shorter session timeout get INVALID_SESSION_TIMEOUT: heartbeats that
    /// frequent would only load the coordinator.
    pub session_timeout_ms_min: i32,
    /// Joins asking for a longer session timeout get INVALID_SESSION_TIMEOUT: a dead member would
    /// block its partitions for too long.
    pub session_timeout_ms_max: i32,
    /// How long the first rebalance of an empty group waits for more members (extended while members
    /// keep arriving, capped by the rebalance timeout), so a starting fleet rebalances once, not N times.
    pub initial_rebalance_delay_ms: u64,
    /// Committed offsets are kept in this many internal logs, chosen by a hash of the group id.
    pub offsets_partitions: u32,
    /// Most groups the coordinator holds; joins or commits creating more get GROUP_MAX_SIZE_REACHED /
    /// COORDINATOR_NOT_AVAILABLE.
    pub groups_max: usize,
    /// Most members in one group; further joins get GROUP_MAX_SIZE_REACHED.
    pub members_per_group_max: usize,
}

impl Default for GroupConfig {
    fn default() -> Self {
        Self {
            session_timeout_ms_min: SESSION_TIMEOUT_MS_MIN_DEFAULT,
            session_timeout_ms_max: SESSION_TIMEOUT_MS_MAX_DEFAULT,
            initial_rebalance_delay_ms: INITIAL_REBALANCE_DELAY_MS_DEFAULT,
            offsets_partitions: OFFSETS_PARTITIONS_DEFAULT,
            groups_max: GROUPS_MAX_DEFAULT,
            members_per_group_max: MEMBERS_PER_GROUP_MAX_DEFAULT,
        }
    }
}

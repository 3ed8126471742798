//! Broker configuration: the TOML file of docs/CONFIG.md, embedded defaults, and validation.
//!
//! Unknown keys and invalid values are refused at start with the key named (serde's
//! `deny_unknown_fields` names the key; `validate` names the key of a bad value).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ids::BrokerId;

/// Default Kafka listener of a broker started without a config file.
pub const DEFAULT_KAFKA_ADDR: &str = "127.0.0.1:9092";
/// Default wal (replication) listener.
pub const DEFAULT_WAL_ADDR: &str = "127.0.0.1:9291";
/// Default raft (metadata peer) listener.
pub const DEFAULT_RAFT_ADDR: &str = "127.0.0.1:5001";
/// Admin ports are 10000 + node id by default.
pub const ADMIN_PORT_BASE: u16 = 10000;
/// Default `reassignment_throttle_bytes_per_s`: 50 MiB/s per follower broker, a share of a disk that
/// leaves producers and in-sync followers their room.
pub const REASSIGNMENT_THROTTLE_BYTES_PER_S_DEFAULT: u64 = 50 * 1024 * 1024;

/// When a partition's appended batches are fsynced, and so what a crash can lose (docs/CONFIG.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FsyncMode {
    /// Group commit: acks=1/all produce is answered after its batch is fsynced; concurrent appends share
    /// one fsync. A crash loses nothing that was acknowledged.
    Always,
    /// A background task fsyncs every `fsync_interval_ms`; acknowledged data written since the last
    /// sync can be lost in a machine crash (not in a process crash: the page cache survives that).
    Interval,
    /// Never fsync except at segment roll; the operating system decides. Relies on replication.
    Never,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Addresses {
    pub kafka: Option<String>,
    pub wal: Option<String>,
    pub raft: Option<String>,
    pub admin: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    pub id: u64,
    pub kafka: String,
    pub wal: String,
    pub raft: String,
    pub admin: Option<String>,
}

/// The config file as written by an operator; every field optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub node_id: Option<u64>,
    pub data_dir: Option<PathBuf>,
    pub replication_factor: Option<i16>,
    pub min_insync_replicas: Option<i32>,
    pub num_partitions: Option<i32>,
    pub auto_create_topics: Option<bool>,
    pub fsync: Option<FsyncMode>,
    pub fsync_interval_ms: Option<u64>,
    pub frame_bytes_max: Option<usize>,
    pub message_bytes_max: Option<i32>,
    pub segment_bytes: Option<u64>,
    pub retention_ms: Option<i64>,
    pub retention_bytes: Option<i64>,
    pub retention_check_interval_ms: Option<u64>,
    pub connections_max: Option<usize>,
    pub group_initial_rebalance_delay_ms: Option<u64>,
    pub group_session_timeout_ms_min: Option<i32>,
    pub group_session_timeout_ms_max: Option<i32>,
    pub offsets_partitions: Option<u32>,
    pub offsets_commit_timeout_ms: Option<u64>,
    pub fetch_wait_ms_max: Option<u64>,
    pub replica_lag_time_max_ms: Option<u64>,
    pub replica_fetch_wait_ms_max: Option<u64>,
    pub broker_session_timeout_ms: Option<u64>,
    pub broker_heartbeat_interval_ms: Option<u64>,
    pub leader_rebalance_interval_ms: Option<u64>,
    pub reassignment_throttle_bytes_per_s: Option<u64>,
    pub admin_token: Option<String>,
    pub join: Option<bool>,
    pub initial_cluster: Option<Vec<u64>>,
    pub voters_max: Option<usize>,
    pub bind: Option<Addresses>,
    pub advertise: Option<Addresses>,
    pub peers: Option<Vec<Peer>>,
}

/// The resolved configuration the broker runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// This node's Raft node id (`node_id` in the file).
    pub node_id: u64,
    /// The same id as a broker id (Kafka's `broker.id`); validation refuses a `node_id` that does not fit.
    pub broker_id: BrokerId,
    pub data_dir: PathBuf,
    pub replication_factor: i16,
    pub min_insync_replicas: i32,
    pub num_partitions: i32,
    pub auto_create_topics: bool,
    pub fsync: FsyncMode,
    pub fsync_interval_ms: u64,
    /// Largest request frame accepted; a bigger one closes the connection before it is read.
    pub frame_bytes_max: usize,
    /// Largest record batch accepted by Produce (Kafka's `message.max.bytes`).
    pub message_bytes_max: i32,
    pub segment_bytes: u64,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub retention_check_interval_ms: u64,
    pub connections_max: usize,
    pub group_initial_rebalance_delay_ms: u64,
    pub group_session_timeout_ms_min: i32,
    pub group_session_timeout_ms_max: i32,
    pub offsets_partitions: u32,
    /// How long an OffsetCommit waits for its batch to be stored by every in-sync replica of the
    /// offsets partition (Kafka's `offsets.commit.timeout.ms`); then REQUEST_TIMED_OUT.
    pub offsets_commit_timeout_ms: u64,
    /// Upper bound on a Fetch's `max_wait_ms`, so a client cannot park a request forever.
    pub fetch_wait_ms_max: u64,
    /// A follower that has not caught up with the leader's log end for this long leaves the ISR.
    pub replica_lag_time_max_ms: u64,
    /// How long a follower's fetch may wait at the leader for new data.
    pub replica_fetch_wait_ms_max: u64,
    /// A broker whose heartbeats stop for this long is fenced and its partitions get new leaders.
    pub broker_session_timeout_ms: u64,
    pub broker_heartbeat_interval_ms: u64,
    /// How often the controller moves leadership back to preferred replicas that are in sync.
    pub leader_rebalance_interval_ms: u64,
    /// Most bytes per second a leader sends to one follower broker for the replicas a move is adding
    /// (not yet in sync); 0 for no limit. In-sync followers are never throttled.
    pub reassignment_throttle_bytes_per_s: u64,
    /// Bearer token the admin API's mutations require; without one they are taken from loopback only.
    pub admin_token: Option<String>,
    /// A fresh node asks the cluster (through its peers' admin addresses) to add it.
    pub join: bool,
    /// Ids that may found the cluster when all are fresh (default: every `[[peers]]` entry); any
    /// other fresh node waits to be added.
    pub initial_cluster: Vec<u64>,
    /// Most metadata voters the odd-voter policy promotes to (1, 3, 5, …).
    pub voters_max: usize,
    pub bind: ResolvedAddresses,
    pub advertise: ResolvedAddresses,
    pub peers: Vec<Peer>,
}

#[derive(Debug, Clone)]
pub struct ResolvedAddresses {
    // Addresses of one node: Kafka clients, partition replication, metadata Raft, admin API.
    pub kafka: String,
    pub wal: String,
    pub raft: String,
    pub admin: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("invalid value for `{key}`: {reason}")]
    Invalid { key: &'static str, reason: String },
}

/// Command-line overrides of the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub node_id: Option<u64>,
    pub bind_host: Option<String>,
    pub advertise_host: Option<String>,
    /// `--join`: ask the cluster to add this node.
    pub join: bool,
}

impl Config {
    /// True when this node is one of several (a `[[peers]]` list with more than this node).
    pub fn is_cluster(&self) -> bool {
        self.peers.iter().any(|p| p.id != self.node_id)
    }

    /// Whether this node may found the cluster when fresh: it is in `initial_cluster` (or no peers
    /// are configured at all: a single node that later grows) and was not told to join.
    pub fn may_bootstrap(&self) -> bool {
        !self.join && (self.peers.is_empty() || self.initial_cluster.contains(&self.node_id))
    }

    /// Admin address of a peer: its own entry, else its raft host with the default admin port.
    pub fn peer_admin_addr(p: &Peer) -> String {
        if let Some(a) = &p.admin {
            return a.clone();
        }
        let host = split_host_port(&p.raft).map(|(h, _)| h).unwrap_or_else(|| "127.0.0.1".into());
        format!("{host}:{}", u64::from(ADMIN_PORT_BASE) + p.id)
    }

    /// Loads `path` (or the embedded defaults when `None`), applies the overrides and validates.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let file = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                toml::from_str::<ConfigFile>(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: e.message().to_string() + &span_hint(&text, e.span()),
                })?
            }
            None => ConfigFile::default(),
        };
        Self::resolve(file, overrides)
    }

    pub fn resolve(file: ConfigFile, o: &Overrides) -> Result<Config, ConfigError> {
        let node_id = o.node_id.or(file.node_id).unwrap_or(1);
        let Some(broker_id) = BrokerId::from_node_id(node_id) else {
            return Err(invalid("node_id", "must be between 0 and 2147483647"));
        };
        let admin_port = ADMIN_PORT_BASE
            .checked_add(u16::try_from(node_id).unwrap_or(u16::MAX))
            .ok_or_else(|| invalid("node_id", "too large for the default admin port; set [bind] admin"))?;
        let me = file.peers.as_ref().and_then(|ps| ps.iter().find(|p| p.id == node_id));
        let bind = file.bind.clone().unwrap_or_default();
        let adv = file.advertise.clone().unwrap_or_default();
        let bind_host = o.bind_host.clone();
        let pick = |b: &Option<String>, peer: Option<&str>, default: String| -> String {
            let base = b.clone().or(peer.map(str::to_string)).unwrap_or(default);
            match &bind_host {
                Some(h) => replace_host(&base, h),
                None => base,
            }
        };
        let default_admin = format!("127.0.0.1:{admin_port}");
        let bind = ResolvedAddresses {
            kafka: pick(&bind.kafka, me.map(|p| p.kafka.as_str()), DEFAULT_KAFKA_ADDR.into()),
            wal: pick(&bind.wal, me.map(|p| p.wal.as_str()), DEFAULT_WAL_ADDR.into()),
            raft: pick(&bind.raft, me.map(|p| p.raft.as_str()), DEFAULT_RAFT_ADDR.into()),
            admin: pick(&bind.admin, me.and_then(|p| p.admin.as_deref()), default_admin),
        };
        let adv_of = |a: &Option<String>, bound: &str| -> String {
            let base = a.clone().unwrap_or_else(|| bound.to_string());
            match &o.advertise_host {
                Some(h) => replace_host(&base, h),
                None => base,
            }
        };
        let advertise = ResolvedAddresses {
            kafka: adv_of(&adv.kafka, &bind.kafka),
            wal: adv_of(&adv.wal, &bind.wal),
            raft: adv_of(&adv.raft, &bind.raft),
            admin: adv_of(&adv.admin, &bind.admin),
        };
        let cfg = Config {
            node_id,
            broker_id,
            data_dir: o.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from("./data")),
            replication_factor: file.replication_factor.unwrap_or(1),
            min_insync_replicas: file.min_insync_replicas.unwrap_or(1),
            num_partitions: file.num_partitions.unwrap_or(1),
            auto_create_topics: file.auto_create_topics.unwrap_or(true),
            fsync: file.fsync.unwrap_or(FsyncMode::Always),
            fsync_interval_ms: file.fsync_interval_ms.unwrap_or(1000),
            frame_bytes_max: file.frame_bytes_max.unwrap_or(100 * 1024 * 1024),
            message_bytes_max: file.message_bytes_max.unwrap_or(1_048_588),
            segment_bytes: file.segment_bytes.unwrap_or(1024 * 1024 * 1024),
            retention_ms: file.retention_ms.unwrap_or(7 * 24 * 3600 * 1000),
            retention_bytes: file.retention_bytes.unwrap_or(-1),
            retention_check_interval_ms: file.retention_check_interval_ms.unwrap_or(300_000),
            connections_max: file.connections_max.unwrap_or(10_000),
            group_initial_rebalance_delay_ms: file.group_initial_rebalance_delay_ms.unwrap_or(3000),
            group_session_timeout_ms_min: file.group_session_timeout_ms_min.unwrap_or(6000),
            group_session_timeout_ms_max: file.group_session_timeout_ms_max.unwrap_or(1_800_000),
            offsets_partitions: file.offsets_partitions.unwrap_or(8),
            offsets_commit_timeout_ms: file.offsets_commit_timeout_ms.unwrap_or(5_000),
            fetch_wait_ms_max: file.fetch_wait_ms_max.unwrap_or(30_000),
            replica_lag_time_max_ms: file.replica_lag_time_max_ms.unwrap_or(10_000),
            replica_fetch_wait_ms_max: file.replica_fetch_wait_ms_max.unwrap_or(500),
            broker_session_timeout_ms: file.broker_session_timeout_ms.unwrap_or(6_000),
            broker_heartbeat_interval_ms: file.broker_heartbeat_interval_ms.unwrap_or(1_000),
            leader_rebalance_interval_ms: file.leader_rebalance_interval_ms.unwrap_or(5_000),
            reassignment_throttle_bytes_per_s: file.reassignment_throttle_bytes_per_s.unwrap_or(REASSIGNMENT_THROTTLE_BYTES_PER_S_DEFAULT),
            admin_token: file.admin_token.or_else(|| std::env::var("CHRONIK_ADMIN_TOKEN").ok()).filter(|t| !t.is_empty()),
            join: o.join || file.join.unwrap_or(false),
            initial_cluster: file
                .initial_cluster
                .unwrap_or_else(|| file.peers.as_ref().map(|ps| ps.iter().map(|p| p.id).collect()).unwrap_or_default()),
            voters_max: file.voters_max.unwrap_or(chronik_raft::VOTERS_MAX_DEFAULT),
            bind,
            advertise,
            peers: file.peers.unwrap_or_default(),
        };
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.replication_factor < 1 {
            return Err(invalid("replication_factor", "must be at least 1"));
        }
        if self.min_insync_replicas < 1 || self.min_insync_replicas > i32::from(self.replication_factor) {
            return Err(invalid("min_insync_replicas", "must be between 1 and replication_factor"));
        }
        if self.num_partitions < 1 {
            return Err(invalid("num_partitions", "must be at least 1"));
        }
        if self.frame_bytes_max < 1024 {
            return Err(invalid("frame_bytes_max", "must be at least 1024 bytes"));
        }
        if self.message_bytes_max < 64 {
            return Err(invalid("message_bytes_max", "must be at least 64 bytes"));
        }
        if self.segment_bytes < 1024 * 1024 || self.segment_bytes > u64::from(u32::MAX) {
            return Err(invalid("segment_bytes", "must be between 1 MiB and 4 GiB"));
        }
        if self.fsync == FsyncMode::Interval && self.fsync_interval_ms == 0 {
            return Err(invalid("fsync_interval_ms", "must be positive with fsync = \"interval\""));
        }
        if self.offsets_partitions == 0 || self.offsets_partitions > 1024 {
            return Err(invalid("offsets_partitions", "must be between 1 and 1024"));
        }
        if self.offsets_commit_timeout_ms == 0 {
            return Err(invalid("offsets_commit_timeout_ms", "must be at least 1"));
        }
        if self.broker_heartbeat_interval_ms == 0 || self.broker_heartbeat_interval_ms * 2 > self.broker_session_timeout_ms {
            return Err(invalid("broker_heartbeat_interval_ms", "must be positive and at most half of broker_session_timeout_ms"));
        }
        if self.replica_lag_time_max_ms < 100 {
            return Err(invalid("replica_lag_time_max_ms", "must be at least 100"));
        }
        if !self.peers.is_empty() && !self.peers.iter().any(|p| p.id == self.node_id) {
            return Err(invalid("peers", &format!("no [[peers]] entry for this node (node_id = {})", self.node_id)));
        }
        let mut ids: Vec<u64> = self.peers.iter().map(|p| p.id).collect();
        ids.sort_unstable();
        if ids.windows(2).any(|w| w[0] == w[1]) {
            return Err(invalid("peers", "two [[peers]] entries have the same id"));
        }
        if self.voters_max == 0 || self.voters_max.is_multiple_of(2) {
            return Err(invalid("voters_max", "must be an odd number (1, 3, 5, …)"));
        }
        for id in &self.initial_cluster {
            if !self.peers.iter().any(|p| p.id == *id) {
                return Err(invalid("initial_cluster", &format!("node {id} has no [[peers]] entry")));
            }
        }
        if self.join && !self.peers.iter().any(|p| p.id != self.node_id) {
            return Err(invalid("join", "needs [[peers]] entries of the cluster to ask"));
        }
        if self.connections_max == 0 {
            return Err(invalid("connections_max", "must be positive"));
        }
        for (key, addr) in [
            ("bind.kafka", &self.bind.kafka),
            ("bind.wal", &self.bind.wal),
            ("bind.raft", &self.bind.raft),
            ("bind.admin", &self.bind.admin),
        ] {
            if addr.parse::<SocketAddr>().is_err() {
                return Err(invalid(key, &format!("`{addr}` is not an IP:port address")));
            }
        }
        for (key, addr) in [
            ("advertise.kafka", &self.advertise.kafka),
            ("advertise.wal", &self.advertise.wal),
            ("advertise.raft", &self.advertise.raft),
            ("advertise.admin", &self.advertise.admin),
        ] {
            if split_host_port(addr).is_none() {
                return Err(invalid(key, &format!("`{addr}` is not a host:port address")));
            }
        }
        for p in &self.peers {
            for addr in [&p.kafka, &p.wal, &p.raft] {
                if split_host_port(addr).is_none() {
                    return Err(invalid("peers", &format!("peer {}: `{addr}` is not host:port", p.id)));
                }
            }
        }
        Ok(())
    }
}

fn invalid(key: &'static str, reason: &str) -> ConfigError {
    ConfigError::Invalid { key, reason: reason.to_string() }
}

/// `host:port` → (host, port), accepting `[v6]:port`.
pub fn split_host_port(addr: &str) -> Option<(String, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let port = port.parse::<u16>().ok()?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return None;
    }
    Some((host.to_string(), port))
}

fn replace_host(addr: &str, host: &str) -> String {
    match split_host_port(addr) {
        Some((_, port)) => format!("{host}:{port}"),
        None => addr.to_string(),
    }
}

fn span_hint(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!(" (line {line})")
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: "t.toml".into(),
            message: e.message().to_string(),
        })?;
        Config::resolve(file, &Overrides::default())
    }

    #[test]
    fn defaults_are_a_single_node_broker() {
        let c = parse("").unwrap();
        assert_eq!(c.node_id, 1);
        assert_eq!(c.bind.kafka, "127.0.0.1:9092");
        assert_eq!(c.bind.admin, "127.0.0.1:10001");
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.fsync, FsyncMode::Always);
    }

    #[test]
    fn unknown_key_is_named() {
        let err = parse("node_id = 1\nretention_hours = 3\n").unwrap_err().to_string();
        assert!(err.contains("retention_hours"), "{err}");
    }

    #[test]
    fn bad_value_is_named() {
        let err = parse("min_insync_replicas = 5\n").unwrap_err().to_string();
        assert!(err.contains("min_insync_replicas"), "{err}");
        let err = parse("[bind]\nkafka = \"nonsense\"\n").unwrap_err().to_string();
        assert!(err.contains("bind.kafka"), "{err}");
        let err = parse("fsync = \"sometimes\"\n").unwrap_err().to_string();
        assert!(err.contains("sometimes"), "{err}");
    }

    #[test]
    fn peer_entry_supplies_own_addresses() {
        let c = parse(
            "node_id = 2\n[[peers]]\nid = 2\nkafka = \"127.0.0.1:9093\"\nwal = \"127.0.0.1:9292\"\nraft = \"127.0.0.1:5002\"\n",
        )
        .unwrap();
        assert_eq!(c.bind.kafka, "127.0.0.1:9093");
        assert_eq!(c.bind.admin, "127.0.0.1:10002");
        assert_eq!(c.advertise.raft, "127.0.0.1:5002");
    }
}

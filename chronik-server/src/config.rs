//! Broker configuration: the TOML file of docs/CONFIG.md, embedded defaults, and validation.
//!
//! [`Config`] is declared once: the file's keys with their defaults ([`Config::default`]), and what
//! `resolve` works out from them. Unknown keys and invalid values are refused at start with the key
//! named (serde's `deny_unknown_fields` names the key; `validate` names the key of a bad value).

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

/// The configuration the broker runs with, declared once: the TOML file of docs/CONFIG.md (every key
/// optional; a key the file leaves out keeps its value from [`Config::default`]), then the command-line
/// overrides and what follows from them ([`Config::resolve`]: the broker id, the addresses, the
/// founding nodes).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// This node's Raft node id.
    pub node_id: u64,
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
    /// Most incremental fetch sessions (KIP-227) this broker keeps at once (Kafka's
    /// `max.incremental.fetch.session.cache.slots`); 0 turns sessions off.
    pub fetch_sessions_max: usize,
    /// A fetch session unused for this long is dropped; a younger one cannot be evicted by a consumer's
    /// new session (Kafka's `min.incremental.fetch.session.eviction.ms`).
    pub fetch_session_idle_ms: u64,
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
    /// `initial_cluster` as the file gives it; [`Config::initial_cluster`] is what the broker uses.
    #[serde(rename = "initial_cluster")]
    pub initial_cluster_given: Option<Vec<u64>>,
    /// Most metadata voters the odd-voter policy promotes to (1, 3, 5, …).
    pub voters_max: usize,
    /// `[bind]` as the file gives it; [`Config::bind`] is what the broker uses.
    #[serde(rename = "bind")]
    pub bind_given: Addresses,
    /// `[advertise]` as the file gives it; [`Config::advertise`] is what the broker uses.
    #[serde(rename = "advertise")]
    pub advertise_given: Addresses,
    pub peers: Vec<Peer>,

    // Worked out by `resolve`, not keys of the file.
    /// The node id as a broker id (Kafka's `broker.id`); `resolve` refuses a `node_id` that does not fit.
    #[serde(skip)]
    pub broker_id: BrokerId,
    /// Ids that may found the cluster when all are fresh (default: every `[[peers]]` entry); any
    /// other fresh node waits to be added.
    #[serde(skip)]
    pub initial_cluster: Vec<u64>,
    /// Listen addresses: `[bind]`, else this node's `[[peers]]` entry, else the defaults.
    #[serde(skip)]
    pub bind: ResolvedAddresses,
    /// Addresses given to clients and peers: `[advertise]`, else the bind addresses.
    #[serde(skip)]
    pub advertise: ResolvedAddresses,
}

/// The value of every key a config file leaves out (docs/CONFIG.md lists them).
impl Default for Config {
    fn default() -> Self {
        Config {
            node_id: 1,
            data_dir: PathBuf::from("./data"),
            replication_factor: 1,
            min_insync_replicas: 1,
            num_partitions: 1,
            auto_create_topics: true,
            fsync: FsyncMode::Always,
            fsync_interval_ms: 1000,
            frame_bytes_max: 100 * 1024 * 1024,
            message_bytes_max: 1_048_588,
            segment_bytes: 1024 * 1024 * 1024,
            retention_ms: 7 * 24 * 3600 * 1000,
            retention_bytes: -1,
            retention_check_interval_ms: 300_000,
            connections_max: 10_000,
            group_initial_rebalance_delay_ms: 3000,
            group_session_timeout_ms_min: 6000,
            group_session_timeout_ms_max: 1_800_000,
            offsets_partitions: 8,
            offsets_commit_timeout_ms: 5_000,
            fetch_wait_ms_max: 30_000,
            fetch_sessions_max: crate::fetch_session::cache::FETCH_SESSIONS_MAX_DEFAULT,
            fetch_session_idle_ms: crate::fetch_session::cache::FETCH_SESSION_IDLE_MS_DEFAULT,
            replica_lag_time_max_ms: 10_000,
            replica_fetch_wait_ms_max: 500,
            broker_session_timeout_ms: 6_000,
            broker_heartbeat_interval_ms: 1_000,
            leader_rebalance_interval_ms: 5_000,
            reassignment_throttle_bytes_per_s: REASSIGNMENT_THROTTLE_BYTES_PER_S_DEFAULT,
            admin_token: None,
            join: false,
            initial_cluster_given: None,
            voters_max: chronik_raft::VOTERS_MAX_DEFAULT,
            bind_given: Addresses::default(),
            advertise_given: Addresses::default(),
            peers: Vec::new(),
            broker_id: BrokerId(1),
            initial_cluster: Vec::new(),
            bind: ResolvedAddresses::default(),
            advertise: ResolvedAddresses::default(),
        }
    }
}

#[derive(Debug, Clone, Default)]
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
                toml::from_str::<Config>(&text).map_err(|e| ConfigError::Parse {
                    path: path.to_path_buf(),
                    message: e.message().to_string() + &span_hint(&text, e.span()),
                })?
            }
            None => Config::default(),
        };
        Self::resolve(file, overrides)
    }

    /// Applies the command-line overrides to `cfg` as read from the file, works out the broker id,
    /// the addresses and the founding nodes, and validates.
    pub fn resolve(mut cfg: Config, o: &Overrides) -> Result<Config, ConfigError> {
        if let Some(node_id) = o.node_id {
            cfg.node_id = node_id;
        }
        let node_id = cfg.node_id;
        let Some(broker_id) = BrokerId::from_node_id(node_id) else {
            return Err(invalid("node_id", "must be between 0 and 2147483647"));
        };
        let admin_port = ADMIN_PORT_BASE
            .checked_add(u16::try_from(node_id).unwrap_or(u16::MAX))
            .ok_or_else(|| invalid("node_id", "too large for the default admin port; set [bind] admin"))?;
        let me = cfg.peers.iter().find(|p| p.id == node_id);
        let (bind, adv) = (&cfg.bind_given, &cfg.advertise_given);
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
        cfg.broker_id = broker_id;
        cfg.bind = bind;
        cfg.advertise = advertise;
        if let Some(dir) = &o.data_dir {
            cfg.data_dir = dir.clone();
        }
        cfg.admin_token = cfg.admin_token.take().or_else(|| std::env::var("CHRONIK_ADMIN_TOKEN").ok()).filter(|t| !t.is_empty());
        cfg.join |= o.join;
        cfg.initial_cluster = cfg.initial_cluster_given.clone().unwrap_or_else(|| cfg.peers.iter().map(|p| p.id).collect());
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
        if self.fetch_session_idle_ms < 1000 {
            return Err(invalid("fetch_session_idle_ms", "must be at least 1000"));
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
        let file: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
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

    #[test]
    fn keys_left_out_take_their_defaults() {
        let c = parse("").unwrap();
        assert_eq!((c.replication_factor, c.min_insync_replicas, c.num_partitions), (1, 1, 1));
        assert_eq!((c.segment_bytes, c.retention_ms, c.retention_bytes), (1 << 30, 604_800_000, -1));
        assert_eq!((c.message_bytes_max, c.frame_bytes_max), (1_048_588, 100 * 1024 * 1024));
        assert_eq!((c.replica_lag_time_max_ms, c.replica_fetch_wait_ms_max), (10_000, 500));
        assert_eq!(c.reassignment_throttle_bytes_per_s, REASSIGNMENT_THROTTLE_BYTES_PER_S_DEFAULT);
        assert_eq!(c.voters_max, chronik_raft::VOTERS_MAX_DEFAULT);
        assert!(c.auto_create_topics && !c.join && c.peers.is_empty() && c.initial_cluster.is_empty());
        assert_eq!(c.broker_id, BrokerId(1));
        let c = parse("segment_bytes = 2097152\nfsync = \"never\"\n").unwrap();
        assert_eq!((c.segment_bytes, c.fsync, c.retention_bytes), (2_097_152, FsyncMode::Never, -1));
    }

    #[test]
    fn only_file_keys_are_accepted() {
        // Fields `resolve` works out are not keys of the file.
        for key in ["broker_id = 1", "bind_given = 1", "initial_cluster_given = [1]", "advertise_given = 1"] {
            let err = parse(key).unwrap_err().to_string();
            assert!(err.contains("unknown field"), "{key}: {err}");
        }
        let err = parse("node_id = 2147483648\n").unwrap_err().to_string();
        assert!(err.contains("node_id") && err.contains("2147483647"), "{err}");
    }

    #[test]
    fn overrides_and_founding_nodes() {
        let peers = "[[peers]]\nid = 1\nkafka = \"127.0.0.1:1\"\nwal = \"127.0.0.1:2\"\nraft = \"127.0.0.1:3\"\n\
                     [[peers]]\nid = 2\nkafka = \"127.0.0.1:4\"\nwal = \"127.0.0.1:5\"\nraft = \"127.0.0.1:6\"\n";
        assert_eq!(parse(peers).unwrap().initial_cluster, vec![1, 2]);
        let given = format!("initial_cluster = []\n{peers}");
        assert!(parse(&given).unwrap().initial_cluster.is_empty(), "an empty list given stays empty");
        let file: Config = toml::from_str(&format!("node_id = 1\ndata_dir = \"/a\"\n{peers}")).unwrap();
        let o = Overrides { node_id: Some(2), data_dir: Some("/b".into()), join: true, ..Overrides::default() };
        let c = Config::resolve(file, &o).unwrap();
        assert_eq!((c.node_id, c.broker_id, c.data_dir.clone(), c.join), (2, BrokerId(2), PathBuf::from("/b"), true));
        assert_eq!(c.bind.kafka, "127.0.0.1:4");
    }

    #[test]
    fn example_files_load() {
        let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
        let mut files = Vec::new();
        for dir in [examples.clone(), examples.join("single-node-expansion")] {
            for entry in std::fs::read_dir(&dir).unwrap().flatten() {
                if entry.path().extension().is_some_and(|e| e == "toml") {
                    files.push(entry.path());
                }
            }
        }
        assert!(files.len() >= 4, "{files:?}");
        for f in files {
            if let Err(e) = Config::load(Some(&f), &Overrides::default()) {
                panic!("{}: {e}", f.display());
            }
        }
    }
}

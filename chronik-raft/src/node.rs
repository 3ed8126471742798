//! [`MetaNode`]: opens the stores, starts openraft, forms or rejoins the group, and gives the broker
//! a small API — write a command, read the applied state, watch it change, report status.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use openraft::{Config, ServerState, SnapshotPolicy};
use parking_lot::RwLock;
use tokio::sync::watch;

use crate::command::{MetaCommand, MetaResponse};
use crate::error::MetaError;
use crate::log_store::LogStore;
use crate::network::Network;
use crate::snapshot_store::SnapshotStore;
use crate::state::MetadataState;
use crate::state_machine::{PublishedState, StateMachineStore};
use crate::types::{BrokerNode, MetaRaft, NodeId};

/// How long `start` waits for a leader (itself when bootstrapping).
pub const LEADER_WAIT_MS: u64 = 10_000;
/// Time allowed per snapshot chunk; openraft's 200 ms default retries a slow chunk forever.
pub const INSTALL_SNAPSHOT_TIMEOUT_MS: u64 = 10_000;
/// Subdirectory of the data dir holding the metadata log, vote and snapshot.
pub const RAFT_DIR_NAME: &str = "raft";
/// Cluster name openraft puts in its tracing spans.
const CLUSTER_NAME: &str = "chronik-metadata";

/// How to start the metadata node.
#[derive(Clone, Debug)]
pub struct MetaConfig {
    pub node_id: NodeId,
    /// This node's endpoints, recorded in the membership when it bootstraps the group.
    pub node: BrokerNode,
    /// The broker data directory; the metadata lives in `dir/raft/`.
    pub dir: PathBuf,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many applied entries; as many entries are kept behind it so a
    /// peer that is just receiving the previous snapshot can still continue from the log.
    pub snapshot_logs_since_last: u64,
}

impl Default for MetaConfig {
    fn default() -> Self {
        MetaConfig {
            node_id: 1,
            node: BrokerNode::default(),
            dir: PathBuf::from("data"),
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 600,
            election_timeout_max_ms: 1200,
            snapshot_logs_since_last: 1000,
        }
    }
}

impl MetaConfig {
    /// openraft's config for this node; the error says which timing rule was broken.
    fn raft_config(&self) -> Result<Config, String> {
        let keep = self.snapshot_logs_since_last;
        Config {
            cluster_name: CLUSTER_NAME.into(),
            heartbeat_interval: self.heartbeat_interval_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            install_snapshot_timeout: INSTALL_SNAPSHOT_TIMEOUT_MS,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(self.snapshot_logs_since_last),
            max_in_snapshot_log_to_keep: keep,
            ..Default::default()
        }
        .validate()
        .map_err(|e| e.to_string())
    }
}

/// A point-in-time view of this node's place in the metadata group.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct MetaStatus {
    pub node_id: NodeId,
    pub is_leader: bool,
    pub leader_id: Option<NodeId>,
    pub term: u64,
    pub voters: Vec<NodeId>,
    pub learners: Vec<NodeId>,
    pub last_applied: Option<u64>,
    /// Every member's endpoints, from the membership config.
    pub nodes: BTreeMap<NodeId, BrokerNode>,
}

/// A running member of the metadata group.
pub struct MetaNode {
    node_id: NodeId,
    raft: MetaRaft,
    published: PublishedState,
    applied_rx: watch::Receiver<u64>,
    /// Whether this start formed a new one-voter group (the data dir was empty).
    bootstrapped: bool,
}

impl MetaNode {
    /// Open the stores under `dir`. Fresh (no vote, no log, no snapshot): initialize a one-voter
    /// cluster {node_id: node} and wait (bounded) until this node is leader. Existing: start from
    /// disk, never initialize again, and wait (bounded) until a leader is known.
    pub async fn start(cfg: MetaConfig) -> Result<Arc<MetaNode>, MetaError> {
        let raft_config = Arc::new(cfg.raft_config().map_err(MetaError::Config)?);
        let raft_dir = cfg.dir.join(RAFT_DIR_NAME);
        std::fs::create_dir_all(&raft_dir)
            .map_err(|source| MetaError::Io { verb: "create directory", path: raft_dir.clone(), source })?;
        crate::durable::sync_parent(&raft_dir)?;

        let log_store = LogStore::open(&raft_dir)?;
        let published: PublishedState = Arc::new(RwLock::new(Arc::new(MetadataState::default())));
        let (applied_tx, applied_rx) = watch::channel(0);
        let snapshots = Arc::new(SnapshotStore::new(&raft_dir));
        let state_machine = StateMachineStore::open(snapshots, published.clone(), applied_tx)?;
        let fresh = log_store.is_pristine() && !state_machine.has_state();

        let raft = MetaRaft::new(cfg.node_id, raft_config, Network, log_store, state_machine)
            .await
            .map_err(|e| MetaError::Raft { during: "start", message: e.to_string() })?;
        let node = MetaNode { node_id: cfg.node_id, raft, published, applied_rx, bootstrapped: fresh };

        let wait = node.raft.wait(Some(Duration::from_millis(LEADER_WAIT_MS)));
        let id = cfg.node_id;
        if fresh {
            tracing::info!(node_id = id, dir = %raft_dir.display(), "bootstrapping a one-voter metadata group");
            node.raft
                .initialize(BTreeMap::from([(id, cfg.node.clone())]))
                .await
                .map_err(|e| MetaError::Raft { during: "initialize", message: e.to_string() })?;
            wait.metrics(|m| m.current_leader == Some(id) && m.state == ServerState::Leader, "this node leads")
                .await
                .map_err(|_| MetaError::LeaderTimeout { node_id: id, what: "leadership of the new group", waited_ms: LEADER_WAIT_MS })?;
        } else {
            tracing::info!(node_id = id, dir = %raft_dir.display(), "restarting metadata node from disk");
            wait.metrics(|m| m.current_leader.is_some(), "a leader is known")
                .await
                .map_err(|_| MetaError::LeaderTimeout { node_id: id, what: "a known leader", waited_ms: LEADER_WAIT_MS })?;
        }
        let status = node.status();
        tracing::info!(node_id = id, leader = ?status.leader_id, term = status.term, last_applied = ?status.last_applied, "metadata node started");
        Ok(Arc::new(node))
    }

    /// Replicate `cmd` and return how it applied. Not leader → [`MetaError::ForwardToLeader`].
    pub async fn write(&self, cmd: MetaCommand) -> Result<MetaResponse, MetaError> {
        match self.raft.client_write(cmd).await {
            Ok(resp) => Ok(resp.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(MetaError::ForwardToLeader { leader_id: f.leader_id, leader: f.leader_node })
            }
            Err(e) => Err(MetaError::Raft { during: "client write", message: e.to_string() }),
        }
    }

    /// Last applied state, cheap to call per request.
    pub fn state(&self) -> Arc<MetadataState> {
        self.published.read().clone()
    }

    /// Watch of the last applied log index, for tasks that react to metadata changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.applied_rx.clone()
    }

    /// Role, term, leader and membership of this node right now.
    pub fn status(&self) -> MetaStatus {
        let m = self.raft.metrics().borrow().clone();
        let membership = m.membership_config.membership();
        MetaStatus {
            node_id: self.node_id,
            is_leader: m.state == ServerState::Leader && m.current_leader == Some(self.node_id),
            leader_id: m.current_leader,
            term: m.current_term,
            voters: membership.voter_ids().collect(),
            learners: membership.learner_ids().collect(),
            last_applied: m.last_applied.map(|l| l.index),
            nodes: membership.nodes().map(|(id, n)| (*id, n.clone())).collect(),
        }
    }

    /// True when this start formed a new group from an empty data dir.
    pub fn bootstrapped(&self) -> bool {
        self.bootstrapped
    }

    /// The underlying Raft handle, for the peer transport and membership changes of later issues.
    pub fn raft(&self) -> &MetaRaft {
        &self.raft
    }

    /// Stop the Raft instance; storage is durable at every step, so nothing more is flushed.
    pub async fn shutdown(&self) -> Result<(), MetaError> {
        self.raft.shutdown().await.map_err(|e| MetaError::Raft { during: "shutdown", message: e.to_string() })
    }
}

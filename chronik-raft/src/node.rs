//! [`MetaNode`]: opens the stores, starts openraft and the peer listener, forms, joins or rejoins
//! the group, and gives the broker a small API — write a command (from any node), read the applied
//! state, watch it change, report status.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{Config, RaftMetrics, ServerState, SnapshotPolicy};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::bootstrap::{ask_peers, decide, Decision, DISCOVERY_RETRY_MS};
use crate::command::{MetaCommand, MetaResponse};
use crate::error::MetaError;
use crate::forward::WRITE_DEADLINE_MS;
use crate::log_store::LogStore;
use crate::network::Network;
use crate::liveness::Liveness;
use crate::peer::{Heard, Lane, PeerPool, PeerResponse, PeerRpc, PeerServer};
use crate::sizes::{SizeReport, SizeReports};
use crate::snapshot_store::SnapshotStore;
use crate::state::MetadataState;
use crate::state_machine::{PublishedState, StateMachineStore};
use crate::types::{BrokerNode, MetaRaft, NodeId};

/// Default of [`MetaConfig::leader_wait_ms`]: how long `start` waits for a leader.
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
    /// Where to listen for metadata peers (`host:port`); `None` runs no listener, which suits a
    /// single node with no peers.
    pub bind_raft_addr: Option<String>,
    /// Every member of a static cluster, this node included, with its endpoints. Empty means a
    /// single-node group of `node_id` at `node`.
    pub peers: BTreeMap<NodeId, BrokerNode>,
    /// How long `start` waits for the group to have a leader (bootstrap questions included).
    pub leader_wait_ms: u64,
    /// How long one `write` may take, forwarding and retries through elections included.
    pub write_deadline_ms: u64,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// Build a snapshot after this many applied entries; as many entries are kept behind it so a
    /// peer that is just receiving the previous snapshot can still continue from the log.
    pub snapshot_logs_since_last: u64,
    /// Whether this node may found a new group from `peers` when fresh (it is one of the initial
    /// cluster). A node that may not only ever waits to be added by an existing leader.
    pub may_bootstrap: bool,
}

impl Default for MetaConfig {
    fn default() -> Self {
        MetaConfig {
            node_id: 1,
            node: BrokerNode::default(),
            dir: PathBuf::from("data"),
            bind_raft_addr: None,
            peers: BTreeMap::new(),
            leader_wait_ms: LEADER_WAIT_MS,
            write_deadline_ms: WRITE_DEADLINE_MS,
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 600,
            election_timeout_max_ms: 1200,
            snapshot_logs_since_last: 1000,
            may_bootstrap: true,
        }
    }
}

impl MetaConfig {
    /// The initial voters: `peers`, or just this node when no peers are given. Refused: peers
    /// that leave out this node (it would never be a member of the group it bootstraps), and
    /// other peers without a listener (they could never reach this node).
    fn members(&self) -> Result<BTreeMap<NodeId, BrokerNode>, String> {
        if self.peers.is_empty() {
            return Ok(BTreeMap::from([(self.node_id, self.node.clone())]));
        }
        let ids: Vec<NodeId> = self.peers.keys().copied().collect();
        if !self.peers.contains_key(&self.node_id) {
            return Err(format!("peers {ids:?} do not include this node's id {}", self.node_id));
        }
        if ids.len() > 1 && self.bind_raft_addr.is_none() {
            return Err(format!("peers {ids:?} are configured but no raft address to listen on (bind_raft_addr)"));
        }
        Ok(self.peers.clone())
    }

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
    pub(crate) node_id: NodeId,
    pub(crate) raft: MetaRaft,
    published: PublishedState,
    applied_rx: watch::Receiver<u64>,
    /// Whether this start called `initialize` (formed a new group from an empty data dir).
    bootstrapped: bool,
    /// Connections to peers, shared by the Raft network and write forwarding.
    pub(crate) pool: PeerPool,
    /// Bound on one `write`, from [`MetaConfig::write_deadline_ms`].
    write_deadline_ms: u64,
    /// The listener on the raft address; taken out on shutdown.
    server: Mutex<Option<PeerServer>>,
    /// Brokers' last heartbeats and size reports, filled while this node leads.
    heard: Heard,
    /// One membership change at a time (`membership`), and what it is, for refusals.
    pub(crate) change_lock: tokio::sync::Mutex<()>,
    pub(crate) change_what: Mutex<Option<String>>,
    /// How long followers trust a silent leader (openraft's leader lease is this long).
    pub(crate) election_timeout_max_ms: u64,
}

impl MetaNode {
    /// Open the stores under `dir`, listen for peers on `bind_raft_addr` (when set), then form,
    /// join or rejoin the group and wait (bounded by `leader_wait_ms`) until a leader is known.
    ///
    /// - Stored state (vote, log or snapshot): restart from disk; never initialize again.
    /// - Fresh, no other peers: initialize a one-voter group of this node and wait to lead it.
    /// - Fresh with peers: the bootstrap rule of [`crate::bootstrap`] — the lowest id initializes
    ///   all peers as voters once a majority answered that they are fresh too; the others wait for
    ///   the leader to reach them.
    pub async fn start(cfg: MetaConfig) -> Result<Arc<MetaNode>, MetaError> {
        let raft_config = Arc::new(cfg.raft_config().map_err(MetaError::Config)?);
        let members = if cfg.may_bootstrap { cfg.members().map_err(MetaError::Config)? } else { BTreeMap::new() };
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

        let id = cfg.node_id;
        let pool = PeerPool::default();
        let raft = MetaRaft::new(id, raft_config, Network::new(id, pool.clone()), log_store, state_machine)
            .await
            .map_err(|e| MetaError::Raft { during: "start", message: e.to_string() })?;
        let heard = Heard::default();
        let server = match &cfg.bind_raft_addr {
            None => None,
            Some(addr) => match PeerServer::start(addr, id, raft.clone(), heard.clone()).await {
                Ok(s) => Some(s),
                Err(e) => {
                    let _ = raft.shutdown().await;
                    return Err(e);
                }
            },
        };
        let mut node = MetaNode {
            node_id: id,
            raft,
            published,
            applied_rx,
            bootstrapped: false,
            pool,
            write_deadline_ms: cfg.write_deadline_ms,
            server: Mutex::new(server),
            heard,
            change_lock: tokio::sync::Mutex::new(()),
            change_what: Mutex::new(None),
            election_timeout_max_ms: cfg.election_timeout_max_ms,
        };
        match node.form_or_join(&cfg, fresh, &raft_dir, members).await {
            Ok(bootstrapped) => node.bootstrapped = bootstrapped,
            Err(e) => {
                if let Err(stop) = node.shutdown().await {
                    tracing::warn!(node_id = id, error = %stop, "stopping the metadata node after a failed start");
                }
                return Err(e);
            }
        }
        let status = node.status();
        tracing::info!(node_id = id, leader = ?status.leader_id, term = status.term, last_applied = ?status.last_applied, "metadata node started");
        Ok(Arc::new(node))
    }

    /// Bring this node into a group; true when it initialized a new one. See [`MetaNode::start`].
    async fn form_or_join(
        &self,
        cfg: &MetaConfig,
        fresh: bool,
        raft_dir: &std::path::Path,
        members: BTreeMap<NodeId, BrokerNode>,
    ) -> Result<bool, MetaError> {
        let id = self.node_id;
        let waited_ms = cfg.leader_wait_ms;
        let deadline = Instant::now() + Duration::from_millis(waited_ms);
        let ids: BTreeSet<NodeId> = members.keys().copied().collect();
        let single = ids.iter().all(|m| *m == id);
        if !fresh {
            tracing::info!(node_id = id, dir = %raft_dir.display(), "restarting metadata node from disk");
            self.wait_until(deadline, |m| m.current_leader.is_some(), "a known leader", waited_ms).await?;
            return Ok(false);
        }
        if !cfg.may_bootstrap {
            tracing::info!(node_id = id, "fresh node outside the initial cluster: waiting to be added by the metadata leader");
            return Ok(false);
        }
        let mut initialized_here = false;
        loop {
            let reached = self.raft.is_initialized().await.map_err(|e| MetaError::Raft { during: "bootstrap", message: e.to_string() })?;
            if reached {
                tracing::info!(node_id = id, "a metadata leader reached this fresh node; joining its cluster");
                break;
            }
            let answers = if !single && ids.first() == Some(&id) { ask_peers(id, &members, &self.pool).await } else { BTreeMap::new() };
            match decide(id, &ids, &answers) {
                Decision::Initialize => {
                    if single {
                        tracing::info!(node_id = id, dir = %raft_dir.display(), "bootstrapping a one-voter metadata group");
                    } else {
                        tracing::info!(node_id = id, voters = ?ids, answers = ?answers, "bootstrapping the metadata group as its lowest id");
                    }
                    match self.raft.initialize(members.clone()).await {
                        Ok(()) => initialized_here = true,
                        // A leader reached this node between the check and the call: already a member.
                        Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                            tracing::info!(node_id = id, reason = %e, "not initializing: this node already joined a cluster");
                        }
                        Err(e) => return Err(MetaError::Raft { during: "initialize", message: e.to_string() }),
                    }
                    break;
                }
                Decision::Wait => {
                    tracing::info!(node_id = id, voters = ?ids, answers = ?answers, "fresh metadata node waiting for the leader to reach it");
                    break;
                }
                Decision::AskAgain => {
                    if Instant::now() >= deadline {
                        return Err(MetaError::LeaderTimeout { node_id: id, what: "answers from a majority of fresh peers", waited_ms });
                    }
                    tracing::debug!(node_id = id, answers = ?answers, "too few peers answered to bootstrap; asking again");
                    tokio::time::sleep(Duration::from_millis(DISCOVERY_RETRY_MS)).await;
                }
            }
        }
        if single {
            let leads = |m: &RaftMetrics<NodeId, BrokerNode>| m.current_leader == Some(id) && m.state == ServerState::Leader;
            self.wait_until(deadline, leads, "leadership of the new group", waited_ms).await?;
        } else if self.wait_until(deadline, |m| m.current_leader.is_some(), "a known leader", waited_ms).await.is_err() {
            // Not an error: the group may already exist without this node, whose leader adds it
            // when an operator (or this node's --join) asks. `wait_joined` waits for that.
            tracing::info!(node_id = id, waited_ms, "no metadata leader has reached this fresh node yet; waiting to be added");
        }
        Ok(initialized_here)
    }

    /// Wait until `until` holds for the Raft metrics, or fail with [`MetaError::LeaderTimeout`].
    async fn wait_until(
        &self,
        deadline: Instant,
        until: impl Fn(&RaftMetrics<NodeId, BrokerNode>) -> bool + Send,
        what: &'static str,
        waited_ms: u64,
    ) -> Result<(), MetaError> {
        let left = deadline.saturating_duration_since(Instant::now());
        self.raft
            .wait(Some(left))
            .metrics(until, what)
            .await
            .map(|_| ())
            .map_err(|_| MetaError::LeaderTimeout { node_id: self.node_id, what, waited_ms })
    }

    /// Apply `cmd` through the group and return how it applied. On a follower the command is
    /// forwarded to the leader; through elections the write is retried until
    /// `write_deadline_ms`, then fails with [`MetaError::NoLeader`] (retriable).
    pub async fn write(&self, cmd: MetaCommand) -> Result<MetaResponse, MetaError> {
        crate::forward::write(self.node_id, &self.raft, &self.pool, cmd, self.write_deadline_ms).await
    }

    /// Write a controller decision made while this node led the metadata in `term`: stamped with the
    /// term ([`MetaCommand::Decided`]), proposed to this node's own Raft only — never forwarded — and
    /// answered once committed and applied. The state machine applies it only if its entry belongs to
    /// `term`, so a leader that slept through its own deposition cannot get it applied. Fails with
    /// [`MetaError::ForwardToLeader`] when this node no longer leads (drop the decision), or when the
    /// entry is not committed within `write_deadline_ms`.
    pub async fn write_as_leader(&self, term: u64, decision: MetaCommand) -> Result<MetaResponse, MetaError> {
        let cmd = MetaCommand::Decided { term, decision: Box::new(decision) };
        let deadline = Duration::from_millis(self.write_deadline_ms);
        match tokio::time::timeout(deadline, self.raft.client_write(cmd)).await {
            Ok(Ok(r)) => Ok(r.data),
            Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                Err(MetaError::ForwardToLeader { leader_id: f.leader_id, leader: f.leader_node })
            }
            Ok(Err(e)) => Err(MetaError::Raft { during: "controller write", message: e.to_string() }),
            Err(_) => Err(MetaError::Raft {
                during: "controller write",
                message: format!("not committed within {} ms", self.write_deadline_ms),
            }),
        }
    }

    /// Whether a metadata leader has reached this node: it is a member (voter or learner) and knows
    /// its leader.
    pub fn has_joined(&self) -> bool {
        let m = self.raft.metrics().borrow().clone();
        m.current_leader.is_some() && m.membership_config.membership().nodes().any(|(id, _)| *id == self.node_id)
    }

    /// Wait, without a deadline, until a metadata leader has reached this node (see
    /// [`MetaNode::has_joined`]), saying every `report_every` that it is still waiting.
    pub async fn wait_joined(&self, report_every: Duration) {
        let me = self.node_id;
        loop {
            let joined = |m: &RaftMetrics<NodeId, BrokerNode>| m.current_leader.is_some() && m.membership_config.membership().nodes().any(|(id, _)| *id == me);
            if self.raft.wait(Some(report_every)).metrics(joined, "joined").await.is_ok() {
                return;
            }
            tracing::info!(node_id = me, "waiting to be added to the cluster (chronik-server cluster add-node, or start with --join)");
        }
    }

    /// Waits (at most `within`) until this node has applied every metadata write that completed
    /// anywhere before the call, so the next [`MetaNode::state`] is a linearizable read
    /// ([`crate::read_index`]). Fails without a reachable leader that still leads a quorum.
    pub async fn read_barrier(&self, within: std::time::Duration) -> Result<(), MetaError> {
        crate::read_index::barrier(self.node_id, &self.raft, &self.pool, &self.applied_rx, within).await
    }

    /// Resolves when the Raft core has stopped on an error — a storage error (the metadata log,
    /// vote or snapshot could not be written, e.g. on a full disk) or a panic — with its
    /// description; never for a normal shutdown. openraft stops the core on any storage error, so
    /// the node no longer votes or applies metadata; what it wrote before is intact (every write is
    /// a whole fsynced frame or a temp file renamed into place, and a torn tail is cut on open).
    pub async fn stopped_on_error(&self) -> String {
        let mut metrics = self.raft.metrics();
        loop {
            if let Err(fatal) = &metrics.borrow_and_update().running_state {
                if !matches!(fatal, openraft::error::Fatal::Stopped) {
                    return fatal.to_string();
                }
            }
            if metrics.changed().await.is_err() {
                // The core is gone and its last metrics said nothing more.
                std::future::pending::<()>().await;
            }
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

    /// True when this start formed a new group (called `initialize`); in a fresh multi-node
    /// cluster exactly one node reports true.
    /// Tells the metadata leader this broker is alive: recorded locally when this node leads, else
    /// sent to the leader. Returns whether the leader accepted it.
    pub async fn heartbeat(&self, timeout: std::time::Duration) -> Result<bool, MetaError> {
        self.heartbeat_with_sizes(timeout, None).await
    }

    /// [`MetaNode::heartbeat`], carrying this broker's replica sizes when `sizes` is given.
    pub async fn heartbeat_with_sizes(&self, timeout: std::time::Duration, sizes: Option<SizeReport>) -> Result<bool, MetaError> {
        let status = self.status();
        let Some(leader_id) = status.leader_id else { return Ok(false) };
        if leader_id == self.node_id {
            self.heard.liveness.record(self.node_id);
            if let Some(report) = sizes {
                self.heard.sizes.record(self.node_id, status.term, report);
            }
            return Ok(true);
        }
        let Some(leader) = status.nodes.get(&leader_id) else { return Ok(false) };
        let conn = self.pool.conn(leader_id, &leader.raft_addr, Lane::Client);
        match conn.call(PeerRpc::BrokerHeartbeat { broker: self.node_id, sizes }, timeout).await {
            Ok(PeerResponse::BrokerHeartbeat { accepted, .. }) => Ok(accepted),
            Ok(other) => Err(MetaError::Raft { during: "broker heartbeat", message: format!("unexpected answer {other:?}") }),
            Err(e) => Err(MetaError::Raft { during: "broker heartbeat", message: e.to_string() }),
        }
    }

    /// Last heartbeats seen while this node leads (the controller reads them).
    pub fn liveness(&self) -> &Liveness {
        &self.heard.liveness
    }

    /// Replica sizes brokers reported while this node leads (the controller reads them).
    pub fn size_reports(&self) -> &SizeReports {
        &self.heard.sizes
    }

    pub fn bootstrapped(&self) -> bool {
        self.bootstrapped
    }

    /// The underlying Raft handle (the peer transport serves it).
    pub fn raft(&self) -> &MetaRaft {
        &self.raft
    }

    /// The address the peer listener is bound to, when `bind_raft_addr` was set.
    pub fn raft_local_addr(&self) -> Option<SocketAddr> {
        self.server.lock().as_ref().map(|s| s.local_addr())
    }

    /// Close the peer listener (peers see this node as down at once), then stop the Raft instance;
    /// storage is durable at every step, so nothing more is flushed.
    pub async fn shutdown(&self) -> Result<(), MetaError> {
        let server = self.server.lock().take();
        if let Some(server) = server {
            server.stop().await;
        }
        self.raft.shutdown().await.map_err(|e| MetaError::Raft { during: "shutdown", message: e.to_string() })
    }
}

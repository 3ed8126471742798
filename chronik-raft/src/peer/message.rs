//! What travels on the raft port: a [`PeerRequest`] naming its target node, answered by one
//! [`PeerResponse`].

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest, VoteResponse};
use serde::{Deserialize, Serialize};

use crate::command::{MetaCommand, MetaResponse};
use crate::sizes::SizeReport;
use crate::types::{BrokerNode, NodeId, TypeConfig};

/// One RPC, addressed to node `target`. The receiver refuses it unless `target` is its own id: a
/// stale or wrong address must not make openraft replicate to the wrong node (or to itself).
#[derive(Debug, Serialize, Deserialize)]
pub struct PeerRequest {
    pub target: NodeId,
    pub rpc: PeerRpc,
}

/// The request kinds: openraft's three, and three of ours.
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerRpc {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    /// One chunk of a snapshot; openraft's default `full_snapshot` splits a snapshot into these.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A follower hands a metadata write to the leader. The receiver writes it locally and never
    /// forwards it again, so a stale view of the leader cannot make a request loop.
    ForwardWrite(MetaCommand),
    /// Ask whether the receiver belongs to a formed cluster (bootstrap).
    ClusterInfo,
    /// A broker tells the metadata leader it is alive (the controller fences brokers that stop),
    /// now and then with the sizes of the replicas it hosts. `sizes` is optional on the wire both
    /// ways: an older peer's heartbeat has none, and an older leader ignores it.
    BrokerHeartbeat {
        broker: NodeId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sizes: Option<SizeReport>,
    },
    /// Leadership transfer: start no election for `ms` (released by itself after).
    HoldElections { ms: u64 },
    /// Leadership transfer: the target calls an election now.
    StartElection,
    /// A read index: the receiver, if it leads, confirms its leadership with a quorum and answers
    /// the log index a linearizable read must have applied ([`crate::read_index`]).
    ReadIndex,
}

impl PeerRpc {
    /// Short name for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            PeerRpc::AppendEntries(_) => "append entries",
            PeerRpc::Vote(_) => "vote",
            PeerRpc::InstallSnapshot(_) => "install snapshot",
            PeerRpc::ForwardWrite(_) => "forward write",
            PeerRpc::ClusterInfo => "cluster info",
            PeerRpc::BrokerHeartbeat { .. } => "broker heartbeat",
            PeerRpc::HoldElections { .. } => "hold elections",
            PeerRpc::StartElection => "start election",
            PeerRpc::ReadIndex => "read index",
        }
    }
}

/// The answer to one [`PeerRequest`].
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerResponse {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>),
    ForwardWrite(Result<MetaResponse, ForwardRefusal>),
    ClusterInfo(ClusterInfo),
    /// `accepted` is false when the receiver is not the leader; `leader_id` says who is, if known.
    BrokerHeartbeat { accepted: bool, leader_id: Option<NodeId> },
    /// Done (hold elections, start election); `error` says why not.
    Done { error: Option<String> },
    /// The log index a linearizable read must wait for, or why the receiver cannot give one.
    ReadIndex(Result<u64, ForwardRefusal>),
    /// The request named `target`, but this is node `receiver`; nothing was done.
    WrongTarget { receiver: NodeId, target: NodeId },
}

/// Why a forwarded write was not applied by the receiver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum ForwardRefusal {
    /// The receiver is not (or no longer) the leader; try `leader_id` when known.
    NotLeader { leader_id: Option<NodeId>, leader: Option<BrokerNode> },
    /// The receiver's Raft failed the write for another reason (stopping, storage failure).
    Failed(String),
}

/// What a node says about itself to a node deciding whether to bootstrap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    pub node_id: NodeId,
    /// The node has a log, a vote or a snapshot: it belongs to a formed (or forming) cluster.
    pub initialized: bool,
    pub leader_id: Option<NodeId>,
    pub term: u64,
}

//! openraft's view of the peer transport: [`Network`] makes a [`PeerClient`] per target, and the
//! client sends openraft's RPCs over the pooled connections of [`crate::peer`], mapping transport
//! failures onto openraft's error kinds (unreachable → back off, timeout, remote Raft error).

use std::time::Duration;

use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Timeout, Unreachable};
use openraft::network::{Backoff, RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest, VoteResponse};

use crate::peer::{Lane, PeerError, PeerPool, PeerResponse, PeerRpc};
use crate::types::{BrokerNode, NodeId, TypeConfig};

/// Pause before openraft retries a peer that was unreachable. openraft's default is 500 ms; a
/// shorter pause lets a restarted node catch up sooner, at the cost of a few refused connects.
pub const PEER_BACKOFF_MS: u64 = 200;

/// Creates a client per peer; all clients share this node's connection pool.
#[derive(Debug, Clone)]
pub struct Network {
    /// This node's id, named as the sender in timeout errors.
    node_id: NodeId,
    pool: PeerPool,
}

impl Network {
    pub fn new(node_id: NodeId, pool: PeerPool) -> Network {
        Network { node_id, pool }
    }
}

/// openraft's client for one peer.
#[derive(Debug, Clone)]
pub struct PeerClient {
    node_id: NodeId,
    target: NodeId,
    node: BrokerNode,
    pool: PeerPool,
}

type RpcResult<T, E = openraft::error::Infallible> = Result<T, RPCError<NodeId, BrokerNode, RaftError<NodeId, E>>>;

impl PeerClient {
    async fn call(&self, rpc: PeerRpc, lane: Lane, ttl: Duration) -> Result<PeerResponse, PeerError> {
        self.pool.conn(self.target, &self.node.raft_addr, lane).call(rpc, ttl).await
    }

    /// Map a transport failure onto openraft's kinds.
    fn failed<E: std::error::Error>(&self, e: PeerError, action: RPCTypes, ttl: Duration) -> RPCError<NodeId, BrokerNode, E> {
        match e {
            PeerError::Connect { .. } | PeerError::WrongTarget { .. } => RPCError::Unreachable(Unreachable::new(&e)),
            PeerError::Timeout { .. } => RPCError::Timeout(Timeout { action, id: self.node_id, target: self.target, timeout: ttl }),
            other => RPCError::Network(NetworkError::new(&other)),
        }
    }

    fn remote<E: std::error::Error>(&self, e: RaftError<NodeId, E>) -> RPCError<NodeId, BrokerNode, RaftError<NodeId, E>> {
        RPCError::RemoteError(RemoteError::new_with_node(self.target, self.node.clone(), e))
    }

    fn unexpected<E: std::error::Error>(&self, rpc: &'static str, got: &PeerResponse) -> RPCError<NodeId, BrokerNode, E> {
        let e = PeerError::Unexpected { rpc, target: self.target, addr: self.node.raft_addr.clone(), got: format!("{got:?}") };
        RPCError::Network(NetworkError::new(&e))
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BrokerNode) -> PeerClient {
        PeerClient { node_id: self.node_id, target, node: node.clone(), pool: self.pool.clone() }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(&mut self, rpc: AppendEntriesRequest<TypeConfig>, option: RPCOption) -> RpcResult<AppendEntriesResponse<NodeId>> {
        let (action, ttl) = (RPCTypes::AppendEntries, option.hard_ttl());
        match self.call(PeerRpc::AppendEntries(rpc), Lane::Replication, ttl).await {
            Ok(PeerResponse::AppendEntries(Ok(r))) => Ok(r),
            Ok(PeerResponse::AppendEntries(Err(e))) => Err(self.remote(e)),
            Ok(other) => Err(self.unexpected("append entries", &other)),
            Err(e) => Err(self.failed(e, action, ttl)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        let (action, ttl) = (RPCTypes::InstallSnapshot, option.hard_ttl());
        match self.call(PeerRpc::InstallSnapshot(rpc), Lane::Snapshot, ttl).await {
            Ok(PeerResponse::InstallSnapshot(Ok(r))) => Ok(r),
            Ok(PeerResponse::InstallSnapshot(Err(e))) => Err(self.remote(e)),
            Ok(other) => Err(self.unexpected("install snapshot", &other)),
            Err(e) => Err(self.failed(e, action, ttl)),
        }
    }

    async fn vote(&mut self, rpc: VoteRequest<NodeId>, option: RPCOption) -> RpcResult<VoteResponse<NodeId>> {
        let (action, ttl) = (RPCTypes::Vote, option.hard_ttl());
        match self.call(PeerRpc::Vote(rpc), Lane::Replication, ttl).await {
            Ok(PeerResponse::Vote(Ok(r))) => Ok(r),
            Ok(PeerResponse::Vote(Err(e))) => Err(self.remote(e)),
            Ok(other) => Err(self.unexpected("vote", &other)),
            Err(e) => Err(self.failed(e, action, ttl)),
        }
    }

    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(Duration::from_millis(PEER_BACKOFF_MS)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_peer_that_is_down_is_unreachable_and_named() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let node = BrokerNode { raft_addr: format!("127.0.0.1:{port}"), ..Default::default() };
        let mut client = Network::new(1, PeerPool::default()).new_client(7, &node).await;
        let rpc = VoteRequest::new(openraft::Vote::new(1, 1), None);
        match client.vote(rpc, RPCOption::new(Duration::from_millis(500))).await {
            Err(RPCError::Unreachable(u)) => {
                let text = u.to_string();
                assert!(text.contains("node 7") && text.contains(&node.raft_addr), "{text}");
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }
}

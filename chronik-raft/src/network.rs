//! The peer network of the metadata group.
//!
//! A one-voter group sends no RPCs, so this transport only has to exist: every client answers every
//! RPC with `Unreachable` naming its target. The peer transport (HTTP on the raft port) comes with
//! the multi-node issue; it replaces [`PeerClient`] and keeps [`Network`] as the factory.

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest, VoteResponse};

use crate::types::{BrokerNode, NodeId, TypeConfig};

/// Creates a client per peer.
#[derive(Debug, Clone, Default)]
pub struct Network;

/// A client for one peer that cannot reach it yet.
#[derive(Debug, Clone)]
pub struct PeerClient {
    target: NodeId,
    raft_addr: String,
}

/// Why a peer RPC failed: there is no transport yet.
#[derive(Debug, thiserror::Error)]
#[error("metadata peer {target} at {raft_addr:?} is unreachable: no peer transport in this build")]
pub struct NoTransport {
    pub target: NodeId,
    pub raft_addr: String,
}

impl PeerClient {
    fn unreachable<E: std::error::Error>(&self) -> RPCError<NodeId, BrokerNode, E> {
        RPCError::Unreachable(Unreachable::new(&NoTransport { target: self.target, raft_addr: self.raft_addr.clone() }))
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &BrokerNode) -> PeerClient {
        PeerClient { target, raft_addr: node.raft_addr.clone() }
    }
}

impl RaftNetwork<TypeConfig> for PeerClient {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BrokerNode, RaftError<NodeId>>> {
        Err(self.unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RPCError<NodeId, BrokerNode, RaftError<NodeId, InstallSnapshotError>>> {
        Err(self.unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BrokerNode, RaftError<NodeId>>> {
        Err(self.unreachable())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_rpc_is_unreachable_and_names_the_target() {
        let node = BrokerNode { raft_addr: "10.0.0.7:5001".into(), ..Default::default() };
        let mut client = Network.new_client(7, &node).await;
        let rpc = VoteRequest::new(openraft::Vote::new(1, 1), None);
        let err = client.vote(rpc, RPCOption::new(std::time::Duration::from_millis(100))).await;
        match err {
            Err(RPCError::Unreachable(u)) => {
                let text = u.to_string();
                assert!(text.contains("peer 7") && text.contains("10.0.0.7:5001"), "{text}");
            }
            other => panic!("expected Unreachable, got {other:?}"),
        }
    }
}

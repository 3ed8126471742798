//! The receiving side of the peer transport: a TCP listener on the raft address, a task per
//! connection, and [`handle`] which answers one request from the local Raft instance.

use std::net::SocketAddr;

use openraft::error::{ClientWriteError, RaftError};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};
use tracing::Instrument;

use std::sync::Arc;

use crate::command::MetaCommand;
use crate::error::MetaError;
use crate::liveness::Liveness;
use crate::sizes::SizeReports;
use crate::peer::message::{ClusterInfo, ForwardRefusal, PeerRequest, PeerResponse, PeerRpc};
use crate::peer::wire::{read_frame, write_frame};
use crate::types::{MetaRaft, NodeId};

/// Most peer connections served at once. A cluster needs about three per peer (one per lane) plus
/// a few transient ones; anything far beyond is a misbehaving client and is turned away.
pub const PEER_CONNECTIONS_MAX: usize = 256;
/// Pause after a failed `accept` (e.g. out of file descriptors) so the loop does not spin.
const ACCEPT_RETRY_MS: u64 = 100;

/// What the leader keeps from brokers' heartbeats: when each was last heard of, and the replica
/// sizes each last reported.
#[derive(Clone, Debug, Default)]
pub struct Heard {
    pub liveness: Arc<Liveness>,
    pub sizes: Arc<SizeReports>,
}

/// The running listener. Dropping it (or [`PeerServer::stop`]) closes the listener and every
/// connection it serves.
pub struct PeerServer {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl PeerServer {
    /// Bind `bind_addr` and serve RPCs addressed to `node_id` from `raft`.
    pub async fn start(bind_addr: &str, node_id: NodeId, raft: MetaRaft, heard: Heard) -> Result<PeerServer, MetaError> {
        let listener = TcpListener::bind(bind_addr)
            .await
            .map_err(|source| MetaError::Bind { addr: bind_addr.to_string(), source })?;
        let local_addr = listener.local_addr().map_err(|source| MetaError::Bind { addr: bind_addr.to_string(), source })?;
        tracing::info!(node_id, addr = %local_addr, "metadata peer listener started");
        let span = tracing::info_span!("raft_listener", node_id, addr = %local_addr);
        let task = tokio::spawn(accept_loop(listener, node_id, raft, heard).instrument(span));
        Ok(PeerServer { local_addr, task })
    }

    /// The address actually bound (useful when binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Close the listener and all connections, and wait until the port is released.
    pub async fn stop(mut self) {
        self.task.abort();
        // Aborted or already ended: either way the task, and with it the socket, is gone once
        // this returns. The join error of an aborted task says only that it was cancelled.
        let _ = (&mut self.task).await;
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, node_id: NodeId, raft: MetaRaft, heard: Heard) {
    // Connection tasks live in the set, so aborting this task aborts them all.
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if conns.len() >= PEER_CONNECTIONS_MAX {
                        tracing::warn!(%peer, max = PEER_CONNECTIONS_MAX, "too many peer connections, refusing one");
                        continue;
                    }
                    let span = tracing::debug_span!("raft_peer_conn", %peer);
                    conns.spawn(serve_conn(stream, node_id, raft.clone(), heard.clone()).instrument(span));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a peer connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(ACCEPT_RETRY_MS)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn serve_conn(mut stream: TcpStream, node_id: NodeId, raft: MetaRaft, heard: Heard) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!(error = %e, "set TCP_NODELAY on peer connection");
    }
    loop {
        let request: PeerRequest = match read_frame(&mut stream).await {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "peer connection dropped");
                return;
            }
        };
        let answer = handle(node_id, &raft, &heard, request).await;
        if let Err(e) = write_frame(&mut stream, &answer).await {
            tracing::debug!(error = %e, "answering peer failed");
            return;
        }
    }
}

/// Answer one request as node `node_id`. A request for another id is refused untouched.
pub async fn handle(node_id: NodeId, raft: &MetaRaft, heard: &Heard, request: PeerRequest) -> PeerResponse {
    if request.target != node_id {
        tracing::warn!(node_id, target = request.target, rpc = request.rpc.name(), "refusing a peer RPC addressed to another node id");
        return PeerResponse::WrongTarget { receiver: node_id, target: request.target };
    }
    match request.rpc {
        PeerRpc::AppendEntries(r) => PeerResponse::AppendEntries(raft.append_entries(r).await),
        PeerRpc::Vote(r) => PeerResponse::Vote(raft.vote(r).await),
        PeerRpc::InstallSnapshot(r) => PeerResponse::InstallSnapshot(raft.install_snapshot(r).await),
        // A controller decision is only ever proposed by the leader that made it (`write_as_leader`).
        PeerRpc::ForwardWrite(MetaCommand::Decided { term, .. }) => PeerResponse::ForwardWrite(Err(ForwardRefusal::Failed(
            format!("a controller decision of term {term} is never forwarded"),
        ))),
        PeerRpc::ForwardWrite(cmd) => PeerResponse::ForwardWrite(match raft.client_write(cmd).await {
            Ok(r) => Ok(r.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(ForwardRefusal::NotLeader { leader_id: f.leader_id, leader: f.leader_node })
            }
            Err(e) => Err(ForwardRefusal::Failed(e.to_string())),
        }),
        PeerRpc::ClusterInfo => {
            let m = raft.metrics().borrow().clone();
            // A stopped Raft cannot say; claiming "initialized" errs on the side that never
            // lets the asker bootstrap a second cluster.
            let initialized = raft.is_initialized().await.unwrap_or(true);
            PeerResponse::ClusterInfo(ClusterInfo { node_id, initialized, leader_id: m.current_leader, term: m.current_term })
        }
        PeerRpc::HoldElections { ms } => {
            crate::membership::hold_elections(raft, std::time::Duration::from_millis(ms.min(crate::membership::TRANSFER_HOLD_MS)));
            PeerResponse::Done { error: None }
        }
        PeerRpc::ReadIndex => PeerResponse::ReadIndex(crate::read_index::local(raft).await),
        PeerRpc::StartElection => PeerResponse::Done { error: raft.trigger().elect().await.err().map(|e| e.to_string()) },
        PeerRpc::BrokerHeartbeat { broker, sizes } => {
            let (leader_id, term) = {
                let metrics = raft.metrics();
                let m = metrics.borrow();
                (m.current_leader, m.current_term)
            };
            let accepted = leader_id == Some(node_id);
            if accepted {
                heard.liveness.record(broker);
                if let Some(report) = sizes {
                    let replicas = report.replicas.len();
                    if !heard.sizes.record(broker, term, report) {
                        tracing::debug!(broker, replicas, max = crate::sizes::SIZE_REPORT_REPLICAS_MAX, "ignoring a size report over the bound");
                    }
                }
            }
            PeerResponse::BrokerHeartbeat { accepted, leader_id }
        }
    }
}

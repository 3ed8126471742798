//! The calling side of the peer transport: one reusable connection per (peer, lane), opened on
//! first use, reopened after any failure, and a timeout on every call.
//!
//! Lanes keep traffic kinds from queueing behind each other on one connection: replication
//! (append entries and votes) must not wait behind a multi-megabyte snapshot chunk or a forwarded
//! write that waits for a commit.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::peer::error::{PeerError, WireError};
use crate::peer::message::{PeerRequest, PeerResponse, PeerRpc};
use crate::peer::wire::{read_frame, write_frame};
use crate::types::NodeId;

/// How long opening a TCP connection to a peer may take before it counts as unreachable.
pub const CONNECT_TIMEOUT_MS: u64 = 1_000;

/// What a connection carries; each (peer, lane) pair has its own connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lane {
    /// openraft's append entries and votes: small and latency sensitive.
    Replication,
    /// openraft's snapshot chunks: large, rare.
    Snapshot,
    /// Our own RPCs: forwarded writes and cluster info.
    Client,
}

/// One peer's connection on one lane. Calls on it are serialised: a request is written, its
/// response read, then the connection is free for the next call.
#[derive(Debug)]
pub struct PeerConn {
    target: NodeId,
    addr: String,
    /// The open connection, or `None` before the first call and after a failure. A call takes the
    /// stream out and puts it back only after a complete answer, so a call cancelled by its timeout
    /// drops a connection that might still deliver a stale answer.
    stream: tokio::sync::Mutex<Option<TcpStream>>,
}

impl PeerConn {
    pub fn new(target: NodeId, addr: impl Into<String>) -> PeerConn {
        PeerConn { target, addr: addr.into(), stream: tokio::sync::Mutex::new(None) }
    }

    pub fn target(&self) -> NodeId {
        self.target
    }

    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Send `rpc` to the peer and return its answer within `timeout` (connecting included). A
    /// refusal because the address belongs to another node id is [`PeerError::WrongTarget`].
    pub async fn call(&self, rpc: PeerRpc, timeout: Duration) -> Result<PeerResponse, PeerError> {
        let name = rpc.name();
        let request = PeerRequest { target: self.target, rpc };
        let answer = match tokio::time::timeout(timeout, self.call_within(name, &request)).await {
            Ok(answer) => answer?,
            Err(_) => {
                return Err(PeerError::Timeout { rpc: name, target: self.target, addr: self.addr.clone(), timeout_ms: timeout.as_millis() as u64 })
            }
        };
        match answer {
            PeerResponse::WrongTarget { receiver, .. } => {
                Err(PeerError::WrongTarget { rpc: name, target: self.target, addr: self.addr.clone(), receiver })
            }
            other => Ok(other),
        }
    }

    async fn call_within(&self, name: &'static str, request: &PeerRequest) -> Result<PeerResponse, PeerError> {
        let mut slot = self.stream.lock().await;
        if let Some(mut stream) = slot.take() {
            match self.exchange(name, &mut stream, request).await {
                Ok(answer) => {
                    *slot = Some(stream);
                    return Ok(answer);
                }
                // A reused connection may have been closed by a peer that restarted since; the new
                // process never saw this request, so one retry on a fresh connection is safe.
                Err(e) => tracing::debug!(target_node = self.target, addr = %self.addr, error = %e, "reused peer connection failed, reconnecting"),
            }
        }
        let mut stream = self.connect(name).await?;
        let answer = self.exchange(name, &mut stream, request).await?;
        *slot = Some(stream);
        Ok(answer)
    }

    async fn connect(&self, name: &'static str) -> Result<TcpStream, PeerError> {
        let refused = |reason: String| PeerError::Connect { rpc: name, target: self.target, addr: self.addr.clone(), reason };
        let stream = tokio::time::timeout(Duration::from_millis(CONNECT_TIMEOUT_MS), TcpStream::connect(&self.addr))
            .await
            .map_err(|_| refused(format!("no connection within {CONNECT_TIMEOUT_MS} ms")))?
            .map_err(|e| refused(e.to_string()))?;
        // Raft RPCs are small request/response exchanges: Nagle's delay would only add latency.
        stream.set_nodelay(true).map_err(|e| refused(format!("set TCP_NODELAY: {e}")))?;
        tracing::debug!(target_node = self.target, addr = %self.addr, "connected to metadata peer");
        Ok(stream)
    }

    async fn exchange(&self, name: &'static str, stream: &mut TcpStream, request: &PeerRequest) -> Result<PeerResponse, PeerError> {
        let wire = |source: WireError| PeerError::Wire { rpc: name, target: self.target, addr: self.addr.clone(), source };
        write_frame(stream, request).await.map_err(wire)?;
        match read_frame(stream).await.map_err(wire)? {
            Some(answer) => Ok(answer),
            None => Err(PeerError::Closed { rpc: name, target: self.target, addr: self.addr.clone() }),
        }
    }
}

type ConnMap = HashMap<(NodeId, Lane), Arc<PeerConn>>;

/// The connections of one node to its peers, shared by the Raft network and the write forwarder.
#[derive(Clone, Debug, Default)]
pub struct PeerPool {
    conns: Arc<parking_lot::Mutex<ConnMap>>,
}

impl PeerPool {
    /// The connection to `target` at `addr` on `lane`; a changed address replaces the old one.
    pub fn conn(&self, target: NodeId, addr: &str, lane: Lane) -> Arc<PeerConn> {
        let mut conns = self.conns.lock();
        match conns.get(&(target, lane)) {
            Some(c) if c.addr == addr => c.clone(),
            _ => {
                let c = Arc::new(PeerConn::new(target, addr));
                conns.insert((target, lane), c.clone());
                c
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_reuses_per_lane_and_replaces_on_new_address() {
        let pool = PeerPool::default();
        let a = pool.conn(2, "127.0.0.1:1", Lane::Replication);
        let b = pool.conn(2, "127.0.0.1:1", Lane::Replication);
        assert!(Arc::ptr_eq(&a, &b));
        let snap = pool.conn(2, "127.0.0.1:1", Lane::Snapshot);
        assert!(!Arc::ptr_eq(&a, &snap));
        let moved = pool.conn(2, "127.0.0.1:2", Lane::Replication);
        assert!(!Arc::ptr_eq(&a, &moved));
        assert_eq!(moved.addr(), "127.0.0.1:2");
    }

    #[tokio::test]
    async fn nothing_listening_is_a_connect_error() {
        // Bind then drop to find a port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("free port").port();
        let conn = PeerConn::new(3, format!("127.0.0.1:{port}"));
        let err = conn.call(PeerRpc::ClusterInfo, Duration::from_millis(500)).await.expect_err("nobody listens");
        assert!(err.never_sent(), "{err}");
        assert!(matches!(err, PeerError::Connect { target: 3, rpc: "cluster info", .. }), "{err}");
    }
}

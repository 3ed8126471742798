//! Errors of the peer transport: [`WireError`] for one frame, [`PeerError`] for one RPC to a named
//! peer (what was asked, of whom, at which address).

use crate::types::NodeId;

/// Reading or writing one frame failed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("{verb}: {source}")]
    Io { verb: &'static str, source: std::io::Error },
    #[error("frame of {bytes} bytes is over the limit of {max_bytes}")]
    TooLarge { bytes: usize, max_bytes: usize },
    #[error("encoding frame: {0}")]
    Encode(serde_json::Error),
    #[error("decoding frame: {0}")]
    Decode(serde_json::Error),
}

/// One RPC to a peer failed. `rpc` names the request kind (`"vote"`, `"forward write"`, ...).
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// No connection could be made: the peer is down or the address is wrong. Nothing was sent.
    #[error("{rpc} to node {target}: cannot connect to {addr}: {reason}")]
    Connect { rpc: &'static str, target: NodeId, addr: String, reason: String },
    /// The connection broke mid-call; the request may or may not have been handled.
    #[error("{rpc} to node {target} at {addr}: {source}")]
    Wire { rpc: &'static str, target: NodeId, addr: String, source: WireError },
    /// The peer closed the connection before answering.
    #[error("{rpc} to node {target} at {addr}: connection closed before the answer")]
    Closed { rpc: &'static str, target: NodeId, addr: String },
    #[error("{rpc} to node {target} at {addr}: no answer within {timeout_ms} ms")]
    Timeout { rpc: &'static str, target: NodeId, addr: String, timeout_ms: u64 },
    /// The process at `addr` is node `receiver`, not the `target` we meant; it refused the RPC
    /// (two ids on one address would make openraft talk to itself).
    #[error("{rpc} to node {target} at {addr}: refused, that address is node {receiver}")]
    WrongTarget { rpc: &'static str, target: NodeId, addr: String, receiver: NodeId },
    /// The peer answered with a response of another kind: a protocol bug or version skew.
    #[error("{rpc} to node {target} at {addr}: unexpected answer {got}")]
    Unexpected { rpc: &'static str, target: NodeId, addr: String, got: String },
}

impl PeerError {
    /// True when the request certainly did not reach the peer, so retrying cannot duplicate it.
    pub fn never_sent(&self) -> bool {
        matches!(self, PeerError::Connect { .. } | PeerError::WrongTarget { .. })
    }
}

//! Errors: [`StoreError`] for the on-disk stores (converted to openraft's fatal `StorageError` at the
//! trait boundary) and [`MetaError`] for users of [`crate::MetaNode`].

use std::path::PathBuf;

use crate::types::{BrokerNode, NodeId};

/// A failure of the metadata log store, snapshot store or a small durable file, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{verb} {}: {source}", path.display())]
    Io { verb: &'static str, path: PathBuf, source: std::io::Error },
    /// A frame in the middle of the log failed its checks: not a torn tail, so recovery refuses to
    /// guess and stops.
    #[error("corrupt frame in {} at byte {offset}: {reason}", path.display())]
    Corrupt { path: PathBuf, offset: u64, reason: String },
    #[error("decoding {what} from {}: {source}", path.display())]
    Decode { what: &'static str, path: PathBuf, source: serde_json::Error },
    #[error("encoding {what}: {source}")]
    Encode { what: &'static str, source: serde_json::Error },
    /// Log entries must have consecutive indexes; a hole means lost or misplaced entries.
    #[error("log {} not contiguous: expected index {expected}, found {found}", path.display())]
    NotContiguous { path: PathBuf, expected: u64, found: u64 },
    #[error("log entry {index} encodes to {bytes} bytes, over the frame limit of {max_bytes}")]
    EntryTooLarge { index: u64, bytes: usize, max_bytes: usize },
    #[error("snapshot {what}: {reason}")]
    BadSnapshot { what: &'static str, reason: String },
    #[error("blocking storage task for {what} failed: {reason}")]
    Task { what: &'static str, reason: String },
}

impl StoreError {
    pub(crate) fn io(verb: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { verb, path, source }
    }
}

/// Errors of [`crate::MetaNode`].
#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    /// This node is not the metadata leader; send the command to `leader` (when known). The command
    /// was not applied here, but may have been applied elsewhere: commands are idempotent.
    #[error("not the metadata leader; leader is {leader_id:?}")]
    ForwardToLeader { leader_id: Option<NodeId>, leader: Option<BrokerNode> },
    #[error("{verb} {}: {source}", path.display())]
    Io { verb: &'static str, path: PathBuf, source: std::io::Error },
    #[error("invalid metadata raft config: {0}")]
    Config(String),
    #[error("metadata store: {0}")]
    Store(#[from] StoreError),
    /// openraft failed while doing `during` (fatal errors stop the Raft instance).
    #[error("metadata raft failed during {during}: {message}")]
    Raft { during: &'static str, message: String },
    #[error("node {node_id}: {what} not reached within {waited_ms} ms")]
    LeaderTimeout { node_id: NodeId, what: &'static str, waited_ms: u64 },
    /// The peer listener could not bind its address.
    #[error("cannot listen for metadata peers on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
    /// A write found no leader to take it within its deadline (election in progress, leader
    /// unreachable, or no quorum). It may still have been applied: commands are idempotent.
    #[error("node {node_id}: metadata write not done after {attempts} attempts in {waited_ms} ms: {last_error}")]
    NoLeader { node_id: NodeId, attempts: u32, waited_ms: u64, last_error: String },
}

impl MetaError {
    /// True for conditions that pass without intervention (no leader yet, leader elsewhere), so a
    /// client may retry; false for broken config, storage or a stopped Raft.
    pub fn is_retriable(&self) -> bool {
        matches!(self, MetaError::ForwardToLeader { .. } | MetaError::NoLeader { .. } | MetaError::LeaderTimeout { .. })
    }
}

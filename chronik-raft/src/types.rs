//! The Raft type configuration: node ids, the broker node carried in membership, and the concrete
//! openraft aliases the rest of the crate (and its users) name instead of generic plumbing.

use std::io::Cursor;

use serde::{Deserialize, Serialize};

use crate::command::{MetaCommand, MetaResponse};

/// A metadata Raft node id. It is the Kafka broker id (an `i32` on the wire), so one number names a
/// broker everywhere.
pub type NodeId = u64;

/// Every endpoint of a broker. openraft carries this inside the membership config, so each node
/// learns all brokers' addresses from the replicated log without a separate discovery step.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerNode {
    /// Where Kafka clients connect (`host:port`).
    pub kafka_addr: String,
    /// Where followers pull partition data from this broker.
    pub wal_addr: String,
    /// Where metadata Raft peers reach this node.
    pub raft_addr: String,
    /// Where the admin HTTP API listens; empty when not advertised.
    pub admin_addr: String,
    /// Rack for rack-aware replica placement.
    pub rack: Option<String>,
}

openraft::declare_raft_types!(
    /// openraft type configuration of the metadata group.
    pub TypeConfig:
        D = MetaCommand,
        R = MetaResponse,
        NodeId = NodeId,
        Node = BrokerNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The running Raft instance of the metadata group.
pub type MetaRaft = openraft::Raft<TypeConfig>;
/// One metadata log entry.
pub type LogEntry = openraft::Entry<TypeConfig>;
/// Position of a log entry (leader term and index).
pub type LogId = openraft::LogId<NodeId>;
/// A persisted vote.
pub type Vote = openraft::Vote<NodeId>;
/// Membership config together with the id of the log entry that carried it.
pub type StoredMembership = openraft::StoredMembership<NodeId, BrokerNode>;
/// Metadata of one snapshot.
pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, BrokerNode>;
/// A snapshot handed to or received from openraft.
pub type Snapshot = openraft::Snapshot<TypeConfig>;
/// The error type every storage call returns to openraft (fatal to the Raft instance).
pub type StorageError = openraft::StorageError<NodeId>;

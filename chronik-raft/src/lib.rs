//! Cluster metadata for Chronik: a Raft group (openraft 0.9) whose state machine holds brokers,
//! topics, partitions and producer-id blocks.
//!
//! # Parts
//! - [`types`]: node id, [`BrokerNode`] (every endpoint of a broker, carried in the membership) and
//!   the openraft [`TypeConfig`] with concrete aliases.
//! - [`command`]: [`MetaCommand`] and [`MetaResponse`], what the log carries and what applying answers.
//! - [`state`]: [`MetadataState`] and its deterministic, validating `apply` — plain code, no I/O.
//! - [`node`]: [`MetaNode`], the API the broker uses (start, write, state, subscribe, status).
//! - [`peer`]: the peer transport on the raft address — framed JSON over TCP, a listener, pooled
//!   reconnecting clients; carries openraft's RPCs plus forwarded writes and cluster info.
//! - [`liveness`] and [`sizes`]: what the leader keeps in memory from brokers' heartbeats — when
//!   each was last heard of, and the replica sizes each last reported (never in the Raft log).
//! - [`network`]: openraft's network factory and per-peer client over [`peer`].
//! - [`bootstrap`]: the bootstrap rule as a pure decision, and the questions
//!   that feed it.
//! - [`membership`]: add, remove, promote and leadership transfer on the leader, one at a time,
//!   with the odd-voter policy as plain code.
//! - [`forward`]: writes from any node — local when leader, else forwarded to the leader, retried
//!   (bounded) through elections.
//! - Storage: [`frame`] (log frame format), [`log_file`] (the log file), [`log_store`] (openraft's
//!   log storage), [`snapshot_store`] and [`state_machine`] (openraft's state machine), `durable`
//!   (atomic small files).
//!
//! # On-disk layout (`<data dir>/raft/`)
//! - `log.bin`: log entries as frames `[len u32 LE][crc32 u32 LE][JSON entry]`, appended in index
//!   order. One `append` call is one write and one fsync, done before openraft is told the entries are
//!   flushed. Truncation cuts the file at the first removed frame and fsyncs. On open a torn tail (a
//!   short or checksum-failing last frame, or a zeroed tail) is cut off; a bad frame with data after
//!   it is corruption and fails the start. Entries above the purge point must be contiguous.
//! - `purged.json`: the last purged log id, written before the file is touched; entries at or below
//!   it are ignored and compacted away (rewrite to a temp file and rename) once they are at least half
//!   the file and 64 KiB.
//! - `vote.json`, `committed.json`: the vote and the committed log id.
//! - `snapshot.json`: the latest snapshot — meta, applied state, last applied log id and membership.
//!   On restart the state machine loads it and openraft re-applies the log from there up to the
//!   saved committed log id.
//!
//! All small files are replaced atomically: temp file, fsync, rename, fsync the directory.
//!
//! # Life cycle
//! An empty `raft/` directory with no peers configured bootstraps a one-voter group of this node.
//! With peers, only the lowest id initializes (all peers as voters), and only when no peer belongs
//! to a cluster already and a majority answered; the others wait for the leader to reach them.
//! Any stored state means the node restarts from disk and never initializes again
//! (re-initializing would fork the cluster).

pub mod bootstrap;
pub mod command;
mod durable;
pub mod error;
pub mod forward;
pub mod frame;
pub mod liveness;
pub mod log_file;
pub mod log_store;
pub mod membership;
pub mod network;
pub mod node;
pub mod peer;
pub mod read_index;
pub mod sizes;
mod elect;
mod reassign;
pub mod snapshot_store;
pub mod state;
pub mod state_machine;
pub mod types;

pub use command::{MetaCommand, MetaResponse};
pub use error::{MetaError, StoreError};
pub use peer::{ClusterInfo, PeerError};
pub use liveness::Liveness;
pub use sizes::{SizeReport, SizeReports, SIZE_REPORT_REPLICAS_MAX};
pub use membership::{Members, MembershipError, VOTERS_MAX_DEFAULT};
pub use node::{MetaConfig, MetaNode, MetaStatus, LEADER_WAIT_MS, RAFT_DIR_NAME};
pub use state::{removed_message, BrokerRecord, MetadataState, PartitionRecord, TopicRecord, NO_LEADER};
pub use types::{BrokerNode, NodeId, TypeConfig};

//! The peer transport of the metadata group, on each node's raft address.
//!
//! # Parts
//! - [`wire`]: length-prefixed JSON frames with a size limit.
//! - [`message`]: [`PeerRequest`] (always naming its target node id) and [`PeerResponse`]; carries
//!   openraft's append entries, vote and snapshot chunks plus our forwarded writes and cluster info.
//! - [`client`]: [`PeerConn`] — one reused connection per peer and lane, reconnecting, with
//!   timeouts — and the [`PeerPool`] that holds them.
//! - [`server`]: [`PeerServer`], the listener that answers requests from the local Raft.
//! - [`error`]: [`PeerError`] and [`WireError`].

pub mod client;
pub mod error;
pub mod message;
pub mod server;
pub mod wire;

pub use client::{Lane, PeerConn, PeerPool, CONNECT_TIMEOUT_MS};
pub use error::{PeerError, WireError};
pub use message::{ClusterInfo, ForwardRefusal, PeerRequest, PeerResponse, PeerRpc};
pub use server::{Heard, PeerServer, PEER_CONNECTIONS_MAX};
pub use wire::PEER_FRAME_BYTES_MAX;

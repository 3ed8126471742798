//! Partition replication (Kafka's model, docs/ARCHITECTURE.md): followers pull from leaders over the wal port.
//!
//! - `roles`: applies the metadata to the local partitions — leader (with its ISR) or follower of
//!   whom, at which leader epoch — and starts/stops one fetcher per leader broker.
//! - `fetcher`: a follower's task per leader: truncation by leader epoch, then Fetch v12 as a replica,
//!   verbatim appends, fsync before the next fetch, high watermark from the leader.
//! - `fetch_rules`: the fetcher's decisions as plain code — when to truncate, what an error answer or
//!   a failed write leads to, how much a throttled partition asks for.
//! - `fetch_session_client`: the fetcher's side of an incremental fetch session (KIP-227) as plain
//!   code — full or incremental request from what it wants and what it last sent, and what an answer
//!   means.
//! - `isr`: the leader's periodic ISR check — shrink laggards, expand caught-up replicas — committed
//!   through the metadata Raft group.
//! - `client`: the small Kafka-protocol client the fetcher speaks; `error`.
//!
//! The catch-up throttle of replicas a move adds is shared state in `broker::catch_up`.
//!
//! The rules themselves (HW, ISR decisions, epoch cache, truncation point) are pure code in
//! `partition::replica_state` and `partition::epoch_cache`; the leader's side of a follower fetch is in
//! `api::fetch` and `partition::replica`.

pub mod client;
pub mod error;
pub mod fetch_rules;
pub mod fetch_session_client;
pub mod fetcher;
pub mod isr;
pub mod roles;

pub use error::ReplicationError;
pub use roles::apply_roles;

use std::sync::Arc;

use crate::broker::Broker;

/// Starts the leader's ISR task. Roles and fetchers follow the metadata through
/// `reconcile::partitions`, which calls [`apply_roles`].
pub fn spawn(broker: Arc<Broker>) {
    tokio::spawn(isr::run(broker));
}

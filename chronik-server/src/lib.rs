//! Chronik broker: configuration, the Kafka listener and one handler per Kafka API, partitions with
//! their logs and producer state, and the admin API.
//!
//! - [`ids`]: typed ids (broker, topic-partition, leader epoch) and the one Raft node id ↔ broker id
//!   conversion.
//! - [`config`] / [`cli`]: what the operator gives us; [`fd_limit`]: the open file limit and budget; [`cluster_cli`]: the `cluster` subcommands.
//! - [`server`]: start-up and shutdown, wiring the parts together; the identity file; background tasks.
//! - [`broker`]: the shared context every handler sees; [`reconcile`]: everything that follows the
//!   applied metadata (logs, roles, fetchers, group ownership); [`topics`]: topic creation.
//! - [`fetch_session`]: incremental fetch sessions (KIP-227), pure.
//! - [`wire`]: framing, request context, response encoding, supported versions; [`api`]: one file per
//!   Kafka API; [`kafka`]: the listener and the routing of requests to `api`.
//! - [`partition`]: partition logs, high watermark, idempotent-producer state, topic rules.
//! - [`replication`]: follower fetchers (their decisions in `fetch_rules`), leader/follower roles, ISR
//!   upkeep (Kafka's replication model).
//! - [`controller`]: broker heartbeats, fencing, leader failover and preferred-leader rebalance, all
//!   fenced by the Raft term they were decided in.
//! - [`join`]: a fresh node asking the cluster to add it (`start --join`).
//! - [`admin`]: axum admin API (health, status, membership changes) and Prometheus metrics.
//!
//! The modules form layers with every `use` pointing down (`tests/t05_layers.rs` checks it):
//! ids → config, metrics, fd_limit, fetch_session, wire → partition → broker → topics, replication, groups →
//! reconcile → api → kafka, controller → admin, join → server.

pub mod admin;
pub mod api;
pub mod broker;
pub mod cli;
pub mod cluster_cli;
pub mod config;
pub mod controller;
pub mod fd_limit;
pub mod fetch_session;
pub mod groups;
pub mod ids;
pub mod join;
pub mod kafka;
pub mod metrics;
pub mod partition;
pub mod reconcile;
pub mod replication;
pub mod server;
pub mod topics;
pub mod wire;

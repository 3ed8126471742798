//! Command line (DESIGN §4): `start`, `cluster status|health|members|leader` (run by
//! [`crate::cluster_cli`]), `version`. Membership changes (`add-node`, …) arrive with the next issue.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "chronik-server", about = "Chronik: a Kafka-compatible streaming broker")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start a broker. Without --config: a single node, Kafka on 127.0.0.1:9092, admin on
    /// 127.0.0.1:10001, data in ./data.
    Start {
        /// TOML config file (format of examples/cluster-local-3node.toml).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory; overrides `data_dir` of the config.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Node id; overrides `node_id` of the config.
        #[arg(long)]
        node_id: Option<u64>,
        /// Ask the cluster (through the admin addresses of the config's other [[peers]]) to add this
        /// fresh node; it waits, serving /admin/health as "waiting_to_join", until it is added.
        #[arg(long)]
        join: bool,
        /// Host to bind every listener on (ports from the config).
        #[arg(long)]
        bind: Option<String>,
        /// Host to advertise to clients and peers (ports from the config).
        #[arg(long)]
        advertise: Option<String>,
    },
    /// Read-only views of a running cluster through the nodes' admin APIs.
    Cluster {
        #[command(subcommand)]
        command: ClusterCommand,
    },
    /// Print the version.
    Version,
}

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Nodes, partitions (leader, epoch, replicas, ISR) and under-replicated counts, from the leader.
    Status(TargetArgs),
    /// Every node's view: reachable, leader, term, role. Exits 1 unless all agree on one leader.
    Health(TargetArgs),
    /// The brokers in the metadata: role, liveness and addresses.
    Members(TargetArgs),
    /// The metadata (Raft) leader and its term.
    Leader(TargetArgs),
}

/// Which cluster to ask and how to print the answer.
#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Config file whose `[[peers]]` name the admin addresses to ask.
    #[arg(long, conflicts_with = "admin")]
    pub config: Option<PathBuf>,
    /// One node's admin address (HOST:PORT); the other nodes are found through it. Default
    /// 127.0.0.1:10001 when neither --config nor --admin is given.
    #[arg(long, value_name = "HOST:PORT")]
    pub admin: Option<String>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

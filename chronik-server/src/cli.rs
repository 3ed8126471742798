//! Command line: `start`, `cluster status|health|members|leader` and the membership changes
//! `cluster add-node|remove-node|promote|transfer-leader|replace` (run by [`crate::cluster_cli`]),
//! `version`.

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
        /// TOML config file (keys in docs/CONFIG.md; examples/cluster-local-3node-node1.toml).
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
    /// Add a node: it joins as a learner, catches up the metadata log and is promoted to voter when
    /// that keeps the voter count odd (1, 3, 5).
    AddNode {
        /// Id of the new node (never one used before).
        node_id: u64,
        #[command(flatten)]
        addrs: NodeAddrs,
        /// After the addition, follow the new node's health until it serves ("catching_up" → "ok").
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Remove a node (voter or learner); the voter count stays odd. A node that holds partition
    /// replicas drains first: they move to other nodes, then it leaves.
    RemoveNode {
        node_id: u64,
        /// Remove at once even when fewer voters than can lose one would remain, or the node still
        /// holds partition replicas (they are re-created elsewhere from the ISR afterwards).
        #[arg(long)]
        force: bool,
        /// Follow the drain until the node has left, printing the replicas it still holds.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Promote a learner to voter now, whatever the odd-voter policy says.
    Promote {
        node_id: u64,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Move the metadata leadership to a voter.
    TransferLeader {
        node_id: u64,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Plan the moves that balance replicas and leaderships over the live nodes and start them (data
    /// first, a few at a time); `--dry-run` prints the plan and changes nothing.
    Rebalance {
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        change: ChangeArgs,
    },
    /// Replace OLD by NEW: add NEW, let it catch up, make it a voter if OLD was one, remove OLD.
    Replace {
        old: u64,
        new: u64,
        #[command(flatten)]
        addrs: NodeAddrs,
        /// Remove OLD even if it still holds partition replicas.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        change: ChangeArgs,
    },
}

/// The endpoints of a node being added.
#[derive(Debug, Args)]
pub struct NodeAddrs {
    /// Its Kafka address (HOST:PORT).
    #[arg(long, value_name = "HOST:PORT")]
    pub kafka: String,
    /// Its wal (replication) address.
    #[arg(long, value_name = "HOST:PORT")]
    pub wal: String,
    /// Its raft (metadata) address.
    #[arg(long, value_name = "HOST:PORT")]
    pub raft: String,
    /// Its admin address; default: the raft host with port 10000 + id. (`--admin` names the cluster
    /// node to ask, as in every cluster subcommand.)
    #[arg(long, value_name = "HOST:PORT")]
    pub node_admin: Option<String>,
}

/// Which cluster to change, with what credentials, and how to print the answer.
#[derive(Debug, Args)]
pub struct ChangeArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Admin token (default: the CHRONIK_ADMIN_TOKEN variable).
    #[arg(long, env = "CHRONIK_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
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

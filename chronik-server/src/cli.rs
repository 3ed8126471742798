//! Command line (DESIGN §4): `start`, `version`; cluster subcommands arrive with the multi-node issue.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
        /// Ask an existing cluster to add this node (multi-node; not yet available).
        #[arg(long)]
        join: bool,
        /// Host to bind every listener on (ports from the config).
        #[arg(long)]
        bind: Option<String>,
        /// Host to advertise to clients and peers (ports from the config).
        #[arg(long)]
        advertise: Option<String>,
    },
    /// Print the version.
    Version,
}

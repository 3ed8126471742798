//! The `chronik-server` binary: parses the command line and runs the broker.

use clap::Parser;
use tracing_subscriber::EnvFilter;

use chronik_server::cli::{Cli, Command};
use chronik_server::config::{Config, Overrides};

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Version => {
            println!("chronik-server {}", env!("CARGO_PKG_VERSION"));
            std::process::ExitCode::SUCCESS
        }
        Command::Cluster { command } => chronik_server::cluster_cli::run(&command),
        Command::Start { config, data_dir, node_id, join, bind, advertise } => {
            // Before any thread or file exists: every partition holds descriptors (fd_limit).
            chronik_server::fd_limit::raise_to_hard();
            let overrides = Overrides { data_dir, node_id, bind_host: bind, advertise_host: advertise, join };
            let config = match Config::load(config.as_deref(), &overrides) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("error: {e}");
                    return std::process::ExitCode::from(2);
                }
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the async runtime: {e}");
                    return std::process::ExitCode::FAILURE;
                }
            };
            match runtime.block_on(chronik_server::server::run(config)) {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    std::process::ExitCode::FAILURE
                }
            }
        }
    }
}

//! `chronik-server cluster status|health|members|leader`: views of a running cluster through the
//! nodes' admin APIs; `add-node|remove-node|promote|transfer-leader|replace`: membership changes
//! through the metadata leader's (`change.rs`).
//!
//! Parts:
//! - here: which admin addresses to ask ([`Target`]), the survey every subcommand starts with
//!   ([`survey`]), the error type and the exit codes.
//! - `http.rs` — `GET` one JSON document with a deadline (hyper's HTTP/1 connection client).
//! - `probe.rs` — `/admin/health` of every node and the pure decision of who leads.
//! - `health.rs`, `leader.rs`, `members.rs`, `status.rs` — one file per subcommand: what it fetches,
//!   its table and its `--json` document.
//! - `table.rs` — plain-text tables.
//!
//! Addresses come from the config's `[[peers]]` (their `admin`, else the raft host with port
//! 10000 + id) or from `--admin`, never a hard-coded host; with `--admin` the other nodes are found
//! through that node's `/admin/status`. Failures print one line on stderr and exit non-zero.

mod change;
mod health;
pub mod http;
mod leader;
mod members;
mod probe;
mod status;
mod table;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde_json::Value;

use crate::cli::{ClusterCommand, TargetArgs};
use crate::config::{Config, Overrides};
use probe::{Answer, Leader};

/// Exit status when the cluster is unreachable, leaderless or unhealthy.
pub const EXIT_UNHEALTHY: u8 = 1;
/// Exit status for a bad command line or config file.
pub const EXIT_USAGE: u8 = 2;
/// Admin address asked when neither `--config` nor `--admin` is given: the single-node default.
pub const DEFAULT_ADMIN_ADDR: &str = "127.0.0.1:10001";

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("config {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error("GET http://{addr}{path} failed: {reason}")]
    Request { addr: String, path: String, reason: String },
    #[error("no metadata leader: {0}")]
    NoLeader(String),
    #[error("cluster unhealthy: {0}")]
    Unhealthy(String),
    /// The leader refused a membership change (HTTP `status`), saying why.
    #[error("refused (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

impl CliError {
    fn exit_code(&self) -> u8 {
        match self {
            CliError::Config { .. } => EXIT_USAGE,
            _ => EXIT_UNHEALTHY,
        }
    }
}

/// Runs one cluster subcommand: prints its table or JSON on stdout, a one-line reason on stderr on
/// failure.
pub fn run(command: &ClusterCommand) -> ExitCode {
    let result = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CliError::Runtime)
        .and_then(|rt| rt.block_on(dispatch(command)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn dispatch(command: &ClusterCommand) -> Result<(), CliError> {
    let (args, run): (&TargetArgs, fn(&Survey, bool) -> BoxedRun<'_>) = match command {
        ClusterCommand::Health(a) => (a, |s, j| Box::pin(health::run(s, j))),
        ClusterCommand::Leader(a) => (a, |s, j| Box::pin(leader::run(s, j))),
        ClusterCommand::Members(a) => (a, |s, j| Box::pin(members::run(s, j))),
        ClusterCommand::Status(a) => (a, |s, j| Box::pin(status::run(s, j))),
        ClusterCommand::AddNode { .. }
        | ClusterCommand::RemoveNode { .. }
        | ClusterCommand::Promote { .. }
        | ClusterCommand::TransferLeader { .. }
        | ClusterCommand::Replace { .. }
        | ClusterCommand::Rebalance { .. } => return change::run(command).await,
    };
    let target = Target::resolve(args.config.as_deref(), args.admin.as_deref())?;
    let survey = survey(&target).await;
    run(&survey, args.json).await
}

type BoxedRun<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), CliError>> + 'a>>;

/// The admin addresses to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Asked first, in this order.
    pub addrs: Vec<String>,
    /// Admin address by node id, when known (from the config's peers).
    pub by_id: BTreeMap<u64, String>,
}

impl Target {
    pub fn resolve(config: Option<&Path>, admin: Option<&str>) -> Result<Target, CliError> {
        if let Some(addr) = admin {
            return Ok(Target { addrs: vec![addr.to_string()], by_id: BTreeMap::new() });
        }
        let Some(path) = config else {
            return Ok(Target { addrs: vec![DEFAULT_ADMIN_ADDR.to_string()], by_id: BTreeMap::new() });
        };
        let config = Config::load(Some(path), &Overrides::default())
            .map_err(|e| CliError::Config { path: path.to_path_buf(), message: e.to_string() })?;
        if config.peers.is_empty() {
            let addr = config.advertise.admin.clone();
            return Ok(Target { addrs: vec![addr.clone()], by_id: BTreeMap::from([(config.node_id, addr)]) });
        }
        let by_id: BTreeMap<u64, String> = config.peers.iter().map(|p| (p.id, Config::peer_admin_addr(p))).collect();
        Ok(Target { addrs: by_id.values().cloned().collect(), by_id })
    }
}

/// What every subcommand starts from: each known node's health and the leader they point at.
#[derive(Debug)]
pub struct Survey {
    pub answers: Vec<Answer>,
    pub leader: Option<Leader>,
    /// Admin address by node id: the config's peers plus what `/admin/status` revealed.
    pub by_id: BTreeMap<u64, String>,
}

impl Survey {
    /// The leader with a known admin address, or why there is none.
    pub fn leader(&self) -> Result<(&Leader, &str), CliError> {
        let leader = self.leader.as_ref().ok_or_else(|| CliError::NoLeader(self.summary()))?;
        let admin = leader.admin.as_deref().ok_or_else(|| {
            CliError::NoLeader(format!("node {} leads term {} but its admin address is unknown", leader.leader_id, leader.term))
        })?;
        Ok((leader, admin))
    }

    /// One line: which nodes answered and what they said.
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self
            .answers
            .iter()
            .map(|a| match &a.health {
                Ok(h) => format!("{} (node {}) sees leader {}", a.addr, h.node_id, h.leader_id.map_or("none".into(), |l| l.to_string())),
                Err(e) => format!("{} unreachable ({})", a.addr, short_reason(e)),
            })
            .collect();
        if parts.is_empty() {
            "no admin address to ask".into()
        } else {
            parts.join("; ")
        }
    }

    /// `/admin/status` from the leader (fresh placement and ISR come from its applied state).
    pub async fn leader_status(&self) -> Result<(&Leader, Value), CliError> {
        let (leader, admin) = self.leader()?;
        Ok((leader, http::get_json(admin, "/admin/status").await?))
    }
}

fn short_reason(e: &CliError) -> String {
    match e {
        CliError::Request { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

/// Asks the target's nodes, discovers the rest through the `/admin/status` of one that answers,
/// and resolves the leader's admin address (asking it too when it was not asked yet).
pub async fn survey(target: &Target) -> Survey {
    let mut by_id = target.by_id.clone();
    let mut answers = probe::ask_all(&target.addrs).await;
    {
        // Learn every member from the first node that answers: nodes added after the config was
        // written (or all of them, when only one address was given) are asked too.
        if let Some(a) = answers.iter().find(|a| a.health.is_ok()) {
            if let Ok(status) = http::get_json(&a.addr, "/admin/status").await {
                for (id, addr) in probe::admin_addrs_of_status(&status) {
                    by_id.entry(id).or_insert(addr);
                }
            }
        }
        let asked: Vec<String> = answers.iter().map(|a| a.addr.clone()).collect();
        let more: Vec<String> = by_id.values().filter(|a| !asked.contains(a)).cloned().collect();
        // A node that answered under its own id is the same node under a second spelling: skip it.
        let known_ids: Vec<u64> = answers.iter().filter_map(|a| a.health.as_ref().ok().map(|h| h.node_id)).collect();
        let more: Vec<String> = more.into_iter().filter(|addr| !by_id.iter().any(|(id, a)| a == addr && known_ids.contains(id))).collect();
        answers.extend(probe::ask_all(&more).await);
    }
    let mut leader = probe::find_leader(&answers);
    if let Some(l) = leader.as_mut().filter(|l| l.admin.is_none()) {
        if let Some(addr) = by_id.get(&l.leader_id).cloned() {
            l.admin = Some(addr.clone());
            if !answers.iter().any(|a| a.addr == addr) {
                answers.extend(probe::ask_all(&[addr]).await);
            }
        }
    }
    Survey { answers, leader, by_id }
}

/// Pretty JSON on stdout.
fn print_json(v: &Value) {
    match serde_json::to_string_pretty(v) {
        Ok(s) => println!("{s}"),
        // Serialising a `Value` cannot fail (all map keys are strings); print compactly if it ever does.
        Err(_) => println!("{v}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_flag_wins_and_no_flag_means_the_single_node_default() {
        let t = Target::resolve(None, Some("h:1")).ok();
        assert_eq!(t.map(|t| t.addrs), Some(vec!["h:1".to_string()]));
        let t = Target::resolve(None, None).ok();
        assert_eq!(t.map(|t| t.addrs), Some(vec![DEFAULT_ADMIN_ADDR.to_string()]));
    }

    #[test]
    fn config_peers_give_every_admin_address() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "node_id = 2\n[[peers]]\nid = 1\nkafka = \"h1:9092\"\nwal = \"h1:9291\"\nraft = \"h1:5001\"\nadmin = \"h1:7001\"\n\
             [[peers]]\nid = 2\nkafka = \"127.0.0.2:9092\"\nwal = \"127.0.0.2:9291\"\nraft = \"127.0.0.2:5001\"\n",
        )?;
        let t = Target::resolve(Some(&path), None)?;
        // Node 1 names its admin address; node 2 gets its raft host with port 10000 + id.
        assert_eq!(t.addrs, vec!["h1:7001".to_string(), "127.0.0.2:10002".to_string()]);
        assert_eq!(t.by_id.get(&2).map(String::as_str), Some("127.0.0.2:10002"));
        Ok(())
    }

    #[test]
    fn a_bad_config_is_a_usage_error_naming_the_file() {
        let e = Target::resolve(Some(Path::new("/nonexistent/chronik.toml")), None).err();
        let e = e.map(|e| (e.exit_code(), e.to_string()));
        assert!(matches!(&e, Some((EXIT_USAGE, m)) if m.contains("/nonexistent/chronik.toml")), "{e:?}");
    }
}

//! A real multi-node cluster for integration tests: N `chronik-server` processes on free loopback ports,
//! each with its own config (all listing every peer) and data dir under one temp dir; kill -9 and
//! restart of single nodes; admin and Kafka access by node id; the `cluster` CLI run against it.
//!
//! Included by the cluster tests with `#[path = "common/cluster.rs"] mod cluster;` next to `mod common;`
//! (the single-node harness stays unaware of it). Every wait polls with a deadline.

// Each cluster test binary uses a different subset.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use kafka_protocol::messages::{create_topics_request::CreatableTopic, CreateTopicsRequest};
use serde_json::Value;

use crate::common::{http_get, poll_until, topic_name, KafkaClient, Ports, ServerProcess, POLL_INTERVAL, START_ATTEMPTS_MAX};

/// From spawning the nodes to every node healthy and agreeing on one metadata leader (cold debug build,
/// three processes on two busy cores).
pub const CLUSTER_READY_TIMEOUT: Duration = Duration::from_secs(90);
/// From a Raft leader's kill -9 to the survivors agreeing on a new one.
pub const RAFT_FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// From a partition leader's kill -9 to a new partition leader (the contract is 10 s; slack for CI).
pub const PARTITION_FAILOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a command of the `cluster` CLI may run (its own per-request deadline is 3 s).
pub const CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// Settings shared by every node's config.
#[derive(Debug, Clone)]
pub struct ClusterOpts {
    pub nodes: u64,
    pub replication_factor: i16,
    pub min_insync_replicas: i32,
    pub broker_session_timeout_ms: u64,
    pub broker_heartbeat_interval_ms: u64,
    pub replica_lag_time_max_ms: u64,
    pub leader_rebalance_interval_ms: u64,
    /// Extra top-level TOML lines.
    pub extra: String,
}

impl Default for ClusterOpts {
    fn default() -> Self {
        ClusterOpts {
            nodes: 3,
            replication_factor: 3,
            min_insync_replicas: 2,
            broker_session_timeout_ms: 6000,
            broker_heartbeat_interval_ms: 1000,
            replica_lag_time_max_ms: 10_000,
            leader_rebalance_interval_ms: 5000,
            extra: String::new(),
        }
    }
}

/// One node of a [`TestCluster`].
pub struct ClusterNode {
    pub id: u64,
    pub ports: Ports,
    dir: PathBuf,
    process: ServerProcess,
}

impl ClusterNode {
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("node.toml")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn kafka_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.kafka))
    }

    pub fn admin_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.admin))
    }

    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// The last `lines` lines of the current process's stderr.
    pub fn stderr_tail(&self, lines: usize) -> String {
        self.process.stderr_tail(lines)
    }

    fn spawn(&mut self) -> Result<()> {
        let config = self.config_path();
        self.process.spawn(&config)
    }

    /// SIGKILL by PID and reap, like `kill -9`.
    pub fn kill9(&mut self) -> Result<()> {
        self.process.kill9()
    }

    /// `GET /admin/health` as JSON.
    pub fn health(&self) -> Result<Value> {
        admin_json(self.admin_addr(), "/admin/health")
    }

    /// `GET /admin/status` as JSON.
    pub fn status(&self) -> Result<Value> {
        admin_json(self.admin_addr(), "/admin/status")
    }

    pub fn client(&self) -> Result<KafkaClient> {
        KafkaClient::connect(self.kafka_addr())
    }

    fn panics(&self) -> Vec<String> {
        self.process.panics()
    }
}

fn admin_json(addr: SocketAddr, path: &str) -> Result<Value> {
    let (status, body) = http_get(addr, path)?;
    ensure!(status == 200, "GET {path} on {addr}: HTTP {status}: {body}");
    serde_json::from_str(&body).with_context(|| format!("GET {path} on {addr}: not JSON: {body}"))
}

/// A running cluster; every process is killed (by PID) when dropped, and a panic logged by any node
/// fails the test.
pub struct TestCluster {
    /// Holds every node's config, data and logs; removed on drop unless `CHRONIK_TEST_KEEP` is set.
    dir: tempfile::TempDir,
    pub nodes: Vec<ClusterNode>,
    pub opts: ClusterOpts,
}

impl TestCluster {
    pub fn start() -> Result<TestCluster> {
        Self::start_with(ClusterOpts::default())
    }

    /// Starts every node and waits until all agree on one metadata leader; retries on fresh ports when
    /// a node exits early (another test may have taken a picked port).
    pub fn start_with(opts: ClusterOpts) -> Result<TestCluster> {
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS_MAX {
            let mut cluster = Self::prepare(opts.clone())?;
            for n in &mut cluster.nodes {
                n.spawn()?;
            }
            let ids = cluster.ids();
            match cluster.wait_agreed_leader(&ids, CLUSTER_READY_TIMEOUT).and_then(|_| cluster.wait_all_live(&ids, CLUSTER_READY_TIMEOUT)) {
                Ok(()) => return Ok(cluster),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("cluster did not start")))
    }

    fn prepare(opts: ClusterOpts) -> Result<TestCluster> {
        let dir = tempfile::Builder::new().prefix("chronik-cluster-").tempdir()?;
        let mut nodes = Vec::new();
        for id in 1..=opts.nodes {
            let node_dir = dir.path().join(format!("node-{id}"));
            std::fs::create_dir_all(&node_dir)?;
            let process = ServerProcess::new(node_dir.clone(), format!("node {id}"));
            nodes.push(ClusterNode { id, ports: Ports::pick()?, dir: node_dir, process });
        }
        for n in &nodes {
            std::fs::write(n.config_path(), config_toml(n, &nodes, &opts))?;
        }
        Ok(TestCluster { dir, nodes, opts })
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    pub fn node(&self, id: u64) -> &ClusterNode {
        &self.nodes[(id - 1) as usize]
    }

    pub fn node_mut(&mut self, id: u64) -> &mut ClusterNode {
        &mut self.nodes[(id - 1) as usize]
    }

    /// Node 1's config file (lists every peer), for `cluster … --config`.
    pub fn config_path(&self) -> PathBuf {
        self.node(1).config_path()
    }

    pub fn kill9(&mut self, id: u64) -> Result<()> {
        self.node_mut(id).kill9()
    }

    /// Starts node `id` again on its data dir and ports and waits until it serves its admin API.
    pub fn restart(&mut self, id: u64) -> Result<()> {
        let node = self.node_mut(id);
        node.kill9()?;
        node.spawn()?;
        poll_until(CLUSTER_READY_TIMEOUT, &format!("node {id} serving /admin/health after restart"), || {
            let node = self.node_mut(id);
            if !node.is_running() {
                bail!("node {id} exited; stderr:\n{}", node.stderr_tail(30));
            }
            Ok(node.health().ok().map(|_| ()))
        })
    }

    /// Polls until every node in `ids` answers health with the same known leader and term (the leader
    /// among `ids` and saying so itself); returns (leader, term).
    pub fn wait_agreed_leader(&mut self, ids: &[u64], timeout: Duration) -> Result<(u64, u64)> {
        let deadline = Instant::now() + timeout;
        loop {
            for &id in ids {
                let node = self.node_mut(id);
                if !node.is_running() {
                    bail!("node {id} exited; stderr:\n{}", node.stderr_tail(30));
                }
            }
            let views: Vec<Result<Value>> = ids.iter().map(|&id| self.node(id).health()).collect();
            let last = match agreed_leader(ids, &views) {
                Ok(found) => return Ok(found),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                let tails: String = ids.iter().map(|&id| format!("\n--- node {id}:\n{}", self.node(id).stderr_tail(15))).collect();
                bail!("nodes {ids:?} did not agree on a leader within {timeout:?}: {last:#}{tails}");
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Polls until the metadata leader lists every node in `ids` as live (registered by heartbeat, not
    /// fenced): before that, placement sees fewer brokers and refuses replication factor 3.
    pub fn wait_all_live(&mut self, ids: &[u64], timeout: Duration) -> Result<()> {
        poll_until(timeout, &format!("nodes {ids:?} live in the leader's status"), || {
            let (leader, _) = self.wait_agreed_leader(ids, timeout)?;
            let status = self.node(leader).status()?;
            let live: Vec<u64> = status["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|n| n["live"] == true)
                .filter_map(|n| n["id"].as_u64())
                .collect();
            Ok(ids.iter().all(|id| live.contains(id)).then_some(()))
        })
    }

    /// The partition as the node `via` sees it in `/admin/status`.
    pub fn partition(&self, via: u64, topic: &str, partition: u64) -> Result<Value> {
        let status = self.node(via).status()?;
        status["partitions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["topic"] == topic && p["partition"].as_u64() == Some(partition))
            .cloned()
            .ok_or_else(|| anyhow!("node {via} does not list {topic}-{partition}"))
    }

    /// Polls node `via` until `check` accepts the partition's status entry.
    pub fn wait_partition(
        &self,
        via: u64,
        topic: &str,
        partition: u64,
        timeout: Duration,
        what: &str,
        check: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        poll_until(timeout, what, || {
            let p = self.partition(via, topic, partition)?;
            Ok(check(&p).then_some(p))
        })
    }

    /// Runs `chronik-server cluster <args>`; returns (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> Result<(i32, String, String)> {
        run_cli(args)
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            let _ = n.kill9();
        }
        if std::env::var_os("CHRONIK_TEST_KEEP").is_some() {
            eprintln!("kept cluster dir {}", self.dir.path().display());
            if let Ok(d) = tempfile::tempdir() {
                let _ = std::mem::replace(&mut self.dir, d).keep();
            }
        }
        let panics: Vec<String> = self.nodes.iter().flat_map(ClusterNode::panics).collect();
        if !panics.is_empty() && !std::thread::panicking() {
            panic!("a cluster node panicked:\n{}", panics.join("\n"));
        }
    }
}

/// Whether the health answers agree on one leader and term; Ok((leader, term)) or why not.
pub fn agreed_leader(ids: &[u64], views: &[Result<Value>]) -> Result<(u64, u64)> {
    let mut seen: Option<(u64, u64)> = None;
    let mut self_declared = 0;
    for (id, v) in ids.iter().zip(views) {
        let v = v.as_ref().map_err(|e| anyhow!("node {id}: {e:#}"))?;
        let leader = v["leader_id"].as_u64().ok_or_else(|| anyhow!("node {id} knows no leader: {v}"))?;
        let term = v["term"].as_u64().ok_or_else(|| anyhow!("node {id}: no term in {v}"))?;
        if v["is_leader"] == true {
            ensure!(leader == *id, "node {id} says is_leader but names leader {leader}");
            self_declared += 1;
        }
        match seen {
            None => seen = Some((leader, term)),
            Some(s) => ensure!(s == (leader, term), "node {id} sees leader {leader} term {term}, another node {s:?}"),
        }
    }
    let (leader, term) = seen.ok_or_else(|| anyhow!("no nodes asked"))?;
    ensure!(ids.contains(&leader), "the agreed leader {leader} is not among the running nodes {ids:?}");
    ensure!(self_declared == 1, "{self_declared} nodes declare themselves leader");
    Ok((leader, term))
}

/// The config of `node`: cluster-wide settings, its own listeners, and every peer.
fn config_toml(node: &ClusterNode, all: &[ClusterNode], opts: &ClusterOpts) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "node_id = {}", node.id);
    let _ = writeln!(s, "data_dir = {:?}", node.data_dir().display().to_string());
    let _ = writeln!(s, "replication_factor = {}", opts.replication_factor);
    let _ = writeln!(s, "min_insync_replicas = {}", opts.min_insync_replicas);
    let _ = writeln!(s, "auto_create_topics = true");
    let _ = writeln!(s, "group_initial_rebalance_delay_ms = 0");
    let _ = writeln!(s, "broker_session_timeout_ms = {}", opts.broker_session_timeout_ms);
    let _ = writeln!(s, "broker_heartbeat_interval_ms = {}", opts.broker_heartbeat_interval_ms);
    let _ = writeln!(s, "replica_lag_time_max_ms = {}", opts.replica_lag_time_max_ms);
    let _ = writeln!(s, "leader_rebalance_interval_ms = {}", opts.leader_rebalance_interval_ms);
    s.push_str(&opts.extra);
    if !opts.extra.is_empty() && !opts.extra.ends_with('\n') {
        s.push('\n');
    }
    for table in ["bind", "advertise"] {
        let _ = writeln!(s, "[{table}]");
        let _ = writeln!(s, "kafka = \"127.0.0.1:{}\"", node.ports.kafka);
        let _ = writeln!(s, "wal = \"127.0.0.1:{}\"", node.ports.wal);
        let _ = writeln!(s, "raft = \"127.0.0.1:{}\"", node.ports.raft);
        let _ = writeln!(s, "admin = \"127.0.0.1:{}\"", node.ports.admin);
    }
    for p in all {
        let _ = writeln!(s, "[[peers]]");
        let _ = writeln!(s, "id = {}", p.id);
        let _ = writeln!(s, "kafka = \"127.0.0.1:{}\"", p.ports.kafka);
        let _ = writeln!(s, "wal = \"127.0.0.1:{}\"", p.ports.wal);
        let _ = writeln!(s, "raft = \"127.0.0.1:{}\"", p.ports.raft);
        let _ = writeln!(s, "admin = \"127.0.0.1:{}\"", p.ports.admin);
    }
    s
}

/// CreateTopics v7 with an explicit replication factor (-1 = the cluster default); returns the topic's
/// error code.
pub fn create_topic_rf(c: &mut KafkaClient, name: &str, partitions: i32, replication_factor: i16) -> Result<i16> {
    let mut t = CreatableTopic::default();
    t.name = topic_name(name);
    t.num_partitions = partitions;
    t.replication_factor = replication_factor;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 10_000;
    let resp = c.call(7, &req)?;
    ensure!(resp.topics.len() == 1, "CreateTopics answered {} topics", resp.topics.len());
    Ok(resp.topics[0].error_code)
}

/// Runs `chronik-server cluster <args>` with a deadline; returns (exit code, stdout, stderr).
pub fn run_cli(args: &[&str]) -> Result<(i32, String, String)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chronik-server"))
        .arg("cluster")
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("spawning chronik-server cluster")?;
    let deadline = Instant::now() + CLI_TIMEOUT;
    while child.try_wait()?.is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("`cluster {}` still running after {CLI_TIMEOUT:?}", args.join(" "));
        }
        std::thread::sleep(POLL_INTERVAL);
    }
    let out = child.wait_with_output()?;
    Ok((
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Every file under `dir`, recursively (for checking what a replica stored on disk).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

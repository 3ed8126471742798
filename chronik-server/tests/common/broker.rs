//! The broker process: config file, free ports, start with a health deadline, kill -9 and restart.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};

use super::{KafkaClient, ServerProcess, BROKER_READY_TIMEOUT, POLL_INTERVAL, START_ATTEMPTS_MAX, START_FAILURE_TIMEOUT};

/// Settings written to the broker's config file.
#[derive(Debug, Clone)]
pub struct BrokerOpts {
    pub auto_create_topics: bool,
    pub num_partitions: i32,
    pub frame_bytes_max: Option<usize>,
    pub message_bytes_max: Option<i32>,
    /// Extra top-level TOML lines, appended before the tables.
    pub extra: String,
}

impl Default for BrokerOpts {
    fn default() -> Self {
        BrokerOpts {
            auto_create_topics: true,
            num_partitions: 1,
            frame_bytes_max: None,
            message_bytes_max: None,
            extra: String::new(),
        }
    }
}

/// The four listener ports of one broker.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub kafka: u16,
    pub wal: u16,
    pub raft: u16,
    pub admin: u16,
}

impl Ports {
    /// Picks free loopback ports by binding port 0; all four are held until every one is chosen so
    /// they differ, then released for the broker to take.
    pub fn pick() -> Result<Ports> {
        let listeners = (0..4)
            .map(|_| TcpListener::bind("127.0.0.1:0"))
            .collect::<std::io::Result<Vec<_>>>()
            .context("binding 127.0.0.1:0 to pick ports")?;
        let ports = listeners
            .iter()
            .map(|l| l.local_addr().map(|a| a.port()))
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Ports { kafka: ports[0], wal: ports[1], raft: ports[2], admin: ports[3] })
    }
}

/// Renders the config file of a single-node test broker.
pub fn config_toml(data_dir: &Path, ports: Ports, opts: &BrokerOpts) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "node_id = 1");
    let _ = writeln!(s, "data_dir = {:?}", data_dir.display().to_string());
    let _ = writeln!(s, "auto_create_topics = {}", opts.auto_create_topics);
    let _ = writeln!(s, "num_partitions = {}", opts.num_partitions);
    let _ = writeln!(s, "group_initial_rebalance_delay_ms = 0");
    if let Some(v) = opts.frame_bytes_max {
        let _ = writeln!(s, "frame_bytes_max = {v}");
    }
    if let Some(v) = opts.message_bytes_max {
        let _ = writeln!(s, "message_bytes_max = {v}");
    }
    s.push_str(&opts.extra);
    if !opts.extra.ends_with('\n') && !opts.extra.is_empty() {
        s.push('\n');
    }
    for table in ["bind", "advertise"] {
        let _ = writeln!(s, "[{table}]");
        let _ = writeln!(s, "kafka = \"127.0.0.1:{}\"", ports.kafka);
        let _ = writeln!(s, "wal = \"127.0.0.1:{}\"", ports.wal);
        let _ = writeln!(s, "raft = \"127.0.0.1:{}\"", ports.raft);
        let _ = writeln!(s, "admin = \"127.0.0.1:{}\"", ports.admin);
    }
    s
}

/// A running `chronik-server` process; killed (SIGKILL, by PID) when dropped.
pub struct TestBroker {
    process: ServerProcess,
    /// Holds the config, the data dir and the stderr logs; removed on drop.
    dir: tempfile::TempDir,
    pub ports: Ports,
    pub opts: BrokerOpts,
}

impl TestBroker {
    pub fn start() -> Result<TestBroker> {
        Self::start_with(BrokerOpts::default())
    }

    /// Starts a broker with `opts`, retrying on fresh ports when the process exits before it is healthy
    /// (another test may have taken a picked port in the meantime).
    pub fn start_with(opts: BrokerOpts) -> Result<TestBroker> {
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS_MAX {
            let dir = tempfile::Builder::new().prefix("chronik-it-").tempdir()?;
            let process = ServerProcess::new(dir.path().to_path_buf(), "the broker");
            let mut broker = TestBroker { process, dir, ports: Ports::pick()?, opts: opts.clone() };
            match broker.spawn_and_wait() {
                Ok(()) => return Ok(broker),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow!("broker did not start")))
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("broker.toml")
    }

    /// The stderr of the current (or last) process, for failure messages.
    pub fn stderr(&self) -> String {
        self.process.stderr()
    }

    /// The last `lines` lines of stderr.
    pub fn stderr_tail(&self, lines: usize) -> String {
        self.process.stderr_tail(lines)
    }

    pub fn kafka_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.kafka))
    }

    pub fn admin_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.admin))
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    pub fn client(&self) -> Result<KafkaClient> {
        KafkaClient::connect(self.kafka_addr())
    }

    fn spawn_and_wait(&mut self) -> Result<()> {
        std::fs::write(self.config_path(), config_toml(&self.data_dir(), self.ports, &self.opts))?;
        self.process.spawn(&self.config_path())?;
        self.wait_healthy(BROKER_READY_TIMEOUT)
    }

    /// Polls `GET /admin/health` until it answers 200, the process exits, or the deadline passes.
    pub fn wait_healthy(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.process.exited()? {
                bail!("broker exited with {status} before becoming healthy; stderr:\n{}", self.stderr_tail(30));
            }
            if let Ok((200, _)) = http_get(self.admin_addr(), "/admin/health") {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("broker not healthy within {timeout:?}; stderr:\n{}", self.stderr_tail(30));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// Checks the broker is alive and serving: the process runs and health answers 200.
    pub fn assert_alive(&mut self) -> Result<()> {
        ensure!(self.is_running(), "broker process died; stderr:\n{}", self.stderr_tail(30));
        let (status, body) = http_get(self.admin_addr(), "/admin/health")?;
        ensure!(status == 200, "health answered {status}: {body}");
        Ok(())
    }

    /// SIGKILL (by PID) and reap, like `kill -9`.
    pub fn kill9(&mut self) -> Result<()> {
        self.process.kill9()
    }

    /// Starts a new process on the same data dir, config and ports.
    pub fn restart(&mut self) -> Result<()> {
        self.kill9()?;
        self.spawn_and_wait()
    }
}

impl Drop for TestBroker {
    /// Kills the process; keeps the directory when `CHRONIK_TEST_KEEP` is set; fails the test when the
    /// broker panicked anywhere (a panic in a spawned task does not stop the process, so it would
    /// otherwise go unnoticed).
    fn drop(&mut self) {
        let _ = self.process.kill9();
        if std::env::var_os("CHRONIK_TEST_KEEP").is_some() {
            eprintln!("kept broker dir {}", self.dir.path().display());
            let dir = std::mem::replace(&mut self.dir, match tempfile::tempdir() {
                Ok(d) => d,
                Err(_) => return,
            });
            let _ = dir.keep();
        }
        let panics = self.process.panics();
        if !panics.is_empty() && !std::thread::panicking() {
            panic!("the broker panicked:\n{}", panics.join("\n"));
        }
    }
}

/// Runs `chronik-server start --config <text>` where the config must be refused; returns (exit code,
/// stderr). Fails if the process is still running after [`START_FAILURE_TIMEOUT`].
pub fn start_expecting_failure(config_text: &str) -> Result<(Option<i32>, String)> {
    let dir = tempfile::Builder::new().prefix("chronik-it-bad-").tempdir()?;
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, config_text)?;
    let stderr_path = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_chronik-server"))
        .arg("start")
        .arg("--config")
        .arg(&config)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path)?)
        .spawn()?;
    let deadline = Instant::now() + START_FAILURE_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "start with a bad config was still running after {START_FAILURE_TIMEOUT:?}; stderr:\n{}",
                std::fs::read_to_string(&stderr_path).unwrap_or_default()
            );
        }
        std::thread::sleep(POLL_INTERVAL);
    };
    Ok((status.code(), std::fs::read_to_string(&stderr_path)?))
}

/// Tries of a GET whose connection was reset before an answer: a node that has just joined hands
/// its admin port from the small "waiting to join" API to the full one, and a connection the first
/// accepted in that instant is closed unanswered (a GET is safe to repeat).
const HTTP_GET_TRIES: usize = 3;

/// A minimal HTTP/1.1 GET: returns (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut last = None;
    for _ in 0..HTTP_GET_TRIES {
        match http_get_once(addr, path) {
            Err(e) if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionReset) => {
                last = Some(e);
                std::thread::sleep(POLL_INTERVAL);
            }
            other => return other,
        }
    }
    Err(last.unwrap_or_else(|| anyhow!("GET {path}: no try made")))
}

fn http_get_once(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| anyhow!("not an HTTP response: {text:?}"))?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Ok((status, body))
}

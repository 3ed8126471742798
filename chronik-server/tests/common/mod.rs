//! Shared harness for the broker's integration tests: a real `chronik-server` process on free loopback
//! ports in a temporary directory, and a tiny blocking Kafka client built on kafka-protocol.
//!
//! Parts:
//! - [`TestBroker`]: writes a config, starts the binary, waits for `GET /admin/health` to answer 200, kills
//!   it by PID on drop; `kill9` + `restart` reuse the same directory and ports (crash tests).
//! - [`start_expecting_failure`]: runs `start` on a config that must be refused and returns its stderr.
//! - [`KafkaClient`]: encodes RequestHeader + body at a chosen version, frames it, reads the response frame
//!   and decodes ResponseHeader (at `response_header_version`) + body; raw byte access for bad-input tests.
//! - Record batch helpers: v2 batches through `RecordBatchEncoder` (optionally idempotent), CRC-32C fix-up,
//!   and decoding of fetched records into (offset, value) pairs.
//! - Request builders and one-call helpers for the APIs most tests touch.
//!
//! Every wait polls with a deadline; nothing sleeps a fixed time hoping a condition became true.

// Each test binary uses a different subset of this module.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    create_topics_request::CreatableTopic, fetch_request::FetchPartition, fetch_request::FetchTopic,
    fetch_response::PartitionData, list_offsets_request::ListOffsetsPartition,
    list_offsets_request::ListOffsetsTopic, list_offsets_response::ListOffsetsPartitionResponse,
    metadata_request::MetadataRequestTopic, produce_request::PartitionProduceData,
    produce_request::TopicProduceData, produce_response::PartitionProduceResponse, ApiKey,
    CreateTopicsRequest, FetchRequest, ListOffsetsRequest, MetadataRequest, ProduceRequest,
    RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};

/// How long a broker may take from spawn to a healthy admin endpoint (a cold debug build on 2 busy cores).
pub const BROKER_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a refused `start` may take to exit.
pub const START_FAILURE_TIMEOUT: Duration = Duration::from_secs(30);
/// Socket read/write timeout for client calls; a response slower than this is a failure.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for the broker to close a connection it should close.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Interval between polls of a condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Response frames larger than this are a client-side protocol failure, not something to allocate.
pub const RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Attempts to start a broker when another process grabbed one of its picked ports in between.
const START_ATTEMPTS_MAX: u32 = 3;

/// Kafka error codes the tests assert on.
pub mod code {
    pub const NONE: i16 = 0;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const INVALID_PARTITIONS: i16 = 37;
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
}

/// ListOffsets special timestamps.
pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;

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
    child: Option<Child>,
    /// Holds the config, the data dir and the stderr logs; removed on drop.
    dir: tempfile::TempDir,
    pub ports: Ports,
    pub opts: BrokerOpts,
    /// Number of processes started so far; each writes its own stderr file.
    starts: u32,
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
            let mut broker = TestBroker { child: None, dir, ports: Ports::pick()?, opts: opts.clone(), starts: 0 };
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

    fn stderr_path(&self, start: u32) -> PathBuf {
        self.dir.path().join(format!("stderr-{start}.log"))
    }

    /// The stderr of the current (or last) process, for failure messages.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_path(self.starts)).unwrap_or_default()
    }

    /// The last `lines` lines of stderr.
    pub fn stderr_tail(&self, lines: usize) -> String {
        let all = self.stderr();
        let v: Vec<&str> = all.lines().collect();
        v[v.len().saturating_sub(lines)..].join("\n")
    }

    pub fn kafka_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.kafka))
    }

    pub fn admin_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.admin))
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn client(&self) -> Result<KafkaClient> {
        KafkaClient::connect(self.kafka_addr())
    }

    fn spawn_and_wait(&mut self) -> Result<()> {
        std::fs::write(self.config_path(), config_toml(&self.data_dir(), self.ports, &self.opts))?;
        self.starts += 1;
        let stderr = std::fs::File::create(self.stderr_path(self.starts))?;
        let child = Command::new(env!("CARGO_BIN_EXE_chronik-server"))
            .arg("start")
            .arg("--config")
            .arg(self.config_path())
            .env("RUST_LOG", std::env::var("CHRONIK_TEST_LOG").unwrap_or_else(|_| "info".into()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .context("spawning chronik-server")?;
        self.child = Some(child);
        self.wait_healthy(BROKER_READY_TIMEOUT)
    }

    /// Polls `GET /admin/health` until it answers 200, the process exits, or the deadline passes.
    pub fn wait_healthy(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.as_mut().map(Child::try_wait).transpose()?.flatten() {
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
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
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
        if let Some(mut child) = self.child.take() {
            child.kill().context("kill -9 of the broker")?;
            child.wait()?;
        }
        Ok(())
    }

    /// Starts a new process on the same data dir, config and ports.
    pub fn restart(&mut self) -> Result<()> {
        self.kill9()?;
        self.spawn_and_wait()
    }
}

impl TestBroker {
    /// Every stderr line of every process this broker ran that reports a panic.
    pub fn panics(&self) -> Vec<String> {
        (1..=self.starts)
            .flat_map(|n| std::fs::read_to_string(self.stderr_path(n)).unwrap_or_default().lines().map(str::to_string).collect::<Vec<_>>())
            .filter(|l| l.contains("panicked"))
            .collect()
    }
}

impl Drop for TestBroker {
    /// Kills the process; keeps the directory when `CHRONIK_TEST_KEEP` is set; fails the test when the
    /// broker panicked anywhere (a panic in a spawned task does not stop the process, so it would
    /// otherwise go unnoticed).
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::env::var_os("CHRONIK_TEST_KEEP").is_some() {
            eprintln!("kept broker dir {}", self.dir.path().display());
            let dir = std::mem::replace(&mut self.dir, match tempfile::tempdir() {
                Ok(d) => d,
                Err(_) => return,
            });
            let _ = dir.keep();
        }
        let panics = self.panics();
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

/// A minimal HTTP/1.1 GET: returns (status, body).
pub fn http_get(addr: SocketAddr, path: &str) -> Result<(u16, String)> {
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

/// Blocking Kafka client over one TCP connection.
pub struct KafkaClient {
    stream: TcpStream,
    next_correlation_id: i32,
}

impl KafkaClient {
    pub fn connect(addr: SocketAddr) -> Result<KafkaClient> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .with_context(|| format!("connecting to {addr}"))?;
        stream.set_read_timeout(Some(CALL_TIMEOUT))?;
        stream.set_write_timeout(Some(CALL_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(KafkaClient { stream, next_correlation_id: 1 })
    }

    fn next_correlation(&mut self) -> i32 {
        let id = self.next_correlation_id;
        self.next_correlation_id += 1;
        id
    }

    /// Sends `req` at `version` and decodes the response at the same version.
    pub fn call<R: Request>(&mut self, version: i16, req: &R) -> Result<R::Response> {
        let correlation = self.send(version, req)?;
        self.receive::<R::Response>(api_of::<R>()?, version, correlation)
    }

    /// Sends a request without reading the response; returns its correlation id.
    pub fn send<R: Request>(&mut self, version: i16, req: &R) -> Result<i32> {
        let correlation = self.next_correlation();
        let frame = encode_request(version, correlation, req)?;
        self.send_raw(&frame)?;
        Ok(correlation)
    }

    /// Reads one response frame and decodes it as `T` at `version`, checking the correlation id.
    pub fn receive<T: Decodable>(&mut self, api: ApiKey, version: i16, correlation: i32) -> Result<T> {
        let mut frame = self.read_frame().with_context(|| format!("reading the {api:?} v{version} response"))?;
        let header = ResponseHeader::decode(&mut frame, api.response_header_version(version))
            .with_context(|| format!("decoding the {api:?} v{version} response header"))?;
        ensure!(
            header.correlation_id == correlation,
            "{api:?} v{version}: correlation id {} in response, expected {correlation}",
            header.correlation_id
        );
        let body = T::decode(&mut frame, version).with_context(|| format!("decoding the {api:?} v{version} body"))?;
        ensure!(!frame.has_remaining(), "{api:?} v{version}: {} bytes left after the body", frame.remaining());
        Ok(body)
    }

    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.stream.write_all(bytes)?;
        self.stream.flush()?;
        Ok(())
    }

    /// Reads one length-prefixed frame (without the prefix).
    pub fn read_frame(&mut self) -> Result<Bytes> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len)?;
        let len = i32::from_be_bytes(len);
        ensure!(len >= 4 && (len as usize) <= RESPONSE_BYTES_MAX, "bad response frame length {len}");
        let mut buf = vec![0u8; len as usize];
        self.stream.read_exact(&mut buf)?;
        Ok(Bytes::from(buf))
    }

    /// Succeeds when the broker closes the connection (end of stream or reset) within
    /// [`CLOSE_TIMEOUT`]; fails if it answers with a frame or keeps the connection open.
    pub fn expect_closed(&mut self) -> Result<()> {
        self.stream.set_read_timeout(Some(CLOSE_TIMEOUT))?;
        let mut buf = [0u8; 4096];
        let result = self.stream.read(&mut buf);
        self.stream.set_read_timeout(Some(CALL_TIMEOUT))?;
        match result {
            Ok(0) => Ok(()),
            Ok(n) => bail!("expected the connection to be closed, got {n} bytes: {:?}", &buf[..n.min(64)]),
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe) => {
                Ok(())
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                bail!("connection still open after {CLOSE_TIMEOUT:?}")
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Whether a response (any byte) arrives within `wait`, without consuming it. Fails if the broker
    /// closes the connection instead.
    pub fn answers_within(&mut self, wait: Duration) -> Result<bool> {
        self.stream.set_read_timeout(Some(wait))?;
        let mut byte = [0u8; 1];
        let result = self.stream.peek(&mut byte);
        self.stream.set_read_timeout(Some(CALL_TIMEOUT))?;
        match result {
            Ok(0) => bail!("the broker closed the connection"),
            Ok(_) => Ok(true),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    // ---- one-call helpers for the common APIs ----

    /// Metadata at `version` for `topics` (`None` = all topics).
    pub fn metadata(
        &mut self,
        version: i16,
        topics: Option<&[&str]>,
        allow_auto_topic_creation: bool,
    ) -> Result<kafka_protocol::messages::MetadataResponse> {
        let mut req = MetadataRequest::default();
        req.topics = topics.map(|ts| {
            ts.iter()
                .map(|t| {
                    let mut mt = MetadataRequestTopic::default();
                    mt.name = Some(topic_name(t));
                    mt
                })
                .collect()
        });
        req.allow_auto_topic_creation = allow_auto_topic_creation;
        self.call(version, &req)
    }

    /// CreateTopics v7 for one topic; returns the topic's error code.
    pub fn create_topic(&mut self, name: &str, partitions: i32) -> Result<i16> {
        let mut t = CreatableTopic::default();
        t.name = topic_name(name);
        t.num_partitions = partitions;
        t.replication_factor = 1;
        let mut req = CreateTopicsRequest::default();
        req.topics = vec![t];
        req.timeout_ms = 10_000;
        let resp = self.call(7, &req)?;
        ensure!(resp.topics.len() == 1, "CreateTopics answered {} topics", resp.topics.len());
        Ok(resp.topics[0].error_code)
    }

    /// Creates a topic and fails unless the broker says NONE.
    pub fn create_topic_ok(&mut self, name: &str, partitions: i32) -> Result<()> {
        let code = self.create_topic(name, partitions)?;
        ensure!(code == code::NONE, "CreateTopics {name}: error {code}");
        Ok(())
    }

    /// Produce of `records` (one or more v2 batches) to one partition; returns that partition's answer.
    pub fn produce(
        &mut self,
        version: i16,
        topic: &str,
        partition: i32,
        records: Bytes,
        acks: i16,
    ) -> Result<PartitionProduceResponse> {
        let req = produce_request(topic, partition, records, acks);
        let resp = self.call(version, &req)?;
        ensure!(resp.responses.len() == 1, "Produce answered {} topics", resp.responses.len());
        let t = &resp.responses[0];
        ensure!(t.name.0.as_str() == topic, "Produce answered topic {:?}", t.name.0.as_str());
        ensure!(t.partition_responses.len() == 1, "Produce answered {} partitions", t.partition_responses.len());
        Ok(t.partition_responses[0].clone())
    }

    /// Fetch of one partition from `offset`; returns that partition's answer.
    pub fn fetch(
        &mut self,
        version: i16,
        topic: &str,
        partition: i32,
        offset: i64,
        max_wait_ms: i32,
        min_bytes: i32,
    ) -> Result<PartitionData> {
        let req = fetch_request(topic, partition, offset, max_wait_ms, min_bytes);
        let resp = self.call(version, &req)?;
        ensure!(resp.error_code == code::NONE, "Fetch top-level error {}", resp.error_code);
        ensure!(resp.responses.len() == 1, "Fetch answered {} topics", resp.responses.len());
        let t = &resp.responses[0];
        ensure!(t.partitions.len() == 1, "Fetch answered {} partitions", t.partitions.len());
        Ok(t.partitions[0].clone())
    }

    /// ListOffsets v7 of one partition at `timestamp` (or [`LATEST`] / [`EARLIEST`]).
    pub fn list_offset(&mut self, topic: &str, partition: i32, timestamp: i64) -> Result<ListOffsetsPartitionResponse> {
        let mut p = ListOffsetsPartition::default();
        p.partition_index = partition;
        p.timestamp = timestamp;
        let mut t = ListOffsetsTopic::default();
        t.name = topic_name(topic);
        t.partitions = vec![p];
        let mut req = ListOffsetsRequest::default();
        req.replica_id = (-1).into();
        req.topics = vec![t];
        let resp = self.call(7, &req)?;
        ensure!(resp.topics.len() == 1 && resp.topics[0].partitions.len() == 1, "ListOffsets answer shape: {resp:?}");
        Ok(resp.topics[0].partitions[0].clone())
    }

    /// The latest offset (log end) of a partition, failing on an error code.
    pub fn latest_offset(&mut self, topic: &str, partition: i32) -> Result<i64> {
        let p = self.list_offset(topic, partition, LATEST)?;
        ensure!(p.error_code == code::NONE, "ListOffsets {topic}-{partition}: error {}", p.error_code);
        Ok(p.offset)
    }
}

fn api_of<R: Request>() -> Result<ApiKey> {
    ApiKey::try_from(R::KEY).map_err(|_| anyhow!("unknown api key {}", R::KEY))
}

/// A complete request frame (length prefix, header at the API's header version, body).
pub fn encode_request<R: Request>(version: i16, correlation: i32, req: &R) -> Result<Bytes> {
    let api = api_of::<R>()?;
    let mut header = RequestHeader::default();
    header.request_api_key = R::KEY;
    header.request_api_version = version;
    header.correlation_id = correlation;
    header.client_id = Some(StrBytes::from_static_str("chronik-it"));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, api.request_header_version(version))
        .with_context(|| format!("encoding the {api:?} v{version} request header"))?;
    req.encode(&mut buf, version).with_context(|| format!("encoding the {api:?} v{version} request"))?;
    let len = i32::try_from(buf.len() - 4)?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

/// A request frame whose header claims (`api_key`, `version`), encoded at `header_version` (1 = classic,
/// 2 = flexible), followed by `body` verbatim; for APIs and versions the codec refuses to encode.
pub fn raw_request(api_key: i16, version: i16, header_version: i16, correlation: i32, body: &[u8]) -> Result<Bytes> {
    let mut header = RequestHeader::default();
    header.request_api_key = api_key;
    header.request_api_version = version;
    header.correlation_id = correlation;
    header.client_id = Some(StrBytes::from_static_str("chronik-it"));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header.encode(&mut buf, header_version).context("encoding a raw request header")?;
    buf.put_slice(body);
    let len = i32::try_from(buf.len() - 4)?;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Ok(buf.freeze())
}

/// Encodes a message body alone at `version` (to put behind a hand-made header).
pub fn encode_body<M: Encodable>(version: i16, body: &M) -> Result<Bytes> {
    let mut buf = BytesMut::new();
    body.encode(&mut buf, version).context("encoding a body")?;
    Ok(buf.freeze())
}

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

pub fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    let mut p = PartitionProduceData::default();
    p.index = partition;
    p.records = Some(records);
    let mut t = TopicProduceData::default();
    t.name = topic_name(topic);
    t.partition_data = vec![p];
    let mut req = ProduceRequest::default();
    req.acks = acks;
    req.timeout_ms = 10_000;
    req.topic_data = vec![t];
    req
}

pub fn fetch_request(topic: &str, partition: i32, offset: i64, max_wait_ms: i32, min_bytes: i32) -> FetchRequest {
    let mut p = FetchPartition::default();
    p.partition = partition;
    p.fetch_offset = offset;
    p.partition_max_bytes = 1024 * 1024;
    let mut t = FetchTopic::default();
    t.topic = topic_name(topic);
    t.partitions = vec![p];
    let mut req = FetchRequest::default();
    req.max_wait_ms = max_wait_ms;
    req.min_bytes = min_bytes;
    req.max_bytes = 16 * 1024 * 1024;
    req.topics = vec![t];
    req
}

/// Producer identity of an idempotent batch.
#[derive(Debug, Clone, Copy)]
pub struct Idempotence {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

/// Byte positions in a v2 record batch.
pub const BATCH_CRC_AT: usize = 17;
pub const BATCH_CRC_COVERS_FROM: usize = 21;
pub const BATCH_BASE_SEQUENCE_AT: usize = 53;
pub const BATCH_HEADER_BYTES: usize = 61;

/// One v2 record batch (no compression) holding `values`, keys `k0..`, timestamps `base_timestamp_ms + i`.
/// Without `idempotence` the batch carries producer id -1 and base sequence -1, as a plain producer's does.
pub fn record_batch(values: &[&str], base_timestamp_ms: i64, idempotence: Option<Idempotence>) -> Result<Bytes> {
    ensure!(!values.is_empty(), "a batch needs at least one record");
    let (producer_id, producer_epoch, base_sequence) = match idempotence {
        Some(i) => (i.producer_id, i.producer_epoch, i.base_sequence),
        None => (NO_PRODUCER_ID, NO_PRODUCER_EPOCH, 0),
    };
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch while offset - sequence is constant.
            sequence: base_sequence + i as i32,
            timestamp: base_timestamp_ms + i as i64,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(v.to_string())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression: Compression::None })
        .context("encoding a record batch")?;
    ensure!(buf.len() > BATCH_HEADER_BYTES, "encoded batch too short");
    if idempotence.is_none() {
        buf[BATCH_BASE_SEQUENCE_AT..BATCH_BASE_SEQUENCE_AT + 4].copy_from_slice(&(-1i32).to_be_bytes());
        fix_batch_crc(&mut buf);
    }
    Ok(buf.freeze())
}

/// Recomputes the CRC-32C of a single v2 batch in place (after patching a covered field).
pub fn fix_batch_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[BATCH_CRC_COVERS_FROM..]);
    batch[BATCH_CRC_AT..BATCH_CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// A fetched record: its offset, timestamp and value as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub offset: i64,
    pub timestamp: i64,
    pub value: String,
}

/// Decodes the record batches of a Fetch answer.
pub fn decode_records(records: &Option<Bytes>) -> Result<Vec<Fetched>> {
    let mut buf = match records {
        Some(b) => b.clone(),
        None => return Ok(Vec::new()),
    };
    // A partial batch at the end is legal in a Fetch answer (clients skip it): decode whole ones only.
    let mut sets = Vec::new();
    while buf.len() >= 12 {
        let batch_len = i32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        ensure!(batch_len > 0, "fetched batch with length {batch_len}");
        let size = 12 + batch_len as usize;
        if buf.len() < size {
            break;
        }
        let mut one = buf.split_to(size);
        sets.push(RecordBatchDecoder::decode(&mut one).context("decoding a fetched record batch")?);
    }
    let mut out = Vec::new();
    for set in sets {
        for r in set.records {
            let value = r.value.map(|v| String::from_utf8_lossy(&v).into_owned()).unwrap_or_default();
            out.push(Fetched { offset: r.offset, timestamp: r.timestamp, value });
        }
    }
    Ok(out)
}

/// Polls `check` until it returns `Ok(Some(_))` or `timeout` passes; the last error is reported.
pub fn poll_until<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => "condition not met".to_string(),
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() >= deadline {
            bail!("{what}: not reached within {timeout:?} ({last})");
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

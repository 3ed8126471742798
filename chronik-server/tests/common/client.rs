//! A blocking Kafka client: request framing and header codec over one TCP connection, raw-byte access
//! for bad-input tests, and one-call helpers for the APIs most tests use.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use anyhow::{anyhow, bail, ensure, Context, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    create_topics_request::CreatableTopic, fetch_request::FetchPartition, fetch_request::FetchTopic,
    fetch_response::PartitionData, list_offsets_request::ListOffsetsPartition,
    list_offsets_request::ListOffsetsTopic, list_offsets_response::ListOffsetsPartitionResponse,
    metadata_request::MetadataRequestTopic, produce_request::PartitionProduceData,
    produce_request::TopicProduceData, produce_response::PartitionProduceResponse, ApiKey,
    CreateTopicsRequest, FetchRequest, FindCoordinatorRequest, GroupId, ListOffsetsRequest, MetadataRequest,
    OffsetFetchRequest, ProduceRequest,
    RequestHeader, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};

use super::{code, CALL_TIMEOUT, CLOSE_TIMEOUT, LATEST, RESPONSE_BYTES_MAX};

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
        let resp = self.call(7, &create_topics_request(name, partitions))?;
        ensure!(resp.topics.len() == 1, "CreateTopics answered {} topics", resp.topics.len());
        Ok(resp.topics[0].error_code)
    }

    /// Creates a topic and fails unless the broker says NONE.
    pub fn create_topic_ok(&mut self, name: &str, partitions: i32) -> Result<()> {
        let code = self.create_topic(name, partitions)?;
        ensure!(code == code::NONE, "CreateTopics {name}: error {code}");
        Ok(())
    }

    /// What a client does before using a group: FindCoordinator (the first one creates the internal
    /// offsets topic), then wait until the coordinator has loaded the group's offsets partition
    /// (OffsetFetch answers without COORDINATOR_LOAD_IN_PROGRESS / NOT_COORDINATOR). Single broker.
    pub fn wait_coordinator(&mut self, group: &str) -> Result<()> {
        super::poll_until(std::time::Duration::from_secs(10), "group coordinator ready", || {
            let mut find = FindCoordinatorRequest::default();
            find.key = StrBytes::from_string(group.to_string());
            if self.call(3, &find)?.error_code != 0 {
                return Ok(None);
            }
            let mut fetch = OffsetFetchRequest::default();
            fetch.group_id = GroupId(StrBytes::from_string(group.to_string()));
            fetch.topics = None;
            Ok((self.call(7, &fetch)?.error_code == 0).then_some(()))
        })
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

/// A CreateTopics request for one topic of `partitions` partitions on one replica.
pub fn create_topics_request(name: &str, partitions: i32) -> CreateTopicsRequest {
    let mut t = CreatableTopic::default();
    t.name = topic_name(name);
    t.num_partitions = partitions;
    t.replication_factor = 1;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 10_000;
    req
}

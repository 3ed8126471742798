//! Conformance of every advertised (API, version): for each range in `kafka::versions::SUPPORTED`, a
//! valid request encoded at each version goes over a real socket to a started broker, and the response
//! must decode with kafka-protocol at that version, behind the response header version the spec gives
//! (`response_header_version`; ApiVersions always v0), with nothing left over, and say what that API
//! should say (no error, the offsets and members that were set up).
//!
//! The request for each API comes from one table, [`probe`]: a `match` on `ApiKey` without a wildcard
//! arm, each served API with the version range its builder was written for. The test fails when an API
//! in `SUPPORTED` has no builder, when a range in `SUPPORTED` differs from its builder's (raising a
//! maximum needs the builder looked at), and when ApiVersions on the wire lists anything but the tested
//! set. Failures are collected per (API, version) and reported together.

mod common;
#[path = "t15/admin.rs"]
mod admin;

use std::collections::BTreeSet;
use std::ops::RangeInclusive;

use anyhow::{anyhow, bail, ensure, Context, Result};
use bytes::{Buf, Bytes};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Request, StrBytes};

use chronik_server::wire::versions::{PRODUCE_MIN_ACCEPTED, SUPPORTED};
use common::{
    code, create_topics_request, decode_records, encode_body, fetch_request, http_get, now_ms, produce_request, raw_request,
    record_batch, topic_name, BrokerOpts, KafkaClient, TestBroker, EARLIEST, LATEST,
};

/// The topic every read-only probe reads: one partition holding [`SEED`].
const TOPIC: &str = "conformance";
const SEED: &[&str] = &["alpha", "beta", "gamma"];
/// The topic the Produce probes write to.
const PRODUCE_TOPIC: &str = "conformance-produce";
/// ListOffsets' max-timestamp query (v7+).
const MAX_TIMESTAMP: i64 = -3;
/// Group protocol used by the group probes.
const PROTOCOL_TYPE: &str = "consumer";
const PROTOCOL: &str = "range";
const MEMBER_METADATA: &[u8] = b"member-metadata";
const ASSIGNMENT: &[u8] = b"member-assignment";
/// Long enough that no member expires while the whole table runs.
const SESSION_TIMEOUT_MS: i32 = 60_000;
/// Versions the group helpers use to set a group up before the probed request (any served ones).
const JOIN_V: i16 = 7;
const SYNC_V: i16 = 5;
const COMMIT_V: i16 = 8;
const OFFSET_FETCH_V: i16 = 7;
const CREATE_TOPICS_V: i16 = 7;
/// Kafka error codes specific to these probes.
const MEMBER_ID_REQUIRED: i16 = 79;
const GROUP_ID_NOT_FOUND: i16 = 69;
const UNSUPPORTED_ENDPOINT_TYPE: i16 = 115;

/// How to exercise one API: the versions its builder covers and the probe for one version.
struct Probe {
    versions: RangeInclusive<i16>,
    run: fn(&mut Fixture, i16) -> Result<()>,
}

/// THE table: one request builder per served API. No wildcard arm: a new `ApiKey` must be placed here.
fn probe(api: ApiKey) -> Option<Probe> {
    let p = |min: i16, max: i16, run: fn(&mut Fixture, i16) -> Result<()>| Some(Probe { versions: min..=max, run });
    match api {
        ApiKey::Produce => p(0, 9, produce),
        ApiKey::Fetch => p(4, 12, fetch),
        ApiKey::ListOffsets => p(1, 7, list_offsets),
        ApiKey::Metadata => p(0, 11, metadata),
        ApiKey::OffsetCommit => p(2, 8, offset_commit),
        ApiKey::OffsetFetch => p(1, 8, offset_fetch),
        ApiKey::FindCoordinator => p(0, 4, find_coordinator),
        ApiKey::JoinGroup => p(0, 7, join_group),
        ApiKey::Heartbeat => p(0, 4, heartbeat),
        ApiKey::LeaveGroup => p(0, 4, leave_group),
        ApiKey::SyncGroup => p(0, 5, sync_group),
        ApiKey::DescribeGroups => p(0, 5, describe_groups),
        ApiKey::ListGroups => p(0, 4, list_groups),
        ApiKey::ApiVersions => p(0, 3, api_versions),
        ApiKey::CreateTopics => p(2, 7, create_topics),
        ApiKey::DeleteTopics => p(1, 6, delete_topics),
        ApiKey::InitProducerId => p(0, 4, init_producer_id),
        ApiKey::DescribeConfigs => p(1, 4, describe_configs),
        ApiKey::CreatePartitions => p(0, 3, create_partitions),
        ApiKey::DeleteGroups => p(0, 2, delete_groups),
        ApiKey::DescribeCluster => p(0, 1, describe_cluster),
        ApiKey::OffsetForLeaderEpoch => p(2, 4, offset_for_leader_epoch),
        ApiKey::AlterReplicaLogDirs => p(1, 2, admin::alter_replica_log_dirs),
        ApiKey::DescribeLogDirs => p(1, 4, admin::describe_log_dirs),
        ApiKey::ElectLeaders => p(0, 2, admin::elect_leaders),
        ApiKey::AlterPartitionReassignments => p(0, 0, admin::alter_partition_reassignments),
        ApiKey::ListPartitionReassignments => p(0, 0, admin::list_partition_reassignments),
        // Not served: the broker closes the connection on these (t20_bad_input).
        ApiKey::SaslHandshake
        | ApiKey::DeleteRecords
        | ApiKey::AddPartitionsToTxn
        | ApiKey::AddOffsetsToTxn
        | ApiKey::EndTxn
        | ApiKey::WriteTxnMarkers
        | ApiKey::TxnOffsetCommit
        | ApiKey::DescribeAcls
        | ApiKey::CreateAcls
        | ApiKey::DeleteAcls
        | ApiKey::AlterConfigs
        | ApiKey::SaslAuthenticate
        | ApiKey::CreateDelegationToken
        | ApiKey::RenewDelegationToken
        | ApiKey::ExpireDelegationToken
        | ApiKey::DescribeDelegationToken
        | ApiKey::IncrementalAlterConfigs
        | ApiKey::OffsetDelete
        | ApiKey::DescribeClientQuotas
        | ApiKey::AlterClientQuotas
        | ApiKey::DescribeUserScramCredentials
        | ApiKey::AlterUserScramCredentials
        | ApiKey::Vote
        | ApiKey::BeginQuorumEpoch
        | ApiKey::EndQuorumEpoch
        | ApiKey::DescribeQuorum
        | ApiKey::AlterPartition
        | ApiKey::UpdateFeatures
        | ApiKey::Envelope
        | ApiKey::FetchSnapshot
        | ApiKey::DescribeProducers
        | ApiKey::BrokerRegistration
        | ApiKey::BrokerHeartbeat
        | ApiKey::UnregisterBroker
        | ApiKey::DescribeTransactions
        | ApiKey::ListTransactions
        | ApiKey::AllocateProducerIds
        | ApiKey::ConsumerGroupHeartbeat
        | ApiKey::ConsumerGroupDescribe
        | ApiKey::ControllerRegistration
        | ApiKey::GetTelemetrySubscriptions
        | ApiKey::PushTelemetry
        | ApiKey::AssignReplicasToDirs
        | ApiKey::ListConfigResources
        | ApiKey::DescribeTopicPartitions
        | ApiKey::ShareGroupHeartbeat
        | ApiKey::ShareGroupDescribe
        | ApiKey::ShareFetch
        | ApiKey::ShareAcknowledge
        | ApiKey::AddRaftVoter
        | ApiKey::RemoveRaftVoter
        | ApiKey::UpdateRaftVoter
        | ApiKey::InitializeShareGroupState
        | ApiKey::ReadShareGroupState
        | ApiKey::WriteShareGroupState
        | ApiKey::DeleteShareGroupState
        | ApiKey::ReadShareGroupStateSummary
        | ApiKey::DescribeShareGroupOffsets
        | ApiKey::AlterShareGroupOffsets
        | ApiKey::DeleteShareGroupOffsets => None,
    }
}

/// Every API with a builder and the versions it covers: the set this test exercises.
fn tested() -> BTreeSet<(i16, i16, i16)> {
    ApiKey::iter()
        .filter_map(|api| probe(api).map(|p| (api as i16, *p.versions.start(), *p.versions.end())))
        .collect()
}

fn advertised() -> BTreeSet<(i16, i16, i16)> {
    SUPPORTED.iter().map(|(api, min, max)| (*api as i16, *min, *max)).collect()
}

/// The broker under test and what the probes set up on it.
struct Fixture {
    broker: TestBroker,
}

impl Fixture {
    fn client(&self) -> Result<KafkaClient> {
        self.broker.client()
    }

    /// Sends `req` at `version` on a fresh connection and decodes the answer with [`exchange`].
    fn call<R: Request>(&self, version: i16, req: &R) -> Result<R::Response> {
        exchange(&mut self.client()?, version, req)
    }
}

/// The response header version the spec gives for (`api`, `version`); ApiVersions answers always carry
/// a v0 header so a client that sent a version the broker does not know can still read the answer.
fn expected_response_header_version(api: ApiKey, version: i16) -> i16 {
    if api == ApiKey::ApiVersions {
        0
    } else {
        api.response_header_version(version)
    }
}

/// Sends `req` at `version` and decodes the response: header at the spec's version (checked against the
/// other header version when it fails, to say which one the broker used), then the body, with nothing
/// left over.
fn exchange<R: Request>(c: &mut KafkaClient, version: i16, req: &R) -> Result<R::Response> {
    let api = ApiKey::try_from(R::KEY).map_err(|_| anyhow!("unknown api key {}", R::KEY))?;
    let request_header = api.request_header_version(version);
    let response_header = expected_response_header_version(api, version);
    // The spec's pairing: a flexible request (header v2) has a flexible response (header v1), except
    // ApiVersions.
    let flexible = request_header == 2;
    ensure!(
        api == ApiKey::ApiVersions || (response_header == 1) == flexible,
        "spec: request header v{request_header} with response header v{response_header}"
    );
    let correlation = c.send(version, req).context("sending the request")?;
    let frame = c.read_frame().context("no response (connection closed or timed out)")?;
    match decode_response::<R::Response>(frame.clone(), response_header, version, correlation) {
        Ok(body) => Ok(body),
        Err(e) => {
            let other = 1 - response_header;
            if decode_response::<R::Response>(frame, other, version, correlation).is_ok() {
                bail!("response header is v{other}, the spec says v{response_header} (flexible request: {flexible})");
            }
            Err(e.context(format!("response did not decode (header v{response_header}, body v{version})")))
        }
    }
}

fn decode_response<T: Decodable>(mut frame: Bytes, header_version: i16, version: i16, correlation: i32) -> Result<T> {
    let header = ResponseHeader::decode(&mut frame, header_version).context("header")?;
    ensure!(header.correlation_id == correlation, "correlation id {} in response, sent {correlation}", header.correlation_id);
    let body = T::decode(&mut frame, version).context("body")?;
    ensure!(!frame.has_remaining(), "{} bytes left after the body", frame.remaining());
    Ok(body)
}

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn gid(group: &str) -> GroupId {
    GroupId(s(group))
}

fn expect_code(what: &str, got: i16, want: i16) -> Result<()> {
    ensure!(got == want, "{what}: error code {got}, want {want}");
    Ok(())
}

// ---- Produce, Fetch, ListOffsets, Metadata, OffsetForLeaderEpoch ------------------------------------

fn produce(fx: &mut Fixture, v: i16) -> Result<()> {
    let topic = PRODUCE_TOPIC;
    let batch = record_batch(&[&format!("produce-v{v}")], now_ms(), None)?;
    let req = produce_request(topic, 0, batch, -1);
    let mut c = fx.client()?;
    if v < PRODUCE_MIN_ACCEPTED {
        // Advertised (as Kafka 4 does) but refused at request time: message formats v0/v1 are not
        // stored. The v0–2 body is the v3 one without its leading null transactional id (2 bytes).
        let v3 = encode_body(3, &req)?;
        ensure!(v3.starts_with(&[0xff, 0xff]), "v3 body does not start with a null transactional id");
        let header_version = ApiKey::Produce.request_header_version(v);
        c.send_raw(&raw_request(ApiKey::Produce as i16, v, header_version, 1, &v3[2..])?)?;
        return c.expect_closed().context("Produce below v3 must be refused by closing the connection");
    }
    let resp = exchange(&mut c, v, &req)?;
    ensure!(resp.responses.len() == 1 && resp.responses[0].partition_responses.len() == 1, "answer shape: {resp:?}");
    let p = &resp.responses[0].partition_responses[0];
    expect_code("partition", p.error_code, code::NONE)?;
    ensure!(p.base_offset >= 0, "base offset {}", p.base_offset);
    Ok(())
}

fn fetch(fx: &mut Fixture, v: i16) -> Result<()> {
    let resp = fx.call(v, &fetch_request(TOPIC, 0, 0, 0, 1))?;
    ensure!(resp.responses.len() == 1 && resp.responses[0].partitions.len() == 1, "answer shape: {resp:?}");
    let p = &resp.responses[0].partitions[0];
    expect_code("partition", p.error_code, code::NONE)?;
    ensure!(p.high_watermark == SEED.len() as i64, "high watermark {}, want {}", p.high_watermark, SEED.len());
    if v >= 5 {
        ensure!(p.log_start_offset == 0, "log start offset {}", p.log_start_offset);
    }
    let values: Vec<String> = decode_records(&p.records)?.into_iter().map(|r| r.value).collect();
    ensure!(values == SEED, "records {values:?}, want {SEED:?}");
    if v >= 9 {
        // KIP-320: the leader epoch the consumer names must be the leader's (0 here).
        for (epoch, want) in [(0, code::NONE), (1, code::UNKNOWN_LEADER_EPOCH)] {
            let mut req = fetch_request(TOPIC, 0, 0, 0, 1);
            req.topics[0].partitions[0].current_leader_epoch = epoch;
            let resp = fx.call(v, &req)?;
            let got = resp.responses.first().and_then(|t| t.partitions.first()).map(|p| p.error_code);
            ensure!(got == Some(want), "current leader epoch {epoch}: error {got:?}, want {want}");
        }
    }
    Ok(())
}

fn list_offsets_request(timestamp: i64) -> ListOffsetsRequest {
    let mut p = list_offsets_request::ListOffsetsPartition::default();
    p.partition_index = 0;
    p.timestamp = timestamp;
    let mut t = list_offsets_request::ListOffsetsTopic::default();
    t.name = topic_name(TOPIC);
    t.partitions = vec![p];
    let mut req = ListOffsetsRequest::default();
    req.replica_id = BrokerId(-1);
    req.topics = vec![t];
    req
}

fn list_offsets(fx: &mut Fixture, v: i16) -> Result<()> {
    let mut c = fx.client()?;
    let mut queries = vec![(EARLIEST, 0), (LATEST, SEED.len() as i64)];
    if v >= 7 {
        // The seed records have increasing timestamps: the last one has the largest.
        queries.push((MAX_TIMESTAMP, SEED.len() as i64 - 1));
    }
    for (timestamp, want) in queries {
        let resp = exchange(&mut c, v, &list_offsets_request(timestamp))?;
        ensure!(resp.topics.len() == 1 && resp.topics[0].partitions.len() == 1, "answer shape: {resp:?}");
        let p = &resp.topics[0].partitions[0];
        expect_code(&format!("timestamp {timestamp}"), p.error_code, code::NONE)?;
        ensure!(p.offset == want, "timestamp {timestamp}: offset {}, want {want}", p.offset);
        // The leader epoch exists from v4; decoding an older version leaves the default.
        let want_epoch = if v >= 4 { 0 } else { -1 };
        ensure!(p.leader_epoch == want_epoch, "timestamp {timestamp}: leader epoch {}, want {want_epoch}", p.leader_epoch);
    }
    if v >= 4 {
        // KIP-320: the leader epoch the client names must be the leader's (0 here).
        for (epoch, want) in [(0, code::NONE), (1, code::UNKNOWN_LEADER_EPOCH)] {
            let mut req = list_offsets_request(LATEST);
            req.topics[0].partitions[0].current_leader_epoch = epoch;
            let resp = exchange(&mut c, v, &req)?;
            let got = resp.topics.first().and_then(|t| t.partitions.first()).map(|p| p.error_code);
            ensure!(got == Some(want), "current leader epoch {epoch}: error {got:?}, want {want}");
        }
    }
    Ok(())
}

fn metadata(fx: &mut Fixture, v: i16) -> Result<()> {
    let mut t = metadata_request::MetadataRequestTopic::default();
    t.name = Some(topic_name(TOPIC));
    let mut req = MetadataRequest::default();
    req.topics = Some(vec![t]);
    let resp = fx.call(v, &req)?;
    let port = i32::from(fx.broker.ports.kafka);
    ensure!(
        resp.brokers.len() == 1 && resp.brokers[0].node_id.0 == 1 && resp.brokers[0].port == port,
        "brokers {:?}, want node 1 on port {port}",
        resp.brokers
    );
    ensure!(resp.topics.len() == 1, "{} topics answered", resp.topics.len());
    let t = &resp.topics[0];
    expect_code("topic", t.error_code, code::NONE)?;
    ensure!(t.partitions.len() == 1 && t.partitions[0].leader_id.0 == 1, "partitions {:?}", t.partitions);
    if v >= 1 {
        ensure!(resp.controller_id.0 == 1, "controller {}", resp.controller_id.0);
    }
    if v >= 2 {
        ensure!(resp.cluster_id.as_ref().is_some_and(|c| !c.is_empty()), "no cluster id");
    }
    Ok(())
}

fn offset_for_leader_epoch(fx: &mut Fixture, v: i16) -> Result<()> {
    let mut p = offset_for_leader_epoch_request::OffsetForLeaderPartition::default();
    p.partition = 0;
    p.current_leader_epoch = 0;
    p.leader_epoch = 0;
    let mut t = offset_for_leader_epoch_request::OffsetForLeaderTopic::default();
    t.topic = topic_name(TOPIC);
    t.partitions = vec![p];
    let mut req = OffsetForLeaderEpochRequest::default();
    if v >= 3 {
        req.replica_id = BrokerId(-1);
    }
    req.topics = vec![t];
    let resp = fx.call(v, &req)?;
    ensure!(resp.topics.len() == 1 && resp.topics[0].partitions.len() == 1, "answer shape: {resp:?}");
    let p = &resp.topics[0].partitions[0];
    expect_code("partition", p.error_code, code::NONE)?;
    ensure!((p.leader_epoch, p.end_offset) == (0, SEED.len() as i64), "epoch {} ends at {}", p.leader_epoch, p.end_offset);
    Ok(())
}

// ---- Topics and configs -------------------------------------------------------------------------------


fn create_topics(fx: &mut Fixture, v: i16) -> Result<()> {
    let name = format!("created-v{v}");
    let mut req = create_topics_request(&name, 2);
    let mut retention = create_topics_request::CreatableTopicConfig::default();
    retention.name = s("retention.ms");
    retention.value = Some(s("3600000"));
    req.topics[0].configs = vec![retention];
    let resp = fx.call(v, &req)?;
    ensure!(resp.topics.len() == 1 && resp.topics[0].name.as_str() == name, "answer shape: {resp:?}");
    let t = &resp.topics[0];
    expect_code("topic", t.error_code, code::NONE)?;
    if v >= 5 {
        // KIP-525: what the topic got, configs included (its own value and the defaults).
        ensure!((t.num_partitions, t.replication_factor) == (2, 1), "partitions {} rf {}", t.num_partitions, t.replication_factor);
        let config = |k: &str| t.configs.iter().flatten().find(|c| c.name.as_str() == k).and_then(|c| c.value.as_ref()).map(|v| v.to_string());
        ensure!(config("retention.ms").as_deref() == Some("3600000"), "retention.ms {:?} in {:?}", config("retention.ms"), t.configs);
        ensure!(config("cleanup.policy").as_deref() == Some("delete"), "cleanup.policy {:?}", config("cleanup.policy"));
    }
    if v >= 7 {
        ensure!(!t.topic_id.is_nil(), "no topic id");
    }
    Ok(())
}

fn create_one_topic(fx: &Fixture, name: &str, partitions: i32) -> Result<()> {
    let resp = fx.call(CREATE_TOPICS_V, &create_topics_request(name, partitions))?;
    ensure!(resp.topics.len() == 1, "CreateTopics answered {} topics", resp.topics.len());
    expect_code(&format!("creating {name}"), resp.topics[0].error_code, code::NONE)
}

fn delete_topics(fx: &mut Fixture, v: i16) -> Result<()> {
    let name = format!("deleted-v{v}");
    create_one_topic(fx, &name, 1)?;
    let mut req = DeleteTopicsRequest::default();
    req.timeout_ms = 10_000;
    if v >= 6 {
        let mut t = delete_topics_request::DeleteTopicState::default();
        t.name = Some(topic_name(&name));
        req.topics = vec![t];
    } else {
        req.topic_names = vec![topic_name(&name)];
    }
    let resp = fx.call(v, &req)?;
    ensure!(resp.responses.len() == 1, "answer shape: {resp:?}");
    let r = &resp.responses[0];
    ensure!(r.name.as_ref().map(|n| n.as_str()) == Some(name.as_str()), "answered topic {:?}", r.name);
    expect_code("topic", r.error_code, code::NONE)
}

fn create_partitions(fx: &mut Fixture, v: i16) -> Result<()> {
    let name = format!("grown-v{v}");
    create_one_topic(fx, &name, 1)?;
    let mut t = create_partitions_request::CreatePartitionsTopic::default();
    t.name = topic_name(&name);
    t.count = 3;
    // Placed by the broker (the codec's default is an empty list, which asks for zero placements).
    t.assignments = None;
    let mut req = CreatePartitionsRequest::default();
    req.topics = vec![t];
    req.timeout_ms = 10_000;
    let resp = fx.call(v, &req)?;
    ensure!(resp.results.len() == 1 && resp.results[0].name.as_str() == name, "answer shape: {resp:?}");
    expect_code("topic", resp.results[0].error_code, code::NONE)?;
    let md = fx.client()?.metadata(9, Some(&[name.as_str()]), false)?;
    ensure!(md.topics.first().map(|t| t.partitions.len()) == Some(3), "metadata after growing: {:?}", md.topics);
    Ok(())
}

fn describe_configs(fx: &mut Fixture, v: i16) -> Result<()> {
    /// DescribeConfigs resource type of a topic.
    const RESOURCE_TOPIC: i8 = 2;
    let mut r = describe_configs_request::DescribeConfigsResource::default();
    r.resource_type = RESOURCE_TOPIC;
    r.resource_name = s(TOPIC);
    r.configuration_keys = None;
    let mut req = DescribeConfigsRequest::default();
    req.resources = vec![r];
    req.include_synonyms = true;
    if v >= 3 {
        req.include_documentation = true;
    }
    let resp = fx.call(v, &req)?;
    ensure!(resp.results.len() == 1, "answer shape: {resp:?}");
    let r = &resp.results[0];
    expect_code("resource", r.error_code, code::NONE)?;
    ensure!(
        r.configs.iter().any(|c| c.name.as_str() == "cleanup.policy"),
        "no cleanup.policy among {:?}",
        r.configs.iter().map(|c| c.name.as_str()).collect::<Vec<_>>()
    );
    Ok(())
}

fn describe_cluster(fx: &mut Fixture, v: i16) -> Result<()> {
    let resp = fx.call(v, &DescribeClusterRequest::default())?;
    expect_code("cluster", resp.error_code, code::NONE)?;
    let port = i32::from(fx.broker.ports.kafka);
    ensure!(
        resp.brokers.len() == 1 && resp.brokers[0].broker_id.0 == 1 && resp.brokers[0].port == port,
        "brokers {:?}",
        resp.brokers
    );
    ensure!(!resp.cluster_id.is_empty() && resp.controller_id.0 == 1, "cluster {} controller {}", resp.cluster_id, resp.controller_id.0);
    if v >= 1 {
        // KIP-919: brokers describe broker endpoints only; controller endpoints (2) are refused.
        let mut req = DescribeClusterRequest::default();
        req.endpoint_type = 2;
        expect_code("controller endpoints", fx.call(v, &req)?.error_code, UNSUPPORTED_ENDPOINT_TYPE)?;
    }
    Ok(())
}

fn api_versions(fx: &mut Fixture, v: i16) -> Result<()> {
    let mut req = ApiVersionsRequest::default();
    if v >= 3 {
        req.client_software_name = s("chronik-conformance");
        req.client_software_version = s("1.0");
    }
    let resp = fx.call(v, &req)?;
    expect_code("ApiVersions", resp.error_code, code::NONE)?;
    let on_wire: BTreeSet<(i16, i16, i16)> = resp.api_keys.iter().map(|k| (k.api_key, k.min_version, k.max_version)).collect();
    ensure!(on_wire.len() == resp.api_keys.len(), "an API is listed twice: {:?}", resp.api_keys);
    ensure!(on_wire == tested(), "listed {on_wire:?}, tested {:?}", tested());
    Ok(())
}

fn init_producer_id(fx: &mut Fixture, v: i16) -> Result<()> {
    let mut req = InitProducerIdRequest::default();
    req.transactional_id = None;
    req.transaction_timeout_ms = 60_000;
    if v >= 3 {
        req.producer_id = ProducerId(-1);
        req.producer_epoch = -1;
    }
    let resp = fx.call(v, &req)?;
    expect_code("InitProducerId", resp.error_code, code::NONE)?;
    ensure!(resp.producer_id.0 >= 0 && resp.producer_epoch == 0, "producer {} epoch {}", resp.producer_id.0, resp.producer_epoch);
    Ok(())
}

// ---- Groups -------------------------------------------------------------------------------------------

fn find_coordinator(fx: &mut Fixture, v: i16) -> Result<()> {
    let key = format!("coordinated-v{v}");
    let mut req = FindCoordinatorRequest::default();
    if v >= 4 {
        req.coordinator_keys = vec![s(&key)];
    } else {
        req.key = s(&key);
    }
    let resp = fx.call(v, &req)?;
    let port = i32::from(fx.broker.ports.kafka);
    let (error, node, got_port) = if v >= 4 {
        ensure!(resp.coordinators.len() == 1 && resp.coordinators[0].key.as_str() == key, "coordinators {:?}", resp.coordinators);
        let c = &resp.coordinators[0];
        (c.error_code, c.node_id.0, c.port)
    } else {
        (resp.error_code, resp.node_id.0, resp.port)
    };
    expect_code("coordinator", error, code::NONE)?;
    ensure!((node, got_port) == (1, port), "coordinator {node} on port {got_port}, want 1 on {port}");
    Ok(())
}

fn join_request(group: &str, member_id: &str, v: i16) -> JoinGroupRequest {
    let mut proto = join_group_request::JoinGroupRequestProtocol::default();
    proto.name = s(PROTOCOL);
    proto.metadata = Bytes::from_static(MEMBER_METADATA);
    let mut req = JoinGroupRequest::default();
    req.group_id = gid(group);
    req.session_timeout_ms = SESSION_TIMEOUT_MS;
    if v >= 1 {
        req.rebalance_timeout_ms = SESSION_TIMEOUT_MS;
    }
    req.member_id = s(member_id);
    req.protocol_type = s(PROTOCOL_TYPE);
    req.protocols = vec![proto];
    req
}

/// Joins `group` as its only member at JoinGroup `v` (from v4 the first call hands out a member id
/// with MEMBER_ID_REQUIRED); returns the answer to the join that completed.
fn join(fx: &Fixture, group: &str, v: i16) -> Result<JoinGroupResponse> {
    let mut c = fx.client()?;
    let mut resp = exchange(&mut c, v, &join_request(group, "", v))?;
    if v >= 4 {
        expect_code("first JoinGroup", resp.error_code, MEMBER_ID_REQUIRED)?;
        ensure!(!resp.member_id.is_empty(), "MEMBER_ID_REQUIRED without a member id");
        resp = exchange(&mut c, v, &join_request(group, resp.member_id.as_str(), v))?;
    }
    expect_code("JoinGroup", resp.error_code, code::NONE)?;
    Ok(resp)
}

fn sync_request(group: &str, generation: i32, member: &str, v: i16) -> SyncGroupRequest {
    let mut a = sync_group_request::SyncGroupRequestAssignment::default();
    a.member_id = s(member);
    a.assignment = Bytes::from_static(ASSIGNMENT);
    let mut req = SyncGroupRequest::default();
    req.group_id = gid(group);
    req.generation_id = generation;
    req.member_id = s(member);
    if v >= 5 {
        req.protocol_type = Some(s(PROTOCOL_TYPE));
        req.protocol_name = Some(s(PROTOCOL));
    }
    req.assignments = vec![a];
    req
}

/// A group with one member that has joined and synced: (member id, generation).
fn stable_group(fx: &Fixture, group: &str) -> Result<(String, i32)> {
    let joined = join(fx, group, JOIN_V)?;
    let member = joined.member_id.as_str().to_string();
    let synced = fx.call(SYNC_V, &sync_request(group, joined.generation_id, &member, SYNC_V))?;
    expect_code("SyncGroup", synced.error_code, code::NONE)?;
    Ok((member, joined.generation_id))
}

fn join_group(fx: &mut Fixture, v: i16) -> Result<()> {
    let resp = join(fx, &format!("joined-v{v}"), v)?;
    ensure!(resp.generation_id == 1, "generation {}", resp.generation_id);
    ensure!(resp.leader == resp.member_id, "leader {} is not the only member {}", resp.leader, resp.member_id);
    ensure!(resp.protocol_name.as_ref().map(|p| p.as_str()) == Some(PROTOCOL), "protocol {:?}", resp.protocol_name);
    ensure!(resp.members.len() == 1 && resp.members[0].metadata == MEMBER_METADATA, "members {:?}", resp.members);
    if v >= 7 {
        ensure!(resp.protocol_type.as_ref().map(|p| p.as_str()) == Some(PROTOCOL_TYPE), "protocol type {:?}", resp.protocol_type);
    }
    Ok(())
}

fn sync_group(fx: &mut Fixture, v: i16) -> Result<()> {
    let group = format!("synced-v{v}");
    let joined = join(fx, &group, JOIN_V)?;
    let resp = fx.call(v, &sync_request(&group, joined.generation_id, joined.member_id.as_str(), v))?;
    expect_code("SyncGroup", resp.error_code, code::NONE)?;
    ensure!(resp.assignment == ASSIGNMENT, "assignment {:?}", resp.assignment);
    if v >= 5 {
        ensure!(resp.protocol_name.as_ref().map(|p| p.as_str()) == Some(PROTOCOL), "protocol {:?}", resp.protocol_name);
    }
    Ok(())
}

fn heartbeat(fx: &mut Fixture, v: i16) -> Result<()> {
    let group = format!("beating-v{v}");
    let (member, generation) = stable_group(fx, &group)?;
    let mut req = HeartbeatRequest::default();
    req.group_id = gid(&group);
    req.generation_id = generation;
    req.member_id = s(&member);
    expect_code("Heartbeat", fx.call(v, &req)?.error_code, code::NONE)
}

fn describe_group(fx: &Fixture, group: &str, v: i16) -> Result<describe_groups_response::DescribedGroup> {
    let mut req = DescribeGroupsRequest::default();
    req.groups = vec![gid(group)];
    if v >= 3 {
        req.include_authorized_operations = true;
    }
    let resp = fx.call(v, &req)?;
    ensure!(resp.groups.len() == 1, "{} groups described", resp.groups.len());
    let g = resp.groups.into_iter().next().ok_or_else(|| anyhow!("no group"))?;
    expect_code("group", g.error_code, code::NONE)?;
    Ok(g)
}

fn leave_group(fx: &mut Fixture, v: i16) -> Result<()> {
    let group = format!("left-v{v}");
    let (member, _) = stable_group(fx, &group)?;
    let mut req = LeaveGroupRequest::default();
    req.group_id = gid(&group);
    if v >= 3 {
        let mut m = leave_group_request::MemberIdentity::default();
        m.member_id = s(&member);
        req.members = vec![m];
    } else {
        req.member_id = s(&member);
    }
    let resp = fx.call(v, &req)?;
    expect_code("LeaveGroup", resp.error_code, code::NONE)?;
    if v >= 3 {
        ensure!(resp.members.len() == 1 && resp.members[0].member_id.as_str() == member, "members {:?}", resp.members);
        expect_code("member", resp.members[0].error_code, code::NONE)?;
    }
    let state = describe_group(fx, &group, 0)?.group_state;
    ensure!(state.as_str() == "Empty", "state after leaving: {state}");
    Ok(())
}

fn describe_groups(fx: &mut Fixture, v: i16) -> Result<()> {
    let group = format!("described-v{v}");
    let (member, _) = stable_group(fx, &group)?;
    let g = describe_group(fx, &group, v)?;
    ensure!(g.group_state.as_str() == "Stable", "state {}", g.group_state);
    ensure!((g.protocol_type.as_str(), g.protocol_data.as_str()) == (PROTOCOL_TYPE, PROTOCOL), "protocol {} {}", g.protocol_type, g.protocol_data);
    ensure!(g.members.len() == 1 && g.members[0].member_id.as_str() == member, "members {:?}", g.members);
    ensure!(g.members[0].member_assignment == ASSIGNMENT, "assignment {:?}", g.members[0].member_assignment);
    if v >= 3 {
        ensure!(g.authorized_operations != i32::MIN, "authorized operations requested but omitted");
    }
    Ok(())
}

fn commit_request(group: &str, offset: i64, v: i16) -> OffsetCommitRequest {
    let mut p = offset_commit_request::OffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = offset;
    if v >= 6 {
        p.committed_leader_epoch = 0;
    }
    p.committed_metadata = Some(s("conformance"));
    let mut t = offset_commit_request::OffsetCommitRequestTopic::default();
    t.name = topic_name(TOPIC);
    t.partitions = vec![p];
    let mut req = OffsetCommitRequest::default();
    req.group_id = gid(group);
    // A "simple" commit: no member, no generation.
    req.generation_id_or_member_epoch = -1;
    req.member_id = s("");
    req.topics = vec![t];
    req
}

/// Commits `offset` for the conformance partition in `group` (a simple commit, so the group needs no
/// members).
fn commit(fx: &Fixture, group: &str, offset: i64) -> Result<()> {
    let resp = fx.call(COMMIT_V, &commit_request(group, offset, COMMIT_V))?;
    let code = resp.topics.first().and_then(|t| t.partitions.first()).map(|p| p.error_code);
    ensure!(code == Some(code::NONE), "OffsetCommit v{COMMIT_V} for {group}: {resp:?}");
    Ok(())
}

fn committed(fx: &Fixture, group: &str) -> Result<i64> {
    let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
    t.name = topic_name(TOPIC);
    t.partition_indexes = vec![0];
    let mut req = OffsetFetchRequest::default();
    req.group_id = gid(group);
    req.topics = Some(vec![t]);
    let resp = fx.call(OFFSET_FETCH_V, &req)?;
    expect_code("OffsetFetch", resp.error_code, code::NONE)?;
    let p = resp.topics.first().and_then(|t| t.partitions.first()).ok_or_else(|| anyhow!("no partition in {resp:?}"))?;
    expect_code("partition", p.error_code, code::NONE)?;
    Ok(p.committed_offset)
}

fn offset_commit(fx: &mut Fixture, v: i16) -> Result<()> {
    let group = format!("committed-v{v}");
    let resp = fx.call(v, &commit_request(&group, 2, v))?;
    ensure!(resp.topics.len() == 1 && resp.topics[0].partitions.len() == 1, "answer shape: {resp:?}");
    expect_code("partition", resp.topics[0].partitions[0].error_code, code::NONE)?;
    let got = committed(fx, &group)?;
    ensure!(got == 2, "committed offset read back {got}, want 2");
    Ok(())
}

fn offset_fetch(fx: &mut Fixture, v: i16) -> Result<()> {
    let group = format!("fetched-v{v}");
    commit(fx, &group, 1)?;
    let resp = if v >= 8 {
        let mut t = offset_fetch_request::OffsetFetchRequestTopics::default();
        t.name = topic_name(TOPIC);
        t.partition_indexes = vec![0];
        let mut g = offset_fetch_request::OffsetFetchRequestGroup::default();
        g.group_id = gid(&group);
        g.topics = Some(vec![t]);
        let mut req = OffsetFetchRequest::default();
        req.groups = vec![g];
        let resp = fx.call(v, &req)?;
        ensure!(resp.groups.len() == 1 && resp.groups[0].group_id.as_str() == group, "groups {:?}", resp.groups);
        let g = &resp.groups[0];
        expect_code("group", g.error_code, code::NONE)?;
        let p = g.topics.first().and_then(|t| t.partitions.first()).ok_or_else(|| anyhow!("no partition in {g:?}"))?;
        (p.error_code, p.committed_offset, p.metadata.clone())
    } else {
        let mut t = offset_fetch_request::OffsetFetchRequestTopic::default();
        t.name = topic_name(TOPIC);
        t.partition_indexes = vec![0];
        let mut req = OffsetFetchRequest::default();
        req.group_id = gid(&group);
        req.topics = Some(vec![t]);
        let resp = fx.call(v, &req)?;
        if v >= 2 {
            expect_code("OffsetFetch", resp.error_code, code::NONE)?;
        }
        let p = resp.topics.first().and_then(|t| t.partitions.first()).ok_or_else(|| anyhow!("no partition in {resp:?}"))?;
        (p.error_code, p.committed_offset, p.metadata.clone())
    };
    expect_code("partition", resp.0, code::NONE)?;
    ensure!(resp.1 == 1, "committed offset {}, want 1", resp.1);
    ensure!(resp.2.as_ref().map(|m| m.as_str()) == Some("conformance"), "metadata {:?}", resp.2);
    Ok(())
}

fn list_groups(fx: &mut Fixture, v: i16) -> Result<()> {
    let group = format!("listed-v{v}");
    commit(fx, &group, 0)?;
    let mut req = ListGroupsRequest::default();
    if v >= 4 {
        req.states_filter = vec![s("Empty")];
    }
    let resp = fx.call(v, &req)?;
    expect_code("ListGroups", resp.error_code, code::NONE)?;
    let g = resp.groups.iter().find(|g| g.group_id.as_str() == group).ok_or_else(|| anyhow!("{group} not listed"))?;
    if v >= 4 {
        ensure!(g.group_state.as_str() == "Empty", "state {}", g.group_state);
        ensure!(resp.groups.iter().all(|g| g.group_state.as_str() == "Empty"), "filter on Empty ignored: {:?}", resp.groups);
    }
    Ok(())
}

fn delete_groups(fx: &mut Fixture, v: i16) -> Result<()> {
    let group = format!("deleted-v{v}");
    commit(fx, &group, 0)?;
    let mut req = DeleteGroupsRequest::default();
    req.groups_names = vec![gid(&group)];
    let mut c = fx.client()?;
    for want in [code::NONE, GROUP_ID_NOT_FOUND] {
        let resp = exchange(&mut c, v, &req)?;
        ensure!(resp.results.len() == 1 && resp.results[0].group_id.as_str() == group, "results {:?}", resp.results);
        expect_code("group", resp.results[0].error_code, want)?;
    }
    Ok(())
}

// ---- the test ---------------------------------------------------------------------------------------

fn setup() -> Result<Fixture> {
    let broker = TestBroker::start_with(BrokerOpts { num_partitions: 1, ..BrokerOpts::default() })?;
    let fx = Fixture { broker };
    let mut c = fx.client()?;
    c.create_topic_ok(TOPIC, 1)?;
    c.create_topic_ok(PRODUCE_TOPIC, 1)?;
    let produced = c.produce(9, TOPIC, 0, record_batch(SEED, now_ms(), None)?, -1)?;
    ensure!(produced.error_code == code::NONE, "seeding {TOPIC}: error {}", produced.error_code);
    c.wait_coordinator("conformance-setup")?;
    Ok(fx)
}

#[test]
fn every_advertised_api_version_answers_at_that_version() -> Result<()> {
    let mut failures: Vec<String> = Vec::new();
    let mut pairs = 0;

    // The table and SUPPORTED must agree both ways.
    for (api, min, max) in SUPPORTED {
        match probe(*api) {
            None => failures.push(format!("{api:?}: advertised v{min}–{max} but has no request builder in probe()")),
            Some(p) if p.versions != (*min..=*max) => failures.push(format!(
                "{api:?}: advertised v{min}–{max} but the request builder covers v{}–{}",
                p.versions.start(),
                p.versions.end()
            )),
            Some(_) => {}
        }
    }
    for (api, min, max) in tested().difference(&advertised()) {
        failures.push(format!("api key {api}: a request builder covers v{min}–{max}, SUPPORTED does not say so"));
    }

    let mut fx = setup()?;
    for (api, min, max) in SUPPORTED {
        let Some(p) = probe(*api) else { continue };
        for v in *min..=*max {
            pairs += 1;
            if let Err(e) = (p.run)(&mut fx, v) {
                failures.push(format!("{api:?} v{v}: {e:#}"));
            }
        }
    }

    // Nothing above may have needed the UNKNOWN_SERVER_ERROR fallback.
    let (status, metrics) = http_get(fx.broker.admin_addr(), "/metrics")?;
    ensure!(status == 200, "/metrics answered {status}");
    for line in metrics.lines().filter(|l| l.starts_with("chronik_response_encode_errors_total{")) {
        failures.push(format!("the broker failed to encode a response: {line}"));
    }

    eprintln!("conformance: {pairs} (API, version) pairs over {} APIs, {} failures", SUPPORTED.len(), failures.len());
    if !failures.is_empty() {
        bail!("{} failure(s):\n  {}\n---- broker log (tail) ----\n{}", failures.len(), failures.join("\n  "), fx.broker.stderr_tail(20));
    }
    Ok(())
}

/// Just outside each advertised range the broker refuses the request by closing the connection (a
/// version below the minimum, or above the maximum where the codec can encode one); ApiVersions
/// instead answers UNSUPPORTED_VERSION with a v0 body (t10).
#[test]
fn versions_just_outside_the_advertised_ranges_are_refused() -> Result<()> {
    let broker = TestBroker::start()?;
    let mut failures = Vec::new();
    for (api, min, max) in SUPPORTED {
        if *api == ApiKey::ApiVersions {
            continue;
        }
        for v in [min - 1, max + 1] {
            if v < 0 {
                continue;
            }
            // An empty body behind a valid header: the version check comes before the body is read.
            let header_version = api.request_header_version(v);
            let result = (|| -> Result<()> {
                let mut c = broker.client()?;
                c.send_raw(&raw_request(*api as i16, v, header_version, 1, &[])?)?;
                c.expect_closed()
            })();
            if let Err(e) = result {
                failures.push(format!("{api:?} v{v}: {e:#}"));
            }
        }
    }
    ensure!(failures.is_empty(), "{} failure(s):\n  {}", failures.len(), failures.join("\n  "));
    Ok(())
}

/// A sanity check of the harness: `exchange` notices a response header of the wrong version.
#[test]
fn a_response_header_of_the_wrong_version_is_reported() -> Result<()> {
    // A Heartbeat v4 answer (flexible: header v1) written with a v0 header.
    let mut body = bytes::BytesMut::new();
    kafka_protocol::protocol::Encodable::encode(&HeartbeatResponse::default(), &mut body, 4)?;
    let mut frame = bytes::BytesMut::new();
    kafka_protocol::protocol::Encodable::encode(&ResponseHeader::default().with_correlation_id(7), &mut frame, 0)?;
    frame.extend_from_slice(&body);
    let frame = frame.freeze();
    ensure!(decode_response::<HeartbeatResponse>(frame.clone(), 1, 4, 7).is_err(), "a v0 header decoded as v1");
    ensure!(decode_response::<HeartbeatResponse>(frame, 0, 4, 7).is_ok(), "the frame itself is malformed");
    Ok(())
}

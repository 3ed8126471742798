//! Basics of every Kafka API a single broker serves, spoken over a real socket to a real process.

mod common;

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use kafka_protocol::messages::{
    create_partitions_request::CreatePartitionsTopic, create_topics_request::CreatableTopicConfig,
    describe_configs_request::DescribeConfigsResource,
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreatePartitionsRequest, DeleteTopicsRequest,
    DescribeClusterRequest, DescribeConfigsRequest, InitProducerIdRequest,
};
use kafka_protocol::protocol::StrBytes;

use common::{
    code, create_topics_request, decode_records, poll_until, record_batch, topic_name, BrokerOpts, Idempotence, KafkaClient, TestBroker,
    EARLIEST, LATEST,
};

/// Ranges the brief fixes for the APIs clients depend on most (api, min, max).
const EXPECTED_RANGES: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 9),
    (ApiKey::Fetch, 4, 12),
    (ApiKey::Metadata, 0, 11),
    (ApiKey::ApiVersions, 0, 3),
];

fn api_versions_request() -> ApiVersionsRequest {
    let mut req = ApiVersionsRequest::default();
    req.client_software_name = StrBytes::from_static_str("chronik-it");
    req.client_software_version = StrBytes::from_static_str("0.1.0");
    req
}

fn assert_lists_our_ranges(resp: &ApiVersionsResponse, version: i16) -> Result<()> {
    let advertised: Vec<(i16, i16, i16)> =
        resp.api_keys.iter().map(|k| (k.api_key, k.min_version, k.max_version)).collect();
    for (key, min, max) in EXPECTED_RANGES {
        ensure!(
            advertised.contains(&(*key as i16, *min, *max)),
            "ApiVersions v{version}: {key:?} {min}..{max} missing from {advertised:?}"
        );
    }
    for (key, min, max) in chronik_server::wire::versions::SUPPORTED {
        ensure!(
            advertised.contains(&(*key as i16, *min, *max)),
            "ApiVersions v{version}: {key:?} {min}..{max} from versions.rs missing on the wire"
        );
    }
    ensure!(
        advertised.len() == chronik_server::wire::versions::SUPPORTED.len(),
        "ApiVersions v{version} lists {} keys, versions.rs has {}",
        advertised.len(),
        chronik_server::wire::versions::SUPPORTED.len()
    );
    Ok(())
}

#[test]
fn api_versions_v0_and_v3_list_our_ranges() -> Result<()> {
    let broker = TestBroker::start()?;
    let mut c = broker.client()?;
    for version in [0, 3] {
        let resp = c.call(version, &api_versions_request())?;
        ensure!(resp.error_code == code::NONE, "ApiVersions v{version}: error {}", resp.error_code);
        assert_lists_our_ranges(&resp, version)?;
    }
    Ok(())
}

#[test]
fn api_versions_newer_than_ours_gets_v0_body_with_unsupported_version() -> Result<()> {
    let broker = TestBroker::start()?;
    let mut c = broker.client()?;
    let correlation = c.send(4, &api_versions_request())?;
    // The answer is a v0 body (and, as always for ApiVersions, a v0 response header).
    let resp: ApiVersionsResponse = c.receive(ApiKey::ApiVersions, 0, correlation)?;
    ensure!(resp.error_code == code::UNSUPPORTED_VERSION, "ApiVersions v4: error {}, want 35", resp.error_code);
    assert_lists_our_ranges(&resp, 0)?;
    // The connection stays usable: the client retries lower on it.
    let resp = c.call(3, &api_versions_request())?;
    ensure!(resp.error_code == code::NONE, "ApiVersions v3 after v4: error {}", resp.error_code);
    Ok(())
}

#[test]
fn metadata_auto_creates_topics_when_enabled() -> Result<()> {
    let broker = TestBroker::start_with(BrokerOpts { auto_create_topics: true, num_partitions: 3, ..Default::default() })?;
    let mut c = broker.client()?;
    for version in [1, 9, 11] {
        let topic = format!("auto-v{version}");
        let resp = c.metadata(version, Some(&[topic.as_str()]), true)?;
        ensure!(resp.topics.len() == 1, "Metadata v{version}: {} topics", resp.topics.len());
        let t = &resp.topics[0];
        ensure!(t.error_code == code::NONE, "Metadata v{version} auto-create {topic}: error {}", t.error_code);
        ensure!(t.name.as_ref().map(|n| n.0.as_str()) == Some(topic.as_str()), "Metadata v{version}: name {:?}", t.name);
        ensure!(t.partitions.len() == 3, "Metadata v{version}: {} partitions, want num_partitions 3", t.partitions.len());
        let mut indexes: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
        indexes.sort_unstable();
        ensure!(indexes == vec![0, 1, 2], "Metadata v{version}: partition indexes {indexes:?}");
        for p in &t.partitions {
            ensure!(p.error_code == code::NONE, "Metadata v{version} partition {}: error {}", p.partition_index, p.error_code);
            ensure!(p.leader_id.0 == 1, "Metadata v{version} partition {}: leader {}", p.partition_index, p.leader_id.0);
            ensure!(p.replica_nodes.iter().map(|b| b.0).collect::<Vec<_>>() == vec![1], "replicas {:?}", p.replica_nodes);
            ensure!(p.isr_nodes.iter().map(|b| b.0).collect::<Vec<_>>() == vec![1], "isr {:?}", p.isr_nodes);
        }
        ensure!(resp.brokers.len() == 1, "Metadata v{version}: {} brokers", resp.brokers.len());
        let b = &resp.brokers[0];
        ensure!(b.node_id.0 == 1 && b.port == i32::from(broker.ports.kafka), "Metadata v{version}: broker {b:?}");
        ensure!(b.host.as_str() == "127.0.0.1", "Metadata v{version}: advertised host {}", b.host.as_str());
        ensure!(resp.controller_id.0 == 1, "Metadata v{version}: controller {}", resp.controller_id.0);
    }
    // A client that says "do not create" (v4+) gets UNKNOWN_TOPIC_OR_PARTITION and nothing is created.
    let resp = c.metadata(9, Some(&["not-created"]), false)?;
    ensure!(
        resp.topics.len() == 1 && resp.topics[0].error_code == code::UNKNOWN_TOPIC_OR_PARTITION,
        "Metadata v9 allow_auto_topic_creation=false: {:?}",
        resp.topics
    );
    let all = c.metadata(11, None, false)?;
    let mut names: Vec<String> =
        all.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())).collect();
    names.sort();
    ensure!(names == vec!["auto-v1", "auto-v11", "auto-v9"], "Metadata of all topics lists {names:?}");
    Ok(())
}

#[test]
fn metadata_does_not_create_topics_when_disabled() -> Result<()> {
    let broker = TestBroker::start_with(BrokerOpts { auto_create_topics: false, ..Default::default() })?;
    let mut c = broker.client()?;
    for version in [1, 9, 11] {
        let topic = format!("none-v{version}");
        let resp = c.metadata(version, Some(&[topic.as_str()]), true)?;
        ensure!(
            resp.topics.len() == 1 && resp.topics[0].error_code == code::UNKNOWN_TOPIC_OR_PARTITION,
            "Metadata v{version} with auto_create_topics=false: {:?}",
            resp.topics
        );
    }
    let all = c.metadata(11, None, false)?;
    ensure!(all.topics.is_empty(), "topics were created: {:?}", all.topics);
    // Explicit creation still works.
    c.create_topic_ok("explicit", 2)?;
    let resp = c.metadata(11, Some(&["explicit"]), false)?;
    ensure!(resp.topics[0].error_code == code::NONE && resp.topics[0].partitions.len() == 2, "{:?}", resp.topics);
    Ok(())
}

#[test]
fn create_topics_twice_answers_topic_already_exists() -> Result<()> {
    let broker = TestBroker::start()?;
    let mut c = broker.client()?;
    c.create_topic_ok("twice", 1)?;
    let code = c.create_topic("twice", 1)?;
    ensure!(code == code::TOPIC_ALREADY_EXISTS, "second CreateTopics: error {code}, want 36");
    Ok(())
}

/// A topic's `segment.ms` rolls its active segment once the segment's first record is that old.
#[test]
fn topic_segment_ms_rolls_segments_by_age() -> Result<()> {
    let broker = TestBroker::start()?;
    let mut c = broker.client()?;
    let mut req = create_topics_request("aged", 1);
    let mut age = CreatableTopicConfig::default();
    age.name = StrBytes::from_static_str("segment.ms");
    age.value = Some(StrBytes::from_static_str("1"));
    req.topics[0].configs = vec![age];
    let resp = c.call(7, &req)?;
    ensure!(resp.topics[0].error_code == code::NONE, "CreateTopics with segment.ms: {resp:?}");
    for value in ["a", "b", "c"] {
        let r = c.produce(9, "aged", 0, record_batch(&[value], common::now_ms(), None)?, 1)?;
        ensure!(r.error_code == code::NONE, "Produce: error {}", r.error_code);
        std::thread::sleep(Duration::from_millis(5)); // older than segment.ms before the next append
    }
    let dir = broker.data_dir().join("logs").join("aged-0");
    let logs = std::fs::read_dir(&dir)?.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "log")).count();
    ensure!(logs >= 3, "segment.ms = 1: {logs} segment(s) in {}, want one per append", dir.display());
    Ok(())
}

#[test]
fn produce_then_fetch_returns_records_at_their_offsets() -> Result<()> {
    let broker = TestBroker::start()?;
    let mut c = broker.client()?;
    c.create_topic_ok("pf", 1)?;
    let t0 = common::now_ms();

    let first = c.produce(9, "pf", 0, record_batch(&["a", "b", "c"], t0, None)?, 1)?;
    ensure!(first.error_code == code::NONE, "Produce acks=1: error {}", first.error_code);
    ensure!(first.base_offset == 0, "Produce acks=1: base offset {}, want 0", first.base_offset);
    let second = c.produce(9, "pf", 0, record_batch(&["d", "e"], t0 + 10, None)?, -1)?;
    ensure!(second.error_code == code::NONE, "Produce acks=-1: error {}", second.error_code);
    ensure!(second.base_offset == 3, "Produce acks=-1: base offset {}, want 3", second.base_offset);
    // An older produce version is served too.
    let third = c.produce(3, "pf", 0, record_batch(&["f"], t0 + 20, None)?, 1)?;
    ensure!(third.error_code == code::NONE && third.base_offset == 5, "Produce v3: {third:?}");

    let want = ["a", "b", "c", "d", "e", "f"];
    for version in [4, 12] {
        let p = c.fetch(version, "pf", 0, 0, 0, 1)?;
        ensure!(p.error_code == code::NONE, "Fetch v{version}: error {}", p.error_code);
        ensure!(p.high_watermark == 6, "Fetch v{version}: high watermark {}, want 6", p.high_watermark);
        let got = decode_records(&p.records)?;
        let offsets: Vec<i64> = got.iter().map(|r| r.offset).collect();
        let values: Vec<&str> = got.iter().map(|r| r.value.as_str()).collect();
        ensure!(offsets == vec![0, 1, 2, 3, 4, 5], "Fetch v{version}: offsets {offsets:?}");
        ensure!(values == want, "Fetch v{version}: values {values:?}");
        ensure!(got[3].timestamp == t0 + 10, "Fetch v{version}: timestamp {} of offset 3", got[3].timestamp);

        // From the middle: the batch starting at 3 and what follows.
        let p = c.fetch(version, "pf", 0, 3, 0, 1)?;
        let got = decode_records(&p.records)?;
        let from3: Vec<(i64, &str)> = got.iter().filter(|r| r.offset >= 3).map(|r| (r.offset, r.value.as_str())).collect();
        ensure!(from3 == vec![(3, "d"), (4, "e"), (5, "f")], "Fetch v{version} from 3: {from3:?}");
        ensure!(got.iter().all(|r| r.offset >= 3), "Fetch v{version} from 3 returned earlier batches: {got:?}");

        // At the end: nothing, but the high watermark.
        let p = c.fetch(version, "pf", 0, 6, 0, 1)?;
        ensure!(p.error_code == code::NONE && p.high_watermark == 6, "Fetch v{version} at end: {p:?}");
        ensure!(decode_records(&p.records)?.is_empty(), "Fetch v{version} at end returned records");
    }
    // Beyond the end: OFFSET_OUT_OF_RANGE (1).
    let p = c.fetch(12, "pf", 0, 100, 0, 1)?;
    ensure!(p.error_code == 1, "Fetch beyond the end: error {}, want OFFSET_OUT_OF_RANGE 1", p.error_code);
    Ok(())
}

#[test]
fn produce_to_unknown_partition_fails_only_that_partition() -> Result<()> {
    let broker = TestBroker::start_with(BrokerOpts { auto_create_topics: false, ..Default::default() })?;
    let mut c = broker.client()?;
    c.create_topic_ok("one", 1)?;
    let p = c.produce(9, "one", 7, record_batch(&["x"], common::now_ms(), None)?, 1)?;
    ensure!(p.error_code == code::UNKNOWN_TOPIC_OR_PARTITION, "Produce to partition 7 of 1: error {}", p.error_code);
    let p = c.produce(9, "nope", 0, record_batch(&["x"], common::now_ms(), None)?, 1)?;
    ensure!(p.error_code == code::UNKNOWN_TOPIC_OR_PARTITION, "Produce to unknown topic: error {}", p.error_code);
    Ok(())
}

#[test]
fn list_offsets_earliest_latest_and_by_timestamp() -> Result<()> {
    let broker = TestBroker::start()?;
    let mut c = broker.client()?;
    c.create_topic_ok("lo", 1)?;
    let empty = c.list_offset("lo", 0, LATEST)?;
    ensure!(empty.error_code == code::NONE && empty.offset == 0, "latest of an empty partition: {empty:?}");

    // Timestamps: offsets 0,1,2 at 1000,1001,1002; offsets 3,4 at 2000,2001.
    let p = c.produce(9, "lo", 0, record_batch(&["a", "b", "c"], 1000, None)?, 1)?;
    ensure!(p.error_code == code::NONE, "Produce: {p:?}");
    let p = c.produce(9, "lo", 0, record_batch(&["d", "e"], 2000, None)?, 1)?;
    ensure!(p.error_code == code::NONE, "Produce: {p:?}");

    let earliest = c.list_offset("lo", 0, EARLIEST)?;
    ensure!(earliest.error_code == code::NONE && earliest.offset == 0, "earliest: {earliest:?}");
    let latest = c.list_offset("lo", 0, LATEST)?;
    ensure!(latest.error_code == code::NONE && latest.offset == 5, "latest: {latest:?}");

    // The first offset whose timestamp is at or after the target.
    let between = c.list_offset("lo", 0, 1500)?;
    ensure!(between.error_code == code::NONE, "by timestamp 1500: {between:?}");
    ensure!(between.offset == 3 && between.timestamp == 2000, "by timestamp 1500: {between:?}, want offset 3 ts 2000");
    let exact = c.list_offset("lo", 0, 2001)?;
    ensure!(exact.offset == 4 && exact.timestamp == 2001, "by timestamp 2001: {exact:?}, want offset 4");
    let inside_first = c.list_offset("lo", 0, 1001)?;
    ensure!(inside_first.offset == 1 && inside_first.timestamp == 1001, "by timestamp 1001: {inside_first:?}, want offset 1");
    let before_all = c.list_offset("lo", 0, 10)?;
    ensure!(before_all.offset == 0, "by timestamp 10: {before_all:?}, want offset 0");
    let after_all = c.list_offset("lo", 0, 9_999)?;
    ensure!(
        after_all.error_code == code::NONE && after_all.offset == -1,
        "by timestamp after every record: {after_all:?}, want offset -1"
    );
    let unknown = c.list_offset("lo", 3, LATEST)?;
    ensure!(unknown.error_code == code::UNKNOWN_TOPIC_OR_PARTITION, "unknown partition: {unknown:?}");
    Ok(())
}

#[test]
fn delete_topics_then_produce_is_unknown_topic() -> Result<()> {
    let broker = TestBroker::start_with(BrokerOpts { auto_create_topics: false, ..Default::default() })?;
    let mut c = broker.client()?;
    c.create_topic_ok("del", 1)?;
    let p = c.produce(9, "del", 0, record_batch(&["x"], common::now_ms(), None)?, 1)?;
    ensure!(p.error_code == code::NONE, "Produce before delete: {p:?}");

    let mut req = DeleteTopicsRequest::default();
    req.topic_names = vec![topic_name("del")];
    req.timeout_ms = 10_000;
    let resp = c.call(4, &req)?;
    ensure!(resp.responses.len() == 1, "DeleteTopics answered {:?}", resp.responses);
    ensure!(resp.responses[0].error_code == code::NONE, "DeleteTopics: error {}", resp.responses[0].error_code);

    let p = c.produce(9, "del", 0, record_batch(&["y"], common::now_ms(), None)?, 1)?;
    ensure!(p.error_code == code::UNKNOWN_TOPIC_OR_PARTITION, "Produce after delete: error {}, want 3", p.error_code);
    let md = c.metadata(11, None, false)?;
    ensure!(md.topics.is_empty(), "deleted topic still listed: {:?}", md.topics);
    let again = c.call(4, &req)?;
    ensure!(
        again.responses[0].error_code == code::UNKNOWN_TOPIC_OR_PARTITION,
        "second DeleteTopics: error {}",
        again.responses[0].error_code
    );
    // The name can be used again, starting from offset 0.
    c.create_topic_ok("del", 1)?;
    let p = c.produce(9, "del", 0, record_batch(&["z"], common::now_ms(), None)?, 1)?;
    ensure!(p.error_code == code::NONE && p.base_offset == 0, "Produce to the re-created topic: {p:?}");
    Ok(())
}

#[test]
fn create_partitions_grows_a_topic() -> Result<()> {
    let broker = TestBroker::start_with(BrokerOpts { auto_create_topics: false, ..Default::default() })?;
    let mut c = broker.client()?;
    c.create_topic_ok("grow", 1)?;
    let request = |count: i32| {
        let mut t = CreatePartitionsTopic::default();
        t.name = topic_name("grow");
        t.count = count;
        t.assignments = None;
        let mut req = CreatePartitionsRequest::default();
        req.topics = vec![t];
        req.timeout_ms = 10_000;
        req
    };
    let resp = c.call(3, &request(3))?;
    ensure!(resp.results.len() == 1 && resp.results[0].error_code == code::NONE, "CreatePartitions to 3: {resp:?}");
    let md = c.metadata(11, Some(&["grow"]), false)?;
    ensure!(md.topics[0].partitions.len() == 3, "after growing: {} partitions", md.topics[0].partitions.len());
    let p = c.produce(9, "grow", 2, record_batch(&["new"], common::now_ms(), None)?, 1)?;
    ensure!(p.error_code == code::NONE && p.base_offset == 0, "Produce to new partition 2: {p:?}");
    // Shrinking is refused.
    let resp = c.call(3, &request(2))?;
    ensure!(resp.results[0].error_code == code::INVALID_PARTITIONS, "CreatePartitions to 2 of 3: {resp:?}");
    let md = c.metadata(11, Some(&["grow"]), false)?;
    ensure!(md.topics[0].partitions.len() == 3, "refused shrink changed the count");
    Ok(())
}

#[test]
fn describe_configs_of_topic_and_broker() -> Result<()> {
    let broker = TestBroker::start_with(BrokerOpts { auto_create_topics: false, ..Default::default() })?;
    let mut c = broker.client()?;
    c.create_topic_ok("cfg", 1)?;
    let resource = |kind: i8, name: &str, keys: Option<Vec<&str>>| {
        let mut r = DescribeConfigsResource::default();
        r.resource_type = kind;
        r.resource_name = StrBytes::from_string(name.to_string());
        r.configuration_keys = keys.map(|ks| ks.into_iter().map(|k| StrBytes::from_string(k.to_string())).collect());
        r
    };
    const TOPIC: i8 = 2;
    const BROKER: i8 = 4;
    let mut req = DescribeConfigsRequest::default();
    req.resources = vec![resource(TOPIC, "cfg", None), resource(BROKER, "1", None), resource(TOPIC, "absent", None)];
    let resp = c.call(4, &req)?;
    ensure!(resp.results.len() == 3, "DescribeConfigs answered {} resources", resp.results.len());
    let topic = resp.results.iter().find(|r| r.resource_name.as_str() == "cfg");
    let topic = topic.ok_or_else(|| anyhow::anyhow!("no result for topic cfg: {resp:?}"))?;
    ensure!(topic.error_code == code::NONE, "DescribeConfigs topic: error {}", topic.error_code);
    let names: Vec<&str> = topic.configs.iter().map(|c| c.name.as_str()).collect();
    ensure!(names.contains(&"retention.ms"), "topic configs lack retention.ms: {names:?}");
    ensure!(names.contains(&"cleanup.policy"), "topic configs lack cleanup.policy: {names:?}");
    let broker_result = resp.results.iter().find(|r| r.resource_type == BROKER);
    ensure!(
        broker_result.is_some_and(|r| r.error_code == code::NONE && !r.configs.is_empty()),
        "DescribeConfigs broker: {broker_result:?}"
    );
    let absent = resp.results.iter().find(|r| r.resource_name.as_str() == "absent");
    ensure!(
        absent.is_some_and(|r| r.error_code == code::UNKNOWN_TOPIC_OR_PARTITION),
        "DescribeConfigs of an unknown topic: {absent:?}"
    );

    // Asking for one key returns just that key.
    let mut req = DescribeConfigsRequest::default();
    req.resources = vec![resource(TOPIC, "cfg", Some(vec!["retention.ms"]))];
    let resp = c.call(1, &req)?;
    let names: Vec<&str> = resp.results[0].configs.iter().map(|c| c.name.as_str()).collect();
    ensure!(names == vec!["retention.ms"], "DescribeConfigs v1 of retention.ms only: {names:?}");
    Ok(())
}

#[test]
fn describe_cluster_lists_this_broker() -> Result<()> {
    let broker = TestBroker::start()?;
    let mut c = broker.client()?;
    for version in [0, 1] {
        let resp = c.call(version, &DescribeClusterRequest::default())?;
        ensure!(resp.error_code == code::NONE, "DescribeCluster v{version}: error {}", resp.error_code);
        ensure!(!resp.cluster_id.is_empty(), "DescribeCluster v{version}: empty cluster id");
        ensure!(resp.controller_id.0 == 1, "DescribeCluster v{version}: controller {}", resp.controller_id.0);
        ensure!(resp.brokers.len() == 1, "DescribeCluster v{version}: brokers {:?}", resp.brokers);
        let b = &resp.brokers[0];
        ensure!(
            b.broker_id.0 == 1 && b.host.as_str() == "127.0.0.1" && b.port == i32::from(broker.ports.kafka),
            "DescribeCluster v{version}: broker {b:?}"
        );
        // The same cluster id as Metadata reports.
        let md = c.metadata(11, None, false)?;
        ensure!(
            md.cluster_id.as_ref().map(|s| s.as_str()) == Some(resp.cluster_id.as_str()),
            "cluster id differs: Metadata {:?} vs DescribeCluster {:?}",
            md.cluster_id,
            resp.cluster_id
        );
    }
    Ok(())
}

/// InitProducerId for an idempotent (non-transactional) producer: (producer id, epoch).
pub fn init_producer_id(c: &mut KafkaClient) -> Result<(i64, i16)> {
    let mut req = InitProducerIdRequest::default();
    req.transactional_id = None;
    req.transaction_timeout_ms = 60_000;
    let resp = c.call(4, &req)?;
    ensure!(resp.error_code == code::NONE, "InitProducerId: error {}", resp.error_code);
    ensure!(resp.producer_id.0 >= 0 && resp.producer_epoch >= 0, "InitProducerId: {resp:?}");
    Ok((resp.producer_id.0, resp.producer_epoch))
}

#[test]
fn idempotent_produce_answers_duplicates_and_refuses_gaps() -> Result<()> {
    let broker = TestBroker::start()?;
    let mut c = broker.client()?;
    c.create_topic_ok("idem", 1)?;
    let (pid, epoch) = init_producer_id(&mut c)?;
    let (pid2, _) = init_producer_id(&mut c)?;
    ensure!(pid2 != pid, "two InitProducerId calls returned the same producer id {pid}");

    let seq = |base_sequence| Some(Idempotence { producer_id: pid, producer_epoch: epoch, base_sequence });
    let t0 = common::now_ms();
    let b0 = record_batch(&["a", "b", "c"], t0, seq(0))?;
    let b3 = record_batch(&["d", "e"], t0, seq(3))?;

    let p = c.produce(9, "idem", 0, b0.clone(), -1)?;
    ensure!(p.error_code == code::NONE && p.base_offset == 0, "first idempotent batch: {p:?}");
    let p = c.produce(9, "idem", 0, b3.clone(), -1)?;
    ensure!(p.error_code == code::NONE && p.base_offset == 3, "second idempotent batch: {p:?}");

    // Resending the last batch, and an earlier one: answered with the original offsets, nothing appended.
    let p = c.produce(9, "idem", 0, b3, -1)?;
    ensure!(p.error_code == code::NONE, "duplicate of the last batch: error {}", p.error_code);
    ensure!(p.base_offset == 3, "duplicate of the last batch: base offset {}, want the original 3", p.base_offset);
    let p = c.produce(9, "idem", 0, b0, -1)?;
    ensure!(p.error_code == code::NONE, "duplicate of an earlier batch: error {}", p.error_code);
    ensure!(p.base_offset == 0, "duplicate of an earlier batch: base offset {}, want the original 0", p.base_offset);
    ensure!(c.latest_offset("idem", 0)? == 5, "duplicates were appended");

    // A gap in the sequence.
    let p = c.produce(9, "idem", 0, record_batch(&["gap"], t0, seq(10))?, -1)?;
    ensure!(
        p.error_code == code::OUT_OF_ORDER_SEQUENCE_NUMBER,
        "sequence 10 after 4: error {}, want OUT_OF_ORDER_SEQUENCE_NUMBER 45",
        p.error_code
    );
    ensure!(c.latest_offset("idem", 0)? == 5, "the out-of-order batch was appended");

    // The next sequence in order still works.
    let p = c.produce(9, "idem", 0, record_batch(&["f"], t0, seq(5))?, -1)?;
    ensure!(p.error_code == code::NONE && p.base_offset == 5, "sequence 5: {p:?}");
    let fetched = decode_records(&c.fetch(12, "idem", 0, 0, 0, 1)?.records)?;
    let values: Vec<&str> = fetched.iter().map(|r| r.value.as_str()).collect();
    ensure!(values == ["a", "b", "c", "d", "e", "f"], "log holds {values:?}");
    Ok(())
}

#[test]
fn fetch_long_poll_waits_on_an_empty_partition() -> Result<()> {
    let broker = TestBroker::start()?;
    let mut c = broker.client()?;
    c.create_topic_ok("lp", 1)?;
    let started = Instant::now();
    let p = c.fetch(12, "lp", 0, 0, 500, 1)?;
    let waited = started.elapsed();
    ensure!(p.error_code == code::NONE, "long poll: error {}", p.error_code);
    ensure!(decode_records(&p.records)?.is_empty(), "long poll on an empty partition returned records");
    ensure!(waited >= Duration::from_millis(400), "Fetch max_wait 500 ms returned after {waited:?}");
    ensure!(waited < Duration::from_secs(5), "Fetch max_wait 500 ms took {waited:?}");
    Ok(())
}

#[test]
fn fetch_long_poll_returns_early_when_a_produce_arrives() -> Result<()> {
    let broker = TestBroker::start()?;
    let mut consumer = broker.client()?;
    let mut producer = broker.client()?;
    producer.create_topic_ok("lp2", 1)?;
    const MAX_WAIT_MS: i32 = 20_000;
    let started = Instant::now();
    let correlation = consumer.send(12, &common::fetch_request("lp2", 0, 0, MAX_WAIT_MS, 1))?;
    // The fetch must be parked: no answer while the partition is empty.
    ensure!(
        !consumer.answers_within(Duration::from_millis(300))?,
        "Fetch with min_bytes 1 answered at once on an empty partition"
    );
    let p = producer.produce(9, "lp2", 0, record_batch(&["wake"], common::now_ms(), None)?, 1)?;
    ensure!(p.error_code == code::NONE, "Produce: {p:?}");
    let resp: kafka_protocol::messages::FetchResponse = consumer.receive(ApiKey::Fetch, 12, correlation)?;
    let waited = started.elapsed();
    ensure!(waited < Duration::from_millis(MAX_WAIT_MS as u64 / 2), "parked Fetch returned only after {waited:?}");
    let part = &resp.responses[0].partitions[0];
    let got = decode_records(&part.records)?;
    ensure!(
        got.len() == 1 && got[0].value == "wake" && got[0].offset == 0,
        "woken Fetch returned {got:?} (hw {})",
        part.high_watermark
    );
    Ok(())
}

#[test]
fn pipelined_requests_are_answered_in_order() -> Result<()> {
    let broker = TestBroker::start()?;
    let mut c = broker.client()?;
    c.create_topic_ok("pipe", 1)?;
    let t0 = common::now_ms();
    let mut sent = Vec::new();
    for i in 0..5 {
        let req = common::produce_request("pipe", 0, record_batch(&[&format!("v{i}")], t0, None)?, 1);
        sent.push(c.send(9, &req)?);
    }
    for (i, correlation) in sent.into_iter().enumerate() {
        let resp: kafka_protocol::messages::ProduceResponse = c.receive(ApiKey::Produce, 9, correlation)?;
        let p = &resp.responses[0].partition_responses[0];
        ensure!(p.error_code == code::NONE && p.base_offset == i as i64, "pipelined produce {i}: {p:?}");
    }
    // acks=0 gets no response: the next request's answer is the next frame.
    let req = common::produce_request("pipe", 0, record_batch(&["silent"], t0, None)?, 0);
    c.send(9, &req)?;
    let latest = poll_until(Duration::from_secs(10), "acks=0 record appended", || {
        let latest = c.latest_offset("pipe", 0)?;
        Ok((latest == 6).then_some(latest))
    })?;
    ensure!(latest == 6, "latest offset {latest}");
    Ok(())
}

#[test]
fn fetch_returns_a_whole_first_batch_larger_than_max_bytes() -> Result<()> {
    let broker = TestBroker::start()?;
    let mut c = broker.client()?;
    c.create_topic_ok("kip74", 1)?;
    let value = "v".repeat(2048);
    let p = c.produce(9, "kip74", 0, record_batch(&[&value, &value, &value], common::now_ms(), None)?, 1)?;
    ensure!(p.error_code == code::NONE, "Produce: {p:?}");
    let p = c.produce(9, "kip74", 0, record_batch(&["after"], common::now_ms(), None)?, 1)?;
    ensure!(p.error_code == code::NONE && p.base_offset == 3, "Produce: {p:?}");
    for version in [4, 12] {
        let mut req = common::fetch_request("kip74", 0, 0, 0, 1);
        req.max_bytes = 100;
        req.topics[0].partitions[0].partition_max_bytes = 100;
        let resp = c.call(version, &req)?;
        let part = &resp.responses[0].partitions[0];
        ensure!(part.error_code == code::NONE, "Fetch v{version}: error {}", part.error_code);
        let got = decode_records(&part.records)?;
        let offsets: Vec<i64> = got.iter().map(|r| r.offset).collect();
        // The first batch whole (KIP-74); nothing beyond it fits the limit.
        ensure!(offsets == vec![0, 1, 2], "Fetch v{version} with max_bytes 100: offsets {offsets:?}");
        ensure!(got.iter().all(|r| r.value.len() == 2048), "Fetch v{version}: truncated values");
    }
    Ok(())
}

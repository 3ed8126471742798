//! Probes of the admin APIs over reassignment, leader election and log directories (a single broker,
//! id 1): each version answers, and answers what Kafka would — including the refusals.

use anyhow::{ensure, Result};
use kafka_protocol::messages::*;

use super::{create_one_topic, expect_code, s, Fixture, TOPIC};
use crate::common::{code, topic_name};

const LOG_DIR_NOT_FOUND: i16 = 57;
const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
const ELECTION_NOT_NEEDED: i16 = 84;
const NO_REASSIGNMENT_IN_PROGRESS: i16 = 85;
const ELECTION_UNCLEAN: i8 = 1;

fn reassignable(partition: i32, replicas: Option<Vec<i32>>) -> alter_partition_reassignments_request::ReassignablePartition {
    let mut p = alter_partition_reassignments_request::ReassignablePartition::default();
    p.partition_index = partition;
    p.replicas = replicas.map(|r| r.into_iter().map(BrokerId).collect());
    p
}

pub fn alter_partition_reassignments(fx: &mut Fixture, v: i16) -> Result<()> {
    let name = format!("reassigned-v{v}");
    create_one_topic(fx, &name, 1)?;
    let mut t = alter_partition_reassignments_request::ReassignableTopic::default();
    t.name = topic_name(&name);
    // (entry, expected code): the current placement (accepted), a cancel with no move, a broker that
    // does not exist, a duplicate, a partition that does not exist.
    let cases = [
        (reassignable(0, Some(vec![1])), code::NONE),
        (reassignable(0, None), NO_REASSIGNMENT_IN_PROGRESS),
        (reassignable(0, Some(vec![9])), INVALID_REPLICA_ASSIGNMENT),
        (reassignable(0, Some(vec![1, 1])), INVALID_REPLICA_ASSIGNMENT),
        (reassignable(7, Some(vec![1])), code::UNKNOWN_TOPIC_OR_PARTITION),
    ];
    for (entry, want) in cases {
        let mut req = AlterPartitionReassignmentsRequest::default();
        req.timeout_ms = 10_000;
        t.partitions = vec![entry.clone()];
        req.topics = vec![t.clone()];
        let resp = fx.call(v, &req)?;
        expect_code("request", resp.error_code, code::NONE)?;
        let got = resp.responses.first().and_then(|t| t.partitions.first()).map(|p| p.error_code);
        ensure!(got == Some(want), "{entry:?}: answered {:?}, want {want}", resp.responses);
    }
    Ok(())
}

pub fn list_partition_reassignments(fx: &mut Fixture, v: i16) -> Result<()> {
    let mut req = ListPartitionReassignmentsRequest::default();
    req.timeout_ms = 10_000;
    req.topics = None;
    let resp = fx.call(v, &req)?;
    expect_code("request", resp.error_code, code::NONE)?;
    ensure!(resp.topics.is_empty(), "a single broker has no move running: {:?}", resp.topics);
    let mut t = list_partition_reassignments_request::ListPartitionReassignmentsTopics::default();
    t.name = topic_name(TOPIC);
    t.partition_indexes = vec![0];
    req.topics = Some(vec![t]);
    let resp = fx.call(v, &req)?;
    expect_code("request", resp.error_code, code::NONE)?;
    ensure!(resp.topics.is_empty(), "{:?}", resp.topics);
    Ok(())
}

pub fn elect_leaders(fx: &mut Fixture, v: i16) -> Result<()> {
    let types: &[i8] = if v >= 1 { &[0, ELECTION_UNCLEAN] } else { &[0] };
    for election in types {
        let mut tp = elect_leaders_request::TopicPartitions::default();
        tp.topic = topic_name(TOPIC);
        tp.partitions = vec![0, 5];
        let mut req = ElectLeadersRequest::default();
        req.election_type = *election;
        req.topic_partitions = Some(vec![tp]);
        req.timeout_ms = 10_000;
        let resp = fx.call(v, &req)?;
        expect_code("request", resp.error_code, code::NONE)?;
        let codes: Vec<(i32, i16)> =
            resp.replica_election_results.iter().flat_map(|t| t.partition_result.iter().map(|p| (p.partition_id, p.error_code))).collect();
        ensure!(
            codes == vec![(0, ELECTION_NOT_NEEDED), (5, code::UNKNOWN_TOPIC_OR_PARTITION)],
            "election type {election}: {codes:?}"
        );
    }
    Ok(())
}

/// The broker's log directory as DescribeLogDirs reports it, checked: one directory, no error, the
/// seeded partition with a size.
fn log_dir(fx: &Fixture, v: i16) -> Result<String> {
    let mut req = DescribeLogDirsRequest::default();
    req.topics = None;
    let resp = fx.call(v, &req)?;
    expect_code("request", resp.error_code, code::NONE)?;
    ensure!(resp.results.len() == 1, "one log dir per broker: {:?}", resp.results);
    let d = &resp.results[0];
    expect_code("log dir", d.error_code, code::NONE)?;
    let seeded = d.topics.iter().find(|t| t.name.as_str() == TOPIC).and_then(|t| t.partitions.iter().find(|p| p.partition_index == 0));
    ensure!(seeded.is_some_and(|p| p.partition_size > 0 && p.offset_lag == 0), "{TOPIC}-0 in {:?}", d.topics);
    if v >= 4 {
        ensure!(d.total_bytes > 0 && d.usable_bytes >= 0 && d.usable_bytes <= d.total_bytes, "total {} usable {}", d.total_bytes, d.usable_bytes);
    }
    Ok(d.log_dir.to_string())
}

pub fn describe_log_dirs(fx: &mut Fixture, v: i16) -> Result<()> {
    let dir = log_dir(fx, v)?;
    ensure!(!dir.is_empty(), "empty log dir name");
    Ok(())
}

pub fn alter_replica_log_dirs(fx: &mut Fixture, v: i16) -> Result<()> {
    let dir = log_dir(fx, 4)?;
    for (path, want) in [(dir.as_str(), code::NONE), ("/no/such/dir", LOG_DIR_NOT_FOUND)] {
        let mut t = alter_replica_log_dirs_request::AlterReplicaLogDirTopic::default();
        t.name = topic_name(TOPIC);
        t.partitions = vec![0];
        let mut d = alter_replica_log_dirs_request::AlterReplicaLogDir::default();
        d.path = s(path);
        d.topics = vec![t];
        let mut req = AlterReplicaLogDirsRequest::default();
        req.dirs = vec![d];
        let resp = fx.call(v, &req)?;
        let got = resp.results.first().and_then(|t| t.partitions.first()).map(|p| p.error_code);
        ensure!(got == Some(want), "{path}: {:?}, want {want}", resp.results);
    }
    Ok(())
}

//! Consumer groups over the wire: coordinator lookup, the join/sync/heartbeat/leave life cycle of one and of
//! two members (a rebalance), member-checked offset commits, describe/list/delete.

mod common;

use std::time::Duration;

use anyhow::{anyhow, ensure, Result};
use bytes::Bytes;
use kafka_protocol::messages::{
    join_group_request::JoinGroupRequestProtocol, leave_group_request::MemberIdentity,
    offset_commit_request::OffsetCommitRequestPartition, offset_commit_request::OffsetCommitRequestTopic,
    offset_fetch_request::OffsetFetchRequestTopic, sync_group_request::SyncGroupRequestAssignment,
    DeleteGroupsRequest, DescribeGroupsRequest, FindCoordinatorRequest, GroupId, HeartbeatRequest,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, ListGroupsRequest, MetadataRequest, OffsetCommitRequest,
    OffsetFetchRequest, SyncGroupRequest,
};
use kafka_protocol::protocol::StrBytes;

use common::{code, poll_until, topic_name, KafkaClient, TestBroker};

const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const MEMBER_ID_REQUIRED: i16 = 79;
const INVALID_TOPIC_EXCEPTION: i16 = 17;

/// Versions used throughout (flexible where Kafka 2.4+ clients use them).
const JOIN_V: i16 = 5;
const SYNC_V: i16 = 3;
const HEARTBEAT_V: i16 = 3;
const LEAVE_V: i16 = 3;

fn s(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn gid(group: &str) -> GroupId {
    GroupId(s(group))
}

fn join_request(group: &str, member_id: &str, metadata: &'static [u8]) -> JoinGroupRequest {
    let mut p = JoinGroupRequestProtocol::default();
    p.name = s("range");
    p.metadata = Bytes::from_static(metadata);
    let mut req = JoinGroupRequest::default();
    req.group_id = gid(group);
    req.session_timeout_ms = 10_000;
    req.rebalance_timeout_ms = 10_000;
    req.member_id = s(member_id);
    req.protocol_type = s("consumer");
    req.protocols = vec![p];
    req
}

/// JoinGroup as a new member: the first call hands out a member id (MEMBER_ID_REQUIRED), the second joins.
fn join_new_member(c: &mut KafkaClient, group: &str, metadata: &'static [u8]) -> Result<JoinGroupResponse> {
    let first = c.call(JOIN_V, &join_request(group, "", metadata))?;
    ensure!(first.error_code == MEMBER_ID_REQUIRED, "first JoinGroup v{JOIN_V}: error {}, want 79", first.error_code);
    ensure!(!first.member_id.is_empty(), "MEMBER_ID_REQUIRED without a member id");
    let joined = c.call(JOIN_V, &join_request(group, first.member_id.as_str(), metadata))?;
    ensure!(joined.error_code == code::NONE, "JoinGroup with member id: {joined:?}");
    ensure!(joined.member_id == first.member_id, "JoinGroup answered another member id");
    Ok(joined)
}

fn sync(c: &mut KafkaClient, group: &str, generation: i32, member: &str, assignments: &[(&str, &'static [u8])]) -> Result<Bytes> {
    let mut req = SyncGroupRequest::default();
    req.group_id = gid(group);
    req.generation_id = generation;
    req.member_id = s(member);
    req.protocol_type = Some(s("consumer"));
    req.protocol_name = Some(s("range"));
    req.assignments = assignments
        .iter()
        .map(|(m, a)| {
            let mut x = SyncGroupRequestAssignment::default();
            x.member_id = s(m);
            x.assignment = Bytes::from_static(a);
            x
        })
        .collect();
    let resp = c.call(SYNC_V, &req)?;
    ensure!(resp.error_code == code::NONE, "SyncGroup {member}: error {}", resp.error_code);
    Ok(resp.assignment)
}

fn heartbeat(c: &mut KafkaClient, group: &str, generation: i32, member: &str) -> Result<i16> {
    let mut req = HeartbeatRequest::default();
    req.group_id = gid(group);
    req.generation_id = generation;
    req.member_id = s(member);
    Ok(c.call(HEARTBEAT_V, &req)?.error_code)
}

fn describe(c: &mut KafkaClient, group: &str) -> Result<(String, Vec<String>)> {
    let mut req = DescribeGroupsRequest::default();
    req.groups = vec![gid(group)];
    let resp = c.call(5, &req)?;
    let g = resp.groups.first().ok_or_else(|| anyhow!("DescribeGroups answered no group"))?;
    ensure!(g.error_code == code::NONE, "DescribeGroups {group}: error {}", g.error_code);
    let mut members: Vec<String> = g.members.iter().map(|m| m.member_id.to_string()).collect();
    members.sort();
    Ok((g.group_state.to_string(), members))
}

fn commit(c: &mut KafkaClient, group: &str, generation: i32, member: &str, offset: i64) -> Result<i16> {
    let mut p = OffsetCommitRequestPartition::default();
    p.partition_index = 0;
    p.committed_offset = offset;
    let mut t = OffsetCommitRequestTopic::default();
    t.name = topic_name("gt");
    t.partitions = vec![p];
    let mut req = OffsetCommitRequest::default();
    req.group_id = gid(group);
    req.generation_id_or_member_epoch = generation;
    req.member_id = s(member);
    req.topics = vec![t];
    let resp = c.call(7, &req)?;
    resp.topics
        .first()
        .and_then(|t| t.partitions.first())
        .map(|p| p.error_code)
        .ok_or_else(|| anyhow!("OffsetCommit answered no partition: {resp:?}"))
}

fn committed(c: &mut KafkaClient, group: &str) -> Result<i64> {
    let mut t = OffsetFetchRequestTopic::default();
    t.name = topic_name("gt");
    t.partition_indexes = vec![0];
    let mut req = OffsetFetchRequest::default();
    req.group_id = gid(group);
    req.topics = Some(vec![t]);
    let resp = c.call(5, &req)?;
    ensure!(resp.error_code == code::NONE, "OffsetFetch {group}: error {}", resp.error_code);
    resp.topics
        .first()
        .and_then(|t| t.partitions.first())
        .map(|p| p.committed_offset)
        .ok_or_else(|| anyhow!("OffsetFetch answered no partition: {resp:?}"))
}

fn leave(c: &mut KafkaClient, group: &str, member: &str) -> Result<()> {
    let mut m = MemberIdentity::default();
    m.member_id = s(member);
    let mut req = LeaveGroupRequest::default();
    req.group_id = gid(group);
    req.members = vec![m];
    let resp = c.call(LEAVE_V, &req)?;
    ensure!(resp.error_code == code::NONE, "LeaveGroup: {resp:?}");
    ensure!(resp.members.iter().all(|m| m.error_code == code::NONE), "LeaveGroup member errors: {resp:?}");
    Ok(())
}

#[test]
fn find_coordinator_points_at_this_broker() -> Result<()> {
    let broker = TestBroker::start()?;
    let mut c = broker.client()?;
    let mut req = FindCoordinatorRequest::default();
    req.key = s("any-group");
    for version in [0, 3] {
        let resp = c.call(version, &req)?;
        ensure!(resp.error_code == code::NONE, "FindCoordinator v{version}: {resp:?}");
        ensure!(
            resp.node_id.0 == 1 && resp.port == i32::from(broker.ports.kafka) && resp.host.as_str() == "127.0.0.1",
            "FindCoordinator v{version}: {resp:?}"
        );
    }
    let mut req = FindCoordinatorRequest::default();
    req.coordinator_keys = vec![s("g-a"), s("g-b")];
    let resp = c.call(4, &req)?;
    ensure!(resp.coordinators.len() == 2, "FindCoordinator v4: {resp:?}");
    for co in &resp.coordinators {
        ensure!(co.error_code == code::NONE && co.node_id.0 == 1 && co.port == i32::from(broker.ports.kafka), "{co:?}");
    }
    // The lookup created the internal offsets topic: listed as internal, closed to producers.
    let mut all_topics = MetadataRequest::default();
    all_topics.topics = None;
    let listed = c.call(9, &all_topics)?;
    let offsets = listed.topics.iter().find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some("__consumer_offsets"));
    ensure!(offsets.is_some_and(|t| t.is_internal && t.partitions.len() == 8), "offsets topic in Metadata: {offsets:?}");
    let batch = common::record_batch(&["not yours"], 0, None)?;
    let code = c.produce(9, "__consumer_offsets", 0, batch, -1)?.error_code;
    ensure!(code == INVALID_TOPIC_EXCEPTION, "produce to the offsets topic: error {code}, want 17");
    Ok(())
}

#[test]
fn one_member_life_cycle() -> Result<()> {
    let broker = TestBroker::start()?;
    let mut c = broker.client()?;
    c.create_topic_ok("gt", 1)?;
    c.wait_coordinator("solo")?;
    let joined = join_new_member(&mut c, "solo", b"meta-a")?;
    let me = joined.member_id.to_string();
    ensure!(joined.leader.as_str() == me, "the only member is not the leader: {joined:?}");
    ensure!(joined.generation_id >= 1, "generation {}", joined.generation_id);
    ensure!(joined.protocol_name.as_ref().map(|p| p.as_str()) == Some("range"), "protocol {:?}", joined.protocol_name);
    ensure!(
        joined.members.len() == 1 && joined.members[0].metadata.as_ref() == b"meta-a",
        "leader's member list: {:?}",
        joined.members
    );
    let generation = joined.generation_id;
    let assignment = sync(&mut c, "solo", generation, &me, &[(&me, b"assign-a")])?;
    ensure!(assignment.as_ref() == b"assign-a", "SyncGroup returned assignment {assignment:?}");

    ensure!(heartbeat(&mut c, "solo", generation, &me)? == code::NONE, "heartbeat of a stable member");
    let code = heartbeat(&mut c, "solo", generation + 1, &me)?;
    ensure!(code == ILLEGAL_GENERATION, "heartbeat with a wrong generation: error {code}, want 22");
    let code = heartbeat(&mut c, "solo", generation, "stranger")?;
    ensure!(code == UNKNOWN_MEMBER_ID, "heartbeat of an unknown member: error {code}, want 25");

    let (state, members) = describe(&mut c, "solo")?;
    ensure!(state == "Stable" && members == vec![me.clone()], "DescribeGroups: {state} {members:?}");
    let listed = c.call(4, &ListGroupsRequest::default())?;
    ensure!(
        listed.groups.iter().any(|g| g.group_id.0.as_str() == "solo"),
        "ListGroups lacks solo: {:?}",
        listed.groups
    );

    // Commits are checked against the member and generation.
    ensure!(commit(&mut c, "solo", generation, &me, 17)? == code::NONE, "commit by the member");
    let code = commit(&mut c, "solo", generation + 1, &me, 18)?;
    ensure!(code == ILLEGAL_GENERATION, "commit with a wrong generation: error {code}, want 22");
    let code = commit(&mut c, "solo", generation, "stranger", 19)?;
    ensure!(code == UNKNOWN_MEMBER_ID, "commit by an unknown member: error {code}, want 25");
    ensure!(committed(&mut c, "solo")? == 17, "a refused commit changed the committed offset");

    leave(&mut c, "solo", &me)?;
    let (state, members) = describe(&mut c, "solo")?;
    ensure!(state == "Empty" && members.is_empty(), "after LeaveGroup: {state} {members:?}");

    let mut req = DeleteGroupsRequest::default();
    req.groups_names = vec![gid("solo")];
    let resp = c.call(2, &req)?;
    ensure!(resp.results.len() == 1 && resp.results[0].error_code == code::NONE, "DeleteGroups: {resp:?}");
    ensure!(committed(&mut c, "solo")? == -1, "offsets of a deleted group are still there");
    Ok(())
}

#[test]
fn a_second_member_triggers_a_rebalance() -> Result<()> {
    let broker = TestBroker::start()?;
    let mut a = broker.client()?;
    a.create_topic_ok("gt", 1)?;
    a.wait_coordinator("pair")?;
    let joined_a = join_new_member(&mut a, "pair", b"meta-a")?;
    let member_a = joined_a.member_id.to_string();
    sync(&mut a, "pair", joined_a.generation_id, &member_a, &[(&member_a, b"all")])?;

    std::thread::scope(|scope| -> Result<()> {
        // B joins; its JoinGroup completes only once A has rejoined.
        let b_thread = scope.spawn(|| -> Result<(JoinGroupResponse, KafkaClient)> {
            let mut b = broker.client()?;
            let joined = join_new_member(&mut b, "pair", b"meta-b")?;
            Ok((joined, b))
        });
        // A learns of the rebalance from its heartbeat.
        poll_until(Duration::from_secs(20), "heartbeat answers REBALANCE_IN_PROGRESS", || {
            let code = heartbeat(&mut a, "pair", joined_a.generation_id, &member_a)?;
            ensure!(code == code::NONE || code == REBALANCE_IN_PROGRESS, "heartbeat during the join: error {code}");
            Ok((code == REBALANCE_IN_PROGRESS).then_some(()))
        })?;
        let rejoined_a = a.call(JOIN_V, &join_request("pair", &member_a, b"meta-a"))?;
        ensure!(rejoined_a.error_code == code::NONE, "A's rejoin: {rejoined_a:?}");
        let (joined_b, mut b) = b_thread.join().map_err(|_| anyhow!("B's thread panicked"))??;
        let member_b = joined_b.member_id.to_string();

        ensure!(rejoined_a.generation_id == joined_b.generation_id, "A and B see different generations");
        ensure!(rejoined_a.generation_id > joined_a.generation_id, "the rebalance did not bump the generation");
        ensure!(rejoined_a.leader == joined_b.leader, "A and B see different leaders");
        let generation = rejoined_a.generation_id;
        let (leader, leader_id, follower_id) = if rejoined_a.leader.as_str() == member_a {
            ensure!(
                rejoined_a.members.len() == 2 && joined_b.members.is_empty(),
                "member lists: A {:?} B {:?}",
                rejoined_a.members,
                joined_b.members
            );
            (&mut a, member_a.clone(), member_b.clone())
        } else {
            ensure!(
                joined_b.members.len() == 2 && rejoined_a.members.is_empty(),
                "member lists: A {:?} B {:?}",
                rejoined_a.members,
                joined_b.members
            );
            (&mut b, member_b.clone(), member_a.clone())
        };
        // The follower's SyncGroup (on a connection of its own) waits for the leader's assignments.
        let follower_thread = {
            let follower_id = follower_id.clone();
            let broker = &broker;
            scope.spawn(move || -> Result<Bytes> {
                let mut c = broker.client()?;
                sync(&mut c, "pair", generation, &follower_id, &[])
            })
        };
        let mine = sync(leader, "pair", generation, &leader_id, &[(&leader_id, b"p-leader"), (&follower_id, b"p-follower")])?;
        let theirs = follower_thread.join().map_err(|_| anyhow!("follower's thread panicked"))??;
        ensure!(mine.as_ref() == b"p-leader", "leader's assignment {mine:?}");
        ensure!(theirs.as_ref() == b"p-follower", "follower's assignment {theirs:?}");
        ensure!(heartbeat(leader, "pair", generation, &leader_id)? == code::NONE, "leader heartbeat after sync");
        let (state, members) = describe(leader, "pair")?;
        let mut want = vec![member_a.clone(), member_b.clone()];
        want.sort();
        ensure!(state == "Stable" && members == want, "after the rebalance: {state} {members:?}");
        Ok(())
    })
}

//! The coordinator through its async API: concurrent members under paused tokio time, durable
//! offsets across reopen, deletion, and every response encodable at every advertised version.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use chronik_group::{ClientInfo, GroupConfig, GroupCoordinator, PartitionExists};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{OffsetCommitRequestPartition, OffsetCommitRequestTopic};
use kafka_protocol::messages::offset_fetch_request::{OffsetFetchRequestGroup, OffsetFetchRequestTopic};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn config() -> GroupConfig {
    GroupConfig { initial_rebalance_delay_ms: 0, offsets_partitions: 4, ..GroupConfig::default() }
}

fn exists() -> PartitionExists {
    Arc::new(|topic: &str, partition: i32| topic == "orders" && (0..4).contains(&partition))
}

fn open(dir: &Path) -> Arc<GroupCoordinator> {
    GroupCoordinator::open(dir, config(), exists()).expect("open coordinator")
}

fn join_req(group: &str, member_id: &str) -> JoinGroupRequest {
    let mut protocol = JoinGroupRequestProtocol::default();
    protocol.name = s("range");
    protocol.metadata = Bytes::from_static(b"subscription");
    let mut req = JoinGroupRequest::default();
    req.group_id = GroupId(s(group));
    req.session_timeout_ms = 10_000;
    req.rebalance_timeout_ms = 30_000;
    req.member_id = s(member_id);
    req.protocol_type = s("consumer");
    req.protocols = vec![protocol];
    req
}

/// One consumer's join (with the MEMBER_ID_REQUIRED round) and sync; the leader assigns
/// "part-<member id>" to everyone. Returns (member id, generation, assignment).
async fn consumer(coordinator: Arc<GroupCoordinator>, name: &'static str) -> (String, i32, Bytes) {
    let client = ClientInfo { client_id: name.to_string(), client_host: "/127.0.0.1".into() };
    let first = coordinator.join_group_from(join_req("g", ""), 7, &client).await;
    assert_eq!(first.error_code, ResponseError::MemberIdRequired.code());
    assert!(first.member_id.as_str().starts_with(&format!("{name}-")));
    let member_id = first.member_id.to_string();
    let joined = loop {
        let resp = coordinator.join_group_from(join_req("g", &member_id), 7, &client).await;
        if resp.error_code == 0 {
            break resp;
        }
        assert_eq!(resp.error_code, ResponseError::RebalanceInProgress.code(), "unexpected join error");
    };
    let mut sync = SyncGroupRequest::default();
    sync.group_id = GroupId(s("g"));
    sync.generation_id = joined.generation_id;
    sync.member_id = s(&member_id);
    sync.protocol_type = Some(s("consumer"));
    sync.protocol_name = Some(s("range"));
    if joined.leader.as_str() == member_id {
        assert_eq!(joined.members.len(), 3, "the leader sees every member");
        sync.assignments = joined
            .members
            .iter()
            .map(|m| {
                let mut a = SyncGroupRequestAssignment::default();
                a.member_id = m.member_id.clone();
                a.assignment = Bytes::from(format!("part-{}", m.member_id.as_str()));
                a
            })
            .collect();
    }
    let synced = coordinator.sync_group(sync, 5).await;
    assert_eq!(synced.error_code, 0);
    assert_eq!(synced.protocol_name.as_ref().map(|p| p.as_str()), Some("range"));
    (member_id, joined.generation_id, synced.assignment)
}

fn heartbeat(member_id: &str, generation: i32) -> HeartbeatRequest {
    let mut req = HeartbeatRequest::default();
    req.group_id = GroupId(s("g"));
    req.member_id = s(member_id);
    req.generation_id = generation;
    req
}

#[tokio::test(start_paused = true)]
async fn three_concurrent_members_join_sync_and_heartbeat() {
    let dir = tempfile::tempdir().expect("tempdir");
    let coordinator = open(dir.path());
    // A 3 s initial delay gathers all three into one generation.
    let coordinator = {
        drop(coordinator);
        GroupCoordinator::open(dir.path(), GroupConfig { initial_rebalance_delay_ms: 3_000, ..config() }, exists())
            .expect("open")
    };
    let tasks: Vec<_> = ["alpha", "beta", "gamma"]
        .into_iter()
        .map(|name| tokio::spawn(consumer(coordinator.clone(), name)))
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.expect("consumer task"));
    }
    let generation = results[0].1;
    assert!(results.iter().all(|(_, g, _)| *g == generation), "one generation for all: {results:?}");
    for (member_id, _, assignment) in &results {
        assert_eq!(assignment, &Bytes::from(format!("part-{member_id}")));
    }
    let mut describe = DescribeGroupsRequest::default();
    describe.groups = vec![GroupId(s("g"))];
    let described = coordinator.describe_groups(describe.clone(), 5).await;
    assert_eq!(described.groups[0].group_state.as_str(), "Stable");
    assert_eq!(described.groups[0].members.len(), 3);
    assert_eq!(described.groups[0].protocol_data.as_str(), "range");

    // Two keep heartbeating; the third goes silent and is expired after its session timeout.
    // Synced at 3 s; heartbeats at 6, 9 and 12 s; the silent one lapses at 13 s.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(3_000)).await;
        for (member_id, _, _) in &results[..2] {
            assert_eq!(coordinator.heartbeat(heartbeat(member_id, generation), 4).await.error_code, 0);
        }
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let resp = coordinator.heartbeat(heartbeat(&results[0].0, generation), 4).await;
    assert_eq!(resp.error_code, ResponseError::RebalanceInProgress.code(), "the silent member expired");
    let resp = coordinator.heartbeat(heartbeat(&results[2].0, generation), 4).await;
    assert_eq!(resp.error_code, ResponseError::UnknownMemberId.code());

    // Leaving (v3+, by member id) finishes the story; the last leave empties the group.
    let mut leave = LeaveGroupRequest::default();
    leave.group_id = GroupId(s("g"));
    leave.members = results[..2]
        .iter()
        .map(|(member_id, _, _)| {
            let mut m = MemberIdentity::default();
            m.member_id = s(member_id);
            m
        })
        .collect();
    let left = coordinator.leave_group(leave, 4).await;
    assert!(left.members.iter().all(|m| m.error_code == 0), "{left:?}");
    let described = coordinator.describe_groups(describe, 5).await;
    assert_eq!(described.groups[0].group_state.as_str(), "Empty");
}

fn commit_req(group: &str, generation: i32, member_id: &str, offsets: &[(i32, i64)]) -> OffsetCommitRequest {
    let mut topic = OffsetCommitRequestTopic::default();
    topic.name = TopicName(s("orders"));
    topic.partitions = offsets
        .iter()
        .map(|&(partition, offset)| {
            let mut p = OffsetCommitRequestPartition::default();
            p.partition_index = partition;
            p.committed_offset = offset;
            p.committed_leader_epoch = 2;
            p.committed_metadata = Some(s("meta"));
            p
        })
        .collect();
    let mut req = OffsetCommitRequest::default();
    req.group_id = GroupId(s(group));
    req.generation_id_or_member_epoch = generation;
    req.member_id = s(member_id);
    req.topics = vec![topic];
    req
}

fn fetch_v7(group: &str, partitions: Option<Vec<i32>>) -> OffsetFetchRequest {
    let mut req = OffsetFetchRequest::default();
    req.group_id = GroupId(s(group));
    req.topics = partitions.map(|partitions| {
        let mut t = OffsetFetchRequestTopic::default();
        t.name = TopicName(s("orders"));
        t.partition_indexes = partitions;
        vec![t]
    });
    req
}

#[tokio::test]
async fn committed_offsets_survive_reopen_and_deleted_groups_stay_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let coordinator = open(dir.path());
    let resp = coordinator.offset_commit(commit_req("simple", -1, "", &[(0, 100), (1, 200), (9, 5)]), 8).await;
    let codes: Vec<i16> = resp.topics[0].partitions.iter().map(|p| p.error_code).collect();
    assert_eq!(codes, vec![0, 0, ResponseError::UnknownTopicOrPartition.code()]);
    coordinator.offset_commit(commit_req("other", -1, "", &[(0, 7)]), 2).await;
    // A non-simple commit to a group we do not know is refused.
    let resp = coordinator.offset_commit(commit_req("ghost", 3, "m", &[(0, 1)]), 8).await;
    assert_eq!(resp.topics[0].partitions[0].error_code, ResponseError::IllegalGeneration.code());
    drop(coordinator);

    let coordinator = open(dir.path());
    let fetched = coordinator.offset_fetch(fetch_v7("simple", Some(vec![0, 1, 3])), 7).await;
    assert_eq!(fetched.error_code, 0);
    let got: Vec<(i32, i64, i32, String)> = fetched.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.committed_offset, p.committed_leader_epoch, p.metadata.as_ref().map(|m| m.to_string()).unwrap_or_default()))
        .collect();
    assert_eq!(got, vec![(0, 100, 2, "meta".into()), (1, 200, 2, "meta".into()), (3, -1, -1, String::new())]);
    // Null topics: everything the group committed.
    let all = coordinator.offset_fetch(fetch_v7("simple", None), 7).await;
    assert_eq!(all.topics[0].partitions.len(), 2);
    // v8: several groups in one request.
    let mut multi = OffsetFetchRequest::default();
    multi.groups = ["simple", "other"]
        .iter()
        .map(|g| {
            let mut group = OffsetFetchRequestGroup::default();
            group.group_id = GroupId(s(g));
            group.topics = None;
            group
        })
        .collect();
    let multi = coordinator.offset_fetch(multi, 8).await;
    assert_eq!(multi.groups.len(), 2);
    assert_eq!(multi.groups[1].topics[0].partitions[0].committed_offset, 7);

    let mut list = ListGroupsRequest::default();
    list.states_filter = vec![s("Empty")];
    let listed = coordinator.list_groups(list, 4).await;
    let ids: Vec<String> = listed.groups.iter().map(|g| g.group_id.to_string()).collect();
    assert_eq!(ids, vec!["other", "simple"]);

    let mut delete = DeleteGroupsRequest::default();
    delete.groups_names = vec![GroupId(s("simple")), GroupId(s("never"))];
    let deleted = coordinator.delete_groups(delete, 2).await;
    assert_eq!(deleted.results[0].error_code, 0);
    assert_eq!(deleted.results[1].error_code, ResponseError::GroupIdNotFound.code());
    coordinator.on_topic_deleted("orders").await;
    drop(coordinator);

    let coordinator = open(dir.path());
    let fetched = coordinator.offset_fetch(fetch_v7("simple", None), 7).await;
    assert!(fetched.topics.is_empty(), "deleted group has no offsets: {fetched:?}");
    let fetched = coordinator.offset_fetch(fetch_v7("other", Some(vec![0])), 7).await;
    assert_eq!(fetched.topics[0].partitions[0].committed_offset, -1, "topic deletion removed it");
    let listed = coordinator.list_groups(ListGroupsRequest::default(), 0).await;
    assert!(listed.groups.is_empty());
}

#[tokio::test(start_paused = true)]
async fn member_commits_are_checked_and_non_empty_groups_are_not_deleted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let coordinator = open(dir.path());
    // v3 JoinGroup gets its id at once; no initial delay, so generation 1 forms immediately.
    let joined = coordinator.join_group(join_req("g", ""), 3).await;
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.generation_id, 1);
    let member_id = joined.member_id.to_string();
    let mut sync = SyncGroupRequest::default();
    sync.group_id = GroupId(s("g"));
    sync.generation_id = 1;
    sync.member_id = s(&member_id);
    assert_eq!(coordinator.sync_group(sync, 3).await.error_code, 0);

    let ok = coordinator.offset_commit(commit_req("g", 1, &member_id, &[(0, 5)]), 8).await;
    assert_eq!(ok.topics[0].partitions[0].error_code, 0);
    let stale = coordinator.offset_commit(commit_req("g", 0, &member_id, &[(0, 6)]), 8).await;
    assert_eq!(stale.topics[0].partitions[0].error_code, ResponseError::IllegalGeneration.code());
    let simple = coordinator.offset_commit(commit_req("g", -1, "", &[(0, 6)]), 8).await;
    assert_eq!(simple.topics[0].partitions[0].error_code, ResponseError::UnknownMemberId.code());

    let mut delete = DeleteGroupsRequest::default();
    delete.groups_names = vec![GroupId(s("g")), GroupId(s(""))];
    let deleted = coordinator.delete_groups(delete, 2).await;
    assert_eq!(deleted.results[0].error_code, ResponseError::NonEmptyGroup.code());
    assert_eq!(deleted.results[1].error_code, ResponseError::InvalidGroupId.code());

    let mut bad = join_req("g", "");
    bad.session_timeout_ms = 10;
    assert_eq!(coordinator.join_group(bad, 5).await.error_code, ResponseError::InvalidSessionTimeout.code());
    assert_eq!(coordinator.join_group(join_req("", ""), 5).await.error_code, ResponseError::InvalidGroupId.code());
}

/// Every response we build must encode at every version the server advertises.
#[tokio::test(start_paused = true)]
async fn responses_encode_at_every_advertised_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    let coordinator = open(dir.path());
    coordinator.offset_commit(commit_req("enc", -1, "", &[(0, 1)]), 8).await;
    fn encodes<T: Encodable + std::fmt::Debug>(resp: &T, version: i16) {
        let mut buf = BytesMut::new();
        resp.encode(&mut buf, version).unwrap_or_else(|e| panic!("v{version} {resp:?}: {e}"));
    }
    for v in 0..=7 {
        let mut req = join_req("enc-join", "");
        req.group_instance_id = (v >= 5).then(|| s("static-1"));
        encodes(&coordinator.join_group(req, v).await, v);
        encodes(&coordinator.join_group(join_req("", ""), v).await, v);
    }
    for v in 0..=5 {
        let mut req = SyncGroupRequest::default();
        req.group_id = GroupId(s("enc-join"));
        encodes(&coordinator.sync_group(req, v).await, v);
    }
    for v in 0..=4 {
        encodes(&coordinator.heartbeat(heartbeat("nobody", 1), v).await, v);
        let mut req = LeaveGroupRequest::default();
        req.group_id = GroupId(s("enc-join"));
        if v >= 3 {
            let mut m = MemberIdentity::default();
            m.member_id = s("nobody");
            req.members = vec![m];
        } else {
            req.member_id = s("nobody");
        }
        encodes(&coordinator.leave_group(req, v).await, v);
        let mut list = ListGroupsRequest::default();
        if v >= 4 {
            list.states_filter = vec![s("Stable")];
        }
        encodes(&coordinator.list_groups(list, v).await, v);
    }
    for v in 2..=8 {
        encodes(&coordinator.offset_commit(commit_req("enc", -1, "", &[(0, 2), (7, 1)]), v).await, v);
    }
    for v in 1..=7 {
        encodes(&coordinator.offset_fetch(fetch_v7("enc", Some(vec![0, 1])), v).await, v);
        encodes(&coordinator.offset_fetch(fetch_v7("", Some(vec![0])), v).await, v);
    }
    let mut multi = OffsetFetchRequest::default();
    let mut group = OffsetFetchRequestGroup::default();
    group.group_id = GroupId(s("enc"));
    group.topics = None;
    multi.groups = vec![group];
    encodes(&coordinator.offset_fetch(multi, 8).await, 8);
    for v in 0..=5 {
        let mut req = DescribeGroupsRequest::default();
        req.groups = vec![GroupId(s("enc-join")), GroupId(s("enc")), GroupId(s("none"))];
        req.include_authorized_operations = v >= 3;
        encodes(&coordinator.describe_groups(req, v).await, v);
    }
    for v in 0..=2 {
        let mut req = DeleteGroupsRequest::default();
        req.groups_names = vec![GroupId(s("none"))];
        encodes(&coordinator.delete_groups(req, v).await, v);
    }
}

/// A broker's coordinator serves only the offsets partitions it leads: every group API answers
/// NOT_COORDINATOR before the load and COORDINATOR_LOAD_IN_PROGRESS during it; after an unload a
/// parked JoinGroup is answered NOT_COORDINATOR, and the next owner replays the commits.
#[tokio::test]
async fn only_the_owner_of_the_offsets_partition_serves_a_group() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = GroupConfig { offsets_partitions: 1, initial_rebalance_delay_ms: 60_000, ..config() };
    let coordinator = GroupCoordinator::new(config.clone(), exists()).expect("coordinator");
    let not_coordinator = ResponseError::NotCoordinator.code();
    assert_eq!(coordinator.join_group(join_req("g", ""), 7).await.error_code, not_coordinator);
    assert_eq!(coordinator.heartbeat(heartbeat("m", 1), 4).await.error_code, not_coordinator);
    let resp = coordinator.offset_commit(commit_req("g", -1, "", &[(0, 5)]), 8).await;
    assert_eq!(resp.topics[0].partitions[0].error_code, not_coordinator);
    assert_eq!(coordinator.offset_fetch(fetch_v7("g", Some(vec![0])), 7).await.error_code, not_coordinator);

    assert!(coordinator.begin_load(0, 1));
    let loading = coordinator.offset_fetch(fetch_v7("g", None), 7).await;
    assert_eq!(loading.error_code, ResponseError::CoordinatorLoadInProgress.code());
    let log = chronik_group::offsets::wal_log::open(dir.path(), 0).expect("log");
    coordinator.load(0, 1, log).expect("load");
    let resp = coordinator.offset_commit(commit_req("g", -1, "", &[(0, 5)]), 8).await;
    assert_eq!(resp.topics[0].partitions[0].error_code, 0);

    // A join parked in the initial rebalance delay is answered when leadership moves away.
    let parked = {
        let coordinator = coordinator.clone();
        tokio::spawn(async move { coordinator.join_group(join_req("g", ""), 3).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    coordinator.unload(0);
    let answered = tokio::time::timeout(Duration::from_secs(5), parked).await.expect("answered").expect("task");
    assert_eq!(answered.error_code, not_coordinator);
    assert_eq!(coordinator.offset_fetch(fetch_v7("g", Some(vec![0])), 7).await.error_code, not_coordinator);
    drop(coordinator);

    let next = GroupCoordinator::new(config, exists()).expect("coordinator");
    assert!(next.begin_load(0, 2));
    next.load(0, 2, chronik_group::offsets::wal_log::open(dir.path(), 0).expect("log")).expect("load");
    let fetched = next.offset_fetch(fetch_v7("g", Some(vec![0])), 7).await;
    assert_eq!(fetched.error_code, 0);
    assert_eq!(fetched.topics[0].partitions[0].committed_offset, 5);
}

/// The coordinator moves (here: the offsets partition is reloaded by a fresh coordinator at a new
/// epoch, as on the broker that becomes its leader): the group comes back Stable at its generation,
/// and its members heartbeat, commit and sync with their old member ids and generation — no
/// rejoin. A member that never comes back expires by session timeout, counted from the load.
#[tokio::test(start_paused = true)]
async fn a_new_coordinator_loads_the_group_with_its_members_and_generation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = GroupConfig { offsets_partitions: 1, initial_rebalance_delay_ms: 3_000, ..config() };
    let first = GroupCoordinator::new(config.clone(), exists()).expect("coordinator");
    assert!(first.begin_load(0, 1));
    first.load(0, 1, chronik_group::offsets::wal_log::open(dir.path(), 0).expect("log")).expect("load");
    let tasks: Vec<_> = ["alpha", "beta", "gamma"]
        .into_iter()
        .map(|name| tokio::spawn(consumer(first.clone(), name)))
        .collect();
    let mut members = Vec::new();
    for task in tasks {
        members.push(task.await.expect("consumer task"));
    }
    let generation = members[0].1;
    // A commit is appended after the membership record, so once it is committed both are durable.
    let commit = first.offset_commit(commit_req("g", generation, &members[0].0, &[(0, 11)]), 8).await;
    assert_eq!(commit.topics[0].partitions[0].error_code, 0);
    first.unload(0);
    assert_eq!(first.heartbeat(heartbeat(&members[0].0, generation), 4).await.error_code, ResponseError::NotCoordinator.code());
    drop(first);

    let next = GroupCoordinator::new(config, exists()).expect("coordinator");
    assert!(next.begin_load(0, 2));
    next.load(0, 2, chronik_group::offsets::wal_log::open(dir.path(), 0).expect("log")).expect("load");
    for (member_id, _, _) in &members {
        assert_eq!(next.heartbeat(heartbeat(member_id, generation), 4).await.error_code, 0, "{member_id} continues");
    }
    let commit = next.offset_commit(commit_req("g", generation, &members[1].0, &[(0, 12)]), 8).await;
    assert_eq!(commit.topics[0].partitions[0].error_code, 0, "a member commits at its generation");
    let mut sync = SyncGroupRequest::default();
    sync.group_id = GroupId(s("g"));
    sync.generation_id = generation;
    sync.member_id = s(&members[2].0);
    let synced = next.sync_group(sync, 5).await;
    assert_eq!(synced.error_code, 0);
    assert_eq!(synced.assignment, members[2].2, "the stored assignment");
    let mut describe = DescribeGroupsRequest::default();
    describe.groups = vec![GroupId(s("g"))];
    let described = next.describe_groups(describe, 5).await;
    assert_eq!(described.groups[0].group_state.as_str(), "Stable");
    assert_eq!(described.groups[0].members.len(), 3);

    // Two keep heartbeating; the third is silent and lapses one session (10 s) after its sync.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(3_000)).await;
        for (member_id, _, _) in &members[..2] {
            assert_eq!(next.heartbeat(heartbeat(member_id, generation), 4).await.error_code, 0);
        }
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let resp = next.heartbeat(heartbeat(&members[0].0, generation), 4).await;
    assert_eq!(resp.error_code, ResponseError::RebalanceInProgress.code(), "the silent member expired");
}

/// A coordinator whose broker cannot confirm it still leads an offsets partition answers every
/// group request about its groups NOT_COORDINATOR — never its own (possibly stale) offsets — and
/// serves again once the fence confirms.
#[tokio::test]
async fn an_unconfirmed_coordinator_answers_not_coordinator() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = tempfile::tempdir().expect("tempdir");
    let coordinator = open(dir.path());
    coordinator.offset_commit(commit_req("fenced", -1, "", &[(0, 100)]), 8).await;
    let confirmed = Arc::new(AtomicBool::new(false));
    let asked = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let (c, a) = (confirmed.clone(), asked.clone());
    coordinator.set_fence(Arc::new(move |_index| {
        let (c, a) = (c.clone(), a.clone());
        Box::pin(async move {
            a.fetch_add(1, Ordering::SeqCst);
            c.load(Ordering::SeqCst)
        })
    }));
    let not_coordinator = ResponseError::NotCoordinator.code();
    let fetched = coordinator.offset_fetch(fetch_v7("fenced", Some(vec![0])), 7).await;
    assert_eq!(fetched.error_code, not_coordinator, "{fetched:?}");
    assert!(fetched.topics.is_empty(), "no offsets from an unconfirmed coordinator: {fetched:?}");
    let fetched_v1 = coordinator.offset_fetch(fetch_v7("fenced", Some(vec![0])), 1).await;
    assert_eq!(fetched_v1.topics[0].partitions[0].error_code, not_coordinator, "{fetched_v1:?}");
    let committed = coordinator.offset_commit(commit_req("fenced", -1, "", &[(0, 200)]), 8).await;
    assert_eq!(committed.topics[0].partitions[0].error_code, not_coordinator);
    let joined = coordinator.join_group(join_req("fenced", ""), 3).await;
    assert_eq!(joined.error_code, not_coordinator);
    let beat = coordinator.heartbeat(heartbeat("m", 1), 3).await;
    assert_eq!(beat.error_code, not_coordinator);
    assert!(asked.load(Ordering::SeqCst) >= 5, "the fence is asked on every request");

    confirmed.store(true, Ordering::SeqCst);
    let fetched = coordinator.offset_fetch(fetch_v7("fenced", Some(vec![0])), 7).await;
    assert_eq!(fetched.error_code, 0);
    assert_eq!(fetched.topics[0].partitions[0].committed_offset, 100, "the refused commit changed nothing");
}

/// A fence that saw another broker lead the offsets partition at epoch 2 unloads what this broker
/// owned at epoch 2 or earlier, but not a load begun at epoch 3 (it was named leader again in
/// between): that load completes and the group is served.
#[tokio::test]
async fn an_unload_through_an_older_epoch_keeps_a_later_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = GroupConfig { offsets_partitions: 1, ..config() };
    let coordinator = GroupCoordinator::new(config, exists()).expect("coordinator");
    assert!(coordinator.begin_load(0, 2));
    coordinator.load(0, 2, chronik_group::offsets::wal_log::open(dir.path(), 0).expect("log")).expect("load");
    coordinator.unload_through(0, 2);
    let not_coordinator = ResponseError::NotCoordinator.code();
    assert_eq!(coordinator.offset_fetch(fetch_v7("g", None), 7).await.error_code, not_coordinator);

    assert!(coordinator.begin_load(0, 3));
    coordinator.unload_through(0, 2);
    coordinator.load(0, 3, chronik_group::offsets::wal_log::open(dir.path(), 0).expect("log")).expect("load");
    assert_eq!(coordinator.offset_fetch(fetch_v7("g", None), 7).await.error_code, 0);
}

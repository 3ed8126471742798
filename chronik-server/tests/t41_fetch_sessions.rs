//! Incremental fetch sessions (KIP-227) with raw Fetch v12 requests against three real
//! `chronik-server` processes: a full fetch opens a session, incremental fetches answer only the
//! partitions with news, epochs and unknown ids are refused, long polling covers the session's
//! partitions, and a partition whose leader moved away comes back with NOT_LEADER_OR_FOLLOWER in the
//! incremental response while the session goes on. Followers replicate in sessions of their own:
//! one per leader connection, opened again after the leader is killed and after it comes back.

mod common;
#[path = "common/cluster.rs"]
mod cluster;

use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use kafka_protocol::messages::create_topics_request::{CreatableReplicaAssignment, CreatableTopic};
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
use kafka_protocol::messages::{BrokerId, CreateTopicsRequest, FetchRequest, FetchResponse};

use cluster::{TestCluster, PARTITION_FAILOVER_TIMEOUT};
use common::{code, poll_until, record_batch, topic_name, KafkaClient};

const TOPIC: &str = "sessions";
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const FETCH_SESSION_ID_NOT_FOUND: i16 = 70;
const INVALID_FETCH_SESSION_EPOCH: i16 = 71;
/// How long a restarted preferred leader may take to be in sync and lead again (ISR rejoin plus the
/// 5 s preferred-leader check).
const PREFERRED_BACK_TIMEOUT: Duration = Duration::from_secs(90);
/// `max_wait_ms` of fetches expected to find nothing: short, the test waits it out each time.
const QUIET_WAIT_MS: i32 = 100;

static SERIAL: Mutex<()> = Mutex::new(());

/// One cluster at a time; a failed test must not block the others (poisoning is ignored).
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn ids_of(v: &serde_json::Value) -> Vec<u64> {
    v.as_array().into_iter().flatten().filter_map(serde_json::Value::as_u64).collect()
}

fn partition_request(partition: i32, offset: i64) -> FetchPartition {
    FetchPartition::default().with_partition(partition).with_fetch_offset(offset).with_partition_max_bytes(1 << 20)
}

/// A Fetch of session `id` at `epoch` naming `parts` (partition, offset) and forgetting `forget`.
fn session_fetch(id: i32, epoch: i32, parts: &[(i32, i64)], forget: &[i32], max_wait_ms: i32) -> FetchRequest {
    let topics = if parts.is_empty() {
        vec![]
    } else {
        vec![FetchTopic::default().with_topic(topic_name(TOPIC)).with_partitions(parts.iter().map(|&(p, o)| partition_request(p, o)).collect())]
    };
    let forgotten = if forget.is_empty() { vec![] } else { vec![ForgottenTopic::default().with_topic(topic_name(TOPIC)).with_partitions(forget.to_vec())] };
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(max_wait_ms)
        .with_min_bytes(1)
        .with_max_bytes(16 << 20)
        .with_session_id(id)
        .with_session_epoch(epoch)
        .with_topics(topics)
        .with_forgotten_topics_data(forgotten)
}

/// (partition, error, high watermark, record bytes) of every partition the response carries.
fn answered(resp: &FetchResponse) -> Vec<(i32, i16, i64, usize)> {
    resp.responses
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (p.partition_index, p.error_code, p.high_watermark, p.records.as_ref().map_or(0, |r| r.len()))))
        .collect()
}

fn produce(c: &mut KafkaClient, partition: i32, value: &str) -> Result<i64> {
    produce_to(c, TOPIC, partition, value)
}

/// acks=all produce of one record.
fn produce_to(c: &mut KafkaClient, topic: &str, partition: i32, value: &str) -> Result<i64> {
    let p = c.produce(9, topic, partition, record_batch(&[value], common::now_ms(), None)?, -1)?;
    ensure!(p.error_code == code::NONE, "produce to {topic}-{partition}: error {}", p.error_code);
    Ok(p.base_offset)
}

/// [`produce`] to a partition just created: right after CreateTopics the metadata can name this
/// broker leader before it has opened the log or taken the role (UNKNOWN_TOPIC_OR_PARTITION,
/// NOT_LEADER_OR_FOLLOWER), which a client retries, as this does for up to 30 s.
fn produce_first(c: &mut KafkaClient, partition: i32, value: &str) -> Result<i64> {
    poll_until(Duration::from_secs(30), &format!("the first produce to {TOPIC}-{partition}"), || {
        let p = c.produce(9, TOPIC, partition, record_batch(&[value], common::now_ms(), None)?, -1)?;
        match p.error_code {
            code::NONE => Ok(Some(p.base_offset)),
            code::UNKNOWN_TOPIC_OR_PARTITION | code::NOT_LEADER_OR_FOLLOWER => Ok(None),
            e => anyhow::bail!("produce to {TOPIC}-{partition}: error {e}"),
        }
    })
}

/// Creates `topic` with one partition per replica list of `assignment` (preferred leader first).
fn create_assigned(cluster: &TestCluster, via: u64, topic: &str, assignment: &[[u64; 3]]) -> Result<()> {
    let t = CreatableTopic::default()
        .with_name(topic_name(topic))
        .with_num_partitions(-1)
        .with_replication_factor(-1)
        .with_assignments(
            assignment
                .iter()
                .enumerate()
                .map(|(p, r)| CreatableReplicaAssignment::default().with_partition_index(p as i32).with_broker_ids(r.iter().map(|&id| BrokerId(id as i32)).collect()))
                .collect(),
        );
    let resp = cluster.node(via).client()?.call(7, &CreateTopicsRequest::default().with_topics(vec![t]).with_timeout_ms(10_000))?;
    ensure!(resp.topics.first().map(|t| t.error_code) == Some(code::NONE), "CreateTopics: {resp:?}");
    Ok(())
}

/// `chronik_fetch_sessions` of node `id`: the fetch sessions open with it.
fn fetch_sessions(cluster: &TestCluster, id: u64) -> Result<u64> {
    let (status, body) = common::http_get(cluster.node(id).admin_addr(), "/metrics")?;
    ensure!(status == 200, "GET /metrics on node {id}: {status}");
    body.lines()
        .find_map(|l| l.strip_prefix("chronik_fetch_sessions "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|v| v as u64)
        .context("no chronik_fetch_sessions in /metrics")
}

#[test]
fn incremental_fetches_answer_only_news_and_follow_a_leader_move() -> Result<()> {
    let _turn = serial();
    let mut cluster = TestCluster::start()?;
    let (raft_leader, _) = cluster.wait_agreed_leader(&[1, 2, 3], Duration::from_secs(30))?;
    // A: preferred leader of partition 0, not the metadata leader (its kill moves only partitions).
    let a = cluster.ids().into_iter().find(|&id| id != raft_leader).context("no second node")?;
    let others: Vec<u64> = cluster.ids().into_iter().filter(|&id| id != a).collect();
    let (b, c) = (others[0], others[1]);
    let assignment = [[a, b, c], [b, a, c], [c, a, b]];
    create_assigned(&cluster, raft_leader, TOPIC, &assignment)?;
    for p in 0..3u64 {
        cluster.wait_partition(raft_leader, TOPIC, p, Duration::from_secs(30), "preferred leader and full ISR", |s| {
            s["leader"].as_u64() == Some(assignment[p as usize][0]) && ids_of(&s["isr"]).len() == 3
        })?;
    }
    produce_first(&mut cluster.node(a).client()?, 0, "p0-first")?;

    // A dies: partition 0 moves to L, which also leads partition `own` (the one it prefers).
    cluster.kill9(a)?;
    let moved = cluster.wait_partition(b, TOPIC, 0, PARTITION_FAILOVER_TIMEOUT, "a new leader for partition 0", |s| {
        s["leader"].as_u64().is_some_and(|l| l != a && l > 0)
    })?;
    let l = moved["leader"].as_u64().context("leader")?;
    let own = assignment.iter().position(|r| r[0] == l).context("partition L prefers")? as i32;
    let mut client = cluster.node(l).client()?;
    let mut producer = cluster.node(l).client()?;
    let own_end = produce(&mut producer, own, "own-first")? + 1;

    // Full fetch, epoch 0: a session holding both partitions; both answered.
    let full = poll_until(Duration::from_secs(15), "L serves partition 0", || {
        let r = client.call(12, &session_fetch(0, 0, &[(0, 0), (own, own_end)], &[], 0))?;
        let got = answered(&r);
        // L may answer partition 0 before its high watermark covers the first record.
        Ok((r.error_code == code::NONE && got.iter().all(|&(_, e, _, _)| e == code::NONE) && got.first().is_some_and(|g| g.3 > 0)).then_some(r))
    })?;
    let id = full.session_id;
    ensure!(id != 0, "a full fetch at epoch 0 opened no session: {full:?}");
    let got = answered(&full);
    ensure!(got.len() == 2 && got[0].0 == 0 && got[0].3 > 0 && got[1].0 == own, "full answer {got:?}");
    let p0_end = got[0].2;

    // Epoch 1 moves partition 0 to its end: nothing has news, the answer is empty.
    let r = client.call(12, &session_fetch(id, 1, &[(0, p0_end)], &[], QUIET_WAIT_MS))?;
    ensure!((r.error_code, r.session_id) == (code::NONE, id) && answered(&r).is_empty(), "epoch 1: {:?} {:?}", r.error_code, answered(&r));

    // A record on `own`: epoch 2 names no partition and gets only `own`, with the record.
    produce(&mut producer, own, "own-second")?;
    let r = client.call(12, &session_fetch(id, 2, &[], &[], 5_000))?;
    ensure!(matches!(answered(&r)[..], [(p, code::NONE, hw, bytes)] if p == own && hw == own_end + 1 && bytes > 0), "epoch 2: {:?}", answered(&r));

    // A replayed epoch and an unknown id are refused at the top level; the session goes on.
    let r = client.call(12, &session_fetch(id, 2, &[], &[], 0))?;
    ensure!((r.error_code, r.session_id) == (INVALID_FETCH_SESSION_EPOCH, 0), "replayed epoch: {} {}", r.error_code, r.session_id);
    let r = client.call(12, &session_fetch(id.wrapping_add(1).max(1), 1, &[], &[], 0))?;
    ensure!(r.error_code == FETCH_SESSION_ID_NOT_FOUND, "unknown session: {}", r.error_code);

    // Long poll over the session: a fetch waiting with `own` at its end gets the next record on it.
    let correlation = client.send(12, &session_fetch(id, 3, &[(own, own_end + 1)], &[], 10_000))?;
    produce(&mut producer, own, "own-third")?;
    let r: FetchResponse = client.receive(kafka_protocol::messages::ApiKey::Fetch, 12, correlation)?;
    ensure!(matches!(answered(&r)[..], [(p, code::NONE, _, bytes)] if p == own && bytes > 0), "long poll: {:?}", answered(&r));

    // A comes back and leads partition 0 again: L answers NOT_LEADER_OR_FOLLOWER for it, only it.
    cluster.restart(a)?;
    cluster.wait_partition(l, TOPIC, 0, PREFERRED_BACK_TIMEOUT, "partition 0 led by its preferred replica again", |s| {
        s["leader"].as_u64() == Some(a)
    })?;
    let mut epoch = 4;
    let r = poll_until(Duration::from_secs(10), "L refuses partition 0", || {
        let r = client.call(12, &session_fetch(id, epoch, &[(own, own_end + 2)], &[], QUIET_WAIT_MS))?;
        epoch += 1;
        Ok((!answered(&r).is_empty()).then_some(r))
    })?;
    ensure!(r.session_id == id && matches!(answered(&r)[..], [(0, NOT_LEADER_OR_FOLLOWER, _, 0)]), "after the move: {:?}", answered(&r));

    // Forgetting partition 0 keeps the session, now quiet.
    let r = client.call(12, &session_fetch(id, epoch, &[], &[0], QUIET_WAIT_MS))?;
    ensure!((r.error_code, r.session_id) == (code::NONE, id) && answered(&r).is_empty(), "after forgetting 0: {:?}", answered(&r));
    Ok(())
}

#[test]
fn followers_replicate_in_sessions_that_start_over_after_a_leader_change() -> Result<()> {
    const FOLLOW: &str = "follow";
    let _turn = serial();
    let mut cluster = TestCluster::start()?;
    let (raft_leader, _) = cluster.wait_agreed_leader(&[1, 2, 3], Duration::from_secs(30))?;
    // A leads the partition and is not the metadata leader (its kill moves only the partition).
    let a = cluster.ids().into_iter().find(|&id| id != raft_leader).context("no second node")?;
    let others: Vec<u64> = cluster.ids().into_iter().filter(|&id| id != a).collect();
    create_assigned(&cluster, raft_leader, FOLLOW, &[[a, others[0], others[1]]])?;
    let in_sync_under_a = |cluster: &TestCluster| {
        cluster.wait_partition(raft_leader, FOLLOW, 0, PREFERRED_BACK_TIMEOUT, "led by A with a full ISR", |s| {
            s["leader"].as_u64() == Some(a) && ids_of(&s["isr"]).len() == 3
        })
    };
    in_sync_under_a(&cluster)?;
    // Each follower fetches from A in a session of its own (no consumer reads from A here).
    poll_until(Duration::from_secs(15), "a session per follower on A", || Ok((fetch_sessions(&cluster, a)? >= 2).then_some(())))?;
    // acks=all with min ISR 2: the followers' incremental fetches carry the record and move on.
    for i in 0..3 {
        produce_to(&mut cluster.node(a).client()?, FOLLOW, 0, &format!("before-{i}"))?;
    }

    // A dies: the survivors' fetchers lose their connection and open sessions with the new leader.
    cluster.kill9(a)?;
    let moved = cluster.wait_partition(raft_leader, FOLLOW, 0, PARTITION_FAILOVER_TIMEOUT, "a new leader", |s| {
        s["leader"].as_u64().is_some_and(|l| l != a && l > 0)
    })?;
    let l = moved["leader"].as_u64().context("leader")?;
    let offset = poll_until(Duration::from_secs(15), "acks=all on the new leader", || {
        Ok(produce_to(&mut cluster.node(l).client()?, FOLLOW, 0, "after-kill").ok())
    })?;
    ensure!(offset == 3, "the record after the failover went to offset {offset}, not 3");
    ensure!(fetch_sessions(&cluster, l)? >= 1, "the remaining follower fetches from {l} without a session");

    // A comes back empty-handed on sessions (they live in memory): its followers start over with full
    // fetches, it catches up as a follower first, and leads again with everyone in sync.
    cluster.restart(a)?;
    in_sync_under_a(&cluster)?;
    poll_until(Duration::from_secs(15), "a session per follower on the restarted A", || {
        Ok((fetch_sessions(&cluster, a)? >= 2).then_some(()))
    })?;
    let offset = produce_to(&mut cluster.node(a).client()?, FOLLOW, 0, "after-restart")?;
    ensure!(offset == 4, "the record after the restart went to offset {offset}, not 4");
    // Every replica stays in the ISR: both followers keep up through incremental fetches.
    cluster.wait_partition(a, FOLLOW, 0, Duration::from_secs(15), "a full ISR after the restart", |s| {
        ids_of(&s["isr"]).len() == 3
    })?;
    Ok(())
}

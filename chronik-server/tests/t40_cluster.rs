//! Three real `chronik-server` processes (issue 3): one metadata leader agreed on by all, topics created
//! anywhere seen everywhere with spread placement, Raft leader kill -9 and rejoin, the `cluster` CLI, and
//! the replicated data path (data on every ISR replica, acks=all with one and two followers down).
//!
//! Clusters are heavy for a 2-core machine, so the tests of this file take turns ([`serial`]).

mod common;
#[path = "common/cluster.rs"]
mod cluster;

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;

use cluster::{create_topic_rf, files_under, ClusterOpts, TestCluster, PARTITION_FAILOVER_TIMEOUT, RAFT_FAILOVER_TIMEOUT};
use common::{code, decode_records, poll_until, record_batch, KafkaClient};

/// Kafka error codes only the cluster tests need.
mod cluster_code {
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const REQUEST_TIMED_OUT: i16 = 7;
    pub const NOT_ENOUGH_REPLICAS: i16 = 19;
    pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = 20;
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
}
use cluster_code::*;

/// How long a restarted replica may take to catch up and re-enter the ISR.
const ISR_REJOIN_TIMEOUT: Duration = Duration::from_secs(60);
/// Lag limit used by the data-path tests so a dead follower leaves the ISR quickly.
const SHORT_LAG_MS: u64 = 3000;

static SERIAL: Mutex<()> = Mutex::new(());

/// One cluster at a time; a failed test must not block the others (poisoning is ignored).
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn ids_of(v: &Value) -> Vec<u64> {
    v.as_array().into_iter().flatten().filter_map(Value::as_u64).collect()
}

/// How long a new partition leader may take to take up its role locally after the metadata names it.
const LEADER_READY_TIMEOUT: Duration = Duration::from_secs(10);

/// Produce to the partition leader, retrying NOT_LEADER_OR_FOLLOWER only (what a client does while the
/// named leader takes up its role); any other answer is returned.
fn produce_to_leader(
    client: &mut KafkaClient,
    topic: &str,
    values: &[&str],
    acks: i16,
) -> Result<kafka_protocol::messages::produce_response::PartitionProduceResponse> {
    let deadline = Instant::now() + LEADER_READY_TIMEOUT;
    loop {
        let p = client.produce(9, topic, 0, record_batch(values, common::now_ms(), None)?, acks)?;
        if p.error_code != NOT_LEADER_OR_FOLLOWER || Instant::now() >= deadline {
            return Ok(p);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Values and offsets of a partition read from `client` (which must lead it).
fn read_all(client: &mut KafkaClient, topic: &str, partition: i32) -> Result<Vec<(i64, String)>> {
    let mut out = Vec::new();
    let mut offset = 0;
    loop {
        let p = client.fetch(12, topic, partition, offset, 0, 1)?;
        ensure!(p.error_code == code::NONE, "Fetch {topic}-{partition}@{offset}: error {}", p.error_code);
        let records = decode_records(&p.records)?;
        let before = out.len();
        let from = offset;
        for r in records.into_iter().filter(|r| r.offset >= from) {
            offset = r.offset + 1;
            out.push((r.offset, r.value));
        }
        if out.len() == before || offset >= p.high_watermark {
            return Ok(out);
        }
    }
}

/// Whether every value's bytes appear in node `id`'s log files of `topic`-`partition`.
fn on_disk(cluster: &TestCluster, id: u64, topic: &str, partition: i32, values: &[&str]) -> bool {
    let dir_name = format!("{topic}-{partition}");
    let bytes: Vec<u8> = files_under(&cluster.node(id).data_dir())
        .into_iter()
        .filter(|p| p.parent().and_then(|d| d.file_name()).is_some_and(|n| n.to_string_lossy() == dir_name))
        .flat_map(|p| std::fs::read(p).unwrap_or_default())
        .collect();
    values.iter().all(|v| bytes.windows(v.len()).any(|w| w == v.as_bytes()))
}

#[test]
fn one_leader_agreed_by_all_and_metadata_lists_every_broker() -> Result<()> {
    let _turn = serial();
    let mut cluster = TestCluster::start()?;
    let (leader, term) = cluster.wait_agreed_leader(&[1, 2, 3], Duration::from_secs(10))?;
    ensure!(term >= 1, "term {term}");
    for id in cluster.ids() {
        let h = cluster.node(id).health()?;
        ensure!(h["node_id"].as_u64() == Some(id), "node {id} health names node {}", h["node_id"]);
        ensure!(h["is_leader"] == (id == leader), "node {id}: is_leader {} while the leader is {leader}", h["is_leader"]);
        ensure!(ids_of(&h["voters"]) == vec![1, 2, 3], "node {id} voters {}", h["voters"]);
        ensure!(ids_of(&h["cluster_nodes"]) == vec![1, 2, 3], "node {id} cluster_nodes {}", h["cluster_nodes"]);
        ensure!(ids_of(&h["learners"]).is_empty(), "node {id} learners {}", h["learners"]);

        let md = cluster.node(id).client()?.metadata(11, None, false)?;
        let mut brokers: Vec<(i32, String, i32)> = md.brokers.iter().map(|b| (b.node_id.0, b.host.to_string(), b.port)).collect();
        brokers.sort();
        let want: Vec<(i32, String, i32)> =
            cluster.nodes.iter().map(|n| (n.id as i32, "127.0.0.1".to_string(), i32::from(n.ports.kafka))).collect();
        ensure!(brokers == want, "node {id} Metadata brokers {brokers:?}, want {want:?}");
        ensure!(md.controller_id.0 == leader as i32, "node {id} Metadata controller {} but the Raft leader is {leader}", md.controller_id.0);
    }
    Ok(())
}

#[test]
fn every_broker_reports_the_same_cluster_id() -> Result<()> {
    let _turn = serial();
    let cluster = TestCluster::start()?;
    let mut cluster_ids = Vec::new();
    for id in cluster.ids() {
        let md = cluster.node(id).client()?.metadata(11, None, false)?;
        cluster_ids.push(md.cluster_id.map(|c| c.to_string()));
    }
    // One cluster, one id: clients treat a changed cluster id as talking to a different cluster.
    ensure!(cluster_ids[0].is_some(), "no cluster id in Metadata");
    ensure!(cluster_ids.windows(2).all(|w| w[0] == w[1]), "brokers report different cluster ids: {cluster_ids:?}");
    Ok(())
}

#[test]
fn topic_created_on_one_broker_is_seen_by_all_with_spread_placement() -> Result<()> {
    let _turn = serial();
    let cluster = TestCluster::start()?;
    let mut c2 = cluster.node(2).client()?;
    let rc = create_topic_rf(&mut c2, "spread", 6, 3)?;
    ensure!(rc == code::NONE, "CreateTopics spread via node 2: error {rc}");
    let rc = create_topic_rf(&mut c2, "too-wide", 1, 4)?;
    ensure!(rc == INVALID_REPLICATION_FACTOR, "RF 4 on 3 brokers must be refused, got error {rc}");
    let rc = create_topic_rf(&mut c2, "default-rf", 2, -1)?;
    ensure!(rc == code::NONE, "CreateTopics with the default RF: error {rc}");

    let mut per_node_view = Vec::new();
    for id in cluster.ids() {
        let mut c = cluster.node(id).client()?;
        let md = poll_until(Duration::from_secs(10), &format!("node {id} sees topic spread"), || {
            let md = c.metadata(11, Some(&["spread", "default-rf"]), false)?;
            Ok(md.topics.iter().all(|t| t.error_code == code::NONE && !t.partitions.is_empty()).then_some(md))
        })?;
        let spread = &md.topics.iter().find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some("spread")).context("spread missing")?;
        ensure!(spread.partitions.len() == 6, "node {id}: {} partitions", spread.partitions.len());
        let mut view = Vec::new();
        let mut leads: BTreeMap<i32, usize> = BTreeMap::new();
        let mut hosts: BTreeMap<i32, usize> = BTreeMap::new();
        for p in &spread.partitions {
            let mut replicas: Vec<i32> = p.replica_nodes.iter().map(|b| b.0).collect();
            ensure!(replicas.contains(&p.leader_id.0), "node {id}: leader {} not a replica of {replicas:?}", p.leader_id.0);
            *leads.entry(p.leader_id.0).or_default() += 1;
            view.push((p.partition_index, p.leader_id.0, replicas.clone()));
            replicas.sort();
            ensure!(replicas == vec![1, 2, 3], "node {id}: partition {} replicas {replicas:?}", p.partition_index);
            for r in replicas {
                *hosts.entry(r).or_default() += 1;
            }
        }
        ensure!(leads.len() == 3 && leads.values().all(|&n| n == 2), "node {id}: leaders not spread over the brokers: {leads:?}");
        let default_rf = md.topics.iter().find(|t| t.name.as_ref().map(|n| n.0.as_str()) == Some("default-rf")).context("default-rf missing")?;
        ensure!(
            default_rf.partitions.iter().all(|p| p.replica_nodes.len() == 3),
            "node {id}: default replication factor 3 not applied: {:?}",
            default_rf.partitions
        );
        view.sort();
        per_node_view.push(view);
    }
    ensure!(per_node_view.windows(2).all(|w| w[0] == w[1]), "brokers disagree on placement: {per_node_view:?}");

    // A broker that does not lead a partition says so.
    let leader_of_0 = per_node_view[0][0].1 as u64;
    let other = cluster.ids().into_iter().find(|&id| id != leader_of_0).context("no other node")?;
    let p = cluster.node(other).client()?.produce(9, "spread", 0, record_batch(&["x"], common::now_ms(), None)?, 1)?;
    ensure!(p.error_code == NOT_LEADER_OR_FOLLOWER, "Produce to non-leader node {other}: error {}", p.error_code);
    Ok(())
}

#[test]
fn raft_leader_kill9_elects_a_new_leader_and_the_restarted_node_rejoins() -> Result<()> {
    let _turn = serial();
    let mut cluster = TestCluster::start()?;
    let (old_leader, old_term) = cluster.wait_agreed_leader(&[1, 2, 3], Duration::from_secs(10))?;
    let survivors: Vec<u64> = cluster.ids().into_iter().filter(|&id| id != old_leader).collect();

    let killed_at = Instant::now();
    cluster.kill9(old_leader)?;
    let (new_leader, new_term) = cluster.wait_agreed_leader(&survivors, RAFT_FAILOVER_TIMEOUT)?;
    eprintln!("Raft leader {old_leader} (term {old_term}) killed; node {new_leader} leads term {new_term} after {:?}", killed_at.elapsed());
    ensure!(new_leader != old_leader && new_term > old_term, "leader {new_leader} term {new_term} after killing {old_leader} in term {old_term}");

    // Service continues: metadata writes through either survivor.
    let mut c = cluster.node(survivors[0]).client()?;
    let code = poll_until(Duration::from_secs(15), "CreateTopics after failover", || {
        let code = create_topic_rf(&mut c, "after-failover", 2, 2)?;
        Ok((code == code::NONE).then_some(code))
    })?;
    ensure!(code == code::NONE);

    // The killed node comes back, follows the new leader and learns what it missed.
    cluster.restart(old_leader)?;
    let (leader, term) = cluster.wait_agreed_leader(&[1, 2, 3], RAFT_FAILOVER_TIMEOUT)?;
    ensure!(term >= new_term, "term went back from {new_term} to {term}");
    eprintln!("after restart: node {leader} leads term {term}");
    let mut back = cluster.node(old_leader).client()?;
    poll_until(Duration::from_secs(15), "restarted node sees the topic created while it was down", || {
        let md = back.metadata(11, Some(&["after-failover"]), false)?;
        Ok((md.topics[0].error_code == code::NONE && md.topics[0].partitions.len() == 2).then_some(()))
    })?;
    let h = cluster.node(old_leader).health()?;
    ensure!(ids_of(&h["voters"]) == vec![1, 2, 3], "voters after rejoin: {}", h["voters"]);
    Ok(())
}

#[test]
fn cli_finds_the_leader_and_reports_health_members_and_status() -> Result<()> {
    let _turn = serial();
    let mut cluster = TestCluster::start()?;
    let (leader, term) = cluster.wait_agreed_leader(&[1, 2, 3], Duration::from_secs(10))?;
    let config = cluster.config_path();
    let config = config.to_str().context("temp path is not UTF-8")?;
    ensure!(create_topic_rf(&mut cluster.node(1).client()?, "cli-topic", 3, 3)? == code::NONE);

    let (rc, out, err) = cluster.cli(&["leader", "--config", config, "--json"])?;
    ensure!(rc == 0, "cluster leader exited {rc}: {err}");
    let v: Value = serde_json::from_str(&out).with_context(|| format!("leader --json: {out}"))?;
    ensure!(v["leader_id"].as_u64() == Some(leader) && v["term"].as_u64() == Some(term), "leader --json {v}, want {leader}/{term}");
    let (rc, out, _) = cluster.cli(&["leader", "--config", config])?;
    ensure!(rc == 0 && out.contains(&format!("node {leader}")), "leader table: {out}");

    // --admin of any single node finds the others and the same leader.
    let follower = cluster.ids().into_iter().find(|&id| id != leader).context("no follower")?;
    let admin = cluster.node(follower).admin_addr().to_string();
    let (rc, out, err) = cluster.cli(&["health", "--admin", &admin, "--json"])?;
    ensure!(rc == 0, "health via --admin exited {rc}: {err}\n{out}");
    let v: Value = serde_json::from_str(&out)?;
    ensure!(v["healthy"] == true && v["leader_id"].as_u64() == Some(leader), "health --json {v}");
    ensure!(v["nodes"].as_array().map(Vec::len) == Some(3), "health via one node lists {} nodes", v["nodes"]);

    let (rc, out, err) = cluster.cli(&["members", "--config", config])?;
    ensure!(rc == 0, "members exited {rc}: {err}");
    ensure!(out.lines().count() == 4 && out.starts_with("ID"), "members table:\n{out}");
    for n in &cluster.nodes {
        ensure!(out.contains(&format!("127.0.0.1:{}", n.ports.kafka)), "members table lacks node {}:\n{out}", n.id);
    }

    let (rc, out, err) = cluster.cli(&["status", "--config", config, "--json"])?;
    ensure!(rc == 0, "status exited {rc}: {err}");
    let v: Value = serde_json::from_str(&out)?;
    let parts = v["partitions"].as_array().map(|ps| ps.iter().filter(|p| p["topic"] == "cli-topic").count());
    ensure!(parts == Some(3), "status --json lists {parts:?} partitions of cli-topic");
    let (rc, out, _) = cluster.cli(&["status", "--config", config])?;
    ensure!(rc == 0 && out.contains("cli-topic") && out.contains(" partitions, "), "status table:\n{out}");

    // One node down: health fails with a one-line reason naming it; leader still answers.
    cluster.kill9(follower)?;
    let (rc, out, err) = cluster.cli(&["health", "--config", config])?;
    ensure!(rc == 1, "health with node {follower} down exited {rc}:\n{out}");
    ensure!(err.lines().count() == 1 && err.contains("unreachable") && err.contains(&admin), "health reason: {err:?}");
    let (rc, _, err) = cluster.cli(&["leader", "--config", config])?;
    ensure!(rc == 0, "leader with one follower down exited {rc}: {err}");

    // A bad config file is a usage error.
    let (rc, _, err) = cluster.cli(&["health", "--config", "/nonexistent/chronik.toml"])?;
    ensure!(rc == 2 && err.lines().count() == 1, "bad config: exit {rc}, {err:?}");
    Ok(())
}

// ---- the replicated data path --------------------------------------------------------------------

fn short_lag_cluster(min_insync_replicas: i32) -> Result<TestCluster> {
    TestCluster::start_with(ClusterOpts { replica_lag_time_max_ms: SHORT_LAG_MS, min_insync_replicas, ..ClusterOpts::default() })
}

/// Creates a 1-partition RF 3 topic and waits until its leader is known and all replicas are in sync;
/// returns the leader's id.
fn topic_in_sync(cluster: &TestCluster, topic: &str) -> Result<u64> {
    ensure!(create_topic_rf(&mut cluster.node(1).client()?, topic, 1, 3)? == code::NONE, "CreateTopics {topic}");
    let p = cluster.wait_partition(1, topic, 0, Duration::from_secs(20), &format!("{topic}-0 with a leader and ISR of 3"), |p| {
        p["leader"].as_i64().is_some_and(|l| l > 0) && ids_of(&p["isr"]).len() == 3
    })?;
    p["leader"].as_u64().context("leader")
}

#[test]
fn acked_data_is_on_every_isr_replica_and_survives_the_leader_kill() -> Result<()> {
    let _turn = serial();
    let mut cluster = short_lag_cluster(2)?;
    let leader = topic_in_sync(&cluster, "replicated")?;
    let mut c = cluster.node(leader).client()?;
    let mut acked = Vec::new();
    for i in 0..5 {
        let values: Vec<String> = (0..3).map(|j| format!("replicated-value-{i}-{j}")).collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let p = produce_to_leader(&mut c, "replicated", &refs, -1)?;
        ensure!(p.error_code == code::NONE, "acks=all produce {i}: error {}", p.error_code);
        for (j, v) in values.into_iter().enumerate() {
            acked.push((p.base_offset + j as i64, v));
        }
    }
    // acks=all was answered, so every ISR member stored every batch already.
    let isr = ids_of(&cluster.partition(leader, "replicated", 0)?["isr"]);
    ensure!(isr.len() == 3, "ISR {isr:?} after acks=all produce with every replica up");
    let values: Vec<&str> = acked.iter().map(|(_, v)| v.as_str()).collect();
    for &id in &isr {
        ensure!(on_disk(&cluster, id, "replicated", 0, &values), "ISR member {id} lacks acknowledged records on disk");
    }
    let p = c.fetch(12, "replicated", 0, 0, 0, 1)?;
    ensure!(p.high_watermark == 15, "high watermark {} after 15 acked records", p.high_watermark);

    // The leader dies; a new leader from the ISR serves every acknowledged record at its offset.
    cluster.kill9(leader)?;
    let survivor = cluster.ids().into_iter().find(|&id| id != leader).context("no survivor")?;
    let p = cluster.wait_partition(survivor, "replicated", 0, PARTITION_FAILOVER_TIMEOUT, "a new partition leader", |p| {
        p["leader"].as_u64().is_some_and(|l| l != leader && l > 0)
    })?;
    let new_leader = p["leader"].as_u64().context("leader")?;
    let mut c = cluster.node(new_leader).client()?;
    let got = poll_until(Duration::from_secs(15), "new leader serves the records", || {
        Ok(read_all(&mut c, "replicated", 0).ok().filter(|g| g.len() >= acked.len()))
    })?;
    ensure!(got == acked, "new leader {new_leader} serves {got:?}, acknowledged {acked:?}");

    // The old leader comes back as a follower, catches up and re-enters the ISR.
    cluster.restart(leader)?;
    let p = produce_to_leader(&mut c, "replicated", &["after-restart"], -1)?;
    ensure!(p.error_code == code::NONE && p.base_offset == 15, "produce after the failover: {p:?}");
    cluster.wait_partition(new_leader, "replicated", 0, ISR_REJOIN_TIMEOUT, "restarted replica back in the ISR", |p| {
        ids_of(&p["isr"]).contains(&leader)
    })?;
    ensure!(on_disk(&cluster, leader, "replicated", 0, &["after-restart"]), "rejoined replica {leader} lacks the record written while it was down");
    Ok(())
}

#[test]
fn acks_all_with_one_follower_down_succeeds() -> Result<()> {
    let _turn = serial();
    let mut cluster = short_lag_cluster(2)?;
    let leader = topic_in_sync(&cluster, "one-down")?;
    let follower = cluster.ids().into_iter().find(|&id| id != leader).context("no follower")?;
    cluster.kill9(follower)?;
    let mut c = cluster.node(leader).client()?;
    // The first produce may wait for the dead follower to leave the ISR (SHORT_LAG_MS), well inside the
    // request's 10 s timeout: it must succeed, not time out.
    let p = produce_to_leader(&mut c, "one-down", &["a", "b"], -1)?;
    ensure!(p.error_code == code::NONE, "acks=all with one follower down: error {}", p.error_code);
    let isr = ids_of(&cluster.partition(leader, "one-down", 0)?["isr"]);
    ensure!(!isr.contains(&follower) && isr.len() == 2, "ISR {isr:?} with follower {follower} down");
    let p = c.produce(9, "one-down", 0, record_batch(&["c"], common::now_ms(), None)?, -1)?;
    ensure!(p.error_code == code::NONE && p.base_offset == 2, "second acks=all produce: {p:?}");

    cluster.restart(follower)?;
    cluster.wait_partition(leader, "one-down", 0, ISR_REJOIN_TIMEOUT, "follower back in the ISR", |p| ids_of(&p["isr"]).len() == 3)?;
    ensure!(on_disk(&cluster, follower, "one-down", 0, &["a", "b", "c"]), "follower {follower} did not catch up on disk");
    Ok(())
}

/// Broker defaults that roll a segment every MiB and keep about one MiB per partition, checked every
/// second: enough for retention to pass a follower that is down.
const SMALL_RETENTION: &str = "segment_bytes = 1048576\nretention_bytes = 1048576\nretention_check_interval_ms = 1000\n";

/// Base offsets of the `.log` segments node `id` holds for `topic`-`partition`.
fn segment_bases(cluster: &TestCluster, id: u64, topic: &str, partition: i32) -> Vec<i64> {
    let dir_name = format!("{topic}-{partition}");
    let mut bases: Vec<i64> = files_under(&cluster.node(id).data_dir())
        .into_iter()
        .filter(|p| p.parent().and_then(|d| d.file_name()).is_some_and(|n| n.to_string_lossy() == dir_name))
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .filter_map(|p| p.file_stem()?.to_str()?.parse().ok())
        .collect();
    bases.sort_unstable();
    bases
}

#[test]
fn a_follower_whose_log_lies_below_the_leaders_log_start_restarts_there_and_rejoins() -> Result<()> {
    let _turn = serial();
    let mut cluster = TestCluster::start_with(ClusterOpts {
        replica_lag_time_max_ms: SHORT_LAG_MS,
        extra: SMALL_RETENTION.to_string(),
        ..ClusterOpts::default()
    })?;
    let leader = topic_in_sync(&cluster, "behind")?;
    let follower = cluster.ids().into_iter().find(|&id| id != leader).context("no follower")?;
    let mut c = cluster.node(leader).client()?;
    let p = produce_to_leader(&mut c, "behind", &["before-the-kill"], -1)?;
    ensure!(p.error_code == code::NONE, "first produce: {p:?}");
    cluster.kill9(follower)?;

    // About 4 MiB while the follower is down: retention drops the segments it would need.
    let big = "x".repeat(8 * 1024);
    for i in 0..32 {
        let values: Vec<String> = (0..16).map(|j| format!("behind-{i}-{j}-{big}")).collect();
        let refs: Vec<&str> = values.iter().map(String::as_str).collect();
        let p = produce_to_leader(&mut c, "behind", &refs, -1)?;
        ensure!(p.error_code == code::NONE, "acks=all produce {i} with one follower down: error {}", p.error_code);
    }
    let leader_start = poll_until(Duration::from_secs(20), "retention on the leader", || {
        let earliest = c.list_offset("behind", 0, -2)?.offset;
        Ok((earliest > 1).then_some(earliest))
    })?;
    let follower_end = segment_bases(&cluster, follower, "behind", 0);
    ensure!(follower_end == vec![0], "the stopped follower's segments {follower_end:?}");

    cluster.restart(follower)?;
    let p = produce_to_leader(&mut c, "behind", &["after-the-restart"], -1)?;
    ensure!(p.error_code == code::NONE, "produce after the restart: {p:?}");
    cluster.wait_partition(leader, "behind", 0, ISR_REJOIN_TIMEOUT, "the follower back in the ISR", |p| ids_of(&p["isr"]).contains(&follower))?;
    ensure!(on_disk(&cluster, follower, "behind", 0, &["after-the-restart"]), "follower {follower} did not catch up");
    let bases = segment_bases(&cluster, follower, "behind", 0);
    ensure!(
        bases.first().is_some_and(|&b| b >= leader_start),
        "follower segments {bases:?} should start at or after the leader's log start {leader_start}"
    );
    Ok(())
}

#[test]
fn acks_all_with_two_followers_down_is_not_enough_replicas() -> Result<()> {
    let _turn = serial();
    let mut cluster = short_lag_cluster(2)?;
    let leader = topic_in_sync(&cluster, "two-down")?;
    let mut c = cluster.node(leader).client()?;
    let p = produce_to_leader(&mut c, "two-down", &["before"], -1)?;
    ensure!(p.error_code == code::NONE, "acks=all with all up: error {}", p.error_code);
    let followers: Vec<u64> = cluster.ids().into_iter().filter(|&id| id != leader).collect();
    for &f in &followers {
        cluster.kill9(f)?;
    }
    // Retriable answers (timeouts) may come first while the leader notices; success must never come, and
    // NOT_ENOUGH_REPLICAS must come once the ISR is below min_insync_replicas.
    let deadline = Instant::now() + Duration::from_secs(45);
    let mut answers = Vec::new();
    loop {
        let p = c.produce(9, "two-down", 0, record_batch(&["lonely"], common::now_ms(), None)?, -1)?;
        answers.push(p.error_code);
        match p.error_code {
            NOT_ENOUGH_REPLICAS => break,
            REQUEST_TIMED_OUT | NOT_ENOUGH_REPLICAS_AFTER_APPEND => {}
            code::NONE => bail!("acks=all succeeded with two of three replicas down (min ISR 2); answers {answers:?}"),
            other => bail!("unexpected error {other} with two followers down; answers {answers:?}"),
        }
        if Instant::now() >= deadline {
            bail!("no NOT_ENOUGH_REPLICAS within 45 s with two followers down; answers {answers:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }

    // Service resumes when they return; the record acknowledged before is still there.
    for &f in &followers {
        cluster.restart(f)?;
    }
    cluster.wait_agreed_leader(&[1, 2, 3], RAFT_FAILOVER_TIMEOUT)?;
    let p = poll_until(Duration::from_secs(60), "acks=all produce after the followers return", || {
        let leader_now = cluster.partition(leader, "two-down", 0)?["leader"].as_u64().context("leader")?;
        let p = cluster.node(leader_now).client()?.produce(9, "two-down", 0, record_batch(&["back"], common::now_ms(), None)?, -1)?;
        Ok((p.error_code == code::NONE).then_some((leader_now, p)))
    })?;
    let got = read_all(&mut cluster.node(p.0).client()?, "two-down", 0)?;
    ensure!(got.first().map(|(o, v)| (*o, v.as_str())) == Some((0, "before")), "first record after recovery: {got:?}");
    ensure!(got.last().map(|(_, v)| v.as_str()) == Some("back"), "last record after recovery: {got:?}");
    Ok(())
}

/// The contract (issue 3): partitions of a kill -9'd leader get new leaders within 10 s; the
/// slack covers polling and a busy machine.
const FAILOVER_CONTRACT: Duration = Duration::from_secs(12);
/// leader_rebalance_interval_ms (5 s) plus catching up and re-entering the ISR.
const PREFERRED_LEADER_TIMEOUT: Duration = Duration::from_secs(60);

#[test]
fn partition_leader_kill9_fails_over_within_10s_and_preferred_leadership_returns() -> Result<()> {
    let _turn = serial();
    let mut cluster = TestCluster::start()?;
    ensure!(create_topic_rf(&mut cluster.node(1).client()?, "preferred", 3, 3)? == code::NONE);
    let preferred_view = |p: &Value| ids_of(&p["replicas"]).first().copied() == p["leader"].as_u64() && ids_of(&p["isr"]).len() == 3;
    for partition in 0..3 {
        cluster.wait_partition(1, "preferred", partition, Duration::from_secs(20), "preferred leaders, full ISR", preferred_view)?;
    }
    // A node that is not the Raft leader, so only partition leadership moves.
    let (raft_leader, _) = cluster.wait_agreed_leader(&[1, 2, 3], Duration::from_secs(10))?;
    let victim = cluster.ids().into_iter().find(|&id| id != raft_leader).context("no victim")?;
    let led: Vec<u64> = (0..3)
        .filter(|&p| cluster.partition(raft_leader, "preferred", p).ok().and_then(|v| v["leader"].as_u64()) == Some(victim))
        .collect();
    ensure!(!led.is_empty(), "node {victim} leads no partition of a spread topic");

    let epochs: Vec<i64> = led
        .iter()
        .map(|&p| cluster.partition(raft_leader, "preferred", p).map(|v| v["leader_epoch"].as_i64().unwrap_or(-1)))
        .collect::<Result<_>>()?;
    let killed_at = Instant::now();
    cluster.kill9(victim)?;
    for (&p, &epoch) in led.iter().zip(&epochs) {
        let v = cluster.wait_partition(raft_leader, "preferred", p, PARTITION_FAILOVER_TIMEOUT, "a new leader", |v| {
            v["leader"].as_u64().is_some_and(|l| l != victim && l > 0)
        })?;
        ensure!(v["leader_epoch"].as_i64().is_some_and(|e| e > epoch), "partition {p}: leader moved without a new epoch: {v}");
    }
    let took = killed_at.elapsed();
    eprintln!("partitions {led:?} of node {victim} failed over in {took:?}");
    ensure!(took <= FAILOVER_CONTRACT, "failover took {took:?}, the contract is 10 s");

    cluster.restart(victim)?;
    for p in 0..3 {
        cluster.wait_partition(raft_leader, "preferred", p, PREFERRED_LEADER_TIMEOUT, "preferred leadership back, full ISR", preferred_view)?;
    }
    Ok(())
}

/// A restarted broker must not act as the leader its pre-crash metadata remembers: from its first
/// answer it knows the failover that happened while it was down (it re-registers and applies that
/// before serving), so an acks=1 write sent to it — which it would acknowledge alone and lose when it
/// truncates to the real leader — is refused with NOT_LEADER_OR_FOLLOWER, and its Metadata names the
/// new leader.
#[test]
fn a_restarted_old_leader_knows_the_failover_from_its_first_answer() -> Result<()> {
    let _turn = serial();
    let mut cluster = TestCluster::start()?;
    ensure!(create_topic_rf(&mut cluster.node(1).client()?, "stale", 3, 3)? == code::NONE);
    let full_isr = |p: &Value| ids_of(&p["isr"]).len() == 3 && p["leader"].as_u64().is_some_and(|l| l > 0);
    for partition in 0..3 {
        cluster.wait_partition(1, "stale", partition, Duration::from_secs(20), "a leader and full ISR", full_isr)?;
    }
    // A partition led by a node that is not the Raft leader, so the metadata group keeps its leader.
    let (raft_leader, _) = cluster.wait_agreed_leader(&[1, 2, 3], Duration::from_secs(10))?;
    let (partition, victim) = (0..3)
        .find_map(|p| {
            let leader = cluster.partition(raft_leader, "stale", p).ok()?["leader"].as_u64()?;
            (leader != raft_leader).then_some((p, leader))
        })
        .context("every partition of a spread topic is led by the Raft leader")?;
    cluster.kill9(victim)?;
    let moved = cluster.wait_partition(raft_leader, "stale", partition, PARTITION_FAILOVER_TIMEOUT, "a new leader", |v| {
        v["leader"].as_u64().is_some_and(|l| l != victim && l > 0)
    })?;
    let new_leader = moved["leader"].as_i64().context("leader")?;

    cluster.restart(victim)?;
    let mut client = cluster.node(victim).client()?;
    let p = i32::try_from(partition)?;
    let answer = client.produce(9, "stale", p, record_batch(&["to-the-old-leader"], common::now_ms(), None)?, 1)?;
    ensure!(
        answer.error_code == NOT_LEADER_OR_FOLLOWER,
        "the restarted old leader answered acks=1 produce with {} (base offset {}) instead of NOT_LEADER_OR_FOLLOWER",
        answer.error_code,
        answer.base_offset
    );
    let md = client.metadata(9, Some(&["stale"]), false)?;
    let seen = md.topics.first().and_then(|t| t.partitions.iter().find(|x| x.partition_index == p)).map(|x| x.leader_id.0);
    ensure!(seen == Some(i32::try_from(new_leader)?), "the restarted node reports leader {seen:?}, the cluster moved it to {new_leader}");
    Ok(())
}

//! Life cycle of a one-voter metadata node on a real directory: bootstrap, restart without
//! re-initializing, recovery from snapshot plus log tail, torn tail and mid-log corruption.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use chronik_raft::log_file::{LogFile, LOG_FILE_NAME};
use chronik_raft::log_store::LogStore;
use chronik_raft::{BrokerNode, MetaCommand, MetaConfig, MetaError, MetaNode, MetaResponse, StoreError, RAFT_DIR_NAME};

fn config(dir: &Path, snapshot_logs_since_last: u64) -> MetaConfig {
    MetaConfig {
        node_id: 1,
        node: BrokerNode {
            kafka_addr: "127.0.0.1:9092".into(),
            wal_addr: "127.0.0.1:9291".into(),
            raft_addr: "127.0.0.1:5001".into(),
            admin_addr: "127.0.0.1:10001".into(),
            rack: None,
        },
        dir: dir.to_path_buf(),
        heartbeat_interval_ms: 50,
        election_timeout_min_ms: 200,
        election_timeout_max_ms: 400,
        snapshot_logs_since_last,
        ..MetaConfig::default()
    }
}

fn register(id: i32) -> MetaCommand {
    MetaCommand::RegisterBroker { id, node: BrokerNode { kafka_addr: format!("127.0.0.1:{}", 9090 + id), ..Default::default() }, incarnation: None }
}

fn create(name: &str, id: u8) -> MetaCommand {
    MetaCommand::CreateTopic { name: name.into(), topic_id: [id; 16], replicas: vec![vec![1], vec![1]], configs: BTreeMap::new() }
}

async fn write(node: &MetaNode, cmd: MetaCommand) -> MetaResponse {
    node.write(cmd).await.expect("write on the leader")
}

fn raft_dir(dir: &Path) -> std::path::PathBuf {
    dir.join(RAFT_DIR_NAME)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t20_restart_keeps_state_term_and_does_not_reinitialize() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = MetaNode::start(config(dir.path(), 1000)).await.expect("first start");
    assert!(node.bootstrapped());
    let first = node.status();
    assert!(first.is_leader, "{first:?}");
    assert_eq!(first.leader_id, Some(1));
    assert_eq!(first.voters, vec![1]);
    assert!(first.learners.is_empty());
    assert_eq!(first.nodes[&1].raft_addr, "127.0.0.1:5001");

    let mut applied = node.subscribe();
    assert_eq!(write(&node, register(1)).await, MetaResponse::Ok);
    assert_eq!(write(&node, create("orders", 3)).await, MetaResponse::TopicCreated { topic_id: [3; 16] });
    assert_eq!(write(&node, create("orders", 4)).await, MetaResponse::TopicAlreadyExists);
    assert_eq!(write(&node, MetaCommand::DeleteTopic { name: "gone".into() }).await, MetaResponse::UnknownTopic);
    let block = write(&node, MetaCommand::AllocateProducerIds { broker: 1, count: 100 }).await;
    assert_eq!(block, MetaResponse::ProducerIdBlock { first: 0, count: 100 });
    assert!(applied.has_changed().expect("watch open"));
    // Index 0 is the bootstrap membership, 1 the new leader's blank entry, 2..=6 the five writes;
    // the watch moves before a write is answered.
    assert_eq!(*applied.borrow_and_update(), 6);
    node.raft()
        .wait(Some(Duration::from_secs(5)))
        .applied_index(Some(6), "status catches up")
        .await
        .expect("metrics report index 6");
    assert_eq!(node.status().last_applied, Some(6));

    let before = node.state();
    assert_eq!(before.topics["orders"].partitions.len(), 2);
    assert_eq!(before.topics["orders"].topic_id, [3; 16]);
    node.shutdown().await.expect("shutdown");
    drop(node);

    let node = MetaNode::start(config(dir.path(), 1000)).await.expect("restart");
    assert!(!node.bootstrapped(), "a restart must not initialize again");
    let second = node.status();
    assert!(second.is_leader, "{second:?}");
    // openraft restores a lone voter's committed vote as leadership without a new election, so the
    // term may stay; it must never go back.
    assert!(first.term >= 1);
    assert!(second.term >= first.term, "term went from {} to {}", first.term, second.term);
    assert_eq!(node.state(), before);
    let block = write(&node, MetaCommand::AllocateProducerIds { broker: 1, count: 10 }).await;
    assert_eq!(block, MetaResponse::ProducerIdBlock { first: 100, count: 10 }, "no producer id reuse after restart");
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t20_recovers_from_snapshot_and_log_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = MetaNode::start(config(dir.path(), 5)).await.expect("start");
    write(&node, register(1)).await;
    for i in 0..30u8 {
        let r = write(&node, create(&format!("topic-{i}"), i + 1)).await;
        assert_eq!(r, MetaResponse::TopicCreated { topic_id: [i + 1; 16] });
    }
    node.raft()
        .wait(Some(Duration::from_secs(10)))
        .metrics(|m| m.snapshot.is_some() && m.purged.is_some(), "snapshot built and log purged")
        .await
        .expect("snapshot and purge");
    // One more entry after the snapshot, so recovery needs the log tail too.
    write(&node, MetaCommand::DeleteTopic { name: "topic-0".into() }).await;
    let before = node.state();
    let snapshot_index = node.raft().metrics().borrow().snapshot.map(|s| s.index).expect("snapshot");
    node.shutdown().await.expect("shutdown");
    drop(node);

    assert!(raft_dir(dir.path()).join("snapshot.json").exists());
    let store = LogStore::open(&raft_dir(dir.path())).expect("open log store");
    let first = store.first_index().expect("log tail exists");
    assert!(first > 0, "log was purged behind the snapshot (first index {first})");
    assert!(first <= snapshot_index + 1, "no hole between snapshot {snapshot_index} and log {first}");
    drop(store);

    let node = MetaNode::start(config(dir.path(), 5)).await.expect("restart");
    assert!(!node.bootstrapped());
    assert_eq!(node.state(), before);
    assert_eq!(node.state().topics.len(), 29);
    assert!(!node.state().topics.contains_key("topic-0"));
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t20_torn_tail_is_dropped_on_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = MetaNode::start(config(dir.path(), 1000)).await.expect("start");
    write(&node, register(1)).await;
    write(&node, create("a", 1)).await;
    let before = node.state();
    node.shutdown().await.expect("shutdown");
    drop(node);

    let log = raft_dir(dir.path()).join(LOG_FILE_NAME);
    let mut f = OpenOptions::new().append(true).open(&log).expect("open log");
    // A frame header promising 500 bytes followed by a few: a write cut short by a crash.
    f.write_all(&[0xf4, 0x01, 0, 0, 9, 9, 9, 9, b'{', b'"', b'l']).expect("append garbage");
    drop(f);

    let node = MetaNode::start(config(dir.path(), 1000)).await.expect("restart over a torn tail");
    assert_eq!(node.state(), before);
    assert_eq!(write(&node, create("b", 2)).await, MetaResponse::TopicCreated { topic_id: [2; 16] });
    node.shutdown().await.expect("shutdown");
    drop(node);

    let recovered = LogFile::open(&raft_dir(dir.path())).expect("reopen log");
    assert_eq!(recovered.torn_bytes, 0, "the torn bytes were cut before new appends");
    let indexes: Vec<u64> = recovered.entries.iter().map(|e| e.log_id.index).collect();
    let expected: Vec<u64> = (0..indexes.len() as u64).collect();
    assert_eq!(indexes, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t20_corruption_in_the_middle_fails_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let node: Arc<MetaNode> = MetaNode::start(config(dir.path(), 1000)).await.expect("start");
    write(&node, register(1)).await;
    write(&node, create("a", 1)).await;
    node.shutdown().await.expect("shutdown");
    drop(node);

    let log = raft_dir(dir.path()).join(LOG_FILE_NAME);
    let mut bytes = std::fs::read(&log).expect("read log");
    bytes[10] ^= 0x20; // inside the first frame's payload
    std::fs::write(&log, &bytes).expect("write log");
    match MetaNode::start(config(dir.path(), 1000)).await {
        Err(MetaError::Store(StoreError::Corrupt { offset, .. })) => assert_eq!(offset, 0),
        Err(other) => panic!("expected corruption at offset 0, got {other}"),
        Ok(_) => panic!("started over a corrupt log"),
    }
}

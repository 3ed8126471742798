//! Membership changes on real nodes over loopback: one node grows to three by `add_node` (the second
//! stays a learner until the third arrives), leadership moves by `transfer_leader`, a voter is removed
//! keeping the count odd, and its id is refused afterwards.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chronik_raft::{BrokerNode, MembershipError, MetaCommand, MetaConfig, MetaNode, MetaResponse, NodeId, VOTERS_MAX_DEFAULT};

const WAIT_MS: u64 = 10_000;

fn node(port: u16, id: NodeId) -> BrokerNode {
    BrokerNode {
        kafka_addr: format!("127.0.0.1:{}", 9000 + id),
        wal_addr: format!("127.0.0.1:{}", 9100 + id),
        raft_addr: format!("127.0.0.1:{port}"),
        admin_addr: String::new(),
        rack: None,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0)
}

async fn start(id: NodeId, me: &BrokerNode, dir: &std::path::Path, may_bootstrap: bool) -> Arc<MetaNode> {
    MetaNode::start(MetaConfig {
        node_id: id,
        node: me.clone(),
        dir: dir.to_path_buf(),
        bind_raft_addr: Some(me.raft_addr.clone()),
        peers: BTreeMap::new(),
        heartbeat_interval_ms: 50,
        election_timeout_min_ms: 300,
        election_timeout_max_ms: 600,
        may_bootstrap,
        ..MetaConfig::default()
    })
    .await
    .expect("start")
}

async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(WAIT_MS);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "not reached within {WAIT_MS} ms: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t35_one_node_grows_to_three_transfers_and_shrinks() {
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().expect("tempdir")).collect();
    let addrs: BTreeMap<NodeId, BrokerNode> = (1..=4).map(|id| (id, node(free_port(), id))).collect();
    let one = start(1, &addrs[&1], dirs[0].path(), true).await;
    let term = one.status().term;
    assert!(one.status().is_leader);

    // Node 2 is fresh and outside any initial cluster: it waits.
    let two = start(2, &addrs[&2], dirs[1].path(), false).await;
    assert!(!two.has_joined());
    let m = one.add_node(2, addrs[&2].clone(), VOTERS_MAX_DEFAULT).await.expect("add 2");
    assert_eq!((m.voters, m.learners), (vec![1], vec![2]), "a second node stays a learner");
    eventually("node 2 joined", || two.has_joined()).await;
    // A retry with the same addresses is answered, another address for the id is refused.
    assert!(one.add_node(2, addrs[&2].clone(), VOTERS_MAX_DEFAULT).await.is_ok());
    assert!(matches!(one.add_node(2, addrs[&3].clone(), VOTERS_MAX_DEFAULT).await, Err(MembershipError::AlreadyExists(2))));
    // Through a non-leader: refused, naming the leader.
    assert!(matches!(two.add_node(3, addrs[&3].clone(), VOTERS_MAX_DEFAULT).await, Err(MembershipError::NotLeader { leader_id: Some(1), .. })));

    let three = start(3, &addrs[&3], dirs[2].path(), false).await;
    let m = one.add_node(3, addrs[&3].clone(), VOTERS_MAX_DEFAULT).await.expect("add 3");
    assert_eq!((m.voters, m.learners), (vec![1, 2, 3], vec![]), "the third node makes three voters");
    assert_eq!(one.status().term, term, "an addition changes neither leader nor term");
    assert!(one.status().is_leader);
    let w = one.write(MetaCommand::InitClusterId { cluster_id: "c".into() }).await.expect("write");
    assert_eq!(w, MetaResponse::ClusterId("c".into()));
    eventually("the write is applied on every node", || {
        [&one, &two, &three].iter().all(|n| n.state().cluster_id.as_deref() == Some("c"))
    })
    .await;

    one.transfer_leader(3).await.expect("transfer to 3");
    eventually("node 3 leads for everyone", || [&one, &two, &three].iter().all(|n| n.status().leader_id == Some(3))).await;
    assert!(three.status().term > term);

    // Removing a voter of three would leave one: refused without force.
    let live: BTreeSet<NodeId> = [1, 2, 3].into();
    assert!(matches!(three.remove_node(2, false, &live, VOTERS_MAX_DEFAULT).await, Err(MembershipError::WouldBreakQuorum(_))));
    let m = three.remove_node(2, true, &live, VOTERS_MAX_DEFAULT).await.expect("forced removal");
    assert_eq!(m.voters.len(), 1, "the voter count stays odd: {m:?}");
    assert!(!m.voters.contains(&2) && !m.learners.contains(&2));
    assert!(three.state().removed_brokers.contains(&2));
    assert!(matches!(three.add_node(2, addrs[&2].clone(), VOTERS_MAX_DEFAULT).await, Err(MembershipError::Removed(_))));
    for n in [one, two, three] {
        n.shutdown().await.expect("shutdown");
    }
}

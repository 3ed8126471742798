//! Three metadata nodes in one process over real TCP on 127.0.0.1: forming once, agreeing on a
//! leader, forwarding writes, failing over, rejoining from disk, and refusing misaddressed RPCs.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chronik_raft::network::Network;
use chronik_raft::peer::{PeerConn, PeerError, PeerPool, PeerResponse, PeerRpc};
use openraft::error::RPCError;
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::VoteRequest;
use chronik_raft::{BrokerNode, ClusterInfo, MetaCommand, MetaConfig, MetaNode, MetaResponse, MetaStatus, NodeId};
use tempfile::TempDir;

/// Upper bound for anything a test waits for (elections take a few hundred ms here).
const WAIT_MS: u64 = 15_000;

/// Bound on one write in these tests: long enough to ride out an election.
const WRITE_DEADLINE_MS: u64 = 5_000;

/// Ports that were free a moment ago: bind them all at once, then release them.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> =
        (0..n).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0")).collect();
    listeners.iter().map(|l| l.local_addr().expect("local addr").port()).collect()
}

/// Data dirs and addresses of a three-node cluster; nodes are started and stopped by the tests.
struct Cluster {
    dirs: BTreeMap<NodeId, TempDir>,
    peers: BTreeMap<NodeId, BrokerNode>,
}

impl Cluster {
    fn new(ids: &[NodeId]) -> Cluster {
        let ports = free_ports(ids.len());
        let peers = ids
            .iter()
            .zip(ports)
            .map(|(id, port)| {
                let node = BrokerNode {
                    kafka_addr: format!("127.0.0.1:{}", 9000 + id),
                    wal_addr: format!("127.0.0.1:{}", 9100 + id),
                    raft_addr: format!("127.0.0.1:{port}"),
                    admin_addr: String::new(),
                    rack: None,
                };
                (*id, node)
            })
            .collect();
        let dirs = ids.iter().map(|id| (*id, tempfile::tempdir().expect("tempdir"))).collect();
        Cluster { dirs, peers }
    }

    fn config(&self, id: NodeId) -> MetaConfig {
        MetaConfig {
            node_id: id,
            node: self.peers[&id].clone(),
            dir: self.dirs[&id].path().to_path_buf(),
            bind_raft_addr: Some(self.peers[&id].raft_addr.clone()),
            peers: self.peers.clone(),
            heartbeat_interval_ms: 50,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            leader_wait_ms: WAIT_MS,
            write_deadline_ms: WRITE_DEADLINE_MS,
            snapshot_logs_since_last: 1000,
            may_bootstrap: true,
        }
    }

    async fn start(&self, id: NodeId) -> Arc<MetaNode> {
        MetaNode::start(self.config(id)).await.unwrap_or_else(|e| panic!("node {id} start: {e}"))
    }

    /// Start `ids` concurrently, as a script starting all nodes at once would.
    async fn start_all(&self, ids: &[NodeId]) -> BTreeMap<NodeId, Arc<MetaNode>> {
        let mut starts = tokio::task::JoinSet::new();
        for id in ids {
            let cfg = self.config(*id);
            starts.spawn(async move { (cfg.node_id, MetaNode::start(cfg).await) });
        }
        let mut nodes = BTreeMap::new();
        while let Some(done) = starts.join_next().await {
            let (id, started) = done.expect("start task");
            nodes.insert(id, started.unwrap_or_else(|e| panic!("node {id} start: {e}")));
        }
        nodes
    }
}

/// Poll `check` until it holds or [`WAIT_MS`] passes; the panic names `what`.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(WAIT_MS);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "not reached within {WAIT_MS} ms: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait until every node names the same leader in the same term, and that leader is one of
/// `nodes` and knows it leads (a stopped leader is still named for a while); return its status.
async fn agreed_leader(nodes: &BTreeMap<NodeId, Arc<MetaNode>>) -> MetaStatus {
    eventually("all nodes agree on a live leader and term", || {
        let s: Vec<MetaStatus> = nodes.values().map(|n| n.status()).collect();
        let live_leader = s.iter().any(|x| x.is_leader && Some(x.node_id) == s[0].leader_id);
        live_leader && s.iter().all(|x| x.leader_id == s[0].leader_id && x.term == s[0].term)
    })
    .await;
    let leader = nodes.values().next().and_then(|n| n.status().leader_id).expect("leader");
    let status = nodes[&leader].status();
    assert!(status.is_leader, "{status:?}");
    status
}

async fn same_state_everywhere(nodes: &BTreeMap<NodeId, Arc<MetaNode>>, what: &str) {
    eventually(what, || {
        let states: Vec<_> = nodes.values().map(|n| n.state()).collect();
        states.iter().all(|s| *s == states[0])
    })
    .await;
}

/// Register every broker of the cluster (topics may only name registered brokers), writing
/// through `via`, whichever node that is.
async fn register_all(cluster: &Cluster, via: &MetaNode) {
    for (id, node) in &cluster.peers {
        let r = via.write(MetaCommand::RegisterBroker { id: *id as i32, node: node.clone(), incarnation: None }).await.expect("register");
        assert_eq!(r, MetaResponse::Ok);
    }
}

fn create(name: &str, id: u8) -> MetaCommand {
    MetaCommand::CreateTopic { name: name.into(), topic_id: [id; 16], replicas: vec![vec![1]], configs: BTreeMap::new() }
}

async fn stop(node: Arc<MetaNode>) {
    node.shutdown().await.expect("shutdown");
    drop(node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t30_three_nodes_form_once_agree_and_forward_writes() {
    let cluster = Cluster::new(&[1, 2, 3]);
    let nodes = cluster.start_all(&[1, 2, 3]).await;
    let initializers: Vec<NodeId> = nodes.iter().filter(|(_, n)| n.bootstrapped()).map(|(id, _)| *id).collect();
    assert_eq!(initializers, vec![1], "exactly the lowest id initializes");

    let leader = agreed_leader(&nodes).await;
    assert!(leader.term >= 1);
    for node in nodes.values() {
        let s = node.status();
        assert_eq!(s.voters, vec![1, 2, 3], "{s:?}");
        assert!(s.learners.is_empty(), "{s:?}");
        assert_eq!(s.nodes[&2].raft_addr, cluster.peers[&2].raft_addr, "every node learns every endpoint");
        assert_eq!(s.is_leader, s.node_id == leader.node_id, "{s:?}");
    }

    let followers: Vec<NodeId> = nodes.keys().copied().filter(|id| *id != leader.node_id).collect();
    register_all(&cluster, &nodes[&followers[0]]).await;
    let answer = nodes[&followers[0]].write(create("orders", 7)).await.expect("write on a follower");
    assert_eq!(answer, MetaResponse::TopicCreated { topic_id: [7; 16] });
    // The answer came from the leader's apply: a second create from the other follower is refused.
    let again = nodes[&followers[1]].write(create("orders", 8)).await.expect("write on the other follower");
    assert_eq!(again, MetaResponse::TopicAlreadyExists);
    eventually("the topic is applied on every node", || nodes.values().all(|n| n.state().topics.contains_key("orders"))).await;
    same_state_everywhere(&nodes, "identical state").await;
    assert_eq!(nodes[&followers[1]].state().topics["orders"].topic_id, [7; 16]);

    for node in nodes.into_values() {
        stop(node).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t30_leader_failover_then_old_leader_rejoins_and_catches_up() {
    let cluster = Cluster::new(&[1, 2, 3]);
    let mut nodes = cluster.start_all(&[1, 2, 3]).await;
    let first = agreed_leader(&nodes).await;
    let any = nodes[&3].clone();
    register_all(&cluster, &any).await;
    assert_eq!(any.write(create("before", 1)).await.expect("write"), MetaResponse::TopicCreated { topic_id: [1; 16] });

    let old = first.node_id;
    stop(nodes.remove(&old).expect("leader node")).await;
    let second = agreed_leader(&nodes).await;
    assert_ne!(second.node_id, old, "a new leader among the survivors");
    assert!(second.term > first.term, "term {} after {}", second.term, first.term);
    for node in nodes.values() {
        let r = node.write(MetaCommand::AllocateProducerIds { broker: node.status().node_id as i32, count: 10 }).await;
        assert!(matches!(r, Ok(MetaResponse::ProducerIdBlock { count: 10, .. })), "write during failover: {r:?}");
    }
    let during = format!("during-{old}");
    nodes.values().next().expect("survivor").write(create(&during, 2)).await.expect("write after failover");

    let back = cluster.start(old).await;
    assert!(!back.bootstrapped(), "a restart never initializes");
    nodes.insert(old, back);
    let third = agreed_leader(&nodes).await;
    assert!(third.term >= second.term);
    same_state_everywhere(&nodes, "the old leader caught up").await;
    let state = nodes[&old].state();
    assert!(state.topics.contains_key("before") && state.topics.contains_key(&during), "{:?}", state.topics.keys());
    // Producer id blocks never overlap, whoever allocated them.
    let block = nodes[&old].write(MetaCommand::AllocateProducerIds { broker: old as i32, count: 5 }).await.expect("write");
    assert_eq!(block, MetaResponse::ProducerIdBlock { first: 20, count: 5 });

    for node in nodes.into_values() {
        stop(node).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t30_majority_forms_the_cluster_and_a_late_node_catches_up() {
    let cluster = Cluster::new(&[1, 2, 3]);
    let mut nodes = cluster.start_all(&[1, 2]).await;
    assert!(nodes[&1].bootstrapped() && !nodes[&2].bootstrapped());
    agreed_leader(&nodes).await;
    register_all(&cluster, &nodes[&2]).await;
    nodes[&2].write(create("early", 4)).await.expect("write with two of three");

    let late = cluster.start(3).await;
    assert!(!late.bootstrapped());
    nodes.insert(3, late);
    let leader = agreed_leader(&nodes).await;
    assert_eq!(leader.voters, vec![1, 2, 3]);
    same_state_everywhere(&nodes, "the late node caught up").await;
    assert!(nodes[&3].state().topics.contains_key("early"));

    for node in nodes.into_values() {
        stop(node).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t30_rpc_for_another_node_id_is_refused() {
    let cluster = Cluster::new(&[1]);
    let mut cfg = cluster.config(1);
    cfg.peers.clear(); // a single node that still listens on its raft address
    let node = MetaNode::start(cfg).await.expect("start");
    let addr = cluster.peers[&1].raft_addr.clone();
    assert_eq!(node.raft_local_addr().map(|a| a.to_string()), Some(addr.clone()));
    let timeout = Duration::from_secs(2);
    register_all(&cluster, &node).await;

    let wrong = PeerConn::new(2, addr.clone());
    match wrong.call(PeerRpc::ClusterInfo, timeout).await {
        Err(PeerError::WrongTarget { target: 2, receiver: 1, .. }) => {}
        other => panic!("expected a refusal naming node 1, got {other:?}"),
    }
    // A forwarded write to the wrong id is refused too, and nothing is applied.
    let refused = wrong.call(PeerRpc::ForwardWrite(create("sneaky", 9)), timeout).await;
    assert!(matches!(refused, Err(PeerError::WrongTarget { .. })), "{refused:?}");
    assert!(!node.state().topics.contains_key("sneaky"));

    // openraft's client sees the refusal as an unreachable peer (it backs off, never replicates).
    let misdirected = BrokerNode { raft_addr: addr.clone(), ..Default::default() };
    let mut client = Network::new(5, PeerPool::default()).new_client(2, &misdirected).await;
    let vote = VoteRequest::new(openraft::Vote::new(9, 5), None);
    match client.vote(vote, RPCOption::new(timeout)).await {
        Err(RPCError::Unreachable(u)) => assert!(u.to_string().contains("that address is node 1"), "{u}"),
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(node.status().is_leader, "the misaddressed vote did not reach node 1's Raft");

    // The right id is answered.
    let right = PeerConn::new(1, addr);
    match right.call(PeerRpc::ClusterInfo, timeout).await {
        Ok(PeerResponse::ClusterInfo(ClusterInfo { node_id: 1, initialized: true, leader_id: Some(1), .. })) => {}
        other => panic!("expected cluster info of node 1, got {other:?}"),
    }
    match right.call(PeerRpc::ForwardWrite(create("direct", 3)), timeout).await {
        Ok(PeerResponse::ForwardWrite(Ok(MetaResponse::TopicCreated { topic_id }))) => assert_eq!(topic_id, [3; 16]),
        other => panic!("expected the leader to apply a forwarded write, got {other:?}"),
    }
    assert!(node.state().topics.contains_key("direct"));

    node.shutdown().await.expect("shutdown");
    // After shutdown the port is released: nobody answers.
    let gone = PeerConn::new(1, cluster.peers[&1].raft_addr.clone()).call(PeerRpc::ClusterInfo, timeout).await;
    assert!(matches!(gone, Err(PeerError::Connect { .. })), "{gone:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t30_late_node_behind_a_purged_log_gets_the_snapshot() {
    let cluster = Cluster::new(&[1, 2, 3]);
    let mut nodes = BTreeMap::new();
    {
        let mut starts = tokio::task::JoinSet::new();
        for id in [1, 2] {
            let mut cfg = cluster.config(id);
            cfg.snapshot_logs_since_last = 5;
            starts.spawn(async move { (id, MetaNode::start(cfg).await) });
        }
        while let Some(done) = starts.join_next().await {
            let (id, started) = done.expect("start task");
            nodes.insert(id, started.unwrap_or_else(|e| panic!("node {id} start: {e}")));
        }
    }
    agreed_leader(&nodes).await;
    register_all(&cluster, &nodes[&1]).await;
    for i in 0..30u8 {
        nodes[&2].write(create(&format!("t-{i}"), i + 1)).await.expect("write");
    }
    let leader = agreed_leader(&nodes).await.node_id;
    nodes[&leader]
        .raft()
        .wait(Some(Duration::from_millis(WAIT_MS)))
        .metrics(|m| m.purged.map(|p| p.index > 5).unwrap_or(false), "leader purged its log")
        .await
        .expect("purge");

    let mut cfg = cluster.config(3);
    cfg.snapshot_logs_since_last = 5;
    nodes.insert(3, MetaNode::start(cfg).await.expect("late start"));
    // The leader no longer holds the first entries, so node 3 can only get there through a
    // snapshot sent over the transport in chunks.
    same_state_everywhere(&nodes, "the late node installed the snapshot").await;
    assert_eq!(nodes[&3].state().topics.len(), 30);
    assert!(nodes[&3].raft().metrics().borrow().snapshot.is_some());

    for node in nodes.into_values() {
        stop(node).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t30_whole_cluster_restarts_from_disk_without_initializing() {
    let cluster = Cluster::new(&[1, 2, 3]);
    let nodes = cluster.start_all(&[1, 2, 3]).await;
    let first = agreed_leader(&nodes).await;
    register_all(&cluster, &nodes[&2]).await;
    nodes[&3].write(create("kept", 5)).await.expect("write");
    same_state_everywhere(&nodes, "written everywhere").await;
    let before = nodes[&1].state();
    for node in nodes.into_values() {
        stop(node).await;
    }

    let nodes = cluster.start_all(&[1, 2, 3]).await;
    assert!(nodes.values().all(|n| !n.bootstrapped()), "no node initializes on restart");
    let second = agreed_leader(&nodes).await;
    // openraft lets a leader whose vote was committed resume leading in the same term (no other
    // node can have been granted that term); the term must never go back.
    assert!(second.term >= first.term, "term went from {} to {}", first.term, second.term);
    assert_eq!(second.voters, vec![1, 2, 3]);
    same_state_everywhere(&nodes, "state restored everywhere").await;
    assert_eq!(nodes[&2].state(), before);
    let again = nodes[&1].write(create("kept", 6)).await.expect("write after restart");
    assert_eq!(again, MetaResponse::TopicAlreadyExists);

    for node in nodes.into_values() {
        stop(node).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t30_without_a_quorum_writes_fail_retriably_then_resume() {
    let cluster = Cluster::new(&[1, 2, 3]);
    let mut nodes = cluster.start_all(&[1, 2, 3]).await;
    let first = agreed_leader(&nodes).await;
    register_all(&cluster, &nodes[&1]).await;
    let survivor = *nodes.keys().find(|id| **id != first.node_id).expect("a follower");
    let gone: Vec<NodeId> = nodes.keys().copied().filter(|id| *id != survivor).collect();
    for id in &gone {
        stop(nodes.remove(id).expect("node")).await;
    }

    let started = tokio::time::Instant::now();
    let err = nodes[&survivor].write(create("lonely", 1)).await.expect_err("no quorum, no write");
    let took_ms = started.elapsed().as_millis() as u64;
    assert!(err.is_retriable(), "{err}");
    assert!(matches!(err, chronik_raft::MetaError::NoLeader { node_id, .. } if node_id == survivor), "{err}");
    assert!((WRITE_DEADLINE_MS - 100..WRITE_DEADLINE_MS + 3_000).contains(&took_ms), "gave up after {took_ms} ms");

    for id in gone {
        nodes.insert(id, cluster.start(id).await);
    }
    agreed_leader(&nodes).await;
    let r = nodes[&survivor].write(create("lonely", 2)).await.expect("write once a quorum is back");
    // The failed attempt may or may not have been applied after all; either answer is consistent.
    assert!(matches!(r, MetaResponse::TopicCreated { .. } | MetaResponse::TopicAlreadyExists), "{r:?}");
    same_state_everywhere(&nodes, "state agrees after the outage").await;
    assert!(nodes[&first.node_id].state().topics.contains_key("lonely"));

    for node in nodes.into_values() {
        stop(node).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t30_bad_peer_configs_are_refused_before_anything_starts() {
    let cluster = Cluster::new(&[1, 2, 3]);
    let mut missing_self = cluster.config(1);
    missing_self.peers.remove(&1);
    let err = MetaNode::start(missing_self).await.err().expect("peers without this node");
    assert!(matches!(&err, chronik_raft::MetaError::Config(m) if m.contains("do not include this node's id 1")), "{err}");

    let mut deaf = cluster.config(2);
    deaf.bind_raft_addr = None;
    let err = MetaNode::start(deaf).await.err().expect("peers without a listener");
    assert!(matches!(&err, chronik_raft::MetaError::Config(m) if m.contains("bind_raft_addr")), "{err}");
    assert!(!cluster.dirs[&2].path().join(chronik_raft::RAFT_DIR_NAME).exists(), "refused before touching the data dir");
}

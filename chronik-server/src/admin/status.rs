//! `GET /admin/status`: nodes with their addresses (and draining state, replicas held), partitions
//! with leader, replicas, ISR and epoch, and the moves in progress. A move's catch-up progress (bytes
//! stored on each replica being added, of the leader's log, the measured rate and the time left) is
//! known to the partition's leader only: this node fills it in for the moves whose partition it leads
//! and leaves `progress` null for the others (`cluster status` asks their leaders).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::broker::Broker;
use crate::ids::BrokerId;

pub async fn get(State(broker): State<Arc<Broker>>) -> Json<Value> {
    let state = broker.meta.state();
    let status = broker.meta.status();
    let nodes: Vec<Value> = state
        .brokers
        .values()
        .map(|b| {
            let role = match BrokerId(b.id).node_id() {
                Some(id) if status.voters.contains(&id) => "voter",
                Some(id) if status.learners.contains(&id) => "learner",
                _ => "observer",
            };
            json!({
                "id": b.id,
                "kafka_addr": b.node.kafka_addr,
                "wal_addr": b.node.wal_addr,
                "raft_addr": b.node.raft_addr,
                "admin_addr": b.node.admin_addr,
                "role": role,
                "live": !b.fenced,
                "draining": b.draining,
                "replicas": state.replicas_on(b.id).len(),
            })
        })
        .collect();
    let mut partitions = Vec::new();
    let mut reassignments = Vec::new();
    for t in state.topics.values() {
        for (i, p) in t.partitions.iter().enumerate() {
            let local = broker.partitions.get(&t.name, i as i32);
            if p.moving() {
                let progress = local.as_ref().filter(|_| p.leader == broker.node_id.0).map(|l| {
                    p.adding_replicas.iter().map(|r| catch_up_progress(&broker, l, &t.name, i as i32, *r)).collect::<Vec<_>>()
                });
                reassignments.push(json!({
                    "topic": t.name,
                    "partition": i,
                    "leader": p.leader,
                    "target_replicas": p.target_replicas,
                    "adding_replicas": p.adding_replicas,
                    "removing_replicas": p.removing_replicas,
                    "isr": p.isr,
                    "progress": progress,
                }));
            }
            partitions.push(json!({
                "topic": t.name,
                "partition": i,
                "leader": p.leader,
                "replicas": p.replicas,
                "isr": p.isr,
                "leader_epoch": p.leader_epoch,
                "partition_epoch": p.partition_epoch,
                "adding_replicas": p.adding_replicas,
                "removing_replicas": p.removing_replicas,
                "high_watermark": local.as_ref().map(|l| l.high_watermark()),
                "log_start_offset": local.as_ref().map(|l| l.log_start_offset()),
            }));
        }
    }
    Json(json!({
        "node_id": status.node_id,
        "leader_id": status.leader_id,
        "term": status.term,
        "nodes": nodes,
        "partitions": partitions,
        "reassignments": reassignments,
        "reassignment_throttle_bytes_per_s": broker.catch_up.limit_bytes_per_s(),
    }))
}

/// One replica's catch-up, as this leader sees it: bytes it has stored of the log, the log's size,
/// the measured rate and the seconds left at that rate.
fn catch_up_progress(broker: &Broker, log: &crate::partition::Partition, topic: &str, partition: i32, replica: i32) -> Value {
    let total = log.size_bytes();
    let done = log.follower_log_end(replica).and_then(|end| log.bytes_below(end).ok()).unwrap_or(0).min(total);
    let rate = broker.catch_up.rate(topic, partition, replica);
    let bytes_per_s = rate.and_then(|r| r.bytes_per_s);
    let eta_s = bytes_per_s.filter(|r| *r > 0.0).map(|r| ((total - done) as f64 / r).ceil() as u64);
    json!({
        "replica": replica,
        "bytes_done": done,
        "bytes_total": total,
        "bytes_per_s": bytes_per_s.map(|r| r.round() as u64),
        "eta_s": eta_s,
    })
}

//! `GET /admin/status`: nodes with their addresses and partitions with leader, replicas, ISR and epoch.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use crate::broker::Broker;

pub async fn get(State(broker): State<Arc<Broker>>) -> Json<Value> {
    let state = broker.meta.state();
    let status = broker.meta.status();
    let nodes: Vec<Value> = state
        .brokers
        .values()
        .map(|b| {
            let id = b.id as u64;
            let role = if status.voters.contains(&id) { "voter" } else if status.learners.contains(&id) { "learner" } else { "observer" };
            json!({
                "id": b.id,
                "kafka_addr": b.node.kafka_addr,
                "wal_addr": b.node.wal_addr,
                "raft_addr": b.node.raft_addr,
                "admin_addr": b.node.admin_addr,
                "role": role,
                "live": !b.fenced,
            })
        })
        .collect();
    let mut partitions = Vec::new();
    for t in state.topics.values() {
        for (i, p) in t.partitions.iter().enumerate() {
            let local = broker.partitions.get(&t.name, i as i32);
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
        "reassignments": [],
    }))
}

//! `GET /admin/health`: this node's view of the metadata Raft group (docs/ADMIN-API.md).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use chronik_raft::MetaStatus;

use crate::broker::Broker;

#[derive(Serialize)]
pub struct Health {
    status: &'static str,
    node_id: u64,
    is_leader: bool,
    leader_id: Option<u64>,
    term: u64,
    cluster_nodes: Vec<u64>,
    voters: Vec<u64>,
    learners: Vec<u64>,
}

impl Health {
    /// `status`: `ok`, `no_leader`, `waiting_to_join` or `catching_up`.
    pub fn of(s: &MetaStatus, status: &'static str) -> Health {
        Health {
            status,
            node_id: s.node_id,
            is_leader: s.is_leader,
            leader_id: s.leader_id,
            term: s.term,
            cluster_nodes: s.nodes.keys().copied().collect(),
            voters: s.voters.clone(),
            learners: s.learners.clone(),
        }
    }
}

pub async fn get(State(broker): State<Arc<Broker>>) -> Json<Health> {
    let s = broker.meta.status();
    let status = if s.leader_id.is_some() { "ok" } else { "no_leader" };
    Json(Health::of(&s, status))
}

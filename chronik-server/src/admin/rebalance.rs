//! `POST /admin/rebalance[?dry_run=true]`: the moves the planner would make now. A dry run only
//! answers them; otherwise the metadata leader's controller starts carrying them out (a bounded
//! number at a time, data first) on its next tick.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chronik_rebalancer::Move;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::broker::Broker;
use crate::controller::rebalance;

#[derive(Debug, Deserialize)]
pub struct Params {
    #[serde(default)]
    dry_run: bool,
}

fn describe(m: &Move) -> Value {
    match m {
        Move::Replica { topic, partition, from, to, replicas } => {
            json!({"kind": "replica", "topic": topic, "partition": partition, "from": from, "to": to, "replicas": replicas})
        }
        Move::Leader { topic, partition, to, replicas } => {
            json!({"kind": "leader", "topic": topic, "partition": partition, "to": to, "replicas": replicas})
        }
    }
}

pub async fn post(
    State(broker): State<Arc<Broker>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(params): Query<Params>,
) -> (StatusCode, Json<Value>) {
    if !params.dry_run {
        if let Err((status, message)) = super::auth::check(broker.config.admin_token.as_deref(), &headers, peer) {
            return (status, Json(json!({"success": false, "message": message})));
        }
    }
    let status = broker.meta.status();
    if !status.is_leader {
        let leader_admin = status.leader_id.and_then(|id| status.nodes.get(&id)).map(|n| n.admin_addr.clone());
        return (
            StatusCode::MISDIRECTED_REQUEST,
            Json(json!({"success": false, "message": "this node is not the metadata leader", "leader_id": status.leader_id, "leader_admin": leader_admin})),
        );
    }
    let moves = rebalance::plan(&broker.meta.state());
    let message = match (moves.is_empty(), params.dry_run) {
        (true, _) => "no moves: the cluster is balanced".to_string(),
        (false, true) => format!("{} move(s) planned; nothing changed (dry run)", moves.len()),
        (false, false) => {
            broker.rebalance_requested.store(true, Ordering::Relaxed);
            format!("{} move(s) planned; the controller starts them, {} at a time", moves.len(), rebalance::MOVES_IN_FLIGHT_MAX)
        }
    };
    (StatusCode::OK, Json(json!({"success": true, "message": message, "dry_run": params.dry_run, "moves": moves.iter().map(describe).collect::<Vec<_>>()})))
}

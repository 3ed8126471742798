//! `POST /admin/rebalance[?dry_run=true]`: the moves the planner would make now, each with the
//! partition's size, and the bytes the plan copies in all. A dry run only answers them; otherwise the
//! metadata leader's controller starts carrying them out (a bounded number at a time, data first) on
//! its next tick. Sizes are those brokers reported with their heartbeats in this term, used only once
//! every live broker has reported (`sizes_known`; until then every size is 0 and the plan balances
//! replica counts only).

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
use crate::controller::sizes::PartitionSizes;

#[derive(Debug, Deserialize)]
pub struct Params {
    #[serde(default)]
    dry_run: bool,
}

/// One move as the answer lists it; `size_bytes` is the partition's size (a leader move copies none
/// of it).
fn describe(m: &Move, sizes: &PartitionSizes) -> Value {
    match m {
        Move::Replica { topic, partition, from, to, replicas } => {
            json!({"kind": "replica", "topic": topic, "partition": partition, "from": from, "to": to, "replicas": replicas, "size_bytes": sizes.of(topic, *partition)})
        }
        Move::Leader { topic, partition, to, replicas } => {
            json!({"kind": "leader", "topic": topic, "partition": partition, "to": to, "replicas": replicas, "size_bytes": sizes.of(topic, *partition)})
        }
    }
}

/// Bytes the plan copies: each replica move copies its partition once.
fn bytes_to_move(moves: &[Move], sizes: &PartitionSizes) -> u64 {
    moves
        .iter()
        .filter_map(|m| match m {
            Move::Replica { topic, partition, .. } => Some(sizes.of(topic, *partition)),
            Move::Leader { .. } => None,
        })
        .fold(0u64, u64::saturating_add)
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
    let state = broker.meta.state();
    let sizes = PartitionSizes::from_reports(&state, &broker.meta.size_reports().of_term(status.term));
    let moves = rebalance::plan(&state, &sizes);
    let message = match (moves.is_empty(), params.dry_run) {
        (true, _) => "no moves: the cluster is balanced".to_string(),
        (false, true) => format!("{} move(s) planned; nothing changed (dry run)", moves.len()),
        (false, false) => {
            broker.rebalance_requested.store(true, Ordering::Relaxed);
            format!("{} move(s) planned; the controller starts them, {} at a time", moves.len(), rebalance::MOVES_IN_FLIGHT_MAX)
        }
    };
    (
        StatusCode::OK,
        Json(json!({
            "success": true,
            "message": message,
            "dry_run": params.dry_run,
            "sizes_known": sizes.known(),
            "sizes_missing_from": sizes.missing(),
            "bytes_to_move": bytes_to_move(&moves, &sizes),
            "moves": moves.iter().map(|m| describe(m, &sizes)).collect::<Vec<_>>(),
        })),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_to_move_counts_replica_moves_only() {
        let sizes = PartitionSizes::unknown();
        let moves = vec![
            Move::Replica { topic: "t".into(), partition: 0, from: 1, to: 4, replicas: vec![4, 2] },
            Move::Leader { topic: "t".into(), partition: 1, to: 2, replicas: vec![2, 1] },
        ];
        assert_eq!(bytes_to_move(&moves, &sizes), 0, "sizes unknown: 0");
        assert_eq!(describe(&moves[0], &sizes)["size_bytes"], json!(0));
        let sizes = PartitionSizes::known_as([(("t".to_string(), 0), 700), (("t".to_string(), 1), 50)].into_iter().collect());
        assert_eq!(bytes_to_move(&moves, &sizes), 700, "a leader move copies nothing");
        assert_eq!(describe(&moves[0], &sizes)["size_bytes"], json!(700));
        assert_eq!(describe(&moves[1], &sizes)["size_bytes"], json!(50));
    }
}

//! Self-join (`start --join` or `join = true`): a fresh node asks the cluster to add it, through the
//! admin addresses of the other `[[peers]]` of its config, following the `leader_admin` a follower
//! names, until a metadata leader has reached it. The leader adds it as a learner and promotes it by
//! the odd-voter policy, exactly as `chronik-server cluster add-node` would.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use chronik_raft::{BrokerNode, MetaNode};
use serde_json::json;

use crate::cluster_cli::http::post_json;
use crate::config::Config;

/// Pause between rounds of asking every known admin address.
const JOIN_RETRY_MS: u64 = 2_000;
/// Most `leader_admin` hints followed in one round (a bound against two nodes naming each other).
const HINTS_PER_ROUND_MAX: usize = 8;

pub async fn run(config: Config, node_id: u64, node: BrokerNode, meta: Arc<MetaNode>) {
    let body = json!({
        "node_id": node_id,
        "kafka_addr": node.kafka_addr,
        "wal_addr": node.wal_addr,
        "raft_addr": node.raft_addr,
        "admin_addr": node.admin_addr,
        "rack": node.rack,
    });
    let seeds: Vec<String> = config.peers.iter().filter(|p| p.id != node_id).map(Config::peer_admin_addr).collect();
    let token = config.admin_token.clone();
    while !meta.has_joined() {
        let mut queue: VecDeque<String> = seeds.iter().cloned().collect();
        let mut hints = 0;
        while let Some(addr) = queue.pop_front() {
            if meta.has_joined() {
                return;
            }
            match post_json(&addr, "/admin/add-node", &body, token.as_deref()).await {
                Ok((status, answer)) if status.is_success() => {
                    tracing::info!(node_id, via = %addr, message = %answer["message"], "the cluster added this node");
                    return;
                }
                Ok((status, answer)) => {
                    let message = answer["message"].as_str().unwrap_or("").to_string();
                    if let Some(leader) = answer["leader_admin"].as_str().filter(|a| !a.is_empty() && *a != addr) {
                        if hints < HINTS_PER_ROUND_MAX {
                            hints += 1;
                            queue.push_front(leader.to_string());
                        }
                    }
                    tracing::info!(node_id, via = %addr, %status, %message, "join request not taken");
                }
                Err(e) => tracing::debug!(node_id, via = %addr, error = %e, "join request failed"),
            }
        }
        tokio::time::sleep(Duration::from_millis(JOIN_RETRY_MS)).await;
    }
}

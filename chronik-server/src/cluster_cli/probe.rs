//! Asking the cluster what it looks like: every known admin endpoint's `/admin/health`, and from the
//! answers the metadata leader (its id, term and admin address).
//!
//! The leader decision is a plain function over the answers ([`find_leader`]) so it is tested without
//! a cluster: a node that says it leads wins over hearsay, and a higher term wins over a lower one
//! (a node cut off from the majority may still believe an old leader).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::http::get_json;
use super::CliError;

/// One node's `/admin/health` (docs/ADMIN-API.md).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Health {
    pub status: String,
    pub node_id: u64,
    pub is_leader: bool,
    pub leader_id: Option<u64>,
    pub term: u64,
    #[serde(default)]
    pub cluster_nodes: Vec<u64>,
    #[serde(default)]
    pub voters: Vec<u64>,
    #[serde(default)]
    pub learners: Vec<u64>,
}

/// What one admin address answered.
#[derive(Debug)]
pub struct Answer {
    pub addr: String,
    pub health: Result<Health, CliError>,
}

/// The metadata leader as the answers show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Leader {
    pub leader_id: u64,
    pub term: u64,
    /// Admin address of the leader when one of the answers came from it (else found later).
    pub admin: Option<String>,
}

/// Asks every address in `addrs` for `/admin/health`, concurrently; answers keep the order of `addrs`.
pub async fn ask_all(addrs: &[String]) -> Vec<Answer> {
    let tasks: Vec<_> = addrs
        .iter()
        .map(|addr| {
            let addr = addr.clone();
            tokio::spawn(async move {
                let health = get_json(&addr, "/admin/health").await.and_then(|v| parse_health(&addr, v));
                Answer { addr, health }
            })
        })
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for (task, addr) in tasks.into_iter().zip(addrs) {
        out.push(task.await.unwrap_or_else(|e| Answer {
            addr: addr.clone(),
            health: Err(CliError::Request { addr: addr.clone(), path: "/admin/health".into(), reason: format!("task failed: {e}") }),
        }));
    }
    out
}

fn parse_health(addr: &str, v: Value) -> Result<Health, CliError> {
    serde_json::from_value(v).map_err(|e| CliError::Request {
        addr: addr.to_string(),
        path: "/admin/health".into(),
        reason: format!("unexpected health document: {e}"),
    })
}

/// The leader the answers point at: the self-declared leader with the highest term, else the
/// `leader_id` reported with the highest term. `None` when no answering node knows a leader.
pub fn find_leader(answers: &[Answer]) -> Option<Leader> {
    let ok = || answers.iter().filter_map(|a| a.health.as_ref().ok().map(|h| (a, h)));
    if let Some((a, h)) = ok().filter(|(_, h)| h.is_leader).max_by_key(|(_, h)| h.term) {
        return Some(Leader { leader_id: h.node_id, term: h.term, admin: Some(a.addr.clone()) });
    }
    ok().filter_map(|(_, h)| h.leader_id.map(|id| (id, h.term)))
        .max_by_key(|&(_, term)| term)
        .map(|(leader_id, term)| Leader { leader_id, term, admin: None })
}

/// Why the answering nodes do not agree on one leader and term, or `None` when they do.
pub fn disagreement(answers: &[Answer]) -> Option<String> {
    let mut views: BTreeMap<(Option<u64>, u64), Vec<u64>> = BTreeMap::new();
    for h in answers.iter().filter_map(|a| a.health.as_ref().ok()) {
        views.entry((h.leader_id, h.term)).or_default().push(h.node_id);
    }
    if views.len() <= 1 {
        return None;
    }
    let parts: Vec<String> = views
        .iter()
        .map(|((leader, term), nodes)| {
            let leader = leader.map_or("none".to_string(), |l| l.to_string());
            format!("nodes {nodes:?} see leader {leader} in term {term}")
        })
        .collect();
    Some(parts.join("; "))
}

/// Admin addresses by node id from an `/admin/status` document (its `nodes[].admin_addr`).
pub fn admin_addrs_of_status(status: &Value) -> BTreeMap<u64, String> {
    status["nodes"]
        .as_array()
        .map(|nodes| {
            nodes
                .iter()
                .filter_map(|n| Some((n["id"].as_u64()?, n["admin_addr"].as_str()?.to_string())))
                .filter(|(_, a)| !a.is_empty())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(node_id: u64, leader_id: Option<u64>, term: u64) -> Health {
        Health {
            status: if leader_id.is_some() { "ok" } else { "no_leader" }.into(),
            node_id,
            is_leader: leader_id == Some(node_id),
            leader_id,
            term,
            cluster_nodes: vec![1, 2, 3],
            voters: vec![1, 2, 3],
            learners: vec![],
        }
    }

    fn ok(addr: &str, h: Health) -> Answer {
        Answer { addr: addr.into(), health: Ok(h) }
    }

    fn down(addr: &str) -> Answer {
        Answer { addr: addr.into(), health: Err(CliError::Request { addr: addr.into(), path: "/admin/health".into(), reason: "refused".into() }) }
    }

    #[test]
    fn the_self_declared_leader_is_found_with_its_address() {
        let a = vec![ok("a:1", health(1, Some(2), 5)), ok("a:2", health(2, Some(2), 5)), down("a:3")];
        assert_eq!(find_leader(&a), Some(Leader { leader_id: 2, term: 5, admin: Some("a:2".into()) }));
        assert_eq!(disagreement(&a), None);
    }

    #[test]
    fn hearsay_names_the_leader_without_an_address() {
        let a = vec![ok("a:1", health(1, Some(3), 7)), down("a:3")];
        assert_eq!(find_leader(&a), Some(Leader { leader_id: 3, term: 7, admin: None }));
    }

    #[test]
    fn a_higher_term_wins_over_a_stale_leader() {
        // Node 1 still believes it leads term 4; nodes 2 and 3 moved on to term 6 under node 2.
        let a = vec![ok("a:1", health(1, Some(1), 4)), ok("a:2", health(2, Some(2), 6)), ok("a:3", health(3, Some(2), 6))];
        assert_eq!(find_leader(&a).map(|l| (l.leader_id, l.term)), Some((2, 6)));
        let why = disagreement(&a).unwrap_or_default();
        assert!(why.contains("nodes [1] see leader 1 in term 4"), "{why}");
    }

    #[test]
    fn no_leader_anywhere_is_none() {
        let a = vec![ok("a:1", health(1, None, 3)), down("a:2")];
        assert_eq!(find_leader(&a), None);
        assert_eq!(find_leader(&[down("a:1")]), None);
    }

    #[test]
    fn admin_addresses_come_from_the_status_nodes() {
        let status = serde_json::json!({"nodes": [
            {"id": 1, "admin_addr": "h:10001"}, {"id": 2, "admin_addr": ""}, {"id": 3}
        ]});
        let m = admin_addrs_of_status(&status);
        assert_eq!(m.into_iter().collect::<Vec<_>>(), vec![(1, "h:10001".to_string())]);
    }
}

//! `POST /admin/add-node|remove-node|promote|transfer-leader` (docs/ADMIN-API.md): membership changes
//! of the metadata group, carried out by [`chronik_raft::MetaNode`] on the metadata leader.
//!
//! Every answer has the shape `{"success", "message", "node_id"}` (plus `voters` and `learners` on
//! success, `leader_id` and `leader_admin` when this node is not the leader); a refusal comes with an
//! HTTP 4xx and changes nothing. Addresses are checked before anything changes.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chronik_raft::{BrokerNode, Members, MembershipError, MetaCommand, MetaResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::broker::Broker;
use crate::config::{split_host_port, ADMIN_PORT_BASE};
use crate::ids::BrokerId;

type Answer = (StatusCode, Json<Value>);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddNode {
    pub node_id: i64,
    pub kafka_addr: String,
    pub wal_addr: String,
    pub raft_addr: String,
    #[serde(default)]
    pub admin_addr: Option<String>,
    #[serde(default)]
    pub rack: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveNode {
    pub node_id: i64,
    #[serde(default)]
    pub force: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeOnly {
    pub node_id: i64,
}

/// A request that names one node.
pub trait NamesNode {
    fn node_id(&self) -> i64;
}

impl NamesNode for AddNode {
    fn node_id(&self) -> i64 {
        self.node_id
    }
}

impl NamesNode for RemoveNode {
    fn node_id(&self) -> i64 {
        self.node_id
    }
}

impl NamesNode for NodeOnly {
    fn node_id(&self) -> i64 {
        self.node_id
    }
}

fn refuse(status: StatusCode, node_id: Option<i64>, message: impl Into<String>) -> Answer {
    (status, Json(json!({"success": false, "message": message.into(), "node_id": node_id})))
}

fn done(node_id: i64, message: String, members: Members) -> Answer {
    (
        StatusCode::OK,
        Json(json!({"success": true, "message": message, "node_id": node_id, "voters": members.voters, "learners": members.learners})),
    )
}

/// The HTTP status and answer for a refused or failed change.
fn failed(node_id: i64, e: MembershipError) -> Answer {
    let status = match &e {
        MembershipError::NotLeader { .. } => StatusCode::MISDIRECTED_REQUEST,
        MembershipError::AlreadyExists(_) | MembershipError::InProgress(_) | MembershipError::Removed(_) => StatusCode::CONFLICT,
        MembershipError::UnknownNode(_) => StatusCode::NOT_FOUND,
        MembershipError::WouldBreakQuorum(_) => StatusCode::PRECONDITION_FAILED,
        MembershipError::Invalid(_) => StatusCode::BAD_REQUEST,
        MembershipError::CatchUpTimeout { .. } | MembershipError::TransferTimeout { .. } => StatusCode::GATEWAY_TIMEOUT,
        MembershipError::Raft(_) => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut body = json!({"success": false, "message": e.to_string(), "node_id": node_id});
    if let MembershipError::NotLeader { leader_id, leader } = &e {
        body["leader_id"] = json!(leader_id);
        body["leader_admin"] = json!(leader.as_ref().map(|n| n.admin_addr.clone()).filter(|a| !a.is_empty()));
    }
    (status, Json(body))
}

/// Auth, body and node id checks every mutation starts with: the request and the node it names, by
/// its Raft node id and by its broker id (the same number, checked to fit both).
fn admit<T: NamesNode>(broker: &Broker, headers: &HeaderMap, peer: SocketAddr, body: Result<Json<T>, JsonRejection>) -> Result<(T, u64, BrokerId), Answer> {
    super::auth::check(broker.config.admin_token.as_deref(), headers, peer).map_err(|(status, m)| refuse(status, None, m))?;
    let req = body.map(|Json(b)| b).map_err(|e| refuse(StatusCode::BAD_REQUEST, None, format!("invalid request body: {}", e.body_text())))?;
    let (id, broker_id) = node_id_of(req.node_id())?;
    Ok((req, id, broker_id))
}

/// A node id from a request: a Raft node id that is also a broker id (0..=i32::MAX).
fn node_id_of(id: i64) -> Result<(u64, BrokerId), Answer> {
    u64::try_from(id)
        .ok()
        .and_then(|node| BrokerId::from_node_id(node).map(|b| (node, b)))
        .ok_or_else(|| refuse(StatusCode::BAD_REQUEST, Some(id), format!("node id {id} is outside 0..={}", i32::MAX)))
}

/// The new node's endpoints, each a valid `host:port`; the admin address defaults to the raft host
/// with port 10000 + id.
fn endpoints(req: &AddNode, id: u64) -> Result<BrokerNode, String> {
    let check = |what: &str, addr: &str| -> Result<(String, u16), String> {
        split_host_port(addr).ok_or_else(|| format!("invalid address format for {what}: `{addr}` (expected host:port)"))
    };
    check("kafka_addr", &req.kafka_addr)?;
    check("wal_addr", &req.wal_addr)?;
    let (raft_host, _) = check("raft_addr", &req.raft_addr)?;
    let admin_addr = match &req.admin_addr {
        Some(a) => {
            check("admin_addr", a)?;
            a.clone()
        }
        None => format!("{raft_host}:{}", u64::from(ADMIN_PORT_BASE) + id),
    };
    Ok(BrokerNode {
        kafka_addr: req.kafka_addr.clone(),
        wal_addr: req.wal_addr.clone(),
        raft_addr: req.raft_addr.clone(),
        admin_addr,
        rack: req.rack.clone(),
    })
}

pub async fn add_node(
    State(broker): State<Arc<Broker>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<AddNode>, JsonRejection>,
) -> Answer {
    let (req, id, _) = match admit(&broker, &headers, peer, body) {
        Ok(r) => r,
        Err(a) => return a,
    };
    let node = match endpoints(&req, id) {
        Ok(n) => n,
        Err(m) => return refuse(StatusCode::BAD_REQUEST, Some(req.node_id), m),
    };
    match broker.meta.add_node(id, node, broker.config.voters_max).await {
        Ok(m) => {
            let role = if m.voters.contains(&id) { "voter" } else { "learner" };
            done(req.node_id, format!("node {id} added; it is a {role} (voters {:?}, learners {:?})", m.voters, m.learners), m)
        }
        Err(e) => failed(req.node_id, e),
    }
}

pub async fn remove_node(
    State(broker): State<Arc<Broker>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<RemoveNode>, JsonRejection>,
) -> Answer {
    let (req, id, broker_id) = match admit(&broker, &headers, peer, body) {
        Ok(r) => r,
        Err(a) => return a,
    };
    let state = broker.meta.state();
    let live: BTreeSet<u64> = state.live_brokers().filter_map(|b| BrokerId(b.id).node_id()).collect();
    if !req.force {
        if let Err(e) = broker.meta.check_removal(id, &live, broker.config.voters_max) {
            return failed(req.node_id, e);
        }
        // A node that holds replicas drains first: the rebalancer moves them away (data first) and
        // the controller removes the node once it holds nothing.
        let held = state.replicas_on(broker_id.0);
        if !held.is_empty() {
            return drain(&broker, req.node_id, broker_id, held.len()).await;
        }
    }
    let leading = broker.meta.status().is_leader;
    match broker.meta.remove_node(id, req.force, &live, broker.config.voters_max).await {
        Ok(m) => done(req.node_id, format!("node {id} removed (voters {:?}, learners {:?})", m.voters, m.learners), m),
        // This leader removed itself: it handed the leadership over first; the new leader carries
        // out the removal (the caller's credentials go along).
        Err(MembershipError::NotLeader { leader: Some(next), .. }) if leading && id == broker.meta.status().node_id && !next.admin_addr.is_empty() => {
            let token = headers
                .get(axum::http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            let body = json!({"node_id": req.node_id, "force": req.force});
            match crate::cluster_cli::http::post_json(&next.admin_addr, "/admin/remove-node", &body, token).await {
                Ok((status, answer)) => (StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY), Json(answer)),
                Err(e) => refuse(StatusCode::BAD_GATEWAY, Some(req.node_id), format!("leadership moved to {}, which did not take the removal: {e}", next.admin_addr)),
            }
        }
        Err(e) => failed(req.node_id, e),
    }
}

/// Mark broker `id` draining (once) and answer `202 Accepted` with how many replicas it still holds.
async fn drain(broker: &Arc<Broker>, node_id: i64, id: BrokerId, replicas_left: usize) -> Answer {
    let already = broker.meta.state().brokers.get(&id.0).is_some_and(|b| b.draining);
    if !already {
        match broker.meta.write(MetaCommand::SetDraining { id: id.0, draining: true }).await {
            Ok(MetaResponse::Ok) => {}
            Ok(other) => return refuse(StatusCode::CONFLICT, Some(node_id), format!("node {id} cannot drain: {other:?}")),
            Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, Some(node_id), format!("node {id} cannot drain: {e}")),
        }
        tracing::info!(node_id = id.0, replicas_left, "node draining before its removal");
    }
    broker.rebalance_requested.store(true, std::sync::atomic::Ordering::Relaxed);
    let body = json!({
        "success": true,
        "status": "draining",
        "node_id": node_id,
        "replicas_left": replicas_left,
        "message": format!("node {id} is draining: {replicas_left} replica(s) move to other nodes first, then it leaves the membership"),
    });
    (StatusCode::ACCEPTED, Json(body))
}

pub async fn promote(
    State(broker): State<Arc<Broker>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<NodeOnly>, JsonRejection>,
) -> Answer {
    let (req, id, _) = match admit(&broker, &headers, peer, body) {
        Ok(r) => r,
        Err(a) => return a,
    };
    match broker.meta.promote(id).await {
        Ok(m) => done(req.node_id, format!("node {id} is a voter (voters {:?})", m.voters), m),
        Err(e) => failed(req.node_id, e),
    }
}

pub async fn transfer_leader(
    State(broker): State<Arc<Broker>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<NodeOnly>, JsonRejection>,
) -> Answer {
    let (req, id, _) = match admit(&broker, &headers, peer, body) {
        Ok(r) => r,
        Err(a) => return a,
    };
    match broker.meta.transfer_leader(id).await {
        Ok(m) => done(req.node_id, format!("node {id} leads the metadata"), m),
        Err(e) => failed(req.node_id, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(kafka: &str, admin: Option<&str>) -> AddNode {
        AddNode {
            node_id: 4,
            kafka_addr: kafka.into(),
            wal_addr: "h:9294".into(),
            raft_addr: "h:5004".into(),
            admin_addr: admin.map(str::to_string),
            rack: None,
        }
    }

    #[test]
    fn addresses_are_checked_and_the_admin_default_derived() {
        let e = endpoints(&req("localhost", None), 4).err().unwrap_or_default();
        assert!(e.contains("kafka_addr") && e.contains("localhost"), "{e}");
        assert!(endpoints(&req("h:9095", Some("nohost")), 4).is_err());
        let n = endpoints(&req("h:9095", None), 4).ok().unwrap_or_default();
        assert_eq!(n.admin_addr, "h:10004");
        assert!(node_id_of(-1).is_err());
        assert!(node_id_of(i64::from(i32::MAX) + 1).is_err());
    }
}

//! The admin API (axum) on the admin address: health, status, Prometheus metrics and the membership
//! changes (docs/ADMIN-API.md). Mutations pass `auth` first.
//!
//! Until this node has joined a cluster and caught up, a smaller router ([`serve_waiting`]) answers
//! on the same address: `/admin/health` says `waiting_to_join` or `catching_up`, everything else
//! 503.

mod auth;
mod health;
mod membership;
mod metrics;
mod rebalance;
mod status;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chronik_raft::MetaNode;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::broker::Broker;

pub fn router(broker: Arc<Broker>) -> Router {
    Router::new()
        .route("/admin/health", get(health::get))
        .route("/admin/status", get(status::get))
        .route("/admin/add-node", post(membership::add_node))
        .route("/admin/remove-node", post(membership::remove_node))
        .route("/admin/promote", post(membership::promote))
        .route("/admin/transfer-leader", post(membership::transfer_leader))
        .route("/admin/rebalance", post(rebalance::post))
        .route("/metrics", get(metrics::get))
        .fallback(not_found)
        .with_state(broker)
}

async fn not_found() -> (StatusCode, Json<Value>) {
    (StatusCode::NOT_FOUND, Json(json!({"success": false, "message": "no such endpoint"})))
}

pub async fn serve(broker: Arc<Broker>, listener: TcpListener) {
    let app = router(broker).into_make_service_with_connect_info::<SocketAddr>();
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!(error = %e, "admin API stopped");
    }
}

/// The admin API of a node that has not joined a cluster yet (or not caught up with it), until
/// `done` turns true.
pub async fn serve_waiting(meta: Arc<MetaNode>, listener: TcpListener, mut done: watch::Receiver<bool>) {
    let app = Router::new().route("/admin/health", get(waiting_health)).fallback(not_joined).with_state(meta);
    let stop = async move {
        let _ = done.wait_for(|d| *d).await;
    };
    if let Err(e) = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).with_graceful_shutdown(stop).await {
        tracing::error!(error = %e, "admin API (waiting to join) stopped");
    }
}

async fn waiting_health(State(meta): State<Arc<MetaNode>>) -> Json<health::Health> {
    let status = if meta.has_joined() { "catching_up" } else { "waiting_to_join" };
    Json(health::Health::of(&meta.status(), status))
}

async fn not_joined(State(meta): State<Arc<MetaNode>>) -> (StatusCode, Json<Value>) {
    let s = meta.status();
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"success": false, "message": format!("node {} has not joined a cluster yet", s.node_id), "node_id": s.node_id})),
    )
}

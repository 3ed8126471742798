//! The admin API (axum) on the admin address: health, status and Prometheus metrics. Membership
//! mutations (add/remove node, rebalance) arrive with the multi-node issues.

mod health;
mod metrics;
mod status;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::broker::Broker;

pub fn router(broker: Arc<Broker>) -> Router {
    Router::new()
        .route("/admin/health", get(health::get))
        .route("/admin/status", get(status::get))
        .route("/metrics", get(metrics::get))
        .fallback(not_found)
        .with_state(broker)
}

async fn not_found() -> (axum::http::StatusCode, axum::Json<serde_json::Value>) {
    (axum::http::StatusCode::NOT_FOUND, axum::Json(serde_json::json!({"success": false, "message": "no such endpoint"})))
}

pub async fn serve(broker: Arc<Broker>, listener: TcpListener) {
    if let Err(e) = axum::serve(listener, router(broker)).await {
        tracing::error!(error = %e, "admin API stopped");
    }
}

//! `GET /metrics`: Prometheus text.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use crate::broker::Broker;

pub async fn get(State(broker): State<Arc<Broker>>) -> impl IntoResponse {
    let partitions = broker.partitions.all();
    let bytes: u64 = partitions.iter().map(|p| p.size_bytes()).sum();
    let status = broker.meta.status();
    let (sessions, session_partitions, session_evictions) = broker.fetch_sessions.stats();
    let text = broker.metrics.render(&[
        ("chronik_partitions", "Partitions hosted by this broker.", partitions.len() as f64),
        ("chronik_log_bytes", "Bytes in this broker's partition logs.", bytes as f64),
        ("chronik_raft_term", "Current metadata Raft term.", status.term as f64),
        ("chronik_raft_is_leader", "1 if this node leads the metadata Raft group.", if status.is_leader { 1.0 } else { 0.0 }),
        ("chronik_fetch_sessions", "Incremental fetch sessions (KIP-227) open with this broker.", sessions as f64),
        ("chronik_fetch_session_partitions", "Partitions held by this broker's fetch sessions.", session_partitions as f64),
        ("chronik_fetch_session_evictions", "Fetch sessions evicted for a newcomer or dropped idle since start.", session_evictions as f64),
        ("chronik_uptime_seconds", "Seconds since start.", broker.uptime().as_secs_f64()),
    ]);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

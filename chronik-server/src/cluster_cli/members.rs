//! `cluster members`: the brokers in the leader's metadata with their role, liveness and addresses.

use serde_json::{json, Value};

use super::table::render;
use super::{print_json, CliError, Survey};

pub async fn run(survey: &Survey, as_json: bool) -> Result<(), CliError> {
    let (leader, status) = survey.leader_status().await?;
    let nodes = status["nodes"].as_array().cloned().unwrap_or_default();
    if as_json {
        print_json(&json!({"leader_id": leader.leader_id, "term": leader.term, "nodes": nodes}));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| {
            let id = n["id"].as_u64();
            let role = if id == Some(leader.leader_id) { "voter (leader)".to_string() } else { text(&n["role"]) };
            vec![text(&n["id"]), role, live(&n["live"]).into(), text(&n["kafka_addr"]), text(&n["wal_addr"]), text(&n["raft_addr"]), text(&n["admin_addr"])]
        })
        .collect();
    print!("{}", render(&["ID", "ROLE", "LIVE", "KAFKA", "WAL", "RAFT", "ADMIN"], &rows));
    Ok(())
}

/// The `live` flag of a node as table text.
pub(super) fn live(v: &Value) -> &'static str {
    match v.as_bool() {
        Some(true) => "yes",
        Some(false) => "no (fenced)",
        None => "?",
    }
}

/// A JSON scalar as table text: strings unquoted, null as `-`.
pub(super) fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) if s.is_empty() => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

//! `cluster add-node|remove-node|promote|transfer-leader|replace`: membership changes, sent to the
//! metadata leader's admin API (found by the survey every subcommand starts with, and followed when a
//! node answers that another one leads). Prints one line, or the answer as JSON with `--json`; a
//! refusal exits non-zero with its one-line reason.

use std::time::Duration;

use serde_json::{json, Value};

use super::{http, print_json, survey, CliError, Target};
use crate::cli::{ChangeArgs, ClusterCommand, NodeAddrs};

/// Most "not the leader, ask there" answers followed for one change.
const LEADER_HOPS_MAX: usize = 3;
/// How long `add-node --wait` follows the new node's health.
const WAIT_SERVING_S: u64 = 120;
const WAIT_POLL_MS: u64 = 500;
/// How long `remove-node --wait` follows a drain.
const WAIT_DRAINED_S: u64 = 3_600;

/// POST `body` to `path` on the metadata leader; the successful answer, or the refusal as an error.
async fn change(args: &ChangeArgs, path: &str, body: &Value) -> Result<Value, CliError> {
    let target = Target::resolve(args.target.config.as_deref(), args.target.admin.as_deref())?;
    let survey = survey(&target).await;
    let (_, admin) = survey.leader()?;
    let mut addr = admin.to_string();
    for _ in 0..=LEADER_HOPS_MAX {
        let (status, answer) = http::post_json(&addr, path, body, args.token.as_deref()).await?;
        if status.is_success() && answer["success"] == json!(true) {
            return Ok(answer);
        }
        match answer["leader_admin"].as_str() {
            Some(next) if status == hyper::StatusCode::MISDIRECTED_REQUEST && next != addr => addr = next.to_string(),
            _ => {
                let message = answer["message"].as_str().map_or_else(|| answer.to_string(), str::to_string);
                return Err(CliError::Refused { status: status.as_u16(), message });
            }
        }
    }
    Err(CliError::NoLeader(format!("the leadership kept moving while sending {path}")))
}

fn add_body(node_id: u64, addrs: &NodeAddrs) -> Value {
    json!({
        "node_id": node_id,
        "kafka_addr": addrs.kafka,
        "wal_addr": addrs.wal,
        "raft_addr": addrs.raft,
        "admin_addr": addrs.node_admin,
    })
}

fn report(args: &ChangeArgs, answer: &Value) {
    if args.target.json {
        print_json(answer);
    } else {
        println!("{}", answer["message"].as_str().unwrap_or("done"));
    }
}

fn step(args: &ChangeArgs, steps: &mut Vec<Value>, answer: Value) {
    if !args.target.json {
        report(args, &answer);
    }
    steps.push(answer);
}

/// Follows the added node's `/admin/health` until it says `ok`, printing each new status.
async fn wait_serving(node_admin: &str, quiet: bool) -> Result<(), CliError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(WAIT_SERVING_S);
    let mut last = String::new();
    loop {
        let status = match http::get_json(node_admin, "/admin/health").await {
            Ok(h) => h["status"].as_str().unwrap_or("unknown").to_string(),
            Err(_) => "unreachable".to_string(),
        };
        if status != last && !quiet {
            eprintln!("node at {node_admin}: {status}");
        }
        if status == "ok" {
            return Ok(());
        }
        last = status;
        if tokio::time::Instant::now() >= deadline {
            return Err(CliError::Unhealthy(format!("node at {node_admin} still says {last} after {WAIT_SERVING_S}s")));
        }
        tokio::time::sleep(Duration::from_millis(WAIT_POLL_MS)).await;
    }
}

/// Follows the metadata leader's `/admin/status` until node `id` is no longer listed, printing the
/// replicas it still holds whenever that changes.
async fn wait_removed(args: &ChangeArgs, id: u64) -> Result<(), CliError> {
    let target = Target::resolve(args.target.config.as_deref(), args.target.admin.as_deref())?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(WAIT_DRAINED_S);
    let mut last = None;
    loop {
        // Surveyed each time: the node leaving may have led the metadata.
        if let Ok((_, status)) = survey(&target).await.leader_status().await {
            let node = status["nodes"].as_array().into_iter().flatten().find(|n| n["id"].as_u64() == Some(id)).cloned();
            let Some(node) = node else {
                if !args.target.json {
                    println!("node {id} drained and removed");
                }
                return Ok(());
            };
            let left = node["replicas"].as_u64();
            if left != last && !args.target.json {
                eprintln!("node {id}: draining, {} replica(s) left", left.map_or("?".into(), |n| n.to_string()));
            }
            last = left;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CliError::Unhealthy(format!("node {id} is still a member after {WAIT_DRAINED_S}s of draining")));
        }
        tokio::time::sleep(Duration::from_millis(WAIT_POLL_MS)).await;
    }
}

/// The admin address an added node will have (as the leader derives it when not given).
fn node_admin_addr(node_id: u64, addrs: &NodeAddrs) -> Option<String> {
    addrs.node_admin.clone().or_else(|| {
        crate::config::split_host_port(&addrs.raft).map(|(host, _)| format!("{host}:{}", u64::from(crate::config::ADMIN_PORT_BASE) + node_id))
    })
}

pub async fn run(command: &ClusterCommand) -> Result<(), CliError> {
    match command {
        ClusterCommand::AddNode { node_id, addrs, wait, change: args } => {
            let answer = change(args, "/admin/add-node", &add_body(*node_id, addrs)).await?;
            report(args, &answer);
            if *wait {
                if let Some(admin) = node_admin_addr(*node_id, addrs) {
                    wait_serving(&admin, args.target.json).await?;
                }
            }
            Ok(())
        }
        ClusterCommand::RemoveNode { node_id, force, wait, change: args } => {
            let answer = change(args, "/admin/remove-node", &json!({"node_id": node_id, "force": force})).await?;
            report(args, &answer);
            if *wait && answer["status"] == json!("draining") {
                wait_removed(args, *node_id).await?;
            }
            Ok(())
        }
        ClusterCommand::Promote { node_id, change: args } => {
            report(args, &change(args, "/admin/promote", &json!({"node_id": node_id})).await?);
            Ok(())
        }
        ClusterCommand::TransferLeader { node_id, change: args } => {
            report(args, &change(args, "/admin/transfer-leader", &json!({"node_id": node_id})).await?);
            Ok(())
        }
        ClusterCommand::Rebalance { dry_run, change: args } => {
            let path = if *dry_run { "/admin/rebalance?dry_run=true" } else { "/admin/rebalance" };
            let answer = change(args, path, &json!({})).await?;
            if args.target.json {
                print_json(&answer);
            } else {
                println!("{}", answer["message"].as_str().unwrap_or("done"));
                for m in answer["moves"].as_array().into_iter().flatten() {
                    match m["kind"].as_str() {
                        Some("replica") => println!(
                            "  {}-{}: replica {} -> {} (replicas {}, {} bytes)",
                            m["topic"].as_str().unwrap_or("?"),
                            m["partition"],
                            m["from"],
                            m["to"],
                            m["replicas"],
                            m["size_bytes"].as_u64().unwrap_or(0)
                        ),
                        _ => println!("  {}-{}: preferred leader -> {} (replicas {})", m["topic"].as_str().unwrap_or("?"), m["partition"], m["to"], m["replicas"]),
                    }
                }
                if answer["moves"].as_array().is_some_and(|m| !m.is_empty()) {
                    match answer["sizes_known"].as_bool() {
                        Some(true) => println!("bytes to move: {}", answer["bytes_to_move"].as_u64().unwrap_or(0)),
                        // An older leader answers without sizes.
                        None => {}
                        Some(false) => println!("sizes not known yet (waiting for a report from {}): planned by replica count", answer["sizes_missing_from"]),
                    }
                }
            }
            Ok(())
        }
        ClusterCommand::Replace { old, new, addrs, force, change: args } => {
            // Each step's answer: one line each, or one JSON array of them with --json.
            let mut steps = Vec::new();
            let added = change(args, "/admin/add-node", &add_body(*new, addrs)).await?;
            step(args, &mut steps, added.clone());
            let old_was_voter = added["voters"].as_array().is_some_and(|v| v.contains(&json!(old)));
            let new_is_voter = added["voters"].as_array().is_some_and(|v| v.contains(&json!(new)));
            if old_was_voter && !new_is_voter {
                step(args, &mut steps, change(args, "/admin/promote", &json!({"node_id": new})).await?);
            }
            step(args, &mut steps, change(args, "/admin/remove-node", &json!({"node_id": old, "force": force})).await?);
            if args.target.json {
                print_json(&Value::Array(steps));
            }
            Ok(())
        }
        _ => Err(CliError::NoLeader("not a membership change".into())),
    }
}

//! `cluster status`: the leader's `/admin/status` — nodes, then partitions with leader, epoch,
//! replicas and ISR, then the moves in progress with each new replica's catch-up (bytes done/total,
//! rate, time left, asked of the partition's leader) — and a one-line count of under-replicated and
//! leaderless partitions.

use serde_json::Value;

use super::members::{live, text};
use super::table::{ids, render};
use super::{print_json, CliError, Survey};

/// Partition counts the summary line reports.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub partitions: usize,
    /// ISR smaller than the replica set.
    pub under_replicated: usize,
    /// No leader (-1, null or missing).
    pub offline: usize,
}

pub fn counts(status: &Value) -> Counts {
    let mut c = Counts::default();
    for p in status["partitions"].as_array().into_iter().flatten() {
        c.partitions += 1;
        let len = |k: &str| p[k].as_array().map_or(0, Vec::len);
        if len("isr") < len("replicas") {
            c.under_replicated += 1;
        }
        if p["leader"].as_i64().is_none_or(|l| l < 0) {
            c.offline += 1;
        }
    }
    c
}

/// Fills in each move's `progress` from its partition leader's `/admin/status` (only the leader
/// knows how far the new replicas are); a leader that does not answer leaves it null.
async fn fill_progress(status: &mut Value) {
    let admin_of = |id: i64| {
        status["nodes"].as_array().into_iter().flatten().find(|n| n["id"].as_i64() == Some(id)).and_then(|n| n["admin_addr"].as_str()).map(str::to_string)
    };
    let mut leaders: Vec<(i64, String)> = Vec::new();
    for m in status["reassignments"].as_array().into_iter().flatten() {
        if let (true, Some(l)) = (m["progress"].is_null(), m["leader"].as_i64()) {
            if let Some(addr) = admin_of(l).filter(|_| !leaders.iter().any(|(id, _)| *id == l)) {
                leaders.push((l, addr));
            }
        }
    }
    for (_, addr) in leaders {
        let Ok(theirs) = super::http::get_json(&addr, "/admin/status").await else { continue };
        for m in status["reassignments"].as_array_mut().into_iter().flatten() {
            let same = |o: &&Value| o["topic"] == m["topic"] && o["partition"] == m["partition"];
            if let Some(o) = theirs["reassignments"].as_array().into_iter().flatten().find(same) {
                if m["progress"].is_null() {
                    m["progress"] = o["progress"].clone();
                }
            }
        }
    }
}

/// One line per replica being added: `topic-p: replica 4 12.0/48.0 MiB at 8.0 MiB/s, ~5 s left`.
fn progress_lines(status: &Value) -> Vec<String> {
    let mib = |v: &Value| v.as_u64().map_or("?".to_string(), |b| format!("{:.1}", b as f64 / 1_048_576.0));
    let mut out = Vec::new();
    for m in status["reassignments"].as_array().into_iter().flatten() {
        let name = format!("{}-{}", text(&m["topic"]), text(&m["partition"]));
        let Some(progress) = m["progress"].as_array() else {
            out.push(format!("{name}: adding {}, progress unknown (leader {} did not say)", text(&m["adding_replicas"]), text(&m["leader"])));
            continue;
        };
        for p in progress {
            let rate = if p["bytes_per_s"].is_null() { "rate not measured yet".to_string() } else { format!("at {} MiB/s", mib(&p["bytes_per_s"])) };
            let eta = p["eta_s"].as_u64().map_or(String::new(), |s| format!(", ~{s} s left"));
            out.push(format!("{name}: replica {} {}/{} MiB {rate}{eta}", text(&p["replica"]), mib(&p["bytes_done"]), mib(&p["bytes_total"])));
        }
    }
    out
}

pub async fn run(survey: &Survey, as_json: bool) -> Result<(), CliError> {
    let (leader, mut status) = survey.leader_status().await?;
    fill_progress(&mut status).await;
    if as_json {
        print_json(&status);
        return Ok(());
    }
    println!("metadata leader: node {}, term {}", leader.leader_id, leader.term);
    println!();
    let nodes: Vec<Vec<String>> = status["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            let draining = if n["draining"] == serde_json::json!(true) { "yes" } else { "no" };
            vec![text(&n["id"]), text(&n["role"]), live(&n["live"]).into(), draining.into(), text(&n["replicas"]), text(&n["kafka_addr"]), text(&n["admin_addr"])]
        })
        .collect();
    print!("{}", render(&["NODE", "ROLE", "LIVE", "DRAINING", "REPLICAS", "KAFKA", "ADMIN"], &nodes));
    println!();
    let list = |v: &Value| ids(&v.as_array().into_iter().flatten().filter_map(Value::as_u64).collect::<Vec<_>>());
    let parts: Vec<Vec<String>> = status["partitions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            vec![
                text(&p["topic"]),
                text(&p["partition"]),
                text(&p["leader"]),
                text(&p["leader_epoch"]),
                list(&p["replicas"]),
                list(&p["isr"]),
                text(&p["high_watermark"]),
            ]
        })
        .collect();
    print!("{}", render(&["TOPIC", "PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "HW"], &parts));
    let moves = progress_lines(&status);
    if !moves.is_empty() {
        println!();
        println!("moves in progress (throttle {} bytes/s per follower, 0 = none):", text(&status["reassignment_throttle_bytes_per_s"]));
        for line in moves {
            println!("  {line}");
        }
    }
    let c = counts(&status);
    println!();
    println!("{} partitions, {} under-replicated, {} without a leader", c.partitions, c.under_replicated, c.offline);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_under_replicated_and_offline_partitions() {
        let status = serde_json::json!({"partitions": [
            {"leader": 1, "replicas": [1, 2, 3], "isr": [1, 2, 3]},
            {"leader": 2, "replicas": [2, 3, 1], "isr": [2, 3]},
            {"leader": -1, "replicas": [3, 1, 2], "isr": [3]},
            {"leader": null, "replicas": [1], "isr": [1]},
        ]});
        assert_eq!(counts(&status), Counts { partitions: 4, under_replicated: 2, offline: 2 });
    }

    #[test]
    fn progress_lines_show_bytes_rate_and_time_left() {
        let status = serde_json::json!({"reassignments": [
            {"topic": "t", "partition": 0, "leader": 1, "adding_replicas": [4], "progress": [
                {"replica": 4, "bytes_done": 12_582_912, "bytes_total": 50_331_648, "bytes_per_s": 8_388_608, "eta_s": 5}]},
            {"topic": "t", "partition": 1, "leader": 2, "adding_replicas": [4], "progress": null},
        ]});
        assert_eq!(
            progress_lines(&status),
            vec!["t-0: replica 4 12.0/48.0 MiB at 8.0 MiB/s, ~5 s left".to_string(), "t-1: adding [4], progress unknown (leader 2 did not say)".to_string()]
        );
    }
}

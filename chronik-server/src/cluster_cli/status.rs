//! `cluster status`: the leader's `/admin/status` — nodes, then partitions with leader, epoch,
//! replicas and ISR — and a one-line count of under-replicated and leaderless partitions.

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

pub async fn run(survey: &Survey, as_json: bool) -> Result<(), CliError> {
    let (leader, status) = survey.leader_status().await?;
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
        .map(|n| vec![text(&n["id"]), text(&n["role"]), live(&n["live"]).into(), text(&n["kafka_addr"]), text(&n["admin_addr"])])
        .collect();
    print!("{}", render(&["NODE", "ROLE", "LIVE", "KAFKA", "ADMIN"], &nodes));
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
}

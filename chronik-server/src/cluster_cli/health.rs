//! `cluster health`: every node's own view (reachable, leader, term, role). Healthy means every known
//! node answered, one leader is known, and all agree on that leader and term; anything else exits
//! non-zero after printing the table.

use serde_json::{json, Value};

use super::probe::disagreement;
use super::table::{ids, render};
use super::{print_json, short_reason, CliError, Survey};

pub async fn run(survey: &Survey, as_json: bool) -> Result<(), CliError> {
    let problems = problems(survey);
    if as_json {
        let nodes: Vec<Value> = survey
            .answers
            .iter()
            .map(|a| match &a.health {
                Ok(h) => json!({"admin": a.addr, "reachable": true, "health": h}),
                Err(e) => json!({"admin": a.addr, "reachable": false, "error": short_reason(e)}),
            })
            .collect();
        print_json(&json!({
            "healthy": problems.is_empty(),
            "leader_id": survey.leader.as_ref().map(|l| l.leader_id),
            "term": survey.leader.as_ref().map(|l| l.term),
            "nodes": nodes,
            "problems": problems,
        }));
    } else {
        let rows: Vec<Vec<String>> = survey
            .answers
            .iter()
            .map(|a| match &a.health {
                Ok(h) => {
                    let role = if h.is_leader {
                        "leader"
                    } else if h.voters.contains(&h.node_id) {
                        "follower"
                    } else if h.learners.contains(&h.node_id) {
                        "learner"
                    } else {
                        "-"
                    };
                    vec![
                        h.node_id.to_string(),
                        a.addr.clone(),
                        h.status.clone(),
                        role.into(),
                        h.leader_id.map_or("-".into(), |l| l.to_string()),
                        h.term.to_string(),
                        ids(&h.voters),
                    ]
                }
                Err(e) => {
                    // A silent node can still be named when the config listed its id.
                    let id = survey.by_id.iter().find(|(_, addr)| **addr == a.addr).map_or("?".into(), |(id, _)| id.to_string());
                    vec![id, a.addr.clone(), format!("unreachable: {}", short_reason(e))]
                }
            })
            .collect();
        print!("{}", render(&["NODE", "ADMIN", "STATUS", "ROLE", "LEADER", "TERM", "VOTERS"], &rows));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CliError::Unhealthy(problems.join("; ")))
    }
}

/// Everything that keeps the cluster from being healthy, one phrase each.
fn problems(survey: &Survey) -> Vec<String> {
    let mut out = Vec::new();
    let down: Vec<&str> = survey.answers.iter().filter(|a| a.health.is_err()).map(|a| a.addr.as_str()).collect();
    if !down.is_empty() {
        out.push(format!("unreachable: {}", down.join(", ")));
    }
    if survey.leader.is_none() {
        out.push("no node knows a metadata leader".into());
    }
    if let Some(why) = disagreement(&survey.answers) {
        out.push(format!("nodes disagree: {why}"));
    }
    out
}

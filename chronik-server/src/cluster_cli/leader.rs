//! `cluster leader`: the metadata (Raft) leader, its term and admin address.

use serde_json::json;

use super::{print_json, CliError, Survey};

pub async fn run(survey: &Survey, as_json: bool) -> Result<(), CliError> {
    let (leader, admin) = survey.leader()?;
    // Hearsay is not enough: the leader itself must answer and still claim the leadership.
    let confirmed = survey
        .answers
        .iter()
        .find(|a| a.addr == admin)
        .and_then(|a| a.health.as_ref().ok())
        .is_some_and(|h| h.is_leader && h.node_id == leader.leader_id);
    if !confirmed {
        return Err(CliError::NoLeader(format!(
            "node {} was named leader of term {} but does not confirm it at {admin} ({})",
            leader.leader_id,
            leader.term,
            survey.summary()
        )));
    }
    if as_json {
        print_json(&json!({"leader_id": leader.leader_id, "term": leader.term, "admin": admin}));
    } else {
        println!("leader: node {} (admin {admin}), term {}", leader.leader_id, leader.term);
    }
    Ok(())
}

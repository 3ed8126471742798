//! Choosing the group's protocol (assignor) by Kafka's vote.
//!
//! Candidates are the protocols every member supports; each member votes for the candidate it lists
//! first; the most votes wins. Kafka leaves ties to hash-map order; we break them by the order of
//! the first member's preferences, so the outcome is deterministic.

use super::member::Member;

/// The protocols all of `members` support, in the order the first member prefers them.
pub fn candidates<'a>(members: impl Iterator<Item = &'a Member> + Clone) -> Vec<String> {
    let mut all = members.clone();
    let Some(first) = all.next() else {
        return Vec::new();
    };
    first
        .protocols
        .iter()
        .map(|(name, _)| name.clone())
        .filter(|name| members.clone().all(|m| m.supports(name)))
        .collect()
}

/// The elected protocol, or `None` when no protocol is supported by every member.
pub fn select_protocol<'a>(members: impl Iterator<Item = &'a Member> + Clone) -> Option<String> {
    let candidates = candidates(members.clone());
    let mut votes = vec![0usize; candidates.len()];
    for member in members {
        let choice = member
            .protocols
            .iter()
            .find_map(|(name, _)| candidates.iter().position(|c| c == name));
        if let Some(index) = choice {
            votes[index] += 1;
        }
    }
    // max_by_key returns the last maximum; iterate reversed so the earliest candidate wins ties.
    votes
        .iter()
        .enumerate()
        .rev()
        .max_by_key(|(_, count)| **count)
        .map(|(index, _)| candidates[index].clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn member(id: &str, protocols: &[&str]) -> Member {
        Member {
            member_id: id.to_string(),
            group_instance_id: None,
            client_id: String::new(),
            client_host: String::new(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols: protocols.iter().map(|p| (p.to_string(), Bytes::new())).collect(),
            assignment: Bytes::new(),
            awaiting_join: false,
            awaiting_sync: false,
            last_seen_ms: 0,
        }
    }

    #[test]
    fn majority_of_first_choices_wins_among_common_protocols() {
        let members = [
            member("a", &["range", "roundrobin", "sticky"]),
            member("b", &["sticky", "roundrobin"]),
            member("c", &["sticky", "range", "roundrobin"]),
        ];
        // range is not supported by b, so a's vote goes to roundrobin; b and c vote sticky.
        assert_eq!(candidates(members.iter()), vec!["roundrobin", "sticky"]);
        assert_eq!(select_protocol(members.iter()).as_deref(), Some("sticky"));
    }

    #[test]
    fn tie_goes_to_first_members_preference() {
        let members = [member("a", &["range", "sticky"]), member("b", &["sticky", "range"])];
        assert_eq!(select_protocol(members.iter()).as_deref(), Some("range"));
    }

    #[test]
    fn no_common_protocol_elects_nothing() {
        let members = [member("a", &["range"]), member("b", &["sticky"])];
        assert_eq!(select_protocol(members.iter()), None);
    }
}

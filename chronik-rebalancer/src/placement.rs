//! Placement of new partitions' replicas: spread replicas and preferred leaders evenly over the live
//! brokers, round-robin like Kafka's rack-unaware assignment. The first replica of each list is the
//! preferred leader.

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlacementError {
    /// More replicas asked for than brokers available (INVALID_REPLICATION_FACTOR).
    ReplicationFactor { requested: i32, brokers: usize },
    /// Zero or negative partition count (INVALID_PARTITIONS).
    Partitions(i32),
}

impl std::fmt::Display for PlacementError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlacementError::ReplicationFactor { requested, brokers } => {
                write!(f, "replication factor {requested} is larger than the {brokers} available brokers")
            }
            PlacementError::Partitions(n) => write!(f, "partition count {n} must be positive"),
        }
    }
}

impl std::error::Error for PlacementError {}

/// Replica lists for `count` new partitions numbered from `first_partition`. `brokers` are the live
/// broker ids; the result does not depend on their order.
pub fn place_new_partitions(
    brokers: &[i32],
    first_partition: i32,
    count: i32,
    replication_factor: i32,
) -> Result<Vec<Vec<i32>>, PlacementError> {
    if count <= 0 {
        return Err(PlacementError::Partitions(count));
    }
    if replication_factor <= 0 || replication_factor as usize > brokers.len() {
        return Err(PlacementError::ReplicationFactor { requested: replication_factor, brokers: brokers.len() });
    }
    let mut sorted = brokers.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let n = sorted.len();
    let rf = replication_factor as usize;
    let mut out = Vec::with_capacity(count as usize);
    for i in 0..count {
        let p = (first_partition + i) as usize;
        let leader = p % n;
        // Followers are shifted by a step that changes every n partitions, so that followers of one
        // leader do not always land on the same brokers.
        let shift = 1 + (p / n) % (n.max(2) - 1);
        let mut replicas = Vec::with_capacity(rf);
        replicas.push(sorted[leader]);
        let mut j = 0;
        while replicas.len() < rf {
            let candidate = sorted[(leader + shift + j) % n];
            if !replicas.contains(&candidate) {
                replicas.push(candidate);
            }
            j += 1;
        }
        out.push(replicas);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn single_broker() {
        assert_eq!(place_new_partitions(&[1], 0, 3, 1).unwrap(), vec![vec![1], vec![1], vec![1]]);
    }

    #[test]
    fn replication_factor_above_brokers_is_refused() {
        assert_eq!(
            place_new_partitions(&[1, 2], 0, 1, 3),
            Err(PlacementError::ReplicationFactor { requested: 3, brokers: 2 })
        );
        assert_eq!(place_new_partitions(&[1], 0, 0, 1), Err(PlacementError::Partitions(0)));
    }

    #[test]
    fn leaders_and_replicas_spread_evenly() {
        // (brokers, partitions, rf)
        for (brokers, partitions, rf) in [(3, 6, 3), (3, 6, 2), (5, 10, 3), (4, 8, 1), (3, 7, 3)] {
            let ids: Vec<i32> = (1..=brokers).collect();
            let plan = place_new_partitions(&ids, 0, partitions, rf).unwrap();
            let mut leaders: HashMap<i32, i32> = HashMap::new();
            let mut replicas: HashMap<i32, i32> = HashMap::new();
            for r in &plan {
                assert_eq!(r.len(), rf as usize);
                let mut uniq = r.clone();
                uniq.sort();
                uniq.dedup();
                assert_eq!(uniq.len(), r.len(), "duplicate replica in {r:?}");
                *leaders.entry(r[0]).or_default() += 1;
                for b in r {
                    *replicas.entry(*b).or_default() += 1;
                }
            }
            let spread = |m: &HashMap<i32, i32>| m.values().max().unwrap() - m.values().min().unwrap();
            assert!(spread(&leaders) <= 1, "{brokers} {partitions} {rf}: leaders {leaders:?}");
            assert!(spread(&replicas) <= 1, "{brokers} {partitions} {rf}: replicas {replicas:?}");
        }
    }
}

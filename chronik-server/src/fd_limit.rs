//! File descriptors: the process's limit, raised to the hard limit at start, and the budget a new
//! topic or partition must fit in before it is created.
//!
//! Every partition hosted here holds [`FDS_PER_PARTITION`] descriptor for its active segment's `.log`
//! and one for each sealed segment it keeps. Its `.index` and `.timeindex` files are read through
//! memory maps and hold descriptors only while the partition takes writes: from an index entry until
//! the next recovery point syncs them (`chronik-wal`'s `on_demand_file`; at most
//! `recovery_point_interval_ms` after the last write), and an index entry that finds no descriptor is
//! skipped (the index is sparse), never failed. A
//! broker out of descriptors cannot open logs, accept connections or roll segments, so CreateTopics
//! and CreatePartitions refuse (POLICY_VIOLATION, with the figures) a request whose new local
//! partitions would not leave [`FDS_RESERVED`] descriptors free. Operators raise the limit with
//! `LimitNOFILE=` (systemd) or `ulimit -n`; docs/OPERATIONS.md gives the rule.

use std::sync::atomic::{AtomicU64, Ordering};

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Descriptors a partition's active segment always holds: its `.log` file.
pub const FDS_PER_PARTITION: u64 = 1;
/// Descriptors kept free for connections, segment rolls, the index files of partitions taking writes,
/// the Raft log and snapshots, sockets to peers: a create that would leave fewer is refused.
pub const FDS_RESERVED: u64 = 1000;

/// The soft limit in force after [`raise_to_hard`] (u64::MAX: unlimited or never read).
static SOFT_LIMIT: AtomicU64 = AtomicU64::new(u64::MAX);

fn as_count(limit: Option<u64>) -> u64 {
    limit.unwrap_or(u64::MAX)
}

/// Raises the soft RLIMIT_NOFILE to the hard limit (once, at start, before any thread opens files)
/// and logs both. A failure is logged and the old soft limit kept.
pub fn raise_to_hard() {
    let before = getrlimit(Resource::Nofile);
    let mut soft = as_count(before.current);
    let hard = as_count(before.maximum);
    if soft < hard {
        match setrlimit(Resource::Nofile, Rlimit { current: before.maximum, maximum: before.maximum }) {
            Ok(()) => soft = as_count(getrlimit(Resource::Nofile).current),
            Err(e) => tracing::warn!(soft, hard, error = %e, "cannot raise the open file limit to the hard limit"),
        }
    }
    SOFT_LIMIT.store(soft, Ordering::Relaxed);
    tracing::info!(
        soft_before = as_count(before.current),
        soft,
        hard,
        partitions_max = partitions_within(soft),
        "open file limit (RLIMIT_NOFILE); each partition holds {FDS_PER_PARTITION} descriptor per segment, 2 more while taking writes"
    );
}

/// Partitions (one segment each) a limit of `soft` descriptors holds beside the reserve.
fn partitions_within(soft: u64) -> u64 {
    soft.saturating_sub(FDS_RESERVED) / FDS_PER_PARTITION
}

/// Descriptors open in this process now (Linux: entries of /proc/self/fd, less the one reading it).
/// None where that cannot be read.
pub fn open_now() -> Option<u64> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    Some((entries.count() as u64).saturating_sub(1))
}

/// Refuses `new_partitions` new local partitions when, at [`FDS_PER_PARTITION`] each, they would
/// leave fewer than [`FDS_RESERVED`] descriptors below the soft limit. The message names the
/// figures and the setting to change.
pub fn check_budget(new_partitions: u64) -> Result<(), String> {
    let soft = SOFT_LIMIT.load(Ordering::Relaxed);
    let Some(open) = open_now() else { return Ok(()) };
    budget_refusal(soft, open, new_partitions).map_or(Ok(()), Err)
}

/// The pure rule of [`check_budget`].
fn budget_refusal(soft: u64, open: u64, new_partitions: u64) -> Option<String> {
    let needed = new_partitions.saturating_mul(FDS_PER_PARTITION);
    let after = open.saturating_add(needed).saturating_add(FDS_RESERVED);
    (after > soft).then(|| {
        format!(
            "{new_partitions} new partitions on this broker need {needed} file descriptors ({FDS_PER_PARTITION} each); \
             {open} are open and {FDS_RESERVED} are kept in reserve, which exceeds the open file limit of {soft}: \
             raise it (LimitNOFILE= or ulimit -n, at least partitions + 2 x partitions written at once + connections + {FDS_RESERVED}; see OPERATIONS.md)"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_counts_one_per_partition_and_the_reserve() {
        assert_eq!(budget_refusal(20_000, 100, 18_900), None);
        let refused = budget_refusal(20_000, 100, 18_901).expect("over the limit");
        assert!(refused.contains("18901 file descriptors"), "{refused}");
        assert!(refused.contains("limit of 20000"), "{refused}");
        assert_eq!(budget_refusal(u64::MAX, 100, 1_000_000), None);
        assert_eq!(partitions_within(20_000), 19_000);
    }
}

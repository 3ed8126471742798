//! AlterReplicaLogDirs: Chronik has one log directory per broker (the one DescribeLogDirs reports), so
//! moving a replica to it is a successful no-op and any other path is LOG_DIR_NOT_FOUND. A partition
//! that does not exist is UNKNOWN_TOPIC_OR_PARTITION; one this broker does not host,
//! REPLICA_NOT_AVAILABLE.

use std::path::Path;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_replica_log_dirs_response::{AlterReplicaLogDirPartitionResult, AlterReplicaLogDirTopicResult};
use kafka_protocol::messages::{AlterReplicaLogDirsRequest, AlterReplicaLogDirsResponse};

use crate::broker::Broker;
use crate::wire::context::RequestContext;

/// Whether `path` names this broker's log directory (as reported, or the same directory spelled
/// differently).
pub fn is_log_dir(path: &str, logs_dir: &Path) -> bool {
    if Path::new(path) == logs_dir {
        return true;
    }
    match (std::fs::canonicalize(path), std::fs::canonicalize(logs_dir)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

pub fn handle(broker: &Broker, _ctx: &RequestContext, req: AlterReplicaLogDirsRequest) -> AlterReplicaLogDirsResponse {
    let state = broker.meta.state();
    let logs_dir = broker.partitions.logs_dir();
    let mut results = Vec::new();
    for dir in req.dirs {
        let known_dir = is_log_dir(dir.path.as_str(), logs_dir);
        for t in dir.topics {
            let topic = state.topics.get(t.name.0.as_str());
            let partitions = t.partitions.iter().map(|p| {
                let exists = topic.is_some_and(|t| usize::try_from(*p).is_ok_and(|i| i < t.partitions.len()));
                let code = if !exists {
                    ResponseError::UnknownTopicOrPartition.code()
                } else if !known_dir {
                    ResponseError::LogDirNotFound.code()
                } else if broker.partitions.get(t.name.0.as_str(), *p).is_none() {
                    ResponseError::ReplicaNotAvailable.code()
                } else {
                    0
                };
                AlterReplicaLogDirPartitionResult::default().with_partition_index(*p).with_error_code(code)
            });
            results.push(AlterReplicaLogDirTopicResult::default().with_topic_name(t.name.clone()).with_partitions(partitions.collect()));
        }
    }
    AlterReplicaLogDirsResponse::default().with_results(results)
}

#[cfg(test)]
mod tests {
    use super::is_log_dir;
    use std::path::Path;

    #[test]
    fn only_the_one_log_dir_is_known() {
        let dir = std::env::temp_dir();
        assert!(is_log_dir(&dir.display().to_string(), &dir));
        assert!(is_log_dir(&format!("{}/.", dir.display()), &dir), "the same directory spelled differently");
        assert!(!is_log_dir("/no/such/dir", &dir));
        assert!(!is_log_dir("/", Path::new("/no/such/dir")));
    }
}

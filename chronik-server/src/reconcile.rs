//! Everything that follows the applied metadata on this broker, in one place: partition logs opened
//! or deleted, each partition's role (leader with its ISR, or follower of whom at which epoch), the
//! replica fetchers, and which offsets partitions the group coordinator serves.

use std::sync::Arc;

use chronik_raft::{MetaCommand, MetaError, MetaResponse};

use crate::broker::Broker;

/// Opens/deletes partition logs to match the applied metadata, then sets each one's replication
/// role (leader or follower, epoch, ISR), the fetchers and the group coordinator's partitions.
/// False when some log could not be opened or created (a full disk): the caller tries again later.
pub async fn partitions(broker: &Arc<Broker>) -> bool {
    let me = broker.clone();
    let result = tokio::task::spawn_blocking(move || me.partitions.reconcile(|| me.meta.state())).await;
    let opened = match result {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "opening partition logs failed");
            false
        }
        Err(e) => {
            tracing::error!(error = %e, "partition reconcile task failed");
            false
        }
    };
    crate::replication::apply_roles(broker);
    crate::groups::ownership::sync(broker);
    opened
}

/// Writes a metadata command, then brings the local partitions in step with the result.
pub async fn write_meta(broker: &Arc<Broker>, cmd: MetaCommand) -> Result<MetaResponse, MetaError> {
    let resp = broker.meta.write(cmd).await?;
    partitions(broker).await;
    Ok(resp)
}

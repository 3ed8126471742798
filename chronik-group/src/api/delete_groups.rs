//! DeleteGroups v0–2 and offsets cleanup after a topic deletion.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};
use tracing::{error, info};

use super::owned;
use crate::coordinator::GroupCoordinator;

impl GroupCoordinator {
    pub async fn delete_groups(&self, req: DeleteGroupsRequest, _version: i16) -> DeleteGroupsResponse {
        let mut resp = DeleteGroupsResponse::default();
        for id in &req.groups_names {
            let mut result = DeletableGroupResult::default();
            result.group_id = id.clone();
            result.error_code = self.delete_one(&owned(id)).await.err().map_or(0, |e| e.code());
            resp.results.push(result);
        }
        resp
    }

    /// Deletes an empty group: its membership now, its offsets durably (a tombstone batch).
    async fn delete_one(&self, id: &str) -> Result<(), ResponseError> {
        if id.is_empty() {
            return Err(ResponseError::InvalidGroupId);
        }
        if let Some(error) = self.not_serving(id).await {
            return Err(error);
        }
        let had_offsets = self.offsets.has_offsets(id);
        {
            let mut registry = self.registry.lock();
            match registry.groups.get_mut(id) {
                Some(group) if !group.is_empty() => return Err(ResponseError::NonEmptyGroup),
                Some(group) => {
                    group.mark_dead();
                    registry.groups.remove(id);
                }
                None if !had_offsets => return Err(ResponseError::GroupIdNotFound),
                None => {}
            }
        }
        if had_offsets {
            self.offsets.delete_group(id).await.map_err(|e| {
                error!(group = %id, error = %e, "deleting group offsets failed");
                e.response_error()
            })?;
        }
        info!(group = %id, "group deleted");
        Ok(())
    }

    /// Offsets were removed because a topic was deleted.
    pub async fn on_topic_deleted(&self, topic: &str) {
        if let Err(e) = self.offsets.delete_topic(topic).await {
            error!(topic, error = %e, "removing offsets of a deleted topic failed");
        }
    }
}

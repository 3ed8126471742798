//! DeleteTopics by name (v1–5) or by id (v6): commit the deletion through Raft, remove the local logs
//! and the groups' offsets of the topic.

use std::sync::Arc;

use chronik_raft::{MetaCommand, MetaResponse};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use uuid::Uuid;

use crate::topics::meta_refusal;
use super::str_bytes;
use crate::broker::Broker;
use crate::wire::context::RequestContext;

pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, req: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let _serial = broker.topic_ops.lock().await;
    // (name if given, id if given)
    let targets: Vec<(Option<String>, Uuid)> = if ctx.version >= 6 {
        req.topics.iter().map(|t| (t.name.as_ref().map(|n| n.0.as_str().to_string()), t.topic_id)).collect()
    } else {
        req.topic_names.iter().map(|n| (Some(n.0.as_str().to_string()), Uuid::nil())).collect()
    };
    let mut results = Vec::with_capacity(targets.len());
    for (name, id) in targets {
        let state = broker.meta.state();
        let found = match &name {
            Some(n) => state.topics.get(n),
            None => state.topics.values().find(|t| t.topic_id == *id.as_bytes()),
        };
        let mut result = DeletableTopicResult::default().with_name(name.clone().map(|n| TopicName(str_bytes(&n)))).with_topic_id(id);
        let Some(topic) = found else {
            let code = if name.is_some() { ResponseError::UnknownTopicOrPartition } else { ResponseError::UnknownTopicId };
            results.push(result.with_error_code(code.code()));
            continue;
        };
        let topic_name = topic.name.clone();
        if crate::groups::offsets_topic::is_internal(&topic_name) {
            let message = format!("{topic_name} is internal: it holds the committed offsets of every group");
            results.push(result.with_error_code(ResponseError::InvalidTopicException.code()).with_error_message(Some(str_bytes(&message))));
            continue;
        }
        result = result.with_name(Some(TopicName(str_bytes(&topic_name)))).with_topic_id(Uuid::from_bytes(topic.topic_id));
        match crate::reconcile::write_meta(broker, MetaCommand::DeleteTopic { name: topic_name.clone() }).await {
            // Each broker removes the deleted topic's committed offsets from the offsets partitions it
            // leads when it applies the deletion (`groups::ownership`).
            Ok(MetaResponse::Ok) => results.push(result),
            Ok(MetaResponse::UnknownTopic) => results.push(result.with_error_code(ResponseError::UnknownTopicOrPartition.code())),
            Ok(other) => results.push(result.with_error_code(ResponseError::UnknownServerError.code()).with_error_message(Some(str_bytes(&format!("{other:?}"))))),
            Err(e) => {
                let (code, msg) = meta_refusal(e);
                results.push(result.with_error_code(code.code()).with_error_message(Some(str_bytes(&msg))));
            }
        }
    }
    DeleteTopicsResponse::default().with_responses(results)
}

//! InitProducerId for idempotent producers: a cluster-unique producer id from a block reserved through
//! Raft, epoch 0. A producer asking again with its id and epoch gets the epoch bumped (KIP-360).
//! Transactional ids are refused: transactions are not implemented.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::broker::Broker;
use crate::wire::context::RequestContext;

pub async fn handle(broker: &Arc<Broker>, _ctx: &RequestContext, req: InitProducerIdRequest) -> InitProducerIdResponse {
    let base = InitProducerIdResponse::default().with_producer_id(ProducerId(-1)).with_producer_epoch(-1);
    if req.transactional_id.is_some() {
        return base.with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
    }
    // A known producer asking again gets its epoch bumped; an exhausted epoch gets a fresh id, as in Kafka.
    if req.producer_id.0 >= 0 && req.producer_epoch >= 0 && req.producer_epoch < i16::MAX - 1 {
        return base.with_producer_id(req.producer_id).with_producer_epoch(req.producer_epoch + 1);
    }
    match broker.next_producer_id().await {
        Ok(id) => base.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(e) => {
            tracing::warn!(error = %e, "producer id allocation failed");
            base.with_error_code(ResponseError::CoordinatorNotAvailable.code())
        }
    }
}

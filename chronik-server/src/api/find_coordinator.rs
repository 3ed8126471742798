//! FindCoordinator: the broker that coordinates a group is the leader of its partition of the
//! internal offsets topic (see `groups`), which the first lookup creates. Transaction coordinators
//! are not available (no transactions yet).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};

use std::sync::Arc;

use super::str_bytes;
use crate::broker::Broker;
use crate::config::split_host_port;
use crate::wire::context::RequestContext;

/// FindCoordinator key type of a transactional id.
const KEY_TYPE_TRANSACTION: i8 = 1;

pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, req: FindCoordinatorRequest) -> FindCoordinatorResponse {
    // Name the coordinator from metadata at least as new as the request (a woken, deposed broker
    // that cannot get a read index answers from its own view; the fence then refuses it).
    super::read_barrier(broker).await;
    let offsets_topic = if req.key_type == KEY_TYPE_TRANSACTION { Ok(()) } else { crate::groups::offsets_topic::ensure(broker).await };
    if let Err((code, message)) = &offsets_topic {
        tracing::debug!(?code, %message, "offsets topic not available");
    }
    let coordinator = |key: &str| {
        offsets_topic.as_ref().ok()?;
        let id = crate::groups::coordinator_id(broker, key)?;
        let addr = broker.meta.state().brokers.get(&id).map(|b| b.node.kafka_addr.clone())?;
        let (host, port) = split_host_port(&addr)?;
        Some((id, host, port))
    };
    let answer = |key: &str| {
        let c = Coordinator::default().with_key(str_bytes(key));
        if req.key_type == KEY_TYPE_TRANSACTION {
            c.with_node_id(BrokerId(-1))
                .with_port(-1)
                .with_host(str_bytes(""))
                .with_error_code(ResponseError::CoordinatorNotAvailable.code())
                .with_error_message(Some(str_bytes("transactions are not supported")))
        } else if let Some((id, host, port)) = coordinator(key) {
            c.with_node_id(BrokerId(id)).with_host(str_bytes(&host)).with_port(i32::from(port))
        } else {
            c.with_node_id(BrokerId(-1))
                .with_port(-1)
                .with_host(str_bytes(""))
                .with_error_code(ResponseError::CoordinatorNotAvailable.code())
        }
    };
    if ctx.version >= 4 {
        let coordinators = req.coordinator_keys.iter().map(|k| answer(k.as_str())).collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let c = answer(req.key.as_str());
    FindCoordinatorResponse::default()
        .with_error_code(c.error_code)
        .with_error_message(c.error_message.clone())
        .with_node_id(c.node_id)
        .with_host(c.host.clone())
        .with_port(c.port)
}

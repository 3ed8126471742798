//! DescribeCluster: the live brokers at their advertised Kafka addresses and the controller (the
//! metadata Raft leader). v1 adds an endpoint type (KIP-919): a broker answers for brokers only, so a
//! request for controller endpoints gets UNSUPPORTED_ENDPOINT_TYPE, as from Kafka's brokers.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::{live_broker_endpoints, str_bytes};
use crate::broker::Broker;
use crate::wire::context::RequestContext;

/// "Authorized operations not requested/not available" in Kafka's encoding.
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;
/// DescribeCluster endpoint type asking for brokers (the only one v0 knows); 2 asks for controllers.
const ENDPOINT_TYPE_BROKERS: i8 = 1;

pub async fn handle(broker: &Broker, ctx: &RequestContext, req: DescribeClusterRequest) -> DescribeClusterResponse {
    if ctx.version >= 1 && req.endpoint_type != ENDPOINT_TYPE_BROKERS {
        return DescribeClusterResponse::default()
            .with_endpoint_type(req.endpoint_type)
            .with_error_code(ResponseError::UnsupportedEndpointType.code())
            .with_error_message(Some(str_bytes("a broker describes broker endpoints only")));
    }
    super::read_barrier(broker).await;
    let state = broker.meta.state();
    let endpoints = live_broker_endpoints(&state);
    let listed: Vec<i32> = endpoints.iter().map(|b| b.id).collect();
    let controller = super::controller_for_clients(broker, &listed);
    let brokers = endpoints
        .into_iter()
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.id))
                .with_host(str_bytes(&b.host))
                .with_port(i32::from(b.port))
                .with_rack(b.rack.as_deref().map(str_bytes))
        })
        .collect();
    DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(&broker.cluster_id))
        .with_controller_id(BrokerId(controller))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}

//! Routes a request frame to its API handler and encodes the response with the right header version.
//!
//! What closes the connection (as Apache Kafka does): an unknown API key (its header cannot be parsed), a
//! header or body that does not decode, and a version we do not serve — except ApiVersions, which answers
//! an unsupported version with a v0 body carrying UNSUPPORTED_VERSION so the client can retry lower.
//!
//! A response that cannot be encoded at the request's version is a broker bug: it is logged at `error`,
//! counted (`chronik_response_encode_errors_total`), and answered with UNKNOWN_SERVER_ERROR in the shape
//! `wire::error_response` builds, so the client sees an error instead of a closed connection it would
//! retry forever. Only if that answer cannot be encoded either is the connection closed.
//!
//! The request header is read by `wire::request_header`.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::Decodable;
use chronik_group::ClientInfo;

use crate::api;
use crate::broker::Broker;
use crate::wire::context::{DispatchError, Reply, RequestContext};
use crate::wire::request_header::parse_request_header;
use crate::wire::versions;

fn decode<T: Decodable>(ctx: &RequestContext, body: &mut Bytes) -> Result<T, DispatchError> {
    T::decode(body, ctx.version).map_err(|e| DispatchError::Malformed {
        api: ctx.api,
        version: ctx.version,
        reason: e.to_string(),
    })
}

pub async fn handle(broker: &Arc<Broker>, frame: Bytes, peer: &SocketAddr) -> Result<Reply, DispatchError> {
    let mut body = frame;
    let ctx = parse_request_header(&mut body)?;
    let (api, version) = (ctx.api, ctx.version);
    if !versions::is_supported(api, version) {
        if api == ApiKey::ApiVersions {
            return Ok(Reply::Now(Some(api::api_versions::unsupported_version(&ctx)?)));
        }
        return Err(DispatchError::UnsupportedVersion { api, version });
    }
    let started = ctx.started;
    let b = broker;
    let reply = match api {
        ApiKey::ApiVersions => now(ctx.encode(&api::api_versions::handle(&ctx, decode(&ctx, &mut body)?), &b.metrics)?),
        ApiKey::Metadata => now(ctx.encode(&api::metadata::handle(b, &ctx, decode(&ctx, &mut body)?).await, &b.metrics)?),
        ApiKey::Produce => {
            let req = decode(&ctx, &mut body)?;
            api::produce::handle(b, ctx, req)?
        }
        ApiKey::Fetch => api::fetch::handle(b, &ctx, decode(&ctx, &mut body)?).await?,
        ApiKey::ListOffsets => now(ctx.encode(&api::list_offsets::handle(b, &ctx, decode(&ctx, &mut body)?), &b.metrics)?),
        ApiKey::CreateTopics => now(ctx.encode(&api::create_topics::handle(b, &ctx, decode(&ctx, &mut body)?).await, &b.metrics)?),
        ApiKey::DeleteTopics => now(ctx.encode(&api::delete_topics::handle(b, &ctx, decode(&ctx, &mut body)?).await, &b.metrics)?),
        ApiKey::CreatePartitions => {
            now(ctx.encode(&api::create_partitions::handle(b, &ctx, decode(&ctx, &mut body)?).await, &b.metrics)?)
        }
        ApiKey::FindCoordinator => now(ctx.encode(&api::find_coordinator::handle(b, &ctx, decode(&ctx, &mut body)?).await, &b.metrics)?),
        // Every group API answers NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS itself for a group
        // whose offsets partition this broker does not lead (see `groups`).
        ApiKey::JoinGroup => {
            let req = decode(&ctx, &mut body)?;
            let client = ClientInfo { client_id: ctx.client_id().to_string(), client_host: format!("/{}", peer.ip()) };
            now(ctx.encode(&b.groups.join_group_from(req, version, &client).await, &b.metrics)?)
        }
        ApiKey::SyncGroup => now(ctx.encode(&b.groups.sync_group(decode(&ctx, &mut body)?, version).await, &b.metrics)?),
        ApiKey::Heartbeat => now(ctx.encode(&b.groups.heartbeat(decode(&ctx, &mut body)?, version).await, &b.metrics)?),
        ApiKey::LeaveGroup => now(ctx.encode(&b.groups.leave_group(decode(&ctx, &mut body)?, version).await, &b.metrics)?),
        ApiKey::OffsetCommit => now(ctx.encode(&b.groups.offset_commit(decode(&ctx, &mut body)?, version).await, &b.metrics)?),
        ApiKey::OffsetFetch => now(ctx.encode(&b.groups.offset_fetch(decode(&ctx, &mut body)?, version).await, &b.metrics)?),
        ApiKey::ListGroups => now(ctx.encode(&b.groups.list_groups(decode(&ctx, &mut body)?, version).await, &b.metrics)?),
        ApiKey::DescribeGroups => now(ctx.encode(&b.groups.describe_groups(decode(&ctx, &mut body)?, version).await, &b.metrics)?),
        ApiKey::DeleteGroups => now(ctx.encode(&b.groups.delete_groups(decode(&ctx, &mut body)?, version).await, &b.metrics)?),
        ApiKey::InitProducerId => {
            now(ctx.encode(&api::init_producer_id::handle(b, &ctx, decode(&ctx, &mut body)?).await, &b.metrics)?)
        }
        ApiKey::DescribeConfigs => now(ctx.encode(&api::describe_configs::handle(b, &ctx, decode(&ctx, &mut body)?), &b.metrics)?),
        ApiKey::DescribeCluster => now(ctx.encode(&api::describe_cluster::handle(b, &ctx, decode(&ctx, &mut body)?).await, &b.metrics)?),
        ApiKey::OffsetForLeaderEpoch => {
            now(ctx.encode(&api::offset_for_leader_epoch::handle(b, &ctx, decode(&ctx, &mut body)?), &b.metrics)?)
        }
        ApiKey::AlterPartitionReassignments => {
            now(ctx.encode(&api::alter_partition_reassignments::handle(b, &ctx, decode(&ctx, &mut body)?).await, &b.metrics)?)
        }
        ApiKey::ListPartitionReassignments => {
            now(ctx.encode(&api::list_partition_reassignments::handle(b, &ctx, decode(&ctx, &mut body)?), &b.metrics)?)
        }
        ApiKey::ElectLeaders => now(ctx.encode(&api::elect_leaders::handle(b, &ctx, decode(&ctx, &mut body)?).await, &b.metrics)?),
        ApiKey::DescribeLogDirs => now(ctx.encode(&api::describe_log_dirs::handle(b, &ctx, decode(&ctx, &mut body)?), &b.metrics)?),
        ApiKey::AlterReplicaLogDirs => {
            now(ctx.encode(&api::alter_replica_log_dirs::handle(b, &ctx, decode(&ctx, &mut body)?), &b.metrics)?)
        }
        _ => return Err(DispatchError::UnsupportedVersion { api, version }),
    };
    // A deferred reply (a produce waiting for fsync and replication) is observed by its handler
    // when it completes, so the histogram shows what the client waits for.
    if !matches!(reply, Reply::Later(_)) {
        broker.metrics.observe(api, started.elapsed());
    }
    Ok(reply)
}

fn now(bytes: Bytes) -> Reply {
    Reply::Now(Some(bytes))
}

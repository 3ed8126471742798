//! Routes a request frame to its API handler and encodes the response with the right header version.
//!
//! What closes the connection (as Apache Kafka does): an unknown API key (its header cannot be parsed), a
//! header or body that does not decode, and a version we do not serve — except ApiVersions, which answers
//! an unsupported version with a v0 body carrying UNSUPPORTED_VERSION so the client can retry lower.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use chronik_group::ClientInfo;
use tokio::sync::oneshot;

use super::frame::{finish, response_buffer};
use super::response::ResponseFrame;
use super::versions;
use crate::api;
use crate::broker::Broker;

/// What the connection sends back for one request.
pub enum Reply {
    /// The encoded response frame, or `None` for requests that get no response (produce with acks=0).
    Now(Option<Bytes>),
    /// A response that completes later; the connection keeps request order while it waits.
    Later(oneshot::Receiver<Option<Bytes>>),
    /// A response frame in chunks (Fetch: record data stays in the mapped segments).
    Frame(ResponseFrame),
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    #[error("{api:?} v{version} is not supported")]
    UnsupportedVersion { api: ApiKey, version: i16 },
    #[error("malformed {api:?} v{version} request: {reason}")]
    Malformed { api: ApiKey, version: i16, reason: String },
    #[error("acks=0 produce failed with error {code}; closing so the client notices")]
    AcksZeroFailed { code: i16 },
    #[error("cannot encode {api:?} v{version} response: {reason}")]
    Encode { api: ApiKey, version: i16, reason: String },
}

/// The decoded header plus what a handler needs to answer.
pub struct RequestContext {
    pub api: ApiKey,
    pub version: i16,
    pub header: RequestHeader,
    /// When handling began: the request latency metric runs from here to the response being ready.
    pub started: Instant,
}

impl RequestContext {
    /// Encodes `body` as this request's response frame.
    pub fn encode<R: Encodable>(&self, body: &R) -> Result<Bytes, DispatchError> {
        encode_response(self.api, self.version, self.header.correlation_id, body)
    }

    pub fn client_id(&self) -> &str {
        self.header.client_id.as_ref().map(|s| s.as_str()).unwrap_or("")
    }
}

pub fn encode_response<R: Encodable>(api: ApiKey, version: i16, correlation_id: i32, body: &R) -> Result<Bytes, DispatchError> {
    let err = |e: anyhow::Error| DispatchError::Encode { api, version, reason: e.to_string() };
    let header_version = api.response_header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let size = header.compute_size(header_version).map_err(err)? + body.compute_size(version).map_err(err)?;
    let mut buf = response_buffer(size);
    header.encode(&mut buf, header_version).map_err(err)?;
    body.encode(&mut buf, version).map_err(err)?;
    Ok(finish(buf))
}

fn decode<T: Decodable>(ctx: &RequestContext, body: &mut Bytes) -> Result<T, DispatchError> {
    T::decode(body, ctx.version).map_err(|e| DispatchError::Malformed {
        api: ctx.api,
        version: ctx.version,
        reason: e.to_string(),
    })
}

pub async fn handle(broker: &Arc<Broker>, frame: Bytes, peer: &SocketAddr) -> Result<Reply, DispatchError> {
    let mut body = frame;
    let key_raw = (&body[0..2]).get_i16();
    let version = (&body[2..4]).get_i16();
    let api = ApiKey::try_from(key_raw).map_err(|_| DispatchError::UnknownApiKey(key_raw))?;
    let header = RequestHeader::decode(&mut body, api.request_header_version(version)).map_err(|e| {
        DispatchError::Malformed { api, version, reason: e.to_string() }
    })?;
    let ctx = RequestContext { api, version, header, started: Instant::now() };
    if !versions::is_supported(api, version) {
        if api == ApiKey::ApiVersions {
            return Ok(Reply::Now(Some(api::api_versions::unsupported_version(&ctx)?)));
        }
        return Err(DispatchError::UnsupportedVersion { api, version });
    }
    let started = ctx.started;
    let b = broker;
    let reply = match api {
        ApiKey::ApiVersions => now(ctx.encode(&api::api_versions::handle(&ctx, decode(&ctx, &mut body)?))?),
        ApiKey::Metadata => now(ctx.encode(&api::metadata::handle(b, &ctx, decode(&ctx, &mut body)?).await)?),
        ApiKey::Produce => {
            let req = decode(&ctx, &mut body)?;
            api::produce::handle(b, ctx, req)?
        }
        ApiKey::Fetch => api::fetch::handle(b, &ctx, decode(&ctx, &mut body)?).await?,
        ApiKey::ListOffsets => now(ctx.encode(&api::list_offsets::handle(b, &ctx, decode(&ctx, &mut body)?))?),
        ApiKey::CreateTopics => now(ctx.encode(&api::create_topics::handle(b, &ctx, decode(&ctx, &mut body)?).await)?),
        ApiKey::DeleteTopics => now(ctx.encode(&api::delete_topics::handle(b, &ctx, decode(&ctx, &mut body)?).await)?),
        ApiKey::CreatePartitions => {
            now(ctx.encode(&api::create_partitions::handle(b, &ctx, decode(&ctx, &mut body)?).await)?)
        }
        ApiKey::FindCoordinator => now(ctx.encode(&api::find_coordinator::handle(b, &ctx, decode(&ctx, &mut body)?).await)?),
        // Every group API answers NOT_COORDINATOR / COORDINATOR_LOAD_IN_PROGRESS itself for a group
        // whose offsets partition this broker does not lead (see `groups`).
        ApiKey::JoinGroup => {
            let req = decode(&ctx, &mut body)?;
            let client = ClientInfo { client_id: ctx.client_id().to_string(), client_host: format!("/{}", peer.ip()) };
            now(ctx.encode(&b.groups.join_group_from(req, version, &client).await)?)
        }
        ApiKey::SyncGroup => now(ctx.encode(&b.groups.sync_group(decode(&ctx, &mut body)?, version).await)?),
        ApiKey::Heartbeat => now(ctx.encode(&b.groups.heartbeat(decode(&ctx, &mut body)?, version).await)?),
        ApiKey::LeaveGroup => now(ctx.encode(&b.groups.leave_group(decode(&ctx, &mut body)?, version).await)?),
        ApiKey::OffsetCommit => now(ctx.encode(&b.groups.offset_commit(decode(&ctx, &mut body)?, version).await)?),
        ApiKey::OffsetFetch => now(ctx.encode(&b.groups.offset_fetch(decode(&ctx, &mut body)?, version).await)?),
        ApiKey::ListGroups => now(ctx.encode(&b.groups.list_groups(decode(&ctx, &mut body)?, version).await)?),
        ApiKey::DescribeGroups => now(ctx.encode(&b.groups.describe_groups(decode(&ctx, &mut body)?, version).await)?),
        ApiKey::DeleteGroups => now(ctx.encode(&b.groups.delete_groups(decode(&ctx, &mut body)?, version).await)?),
        ApiKey::InitProducerId => {
            now(ctx.encode(&api::init_producer_id::handle(b, &ctx, decode(&ctx, &mut body)?).await)?)
        }
        ApiKey::DescribeConfigs => now(ctx.encode(&api::describe_configs::handle(b, &ctx, decode(&ctx, &mut body)?))?),
        ApiKey::DescribeCluster => now(ctx.encode(&api::describe_cluster::handle(b, &ctx, decode(&ctx, &mut body)?))?),
        ApiKey::OffsetForLeaderEpoch => {
            now(ctx.encode(&api::offset_for_leader_epoch::handle(b, &ctx, decode(&ctx, &mut body)?))?)
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

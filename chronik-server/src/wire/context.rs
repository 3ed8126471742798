//! What every API handler works with: the decoded request header ([`RequestContext`]), the reply it
//! gives back ([`Reply`]), the dispatch errors, and response encoding with the header version the
//! request's API and version call for — including the UNKNOWN_SERVER_ERROR answer to a response that
//! cannot be encoded (a broker bug: logged at `error` and counted in
//! `chronik_response_encode_errors_total`).

use std::time::Instant;

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::Encodable;
use tokio::sync::oneshot;

use super::error_response::ServerErrorResponse;
use super::frame::{finish, response_buffer};
use super::response::ResponseFrame;
use crate::metrics::Metrics;

/// What the connection sends back for one request.
pub enum Reply {
    /// The encoded response frame, or `None` for requests that get no response (produce with acks=0).
    Now(Option<Bytes>),
    /// A response that completes later; the connection keeps request order while it waits.
    Later(oneshot::Receiver<Option<Deferred>>),
    /// A response frame in chunks (Fetch: record data stays in the mapped segments).
    Frame(ResponseFrame),
}

/// A later response, encoded, and when it became ready (the connection times its wait to be written).
pub struct Deferred {
    pub frame: Bytes,
    pub ready: std::time::Instant,
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("request of {size} bytes is too short for an api key and version")]
    HeaderTooShort { size: usize },
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

impl DispatchError {
    /// Whether the broker is at fault (the client's request was fine): logged at `error`, not `debug`.
    pub fn is_broker_bug(&self) -> bool {
        matches!(self, DispatchError::Encode { .. })
    }
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
    /// Encodes `body` as this request's response frame; if it cannot be encoded, the UNKNOWN_SERVER_ERROR
    /// answer instead (see [`server_error_reply`]).
    pub fn encode<R: ServerErrorResponse>(&self, body: &R, metrics: &Metrics) -> Result<Bytes, DispatchError> {
        encode_response(self.api, self.version, self.header.correlation_id, body)
            .or_else(|e| server_error_reply(self, body, e, metrics))
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

/// The answer to a request whose response `failed` to encode with `error`: logged at `error`, counted,
/// and re-stated as UNKNOWN_SERVER_ERROR ([`ServerErrorResponse`]). An error only if that cannot be
/// encoded either (the connection then closes).
pub fn server_error_reply<R: ServerErrorResponse>(
    ctx: &RequestContext,
    failed: &R,
    error: DispatchError,
    metrics: &Metrics,
) -> Result<Bytes, DispatchError> {
    let (api, version) = (ctx.api, ctx.version);
    metrics.encode_error(api, version);
    tracing::error!(api = ?api, version, client_id = ctx.client_id(), %error, "response cannot be encoded; answering UNKNOWN_SERVER_ERROR");
    encode_response(api, version, ctx.header.correlation_id, &failed.server_error(version)).inspect_err(|e| {
        tracing::error!(api = ?api, version, error = %e, "the UNKNOWN_SERVER_ERROR answer cannot be encoded either; closing the connection");
    })
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::list_offsets_response::{ListOffsetsPartitionResponse, ListOffsetsTopicResponse};
    use kafka_protocol::messages::{ListOffsetsResponse, TopicName};
    use bytes::Buf;
    use kafka_protocol::protocol::{Decodable, StrBytes};

    use super::*;

    fn context(api: ApiKey, version: i16) -> RequestContext {
        let header = RequestHeader::default().with_request_api_key(api as i16).with_request_api_version(version).with_correlation_id(11);
        RequestContext { api, version, header, started: Instant::now() }
    }

    /// A response the version cannot carry is answered with UNKNOWN_SERVER_ERROR and counted, not dropped.
    #[test]
    fn unencodable_response_is_answered_with_unknown_server_error_and_counted() {
        let metrics = Metrics::default();
        let ctx = context(ApiKey::ListOffsets, 3);
        let body = ListOffsetsResponse::default().with_topics(vec![ListOffsetsTopicResponse::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(vec![ListOffsetsPartitionResponse::default().with_partition_index(0).with_offset(5).with_leader_epoch(1)])]);
        let mut frame = ctx.encode(&body, &metrics).expect("the fallback encodes");
        frame.advance(4);
        let header = ResponseHeader::decode(&mut frame, ApiKey::ListOffsets.response_header_version(3)).expect("header");
        assert_eq!(header.correlation_id, 11);
        let resp = ListOffsetsResponse::decode(&mut frame, 3).expect("body");
        assert!(!frame.has_remaining());
        let p = &resp.topics[0].partitions[0];
        assert_eq!((p.partition_index, p.error_code, p.offset), (0, -1, -1));
        assert_eq!(metrics.encode_errors(ApiKey::ListOffsets, 3), 1);
        assert_eq!(metrics.encode_errors(ApiKey::ListOffsets, 4), 0);
        // At v4 the same body is fine and is sent as it is.
        let ctx = context(ApiKey::ListOffsets, 4);
        let mut frame = ctx.encode(&body, &metrics).expect("v4 encodes");
        frame.advance(4);
        let _ = ResponseHeader::decode(&mut frame, ApiKey::ListOffsets.response_header_version(4)).expect("header");
        let resp = ListOffsetsResponse::decode(&mut frame, 4).expect("body");
        assert_eq!(resp.topics[0].partitions[0].leader_epoch, 1);
        assert_eq!(metrics.encode_errors(ApiKey::ListOffsets, 4), 0);
    }
}

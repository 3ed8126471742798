//! A minimal Kafka-protocol client for broker-to-broker calls on the wal port: one connection, one
//! request at a time (a follower's fetcher never pipelines), bounded response size, a timeout per call.

use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::error::ReplicationError;
use crate::ids::BrokerId;

/// Largest response accepted from a leader (a fetch is capped well below this by its `max_bytes`).
pub const RESPONSE_BYTES_MAX: usize = 128 * 1024 * 1024;
/// How long establishing a connection may take.
pub const CONNECT_TIMEOUT_MS: u64 = 3_000;

pub struct PeerClient {
    leader: BrokerId,
    stream: TcpStream,
    next_correlation: i32,
    client_id: StrBytes,
}

impl PeerClient {
    pub async fn connect(leader: BrokerId, addr: &str, client_id: String) -> Result<PeerClient, ReplicationError> {
        let connect = TcpStream::connect(addr);
        let stream = match tokio::time::timeout(Duration::from_millis(CONNECT_TIMEOUT_MS), connect).await {
            Ok(Ok(s)) => s,
            Ok(Err(source)) => return Err(ReplicationError::Connect { leader, addr: addr.to_string(), source }),
            Err(_) => {
                let source = std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out");
                return Err(ReplicationError::Connect { leader, addr: addr.to_string(), source });
            }
        };
        let _ = stream.set_nodelay(true);
        Ok(PeerClient { leader, stream, next_correlation: 0, client_id: StrBytes::from_string(client_id) })
    }

    /// Sends `req` as `api` v`version` and waits for its response, at most `timeout`.
    pub async fn call<Req: Encodable, Resp: Decodable>(
        &mut self,
        api: ApiKey,
        version: i16,
        req: &Req,
        timeout: Duration,
    ) -> Result<Resp, ReplicationError> {
        let leader = self.leader;
        match tokio::time::timeout(timeout, self.call_inner(api, version, req)).await {
            Ok(r) => r,
            Err(_) => Err(ReplicationError::Timeout { leader, api, timeout_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX) }),
        }
    }

    async fn call_inner<Req: Encodable, Resp: Decodable>(&mut self, api: ApiKey, version: i16, req: &Req) -> Result<Resp, ReplicationError> {
        let leader = self.leader;
        let correlation = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(api as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation)
            .with_client_id(Some(self.client_id.clone()));
        let encode_err = |e: anyhow::Error| ReplicationError::Encode { leader, api, reason: e.to_string() };
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header.encode(&mut buf, api.request_header_version(version)).map_err(encode_err)?;
        req.encode(&mut buf, version).map_err(encode_err)?;
        let len = i32::try_from(buf.len() - 4).map_err(|e| ReplicationError::Encode { leader, api, reason: e.to_string() })?;
        buf[0..4].copy_from_slice(&len.to_be_bytes());
        let io = |source| ReplicationError::Io { leader, api, source };
        self.stream.write_all(&buf).await.map_err(io)?;
        let size = self.stream.read_i32().await.map_err(io)?;
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        if size > RESPONSE_BYTES_MAX {
            return Err(ReplicationError::ResponseTooLarge { leader, api, size, max: RESPONSE_BYTES_MAX });
        }
        let mut body = vec![0u8; size];
        self.stream.read_exact(&mut body).await.map_err(io)?;
        let mut body = Bytes::from(body);
        let decode_err = |e: anyhow::Error| ReplicationError::Decode { leader, api, reason: e.to_string() };
        let resp_header = ResponseHeader::decode(&mut body, api.response_header_version(version)).map_err(decode_err)?;
        if resp_header.correlation_id != correlation {
            return Err(ReplicationError::Correlation { leader, api, got: resp_header.correlation_id, expected: correlation });
        }
        let resp = Resp::decode(&mut body, version).map_err(decode_err)?;
        if body.has_remaining() {
            tracing::debug!(leader = leader.0, ?api, trailing = body.remaining(), "response has trailing bytes");
        }
        Ok(resp)
    }
}

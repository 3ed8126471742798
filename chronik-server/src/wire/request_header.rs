//! The request header at the start of every frame: the API key and version (first four bytes), then
//! the rest of the header in the version that API's requests use. An unknown API key closes the
//! connection, as in Apache Kafka: its header version, hence the header's length, is unknown.

use std::time::Instant;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader};
use kafka_protocol::protocol::Decodable;

use super::context::{DispatchError, RequestContext};

/// api key (2 bytes) + api version (2 bytes), read before the header version is known.
const KEY_AND_VERSION_BYTES: usize = 4;

/// Decodes the request header of `frame` and leaves `frame` at the request body. A frame too short
/// for its key and version is an error, not a panic (the frame reader refuses such frames already).
pub fn parse_request_header(frame: &mut Bytes) -> Result<RequestContext, DispatchError> {
    let Some(mut key_and_version) = frame.get(..KEY_AND_VERSION_BYTES) else {
        return Err(DispatchError::HeaderTooShort { size: frame.len() });
    };
    let key_raw = key_and_version.get_i16();
    let version = key_and_version.get_i16();
    let api = ApiKey::try_from(key_raw).map_err(|_| DispatchError::UnknownApiKey(key_raw))?;
    let header = RequestHeader::decode(frame, api.request_header_version(version))
        .map_err(|e| DispatchError::Malformed { api, version, reason: e.to_string() })?;
    Ok(RequestContext { api, version, header, started: Instant::now() })
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    use super::*;
    use crate::wire::versions::SUPPORTED;

    /// Random cases per property (each drawn from its seed, printed on failure).
    const CASES: u64 = 5_000;

    #[test]
    fn a_frame_shorter_than_key_and_version_is_refused() {
        for len in 0..KEY_AND_VERSION_BYTES {
            let mut frame = Bytes::from(vec![0u8; len]);
            assert!(matches!(parse_request_header(&mut frame), Err(DispatchError::HeaderTooShort { size }) if size == len));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        for seed in 0..CASES {
            let mut rng = fastrand::Rng::with_seed(seed);
            let mut bytes = vec![0u8; rng.usize(0..80)];
            rng.fill(&mut bytes);
            // Most cases start with a served key and version, so the header itself gets decoded.
            if bytes.len() >= KEY_AND_VERSION_BYTES && rng.u8(0..4) > 0 {
                let (key, min, max) = SUPPORTED[rng.usize(0..SUPPORTED.len())];
                bytes[..2].copy_from_slice(&(key as i16).to_be_bytes());
                bytes[2..4].copy_from_slice(&rng.i16(min..=max).to_be_bytes());
            }
            let mut frame = Bytes::from(bytes);
            let before = frame.len();
            if let Ok(ctx) = parse_request_header(&mut frame) {
                assert!(frame.len() <= before - KEY_AND_VERSION_BYTES, "seed {seed}: {:?}", ctx.api);
            }
        }
    }

    #[test]
    fn a_valid_header_round_trips_and_leaves_the_body() {
        for seed in 0..CASES {
            let mut rng = fastrand::Rng::with_seed(seed);
            let (api, min, max) = SUPPORTED[rng.usize(0..SUPPORTED.len())];
            let version = rng.i16(min..=max);
            let header_version = api.request_header_version(version);
            let client_id = (header_version >= 1 && rng.bool())
                .then(|| StrBytes::from_string((0..rng.usize(0..40)).map(|_| rng.alphanumeric()).collect()));
            let header = RequestHeader::default()
                .with_request_api_key(api as i16)
                .with_request_api_version(version)
                .with_correlation_id(rng.i32(..))
                .with_client_id(client_id);
            let mut buf = BytesMut::new();
            header.encode(&mut buf, header_version).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            let mut body = vec![0u8; rng.usize(0..100)];
            rng.fill(&mut body);
            buf.extend_from_slice(&body);
            let mut frame = buf.freeze();
            let ctx = parse_request_header(&mut frame).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            assert_eq!((ctx.api, ctx.version, &ctx.header), (api, version, &header), "seed {seed}");
            assert_eq!(&frame[..], &body[..], "seed {seed}");
        }
    }
}

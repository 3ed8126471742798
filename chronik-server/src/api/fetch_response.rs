//! Fetch response encoding that leaves record data where it is.
//!
//! kafka-protocol's generic encoder copies every record set into the response buffer: in the fetch
//! profile that copy was a third of the broker's CPU, although the log already hands out the records
//! as `Bytes` slices of mapped segments. Here the response is encoded into one small buffer with each
//! large record set left out, and the frame is the list of chunks `[fields][records][fields][records]…`
//! sent with `writev` ([`ResponseFrame`]). The bytes on the wire are exactly what the generic encoder
//! writes (the unit tests compare them for every version we serve).
//!
//! A record set is a length followed by the bytes: an `int32` up to v11, an unsigned varint of
//! length + 1 in flexible versions (v12). Each partition entry is still encoded by kafka-protocol, with
//! empty records, which puts the empty length last (then, in v12, the tagged-field count); that tail is
//! replaced by the real length and the record chunk. The topic and top-level wrappers are written here,
//! for the versions this broker serves (4–12). Anything else — another version, tagged fields, fields a
//! version does not carry — goes through the generic encoder as one chunk.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::PartitionData;
use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseHeader};
use kafka_protocol::protocol::Encodable;

use crate::wire::context::{encode_response, DispatchError};
use crate::wire::response::ResponseFrame;

/// Record sets up to this size are copied into the field buffer: for small ones an extra `iovec` (and
/// the `Bytes` reference it holds) costs more than the copy.
pub const INLINE_RECORDS_BYTES_MAX: usize = 4 * 1024;
/// The Fetch versions whose wrapper layout [`encode`] writes itself.
const SPLICE_VERSION_MIN: i16 = 4;
const SPLICE_VERSION_MAX: i16 = 12;
/// First flexible Fetch version (compact arrays, strings and bytes; tagged fields).
const FLEXIBLE_VERSION_MIN: i16 = 12;
/// Bytes a partition entry needs besides its topic name and records, for the buffer size estimate.
const PARTITION_FIELDS_BYTES_EST: usize = 64;

/// Encodes `resp` as the response frame to Fetch v`version` with `correlation_id`.
pub fn encode(version: i16, correlation_id: i32, resp: FetchResponse) -> Result<ResponseFrame, DispatchError> {
    if !can_splice(version, &resp) {
        return Ok(encode_response(ApiKey::Fetch, version, correlation_id, &resp)?.into());
    }
    let err = |e: anyhow::Error| DispatchError::Encode { api: ApiKey::Fetch, version, reason: e.to_string() };
    let flexible = version >= FLEXIBLE_VERSION_MIN;
    let header_version = ApiKey::Fetch.response_header_version(version);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);

    let estimate: usize = resp
        .responses
        .iter()
        .map(|t| t.topic.len() + t.partitions.len() * PARTITION_FIELDS_BYTES_EST + t.partitions.iter().map(inline_len).sum::<usize>())
        .sum::<usize>()
        + PARTITION_FIELDS_BYTES_EST;
    let mut buf = BytesMut::with_capacity(estimate);
    buf.put_i32(0); // frame length, written last
    header.encode(&mut buf, header_version).map_err(err)?;
    buf.put_i32(resp.throttle_time_ms);
    if version >= 7 {
        buf.put_i16(resp.error_code);
        buf.put_i32(resp.session_id);
    }
    put_array_len(&mut buf, resp.responses.len(), flexible).map_err(err)?;
    // (position in `buf`, records to send there), in order.
    let mut splices: Vec<(usize, Bytes)> = Vec::new();
    for topic in resp.responses {
        put_string(&mut buf, topic.topic.as_bytes(), flexible).map_err(err)?;
        put_array_len(&mut buf, topic.partitions.len(), flexible).map_err(err)?;
        for mut pd in topic.partitions {
            let spliced = match pd.records.take() {
                Some(r) if r.len() > INLINE_RECORDS_BYTES_MAX && (!flexible || !has_tagged_fields(&pd)) => Some(r),
                other => {
                    pd.records = other;
                    None
                }
            };
            let Some(records) = spliced else {
                pd.encode(&mut buf, version).map_err(err)?;
                continue;
            };
            pd.records = Some(Bytes::new());
            pd.encode(&mut buf, version).map_err(err)?;
            // The entry ends with the empty record set's length, then (flexible) no tagged fields.
            let empty_tail: &[u8] = if flexible { &[1, 0] } else { &[0, 0, 0, 0] };
            if !buf.ends_with(empty_tail) {
                return Err(err(anyhow::anyhow!("partition entry does not end with empty records")));
            }
            buf.truncate(buf.len() - empty_tail.len());
            // A record set's length has the encoding of an array's.
            put_array_len(&mut buf, records.len(), flexible).map_err(err)?;
            splices.push((buf.len(), records));
            if flexible {
                put_no_tagged_fields(&mut buf);
            }
        }
        if flexible {
            put_no_tagged_fields(&mut buf);
        }
    }
    if flexible {
        put_no_tagged_fields(&mut buf);
    }

    let body_len = buf.len() - 4 + splices.iter().map(|(_, r)| r.len()).sum::<usize>();
    let body_len = i32::try_from(body_len).map_err(|e| err(e.into()))?;
    buf[..4].copy_from_slice(&body_len.to_be_bytes());
    let fields = buf.freeze();
    let mut chunks = Vec::with_capacity(splices.len() * 2 + 1);
    let mut from = 0;
    for (at, records) in splices {
        chunks.push(fields.slice(from..at));
        chunks.push(records);
        from = at;
    }
    chunks.push(fields.slice(from..));
    Ok(ResponseFrame::from_chunks(chunks))
}

/// Whether [`encode`] writes this response itself: a version whose wrapper layout it knows, and no
/// field that the wrapper code does not write (the generic encoder then decides, and refuses fields a
/// version does not carry).
fn can_splice(version: i16, resp: &FetchResponse) -> bool {
    (SPLICE_VERSION_MIN..=SPLICE_VERSION_MAX).contains(&version)
        && resp.unknown_tagged_fields.is_empty()
        && resp.node_endpoints.is_empty()
        && (version >= 7 || (resp.error_code == 0 && resp.session_id == 0))
        && resp.responses.iter().all(|t| t.unknown_tagged_fields.is_empty() && t.topic_id.is_nil())
}

fn has_tagged_fields(pd: &PartitionData) -> bool {
    !pd.unknown_tagged_fields.is_empty()
        || pd.diverging_epoch != Default::default()
        || pd.current_leader != Default::default()
        || pd.snapshot_id != Default::default()
}

/// Bytes of a partition's records that will be copied into the field buffer.
fn inline_len(pd: &PartitionData) -> usize {
    pd.records.as_ref().map_or(0, |r| if r.len() > INLINE_RECORDS_BYTES_MAX { 0 } else { r.len() })
}

/// An array's (or a record set's) length: `int32`, or in flexible versions an unsigned varint of
/// length + 1.
fn put_array_len(buf: &mut BytesMut, len: usize, flexible: bool) -> anyhow::Result<()> {
    if flexible {
        put_unsigned_varint(buf, u32::try_from(len + 1)?);
    } else {
        buf.put_i32(i32::try_from(len)?);
    }
    Ok(())
}

/// A non-null string: `int16` length, or in flexible versions an unsigned varint of length + 1.
fn put_string(buf: &mut BytesMut, s: &[u8], flexible: bool) -> anyhow::Result<()> {
    if flexible {
        put_unsigned_varint(buf, u32::try_from(s.len() + 1)?);
    } else {
        buf.put_i16(i16::try_from(s.len())?);
    }
    buf.put_slice(s);
    Ok(())
}

/// The tagged-field count of a flexible struct that has none.
fn put_no_tagged_fields(buf: &mut BytesMut) {
    buf.put_u8(0);
}

/// Kafka's unsigned varint: 7 bits per byte, low bits first, high bit set on all but the last byte.
fn put_unsigned_varint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, LeaderIdAndEpoch};
    use kafka_protocol::messages::{BrokerId, TopicName};
    use kafka_protocol::protocol::{Decodable, StrBytes};

    fn records(len: usize, seed: u8) -> Bytes {
        Bytes::from((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect::<Vec<u8>>())
    }

    fn partition(index: i32, records: Option<Bytes>) -> PartitionData {
        PartitionData::default()
            .with_partition_index(index)
            .with_high_watermark(1000 + i64::from(index))
            .with_last_stable_offset(1000 + i64::from(index))
            .with_log_start_offset(3)
            .with_preferred_read_replica(BrokerId(-1))
            .with_records(records)
    }

    /// Large, small and empty record sets, a partition with an error and no records, two topics.
    fn sample() -> FetchResponse {
        let big = partition(0, Some(records(3 * INLINE_RECORDS_BYTES_MAX, 1)));
        let small = partition(1, Some(records(100, 2)));
        let empty = partition(2, Some(Bytes::new()));
        let failed = partition(3, Some(Bytes::new())).with_error_code(6).with_high_watermark(-1);
        let other = partition(0, Some(records(INLINE_RECORDS_BYTES_MAX + 1, 3)));
        let topic = |name: &str, parts| {
            FetchableTopicResponse::default().with_topic(TopicName(StrBytes::from_string(name.to_string()))).with_partitions(parts)
        };
        FetchResponse::default()
            .with_throttle_time_ms(0)
            .with_responses(vec![topic("alpha", vec![big, small, empty, failed]), topic("beta", vec![other])])
    }

    fn concat(frame: &ResponseFrame) -> Vec<u8> {
        frame.chunks().flat_map(|c| c.iter().copied()).collect()
    }

    #[test]
    fn same_bytes_as_the_generic_encoder_for_every_served_version() {
        for version in SPLICE_VERSION_MIN..=SPLICE_VERSION_MAX {
            let resp = sample();
            let generic = encode_response(ApiKey::Fetch, version, 42, &resp).unwrap();
            let frame = encode(version, 42, resp.clone()).unwrap();
            assert_eq!(frame.len(), generic.len(), "v{version}");
            assert_eq!(concat(&frame), &generic[..], "v{version}");
            // The two large record sets are sent from their own buffers, not copied.
            let big = resp.responses[0].partitions[0].records.clone().unwrap();
            let other = resp.responses[1].partitions[0].records.clone().unwrap();
            assert!(frame.chunks().any(|c| c.as_ptr() == big.as_ptr() && c.len() == big.len()), "v{version}");
            assert!(frame.chunks().any(|c| c.as_ptr() == other.as_ptr() && c.len() == other.len()), "v{version}");
            // [fields][big][fields][other], then (flexible) the closing tagged-field counts.
            assert_eq!(frame.chunk_count(), if version >= FLEXIBLE_VERSION_MIN { 5 } else { 4 }, "v{version}");
        }
    }

    #[test]
    fn decodes_with_kafka_protocol() {
        for version in [4, 7, 11, 12] {
            let resp = sample();
            let mut wire = Bytes::from(concat(&encode(version, 7, resp.clone()).unwrap()));
            let len = wire.get_i32();
            assert_eq!(len as usize, wire.len());
            let header = ResponseHeader::decode(&mut wire, ApiKey::Fetch.response_header_version(version)).unwrap();
            assert_eq!(header.correlation_id, 7);
            let decoded = FetchResponse::decode(&mut wire, version).unwrap();
            assert!(!wire.has_remaining(), "v{version}: trailing bytes");
            // Compare what every version carries (v4 has no log start offset); records by equality, so
            // a failure does not print kilobytes.
            let summary = |r: &FetchResponse| -> Vec<(String, i32, i16, i64, usize)> {
                r.responses
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(move |p| (t.topic.to_string(), p.partition_index, p.error_code, p.high_watermark, p.records.as_ref().map_or(0, Bytes::len))))
                    .collect()
            };
            assert_eq!(summary(&decoded), summary(&resp), "v{version}");
            let records = |r: &FetchResponse| -> Vec<Option<Bytes>> {
                r.responses.iter().flat_map(|t| t.partitions.iter().map(|p| p.records.clone())).collect()
            };
            assert!(records(&decoded) == records(&resp), "v{version}: records differ");
        }
    }

    #[test]
    fn empty_response_and_empty_partitions() {
        for version in [4, 12] {
            let resp = FetchResponse::default().with_responses(vec![FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_static_str("t")))
                .with_partitions(vec![partition(0, Some(Bytes::new())), partition(1, None)])]);
            let generic = encode_response(ApiKey::Fetch, version, 1, &resp).unwrap();
            let frame = encode(version, 1, resp).unwrap();
            assert_eq!(frame.chunk_count(), 1);
            assert_eq!(concat(&frame), &generic[..]);
            let none = FetchResponse::default();
            assert_eq!(concat(&encode(version, 1, none.clone()).unwrap()), &encode_response(ApiKey::Fetch, version, 1, &none).unwrap()[..]);
        }
    }

    #[test]
    fn tagged_fields_and_other_versions_use_the_generic_encoder() {
        let mut resp = sample();
        let leader = LeaderIdAndEpoch::default().with_leader_id(BrokerId(2)).with_leader_epoch(5);
        resp.responses[0].partitions[0].current_leader = leader;
        let generic = encode_response(ApiKey::Fetch, 12, 3, &resp).unwrap();
        let frame = encode(12, 3, resp).unwrap();
        assert_eq!(concat(&frame), &generic[..]);
        // Partition 0 was copied (tagged field), beta's records still spliced.
        assert_eq!(frame.chunk_count(), 3);
        let resp = sample();
        let frame = encode(13, 3, resp.clone()).unwrap();
        assert_eq!(frame.chunk_count(), 1);
        assert_eq!(concat(&frame), &encode_response(ApiKey::Fetch, 13, 3, &resp).unwrap()[..]);
    }
}

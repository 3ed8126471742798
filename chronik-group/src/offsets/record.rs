//! How committed offsets are written into the offsets logs: one Kafka record batch per commit.
//!
//! Keys and values follow the shape of Kafka's `__consumer_offsets` records (a version prefix, then
//! fields), so a record is readable without context:
//! - key v1 `(group, topic, partition)`, value v3 `(offset, leader_epoch, metadata, commit_time)`;
//!   a null value deletes that one offset (used when a topic is deleted).
//! - key v2 `(group)` with a null value: the group was deleted; all its offsets (and its stored
//!   membership) are gone.
//! - key v3 `(group)`: the group's membership after its last completed rebalance, or a null value
//!   once it has no members ([`super::membership`] has the value format).
//!
//! Decoding is strict for offsets (an unknown key version fails the load: a commit must never be
//! silently dropped) and lenient for membership (an unreadable value becomes
//! [`OffsetRecord::UnreadableMembership`]: members rejoin, nothing else is lost).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};

use super::membership::{self, StoredGroup};
use super::{CommittedOffset, TopicPartition};

const KEY_OFFSET: i16 = 1;
const KEY_GROUP: i16 = 2;
const KEY_MEMBERSHIP: i16 = 3;
const VALUE_OFFSET: i16 = 3;

/// One change to the committed-offsets map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetRecord {
    Commit { group: String, partition: TopicPartition, committed: CommittedOffset },
    DeleteOffset { group: String, partition: TopicPartition },
    DeleteGroup { group: String },
    /// The group's membership after a completed rebalance; `None` once it has no members.
    Membership { group: String, membership: Option<StoredGroup> },
    /// A membership value this version cannot read: only ever decoded, never written.
    UnreadableMembership { group: String, reason: String },
}

/// Encodes `records` as one v2 record batch (base offset 0: the log assigns the real one).
pub fn encode_batch(records: &[OffsetRecord], timestamp_ms: i64) -> Result<BytesMut, String> {
    let records = records
        .iter()
        .enumerate()
        .map(|(index, record)| {
            let (key, value) = encode_key_value(record)?;
            // A constant offset − sequence keeps every record in one batch (the encoder splits
            // whenever that difference changes).
            let delta = i32::try_from(index).unwrap_or(i32::MAX);
            Ok(Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
                producer_id: NO_PRODUCER_ID,
                producer_epoch: NO_PRODUCER_EPOCH,
                timestamp_type: TimestampType::Creation,
                offset: i64::from(delta),
                sequence: delta,
                timestamp: timestamp_ms,
                key: Some(key),
                value,
                headers: IndexMap::new(),
            })
        })
        .collect::<Result<Vec<Record>, String>>()?;
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut buf, records.iter(), &options).map_err(|e| e.to_string())?;
    Ok(buf)
}

/// Decodes every record of the batches in `data`.
pub fn decode_batches(mut data: Bytes) -> Result<Vec<OffsetRecord>, String> {
    let sets = RecordBatchDecoder::decode_all(&mut data).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for set in sets {
        for record in set.records {
            if record.control {
                continue;
            }
            out.push(decode_record(record.key, record.value)?);
        }
    }
    Ok(out)
}

fn encode_key_value(record: &OffsetRecord) -> Result<(Bytes, Option<Bytes>), String> {
    let mut key = BytesMut::new();
    Ok(match record {
        OffsetRecord::Commit { group, partition, committed } => {
            put_offset_key(&mut key, group, partition);
            let mut value = BytesMut::new();
            value.put_i16(VALUE_OFFSET);
            value.put_i64(committed.offset);
            value.put_i32(committed.leader_epoch);
            put_nullable_str(&mut value, committed.metadata.as_deref());
            value.put_i64(committed.commit_timestamp_ms);
            (key.freeze(), Some(value.freeze()))
        }
        OffsetRecord::DeleteOffset { group, partition } => {
            put_offset_key(&mut key, group, partition);
            (key.freeze(), None)
        }
        OffsetRecord::DeleteGroup { group } => {
            key.put_i16(KEY_GROUP);
            put_str(&mut key, group);
            (key.freeze(), None)
        }
        OffsetRecord::Membership { group, membership: stored } => {
            key.put_i16(KEY_MEMBERSHIP);
            put_str(&mut key, group);
            (key.freeze(), stored.as_ref().map(membership::encode_value))
        }
        OffsetRecord::UnreadableMembership { group, .. } => {
            return Err(format!("group {group}: an unreadable membership record is never written"));
        }
    })
}

fn decode_record(key: Option<Bytes>, value: Option<Bytes>) -> Result<OffsetRecord, String> {
    let mut key = key.ok_or("record without key")?;
    match get_i16(&mut key)? {
        KEY_OFFSET => {
            let group = get_str(&mut key)?;
            let topic = get_str(&mut key)?;
            let partition = TopicPartition { topic, partition: get_i32(&mut key)? };
            let Some(mut value) = value else {
                return Ok(OffsetRecord::DeleteOffset { group, partition });
            };
            let version = get_i16(&mut value)?;
            if version != VALUE_OFFSET {
                return Err(format!("unknown offset value version {version}"));
            }
            let committed = CommittedOffset {
                offset: get_i64(&mut value)?,
                leader_epoch: get_i32(&mut value)?,
                metadata: get_nullable_str(&mut value)?,
                commit_timestamp_ms: get_i64(&mut value)?,
            };
            Ok(OffsetRecord::Commit { group, partition, committed })
        }
        KEY_GROUP => Ok(OffsetRecord::DeleteGroup { group: get_str(&mut key)? }),
        KEY_MEMBERSHIP => {
            let group = get_str(&mut key)?;
            Ok(match value.map(membership::decode_value) {
                None => OffsetRecord::Membership { group, membership: None },
                Some(Ok(stored)) => OffsetRecord::Membership { group, membership: Some(stored) },
                Some(Err(reason)) => OffsetRecord::UnreadableMembership { group, reason },
            })
        }
        other => Err(format!("unknown key version {other}")),
    }
}

fn put_offset_key(key: &mut BytesMut, group: &str, partition: &TopicPartition) {
    key.put_i16(KEY_OFFSET);
    put_str(key, group);
    put_str(key, &partition.topic);
    key.put_i32(partition.partition);
}

/// Strings are i16-length-prefixed; Kafka bounds group ids and topic names well below that, and
/// commit metadata is bounded by OFFSET_METADATA_BYTES_MAX before it gets here.
pub(super) fn put_str(buf: &mut BytesMut, s: &str) {
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    buf.put_i16(len);
    buf.put_slice(&s.as_bytes()[..len as usize]);
}

pub(super) fn put_nullable_str(buf: &mut BytesMut, s: Option<&str>) {
    match s {
        Some(s) => put_str(buf, s),
        None => buf.put_i16(-1),
    }
}

pub(super) fn need(buf: &Bytes, n: usize, what: &str) -> Result<(), String> {
    if buf.remaining() < n {
        return Err(format!("truncated {what}: need {n} bytes, have {}", buf.remaining()));
    }
    Ok(())
}

pub(super) fn get_i16(buf: &mut Bytes) -> Result<i16, String> {
    need(buf, 2, "i16")?;
    Ok(buf.get_i16())
}

pub(super) fn get_i32(buf: &mut Bytes) -> Result<i32, String> {
    need(buf, 4, "i32")?;
    Ok(buf.get_i32())
}

pub(super) fn get_i64(buf: &mut Bytes) -> Result<i64, String> {
    need(buf, 8, "i64")?;
    Ok(buf.get_i64())
}

pub(super) fn get_nullable_str(buf: &mut Bytes) -> Result<Option<String>, String> {
    let len = get_i16(buf)?;
    if len < 0 {
        return Ok(None);
    }
    let len = len as usize;
    need(buf, len, "string")?;
    let bytes = buf.split_to(len);
    String::from_utf8(bytes.to_vec()).map(Some).map_err(|e| format!("string is not UTF-8: {e}"))
}

pub(super) fn get_str(buf: &mut Bytes) -> Result<String, String> {
    get_nullable_str(buf)?.ok_or_else(|| "null where a string is required".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_commit_of_several_partitions_is_one_batch_and_round_trips() {
        let tp = |p| TopicPartition { topic: "orders".into(), partition: p };
        let records = vec![
            OffsetRecord::Commit {
                group: "g".into(),
                partition: tp(0),
                committed: CommittedOffset {
                    offset: 42,
                    leader_epoch: 3,
                    metadata: Some("meta".into()),
                    commit_timestamp_ms: 1_000,
                },
            },
            OffsetRecord::Commit {
                group: "g".into(),
                partition: tp(1),
                committed: CommittedOffset { offset: 7, leader_epoch: -1, metadata: None, commit_timestamp_ms: 1_000 },
            },
            OffsetRecord::DeleteOffset { group: "g".into(), partition: tp(2) },
            OffsetRecord::DeleteGroup { group: "old".into() },
        ];
        let batch = encode_batch(&records, 1_000).expect("encode").freeze();
        let infos = RecordBatchDecoder::decode_batch_info(&mut batch.clone()).expect("headers");
        assert_eq!(infos.len(), 1, "one commit is one batch");
        assert_eq!(infos[0].record_count, 4);
        assert_eq!(decode_batches(batch).expect("decode"), records);
    }

    #[test]
    fn unknown_key_version_is_an_error() {
        let mut key = BytesMut::new();
        key.put_i16(9);
        assert!(decode_record(Some(key.freeze()), None).is_err());
        assert!(decode_record(None, None).is_err());
    }

    #[test]
    fn membership_records_round_trip_and_an_unreadable_value_is_not_an_error() {
        let stored = super::super::membership::StoredGroup {
            protocol_type: "consumer".into(),
            generation_id: 2,
            protocol_name: Some("range".into()),
            leader_id: None,
            state_timestamp_ms: 9,
            members: vec![],
        };
        let records = vec![
            OffsetRecord::Membership { group: "g".into(), membership: Some(stored) },
            OffsetRecord::Membership { group: "g".into(), membership: None },
        ];
        let batch = encode_batch(&records, 1_000).expect("encode").freeze();
        assert_eq!(decode_batches(batch).expect("decode"), records);

        let mut key = BytesMut::new();
        key.put_i16(KEY_MEMBERSHIP);
        put_str(&mut key, "g");
        let garbage = Bytes::from_static(&[0, 42, 1, 2, 3]);
        let decoded = decode_record(Some(key.freeze()), Some(garbage)).expect("a bad membership value is not fatal");
        assert!(matches!(decoded, OffsetRecord::UnreadableMembership { ref group, .. } if group == "g"), "{decoded:?}");
        assert!(encode_batch(&[decoded], 0).is_err(), "never written");
    }
}

//! Kafka v2 record batches for tests: encoding (optionally idempotent), CRC-32C fix-up, and decoding of
//! fetched batches into (offset, timestamp, value).

use anyhow::{ensure, Context, Result};
use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
    NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID,
};

/// Producer identity of an idempotent batch.
#[derive(Debug, Clone, Copy)]
pub struct Idempotence {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
}

/// Byte positions in a v2 record batch.
pub const BATCH_CRC_AT: usize = 17;
pub const BATCH_CRC_COVERS_FROM: usize = 21;
pub const BATCH_BASE_SEQUENCE_AT: usize = 53;
pub const BATCH_HEADER_BYTES: usize = 61;

/// One v2 record batch (no compression) holding `values`, keys `k0..`, timestamps `base_timestamp_ms + i`.
/// Without `idempotence` the batch carries producer id -1 and base sequence -1, as a plain producer's does.
pub fn record_batch(values: &[&str], base_timestamp_ms: i64, idempotence: Option<Idempotence>) -> Result<Bytes> {
    ensure!(!values.is_empty(), "a batch needs at least one record");
    let (producer_id, producer_epoch, base_sequence) = match idempotence {
        Some(i) => (i.producer_id, i.producer_epoch, i.base_sequence),
        None => (NO_PRODUCER_ID, NO_PRODUCER_EPOCH, 0),
    };
    let records: Vec<Record> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id,
            producer_epoch,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            // The encoder keeps records in one batch while offset - sequence is constant.
            sequence: base_sequence + i as i32,
            timestamp: base_timestamp_ms + i as i64,
            key: Some(Bytes::from(format!("k{i}"))),
            value: Some(Bytes::from(v.to_string())),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression: Compression::None })
        .context("encoding a record batch")?;
    ensure!(buf.len() > BATCH_HEADER_BYTES, "encoded batch too short");
    if idempotence.is_none() {
        buf[BATCH_BASE_SEQUENCE_AT..BATCH_BASE_SEQUENCE_AT + 4].copy_from_slice(&(-1i32).to_be_bytes());
        fix_batch_crc(&mut buf);
    }
    Ok(buf.freeze())
}

/// Recomputes the CRC-32C of a single v2 batch in place (after patching a covered field).
pub fn fix_batch_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[BATCH_CRC_COVERS_FROM..]);
    batch[BATCH_CRC_AT..BATCH_CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
}

/// A fetched record: its offset, timestamp and value as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    pub offset: i64,
    pub timestamp: i64,
    pub value: String,
}

/// Decodes the record batches of a Fetch answer.
pub fn decode_records(records: &Option<Bytes>) -> Result<Vec<Fetched>> {
    let mut buf = match records {
        Some(b) => b.clone(),
        None => return Ok(Vec::new()),
    };
    // A partial batch at the end is legal in a Fetch answer (clients skip it): decode whole ones only.
    let mut sets = Vec::new();
    while buf.len() >= 12 {
        let batch_len = i32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        ensure!(batch_len > 0, "fetched batch with length {batch_len}");
        let size = 12 + batch_len as usize;
        if buf.len() < size {
            break;
        }
        let mut one = buf.split_to(size);
        sets.push(RecordBatchDecoder::decode(&mut one).context("decoding a fetched record batch")?);
    }
    let mut out = Vec::new();
    for set in sets {
        for r in set.records {
            let value = r.value.map(|v| String::from_utf8_lossy(&v).into_owned()).unwrap_or_default();
            out.push(Fetched { offset: r.offset, timestamp: r.timestamp, value });
        }
    }
    Ok(out)
}

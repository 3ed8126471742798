//! A group's membership as stored in its offsets partition, next to its offsets, so a new
//! coordinator (the next leader of that partition) takes the group over with its members and
//! generation instead of making everyone rejoin.
//!
//! Format (see also docs/ARCHITECTURE.md, "Consumer groups"): key version 3 `(group)`; the value is
//! an i16 version followed by Kafka's `GroupMetadataValue` fields at that version — we write v3 and
//! read v0–v3:
//! ```text
//! protocol_type string, generation i32, protocol nullable string, leader nullable string,
//! current_state_timestamp i64 (v2+),
//! members [i32 count] of: member_id string, group_instance_id nullable string (v3+),
//!   client_id string, client_host string, rebalance_timeout i32 (v1+), session_timeout i32,
//!   subscription bytes, assignment bytes            (strings i16-, bytes i32-length-prefixed)
//! ```
//! A null value (tombstone) means the group has no members any more (its offsets stay). Our key is
//! 3, not Kafka's 2, because our key 2 with a null value already means "group deleted, offsets
//! included" in existing logs; a broker older than this format refuses to load a partition that
//! holds key 3 (unknown key version) rather than misreading it.
//!
//! A value we cannot read (unknown version, truncated, bad UTF-8) is not fatal: the load logs it
//! and forgets whatever membership it had for the group, so its members rejoin (safe).

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::record::{get_i16, get_i32, get_i64, get_nullable_str, get_str, need, put_nullable_str, put_str};

/// The value version we write (Kafka's GroupMetadataValue v3: static members).
pub const MEMBERSHIP_VALUE_VERSION: i16 = 3;
/// The newest value version we can read.
const MEMBERSHIP_VALUE_VERSION_MAX: i16 = 3;
/// Most members one record may carry when read back; a count above it is corruption (the
/// coordinator itself bounds groups far lower, `members_per_group_max`).
pub const MEMBERS_PER_RECORD_MAX: usize = 100_000;
/// Smallest encoding of one member (four empty strings, two i32s, two empty byte strings); bounds
/// what a member count can claim against the bytes actually present.
const MEMBER_BYTES_MIN: usize = 2 * 3 + 4 * 2 + 4 * 2;

/// One member as stored: what a new coordinator needs to keep accepting it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    /// The member's metadata for the group's elected protocol.
    pub subscription: Bytes,
    /// What the leader assigned it in the stored generation.
    pub assignment: Bytes,
}

/// A group's membership after a completed rebalance (Kafka's GroupMetadataValue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredGroup {
    pub protocol_type: String,
    pub generation_id: i32,
    pub protocol_name: Option<String>,
    pub leader_id: Option<String>,
    /// Wall-clock time the record was made (informational).
    pub state_timestamp_ms: i64,
    pub members: Vec<StoredMember>,
}

/// Encodes `group` as a value at [`MEMBERSHIP_VALUE_VERSION`], version prefix included.
pub fn encode_value(group: &StoredGroup) -> Bytes {
    let mut buf = BytesMut::new();
    buf.put_i16(MEMBERSHIP_VALUE_VERSION);
    put_str(&mut buf, &group.protocol_type);
    buf.put_i32(group.generation_id);
    put_nullable_str(&mut buf, group.protocol_name.as_deref());
    put_nullable_str(&mut buf, group.leader_id.as_deref());
    buf.put_i64(group.state_timestamp_ms);
    buf.put_i32(i32::try_from(group.members.len()).unwrap_or(i32::MAX));
    for m in &group.members {
        put_str(&mut buf, &m.member_id);
        put_nullable_str(&mut buf, m.group_instance_id.as_deref());
        put_str(&mut buf, &m.client_id);
        put_str(&mut buf, &m.client_host);
        buf.put_i32(m.rebalance_timeout_ms);
        buf.put_i32(m.session_timeout_ms);
        put_bytes(&mut buf, &m.subscription);
        put_bytes(&mut buf, &m.assignment);
    }
    buf.freeze()
}

/// Decodes a value of any version from 0 to [`MEMBERSHIP_VALUE_VERSION_MAX`].
pub fn decode_value(mut value: Bytes) -> Result<StoredGroup, String> {
    let version = get_i16(&mut value)?;
    if !(0..=MEMBERSHIP_VALUE_VERSION_MAX).contains(&version) {
        return Err(format!("unknown group membership value version {version}"));
    }
    let protocol_type = get_str(&mut value)?;
    let generation_id = get_i32(&mut value)?;
    let protocol_name = get_nullable_str(&mut value)?;
    let leader_id = get_nullable_str(&mut value)?;
    let state_timestamp_ms = if version >= 2 { get_i64(&mut value)? } else { -1 };
    let count = get_i32(&mut value)?;
    let count = usize::try_from(count).map_err(|_| format!("negative member count {count}"))?;
    if count > MEMBERS_PER_RECORD_MAX || count.saturating_mul(MEMBER_BYTES_MIN) > value.remaining() {
        return Err(format!("member count {count} does not fit the record"));
    }
    let mut members = Vec::with_capacity(count);
    for _ in 0..count {
        let member_id = get_str(&mut value)?;
        let group_instance_id = if version >= 3 { get_nullable_str(&mut value)? } else { None };
        let client_id = get_str(&mut value)?;
        let client_host = get_str(&mut value)?;
        let rebalance_timeout_ms = if version >= 1 { Some(get_i32(&mut value)?) } else { None };
        let session_timeout_ms = get_i32(&mut value)?;
        members.push(StoredMember {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            // v0 had one timeout for both, as Kafka reads it.
            rebalance_timeout_ms: rebalance_timeout_ms.unwrap_or(session_timeout_ms),
            session_timeout_ms,
            subscription: get_bytes(&mut value)?,
            assignment: get_bytes(&mut value)?,
        });
    }
    Ok(StoredGroup { protocol_type, generation_id, protocol_name, leader_id, state_timestamp_ms, members })
}

fn put_bytes(buf: &mut BytesMut, bytes: &[u8]) {
    // Subscriptions and assignments arrive in requests bounded by frame_bytes_max, far below i32::MAX.
    let len = i32::try_from(bytes.len()).unwrap_or(i32::MAX);
    buf.put_i32(len);
    buf.put_slice(&bytes[..len as usize]);
}

fn get_bytes(buf: &mut Bytes) -> Result<Bytes, String> {
    let len = get_i32(buf)?;
    if len < 0 {
        // Kafka's schema has non-null bytes here; a null reads as empty.
        return Ok(Bytes::new());
    }
    let len = len as usize;
    need(buf, len, "bytes")?;
    Ok(buf.split_to(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> StoredGroup {
        let member = |id: &str, instance: Option<&str>| StoredMember {
            member_id: id.into(),
            group_instance_id: instance.map(Into::into),
            client_id: "client".into(),
            client_host: "/127.0.0.1".into(),
            rebalance_timeout_ms: 30_000,
            session_timeout_ms: 10_000,
            subscription: Bytes::from(format!("sub-{id}")),
            assignment: Bytes::from(format!("assign-{id}")),
        };
        StoredGroup {
            protocol_type: "consumer".into(),
            generation_id: 7,
            protocol_name: Some("range".into()),
            leader_id: Some("a".into()),
            state_timestamp_ms: 1_234,
            members: vec![member("a", None), member("b", Some("instance-b"))],
        }
    }

    #[test]
    fn a_membership_round_trips_at_the_written_version() {
        let group = sample();
        assert_eq!(decode_value(encode_value(&group)), Ok(group));
    }

    /// Kafka's v0 (no rebalance timeout, no timestamp, no instance id) still reads.
    #[test]
    fn an_old_version_reads_with_defaults() {
        let mut v0 = BytesMut::new();
        v0.put_i16(0);
        put_str(&mut v0, "consumer");
        v0.put_i32(3);
        put_nullable_str(&mut v0, Some("range"));
        put_nullable_str(&mut v0, Some("m"));
        v0.put_i32(1);
        put_str(&mut v0, "m");
        put_str(&mut v0, "c");
        put_str(&mut v0, "/h");
        v0.put_i32(6_000);
        put_bytes(&mut v0, b"sub");
        put_bytes(&mut v0, b"asg");
        let group = decode_value(v0.freeze()).expect("v0 decodes");
        assert_eq!(group.generation_id, 3);
        assert_eq!(group.state_timestamp_ms, -1);
        assert_eq!(group.members[0].rebalance_timeout_ms, 6_000);
        assert_eq!(group.members[0].group_instance_id, None);
        assert_eq!(group.members[0].assignment, Bytes::from_static(b"asg"));
    }

    #[test]
    fn unreadable_values_are_errors_not_panics() {
        let good = encode_value(&sample());
        for cut in 0..good.len() {
            assert!(decode_value(good.slice(..cut)).is_err(), "truncated at {cut} must not decode");
        }
        let mut future = BytesMut::from(&good[..]);
        future[..2].copy_from_slice(&9i16.to_be_bytes());
        assert!(decode_value(future.freeze()).is_err());
        let mut huge = BytesMut::new();
        huge.put_i16(3);
        put_str(&mut huge, "consumer");
        huge.put_i32(1);
        put_nullable_str(&mut huge, None);
        put_nullable_str(&mut huge, None);
        huge.put_i64(0);
        huge.put_i32(i32::MAX);
        assert!(decode_value(huge.freeze()).is_err(), "a member count beyond the bytes present is refused before allocating");
    }
}

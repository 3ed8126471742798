//! One file per Kafka API: each maps its request (per version) onto the group state machine or the
//! offsets store, and builds the response with only the fields that version carries.

mod delete_groups;
mod describe_groups;
mod heartbeat;
mod join_group;
mod leave_group;
mod list_groups;
mod offset_commit;
mod offset_fetch;
mod sync_group;

use kafka_protocol::error::ResponseError;
use kafka_protocol::protocol::StrBytes;

/// Wire error code of an optional error.
pub(crate) fn code(error: Option<ResponseError>) -> i16 {
    error.map_or(0, |e| e.code())
}

pub(crate) fn owned(s: &StrBytes) -> String {
    s.as_str().to_string()
}

pub(crate) fn wire(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// An answer available now, or a parked request.
pub(crate) enum Pending<T> {
    Now(T),
    Wait(tokio::sync::oneshot::Receiver<T>),
}

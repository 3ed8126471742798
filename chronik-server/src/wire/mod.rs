//! The Kafka wire protocol as the handlers see it, below both the handlers (`api`) and the listener
//! (`kafka`): framing ([`frame`]), the request header ([`request_header`]), supported versions ([`versions`]), the request context, replies and
//! response encoding ([`context`]), response frames sent as chunks ([`response`]) and the
//! UNKNOWN_SERVER_ERROR answer to a response that cannot be encoded ([`error_response`]).

pub mod context;
pub mod error_response;
pub mod frame;
pub mod request_header;
pub mod response;
pub mod versions;

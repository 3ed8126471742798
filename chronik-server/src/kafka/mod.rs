//! The Kafka listener: framing ([`frame`]), the per-connection loop ([`connection`]), response frames
//! sent as chunks ([`response`]), supported versions ([`versions`]), routing to one handler per API
//! ([`dispatch`]) and the UNKNOWN_SERVER_ERROR answer to a response that cannot be encoded
//! ([`error_response`]).

pub mod connection;
pub mod dispatch;
pub mod error_response;
pub mod frame;
pub mod listener;
pub mod response;
pub mod versions;

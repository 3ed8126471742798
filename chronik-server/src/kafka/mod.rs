//! The Kafka listener: framing ([`frame`]), the per-connection loop ([`connection`]), response frames
//! sent as chunks ([`response`]), supported versions ([`versions`]) and routing to one handler per API
//! ([`dispatch`]).

pub mod connection;
pub mod dispatch;
pub mod frame;
pub mod listener;
pub mod response;
pub mod versions;

//! The Kafka listener: accepts connections ([`listener`]), runs the per-connection loop
//! ([`connection`]) and routes each request to its handler in `api` ([`dispatch`]). The wire format
//! itself (frames, versions, request context, response encoding) is in `wire`.

pub mod connection;
pub mod dispatch;
pub mod listener;

//! Incremental fetch sessions (KIP-227) as plain code, below the Fetch handler (`api::fetch`, the
//! I/O), the broker that holds the cache, and the config that sizes it: one session ([`session`]) and
//! the broker's bounded cache of them ([`cache`]). No clock, no locks, no dependency on the rest of
//! the server.

pub mod cache;
pub mod session;

//! Shared harness for the broker's integration tests: a real `chronik-server` process on free loopback
//! ports in a temporary directory, and a tiny blocking Kafka client built on kafka-protocol.
//!
//! Parts:
//! - `broker.rs` — [`TestBroker`]: writes a config, starts the binary, waits for `GET /admin/health` to
//!   answer 200, kills it by PID on drop; `kill9` + `restart` reuse the same directory and ports (crash
//!   tests). [`start_expecting_failure`] runs `start` on a config that must be refused.
//! - `client.rs` — [`KafkaClient`]: encodes RequestHeader + body at a chosen version, frames it, reads the
//!   response frame and decodes ResponseHeader (at `response_header_version`) + body; raw byte access for
//!   bad-input tests; request builders and one-call helpers for the APIs most tests touch.
//! - `records.rs` — v2 record batches through `RecordBatchEncoder` (optionally idempotent), CRC-32C
//!   fix-up, decoding of fetched batches.
//! - here: shared limits, Kafka error codes, [`poll_until`].
//!
//! Every wait polls with a deadline; nothing sleeps a fixed time hoping a condition became true.

// Each test binary uses a different subset of this module.
#![allow(dead_code)]

mod broker;
mod client;
mod process;
mod records;

// Re-exported so tests write `common::X`; a test binary that needs none of one part would warn.
#[allow(unused_imports)]
pub use broker::*;
#[allow(unused_imports)]
pub use client::*;
#[allow(unused_imports)]
pub use process::*;
#[allow(unused_imports)]
pub use records::*;

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

/// How long a broker may take from spawn to a healthy admin endpoint (a cold debug build on 2 busy cores).
pub const BROKER_READY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a refused `start` may take to exit.
pub const START_FAILURE_TIMEOUT: Duration = Duration::from_secs(30);
/// Socket read/write timeout for client calls; a response slower than this is a failure.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for the broker to close a connection it should close.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Interval between polls of a condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Response frames larger than this are a client-side protocol failure, not something to allocate.
pub const RESPONSE_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Attempts to start a broker when another process grabbed one of its picked ports in between.
pub const START_ATTEMPTS_MAX: u32 = 3;

/// Kafka error codes the tests assert on.
pub mod code {
    pub const NONE: i16 = 0;
    pub const CORRUPT_MESSAGE: i16 = 2;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const UNSUPPORTED_VERSION: i16 = 35;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const INVALID_PARTITIONS: i16 = 37;
    pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    pub const DUPLICATE_SEQUENCE_NUMBER: i16 = 46;
    pub const UNKNOWN_LEADER_EPOCH: i16 = 75;
}

/// ListOffsets special timestamps.
pub const LATEST: i64 = -1;
pub const EARLIEST: i64 = -2;

/// Polls `check` until it returns `Ok(Some(_))` or `timeout` passes; the last error is reported.
pub fn poll_until<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Result<Option<T>>) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match check() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => "condition not met".to_string(),
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() >= deadline {
            bail!("{what}: not reached within {timeout:?} ({last})");
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}

#[allow(unused_imports)] // used by some of the test binaries that include this module
pub use chronik_wal::now_ms;

//! Accepts Kafka connections, at most `connections_max` at once.
//!
//! An accept that fails (EMFILE when the descriptor limit is reached — partitions' segments and index
//! maps share it with connections, see `fd_limit` — or ENFILE, ENOMEM) is retried after
//! [`ACCEPT_RETRY_MS`]; the client waits in the listen backlog meanwhile. Failures and refusals are
//! logged once when a spell starts and then at most once per [`SPELL_REPORT_MS`] with a count, not
//! per connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::warn;

use crate::broker::Broker;

/// Pause after a failed accept before the next one.
pub const ACCEPT_RETRY_MS: u64 = 50;
/// Longest interval between two log lines about the same kind of failure.
pub const SPELL_REPORT_MS: u64 = 10_000;

/// Counts events of one kind and says when a log line is due: the first, then one per interval.
struct Spell {
    unreported: u64,
    last_report: Option<Instant>,
}

impl Spell {
    const fn new() -> Spell {
        Spell { unreported: 0, last_report: None }
    }

    /// Counts one event at `now`; returns how many to report (this one included) when a line is due.
    fn note(&mut self, now: Instant) -> Option<u64> {
        self.unreported += 1;
        let due = self.last_report.is_none_or(|at| now.duration_since(at) >= Duration::from_millis(SPELL_REPORT_MS));
        if !due {
            return None;
        }
        self.last_report = Some(now);
        Some(std::mem::take(&mut self.unreported))
    }
}

pub async fn run(broker: Arc<Broker>, listener: TcpListener) {
    let permits = Arc::new(Semaphore::new(broker.config.connections_max));
    let mut failed = Spell::new();
    let mut refused = Spell::new();
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                if let Some(count) = failed.note(Instant::now()) {
                    warn!(error = %e, count, "accept failed; retrying (clients wait in the listen backlog)");
                }
                tokio::time::sleep(Duration::from_millis(ACCEPT_RETRY_MS)).await;
                continue;
            }
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            if let Some(count) = refused.note(Instant::now()) {
                warn!(%peer, count, max = broker.config.connections_max, "connections_max reached; refusing connections");
            }
            drop(stream);
            continue;
        };
        let broker = broker.clone();
        tokio::spawn(async move {
            super::connection::serve(broker, stream, peer).await;
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spell_is_reported_first_then_once_per_interval_with_its_count() {
        let mut s = Spell::new();
        let t0 = Instant::now();
        assert_eq!(s.note(t0), Some(1));
        for i in 1..100 {
            assert_eq!(s.note(t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(s.note(t0 + Duration::from_millis(SPELL_REPORT_MS)), Some(100));
        assert_eq!(s.note(t0 + Duration::from_millis(SPELL_REPORT_MS + 1)), None);
    }
}

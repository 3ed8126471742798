//! Broker metrics kept in atomics and rendered in Prometheus text format by the admin API: request
//! counts and latency histograms per Kafka API, bytes in and out, records produced and fetched.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kafka_protocol::messages::ApiKey;

/// Latency histogram bucket bounds, in microseconds.
const LATENCY_BUCKETS_US: [u64; 10] = [250, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 500_000, 1_000_000, 5_000_000];
/// API keys are small integers; one slot each.
const API_KEY_SLOTS: usize = 128;

struct ApiStats {
    count: AtomicU64,
    latency_us_sum: AtomicU64,
    buckets: [AtomicU64; LATENCY_BUCKETS_US.len()],
}

impl ApiStats {
    fn new() -> Self {
        ApiStats { count: AtomicU64::new(0), latency_us_sum: AtomicU64::new(0), buckets: std::array::from_fn(|_| AtomicU64::new(0)) }
    }
}

pub struct Metrics {
    apis: Vec<ApiStats>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    produced_bytes: AtomicU64,
    fetched_bytes: AtomicU64,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            apis: (0..API_KEY_SLOTS).map(|_| ApiStats::new()).collect(),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            produced_bytes: AtomicU64::new(0),
            fetched_bytes: AtomicU64::new(0),
        }
    }
}

impl Metrics {
    pub fn observe(&self, api: ApiKey, latency: Duration) {
        let Some(stats) = usize::try_from(api as i16).ok().and_then(|i| self.apis.get(i)) else { return };
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        stats.count.fetch_add(1, Ordering::Relaxed);
        stats.latency_us_sum.fetch_add(us, Ordering::Relaxed);
        for (i, bound) in LATENCY_BUCKETS_US.iter().enumerate() {
            if us <= *bound {
                stats.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    pub fn bytes_in(&self, n: usize) {
        self.bytes_in.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub fn bytes_out(&self, n: usize) {
        self.bytes_out.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub fn produced(&self, n: usize) {
        self.produced_bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
    pub fn fetched(&self, n: usize) {
        self.fetched_bytes.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Prometheus text exposition format, version 0.0.4.
    pub fn render(&self, extra: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# HELP chronik_requests_total Kafka requests handled, by API.");
        let _ = writeln!(out, "# TYPE chronik_requests_total counter");
        for key in ApiKey::iter() {
            if let Some(s) = usize::try_from(key as i16).ok().and_then(|i| self.apis.get(i)) {
                let n = s.count.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(out, "chronik_requests_total{{api=\"{key:?}\"}} {n}");
                }
            }
        }
        let _ = writeln!(out, "# HELP chronik_request_latency_seconds Time from reading a Kafka request to its response being ready, by API.");
        let _ = writeln!(out, "# TYPE chronik_request_latency_seconds histogram");
        for key in ApiKey::iter() {
            let Some(s) = usize::try_from(key as i16).ok().and_then(|i| self.apis.get(i)) else { continue };
            let n = s.count.load(Ordering::Relaxed);
            if n == 0 {
                continue;
            }
            let buckets: Vec<u64> = s.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
            let sum_us = s.latency_us_sum.load(Ordering::Relaxed);
            histogram(&mut out, "chronik_request_latency_seconds", &format!("api=\"{key:?}\""), &LATENCY_BUCKETS_US, &buckets, n, sum_us);
        }
        let syncs = chronik_wal::SYNC_STATS.snapshot();
        let _ = writeln!(out, "# HELP chronik_log_fsync_seconds Duration of each fdatasync made by group commit (all partitions).");
        let _ = writeln!(out, "# TYPE chronik_log_fsync_seconds histogram");
        histogram(&mut out, "chronik_log_fsync_seconds", "", &chronik_wal::SYNC_BUCKETS_US, &syncs.buckets, syncs.count, syncs.sum_us);
        for (name, help, v) in [
            ("chronik_network_bytes_in_total", "Bytes received from Kafka clients.", &self.bytes_in),
            ("chronik_network_bytes_out_total", "Bytes sent to Kafka clients.", &self.bytes_out),
            ("chronik_produce_bytes_total", "Record batch bytes appended by Produce.", &self.produced_bytes),
            ("chronik_fetch_bytes_total", "Record batch bytes served by Fetch.", &self.fetched_bytes),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", v.load(Ordering::Relaxed));
        }
        for (name, help, v) in extra {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        }
        out
    }
}

/// One Prometheus histogram's sample lines: cumulative `buckets` at `bounds_us`, then +Inf, sum, count.
fn histogram(out: &mut String, name: &str, labels: &str, bounds_us: &[u64], buckets: &[u64], count: u64, sum_us: u64) {
    let sep = if labels.is_empty() { "" } else { "," };
    for (bound, c) in bounds_us.iter().zip(buckets) {
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{}\"}} {c}", *bound as f64 / 1e6);
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
    let labels = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
    let _ = writeln!(out, "{name}_sum{labels} {}", sum_us as f64 / 1e6);
    let _ = writeln!(out, "{name}_count{labels} {count}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_buckets() {
        let m = Metrics::default();
        m.observe(ApiKey::Produce, Duration::from_micros(900));
        m.observe(ApiKey::Produce, Duration::from_millis(30));
        m.bytes_in(10);
        let text = m.render(&[("chronik_partitions", "Partitions hosted.", 3.0)]);
        assert!(text.contains("chronik_requests_total{api=\"Produce\"} 2"), "{text}");
        assert!(text.contains("chronik_request_latency_seconds_bucket{api=\"Produce\",le=\"0.001\"} 1"), "{text}");
        assert!(text.contains("chronik_request_latency_seconds_bucket{api=\"Produce\",le=\"0.1\"} 2"), "{text}");
        assert!(text.contains("chronik_network_bytes_in_total 10"));
        assert!(text.contains("chronik_partitions 3"));
        assert!(!text.contains("api=\"Fetch\""));
        assert!(text.contains("# TYPE chronik_log_fsync_seconds histogram") && text.contains("chronik_log_fsync_seconds_bucket{le=\"+Inf\"}"), "{text}");
    }
}

//! Broker metrics kept in atomics and rendered in Prometheus text format by the admin API: request
//! counts and latency histograms per Kafka API, produce time by stage, bytes in and out, records produced and fetched, and
//! responses that could not be encoded (a broker bug, answered with UNKNOWN_SERVER_ERROR instead).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chronik_wal::{Histogram, HistogramSnapshot};
use kafka_protocol::messages::ApiKey;
use parking_lot::Mutex;

/// Latency histogram bucket bounds, in microseconds.
const LATENCY_BUCKETS_US: [u64; 10] = [250, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 500_000, 1_000_000, 5_000_000];
/// API keys are small integers; one slot each.
const API_KEY_SLOTS: usize = 128;

/// The stages of a produce request the broker times apart, so a slow answer can be placed: where the
/// time between reading a request and the client reading its answer went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProduceStage {
    /// From reading the request to its batches being appended to every partition's log (checks, the
    /// partition locks, the writes into the page cache).
    Append,
    /// From the append to the partition's log being durable to the request's end offset (the
    /// group-commit fdatasync with `fsync = "always"`; nothing otherwise).
    Durable,
    /// acks=all: from durable here to the high watermark passing the request's end (the followers'
    /// fetch, their append and fsync, their next fetch reporting it).
    Replicated,
    /// From the response being ready to its last byte handed to the socket: the wait behind earlier
    /// responses on the same connection (answered in request order) plus the write itself.
    Written,
}

impl ProduceStage {
    pub const ALL: [ProduceStage; 4] = [ProduceStage::Append, ProduceStage::Durable, ProduceStage::Replicated, ProduceStage::Written];

    fn name(self) -> &'static str {
        match self {
            ProduceStage::Append => "append",
            ProduceStage::Durable => "durable",
            ProduceStage::Replicated => "replicated",
            ProduceStage::Written => "written",
        }
    }
}

pub struct Metrics {
    /// Request latency per API key (index = key).
    apis: Vec<Histogram<{ LATENCY_BUCKETS_US.len() }>>,
    /// Produce stage durations, indexed like [`ProduceStage::ALL`].
    produce_stages: Vec<Histogram<{ LATENCY_BUCKETS_US.len() }>>,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    produced_bytes: AtomicU64,
    fetched_bytes: AtomicU64,
    /// Responses that failed to encode, by (API key, version). Rare (each one is a bug), so a map
    /// under a lock rather than a slot per possible version.
    encode_errors: Mutex<BTreeMap<(i16, i16), u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            apis: (0..API_KEY_SLOTS).map(|_| Histogram::new(LATENCY_BUCKETS_US)).collect(),
            produce_stages: ProduceStage::ALL.iter().map(|_| Histogram::new(LATENCY_BUCKETS_US)).collect(),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            produced_bytes: AtomicU64::new(0),
            fetched_bytes: AtomicU64::new(0),
            encode_errors: Mutex::new(BTreeMap::new()),
        }
    }
}

impl Metrics {
    pub fn observe(&self, api: ApiKey, latency: Duration) {
        if let Some(h) = usize::try_from(api as i16).ok().and_then(|i| self.apis.get(i)) {
            h.record(latency);
        }
    }
    /// One produce request (or, for `Durable` and `Replicated`, one of its partitions) spent
    /// `took` in `stage`.
    pub fn produce_stage(&self, stage: ProduceStage, took: Duration) {
        if let Some(h) = ProduceStage::ALL.iter().position(|s| *s == stage).and_then(|i| self.produce_stages.get(i)) {
            h.record(took);
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
    /// A response of `api` at `version` could not be encoded.
    pub fn encode_error(&self, api: ApiKey, version: i16) {
        *self.encode_errors.lock().entry((api as i16, version)).or_insert(0) += 1;
    }
    /// Encode failures counted for `api` at `version`.
    pub fn encode_errors(&self, api: ApiKey, version: i16) -> u64 {
        self.encode_errors.lock().get(&(api as i16, version)).copied().unwrap_or(0)
    }

    /// Prometheus text exposition format, version 0.0.4.
    pub fn render(&self, extra: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        let apis: Vec<(ApiKey, HistogramSnapshot<{ LATENCY_BUCKETS_US.len() }>)> = ApiKey::iter()
            .filter_map(|key| Some((key, usize::try_from(key as i16).ok().and_then(|i| self.apis.get(i))?.snapshot())))
            .filter(|(_, snap)| snap.count > 0)
            .collect();
        let _ = writeln!(out, "# HELP chronik_requests_total Kafka requests handled, by API.");
        let _ = writeln!(out, "# TYPE chronik_requests_total counter");
        for (key, snap) in &apis {
            let _ = writeln!(out, "chronik_requests_total{{api=\"{key:?}\"}} {}", snap.count);
        }
        let _ = writeln!(out, "# HELP chronik_request_latency_seconds Time from reading a Kafka request to its response being ready, by API.");
        let _ = writeln!(out, "# TYPE chronik_request_latency_seconds histogram");
        for (key, snap) in &apis {
            histogram(&mut out, "chronik_request_latency_seconds", &format!("api=\"{key:?}\""), snap);
        }
        let _ = writeln!(
            out,
            "# HELP chronik_produce_stage_seconds Where produce time goes: append (request read to appended), durable (appended to fsynced, per partition), replicated (fsynced to the high watermark, acks=all, per partition), written (response ready to written to the socket, behind earlier responses of the connection)."
        );
        let _ = writeln!(out, "# TYPE chronik_produce_stage_seconds histogram");
        for (stage, h) in ProduceStage::ALL.iter().zip(&self.produce_stages) {
            let snap = h.snapshot();
            if snap.count > 0 {
                histogram(&mut out, "chronik_produce_stage_seconds", &format!("stage=\"{}\"", stage.name()), &snap);
            }
        }
        let _ = writeln!(
            out,
            "# HELP chronik_response_encode_errors_total Responses that could not be encoded at the request's version (a broker bug; answered with UNKNOWN_SERVER_ERROR), by API and version."
        );
        let _ = writeln!(out, "# TYPE chronik_response_encode_errors_total counter");
        for ((key, version), n) in self.encode_errors.lock().iter() {
            let api = ApiKey::try_from(*key).map(|k| format!("{k:?}")).unwrap_or_else(|_| key.to_string());
            let _ = writeln!(out, "chronik_response_encode_errors_total{{api=\"{api}\",version=\"{version}\"}} {n}");
        }
        let _ = writeln!(out, "# HELP chronik_log_fsync_seconds Duration of each fdatasync made by group commit (all partitions).");
        let _ = writeln!(out, "# TYPE chronik_log_fsync_seconds histogram");
        histogram(&mut out, "chronik_log_fsync_seconds", "", &chronik_wal::SYNC_STATS.snapshot());
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

/// One Prometheus histogram's sample lines: its cumulative buckets, then +Inf, sum and count.
fn histogram<const N: usize>(out: &mut String, name: &str, labels: &str, h: &HistogramSnapshot<N>) {
    let sep = if labels.is_empty() { "" } else { "," };
    for (bound, c) in h.bounds_us.iter().zip(h.buckets) {
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{}\"}} {c}", *bound as f64 / 1e6);
    }
    let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}", h.count);
    let labels = if labels.is_empty() { String::new() } else { format!("{{{labels}}}") };
    let _ = writeln!(out, "{name}_sum{labels} {}", h.sum_us as f64 / 1e6);
    let _ = writeln!(out, "{name}_count{labels} {}", h.count);
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
        assert!(text.contains("# TYPE chronik_response_encode_errors_total counter"), "{text}");
        assert!(!text.contains("chronik_response_encode_errors_total{"), "{text}");
        m.encode_error(ApiKey::ListOffsets, 3);
        m.encode_error(ApiKey::ListOffsets, 3);
        let text = m.render(&[]);
        assert!(text.contains("chronik_response_encode_errors_total{api=\"ListOffsets\",version=\"3\"} 2"), "{text}");
        m.produce_stage(ProduceStage::Replicated, Duration::from_millis(3));
        let text = m.render(&[]);
        assert!(text.contains("chronik_produce_stage_seconds_bucket{stage=\"replicated\",le=\"0.0025\"} 0"), "{text}");
        assert!(text.contains("chronik_produce_stage_seconds_bucket{stage=\"replicated\",le=\"0.005\"} 1"), "{text}");
        assert!(!text.contains("stage=\"append\""), "{text}");
        assert!(text.contains("# TYPE chronik_log_fsync_seconds histogram") && text.contains("chronik_log_fsync_seconds_bucket{le=\"+Inf\"}"), "{text}");
    }
}

//! Topic configs: the one table of the keys a topic may set ([`TOPIC_CONFIG_KEYS`]: name, the
//! broker setting or fixed value it defaults to, how a value is parsed and checked, what it does), and
//! the typed [`TopicConfig`] parsed from it. CreateTopics validates with it, DescribeConfigs and the
//! CreateTopics v5+ answer list it, and the log manager, Produce and the offsets log read their
//! settings from the parsed struct. A key is added here and nowhere else.
//!
//! Topic configs are kept as the client sent them (strings in the metadata); values are parsed where
//! they are read, each with the same rule as at creation.

use std::collections::BTreeMap;

use chronik_wal::LogConfig;

use crate::config::Config;

/// How DescribeConfigs declares a value's type (Kafka's `ConfigType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    Boolean,
    String,
    Int,
    Long,
    List,
}

/// One topic config key.
pub struct TopicConfigKey {
    /// Kafka's name of the key.
    pub name: &'static str,
    pub value_type: ValueType,
    /// The value a topic that does not set the key has: a broker setting or a fixed value.
    pub default: fn(&Config) -> String,
    /// Parses and checks a value into its [`TopicConfig`] field; the error is the message answered
    /// with INVALID_CONFIG. The field is left as it was when the value is refused.
    set: fn(&mut TopicConfig, &'static str, &str) -> Result<(), String>,
    /// What the key does here (and which values are supported).
    pub doc: &'static str,
}

/// Every topic config a topic may set, sorted by name (the order DescribeConfigs lists them in).
pub const TOPIC_CONFIG_KEYS: &[TopicConfigKey] = &[
    TopicConfigKey {
        name: "cleanup.policy",
        value_type: ValueType::List,
        default: |_| "delete".into(),
        set: |c, k, v| {
            c.cleanup_policy = one_of(k, v, &["delete"])?;
            Ok(())
        },
        doc: "only `delete`: whole segments go by age or size (no compaction)",
    },
    TopicConfigKey {
        name: "compression.type",
        value_type: ValueType::String,
        default: |_| "producer".into(),
        set: |c, k, v| {
            c.compression_type = one_of(k, v, &["producer"])?;
            Ok(())
        },
        doc: "only `producer`: batches are stored as the producer compressed them",
    },
    TopicConfigKey {
        name: "max.message.bytes",
        value_type: ValueType::Int,
        default: |b| b.message_bytes_max.to_string(),
        set: |c, k, v| {
            c.max_message_bytes = long(k, v)?;
            Ok(())
        },
        doc: "largest record batch a Produce may write (MESSAGE_TOO_LARGE); broker `message_bytes_max`",
    },
    TopicConfigKey {
        name: "message.timestamp.type",
        value_type: ValueType::String,
        default: |_| "CreateTime".into(),
        set: |c, k, v| {
            c.message_timestamp_type = one_of(k, v, &["CreateTime"])?;
            Ok(())
        },
        doc: "only `CreateTime`: records keep the producer's timestamps",
    },
    TopicConfigKey {
        name: "min.insync.replicas",
        value_type: ValueType::Int,
        default: |b| b.min_insync_replicas.to_string(),
        set: |c, k, v| {
            c.min_insync_replicas = long(k, v)?;
            Ok(())
        },
        doc: "in-sync replicas an acks=all write needs (below 1 counts as 1); broker `min_insync_replicas`",
    },
    TopicConfigKey {
        name: "retention.bytes",
        value_type: ValueType::Long,
        default: |b| b.retention_bytes.to_string(),
        set: |c, k, v| {
            c.retention_bytes = long(k, v)?;
            Ok(())
        },
        doc: "delete the oldest segments while a partition is larger (negative: no limit); broker `retention_bytes`",
    },
    TopicConfigKey {
        name: "retention.ms",
        value_type: ValueType::Long,
        default: |b| b.retention_ms.to_string(),
        set: |c, k, v| {
            c.retention_ms = long(k, v)?;
            Ok(())
        },
        doc: "delete whole segments whose newest record is older (negative: keep); broker `retention_ms`",
    },
    TopicConfigKey {
        name: "segment.bytes",
        value_type: ValueType::Int,
        default: |b| b.segment_bytes.to_string(),
        set: |c, k, v| {
            c.segment_bytes = long(k, v)?;
            Ok(())
        },
        doc: "roll the active segment at this size (negative: the broker's); broker `segment_bytes`",
    },
    TopicConfigKey {
        name: "segment.ms",
        value_type: ValueType::Long,
        default: |_| LogConfig::default().segment_ms.to_string(),
        set: |c, k, v| {
            c.segment_ms = long(k, v)?;
            Ok(())
        },
        doc: "roll the active segment once its first record is this old (negative: the default), so retention can delete it",
    },
    TopicConfigKey {
        name: "unclean.leader.election.enable",
        value_type: ValueType::Boolean,
        default: |_| "false".into(),
        set: |c, k, v| {
            c.unclean_leader_election_enable = one_of(k, v, &["false"])? == "true";
            Ok(())
        },
        doc: "only `false`: a new leader always comes from the ISR",
    },
];

/// A topic's configs, typed: its own values over the broker's defaults. Numbers are kept as Kafka
/// defines them (negative retention means "no limit"); [`TopicConfig::log_config`] turns them into
/// the log's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicConfig {
    pub cleanup_policy: &'static str,
    pub compression_type: &'static str,
    pub max_message_bytes: i64,
    pub message_timestamp_type: &'static str,
    pub min_insync_replicas: i64,
    pub retention_bytes: i64,
    pub retention_ms: i64,
    pub segment_bytes: i64,
    pub segment_ms: i64,
    pub unclean_leader_election_enable: bool,
}

impl TopicConfig {
    /// The configs of a topic that sets nothing: every key's default for this broker.
    pub fn defaults(broker: &Config) -> TopicConfig {
        let mut c = TopicConfig::default();
        for key in TOPIC_CONFIG_KEYS {
            // Every default parses (the `every_default_parses` test); were one not to, the field
            // would keep its zero value rather than stop the broker.
            let _ = (key.set)(&mut c, key.name, &(key.default)(broker));
        }
        c
    }

    /// These configs with a topic's own values over them. A value that does not parse keeps the
    /// default (CreateTopics refuses such values, so only a hand-edited metadata log has them).
    pub fn with_own(&self, own: &BTreeMap<String, String>) -> TopicConfig {
        let mut c = self.clone();
        for (name, value) in own {
            if let Some(key) = find(name) {
                let _ = (key.set)(&mut c, key.name, value);
            }
        }
        c
    }

    /// Checks the configs of a CreateTopics request (a refusal is answered as INVALID_CONFIG).
    pub fn validate(own: &BTreeMap<String, String>) -> Result<(), String> {
        let mut scratch = TopicConfig::default();
        for (name, value) in own {
            let key = find(name).ok_or_else(|| format!("unknown or unsupported topic config `{name}`"))?;
            (key.set)(&mut scratch, key.name, value)?;
        }
        Ok(())
    }

    /// The log settings of a partition of this topic; `broker` supplies what a topic cannot set and
    /// what a negative segment size or age falls back to.
    pub fn log_config(&self, broker: &LogConfig) -> LogConfig {
        LogConfig {
            retention_ms: u64::try_from(self.retention_ms).ok(),
            retention_bytes: u64::try_from(self.retention_bytes).ok(),
            segment_bytes: u64::try_from(self.segment_bytes).unwrap_or(broker.segment_bytes),
            segment_ms: u64::try_from(self.segment_ms).unwrap_or(broker.segment_ms),
            ..broker.clone()
        }
    }
}

/// The effective topic configs as DescribeConfigs shows them: each key with the topic's own value
/// (as the client wrote it) or the default, and whether it is the default.
pub fn effective_topic_configs(broker: &Config, own: &BTreeMap<String, String>) -> Vec<(String, String, bool)> {
    TOPIC_CONFIG_KEYS
        .iter()
        .map(|key| match own.get(key.name) {
            Some(v) => (key.name.to_string(), v.clone(), false),
            None => (key.name.to_string(), (key.default)(broker), true),
        })
        .collect()
}

/// The value type of a topic config key, if it is one.
pub fn value_type(name: &str) -> Option<ValueType> {
    find(name).map(|k| k.value_type)
}

fn find(name: &str) -> Option<&'static TopicConfigKey> {
    TOPIC_CONFIG_KEYS.iter().find(|k| k.name == name)
}

fn long(key: &str, value: &str) -> Result<i64, String> {
    value.parse::<i64>().map_err(|_| format!("`{key}` must be an integer, got `{value}`"))
}

fn one_of(key: &str, value: &str, allowed: &[&'static str]) -> Result<&'static str, String> {
    allowed
        .iter()
        .find(|a| **a == value)
        .copied()
        .ok_or_else(|| format!("`{key}` = `{value}` is not supported (supported: {})", allowed.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker() -> Config {
        Config::load(None, &crate::config::Overrides::default()).expect("the embedded defaults load")
    }

    fn own(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn keys_are_sorted_and_unique() {
        let names: Vec<&str> = TOPIC_CONFIG_KEYS.iter().map(|k| k.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(names, sorted);
    }

    #[test]
    fn every_default_parses() {
        let broker = broker();
        for key in TOPIC_CONFIG_KEYS {
            let mut c = TopicConfig::default();
            let default = (key.default)(&broker);
            assert_eq!((key.set)(&mut c, key.name, &default), Ok(()), "{} = {default}", key.name);
        }
    }

    #[test]
    fn defaults_come_from_the_broker() {
        let broker = Config { min_insync_replicas: 2, retention_ms: 1234, message_bytes_max: 999, ..broker() };
        let d = TopicConfig::defaults(&broker);
        assert_eq!(d.min_insync_replicas, 2);
        assert_eq!(d.retention_ms, 1234);
        assert_eq!(d.max_message_bytes, 999);
        assert_eq!(d.retention_bytes, -1);
        assert_eq!(d.segment_bytes, 1024 * 1024 * 1024);
        assert_eq!(d.segment_ms, i64::try_from(LogConfig::default().segment_ms).unwrap_or(-1));
        assert_eq!((d.cleanup_policy, d.compression_type, d.message_timestamp_type), ("delete", "producer", "CreateTime"));
        assert!(!d.unclean_leader_election_enable);
    }

    #[test]
    fn own_values_override_and_bad_ones_keep_the_default() {
        let d = TopicConfig::defaults(&broker());
        let c = d.with_own(&own(&[("segment.ms", "60000"), ("min.insync.replicas", "3"), ("retention.ms", "soon"), ("no.such", "1")]));
        assert_eq!(c.segment_ms, 60_000);
        assert_eq!(c.min_insync_replicas, 3);
        assert_eq!(c.retention_ms, d.retention_ms);
    }

    #[test]
    fn validation_names_the_key() {
        assert_eq!(TopicConfig::validate(&own(&[("retention.ms", "1000"), ("cleanup.policy", "delete")])), Ok(()));
        assert_eq!(
            TopicConfig::validate(&own(&[("retention.ms", "soon")])),
            Err("`retention.ms` must be an integer, got `soon`".to_string())
        );
        assert_eq!(
            TopicConfig::validate(&own(&[("cleanup.policy", "compact")])),
            Err("`cleanup.policy` = `compact` is not supported (supported: delete)".to_string())
        );
        assert_eq!(TopicConfig::validate(&own(&[("no.such", "1")])), Err("unknown or unsupported topic config `no.such`".to_string()));
        assert!(TopicConfig::validate(&own(&[("unclean.leader.election.enable", "true")])).is_err());
    }

    #[test]
    fn log_config_follows_the_topic() {
        let broker_log = LogConfig { segment_bytes: 1 << 20, ..LogConfig::default() };
        let c = TopicConfig::defaults(&broker()).with_own(&own(&[
            ("retention.ms", "-1"),
            ("retention.bytes", "4096"),
            ("segment.bytes", "-5"),
            ("segment.ms", "1"),
        ]));
        let log = c.log_config(&broker_log);
        assert_eq!(log.retention_ms, None);
        assert_eq!(log.retention_bytes, Some(4096));
        assert_eq!(log.segment_bytes, 1 << 20, "a negative size falls back to the broker's");
        assert_eq!(log.segment_ms, 1, "segment.ms is applied");
    }

    #[test]
    fn effective_configs_mark_defaults() {
        let list = effective_topic_configs(&broker(), &own(&[("retention.ms", "+10")]));
        assert_eq!(list.len(), TOPIC_CONFIG_KEYS.len());
        assert!(list.contains(&("retention.ms".to_string(), "+10".to_string(), false)), "own values are shown as written");
        assert!(list.contains(&("cleanup.policy".to_string(), "delete".to_string(), true)));
        assert_eq!(value_type("segment.ms"), Some(ValueType::Long));
        assert_eq!(value_type("broker.id"), None);
    }
}

//! Topic rules shared by CreateTopics, Metadata auto-creation and DescribeConfigs: valid names, the
//! topic configs we understand, and their defaults.

use std::collections::BTreeMap;

use chronik_wal::LogConfig;

use crate::config::Config;

/// Kafka's limit on topic name length (leaves room for the partition suffix in directory names).
pub const TOPIC_NAME_CHARS_MAX: usize = 249;

/// Why a topic name is refused (answered as INVALID_TOPIC_EXCEPTION).
pub fn validate_topic_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("topic name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!("topic name cannot be \"{name}\""));
    }
    if name.len() > TOPIC_NAME_CHARS_MAX {
        return Err(format!("topic name is longer than {TOPIC_NAME_CHARS_MAX} characters"));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '_' || *c == '-')) {
        return Err(format!("topic name contains '{c}'; allowed are ASCII letters, digits, '.', '_' and '-'"));
    }
    Ok(())
}

/// Topic configs accepted at creation, with how to check a value.
const TOPIC_CONFIG_KEYS: &[(&str, ValueKind)] = &[
    ("cleanup.policy", ValueKind::OneOf(&["delete"])),
    ("retention.ms", ValueKind::Long),
    ("retention.bytes", ValueKind::Long),
    ("segment.bytes", ValueKind::Long),
    ("segment.ms", ValueKind::Long),
    ("max.message.bytes", ValueKind::Long),
    ("min.insync.replicas", ValueKind::Long),
    ("message.timestamp.type", ValueKind::OneOf(&["CreateTime"])),
    ("compression.type", ValueKind::OneOf(&["producer"])),
    ("unclean.leader.election.enable", ValueKind::OneOf(&["false"])),
];

#[derive(Clone, Copy)]
enum ValueKind {
    Long,
    OneOf(&'static [&'static str]),
}

/// Checks the configs of a CreateTopics request (answered as INVALID_CONFIG).
pub fn validate_topic_configs(configs: &BTreeMap<String, String>) -> Result<(), String> {
    for (key, value) in configs {
        let Some((_, kind)) = TOPIC_CONFIG_KEYS.iter().find(|(k, _)| k == key) else {
            return Err(format!("unknown or unsupported topic config `{key}`"));
        };
        match kind {
            ValueKind::Long => {
                if value.parse::<i64>().is_err() {
                    return Err(format!("`{key}` must be an integer, got `{value}`"));
                }
            }
            ValueKind::OneOf(allowed) => {
                if !allowed.contains(&value.as_str()) {
                    return Err(format!("`{key}` = `{value}` is not supported (supported: {})", allowed.join(", ")));
                }
            }
        }
    }
    Ok(())
}

/// The effective topic configs: the topic's own values over the broker's defaults. Each entry says
/// whether it is the default.
pub fn effective_topic_configs(config: &Config, own: &BTreeMap<String, String>) -> Vec<(String, String, bool)> {
    let defaults = [
        ("cleanup.policy", "delete".to_string()),
        ("compression.type", "producer".to_string()),
        ("max.message.bytes", config.message_bytes_max.to_string()),
        ("message.timestamp.type", "CreateTime".to_string()),
        ("min.insync.replicas", config.min_insync_replicas.to_string()),
        ("retention.bytes", config.retention_bytes.to_string()),
        ("retention.ms", config.retention_ms.to_string()),
        ("segment.bytes", config.segment_bytes.to_string()),
        ("segment.ms", LogConfig::default().segment_ms.to_string()),
        ("unclean.leader.election.enable", "false".to_string()),
    ];
    defaults
        .into_iter()
        .map(|(k, d)| match own.get(k) {
            Some(v) => (k.to_string(), v.clone(), false),
            None => (k.to_string(), d, true),
        })
        .collect()
}

/// Reads a numeric topic config, falling back to `default`.
pub fn topic_config_i64(own: &BTreeMap<String, String>, key: &str, default: i64) -> i64 {
    own.get(key).and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names() {
        for ok in ["a", "my-topic_1.x", &"x".repeat(249)] {
            assert!(validate_topic_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", ".", "..", "a b", "bad/name", "ü", &"x".repeat(250)] {
            assert!(validate_topic_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn topic_configs() {
        let mut c = BTreeMap::new();
        c.insert("retention.ms".to_string(), "1000".to_string());
        assert!(validate_topic_configs(&c).is_ok());
        c.insert("retention.ms".to_string(), "soon".to_string());
        assert!(validate_topic_configs(&c).unwrap_err().contains("retention.ms"));
        let mut c = BTreeMap::new();
        c.insert("cleanup.policy".to_string(), "compact".to_string());
        assert!(validate_topic_configs(&c).is_err());
        let mut c = BTreeMap::new();
        c.insert("no.such".to_string(), "1".to_string());
        assert!(validate_topic_configs(&c).is_err());
    }
}

//! Topic names: which CreateTopics and Metadata auto-creation accept. Topic configs are
//! `topic_config`.

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
}

//! Bad input over the wire and in config files: the broker refuses it the way Kafka does (closing the
//! connection or answering with an error code) and keeps serving everyone else.

mod common;

use anyhow::{ensure, Result};
use kafka_protocol::messages::{
    create_topics_request::CreatableTopic, ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest,
    MetadataRequest,
};
use kafka_protocol::protocol::StrBytes;

use common::{
    code, config_toml, encode_body, raw_request, record_batch, start_expecting_failure, topic_name, BrokerOpts,
    KafkaClient, Ports, TestBroker, BATCH_CRC_AT,
};

/// A small frame limit so an oversized frame is cheap to send.
const FRAME_BYTES_MAX: usize = 4096;

/// A fresh connection still gets ApiVersions answered, and the process is alive.
fn assert_still_serving(broker: &mut TestBroker) -> Result<()> {
    broker.assert_alive()?;
    let mut c = broker.client()?;
    let mut req = ApiVersionsRequest::default();
    req.client_software_name = StrBytes::from_static_str("chronik-it");
    req.client_software_version = StrBytes::from_static_str("0.1.0");
    let resp = c.call(3, &req)?;
    ensure!(resp.error_code == code::NONE, "ApiVersions on a new connection: error {}", resp.error_code);
    Ok(())
}

#[test]
fn frame_above_frame_bytes_max_closes_the_connection() -> Result<()> {
    let mut broker =
        TestBroker::start_with(BrokerOpts { frame_bytes_max: Some(FRAME_BYTES_MAX), ..Default::default() })?;
    let mut c = broker.client()?;
    // Only the length prefix and a little of the body: the broker must refuse on the prefix alone.
    let size = (FRAME_BYTES_MAX as i32) + 1;
    let mut bytes = size.to_be_bytes().to_vec();
    bytes.extend_from_slice(&[0u8; 16]);
    c.send_raw(&bytes)?;
    c.expect_closed()?;
    // A frame of a huge claimed size (2 GiB - 1) is refused the same way, without the broker allocating it.
    let mut c = broker.client()?;
    c.send_raw(&i32::MAX.to_be_bytes())?;
    c.expect_closed()?;
    // A negative size too.
    let mut c = broker.client()?;
    c.send_raw(&(-5i32).to_be_bytes())?;
    c.expect_closed()?;
    assert_still_serving(&mut broker)?;
    // A request that fits (a Metadata of all topics) is served.
    let mut c = broker.client()?;
    let md = c.metadata(9, None, false)?;
    ensure!(md.brokers.len() == 1, "Metadata under the limit: {md:?}");
    Ok(())
}

#[test]
fn garbage_bytes_close_the_connection_and_the_broker_lives() -> Result<()> {
    let mut broker = TestBroker::start()?;
    // An HTTP request sent to the Kafka port: its first four bytes read as a ~1.2 GB frame size.
    let mut c = broker.client()?;
    c.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")?;
    c.expect_closed()?;
    // A well-sized frame full of 0xff: api key -1.
    let mut c = broker.client()?;
    let mut bytes = 32i32.to_be_bytes().to_vec();
    bytes.extend_from_slice(&[0xff; 32]);
    c.send_raw(&bytes)?;
    c.expect_closed()?;
    // A frame shorter than any request header.
    let mut c = broker.client()?;
    c.send_raw(&[0, 0, 0, 2, 0, 18])?;
    c.expect_closed()?;
    // A Metadata header followed by a truncated body.
    let mut c = broker.client()?;
    c.send_raw(&raw_request(ApiKey::Metadata as i16, 9, 2, 1, &[0x05, 0x01])?)?;
    c.expect_closed()?;
    assert_still_serving(&mut broker)?;
    Ok(())
}

#[test]
fn unknown_api_key_closes_the_connection() -> Result<()> {
    let mut broker = TestBroker::start()?;
    let mut c = broker.client()?;
    c.send_raw(&raw_request(9999, 0, 1, 7, &[])?)?;
    c.expect_closed()?;
    assert_still_serving(&mut broker)?;
    Ok(())
}

#[test]
fn unsupported_versions_close_except_api_versions() -> Result<()> {
    let mut broker = TestBroker::start()?;
    // Metadata v99: closed.
    let mut c = broker.client()?;
    let body = encode_body(12, &MetadataRequest::default())?;
    c.send_raw(&raw_request(ApiKey::Metadata as i16, 99, 2, 11, &body)?)?;
    c.expect_closed()?;
    // Fetch v13 (topic ids; above our 12): closed.
    let mut c = broker.client()?;
    let body = encode_body(13, &kafka_protocol::messages::FetchRequest::default())?;
    c.send_raw(&raw_request(ApiKey::Fetch as i16, 13, 2, 12, &body)?)?;
    c.expect_closed()?;

    // ApiVersions v99: a v0 body with UNSUPPORTED_VERSION and our key list, on a connection that stays open.
    let mut c = broker.client()?;
    let mut req = ApiVersionsRequest::default();
    req.client_software_name = StrBytes::from_static_str("chronik-it");
    req.client_software_version = StrBytes::from_static_str("0.1.0");
    let body = encode_body(3, &req)?;
    c.send_raw(&raw_request(ApiKey::ApiVersions as i16, 99, 2, 13, &body)?)?;
    let resp: ApiVersionsResponse = c.receive(ApiKey::ApiVersions, 0, 13)?;
    ensure!(resp.error_code == code::UNSUPPORTED_VERSION, "ApiVersions v99: error {}, want 35", resp.error_code);
    ensure!(
        resp.api_keys.iter().any(|k| k.api_key == ApiKey::ApiVersions as i16 && k.max_version == 3),
        "ApiVersions v99 key list lacks ApiVersions 0..3: {:?}",
        resp.api_keys
    );
    let again = c.call(3, &req)?;
    ensure!(again.error_code == code::NONE, "ApiVersions v3 after v99 on the same connection: {}", again.error_code);
    assert_still_serving(&mut broker)?;
    Ok(())
}

/// Names Kafka refuses: the dot names, a space, 250 characters (249 is the limit), a slash.
fn invalid_topic_names() -> Vec<String> {
    vec![".".into(), "..".into(), "a b".into(), "a".repeat(250), "bad/name".into()]
}

#[test]
fn invalid_topic_names_are_refused_by_create_topics() -> Result<()> {
    let broker = TestBroker::start()?;
    let mut c = broker.client()?;
    for name in invalid_topic_names() {
        let code = c.create_topic(&name, 1)?;
        ensure!(code == code::INVALID_TOPIC_EXCEPTION, "CreateTopics {name:?}: error {code}, want 17");
    }
    // One request with a good and a bad topic: only the bad one fails.
    let mut good = CreatableTopic::default();
    good.name = topic_name("good.name_-1");
    good.num_partitions = 1;
    good.replication_factor = 1;
    let mut bad = CreatableTopic::default();
    bad.name = topic_name("bad name");
    bad.num_partitions = 1;
    bad.replication_factor = 1;
    let mut req = CreateTopicsRequest::default();
    req.topics = vec![good, bad];
    req.timeout_ms = 10_000;
    let resp = c.call(7, &req)?;
    let by_name = |n: &str| resp.topics.iter().find(|t| t.name.0.as_str() == n).map(|t| t.error_code);
    ensure!(by_name("good.name_-1") == Some(code::NONE), "mixed CreateTopics, good topic: {:?}", resp.topics);
    ensure!(by_name("bad name") == Some(code::INVALID_TOPIC_EXCEPTION), "mixed CreateTopics, bad topic: {:?}", resp.topics);
    // 249 characters is still legal.
    let longest = "b".repeat(249);
    ensure!(c.create_topic(&longest, 1)? == code::NONE, "249-character topic name refused");
    // Nothing invalid was created.
    let md = c.metadata(11, None, false)?;
    let mut names: Vec<String> = md.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())).collect();
    names.sort();
    ensure!(names == vec![longest, "good.name_-1".to_string()], "topics after invalid creates: {names:?}");
    Ok(())
}

#[test]
fn invalid_topic_names_are_refused_by_metadata_auto_create() -> Result<()> {
    let broker = TestBroker::start_with(BrokerOpts { auto_create_topics: true, ..Default::default() })?;
    let mut c = broker.client()?;
    for name in invalid_topic_names() {
        let md = c.metadata(11, Some(&[name.as_str()]), true)?;
        ensure!(
            md.topics.len() == 1 && md.topics[0].error_code == code::INVALID_TOPIC_EXCEPTION,
            "Metadata auto-create of {name:?}: {:?}, want error 17",
            md.topics.iter().map(|t| t.error_code).collect::<Vec<_>>()
        );
    }
    let md = c.metadata(11, None, false)?;
    ensure!(md.topics.is_empty(), "invalid names were created: {:?}", md.topics);
    Ok(())
}

#[test]
fn corrupt_batch_is_refused_and_nothing_is_appended() -> Result<()> {
    let broker = TestBroker::start()?;
    let mut c = broker.client()?;
    c.create_topic_ok("crc", 1)?;
    let t0 = common::now_ms();
    let p = c.produce(9, "crc", 0, record_batch(&["ok1", "ok2"], t0, None)?, 1)?;
    ensure!(p.error_code == code::NONE && p.base_offset == 0, "good batch: {p:?}");

    // A flipped byte of the stored CRC.
    let mut bad = record_batch(&["bad"], t0, None)?.to_vec();
    bad[BATCH_CRC_AT] ^= 0x01;
    let p = c.produce(9, "crc", 0, bad.into(), 1)?;
    ensure!(p.error_code == code::CORRUPT_MESSAGE, "flipped CRC byte: error {}, want CORRUPT_MESSAGE 2", p.error_code);
    ensure!(c.latest_offset("crc", 0)? == 2, "latest offset moved after a corrupt batch");

    // A flipped byte of the record data (the CRC no longer matches).
    let mut bad = record_batch(&["bad"], t0, None)?.to_vec();
    let last = bad.len() - 1;
    bad[last] ^= 0x40;
    let p = c.produce(9, "crc", 0, bad.into(), 1)?;
    ensure!(p.error_code == code::CORRUPT_MESSAGE, "flipped data byte: error {}, want 2", p.error_code);

    // A batch whose length field claims more bytes than were sent.
    let mut bad = record_batch(&["bad"], t0, None)?.to_vec();
    let claimed = i32::from_be_bytes([bad[8], bad[9], bad[10], bad[11]]) + 100;
    bad[8..12].copy_from_slice(&claimed.to_be_bytes());
    let p = c.produce(9, "crc", 0, bad.into(), 1)?;
    ensure!(p.error_code == code::CORRUPT_MESSAGE, "batch length beyond the data: error {}, want 2", p.error_code);

    ensure!(c.latest_offset("crc", 0)? == 2, "latest offset moved after corrupt batches");
    let p = c.produce(9, "crc", 0, record_batch(&["ok3"], t0, None)?, 1)?;
    ensure!(p.error_code == code::NONE && p.base_offset == 2, "good batch after corrupt ones: {p:?}");
    Ok(())
}

#[test]
fn produce_v2_closes_the_connection() -> Result<()> {
    let mut broker = TestBroker::start()?;
    broker.client()?.create_topic_ok("v2", 1)?;
    let mut c = broker.client()?;
    // A v2 body: acks, timeout, an empty topic array.
    let mut body = Vec::new();
    body.extend_from_slice(&1i16.to_be_bytes());
    body.extend_from_slice(&1000i32.to_be_bytes());
    body.extend_from_slice(&0i32.to_be_bytes());
    c.send_raw(&raw_request(ApiKey::Produce as i16, 2, 1, 21, &body)?)?;
    c.expect_closed()?;
    assert_still_serving(&mut broker)?;
    ensure!(broker.client()?.latest_offset("v2", 0)? == 0, "Produce v2 appended something");
    Ok(())
}

/// A config that would start on free ports in `dir`, with `edit` applied to its text.
fn config_with(dir: &std::path::Path, edit: impl FnOnce(String) -> String) -> Result<String> {
    let base = config_toml(&dir.join("data"), Ports::pick()?, &BrokerOpts::default());
    Ok(edit(base))
}

fn assert_refused(config: &str, key: &str) -> Result<()> {
    let (code, stderr) = start_expecting_failure(config)?;
    ensure!(code.is_some_and(|c| c != 0), "start with bad `{key}` exited with {code:?}; stderr:\n{stderr}");
    ensure!(stderr.contains(key), "stderr does not name `{key}`:\n{stderr}");
    Ok(())
}

#[test]
fn bad_config_files_are_refused_naming_the_key() -> Result<()> {
    let dir = tempfile::tempdir()?;
    // Unknown top-level key.
    let cfg = config_with(dir.path(), |s| format!("retention_hours = 3\n{s}"))?;
    assert_refused(&cfg, "retention_hours")?;
    // Invalid value.
    let cfg = config_with(dir.path(), |s| format!("min_insync_replicas = 0\n{s}"))?;
    assert_refused(&cfg, "min_insync_replicas")?;
    // A bind address that is not IP:port.
    let cfg = config_with(dir.path(), |s| {
        let (head, tail) = s.split_once("[bind]\n").unwrap_or((&s, ""));
        let tail = tail.split_once('\n').map(|(_, rest)| rest).unwrap_or("");
        format!("{head}[bind]\nkafka = \"x\"\n{tail}")
    })?;
    ensure!(cfg.contains("kafka = \"x\""), "test bug: config edit failed:\n{cfg}");
    assert_refused(&cfg, "kafka")?;
    let (_, stderr) = start_expecting_failure(&cfg)?;
    ensure!(stderr.contains("bind"), "stderr does not say the bad kafka address is under [bind]:\n{stderr}");
    // An unknown key inside a table.
    let cfg = config_with(dir.path(), |s| s.replace("[advertise]\n", "[advertise]\nkafak = \"127.0.0.1:1\"\n"))?;
    assert_refused(&cfg, "kafak")?;
    // The untouched config is accepted (so the failures above are about the edited key).
    let mut ok = TestBroker::start()?;
    ok.assert_alive()?;
    Ok(())
}

#[test]
fn a_closed_bad_connection_does_not_disturb_a_good_one() -> Result<()> {
    let broker = TestBroker::start()?;
    let mut good: KafkaClient = broker.client()?;
    good.create_topic_ok("calm", 1)?;
    let mut bad = broker.client()?;
    bad.send_raw(&raw_request(9999, 0, 1, 1, &[])?)?;
    bad.expect_closed()?;
    let p = good.produce(9, "calm", 0, record_batch(&["still"], common::now_ms(), None)?, 1)?;
    ensure!(p.error_code == code::NONE && p.base_offset == 0, "Produce on the good connection: {p:?}");
    Ok(())
}

#[test]
fn batch_above_message_bytes_max_is_refused() -> Result<()> {
    const MESSAGE_BYTES_MAX: i32 = 1024;
    let broker =
        TestBroker::start_with(BrokerOpts { message_bytes_max: Some(MESSAGE_BYTES_MAX), ..Default::default() })?;
    let mut c = broker.client()?;
    c.create_topic_ok("big", 1)?;
    let t0 = common::now_ms();
    let small = "s".repeat(100);
    let p = c.produce(9, "big", 0, record_batch(&[&small], t0, None)?, 1)?;
    ensure!(p.error_code == code::NONE && p.base_offset == 0, "batch under the limit: {p:?}");
    let large = "L".repeat(2 * MESSAGE_BYTES_MAX as usize);
    let p = c.produce(9, "big", 0, record_batch(&[&large], t0, None)?, 1)?;
    ensure!(p.error_code == 10, "batch above message_bytes_max: error {}, want MESSAGE_TOO_LARGE 10", p.error_code);
    ensure!(c.latest_offset("big", 0)? == 1, "the oversized batch was appended");
    Ok(())
}

/// A 249-character name is legal in Kafka; its partition must get a log, and a failure to open one
/// partition's log must not keep other topics from opening theirs.
#[test]
fn longest_legal_topic_name_is_usable_and_does_not_block_others() -> Result<()> {
    let broker = TestBroker::start()?;
    let mut c = broker.client()?;
    let longest = "c".repeat(249);
    c.create_topic_ok(&longest, 1)?;
    // Topics created after it still get working logs.
    let mut others_failed = Vec::new();
    for i in 0..8 {
        let name = format!("after-long-{i}");
        c.create_topic_ok(&name, 1)?;
        let p = c.produce(9, &name, 0, record_batch(&["x"], common::now_ms(), None)?, 1)?;
        if p.error_code != code::NONE {
            others_failed.push((name, p.error_code));
        }
    }
    let p = c.produce(9, &longest, 0, record_batch(&["long"], common::now_ms(), None)?, 1)?;
    ensure!(
        others_failed.is_empty(),
        "topics created after a 249-character one cannot be produced to: {others_failed:?}"
    );
    ensure!(
        p.error_code == code::NONE && p.base_offset == 0,
        "Produce to a 249-character topic: error {} ({:?})",
        p.error_code,
        p.error_message.as_ref().map(|m| m.len())
    );
    Ok(())
}

//! Crash and restart: kill -9 the broker, start it again on the same data dir and ports, and check that
//! acknowledged records, idempotent-producer state and committed group offsets are all still there.

mod common;

use anyhow::{ensure, Result};
use kafka_protocol::messages::{
    offset_commit_request::OffsetCommitRequestPartition, offset_commit_request::OffsetCommitRequestTopic,
    offset_fetch_request::OffsetFetchRequestTopic, GroupId, InitProducerIdRequest, OffsetCommitRequest,
    OffsetFetchRequest,
};
use kafka_protocol::protocol::StrBytes;

use common::{code, decode_records, record_batch, topic_name, Idempotence, KafkaClient, TestBroker};

fn values_and_offsets(c: &mut KafkaClient, topic: &str, partition: i32) -> Result<Vec<(i64, String)>> {
    let p = c.fetch(12, topic, partition, 0, 0, 1)?;
    ensure!(p.error_code == code::NONE, "Fetch {topic}-{partition}: error {}", p.error_code);
    Ok(decode_records(&p.records)?.into_iter().map(|r| (r.offset, r.value)).collect())
}

#[test]
fn acknowledged_records_survive_kill_9() -> Result<()> {
    let mut broker = TestBroker::start()?;
    let t0 = common::now_ms();
    let before = {
        let mut c = broker.client()?;
        c.create_topic_ok("crash", 2)?;
        let p = c.produce(9, "crash", 0, record_batch(&["a", "b", "c"], t0, None)?, 1)?;
        ensure!(p.error_code == code::NONE && p.base_offset == 0, "{p:?}");
        let p = c.produce(9, "crash", 0, record_batch(&["d"], t0 + 1, None)?, -1)?;
        ensure!(p.error_code == code::NONE && p.base_offset == 3, "{p:?}");
        let p = c.produce(9, "crash", 1, record_batch(&["p1-a", "p1-b"], t0 + 2, None)?, -1)?;
        ensure!(p.error_code == code::NONE && p.base_offset == 0, "{p:?}");
        (values_and_offsets(&mut c, "crash", 0)?, values_and_offsets(&mut c, "crash", 1)?)
    };
    ensure!(before.0.len() == 4 && before.1.len() == 2, "before the crash: {before:?}");

    let old_pid = broker.pid();
    broker.kill9()?;
    broker.restart()?;
    ensure!(broker.pid() != old_pid, "restart did not start a new process");

    let mut c = broker.client()?;
    let after = (values_and_offsets(&mut c, "crash", 0)?, values_and_offsets(&mut c, "crash", 1)?);
    ensure!(after == before, "records after restart {after:?} differ from before {before:?}");
    ensure!(c.latest_offset("crash", 0)? == 4, "latest offset of partition 0 after restart");
    ensure!(c.latest_offset("crash", 1)? == 2, "latest offset of partition 1 after restart");
    let p = c.fetch(12, "crash", 0, 0, 0, 1)?;
    ensure!(p.high_watermark == 4, "high watermark after restart: {}", p.high_watermark);
    let md = c.metadata(11, Some(&["crash"]), false)?;
    ensure!(md.topics[0].error_code == code::NONE && md.topics[0].partitions.len() == 2, "topic after restart: {md:?}");
    // Appends continue where the log ended.
    let p = c.produce(9, "crash", 0, record_batch(&["e"], t0 + 3, None)?, 1)?;
    ensure!(p.error_code == code::NONE && p.base_offset == 4, "Produce after restart: {p:?}");

    // A second crash right after that append keeps it too.
    broker.restart()?;
    let mut c = broker.client()?;
    let values: Vec<String> = values_and_offsets(&mut c, "crash", 0)?.into_iter().map(|(_, v)| v).collect();
    ensure!(values == ["a", "b", "c", "d", "e"], "after the second crash: {values:?}");
    Ok(())
}

#[test]
fn idempotent_duplicate_after_restart_gets_the_original_offset() -> Result<()> {
    let mut broker = TestBroker::start()?;
    let (pid, epoch) = {
        let mut c = broker.client()?;
        c.create_topic_ok("idem-crash", 1)?;
        let mut req = InitProducerIdRequest::default();
        req.transactional_id = None;
        req.transaction_timeout_ms = 60_000;
        let resp = c.call(4, &req)?;
        ensure!(resp.error_code == code::NONE, "InitProducerId: {resp:?}");
        (resp.producer_id.0, resp.producer_epoch)
    };
    let seq = |base_sequence| Some(Idempotence { producer_id: pid, producer_epoch: epoch, base_sequence });
    let t0 = common::now_ms();
    let b0 = record_batch(&["a", "b", "c"], t0, seq(0))?;
    let b3 = record_batch(&["d", "e"], t0, seq(3))?;
    {
        let mut c = broker.client()?;
        let p = c.produce(9, "idem-crash", 0, b0.clone(), -1)?;
        ensure!(p.error_code == code::NONE && p.base_offset == 0, "{p:?}");
        let p = c.produce(9, "idem-crash", 0, b3.clone(), -1)?;
        ensure!(p.error_code == code::NONE && p.base_offset == 3, "{p:?}");
    }

    broker.kill9()?;
    broker.restart()?;

    let mut c = broker.client()?;
    let p = c.produce(9, "idem-crash", 0, b3, -1)?;
    ensure!(p.error_code == code::NONE, "duplicate after restart: error {}", p.error_code);
    ensure!(p.base_offset == 3, "duplicate after restart: base offset {}, want the original 3", p.base_offset);
    let p = c.produce(9, "idem-crash", 0, b0, -1)?;
    ensure!(p.error_code == code::NONE && p.base_offset == 0, "older duplicate after restart: {p:?}");
    ensure!(c.latest_offset("idem-crash", 0)? == 5, "a duplicate was appended after restart");
    // The producer's sequence state was rebuilt: a gap is refused, the next sequence accepted.
    let p = c.produce(9, "idem-crash", 0, record_batch(&["gap"], t0, seq(9))?, -1)?;
    ensure!(p.error_code == code::OUT_OF_ORDER_SEQUENCE_NUMBER, "gap after restart: error {}, want 45", p.error_code);
    let p = c.produce(9, "idem-crash", 0, record_batch(&["f"], t0, seq(5))?, -1)?;
    ensure!(p.error_code == code::NONE && p.base_offset == 5, "next sequence after restart: {p:?}");
    // Producer ids handed out after a restart are new ones.
    let mut req = InitProducerIdRequest::default();
    req.transactional_id = None;
    req.transaction_timeout_ms = 60_000;
    let resp = c.call(4, &req)?;
    ensure!(resp.error_code == code::NONE && resp.producer_id.0 != pid, "InitProducerId after restart reused {pid}: {resp:?}");
    Ok(())
}

fn commit(c: &mut KafkaClient, group: &str, topic: &str, offsets: &[(i32, i64)]) -> Result<()> {
    let mut t = OffsetCommitRequestTopic::default();
    t.name = topic_name(topic);
    t.partitions = offsets
        .iter()
        .map(|&(partition, offset)| {
            let mut p = OffsetCommitRequestPartition::default();
            p.partition_index = partition;
            p.committed_offset = offset;
            p.committed_metadata = Some(StrBytes::from_string(format!("meta-{offset}")));
            p
        })
        .collect();
    let mut req = OffsetCommitRequest::default();
    req.group_id = GroupId(StrBytes::from_string(group.to_string()));
    // A simple (standalone) commit: no member, generation -1.
    req.generation_id_or_member_epoch = -1;
    req.member_id = StrBytes::from_static_str("");
    req.retention_time_ms = -1;
    req.topics = vec![t];
    let resp = c.call(2, &req)?;
    for t in &resp.topics {
        for p in &t.partitions {
            ensure!(p.error_code == code::NONE, "OffsetCommit {group} {topic}-{}: error {}", p.partition_index, p.error_code);
        }
    }
    ensure!(
        resp.topics.iter().map(|t| t.partitions.len()).sum::<usize>() == offsets.len(),
        "OffsetCommit answered {resp:?}"
    );
    Ok(())
}

/// Committed (offset, metadata) per partition, via OffsetFetch v1.
fn fetch_committed(c: &mut KafkaClient, group: &str, topic: &str, partitions: &[i32]) -> Result<Vec<(i32, i64, String)>> {
    let mut t = OffsetFetchRequestTopic::default();
    t.name = topic_name(topic);
    t.partition_indexes = partitions.to_vec();
    let mut req = OffsetFetchRequest::default();
    req.group_id = GroupId(StrBytes::from_string(group.to_string()));
    req.topics = Some(vec![t]);
    let resp = c.call(1, &req)?;
    let mut out = Vec::new();
    for t in &resp.topics {
        for p in &t.partitions {
            ensure!(p.error_code == code::NONE, "OffsetFetch {group} {topic}-{}: error {}", p.partition_index, p.error_code);
            let meta = p.metadata.as_ref().map(|m| m.to_string()).unwrap_or_default();
            out.push((p.partition_index, p.committed_offset, meta));
        }
    }
    out.sort();
    Ok(out)
}

#[test]
fn committed_group_offsets_survive_kill_9() -> Result<()> {
    let mut broker = TestBroker::start()?;
    {
        let mut c = broker.client()?;
        c.create_topic_ok("oc", 3)?;
        c.wait_coordinator("g1")?;
        c.wait_coordinator("g2")?;
        commit(&mut c, "g1", "oc", &[(0, 42), (1, 7)])?;
        commit(&mut c, "g1", "oc", &[(0, 43)])?;
        commit(&mut c, "g2", "oc", &[(2, 99)])?;
        let got = fetch_committed(&mut c, "g1", "oc", &[0, 1, 2])?;
        ensure!(
            got == vec![(0, 43, "meta-43".into()), (1, 7, "meta-7".into()), (2, -1, String::new())],
            "g1 before the crash: {got:?}"
        );
    }
    broker.kill9()?;
    broker.restart()?;
    let mut c = broker.client()?;
    c.wait_coordinator("g1")?;
    c.wait_coordinator("g2")?;
    let got = fetch_committed(&mut c, "g1", "oc", &[0, 1, 2])?;
    ensure!(
        got == vec![(0, 43, "meta-43".into()), (1, 7, "meta-7".into()), (2, -1, String::new())],
        "g1 after the crash: {got:?}"
    );
    let got = fetch_committed(&mut c, "g2", "oc", &[2])?;
    ensure!(got == vec![(2, 99, "meta-99".into())], "g2 after the crash: {got:?}");
    // Commits keep working after the restart, and the latest one wins after another crash.
    commit(&mut c, "g1", "oc", &[(1, 8)])?;
    broker.restart()?;
    let mut c = broker.client()?;
    c.wait_coordinator("g1")?;
    let got = fetch_committed(&mut c, "g1", "oc", &[1])?;
    ensure!(got == vec![(1, 8, "meta-8".into())], "g1 partition 1 after the second crash: {got:?}");
    Ok(())
}

/// The active segment's `.log` of `topic`-`partition` (the newest one by name).
fn active_segment(broker: &TestBroker, topic: &str, partition: i32) -> Result<std::path::PathBuf> {
    let logs = broker.data_dir().join("logs");
    // `<topic>-<partition>`, possibly followed by `.<topic id>`.
    let name = format!("{topic}-{partition}");
    let with_id = format!("{name}.");
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(&logs)? {
        let path = entry?.path();
        if path.is_dir() && path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n == name || n.starts_with(&with_id)) {
            dirs.push(path);
        }
    }
    ensure!(dirs.len() == 1, "partition dirs for {topic}-{partition} under {}: {dirs:?}", logs.display());
    let mut segments: Vec<_> = std::fs::read_dir(&dirs[0])?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segments.sort();
    segments.pop().ok_or_else(|| anyhow::anyhow!("no .log segment in {}", dirs[0].display()))
}

/// Where the valid batches of a segment end: walks batch lengths until the zeros of preallocation.
fn valid_end(segment: &[u8]) -> usize {
    let mut pos = 0;
    while pos + 12 <= segment.len() {
        let len = i32::from_be_bytes([segment[pos + 8], segment[pos + 9], segment[pos + 10], segment[pos + 11]]);
        if len <= 0 || pos + 12 + len as usize > segment.len() {
            break;
        }
        pos += 12 + len as usize;
    }
    pos
}

#[test]
fn torn_tail_after_kill_9_is_truncated_on_restart() -> Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    let mut broker = TestBroker::start()?;
    let t0 = common::now_ms();
    {
        let mut c = broker.client()?;
        c.create_topic_ok("torn", 1)?;
        let p = c.produce(9, "torn", 0, record_batch(&["a", "b"], t0, None)?, -1)?;
        ensure!(p.error_code == code::NONE && p.base_offset == 0, "{p:?}");
        let p = c.produce(9, "torn", 0, record_batch(&["c"], t0, None)?, -1)?;
        ensure!(p.error_code == code::NONE && p.base_offset == 2, "{p:?}");
    }
    broker.kill9()?;

    // Simulate a write cut short by the crash: the first 40 bytes of a next batch (base offset 3).
    let segment = active_segment(&broker, "torn", 0)?;
    let bytes = std::fs::read(&segment)?;
    let end = valid_end(&bytes);
    ensure!(end > 0, "no valid batches found in {}", segment.display());
    let mut torn = record_batch(&["torn-record"], t0, None)?.to_vec();
    torn[0..8].copy_from_slice(&3i64.to_be_bytes());
    let mut file = std::fs::OpenOptions::new().write(true).open(&segment)?;
    file.seek(SeekFrom::Start(end as u64))?;
    file.write_all(&torn[..40])?;
    file.sync_all()?;
    drop(file);

    broker.restart()?;
    let mut c = broker.client()?;
    let got = values_and_offsets(&mut c, "torn", 0)?;
    ensure!(
        got == vec![(0, "a".to_string()), (1, "b".to_string()), (2, "c".to_string())],
        "records after torn-tail recovery: {got:?}"
    );
    ensure!(c.latest_offset("torn", 0)? == 3, "latest offset after torn-tail recovery");
    let p = c.produce(9, "torn", 0, record_batch(&["d"], t0, None)?, -1)?;
    ensure!(p.error_code == code::NONE && p.base_offset == 3, "append after torn-tail recovery: {p:?}");
    let got = values_and_offsets(&mut c, "torn", 0)?;
    ensure!(got.last() == Some(&(3, "d".to_string())) && got.len() == 4, "log after the append: {got:?}");
    Ok(())
}

#[test]
fn deleted_topics_stay_deleted_and_created_ones_stay_after_restart() -> Result<()> {
    let mut broker = TestBroker::start_with(common::BrokerOpts { auto_create_topics: false, ..Default::default() })?;
    {
        let mut c = broker.client()?;
        c.create_topic_ok("keep", 2)?;
        c.create_topic_ok("drop", 1)?;
        let p = c.produce(9, "drop", 0, record_batch(&["x"], common::now_ms(), None)?, 1)?;
        ensure!(p.error_code == code::NONE, "{p:?}");
        let mut req = kafka_protocol::messages::DeleteTopicsRequest::default();
        req.topic_names = vec![topic_name("drop")];
        req.timeout_ms = 10_000;
        let resp = c.call(4, &req)?;
        ensure!(resp.responses[0].error_code == code::NONE, "DeleteTopics: {resp:?}");
    }
    broker.kill9()?;
    broker.restart()?;
    let mut c = broker.client()?;
    let md = c.metadata(11, None, false)?;
    let names: Vec<String> = md.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())).collect();
    ensure!(names == ["keep"], "topics after restart: {names:?}");
    ensure!(md.topics[0].partitions.len() == 2, "keep has {} partitions after restart", md.topics[0].partitions.len());
    let p = c.produce(9, "drop", 0, record_batch(&["y"], common::now_ms(), None)?, 1)?;
    ensure!(p.error_code == code::UNKNOWN_TOPIC_OR_PARTITION, "Produce to the deleted topic after restart: {p:?}");
    // Its log directory is gone from disk.
    let logs = broker.data_dir().join("logs");
    let leftovers: Vec<String> = std::fs::read_dir(&logs)?
        .filter_map(|e| e.ok().and_then(|e| e.file_name().into_string().ok()))
        .filter(|n| n == "drop-0" || n.starts_with("drop-0."))
        .collect();
    ensure!(leftovers.is_empty(), "log dirs of the deleted topic remain: {leftovers:?}");
    Ok(())
}

#[test]
fn broker_restarts_with_a_249_character_topic() -> Result<()> {
    let mut broker = TestBroker::start()?;
    let longest = "d".repeat(249);
    broker.client()?.create_topic_ok(&longest, 1)?;
    broker.client()?.create_topic_ok("short", 1)?;
    broker.restart()?;
    let mut c = broker.client()?;
    let p = c.produce(9, "short", 0, record_batch(&["s"], common::now_ms(), None)?, 1)?;
    ensure!(p.error_code == code::NONE, "Produce to a short topic after restart: {p:?}");
    let p = c.produce(9, &longest, 0, record_batch(&["l"], common::now_ms(), None)?, 1)?;
    ensure!(p.error_code == code::NONE, "Produce to the 249-character topic after restart: error {}", p.error_code);
    Ok(())
}

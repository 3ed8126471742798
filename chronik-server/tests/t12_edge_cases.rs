//! Edge cases of the data path that real clients hit: version-specific Metadata semantics, requests mixing
//! good and bad partitions, fetches starting inside a batch, concurrent producers, big batches.

mod common;

use anyhow::{anyhow, ensure, Result};
use bytes::Bytes;
use kafka_protocol::messages::{
    metadata_request::MetadataRequestTopic, produce_request::PartitionProduceData, MetadataRequest,
};

use common::{code, decode_records, produce_request, record_batch, topic_name, BrokerOpts, TestBroker, BATCH_CRC_AT};

#[test]
fn metadata_empty_topic_list_means_all_in_v0_and_none_later() -> Result<()> {
    let broker = TestBroker::start_with(BrokerOpts { auto_create_topics: false, ..Default::default() })?;
    let mut c = broker.client()?;
    c.create_topic_ok("m1", 1)?;
    c.create_topic_ok("m2", 2)?;
    // v0 has no null list: an empty list asks for every topic.
    let mut req = MetadataRequest::default();
    req.topics = Some(Vec::new());
    let v0 = c.call(0, &req)?;
    let mut names: Vec<String> = v0.topics.iter().filter_map(|t| t.name.as_ref().map(|n| n.0.to_string())).collect();
    names.sort();
    ensure!(names == ["m1", "m2"], "Metadata v0 with an empty list: {names:?}, want every topic");
    // v1+: an empty list asks for none, null for all.
    let v1 = c.call(1, &req)?;
    ensure!(v1.topics.is_empty(), "Metadata v1 with an empty list returned {:?}", v1.topics);
    req.topics = None;
    let all = c.call(1, &req)?;
    ensure!(all.topics.len() == 2, "Metadata v1 with a null list: {:?}", all.topics);
    // A mix of known and unknown topics answers each.
    let mut req = MetadataRequest::default();
    req.allow_auto_topic_creation = false;
    req.topics = Some(
        ["m2", "ghost"]
            .iter()
            .map(|n| {
                let mut t = MetadataRequestTopic::default();
                t.name = Some(topic_name(n));
                t
            })
            .collect(),
    );
    let mixed = c.call(9, &req)?;
    let code_of = |n: &str| {
        mixed.topics.iter().find(|t| t.name.as_ref().is_some_and(|x| x.0.as_str() == n)).map(|t| t.error_code)
    };
    ensure!(code_of("m2") == Some(code::NONE), "Metadata mixed, m2: {:?}", mixed.topics);
    ensure!(code_of("ghost") == Some(code::UNKNOWN_TOPIC_OR_PARTITION), "Metadata mixed, ghost: {:?}", mixed.topics);
    Ok(())
}

#[test]
fn one_bad_partition_does_not_fail_the_others_in_a_produce() -> Result<()> {
    let broker = TestBroker::start_with(BrokerOpts { auto_create_topics: false, ..Default::default() })?;
    let mut c = broker.client()?;
    c.create_topic_ok("mix", 3)?;
    let t0 = common::now_ms();
    let mut corrupt = record_batch(&["bad"], t0, None)?.to_vec();
    corrupt[BATCH_CRC_AT + 2] ^= 0xff;
    let partition = |index: i32, records: Bytes| {
        let mut p = PartitionProduceData::default();
        p.index = index;
        p.records = Some(records);
        p
    };
    let mut req = produce_request("mix", 0, record_batch(&["p0"], t0, None)?, -1);
    req.topic_data[0].partition_data = vec![
        partition(0, record_batch(&["p0"], t0, None)?),
        partition(1, corrupt.into()),
        partition(2, record_batch(&["p2-a", "p2-b"], t0, None)?),
        partition(9, record_batch(&["p9"], t0, None)?),
    ];
    // And a topic that does not exist, in the same request.
    let mut ghost = req.topic_data[0].clone();
    ghost.name = topic_name("ghost");
    ghost.partition_data = vec![partition(0, record_batch(&["g"], t0, None)?)];
    req.topic_data.push(ghost);

    let resp = c.call(9, &req)?;
    let answer = |topic: &str, index: i32| {
        resp.responses
            .iter()
            .filter(|t| t.name.0.as_str() == topic)
            .flat_map(|t| t.partition_responses.iter())
            .find(|p| p.index == index)
            .map(|p| (p.error_code, p.base_offset))
            .ok_or_else(|| anyhow!("no answer for {topic}-{index}: {resp:?}"))
    };
    ensure!(answer("mix", 0)? == (code::NONE, 0), "mix-0: {:?}", answer("mix", 0)?);
    ensure!(answer("mix", 1)?.0 == code::CORRUPT_MESSAGE, "mix-1 (corrupt): {:?}", answer("mix", 1)?);
    ensure!(answer("mix", 2)? == (code::NONE, 0), "mix-2: {:?}", answer("mix", 2)?);
    ensure!(answer("mix", 9)?.0 == code::UNKNOWN_TOPIC_OR_PARTITION, "mix-9: {:?}", answer("mix", 9)?);
    ensure!(answer("ghost", 0)?.0 == code::UNKNOWN_TOPIC_OR_PARTITION, "ghost-0: {:?}", answer("ghost", 0)?);
    ensure!(c.latest_offset("mix", 0)? == 1, "mix-0 latest");
    ensure!(c.latest_offset("mix", 1)? == 0, "mix-1 latest (the corrupt batch was appended)");
    ensure!(c.latest_offset("mix", 2)? == 2, "mix-2 latest");
    Ok(())
}

#[test]
fn fetch_from_inside_a_batch_includes_the_requested_offset() -> Result<()> {
    let broker = TestBroker::start()?;
    let mut c = broker.client()?;
    c.create_topic_ok("inside", 1)?;
    let p = c.produce(9, "inside", 0, record_batch(&["r0", "r1", "r2", "r3"], common::now_ms(), None)?, 1)?;
    ensure!(p.error_code == code::NONE, "{p:?}");
    let got = decode_records(&c.fetch(12, "inside", 0, 2, 0, 1)?.records)?;
    let from2: Vec<(i64, &str)> = got.iter().filter(|r| r.offset >= 2).map(|r| (r.offset, r.value.as_str())).collect();
    ensure!(from2 == vec![(2, "r2"), (3, "r3")], "Fetch from offset 2 inside batch 0..3: {got:?}");
    Ok(())
}

#[test]
fn concurrent_producers_get_distinct_contiguous_offsets() -> Result<()> {
    const PRODUCERS: usize = 4;
    const BATCHES_EACH: usize = 25;
    let broker = TestBroker::start()?;
    broker.client()?.create_topic_ok("conc", 1)?;
    let mut offsets: Vec<(i64, String)> = std::thread::scope(|scope| -> Result<Vec<(i64, String)>> {
        let handles: Vec<_> = (0..PRODUCERS)
            .map(|w| {
                let broker = &broker;
                scope.spawn(move || -> Result<Vec<(i64, String)>> {
                    let mut c = broker.client()?;
                    let mut mine = Vec::new();
                    for i in 0..BATCHES_EACH {
                        let a = format!("w{w}-{i}-a");
                        let b = format!("w{w}-{i}-b");
                        let acks = if i % 2 == 0 { 1 } else { -1 };
                        let p = c.produce(9, "conc", 0, record_batch(&[&a, &b], common::now_ms(), None)?, acks)?;
                        ensure!(p.error_code == code::NONE, "producer {w} batch {i}: {p:?}");
                        mine.push((p.base_offset, a));
                        mine.push((p.base_offset + 1, b));
                    }
                    Ok(mine)
                })
            })
            .collect();
        let mut all = Vec::new();
        for h in handles {
            all.extend(h.join().map_err(|_| anyhow!("a producer thread panicked"))??);
        }
        Ok(all)
    })?;
    offsets.sort();
    let total = (PRODUCERS * BATCHES_EACH * 2) as i64;
    let want: Vec<i64> = (0..total).collect();
    ensure!(offsets.iter().map(|(o, _)| *o).collect::<Vec<_>>() == want, "acknowledged offsets are not 0..{total}");
    let mut c = broker.client()?;
    let mut fetched = Vec::new();
    while (fetched.len() as i64) < total {
        let next = fetched.len() as i64;
        let p = c.fetch(12, "conc", 0, next, 0, 1)?;
        let got: Vec<(i64, String)> = decode_records(&p.records)?
            .into_iter()
            .filter(|r| r.offset >= next)
            .map(|r| (r.offset, r.value))
            .collect();
        ensure!(!got.is_empty(), "Fetch from {next} returned nothing (hw {})", p.high_watermark);
        fetched.extend(got);
    }
    ensure!(fetched == offsets, "fetched records differ from the acknowledged offsets");
    Ok(())
}

#[test]
fn a_batch_near_message_bytes_max_round_trips() -> Result<()> {
    let broker = TestBroker::start()?;
    let mut c = broker.client()?;
    c.create_topic_ok("bigone", 1)?;
    // Default message_bytes_max is 1 MiB + 12; eight 120 KiB records stay under it.
    let value = "x".repeat(120 * 1024);
    let values: Vec<&str> = std::iter::repeat_n(value.as_str(), 8).collect();
    let batch = record_batch(&values, common::now_ms(), None)?;
    ensure!(batch.len() > 900 * 1024, "test batch is only {} bytes", batch.len());
    let p = c.produce(9, "bigone", 0, batch, -1)?;
    ensure!(p.error_code == code::NONE && p.base_offset == 0, "big Produce: {p:?}");
    let got = decode_records(&c.fetch(12, "bigone", 0, 0, 0, 1)?.records)?;
    ensure!(got.len() == 8 && got.iter().all(|r| r.value == value), "big batch came back as {} records", got.len());
    Ok(())
}

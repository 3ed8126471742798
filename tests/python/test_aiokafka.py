"""The asyncio client end to end, once per codec: a consumer group of two aiokafka
members and an aiokafka producer.

The two members join first and the test waits until the group is stable (each owns
one of the two partitions) and both have a fetch position, which takes a ListOffsets
at whatever version aiokafka negotiates. Only then does the producer write 10,000
distinct records (acks=all, the codec under test), alternating partitions. The members
read until every record has arrived, committing after each batch. At the end each
partition was read exactly once, in offset order 0..n-1, by the member that owns it,
with the values in the order produced; the committed offsets equal the log ends; and
a raw Fetch shows the stored batches carry the producer's codec.
"""

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from kafka_helpers import create_topic, raw_fetch_batch_headers

RECORDS = 10_000
PARTITIONS = 2
# Codec id in bits 0-2 of a v2 record batch's attributes.
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
ATTR_CODEC_MASK = 0x07
# Deadlines (seconds) of each phase; a hang anywhere fails with the phase's name.
START_TIMEOUT_S = 30.0
STABLE_TIMEOUT_S = 60.0
POSITION_TIMEOUT_S = 30.0
PRODUCE_TIMEOUT_S = 120.0
CONSUME_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 30.0
POLL_MS = 200
# Sends in flight before the producer waits for their acknowledgements.
SEND_WINDOW = 1_000


async def within(seconds, what, awaitable):
    """Await with a deadline; a timeout fails the test naming the phase."""
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except asyncio.TimeoutError:
        raise AssertionError(f"{what}: not done within {seconds:.0f}s") from None


async def wait_stable(members, tps):
    """Poll every member until their assignments are disjoint, cover `tps`, and each
    member owns one partition; returns {member index: set of partitions}."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + STABLE_TIMEOUT_S
    while True:
        # getmany drives nothing by itself (aiokafka's coordinator runs in the background),
        # but it is what an application calls, and nothing is produced yet.
        for m in members:
            got = await m.getmany(timeout_ms=50)
            assert not any(got.values()), f"records before any were produced: {got}"
        owned = [set(m.assignment()) for m in members]
        if all(len(o) == 1 for o in owned) and set().union(*owned) == tps:
            return {i: o for i, o in enumerate(owned)}
        if loop.time() >= deadline:
            raise AssertionError(f"group not stable within {STABLE_TIMEOUT_S:.0f}s: assignments {owned}")
        await asyncio.sleep(0.05)


async def produce(bootstrap, topic, codec, values):
    """Send values[i] to partition i % PARTITIONS; returns {value: (partition, offset)}."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5,
                                compression_type=None if codec == "none" else codec)
    await within(START_TIMEOUT_S, "producer start", producer.start())
    acked = {}
    try:
        for start in range(0, len(values), SEND_WINDOW):
            chunk = values[start:start + SEND_WINDOW]
            futures = [await producer.send(topic, value=v, partition=(start + i) % PARTITIONS)
                       for i, v in enumerate(chunk)]
            metas = await within(PRODUCE_TIMEOUT_S, "produce acknowledgements", asyncio.gather(*futures))
            for v, md in zip(chunk, metas):
                acked[v] = (md.partition, md.offset)
    finally:
        await within(STOP_TIMEOUT_S, "producer stop", producer.stop())
    return acked


async def consume_all(members, expected_total):
    """Read with every member until `expected_total` records arrived; commits after each
    batch. Returns {partition: [(member index, offset, value), ...]} in read order."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CONSUME_TIMEOUT_S
    reads = {p: [] for p in range(PARTITIONS)}
    total = 0
    while total < expected_total:
        if loop.time() >= deadline:
            raise AssertionError(f"read {total} of {expected_total} records within {CONSUME_TIMEOUT_S:.0f}s")
        for i, m in enumerate(members):
            got = await m.getmany(timeout_ms=POLL_MS)
            for tp, records in got.items():
                for r in records:
                    reads[tp.partition].append((i, r.offset, r.value))
                    total += 1
            if got:
                await within(STOP_TIMEOUT_S, f"member {i} commit", m.commit())
    return reads


async def run(bootstrap, codec):
    topic = f"aiokafka-{codec}"
    group = f"aiokafka-group-{codec}"
    tps = {TopicPartition(topic, p) for p in range(PARTITIONS)}
    members = [
        AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=group, client_id=f"member-{i}",
                         auto_offset_reset="earliest", enable_auto_commit=False,
                         heartbeat_interval_ms=500, session_timeout_ms=10_000)
        for i in range(2)
    ]
    for i, m in enumerate(members):
        await within(START_TIMEOUT_S, f"member {i} start", m.start())
    try:
        owned = await wait_stable(members, tps)
        # position() resolves auto_offset_reset with ListOffsets: before any record exists
        # it must be 0 for every partition.
        for i, m in enumerate(members):
            for tp in owned[i]:
                pos = await within(POSITION_TIMEOUT_S, f"member {i} position of {tp}", m.position(tp))
                assert pos == 0, f"member {i}: position {pos} on empty {tp}"

        values = [f"{codec}-{i:06d}-payload-{'y' * 30}".encode() for i in range(RECORDS)]
        acked = await produce(bootstrap, topic, codec, values)
        assert len(acked) == RECORDS, f"{len(acked)} of {RECORDS} acknowledged"
        expected = {p: values[p::PARTITIONS] for p in range(PARTITIONS)}
        for p in range(PARTITIONS):
            assert [acked[v] for v in expected[p]] == [(p, o) for o in range(len(expected[p]))], \
                f"partition {p}: offsets not assigned 0..n-1 in send order"

        reads = await consume_all(members, RECORDS)
        owner = {tp.partition: i for i, tps_i in owned.items() for tp in tps_i}
        for p in range(PARTITIONS):
            got = reads[p]
            print(f"[{codec}] partition {p}: member {owner[p]} read {len(got)}")
            assert {i for i, _, _ in got} == {owner[p]}, f"partition {p} read by {sorted({i for i, _, _ in got})}"
            assert [o for _, o, _ in got] == list(range(len(expected[p]))), \
                f"partition {p}: offsets read are not exactly 0..{len(expected[p]) - 1} once each"
            assert [v for _, _, v in got] == expected[p], f"partition {p}: values differ from those produced"

        for i, m in enumerate(members):
            for tp in owned[i]:
                committed = await within(STOP_TIMEOUT_S, f"member {i} committed {tp}", m.committed(tp))
                assert committed == len(expected[tp.partition]), f"{tp}: committed {committed}"
    finally:
        for i, m in enumerate(members):
            await within(STOP_TIMEOUT_S, f"member {i} stop", m.stop())
    return topic


@pytest.mark.timeout(600)
@pytest.mark.parametrize("codec", list(CODEC_IDS))
def test_aiokafka_group_reads_every_record_once(broker, codec):
    topic = f"aiokafka-{codec}"
    create_topic(broker.bootstrap, topic, partitions=PARTITIONS)
    asyncio.run(run(broker.bootstrap, codec))

    for p in range(PARTITIONS):
        headers = raw_fetch_batch_headers(broker.bootstrap, topic, p)
        assert headers, f"raw Fetch of partition {p} returned no whole batch"
        codecs_seen = {attrs & ATTR_CODEC_MASK for _, attrs, _ in headers}
        print(f"[{codec}] partition {p}: {len(headers)} batches in the first fetch, codec ids {sorted(codecs_seen)}")
        assert codecs_seen == {CODEC_IDS[codec]}

"""Every compression codec end to end: confluent-kafka produces 100,000 distinct
records at acks=all, then kafka-python and confluent-kafka each read them back
exactly (count, order, values, offsets 0..N-1), and a raw Fetch shows the stored
batches still carry the producer's codec (the broker appended them verbatim)."""

import pytest

from kafka_helpers import (
    DeliveryLog, create_topic, make_producer, produce_all, raw_fetch_batch_headers,
    read_partition_confluent, read_partition_kafka_python,
)

RECORDS_PER_CODEC = 100_000
# Codec id in bits 0-2 of a v2 record batch's attributes.
CODEC_IDS = {"none": 0, "gzip": 1, "snappy": 2, "lz4": 3, "zstd": 4}
ATTR_CODEC_MASK = 0x07


def _values(codec):
    # Distinct, ordered, and compressible (so every codec really has work to do).
    return [f"{codec}-{i:09d}-payload-{'x' * 40}".encode() for i in range(RECORDS_PER_CODEC)]


@pytest.mark.timeout(900)
@pytest.mark.parametrize("codec", list(CODEC_IDS))
def test_codec_roundtrip(broker, codec):
    topic = f"codec-{codec}"
    create_topic(broker.bootstrap, topic, partitions=1)
    values = _values(codec)

    log = DeliveryLog()
    producer = make_producer(broker.bootstrap, **{"compression.type": codec})
    produce_all(producer, topic, values, log, partition=0)
    print(f"[{codec}] produced={len(values)} acked={len(log.acked)} errors={len(log.errors)}")
    assert not log.errors, f"delivery errors, first: {log.errors[:3]}"
    assert len(log.acked) == RECORDS_PER_CODEC
    # The broker assigned offsets 0..N-1 in production order.
    assert [log.acked[v] for v in values] == [(0, i) for i in range(RECORDS_PER_CODEC)]

    headers = raw_fetch_batch_headers(broker.bootstrap, topic, 0)
    assert headers, "raw Fetch returned no whole batch"
    codecs_seen = {attrs & ATTR_CODEC_MASK for _, attrs, _ in headers}
    print(f"[{codec}] first fetch: {len(headers)} batches, codec ids {sorted(codecs_seen)}")
    assert codecs_seen == {CODEC_IDS[codec]}
    assert headers[0][0] == 0, "first batch must start at offset 0"

    expected = list(enumerate(values))
    got_kp = read_partition_kafka_python(broker.bootstrap, topic, 0, RECORDS_PER_CODEC)
    print(f"[{codec}] kafka-python read={len(got_kp)}")
    assert len(got_kp) == RECORDS_PER_CODEC
    assert got_kp == expected

    got_ck = read_partition_confluent(broker.bootstrap, topic, 0, RECORDS_PER_CODEC)
    print(f"[{codec}] confluent-kafka read={len(got_ck)}")
    assert len(got_ck) == RECORDS_PER_CODEC
    assert got_ck == expected

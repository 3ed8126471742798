"""Raw Kafka-protocol clients for the many-clients row (bench/manyclients.py): cheap enough that one
2-core machine can run hundreds of them beside the broker.

A librdkafka instance is a handful of threads and timers; 200 of them would spend the load generator's
CPU on themselves. These clients speak the wire protocol directly over asyncio streams, one TCP
connection each, the way a client does it: ApiVersions, Metadata, then requests.

  rawclients.py producers --bootstrap B --topic T --partitions P --count N --first I --total M
                          --rate R --size S --duration D
      N producers (numbers I .. I+N-1 of M), each on its own connection, each sending one record of
      S bytes per request (acks=all, Produce v3) R times a second for D seconds to partition
      number % P, one request outstanding at a time, as a client at a low rate does (one record per
      batch). The sends are spread over the period by producer number so M producers do not send in
      step. Reports every acknowledged request's latency (send to response read).
  rawclients.py probe --bootstrap B --interval-ms T --duration D --delay W [--api versions]
      One connection sending Metadata (v1, all topics) every T ms for D seconds, starting W seconds
      after the common start; reports each request's latency. `--api versions` sends ApiVersions
      instead: a request that reads no broker state, to tell a slow Metadata from a slow machine.

Both print {"ready": true} once connected, wait for the start time on stdin (bench/loadgen.py) and
print one JSON result. The record batch of a producer is built once (its CRC32C computed once) and sent
unchanged every time: the broker assigns offsets, so identical bytes are new records each time.
"""

import argparse
import asyncio
import json
import os
import struct
import sys
import time

from kafka.record.default_records import DefaultRecordBatchBuilder

from workers import cpu_s, ready_then_wait

API_PRODUCE = 0
API_METADATA = 3
API_VERSIONS = 18
PRODUCE_VERSION = 3
METADATA_VERSION = 1
ACKS_ALL = -1
PRODUCE_TIMEOUT_MS = 30_000
CLIENT_ID = b"chronik-bench-raw"
# Room for a record batch: header, one record's varints, the value.
BATCH_BYTES_MAX = 1 << 20
CONNECT_TIMEOUT_S = 30.0
# A response slower than this counts as an error and ends that producer.
RESPONSE_TIMEOUT_S = 60.0


def _kstr(s):
    return struct.pack(">h", len(s)) + s


def request(api_key, version, correlation, body):
    """A framed request with header v1 (api key, version, correlation id, client id)."""
    payload = struct.pack(">hhi", api_key, version, correlation) + _kstr(CLIENT_ID) + body
    return struct.pack(">i", len(payload)) + payload


def api_versions_request(correlation):
    return request(API_VERSIONS, 0, correlation, b"")


def metadata_request(correlation, topic=None):
    """Metadata v1 for one topic, or for all topics (a null array) when `topic` is None."""
    body = struct.pack(">i", -1) if topic is None else struct.pack(">i", 1) + _kstr(topic.encode())
    return request(API_METADATA, METADATA_VERSION, correlation, body)


def record_batch(value):
    """One record batch (magic 2) holding one record, no producer id."""
    b = DefaultRecordBatchBuilder(magic=2, compression_type=0, is_transactional=False, producer_id=-1,
                                  producer_epoch=-1, base_sequence=-1, batch_size=BATCH_BYTES_MAX)
    b.append(0, timestamp=None, key=None, value=value, headers=[])
    return bytes(b.build())


def produce_request(correlation, topic, partition, batch):
    body = (struct.pack(">hhii", -1, ACKS_ALL, PRODUCE_TIMEOUT_MS, 1) + _kstr(topic.encode())
            + struct.pack(">iii", 1, partition, len(batch)) + batch)
    return request(API_PRODUCE, PRODUCE_VERSION, correlation, body)


def produce_error_code(resp, topic):
    """The partition's error code in a Produce v3 response body (after the correlation id) for one
    topic and one partition: topics count, name, partitions count, index, then the error code."""
    pos = 4 + 2 + len(topic.encode()) + 4 + 4
    return struct.unpack_from(">h", resp, pos)[0]


def check_correlation(resp, correlation):
    got = struct.unpack_from(">i", resp, 0)[0]
    if got != correlation:
        raise RuntimeError(f"correlation id {got}, expected {correlation}")
    return resp[4:]


async def call(reader, writer, frame, correlation):
    """Send one framed request and read its response; returns the body after the correlation id."""
    writer.write(frame)
    await writer.drain()
    size = struct.unpack(">i", await reader.readexactly(4))[0]
    return check_correlation(await reader.readexactly(size), correlation)


async def open_client(host, port, topic):
    """A connection that has done what a client does first: ApiVersions, then Metadata."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), CONNECT_TIMEOUT_S)
    await call(reader, writer, api_versions_request(1), 1)
    await call(reader, writer, metadata_request(2, topic), 2)
    return reader, writer


class Producer:
    def __init__(self, number, total, args, batch):
        self.partition = number % args.partitions
        self.period_s = 1.0 / args.rate
        # Spread the producers' send times evenly over one period.
        self.phase_s = self.period_s * number / total
        self.args = args
        self.batch = batch
        self.latencies_ms = []
        self.sent = 0
        self.errors = 0
        self.first_error = None
        self.conn = None

    async def connect(self, host, port):
        self.conn = await open_client(host, port, self.args.topic)

    async def run(self, start_at_monotonic):
        reader, writer = self.conn
        topic = self.args.topic
        correlation = 100
        due = start_at_monotonic + self.phase_s
        stop_at = start_at_monotonic + self.args.duration
        try:
            while due < stop_at:
                delay = due - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                correlation += 1
                frame = produce_request(correlation, topic, self.partition, self.batch)
                t0 = time.perf_counter()
                self.sent += 1
                resp = await asyncio.wait_for(call(reader, writer, frame, correlation), RESPONSE_TIMEOUT_S)
                ms = (time.perf_counter() - t0) * 1000
                code = produce_error_code(resp, topic)
                if code:
                    self.errors += 1
                    self.first_error = self.first_error or f"error code {code}"
                else:
                    self.latencies_ms.append(round(ms, 3))
                # Fixed schedule: a late request does not shift the ones after it.
                due += self.period_s
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, RuntimeError) as e:
            self.errors += 1
            self.first_error = self.first_error or f"{type(e).__name__}: {e}"
        finally:
            writer.close()


async def run_producers(args):
    host, port = args.bootstrap.rsplit(":", 1)
    producers = [Producer(args.first + i, args.total, args, record_batch(os.urandom(args.size)))
                 for i in range(args.count)]
    await asyncio.gather(*(p.connect(host, int(port)) for p in producers))
    loop = asyncio.get_running_loop()
    start_at = await loop.run_in_executor(None, ready_then_wait)
    start_mono = time.monotonic() - (time.time() - start_at)
    cpu0, t0 = cpu_s(), time.time()
    await asyncio.gather(*(p.run(start_mono) for p in producers))
    errs = [p.first_error for p in producers if p.first_error]
    return {"producers": len(producers), "sent": sum(p.sent for p in producers),
            "acked": sum(len(p.latencies_ms) for p in producers),
            "errors": sum(p.errors for p in producers), "first_error": errs[0] if errs else None,
            "latencies_ms": [x for p in producers for x in p.latencies_ms],
            "t_start": t0, "t_end": time.time(), "cpu_s": cpu_s() - cpu0}


async def run_probe(args):
    host, port = args.bootstrap.rsplit(":", 1)
    reader, writer = await open_client(host, int(port), None)
    loop = asyncio.get_running_loop()
    start_at = await loop.run_in_executor(None, ready_then_wait)
    interval_s = args.interval_ms / 1000.0
    due = time.monotonic() - (time.time() - start_at) + args.delay
    stop_at = due + args.duration
    latencies, late = [], 0
    correlation = 100
    cpu0, t0 = cpu_s(), time.time()
    try:
        while due < stop_at:
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                late += 1
            correlation += 1
            frame = metadata_request(correlation) if args.api == "metadata" else api_versions_request(correlation)
            t = time.perf_counter()
            await asyncio.wait_for(call(reader, writer, frame, correlation), RESPONSE_TIMEOUT_S)
            latencies.append(round((time.perf_counter() - t) * 1000, 3))
            due += interval_s
    except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, RuntimeError) as e:
        return {"error": f"probe: {type(e).__name__}: {e}", "latencies_ms": latencies}
    finally:
        writer.close()
    return {"latencies_ms": latencies, "late_sends": late, "t_start": t0, "t_end": time.time(),
            "cpu_s": cpu_s() - cpu0}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["producers", "probe"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic")
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--total", type=int, default=1)
    ap.add_argument("--rate", type=float, default=20.0, help="producers: requests per second each")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--interval-ms", type=float, default=10.0)
    ap.add_argument("--delay", type=float, default=0.0, help="probe: seconds after the start time")
    ap.add_argument("--api", choices=["metadata", "versions"], default="metadata", help="probe: what to send")
    args = ap.parse_args()
    try:
        result = asyncio.run(run_producers(args) if args.mode == "producers" else run_probe(args))
    except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, RuntimeError) as e:
        result = {"error": f"{args.mode}: {type(e).__name__}: {e}"}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    sys.exit(main())

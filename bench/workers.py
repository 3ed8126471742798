"""Load-generator processes: one librdkafka client (confluent-kafka) per process.

The driver (run.py) starts several of these as separate Python processes, so the
load is not limited by one interpreter, and reads one JSON object from each
one's stdout. Every worker connects and fetches metadata first, then says it is
ready and waits for the start time the driver sends on stdin, so all of them
load the broker at once.

  workers.py produce  --bootstrap B --topic T --size N --acks A --duration S
  workers.py rate     ... --rate R        (fixed rate; reports librdkafka's per-message latency)
                      [--until-file F --send-times]  (stop early once F exists; keep each send time)
  workers.py consume  --bootstrap B --topic T --partitions 0,2 --expect N
  workers.py e2e      --bootstrap B --topic T --partitions 0,1,2,3 --duration S
"""

import argparse
import json
import os
import struct
import sys
import time

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaException, Producer, TopicPartition

# Producer settings for the throughput runs: large batches, a short linger so
# batches fill, a deep local queue so produce() rarely blocks.
LINGER_MS_THROUGHPUT = 5
LINGER_MS_LATENCY = 1
QUEUE_MESSAGES_MAX = 1_000_000
QUEUE_KBYTES_MAX = 1_048_576  # 1 GiB of local queue
BATCH_BYTES = 1_000_000
# A full local queue: serve delivery reports for this long, then retry produce().
QUEUE_FULL_POLL_S = 0.001
# The rate-limited producer tops up its quota at this period.
RATE_TICK_S = 0.001
# With --until-file, look for the file every this many ticks (about 50 ms).
UNTIL_FILE_CHECK_TICKS = 50
FLUSH_TIMEOUT_S = 120.0
CONSUME_BATCH = 10_000
CONSUME_POLL_S = 0.5
# A consumer that sees nothing for this long gives up (the run then reports it).
CONSUME_IDLE_TIMEOUT_S = 30.0
# E2E values start with the producer's wall clock in ns (big-endian u64).
TIMESTAMP = struct.Struct(">Q")
METADATA_TIMEOUT_S = 30.0
FETCH_QUEUE_BACKOFF_MS = 10


def producer_config(args, linger_ms):
    return {
        "bootstrap.servers": args.bootstrap,
        "acks": args.acks,
        "linger.ms": linger_ms,
        "batch.size": BATCH_BYTES,
        "queue.buffering.max.messages": QUEUE_MESSAGES_MAX,
        "queue.buffering.max.kbytes": QUEUE_KBYTES_MAX,
        "compression.type": "none",
        "enable.idempotence": False,
    }


def ready_then_wait():
    """Say ready on stdout, read the common start time from stdin, sleep until it.

    The driver sends the start time only when every worker is ready, so the
    processes' start-up (imports, connection, metadata) is outside the measurement.
    Returns the start time (wall clock, seconds).
    """
    print(json.dumps({"ready": True}), flush=True)
    line = sys.stdin.readline()
    if not line:
        raise SystemExit("driver closed stdin before sending the start time")
    start_at = float(line)
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    return start_at


def cpu_s():
    t = os.times()
    return t.user + t.system


def run_produce(args):
    """Produce as fast as the client can for `duration` seconds, then flush."""
    state = {"errors": 0, "first_error": None}

    def on_delivery(err, _msg):
        state["errors"] += 1
        state["first_error"] = state["first_error"] or str(err)

    # Only failed deliveries call back: a Python callback per acknowledged record
    # would cost the load generator more CPU than the broker spends on the record.
    conf = producer_config(args, LINGER_MS_THROUGHPUT)
    conf.update({"delivery.report.only.error": True, "on_delivery": on_delivery})
    p = Producer(conf)
    p.list_topics(args.topic, timeout=METADATA_TIMEOUT_S)
    value = os.urandom(args.size)

    ready_then_wait()
    cpu0, t0 = cpu_s(), time.time()
    stop_at = t0 + args.duration
    sent = 0
    produce = p.produce
    topic = args.topic
    # Check the clock once per burst, not per record: the loop is the bottleneck.
    while time.time() < stop_at:
        for _ in range(1000):
            try:
                produce(topic, value)
                sent += 1
            except BufferError:
                p.poll(QUEUE_FULL_POLL_S)
        p.poll(0)
    remaining = p.flush(FLUSH_TIMEOUT_S)
    t1 = time.time()
    acked = sent - state["errors"] - remaining
    return {"sent": sent, "acked": acked, "errors": state["errors"],
            "first_error": state["first_error"], "unflushed": remaining,
            "bytes": acked * args.size, "t_start": t0, "t_end": t1,
            "cpu_s": cpu_s() - cpu0}


def run_rate(args):
    """Produce at a fixed rate; collect librdkafka's produce-to-ack latency per record."""
    p = Producer(producer_config(args, LINGER_MS_LATENCY))
    p.list_topics(args.topic, timeout=METADATA_TIMEOUT_S)
    pad = os.urandom(max(0, args.size - TIMESTAMP.size))
    latencies_ms = []
    sent_at = []  # wall clock of each acknowledged record's produce(), with --send-times
    state = {"errors": 0, "first_error": None}

    def on_delivery(err, msg):
        if err is None:
            latencies_ms.append(msg.latency() * 1e3)
            if args.send_times:
                sent_at.append(time.time() - msg.latency())
        else:
            state["errors"] += 1
            state["first_error"] = state["first_error"] or str(err)

    ready_then_wait()
    t0 = time.time()
    stop_at = t0 + args.duration
    sent = 0
    ticks = 0
    while True:
        now = time.time()
        if now >= stop_at:
            break
        ticks += 1
        if args.until_file and ticks % UNTIL_FILE_CHECK_TICKS == 0 and os.path.exists(args.until_file):
            break
        due = int((now - t0) * args.rate)
        while sent < due:
            try:
                p.produce(args.topic, TIMESTAMP.pack(time.time_ns()) + pad, on_delivery=on_delivery)
                sent += 1
            except BufferError:
                p.poll(QUEUE_FULL_POLL_S)
        p.poll(0)
        time.sleep(RATE_TICK_S)
    remaining = p.flush(FLUSH_TIMEOUT_S)
    t1 = time.time()
    return {"sent": sent, "acked": len(latencies_ms), "errors": state["errors"],
            "first_error": state["first_error"], "unflushed": remaining,
            "t_start": t0, "t_end": t1, "latencies_ms": latencies_ms,
            **({"sent_at": sent_at} if args.send_times else {})}


def consumer_for(args, offset):
    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": f"bench-{os.getpid()}",
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        "fetch.max.bytes": 52_428_800,
        "max.partition.fetch.bytes": 10_485_760,
        # A Python consumer is slower than the broker: when its local queue fills, librdkafka
        # pauses fetching for fetch.queue.backoff.ms (default 1000 ms), which would leave the
        # broker idle for whole seconds of the measurement.
        "fetch.queue.backoff.ms": FETCH_QUEUE_BACKOFF_MS,
    }
    if args.fetch_wait_ms is not None:  # otherwise librdkafka's default (500 ms)
        conf["fetch.wait.max.ms"] = args.fetch_wait_ms
    c = Consumer(conf)
    c.assign([TopicPartition(args.topic, int(p), offset) for p in args.partitions.split(",")])
    return c


def run_consume(args):
    """Read the assigned partitions from the start until `expect` records arrived."""
    c = consumer_for(args, OFFSET_BEGINNING)
    ready_then_wait()
    cpu0, t0 = cpu_s(), time.time()
    records = nbytes = 0
    last_progress = time.monotonic()
    error = None
    try:
        while records < args.expect:
            msgs = c.consume(CONSUME_BATCH, CONSUME_POLL_S)
            if not msgs:
                if time.monotonic() - last_progress > CONSUME_IDLE_TIMEOUT_S:
                    error = f"no records for {CONSUME_IDLE_TIMEOUT_S:.0f}s after {records}"
                    break
                continue
            last_progress = time.monotonic()
            for m in msgs:
                if m.error() is None:
                    records += 1
                    nbytes += len(m.value())
                else:
                    error = error or str(m.error())
    finally:
        t1 = time.time()
        c.close()
    return {"records": records, "bytes": nbytes, "t_start": t0, "t_end": t1, "error": error,
            "cpu_s": cpu_s() - cpu0}


def run_e2e(args):
    """Read new records as they arrive; latency = now - the timestamp in the value."""
    c = consumer_for(args, OFFSET_END)
    # Let the assignment resolve its end offsets before the producers begin.
    c.consume(1, 1.0)
    stop_at = ready_then_wait() + args.duration + args.grace
    cpu0 = cpu_s()
    latencies_ms = []
    error = None
    try:
        while time.time() < stop_at:
            # consume(n, timeout) waits for n records or the timeout, which would add
            # up to the timeout to every latency: block on poll() for the first record,
            # then take whatever else has already arrived without waiting.
            first = c.poll(CONSUME_POLL_S)
            if first is None:
                continue
            for m in [first] + c.consume(CONSUME_BATCH, 0):
                now_ns = time.time_ns()
                if m.error() is not None:
                    error = error or str(m.error())
                    continue
                v = m.value()
                if len(v) >= TIMESTAMP.size:
                    latencies_ms.append((now_ns - TIMESTAMP.unpack_from(v)[0]) / 1e6)
    finally:
        c.close()
    return {"records": len(latencies_ms), "error": error, "latencies_ms": latencies_ms,
            "cpu_s": cpu_s() - cpu0}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["produce", "rate", "consume", "e2e"])
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--acks", default="all")
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--rate", type=float, default=1000.0)
    ap.add_argument("--grace", type=float, default=5.0)
    ap.add_argument("--partitions", default="0")
    ap.add_argument("--expect", type=int, default=0)
    ap.add_argument("--fetch-wait-ms", type=int, default=None)
    ap.add_argument("--until-file", default=None, help="rate: stop once this file exists")
    ap.add_argument("--send-times", action="store_true", help="rate: report each record's send time")
    args = ap.parse_args()
    run = {"produce": run_produce, "rate": run_rate, "consume": run_consume, "e2e": run_e2e}[args.mode]
    try:
        result = run(args)
    except KafkaException as e:
        result = {"error": f"{args.mode}: {e}"}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    sys.exit(main())

"""A broker short of file descriptors refuses new partitions with a clear error, not a timeout.

The broker runs under `prlimit --nofile=LIMIT:LIMIT`. Each partition holds 1 descriptor (its log;
its index files only while it takes writes) and the broker keeps 1000 in reserve (chronik-server/src/fd_limit.rs), so a topic that fits is created and
one that does not is refused at once with POLICY_VIOLATION naming the limit — and nothing of it is
created — while the broker goes on serving the first topic.
"""

import shutil
import time

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from chronik_broker import Broker
from kafka_helpers import make_producer

LIMIT = 1400
FITS = 100  # 100 descriptors + the reserve + what a fresh broker has open (tens) < LIMIT
TOO_MANY = 400  # 400 + the reserve + the ~150 open after FITS > LIMIT
CREATE_TIMEOUT_S = 60


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit (util-linux) not installed")
def test_create_beyond_the_descriptor_budget_is_refused_clearly(tmp_path):
    b = Broker(tmp_path / "node", command_prefix=("prlimit", f"--nofile={LIMIT}:{LIMIT}"))
    b.start()
    try:
        log = b.log_path.read_text(errors="replace")
        assert f"soft={LIMIT}" in log and "open file limit" in log, "the limit is logged at start"
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        admin.create_topics([NewTopic("fits", FITS, 1)])["fits"].result(timeout=CREATE_TIMEOUT_S)

        started = time.monotonic()
        with pytest.raises(KafkaException) as refused:
            admin.create_topics([NewTopic("too-many", TOO_MANY, 1)], operation_timeout=30)["too-many"].result(
                timeout=CREATE_TIMEOUT_S)
        err = refused.value.args[0]
        assert err.code() == KafkaError.POLICY_VIOLATION, err
        assert "open file limit" in err.str() and str(LIMIT) in err.str(), err.str()
        assert time.monotonic() - started < 10, "refused at once, not after a timeout"

        topics = admin.list_topics(timeout=10).topics
        assert "too-many" not in topics, "nothing of the refused topic was created"
        assert len(topics["fits"].partitions) == FITS

        producer = make_producer(b.bootstrap)
        delivered = []
        producer.produce("fits", b"still serving", partition=FITS - 1, on_delivery=lambda e, m: delivered.append(e))
        producer.flush(30)
        assert delivered == [None], delivered
    finally:
        b.stop()

"""T3: metadata reads are linearizable. Right after CreateTopics returns, every broker's Metadata
lists the topic — even a broker whose link to the metadata leader loses packets, so that it applies
new entries late. The broker asks the leader for a read index and waits until it has applied that
far before answering (api::read_barrier).

That the barrier is what makes the difference is shown beside it: the lagging broker's own applied
state (/admin/status, which takes no read index) is sampled at the same moments and printed — it
is behind some of the time — while its Metadata answer must never be.
"""

import time

from confluent_kafka.admin import AdminClient, NewTopic

from kafka_helpers import raw_metadata_topics

TOPICS = 25
LOSS_PERCENT = 30


def test_t3_metadata_read_after_create_topics(net_cluster):
    with net_cluster(3) as (cluster, net):
        leader, _ = cluster.wait_agreed_leader()
        lagging = [n for n in sorted(cluster.nodes) if n != leader][-1]
        net.lose(leader, lagging, LOSS_PERCENT)
        admin = AdminClient({"bootstrap.servers": cluster.nodes[leader].bootstrap})
        stale_metadata, stale_applied, slowest = [], 0, 0.0
        for i in range(TOPICS):
            name = f"t3-{i}"
            admin.create_topics([NewTopic(name, num_partitions=1, replication_factor=3)],
                                operation_timeout=30)[name].result(timeout=60)
            # The lagging broker's own state, read without a read index, at the same moment ...
            applied = {p["topic"] for p in cluster.nodes[lagging].status()["partitions"]}
            stale_applied += name not in applied
            # ... and every broker's Metadata answer.
            for n in sorted(cluster.nodes):
                t0 = time.monotonic()
                names = raw_metadata_topics(cluster.nodes[n].bootstrap)
                slowest = max(slowest, time.monotonic() - t0)
                if name not in names:
                    stale_metadata.append((name, n))
        print(f"[t3] {TOPICS} topics created with {LOSS_PERCENT}% loss from the leader (node {leader}) to node "
              f"{lagging}: Metadata missing a just-created topic {len(stale_metadata)} times; node {lagging}'s "
              f"applied state behind {stale_applied} times; slowest Metadata {slowest * 1000:.0f} ms")
        assert not stale_metadata, f"Metadata right after CreateTopics lacked the topic: {stale_metadata[:5]}"

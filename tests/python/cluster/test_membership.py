"""Dynamic membership: a running cluster grows and shrinks while clients keep working.

- A single node grows to three (through `cluster add-node`, or by `start --join`) under an
  acks=all load: node 1 leads throughout in one term, 2 and 3 join as learners and end as
  voters [1, 2, 3], and every record is readable through every node.
- Three nodes grow to four and five and shrink back to three under idempotent acks=all load:
  every node lists the new member within 30 s, the metadata leader and term do not change,
  a topic created after the addition has replicas on the new node, voters stay odd (node 5 is
  removed with --force, node 4 drains first), and the checker finds every acknowledged record at
  its offset.
- Refusals: duplicate id, a change sent to a follower (names the leader), a malformed address,
  a concurrent change, a removal that breaks the quorum, a removed id coming back, a change
  from another host without a token, a wrong token; and leadership transfer to a named node.
"""

import http.client
import json
import threading
import time

from confluent_kafka.admin import AdminClient, NewTopic

from chronik_broker import Broker, free_ports
from chronik_cluster import Cluster, cli, cli_json
from checker import create_rf3_topic, read_back_violations, start_load
from crash_load import ProducerLoad

MEMBERS_TIMEOUT_S = 30.0
TRANSFER_TIMEOUT_S = 10.0
ACKED_STEP = 1_000
GROWTH_PARTITIONS = 3
GROWTH_PRODUCER = {"enable.idempotence": True, "acks": "all", "retries": 1_000_000,
                   "message.timeout.ms": 120_000, "linger.ms": 5}


def wait_members(cluster, ids, voters=None, timeout_s=MEMBERS_TIMEOUT_S):
    """Until every running node lists `ids` as cluster_nodes (and `voters` as voters)."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        try:
            last = cluster.health_views()
            if all(h.get("cluster_nodes") == sorted(ids) and (voters is None or h.get("voters") == sorted(voters))
                   for h in last.values()):
                return last
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise AssertionError(f"not every node lists {sorted(ids)} (voters {voters}) within {timeout_s:.0f}s: {last}")


def post(addr, path, body, token=None, source=None):
    """POST JSON to an admin endpoint, optionally from another loopback source address;
    returns (status, answer)."""
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=90,
                                      source_address=(source, 0) if source else None)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    try:
        conn.request("POST", path, json.dumps(body), headers)
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read() or b"{}")
    finally:
        conn.close()


def read_through_every_node(cluster, topic, partitions, load):
    """Reads the topic back through each running node alone; every read must pass the checker."""
    for i in cluster.running():
        violations = read_back_violations(cluster.nodes[i].bootstrap, load, topic, partitions)
        assert not violations, f"read through node {i}:\n" + "\n".join(violations)


def add_body(cluster, node_id):
    """The /admin/add-node body for node `node_id`'s addresses."""
    n = cluster.nodes[node_id]
    return {"node_id": node_id, "kafka_addr": f"127.0.0.1:{n.kafka_port}", "wal_addr": f"127.0.0.1:{n.wal_port}",
            "raft_addr": f"127.0.0.1:{n.raft_port}", "admin_addr": n.admin_addr}


def test_single_node_grows_to_three_under_load(tmp_path):
    for how in ("cli", "join"):
        cluster = Cluster(tmp_path / how, nodes=1, replication_factor=1, min_insync_replicas=1)
        try:
            grow_from_one(cluster, how)
        except BaseException:
            print(cluster.log_tails())
            raise
        finally:
            cluster.stop()


def grow_from_one(cluster, how):
    cluster.start()
    leader, term = cluster.wait_agreed_leader()
    assert leader == 1
    topic = f"grow-{how}"
    admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=GROWTH_PARTITIONS, replication_factor=1)])[topic].result(30)
    load = ProducerLoad(cluster.nodes[1].bootstrap, topic, GROWTH_PARTITIONS, GROWTH_PRODUCER, producers=2,
                        pause_every=50, pause_s=0.005).start()
    node1_pid = cluster.nodes[1].proc.pid
    try:
        load.wait_more_acked(ACKED_STEP, "on the single node")
        for new_id, voters in ((2, [1]), (3, [1, 2, 3])):
            node = cluster.new_node(new_id, join=(how == "join"))
            node.spawn()
            if how == "cli":
                assert node.wait_status("waiting_to_join")["cluster_nodes"] == []
                answer = cli_json("add-node", *cluster.add_args(new_id), "--wait", "--admin", cluster.nodes[1].admin_addr)
                assert answer["success"] is True, answer
            node.wait_status("ok")
            views = wait_members(cluster, range(1, new_id + 1), voters)
            assert all((h["leader_id"], h["term"]) == (1, term) for h in views.values()), \
                f"the leader or term changed when node {new_id} was added: {views}"
            load.wait_more_acked(ACKED_STEP, f"after adding node {new_id}")
        assert views[2]["learners"] == [] and views[3]["voters"] == [1, 2, 3]
    finally:
        load.stop()
    assert not load.fatal, f"fatal producer errors: {load.fatal}"
    assert cluster.nodes[1].proc.pid == node1_pid and cluster.nodes[1].is_running(), "node 1 was restarted"
    read_through_every_node(cluster, topic, GROWTH_PARTITIONS, load)


def test_three_grow_to_five_and_shrink_to_three_under_load(cluster):
    topic = "membership"
    create_rf3_topic(cluster, topic)
    leader, term = cluster.wait_agreed_leader()
    follower = next(i for i in cluster.nodes if i != leader)
    load = start_load(cluster, topic)
    try:
        load.wait_more_acked(ACKED_STEP, "before growing")
        node4 = cluster.new_node(4)
        node4.spawn()
        node4.wait_status("waiting_to_join")
        # Through a follower's admin address: the CLI finds the leader itself.
        answer = cli_json("add-node", *cluster.add_args(4), "--admin", cluster.nodes[follower].admin_addr)
        assert answer["learners"] == [4] and answer["voters"] == [1, 2, 3], answer
        t0 = time.monotonic()
        views = wait_members(cluster, [1, 2, 3, 4], [1, 2, 3])
        print(f"[membership] every node lists node 4 after {time.monotonic() - t0:.1f}s")
        assert {(h["leader_id"], h["term"]) for h in views.values()} == {(leader, term)}, views
        load.wait_more_acked(ACKED_STEP, "after adding node 4")

        # A topic created now places replicas on node 4.
        create_rf3_topic(cluster, "after-four")
        placed = cluster.partitions("after-four")
        assert any(4 in p["replicas"] for p in placed.values()), f"no replica on node 4: {placed}"

        node5 = cluster.new_node(5, join=True)
        node5.spawn()
        node5.wait_status("ok")
        wait_members(cluster, [1, 2, 3, 4, 5], [1, 2, 3, 4, 5])
        load.wait_more_acked(ACKED_STEP, "after node 5 joined")

        # Node 5 may hold replicas by now (the rebalancer moves some onto it). A forced removal is the
        # path for a node that is gone: at once, its replicas re-created on the others from the ISR.
        answer = cli_json("remove-node", 5, "--force", "--config", cluster.nodes[1].config_path)
        assert len(answer["voters"]) == 3 and 5 not in answer["voters"] + answer["learners"], answer
        voters = answer["voters"]
        # Node 4 holds replicas: without --force it drains first (they move to the others), then leaves.
        rc, out, err = cli("remove-node", 4, "--wait", "--config", cluster.nodes[1].config_path, timeout_s=180)
        assert rc == 0 and "draining" in out and "removed" in out, f"removing node 4: rc={rc} {out} {err}"
        # The removed nodes hear nothing more from the cluster: stop them, then look at the rest.
        for n in (node4, node5):
            n.stop()
        views = wait_members(cluster, voters, voters)
        assert {h["leader_id"] for h in views.values()} == {leader}, views
        load.wait_more_acked(ACKED_STEP, "back on three nodes")
    finally:
        load.stop()
    violations = read_back_violations(cluster.bootstrap, load, topic)
    assert not violations, "\n".join(violations)


def test_refusals_and_leadership_transfer(cluster):
    leader, term = cluster.wait_agreed_leader()
    followers = [i for i in sorted(cluster.nodes) if i != leader]
    leader_admin = cluster.nodes[leader].admin_addr
    cfg = cluster.nodes[1].config_path

    node7 = cluster.new_node(7)
    rc, _, err = cli("add-node", 2, *cluster.add_args(7)[1:], "--config", cfg)
    assert rc != 0 and "already exists" in err, f"duplicate id: rc={rc} {err}"

    body7 = add_body(cluster, 7)
    status, answer = post(cluster.nodes[followers[0]].admin_addr, "/admin/add-node", body7)
    assert status == 421 and answer["leader_id"] == leader and answer["leader_admin"] == leader_admin, (status, answer)

    rc, _, err = cli("add-node", 8, "--kafka", "localhost", "--wal", "127.0.0.1:1", "--raft", "127.0.0.1:2", "--config", cfg)
    assert rc != 0 and "invalid address format" in err, f"malformed address: rc={rc} {err}"

    # Node 7 is not running yet, so its addition waits for it to catch up: a second change meanwhile
    # is refused, naming the one in progress; once node 7 starts, the first completes.
    first = {}
    adder = threading.Thread(target=lambda: first.update(answer=post(leader_admin, "/admin/add-node", body7)))
    adder.start()
    deadline = time.monotonic() + 10
    while True:
        status, answer = post(leader_admin, "/admin/promote", {"node_id": 7})
        if status == 409 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert status == 409 and "adding node 7" in answer["message"], (status, answer)
    node7.spawn()
    adder.join(timeout=90)
    assert first["answer"][0] == 200 and 7 in first["answer"][1]["learners"], first
    node7.wait_status("ok")

    status, answer = post(leader_admin, "/admin/remove-node", {"node_id": 7}, source="127.0.0.2")
    assert status == 403 and "local host" in answer["message"], (status, answer)

    # At once when node 7 holds nothing yet; after a drain when the rebalancer was quicker.
    cli_json("remove-node", 7, "--wait", "--config", cfg)
    members = cli_json("members", "--config", cfg)
    assert 7 not in [n["id"] for n in members["nodes"]], members

    # With the learner gone, removing a voter would leave one: refused.
    rc, _, err = cli("remove-node", followers[0], "--config", cfg)
    assert rc != 0 and "could not survive" in err, f"removal breaking the quorum: rc={rc} {err}"

    node7.stop()
    node7.spawn()
    node7.proc.wait(timeout=60)
    assert node7.proc.returncode != 0
    assert "was removed from the cluster" in node7.log_tail(), node7.log_tail()

    target = followers[-1]
    t0 = time.monotonic()
    answer = cli_json("transfer-leader", target, "--config", cfg)
    assert answer["success"] is True, answer
    new_leader, new_term = cluster.wait_agreed_leader(timeout_s=TRANSFER_TIMEOUT_S)
    print(f"[membership] leadership moved to node {new_leader} in {time.monotonic() - t0:.1f}s (term {term} → {new_term})")
    assert new_leader == target and new_term > term


def test_admin_token_guards_changes(tmp_path):
    with Broker(tmp_path / "token", extra_config='admin_token = "s3cret"') as b:
        status, answer = post(b.admin_addr, "/admin/promote", {"node_id": 9}, token="wrong")
        assert status == 401 and answer["success"] is False, (status, answer)
        status, answer = post(b.admin_addr, "/admin/promote", {"node_id": 9})
        assert status == 401, (status, answer)
        # The right token passes; node 9 is simply unknown.
        status, answer = post(b.admin_addr, "/admin/promote", {"node_id": 9}, token="s3cret")
        assert status == 404 and "not a member" in answer["message"], (status, answer)
        rc, _, err = cli("promote", 9, "--admin", b.admin_addr, token="wrong")
        assert rc != 0 and "401" in err, err


def test_an_addition_cut_by_a_leader_kill_is_whole_or_absent_and_a_retry_succeeds(cluster):
    leader, _ = cluster.wait_agreed_leader()
    cfg = cluster.nodes[next(i for i in cluster.nodes if i != leader)].config_path
    node4 = cluster.new_node(4)  # not running: the addition waits for it to catch up
    args = cluster.add_args(4)
    body = add_body(cluster, 4)
    outcome = {}

    def add():
        try:
            outcome["answer"] = post(cluster.nodes[leader].admin_addr, "/admin/add-node", body)
        except (OSError, http.client.HTTPException) as e:
            outcome["error"] = repr(e)

    adder = threading.Thread(target=add)
    adder.start()
    deadline = time.monotonic() + 10
    while 4 not in cluster.nodes[leader].health()["cluster_nodes"] and time.monotonic() < deadline:
        time.sleep(0.05)
    cluster.kill9(leader)
    adder.join(timeout=90)
    assert "error" in outcome or outcome["answer"][0] != 200, f"the addition answered despite the kill: {outcome}"
    survivors = [i for i in cluster.nodes if i not in (leader, 4)]
    cluster.wait_agreed_leader(survivors)
    views = {i: cluster.nodes[i].health() for i in survivors}
    seen = {tuple(h["cluster_nodes"]) for h in views.values()}
    assert len(seen) == 1 and seen.pop() in ((1, 2, 3), (1, 2, 3, 4)), f"survivors disagree on the members: {views}"
    print(f"[membership] after the leader's kill mid-add the survivors list {views[survivors[0]]['cluster_nodes']}")

    cluster.restart(leader)
    cluster.wait_agreed_leader([i for i in cluster.nodes if i != 4])
    node4.spawn()
    answer = cli_json("add-node", *args, "--config", cfg)
    assert 4 in answer["learners"], answer
    node4.wait_status("ok")
    wait_members(cluster, [1, 2, 3, 4], [1, 2, 3])


def test_replace_a_voter_under_load(cluster):
    topic = "replace"
    create_rf3_topic(cluster, topic)
    leader, _ = cluster.wait_agreed_leader()
    old = next(i for i in sorted(cluster.nodes) if i != leader)
    cfg = cluster.nodes[leader].config_path
    load = start_load(cluster, topic)
    try:
        load.wait_more_acked(ACKED_STEP, "before the replacement")
        node4 = cluster.new_node(4)
        node4.spawn()
        steps = cli_json("replace", old, *cluster.add_args(4), "--force", "--config", cfg)
        assert [s["success"] for s in steps] == [True] * len(steps), steps
        voters = sorted(set(cluster.initial_ids) - {old} | {4})
        assert steps[-1]["voters"] == voters and steps[-1]["learners"] == [], steps
        cluster.nodes[old].stop()
        wait_members(cluster, voters, voters)
        load.wait_more_acked(ACKED_STEP, f"after replacing node {old} by node 4")
    finally:
        load.stop()
    violations = read_back_violations(cluster.bootstrap, load, topic)
    assert not violations, "\n".join(violations)


def test_a_restart_with_new_addresses_updates_every_view(cluster):
    leader, _ = cluster.wait_agreed_leader()
    victim = next(i for i in sorted(cluster.nodes) if i != leader)
    node = cluster.nodes[victim]
    node.stop()
    node.kafka_port, node.raft_port = free_ports(2)
    node.write_cluster_config(cluster.nodes.values(), cluster.settings)
    node.start()
    node.wait_status("ok")
    want_kafka, want_raft = f"127.0.0.1:{node.kafka_port}", f"127.0.0.1:{node.raft_port}"
    deadline = time.monotonic() + MEMBERS_TIMEOUT_S
    while time.monotonic() < deadline:
        seen = {n["id"]: n for n in cluster.leader_status()["nodes"]}[victim]
        if seen.get("kafka_addr") == want_kafka and seen.get("raft_addr") == want_raft:
            break
        time.sleep(0.2)
    assert (seen.get("kafka_addr"), seen.get("raft_addr")) == (want_kafka, want_raft), seen
    # Metadata (Kafka clients) and the CLI follow; Raft reaches the node at its new address.
    md = AdminClient({"bootstrap.servers": node.bootstrap}).list_topics(timeout=10)
    assert md.brokers[victim].port == node.kafka_port, md.brokers
    members = cli_json("members", "--admin", cluster.nodes[leader].admin_addr)
    assert want_raft in json.dumps(members), members
    wait_members(cluster, [1, 2, 3], [1, 2, 3])
    assert node.health()["leader_id"] == leader

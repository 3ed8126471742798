//! Table and case tests of the metadata state machine.

use super::*;

fn node(port: u16) -> BrokerNode {
    BrokerNode { kafka_addr: format!("localhost:{port}"), ..Default::default() }
}

fn register(id: i32) -> MetaCommand {
    MetaCommand::RegisterBroker { id, node: node((9000 + id) as u16), incarnation: None }
}

fn create(name: &str, id: u8, replicas: Vec<Vec<i32>>) -> MetaCommand {
    MetaCommand::CreateTopic { name: name.into(), topic_id: [id; 16], replicas, configs: BTreeMap::new() }
}

fn set_at(topic: &str, partition: i32, leader: i32, isr: Vec<i32>, epoch: i32) -> MetaCommand {
    MetaCommand::SetPartitionState { topic: topic.into(), partition, leader, isr, expected_partition_epoch: epoch }
}

/// A change computed from a fresh partition (epoch 0).
fn set(topic: &str, partition: i32, leader: i32, isr: Vec<i32>) -> MetaCommand {
    set_at(topic, partition, leader, isr, 0)
}

/// A change computed from the partition as `s` has it now.
fn next(s: &MetadataState, topic: &str, partition: i32, leader: i32, isr: Vec<i32>) -> MetaCommand {
    let epoch = s.topics[topic].partitions[partition as usize].partition_epoch;
    set_at(topic, partition, leader, isr, epoch)
}

fn decided(term: u64, decision: MetaCommand) -> MetaCommand {
    MetaCommand::Decided { term, decision: Box::new(decision) }
}

/// Three registered brokers and topic "t" with two partitions on [1,2,3] and [2,3,1].
fn base() -> MetadataState {
    let mut s = MetadataState::default();
    for c in [register(1), register(2), register(3), create("t", 7, vec![vec![1, 2, 3], vec![2, 3, 1]])] {
        s.apply(&c);
    }
    s
}

fn invalid_partitions(r: &MetaResponse) -> bool {
    matches!(r, MetaResponse::InvalidPartitions(_))
}
fn invalid_request(r: &MetaResponse) -> bool {
    matches!(r, MetaResponse::InvalidRequest(_))
}

/// Each case: commands applied to `base()`, the expected last response, and whether the state
/// must be unchanged from `base()` (a refused command applies nothing).
#[test]
fn table_of_commands() {
    type Check = fn(&MetaResponse) -> bool;
    let cases: Vec<(&str, Vec<MetaCommand>, Check, bool)> = vec![
        ("duplicate create", vec![create("t", 8, vec![vec![1]])], |r| *r == MetaResponse::TopicAlreadyExists, true),
        ("delete unknown", vec![MetaCommand::DeleteTopic { name: "nope".into() }], |r| *r == MetaResponse::UnknownTopic, true),
        ("delete known", vec![MetaCommand::DeleteTopic { name: "t".into() }], |r| *r == MetaResponse::Ok, false),
        ("create topic id reused", vec![create("u", 7, vec![vec![1]])], invalid_request, true),
        ("create zero topic id", vec![create("u", 0, vec![vec![1]])], invalid_request, true),
        ("create no partitions", vec![create("u", 9, vec![])], invalid_partitions, true),
        ("create empty replica list", vec![create("u", 9, vec![vec![1], vec![]])], invalid_partitions, true),
        ("create unknown broker", vec![create("u", 9, vec![vec![1, 4]])], invalid_partitions, true),
        ("create duplicate replica", vec![create("u", 9, vec![vec![1, 1]])], invalid_partitions, true),
        ("create bad name", vec![create("a/b", 9, vec![vec![1]])], invalid_request, true),
        ("create empty name", vec![create("", 9, vec![vec![1]])], invalid_request, true),
        ("partitions on unknown topic", vec![MetaCommand::CreatePartitions { name: "x".into(), new_replicas: vec![vec![1]] }], |r| *r == MetaResponse::UnknownTopic, true),
        ("partitions none added", vec![MetaCommand::CreatePartitions { name: "t".into(), new_replicas: vec![] }], invalid_partitions, true),
        ("partitions bad broker", vec![MetaCommand::CreatePartitions { name: "t".into(), new_replicas: vec![vec![9]] }], invalid_partitions, true),
        ("partitions more", vec![MetaCommand::CreatePartitions { name: "t".into(), new_replicas: vec![vec![3, 1]] }], |r| *r == MetaResponse::Ok, false),
        ("set state unknown topic", vec![set("x", 0, 1, vec![1])], |r| *r == MetaResponse::UnknownTopic, true),
        ("set state partition out of range", vec![set("t", 2, 1, vec![1])], invalid_partitions, true),
        ("set state negative partition", vec![set("t", -1, 1, vec![1])], invalid_partitions, true),
        ("set state leader not in isr", vec![set("t", 0, 1, vec![2, 3])], invalid_partitions, true),
        ("set state isr not replica", vec![set("t", 0, 1, vec![1, 4])], invalid_partitions, true),
        ("set state stale partition epoch", vec![set_at("t", 0, 1, vec![1, 2], 3)], invalid_partitions, true),
        ("set state no leader", vec![set("t", 0, NO_LEADER, vec![])], |r| *r == MetaResponse::Ok, false),
        ("register negative id", vec![register(-1)], invalid_request, true),
        ("fence unknown broker", vec![MetaCommand::FenceBroker { id: 9 }], invalid_request, true),
        ("producer ids zero count", vec![MetaCommand::AllocateProducerIds { broker: 1, count: 0 }], invalid_request, true),
        ("producer ids too many", vec![MetaCommand::AllocateProducerIds { broker: 1, count: PRODUCER_ID_BLOCK_MAX + 1 }], invalid_request, true),
    ];
    for (what, cmds, check, unchanged) in cases {
        let mut s = base();
        let mut last = MetaResponse::Ok;
        for c in &cmds {
            last = s.apply(c);
        }
        assert!(check(&last), "{what}: unexpected response {last:?}");
        assert_eq!(s == base(), unchanged, "{what}: state changed = {}", s != base());
    }
}

#[test]
fn create_topic_sets_leader_epoch_and_isr() {
    let s = base();
    let t = &s.topics["t"];
    assert_eq!(t.topic_id, [7; 16]);
    assert_eq!(t.partitions.len(), 2);
    assert_eq!(
        t.partitions[1],
        PartitionRecord { replicas: vec![2, 3, 1], leader: 2, leader_epoch: 0, isr: vec![2, 3, 1], ..Default::default() }
    );
}

#[test]
fn create_partitions_appends_after_existing() {
    let mut s = base();
    let r = s.apply(&MetaCommand::CreatePartitions { name: "t".into(), new_replicas: vec![vec![3], vec![1, 2]] });
    assert_eq!(r, MetaResponse::Ok);
    let leaders: Vec<i32> = s.topics["t"].partitions.iter().map(|p| p.leader).collect();
    assert_eq!(leaders, vec![1, 2, 3, 1]);
}

#[test]
fn leader_epoch_bumps_only_on_leader_change_and_partition_epoch_on_every_change() {
    let mut s = base();
    let epochs = |s: &MetadataState| {
        let p = &s.topics["t"].partitions[0];
        (p.leader_epoch, p.partition_epoch)
    };
    assert_eq!(s.apply(&next(&s, "t", 0, 1, vec![1, 2])), MetaResponse::Ok);
    assert_eq!(epochs(&s), (0, 1), "ISR shrink with the same leader keeps the leader epoch");
    assert_eq!(s.apply(&next(&s, "t", 0, 2, vec![1, 2])), MetaResponse::Ok);
    assert_eq!(epochs(&s), (1, 2));
    assert_eq!(s.apply(&next(&s, "t", 0, 2, vec![2])), MetaResponse::Ok);
    assert_eq!(epochs(&s), (1, 3));
    assert_eq!(s.apply(&next(&s, "t", 0, 2, vec![2])), MetaResponse::Ok);
    assert_eq!(epochs(&s), (1, 3), "a change that changes nothing bumps nothing");
    assert_eq!(s.apply(&next(&s, "t", 0, NO_LEADER, vec![2])), MetaResponse::Ok);
    assert_eq!(epochs(&s), (2, 4), "losing the leader is a leader change");
    assert!(invalid_partitions(&s.apply(&next(&s, "t", 0, 3, vec![3]))));
    assert_eq!(epochs(&s), (2, 4), "a refused change keeps both epochs");
    assert_eq!(s.apply(&next(&s, "t", 0, 2, vec![2])), MetaResponse::Ok);
    assert_eq!(epochs(&s), (3, 5), "the last in-sync replica returns as leader");
}

#[test]
fn a_stale_partition_epoch_is_refused() {
    let mut s = base();
    // The controller shrinks t-0's ISR (partition epoch 0 → 1; the leader epoch stays 0).
    assert_eq!(s.apply(&set_at("t", 0, 1, vec![1, 2], 0)), MetaResponse::Ok);
    // A second decision computed from epoch 0 — the shape of a paused controller's — is refused,
    // although the leader epoch it would have checked is unchanged.
    let before = s.clone();
    let r = s.apply(&set_at("t", 0, 1, vec![1], 0));
    assert!(invalid_partitions(&r), "{r:?}");
    assert_eq!(s, before);
    assert!(invalid_partitions(&s.apply(&set_at("t", 0, 1, vec![1], 7))), "a future epoch is refused too");
    assert_eq!(s.apply(&set_at("t", 0, 1, vec![1], 1)), MetaResponse::Ok);
}

#[test]
fn a_new_leader_outside_the_current_isr_is_refused() {
    let mut s = base();
    assert_eq!(s.apply(&set_at("t", 1, 2, vec![2, 3], 0)), MetaResponse::Ok);
    let before = s.clone();
    // Broker 1 fell out of the ISR; making it leader (with an ISR of just itself) would cut away
    // everything 2 and 3 acknowledged since.
    let r = s.apply(&next(&s, "t", 1, 1, vec![1]));
    assert!(invalid_partitions(&r), "{r:?}");
    let r = s.apply(&next(&s, "t", 1, 1, vec![1, 2, 3]));
    assert!(invalid_partitions(&r), "an ISR naming it does not make it eligible: {r:?}");
    assert_eq!(s, before);
    let r = s.apply(&next(&s, "t", 1, 2, vec![3]));
    assert!(invalid_partitions(&r), "an ISR without its leader: {r:?}");
    assert_eq!(s.apply(&next(&s, "t", 1, 3, vec![3])), MetaResponse::Ok, "an ISR member may take over");
}

#[test]
fn a_controller_decision_applies_only_in_its_own_term() {
    let mut s = base();
    let before = s.clone();
    // Decided by the leader of term 4, committed in term 5 (forwarded, or re-proposed): refused.
    let r = s.apply_entry(5, &decided(4, MetaCommand::FenceBroker { id: 2 }));
    assert_eq!(r, MetaResponse::StaleTerm { decided_in: 4, entry_term: 5 });
    let r = s.apply_entry(5, &decided(4, set("t", 0, 1, vec![1])));
    assert_eq!(r, MetaResponse::StaleTerm { decided_in: 4, entry_term: 5 });
    assert_eq!(s, before);
    assert!(invalid_request(&s.apply(&decided(5, MetaCommand::FenceBroker { id: 2 }))), "no term, no decision");
    assert!(invalid_request(&s.apply_entry(5, &decided(5, decided(5, MetaCommand::FenceBroker { id: 2 })))));
    assert_eq!(s, before);
    assert_eq!(s.apply_entry(5, &decided(5, MetaCommand::FenceBroker { id: 2 })), MetaResponse::Ok);
    assert!(s.brokers[&2].fenced);
    assert_eq!(s.apply_entry(5, &MetaCommand::FenceBroker { id: 3 }), MetaResponse::Ok, "plain commands apply in any term");
}

#[test]
fn producer_id_blocks_never_overlap() {
    let mut s = base();
    let mut blocks = Vec::new();
    for (broker, count) in [(1, 1000), (2, 1), (1, 5000), (3, 0), (3, 17), (2, -5), (1, PRODUCER_ID_BLOCK_MAX)] {
        if let MetaResponse::ProducerIdBlock { first, count: got } = s.apply(&MetaCommand::AllocateProducerIds { broker, count }) {
            assert_eq!(got, count);
            blocks.push((first, first + got));
        }
    }
    assert_eq!(blocks.len(), 5, "the zero and negative counts are refused");
    for (i, a) in blocks.iter().enumerate() {
        for b in &blocks[i + 1..] {
            assert!(a.1 <= b.0 || b.1 <= a.0, "blocks {a:?} and {b:?} overlap");
        }
    }
    assert_eq!(s.next_producer_id, blocks.iter().map(|b| b.1).max().unwrap_or(0));
}

#[test]
fn producer_ids_exhausted_is_refused_not_wrapped() {
    let mut s = MetadataState { next_producer_id: i64::MAX - 10, ..Default::default() };
    assert!(invalid_request(&s.apply(&MetaCommand::AllocateProducerIds { broker: 1, count: 11 })));
    assert_eq!(s.next_producer_id, i64::MAX - 10);
}

#[test]
fn register_updates_and_unfences() {
    let mut s = base();
    assert_eq!(s.apply(&MetaCommand::FenceBroker { id: 2 }), MetaResponse::Ok);
    assert!(s.brokers[&2].fenced);
    assert_eq!(s.live_brokers().count(), 2);
    assert_eq!(s.apply(&MetaCommand::RegisterBroker { id: 2, node: node(1234), incarnation: None }), MetaResponse::Ok);
    assert!(!s.brokers[&2].fenced);
    assert_eq!(s.brokers[&2].node.kafka_addr, "localhost:1234");
    assert_eq!(s.brokers.len(), 3);
}

#[test]
fn a_start_records_its_incarnation_and_an_unfence_keeps_it() {
    let mut s = base();
    assert_eq!(s.apply(&MetaCommand::RegisterBroker { id: 2, node: node(9002), incarnation: Some(77) }), MetaResponse::Ok);
    assert_eq!(s.brokers[&2].incarnation, Some(77));
    assert_eq!(s.apply(&MetaCommand::FenceBroker { id: 2 }), MetaResponse::Ok);
    assert_eq!(s.apply(&MetaCommand::RegisterBroker { id: 2, node: node(9002), incarnation: None }), MetaResponse::Ok);
    assert_eq!(s.brokers[&2].incarnation, Some(77), "the controller's unfence is not a new start");
    assert_eq!(s.apply(&MetaCommand::RegisterBroker { id: 2, node: node(9002), incarnation: Some(78) }), MetaResponse::Ok);
    assert_eq!(s.brokers[&2].incarnation, Some(78));
}

#[test]
fn same_commands_give_same_state() {
    let cmds = vec![
        register(3),
        register(1),
        create("b", 2, vec![vec![1, 3]]),
        create("a", 1, vec![vec![3], vec![1]]),
        create("a", 5, vec![vec![3]]),
        MetaCommand::AllocateProducerIds { broker: 1, count: 10 },
        set("b", 0, 3, vec![3]),
        MetaCommand::CreatePartitions { name: "b".into(), new_replicas: vec![vec![1]] },
        MetaCommand::DeleteTopic { name: "a".into() },
        MetaCommand::FenceBroker { id: 1 },
    ];
    let run = || {
        let mut s = MetadataState::default();
        let responses: Vec<MetaResponse> = cmds.iter().map(|c| s.apply(c)).collect();
        (s, responses)
    };
    let (s1, r1) = run();
    let (s2, r2) = run();
    assert_eq!(s1, s2);
    assert_eq!(r1, r2);
    let json1 = serde_json::to_string(&s1).unwrap_or_default();
    assert_eq!(json1, serde_json::to_string(&s2).unwrap_or_default(), "serialised form is stable too");
    assert!(!json1.is_empty());
    assert_eq!(r1[4], MetaResponse::TopicAlreadyExists);
    assert_eq!(s1.topics.keys().collect::<Vec<_>>(), vec!["b"]);
}

#[test]
fn an_isr_change_racing_a_failover_changes_nothing() {
    let mut s = base();
    // The controller moves leadership of t-0 from 1 to 2 (partition epoch 0 → 1).
    assert_eq!(s.apply(&set_at("t", 0, 2, vec![2, 3], 0)), MetaResponse::Ok);
    // The old leader's ISR change, computed at epoch 0, arrives late: refused, state unchanged.
    let before = s.clone();
    assert!(invalid_partitions(&s.apply(&set_at("t", 0, 1, vec![1, 2], 0))));
    assert_eq!(s, before);
    assert_eq!(s.topics["t"].partitions[0].leader, 2);
    assert_eq!(s.topics["t"].partitions[0].leader_epoch, 1);
}

#[test]
fn a_removed_broker_is_gone_and_its_id_refused() {
    let mut s = base();
    assert_eq!(s.apply(&MetaCommand::RemoveBroker { id: 3 }), MetaResponse::Ok);
    assert!(!s.brokers.contains_key(&3));
    assert!(s.removed_brokers.contains(&3));
    assert_eq!(s.apply(&MetaCommand::RemoveBroker { id: 3 }), MetaResponse::Ok, "idempotent");
    let r = s.apply(&MetaCommand::RegisterBroker { id: 3, node: node(9003), incarnation: Some(5) });
    assert!(matches!(&r, MetaResponse::InvalidRequest(m) if m.contains("new node id")), "{r:?}");
    assert!(!s.brokers.contains_key(&3));
    assert!(invalid_partitions(&s.apply(&create("u", 9, vec![vec![1, 3]]))), "no new replica on a removed broker");
}

#[test]
fn first_cluster_id_wins() {
    let mut s = MetadataState::default();
    assert_eq!(s.apply(&MetaCommand::InitClusterId { cluster_id: "a".into() }), MetaResponse::ClusterId("a".into()));
    assert_eq!(s.apply(&MetaCommand::InitClusterId { cluster_id: "b".into() }), MetaResponse::ClusterId("a".into()));
    assert_eq!(s.cluster_id.as_deref(), Some("a"));
    assert!(matches!(s.apply(&MetaCommand::InitClusterId { cluster_id: String::new() }), MetaResponse::InvalidRequest(_)));
}

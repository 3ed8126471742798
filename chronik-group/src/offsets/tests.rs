//! Store cases over in-memory logs: durability across reopen, ownership, membership replay.

use super::log::memory::{MemoryLog, Shared};
use super::*;

fn logs(count: usize) -> Vec<Arc<Mutex<Shared>>> {
    (0..count).map(|_| Arc::new(Mutex::new(Shared::default()))).collect()
}

fn log_of(shared: &Arc<Mutex<Shared>>) -> Arc<dyn OffsetsLog> {
    Arc::new(MemoryLog { shared: shared.clone() })
}

fn open(shared: &[Arc<Mutex<Shared>>]) -> OffsetStore {
    OffsetStore::open_all(shared.len() as u32, |i| Ok(log_of(&shared[i as usize]))).expect("open")
}

fn tp(topic: &str, partition: i32) -> TopicPartition {
    TopicPartition { topic: topic.into(), partition }
}

fn at(offset: i64) -> CommittedOffset {
    CommittedOffset { offset, leader_epoch: 1, metadata: Some("m".into()), commit_timestamp_ms: 5 }
}

#[test]
fn java_string_hash_matches_kafka() {
    // "hello".hashCode() == 99162322 in Java; 99162322 % 50 == 22.
    assert_eq!(partition_for("hello", 50), 22);
    let store = OffsetStore::new(50).expect("store");
    assert_eq!(store.partition_of("hello"), 22);
}

#[tokio::test]
async fn commits_survive_reopen_and_deletes_stick() {
    let shared = logs(3);
    let store = open(&shared);
    store.commit("g1", vec![(tp("a", 0), at(10)), (tp("a", 1), at(11))]).await.expect("commit");
    store.commit("g1", vec![(tp("a", 0), at(12))]).await.expect("commit");
    store.commit("g2", vec![(tp("b", 0), at(20)), (tp("a", 0), at(21))]).await.expect("commit");
    assert_eq!(store.fetch("g1", &[tp("a", 0), tp("zz", 0)]).expect("owned"), vec![Some(at(12)), None]);
    let synced: usize = shared.iter().map(|s| s.lock().syncs).sum();
    assert_eq!(synced, 3, "one commit wait per commit");
    drop(store);

    let store = open(&shared);
    assert_eq!(store.fetch_all("g1").expect("owned"), vec![(tp("a", 0), at(12)), (tp("a", 1), at(11))]);
    store.delete_group("g1").await.expect("delete");
    store.delete_topic("a").await.expect("delete topic");
    assert_eq!(store.fetch_all("g2").expect("owned"), vec![(tp("b", 0), at(20))]);
    drop(store);

    let store = open(&shared);
    assert!(!store.has_offsets("g1"));
    assert_eq!(store.fetch_all("g2").expect("owned"), vec![(tp("b", 0), at(20))]);
    let mut ids = store.group_ids();
    ids.sort();
    assert_eq!(ids, vec!["g2"]);
}

/// Ownership follows leadership: an unowned or loading partition never answers "nothing
/// committed", a new owner sees what the old one committed, and a superseded load is dropped.
#[tokio::test]
async fn only_the_owner_answers_and_a_new_owner_replays() {
    let shared = logs(1);
    let first = OffsetStore::new(1).expect("store");
    assert_eq!(first.ownership("g"), Ownership::NotOwned);
    assert!(matches!(first.fetch("g", &[tp("a", 0)]), Err(GroupError::NotCoordinator { partition: 0 })));
    assert!(matches!(first.commit("g", vec![(tp("a", 0), at(1))]).await, Err(GroupError::NotCoordinator { .. })));

    assert!(first.begin_load(0, 3));
    assert!(!first.begin_load(0, 3), "same epoch: already loading");
    assert_eq!(first.ownership("g"), Ownership::Loading);
    assert!(matches!(first.fetch_all("g"), Err(GroupError::LoadInProgress { partition: 0 })));
    first.load(0, 3, log_of(&shared[0])).expect("load");
    assert_eq!(first.ownership("g"), Ownership::Owned);
    first.commit("g", vec![(tp("a", 0), at(7))]).await.expect("commit");

    // Leadership moves: the old owner unloads, its late appends fail as NOT_COORDINATOR.
    assert!(first.unload(0));
    assert_eq!(first.ownership("g"), Ownership::NotOwned);
    assert!(first.group_ids().is_empty());

    let second = OffsetStore::new(1).expect("store");
    assert!(second.begin_load(0, 4));
    second.load(0, 4, log_of(&shared[0])).expect("load");
    assert_eq!(second.fetch("g", &[tp("a", 0)]).expect("owned"), vec![Some(at(7))]);

    // A load begun at epoch 5 and overtaken by epoch 6 must not install epoch 5's replay.
    assert!(second.begin_load(0, 5));
    assert!(second.begin_load(0, 6));
    second.load(0, 5, log_of(&shared[0])).expect("superseded load is not an error");
    assert_eq!(second.ownership("g"), Ownership::Loading);

    // A log that refuses appends (leadership lost under the store) maps to NotLeader.
    second.load(0, 6, log_of(&shared[0])).expect("load");
    shared[0].lock().not_leader = true;
    let refused = second.commit("g", vec![(tp("a", 0), at(8))]).await;
    assert!(matches!(refused, Err(GroupError::Log { source: LogFailure::NotLeader, .. })), "{refused:?}");
    assert_eq!(second.fetch("g", &[tp("a", 0)]).expect("owned"), vec![Some(at(7))]);
}

fn membership(generation_id: i32) -> StoredGroup {
    StoredGroup {
        protocol_type: "consumer".into(),
        generation_id,
        protocol_name: Some("range".into()),
        leader_id: Some("m1".into()),
        state_timestamp_ms: 0,
        members: vec![membership::StoredMember {
            member_id: "m1".into(),
            group_instance_id: None,
            client_id: "c".into(),
            client_host: "/h".into(),
            rebalance_timeout_ms: 30_000,
            session_timeout_ms: 10_000,
            subscription: bytes::Bytes::from_static(b"sub"),
            assignment: bytes::Bytes::from_static(b"asg"),
        }],
    }
}

/// A log holding only offset records (written before memberships were stored) loads as
/// before; membership records are read back last-wins, cleared by a tombstone, a deletion or
/// an unreadable value, and never touch the offsets.
#[tokio::test]
async fn replay_reads_the_last_membership_of_each_group() {
    let shared = logs(1);
    let store = open(&shared);
    store.commit("old", vec![(tp("a", 0), at(3))]).await.expect("commit");
    let replayed = store.replay(0, 0, log_of(&shared[0]).as_ref()).expect("replay");
    assert!(replayed.memberships.is_empty(), "an offsets-only log has no membership");
    assert_eq!(replayed.offsets["old"][&tp("a", 0)], at(3));

    store.append_membership("g", Some(membership(1))).expect("append").await.expect("stored");
    store.append_membership("g", Some(membership(2))).expect("append").await.expect("stored");
    store.append_membership("gone", Some(membership(5))).expect("append").await.expect("stored");
    store.append_membership("gone", None).expect("append").await.expect("stored");
    store.append_membership("deleted", Some(membership(1))).expect("append").await.expect("stored");
    store.commit("deleted", vec![(tp("a", 0), at(4))]).await.expect("commit");
    store.delete_group("deleted").await.expect("delete");
    assert_eq!(store.fetch_all("old").expect("owned"), vec![(tp("a", 0), at(3))], "memberships leave offsets alone");

    let mut replayed = store.replay(0, 0, log_of(&shared[0]).as_ref()).expect("replay");
    assert_eq!(replayed.memberships.len(), 1, "{:?}", replayed.memberships.keys());
    assert_eq!(replayed.memberships["g"], membership(2), "the last record wins");
    assert!(!replayed.offsets.contains_key("deleted"));
    replayed.apply(0, OffsetRecord::UnreadableMembership { group: "g".into(), reason: "test".into() });
    assert!(replayed.memberships.is_empty(), "an unreadable record forgets the group's membership");
}

//! State machine cases: each drives a group with explicit times and checks answers and deliveries.

use super::*;

const SESSION_MS: u64 = 10_000;
const REBALANCE_MS: u64 = 30_000;

fn limits(initial_delay_ms: u64) -> Limits {
    Limits { members_max: 10, initial_rebalance_delay_ms: initial_delay_ms }
}

fn params(member_id: &str, protocols: &[&str]) -> JoinParams {
    JoinParams {
        member_id: member_id.to_string(),
        group_instance_id: None,
        client_id: "client".into(),
        client_host: "/127.0.0.1".into(),
        session_timeout_ms: SESSION_MS,
        rebalance_timeout_ms: REBALANCE_MS,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| (p.to_string(), Bytes::from(format!("meta-{member_id}-{p}"))))
            .collect(),
        require_known_member_id: false,
    }
}

fn sync(member_id: &str, generation_id: i32, assignments: &[(&str, &str)]) -> SyncParams {
    SyncParams {
        member_id: member_id.into(),
        group_instance_id: None,
        generation_id,
        protocol_type: None,
        protocol_name: None,
        assignments: assignments
            .iter()
            .map(|(m, a)| (m.to_string(), Bytes::from(a.to_string())))
            .collect(),
    }
}

fn waited_id<T: std::fmt::Debug>(reply: Reply<T>) -> String {
    match reply {
        Reply::Wait { member_id } => member_id,
        Reply::Now(answer) => panic!("expected to wait, got {answer:?}"),
    }
}

fn joins(deliveries: Vec<Delivery>) -> Vec<(String, JoinResult)> {
    deliveries
        .into_iter()
        .filter_map(|d| match d {
            Delivery::Join { member_id, result } => Some((member_id, result)),
            Delivery::Sync { .. } => None,
        })
        .collect()
}

fn syncs(deliveries: Vec<Delivery>) -> Vec<(String, SyncResult)> {
    deliveries
        .into_iter()
        .filter_map(|d| match d {
            Delivery::Sync { member_id, result } => Some((member_id, result)),
            Delivery::Join { .. } => None,
        })
        .collect()
}

/// Three members join an empty group within the initial delay; returns their ids in join order.
fn three_member_group(group: &mut Group) -> Vec<String> {
    let a = waited_id(group.join(params("", &["range", "roundrobin"]), 0));
    let b = waited_id(group.join(params("", &["roundrobin", "range"]), 100));
    let c = waited_id(group.join(params("", &["roundrobin"]), 200));
    assert!(group.take_deliveries().is_empty(), "the initial delay is still running");
    assert_eq!(group.state(), GroupState::PreparingRebalance);
    vec![a, b, c]
}

#[test]
fn three_members_join_elect_leader_and_vote_protocol() {
    let mut group = Group::new("g", limits(3_000));
    let ids = three_member_group(&mut group);
    // The delay was extended by the later arrivals: nothing at 3 000 ms, done at 3 200 ms.
    group.tick(3_000);
    assert!(group.take_deliveries().is_empty());
    group.tick(3_200);
    let delivered = joins(group.take_deliveries());
    assert_eq!(delivered.len(), 3);
    assert_eq!(group.state(), GroupState::CompletingRebalance);
    assert_eq!(group.generation_id(), 1);
    // Only roundrobin is common to all; it wins.
    assert_eq!(group.protocol_name(), Some("roundrobin"));
    for (member_id, result) in &delivered {
        assert_eq!(result.error, None);
        assert_eq!(result.generation_id, 1);
        assert_eq!(result.leader, ids[0], "the first member leads");
        assert_eq!(result.protocol_name.as_deref(), Some("roundrobin"));
        if *member_id == ids[0] {
            let listed: Vec<&str> = result.members.iter().map(|m| m.member_id.as_str()).collect();
            assert_eq!(listed, ids.iter().map(String::as_str).collect::<Vec<_>>());
            assert_eq!(result.members[1].metadata, Bytes::from("meta--roundrobin"));
        } else {
            assert!(result.members.is_empty(), "followers get no member list");
        }
    }
}

#[test]
fn initial_delay_is_capped_by_rebalance_timeout() {
    let mut group = Group::new("g", limits(20_000));
    waited_id(group.join(params("", &["range"]), 0));
    waited_id(group.join(params("", &["range"]), 19_000));
    // Extension would be 39 000 but the cap is the 30 000 ms rebalance timeout.
    group.tick(29_999);
    assert!(group.take_deliveries().is_empty());
    group.tick(REBALANCE_MS);
    assert_eq!(joins(group.take_deliveries()).len(), 2);
}

/// Runs a group of three through join and sync; returns the ids.
fn stable_group(group: &mut Group) -> Vec<String> {
    let ids = three_member_group(group);
    group.tick(3_200);
    group.take_deliveries();
    assert_eq!(waited_id(group.sync(sync(&ids[1], 1, &[]), 3_300)), ids[1]);
    assert_eq!(waited_id(group.sync(sync(&ids[2], 1, &[]), 3_300)), ids[2]);
    let assignments: Vec<(&str, &str)> =
        vec![(ids[0].as_str(), "A0"), (ids[1].as_str(), "A1"), (ids[2].as_str(), "A2")];
    let Reply::Now(leader) = group.sync(sync(&ids[0], 1, &assignments), 3_400) else {
        panic!("the leader's sync answers at once");
    };
    assert_eq!(leader.assignment, Bytes::from("A0"));
    ids
}

#[test]
fn sync_hands_the_leaders_assignment_to_every_member() {
    let mut group = Group::new("g", limits(3_000));
    let ids = stable_group(&mut group);
    assert_eq!(group.state(), GroupState::Stable);
    let mut delivered = syncs(group.take_deliveries());
    delivered.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![(ids[1].clone(), "A1"), (ids[2].clone(), "A2")];
    expected.sort();
    assert_eq!(delivered.len(), 2);
    for ((member_id, result), (want_id, want)) in delivered.iter().zip(&expected) {
        assert_eq!(member_id, want_id);
        assert_eq!(result.error, None);
        assert_eq!(result.assignment, Bytes::from(*want));
        assert_eq!(result.protocol_name.as_deref(), Some("roundrobin"));
    }
    // A late sync in Stable gets the stored assignment.
    assert_eq!(group.sync(sync(&ids[2], 1, &[]), 3_500), Reply::Now(SyncResult {
        error: None,
        protocol_type: Some("consumer".into()),
        protocol_name: Some("roundrobin".into()),
        assignment: Bytes::from("A2"),
    }));
}

#[test]
fn generation_and_member_checks() {
    let mut group = Group::new("g", limits(0));
    let ids = stable_group_no_delay(&mut group);
    assert_eq!(group.heartbeat(&ids[0], None, 0, 10), Err(ResponseError::IllegalGeneration));
    assert_eq!(group.heartbeat("nobody", None, 1, 10), Err(ResponseError::UnknownMemberId));
    assert_eq!(group.heartbeat(&ids[0], None, group.generation_id(), 10), Ok(()));
    assert_eq!(
        group.sync(sync(&ids[0], 7, &[]), 10),
        Reply::Now(SyncResult::error(ResponseError::IllegalGeneration))
    );
    assert_eq!(
        group.sync(sync("nobody", group.generation_id(), &[]), 10),
        Reply::Now(SyncResult::error(ResponseError::UnknownMemberId))
    );
    let generation = group.generation_id();
    assert_eq!(group.validate_commit(&ids[0], None, generation, 10), Ok(()));
    assert_eq!(group.validate_commit(&ids[0], None, generation - 1, 10), Err(ResponseError::IllegalGeneration));
    assert_eq!(group.validate_commit("", None, -1, 10), Err(ResponseError::UnknownMemberId));
}

/// Two members with no initial delay: the first forms generation 1 alone, the second joins for 2.
fn stable_group_no_delay(group: &mut Group) -> Vec<String> {
    let a = waited_id(group.join(params("", &["range"]), 0));
    assert_eq!(joins(group.take_deliveries()).len(), 1, "no delay: generation 1 at once");
    let b = waited_id(group.join(params("", &["range"]), 1));
    assert_eq!(group.state(), GroupState::PreparingRebalance);
    assert_eq!(group.heartbeat(&a, None, 1, 2), Err(ResponseError::RebalanceInProgress));
    assert_eq!(
        group.sync(sync(&a, 1, &[]), 2),
        Reply::Now(SyncResult::error(ResponseError::RebalanceInProgress))
    );
    waited_id(group.join(params(&a, &["range"]), 3));
    assert_eq!(joins(group.take_deliveries()).len(), 2);
    assert_eq!(group.generation_id(), 2);
    waited_id(group.sync(sync(&b, 2, &[]), 4));
    assert!(matches!(group.sync(sync(&a, 2, &[(&a, "x"), (&b, "y")]), 4), Reply::Now(_)));
    assert_eq!(syncs(group.take_deliveries()).len(), 1);
    vec![a, b]
}

#[test]
fn leave_triggers_rebalance_of_the_rest() {
    let mut group = Group::new("g", limits(3_000));
    let ids = stable_group(&mut group);
    group.take_deliveries();
    assert_eq!(group.leave(&ids[0], None, 4_000), Ok(()));
    assert_eq!(group.state(), GroupState::PreparingRebalance);
    assert_eq!(group.leader_id(), Some(ids[1].as_str()), "leadership passes on");
    assert_eq!(group.leave(&ids[0], None, 4_000), Err(ResponseError::UnknownMemberId));
    waited_id(group.join(params(&ids[1], &["roundrobin"]), 4_100));
    waited_id(group.join(params(&ids[2], &["roundrobin"]), 4_200));
    let delivered = joins(group.take_deliveries());
    assert_eq!(delivered.len(), 2);
    assert_eq!(group.generation_id(), 2);
    assert!(delivered.iter().all(|(_, r)| r.leader == ids[1]));
}

#[test]
fn members_that_do_not_rejoin_are_dropped_at_the_rebalance_timeout() {
    let mut group = Group::new("g", limits(3_000));
    let ids = stable_group(&mut group);
    group.take_deliveries();
    group.leave(&ids[0], None, 4_000).expect("leave");
    waited_id(group.join(params(&ids[1], &["roundrobin"]), 4_100));
    // ids[2] is stuck but still heartbeating, so only the rebalance timeout ends the phase.
    for at_ms in [10_000, 18_000, 26_000, 33_000] {
        assert_eq!(group.heartbeat(&ids[2], None, 1, at_ms), Err(ResponseError::RebalanceInProgress));
        group.tick(at_ms);
    }
    group.tick(4_000 + REBALANCE_MS - 1);
    assert!(group.take_deliveries().is_empty());
    group.tick(4_000 + REBALANCE_MS);
    let delivered = joins(group.take_deliveries());
    assert_eq!(delivered.len(), 1);
    assert_eq!(group.members().count(), 1);
    assert!(group.member(&ids[2]).is_none());
}

#[test]
fn session_expiry_removes_the_member_and_rebalances() {
    let mut group = Group::new("g", limits(3_000));
    let ids = stable_group(&mut group);
    group.take_deliveries();
    group.heartbeat(&ids[0], None, 1, 3_400 + SESSION_MS - 1).expect("alive");
    group.heartbeat(&ids[1], None, 1, 3_400 + SESSION_MS - 1).expect("alive");
    group.tick(3_400 + SESSION_MS);
    assert!(group.member(&ids[2]).is_none(), "silent member expired");
    assert_eq!(group.state(), GroupState::PreparingRebalance);
    assert_eq!(group.heartbeat(&ids[0], None, 1, 3_400 + SESSION_MS), Err(ResponseError::RebalanceInProgress));
}

#[test]
fn last_member_leaving_empties_the_group() {
    let mut group = Group::new("g", limits(0));
    let a = waited_id(group.join(params("", &["range"]), 0));
    group.take_deliveries();
    group.leave(&a, None, 1).expect("leave");
    assert_eq!(group.state(), GroupState::Empty);
    assert!(group.is_empty());
    assert_eq!(group.generation_id(), 2);
    assert_eq!(group.validate_commit("", None, -1, 2), Ok(()), "simple commits are fine when empty");
}

#[test]
fn member_id_required_then_join_with_it() {
    let mut group = Group::new("g", limits(0));
    let mut first = params("", &["range"]);
    first.require_known_member_id = true;
    let Reply::Now(answer) = group.join(first, 0) else { panic!("answered at once") };
    assert_eq!(answer.error, Some(ResponseError::MemberIdRequired));
    assert!(answer.member_id.starts_with("client-"), "{}", answer.member_id);
    assert_eq!(group.state(), GroupState::Empty);
    let mut second = params(&answer.member_id, &["range"]);
    second.require_known_member_id = true;
    assert_eq!(waited_id(group.join(second, 1)), answer.member_id);
    let delivered = joins(group.take_deliveries());
    assert_eq!(delivered[0].1.member_id, answer.member_id);
    assert_eq!(delivered[0].1.error, None);
    // An id we never issued is refused.
    assert_eq!(
        group.join(params("made-up", &["range"]), 2),
        Reply::Now(JoinResult::error(ResponseError::UnknownMemberId, "made-up"))
    );
}

#[test]
fn a_static_member_rejoining_replaces_its_old_id_which_is_fenced() {
    // Both first members arrive within the initial delay: one generation with both.
    let mut group = Group::new("g", limits(100));
    let mut p = params("", &["range"]);
    p.group_instance_id = Some("instance-1".into());
    p.require_known_member_id = true; // static members skip MEMBER_ID_REQUIRED
    let first = waited_id(group.join(p.clone(), 0));
    let mut q = params("", &["range"]);
    q.group_instance_id = Some("instance-2".into());
    let second = waited_id(group.join(q.clone(), 0));
    group.tick(150);
    let delivered = joins(group.take_deliveries());
    assert_eq!(delivered.len(), 2, "{delivered:?}");
    let generation = delivered[0].1.generation_id;
    let assigned = vec![(first.clone(), Bytes::from("for-1")), (second.clone(), Bytes::from("for-2"))];
    let Reply::Now(_) = group.sync(SyncParams { assignments: assigned, ..sync(&first, generation, &[]) }, 152) else {
        panic!("leader sync answers");
    };
    let Reply::Now(synced) = group.sync(sync(&second, generation, &[]), 152) else { panic!("follower sync answers") };
    assert_eq!(synced.assignment, Bytes::from("for-2"));
    assert_eq!(group.state(), GroupState::Stable);

    // A second process with instance-2 joins: it takes a new id, the group stays Stable in the same
    // generation, the answer names the old leader and the new member gets the old assignment.
    let Reply::Now(replaced) = group.join(q.clone(), 153) else { panic!("a Stable group answers at once") };
    assert_ne!(replaced.member_id, second);
    assert_eq!((replaced.generation_id, replaced.leader.as_str(), replaced.error), (generation, first.as_str(), None));
    assert_eq!(group.state(), GroupState::Stable);
    let Reply::Now(synced) = group.sync(sync(&replaced.member_id, generation, &[]), 154) else { panic!("sync answers") };
    assert_eq!(synced.assignment, Bytes::from("for-2"));
    // The old process is fenced everywhere.
    assert_eq!(group.heartbeat(&second, Some("instance-2"), generation, 155), Err(ResponseError::FencedInstanceId));
    assert_eq!(
        group.validate_commit(&second, Some("instance-2"), generation, 155),
        Err(ResponseError::FencedInstanceId)
    );
    let mut stale = q.clone();
    stale.member_id = second.clone();
    assert_eq!(group.join(stale, 156), Reply::Now(JoinResult::error(ResponseError::FencedInstanceId, &second)));
    assert_eq!(group.heartbeat(&replaced.member_id, Some("instance-2"), generation, 156), Ok(()));
    assert_eq!(group.members().count(), 2);

    // The leader rejoins (a rebalance starts) and restarts before the rebalance ends: the parked join
    // of its old id is fenced and its new id leads the next generation.
    let mut leader_rejoin = p.clone();
    leader_rejoin.member_id = first.clone();
    assert_eq!(waited_id(group.join(leader_rejoin, 157)), first);
    let new_leader = waited_id(group.join(p, 158));
    assert_ne!(new_leader, first);
    let mut other_rejoin = params(&replaced.member_id, &["range"]);
    other_rejoin.group_instance_id = Some("instance-2".into());
    assert_eq!(waited_id(group.join(other_rejoin, 159)), replaced.member_id);
    let delivered = joins(group.take_deliveries());
    assert!(delivered.iter().any(|(id, r)| id == &first && r.error == Some(ResponseError::FencedInstanceId)), "{delivered:?}");
    let done: Vec<_> = delivered.iter().filter(|(_, r)| r.error.is_none()).collect();
    assert_eq!(done.len(), 2, "{delivered:?}");
    assert!(done.iter().all(|(_, r)| r.leader == new_leader && r.generation_id == generation + 1), "{delivered:?}");
}

#[test]
fn incompatible_protocols_and_size_limit_are_refused() {
    let mut group = Group::new("g", Limits { members_max: 1, initial_rebalance_delay_ms: 0 });
    waited_id(group.join(params("", &["range"]), 0));
    assert_eq!(
        group.join(params("", &["sticky"]), 1),
        Reply::Now(JoinResult::error(ResponseError::InconsistentGroupProtocol, ""))
    );
    assert_eq!(
        group.join(params("", &["range"]), 1),
        Reply::Now(JoinResult::error(ResponseError::GroupMaxSizeReached, ""))
    );
}

#[test]
fn rejoin_during_completing_rebalance_fails_waiting_syncs() {
    let mut group = Group::new("g", limits(3_000));
    let ids = three_member_group(&mut group);
    group.tick(3_200);
    group.take_deliveries();
    waited_id(group.sync(sync(&ids[1], 1, &[]), 3_300));
    // ids[2] rejoins with different protocols: the waiting follower is told to rejoin.
    waited_id(group.join(params(&ids[2], &["roundrobin", "range"]), 3_400));
    let delivered = syncs(group.take_deliveries());
    assert_eq!(delivered, vec![(ids[1].clone(), SyncResult::error(ResponseError::RebalanceInProgress))]);
    assert_eq!(group.state(), GroupState::PreparingRebalance);
}

/// The membership record: due when an assignment is handed out, a tombstone when the group empties,
/// and a group rebuilt from it on a new coordinator accepts its members as they are.
#[test]
fn a_stored_group_loads_with_its_members_and_generation() {
    let mut group = Group::new("g", limits(3_000));
    let ids = stable_group(&mut group);
    let Some(MembershipRecord::Store(stored)) = group.take_membership_record() else {
        panic!("a completed sync makes a membership record due");
    };
    assert_eq!(group.take_membership_record(), None, "taken once");
    assert_eq!(stored.generation_id, 1);
    assert_eq!(stored.protocol_name.as_deref(), Some("roundrobin"));
    assert_eq!(stored.leader_id.as_deref(), Some(ids[0].as_str()));
    let stored_ids: Vec<&str> = stored.members.iter().map(|m| m.member_id.as_str()).collect();
    assert_eq!(stored_ids, ids.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(stored.members[1].subscription, Bytes::from(format!("meta-{}-roundrobin", "")));
    assert_eq!(stored.members[2].assignment, Bytes::from("A2"));

    // Through the record codec, as the log would carry it.
    let stored = crate::offsets::membership::decode_value(crate::offsets::membership::encode_value(&stored)).expect("decode");

    // A new coordinator loads it much later (its clock started elsewhere): sessions start now.
    let load_ms = 1_000_000;
    let mut loaded = Group::from_stored("g", stored, limits(3_000), load_ms);
    assert_eq!(loaded.state(), GroupState::Stable);
    assert_eq!(loaded.generation_id(), 1);
    assert_eq!(loaded.leader_id(), Some(ids[0].as_str()));
    assert_eq!(loaded.take_membership_record(), None, "loading writes nothing");
    for id in &ids {
        assert_eq!(loaded.heartbeat(id, None, 1, load_ms + 100), Ok(()), "member {id} just continues");
        assert_eq!(loaded.validate_commit(id, None, 1, load_ms + 100), Ok(()));
    }
    assert_eq!(loaded.heartbeat(&ids[0], None, 2, load_ms + 100), Err(ResponseError::IllegalGeneration));
    assert_eq!(loaded.heartbeat("stranger", None, 1, load_ms + 100), Err(ResponseError::UnknownMemberId));
    let Reply::Now(again) = loaded.sync(sync(&ids[2], 1, &[]), load_ms + 200) else {
        panic!("a Stable group answers SyncGroup at once");
    };
    assert_eq!(again.assignment, Bytes::from("A2"), "the stored assignment is served");
    // A follower rejoining with the protocol it was loaded with changes nothing.
    let mut follower = params(&ids[1], &["roundrobin"]);
    follower.protocols = vec![("roundrobin".into(), Bytes::from(format!("meta-{}-roundrobin", "")))];
    assert!(matches!(loaded.join(follower, load_ms + 300), Reply::Now(JoinResult { error: None, generation_id: 1, .. })));
    assert_eq!(loaded.state(), GroupState::Stable);

    // Members that do not come back expire by session timeout, counted from the load.
    for t in [load_ms + 5_000, load_ms + 9_000] {
        loaded.heartbeat(&ids[0], None, 1, t).expect("alive");
        loaded.heartbeat(&ids[1], None, 1, t).expect("alive");
        loaded.tick(t);
    }
    assert_eq!(loaded.state(), GroupState::Stable, "nobody expired before a full session");
    // ids[2] was last seen at its SyncGroup (load + 200 ms).
    let expiry_ms = load_ms + 200 + SESSION_MS;
    loaded.tick(expiry_ms - 1);
    assert!(loaded.member(&ids[2]).is_some());
    loaded.tick(expiry_ms);
    assert!(loaded.member(&ids[2]).is_none(), "the absent member expired");
    assert_eq!(loaded.state(), GroupState::PreparingRebalance);
    assert_eq!(loaded.heartbeat(&ids[0], None, 1, expiry_ms), Err(ResponseError::RebalanceInProgress));
}

#[test]
fn an_emptied_group_stores_a_tombstone_and_an_empty_record_loads_empty() {
    let mut group = Group::new("g", limits(0));
    let a = waited_id(group.join(params("", &["range"]), 0));
    group.tick(0);
    group.take_deliveries();
    let Reply::Now(_) = group.sync(sync(&a, 1, &[(a.as_str(), "A")]), 10) else { panic!("leader sync") };
    assert!(matches!(group.take_membership_record(), Some(MembershipRecord::Store(_))));
    group.leave(&a, None, 20).expect("leave");
    assert_eq!(group.state(), GroupState::Empty);
    assert_eq!(group.take_membership_record(), Some(MembershipRecord::Clear));

    let mut stored = group.stored(0);
    stored.generation_id = 4;
    let loaded = Group::from_stored("g", stored, limits(0), 5);
    assert_eq!(loaded.state(), GroupState::Empty);
    assert_eq!(loaded.generation_id(), 4);
    assert!(loaded.is_empty());
}

/// A rebalance that begins before the shell takes the record stores nothing for it: only a
/// completed generation with its assignment is worth loading.
#[test]
fn no_record_is_stored_for_a_rebalance_in_progress() {
    let mut group = Group::new("g", limits(3_000));
    let ids = stable_group(&mut group);
    group.leave(&ids[2], None, 4_000).expect("leave");
    assert_eq!(group.state(), GroupState::PreparingRebalance);
    assert_eq!(group.take_membership_record(), None);
}

//! Test fixture of the controller's unit tests: a metadata state with registered brokers and one
//! topic `t` with the given replica lists.

use std::collections::BTreeMap;

use chronik_raft::{BrokerNode, MetaCommand, MetadataState};

pub fn cluster(brokers: &[i32], lists: &[&[i32]]) -> MetadataState {
    let mut s = MetadataState::default();
    for id in brokers {
        s.apply(&MetaCommand::RegisterBroker { id: *id, node: BrokerNode::default(), incarnation: None });
    }
    let replicas = lists.iter().map(|l| l.to_vec()).collect();
    s.apply(&MetaCommand::CreateTopic { name: "t".into(), topic_id: [1; 16], replicas, configs: BTreeMap::new() });
    s
}

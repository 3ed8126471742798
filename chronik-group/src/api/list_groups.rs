//! ListGroups v0–4 (v4: filter by state).

use std::collections::BTreeMap;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::wire;
use crate::coordinator::GroupCoordinator;
use crate::group::GroupState;

const STATES_SINCE_VERSION: i16 = 4;

impl GroupCoordinator {
    pub async fn list_groups(&self, req: ListGroupsRequest, version: i16) -> ListGroupsResponse {
        // id → (protocol type, state); groups known only by their offsets are Empty with no type.
        let mut listed: BTreeMap<String, (String, &'static str)> = self
            .offsets
            .group_ids()
            .into_iter()
            .map(|id| (id, (String::new(), GroupState::Empty.name())))
            .collect();
        {
            let registry = self.registry.lock();
            for (id, group) in &registry.groups {
                if group.state() == GroupState::Dead {
                    continue;
                }
                let protocol_type = group.protocol_type().unwrap_or_default().to_string();
                listed.insert(id.clone(), (protocol_type, group.state().name()));
            }
        }
        let filter: Vec<&str> =
            if version >= STATES_SINCE_VERSION { req.states_filter.iter().map(|s| s.as_str()).collect() } else { Vec::new() };
        let mut resp = ListGroupsResponse::default();
        resp.groups = listed
            .into_iter()
            .filter(|(_, (_, state))| filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(state)))
            .map(|(id, (protocol_type, state))| {
                let mut group = ListedGroup::default();
                group.group_id = GroupId(wire(id));
                group.protocol_type = wire(protocol_type);
                if version >= STATES_SINCE_VERSION {
                    group.group_state = wire(state);
                }
                group
            })
            .collect();
        resp
    }
}

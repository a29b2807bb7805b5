//! Conversions between the cluster protocol's messages and domain types.

use std::collections::BTreeMap;

use cairn_proto::cluster::Member;
use cairn_proto::cluster::NodeInfoReply;
use cairn_proto::cluster::NotLeader;

use crate::metrics::NodeRole;
use crate::types::NodeId;
use crate::types::NodeInfo;
use crate::types::TypeConfig;

/// What a node says about itself ([`RaftNode::peer_status`](crate::RaftNode::peer_status)):
/// used to learn peers' ids before forming a cluster, and by the admin API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    /// The peer's Raft id.
    pub node_id: NodeId,
    /// The cluster address it advertises.
    pub cluster_addr: String,
    /// Whether it already belongs to a formed cluster.
    pub initialized: bool,
    /// The leader it knows of.
    pub leader: Option<NodeId>,
    /// Its current term.
    pub term: u64,
    /// Its role name ("Leader", "Follower", "Candidate", "Learner", "Shutdown").
    pub role: String,
    /// Voters of its effective membership.
    pub voters: BTreeMap<NodeId, NodeInfo>,
    /// Learners of its effective membership.
    pub learners: BTreeMap<NodeId, NodeInfo>,
    /// Index of its last log entry.
    pub last_log_index: u64,
    /// Index of its last applied entry.
    pub last_applied_index: u64,
}

pub(crate) fn member(id: NodeId, node: &NodeInfo) -> Member {
    Member { node_id: id, cluster_addr: node.cluster_addr.clone() }
}

pub(crate) fn not_leader(leader: Option<(NodeId, NodeInfo)>) -> NotLeader {
    NotLeader { leader: leader.map(|(id, node)| member(id, &node)) }
}

pub(crate) fn leader_of(n: &NotLeader) -> Option<(NodeId, NodeInfo)> {
    n.leader.as_ref().map(|m| (m.node_id, NodeInfo::new(m.cluster_addr.clone())))
}

/// The `NodeInfo` reply from this node's openraft metrics.
pub(crate) fn node_info_reply(m: &openraft::RaftMetrics<TypeConfig>, cluster_addr: &str) -> NodeInfoReply {
    let membership = m.membership_config.membership();
    let members = |ids: Vec<NodeId>| -> Vec<Member> {
        ids.into_iter().map(|id| member(id, &membership.get_node(&id).cloned().unwrap_or_default())).collect()
    };
    let voters: Vec<NodeId> = membership.voter_ids().collect();
    let learners: Vec<NodeId> = membership.learner_ids().collect();
    NodeInfoReply {
        node_id: m.id,
        cluster_addr: cluster_addr.to_string(),
        initialized: !voters.is_empty(),
        leader_id: m.current_leader,
        term: m.current_term,
        voters: members(voters),
        learners: members(learners),
        last_log_index: m.last_log_index.unwrap_or(0),
        last_applied_index: m.last_applied.map(|l| l.index()).unwrap_or(0),
        state: NodeRole::from(m.state).as_str().to_string(),
    }
}

impl From<NodeInfoReply> for PeerStatus {
    fn from(r: NodeInfoReply) -> Self {
        let map = |ms: Vec<Member>| ms.into_iter().map(|m| (m.node_id, NodeInfo::new(m.cluster_addr))).collect();
        PeerStatus {
            node_id: r.node_id,
            cluster_addr: r.cluster_addr,
            initialized: r.initialized,
            leader: r.leader_id,
            term: r.term,
            role: r.state,
            voters: map(r.voters),
            learners: map(r.learners),
            last_log_index: r.last_log_index,
            last_applied_index: r.last_applied_index,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_converts_to_peer_status() {
        let reply = NodeInfoReply {
            node_id: 9,
            cluster_addr: "a:1".into(),
            initialized: true,
            leader_id: Some(9),
            term: 3,
            voters: vec![Member { node_id: 9, cluster_addr: "a:1".into() }],
            learners: vec![Member { node_id: 10, cluster_addr: "b:1".into() }],
            last_log_index: 12,
            last_applied_index: 11,
            state: "Leader".into(),
        };
        let s = PeerStatus::from(reply);
        assert_eq!(s.voters.get(&9), Some(&NodeInfo::new("a:1")));
        assert_eq!(s.learners.get(&10), Some(&NodeInfo::new("b:1")));
        assert_eq!((s.leader, s.term, s.last_applied_index), (Some(9), 3, 11));
        let nl = not_leader(Some((4, NodeInfo::new("c:1"))));
        assert_eq!(leader_of(&nl), Some((4, NodeInfo::new("c:1"))));
        assert_eq!(leader_of(&not_leader(None)), None);
    }
}

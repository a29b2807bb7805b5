//! Auto-join (`--auto-join`, default on, only for discovered members): the Raft leader adds
//! discovered members that are not in the Raft configuration as learners and promotes learners
//! that are discovered, reachable and caught up.
//!
//! It never removes anything: a member that disappears from discovery (a rescheduled pod, a DNS
//! blip, an edited file) keeps its Raft seat, because shrinking the voters by accident could
//! cost the quorum. Removal is explicit, through the admin API (`POST /cairn/v1/raft/remove`).
//! For the same reason a discovered node that already belongs to a cluster (it was removed
//! explicitly and still runs, or it belongs to another cluster) is not added.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use cairn_raft::{NodeInfo, RaftNode};
use tokio_util::sync::CancellationToken;

use super::{MemberState, Membership};
use crate::api::http::admin::{CAUGHT_UP_LAG, fresh_views, http_addr, quorum_ok, reachable};
use crate::config::Config;

/// How often the leader looks for members to add or promote (also on every member-set change).
pub const ROUND: Duration = Duration::from_secs(1);

/// Runs auto-join until `cancel` fires. Does nothing on nodes that are not the leader.
pub async fn run(raft: Arc<RaftNode>, membership: Membership, cancel: CancellationToken) {
    let mut changes = membership.subscribe();
    let mut tick = tokio::time::interval(ROUND);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut refused: HashMap<String, String> = HashMap::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            r = changes.changed() => if r.is_err() { return },
            _ = cancel.cancelled() => return,
        }
        if raft.is_leader() {
            round(&raft, &membership, &mut refused).await;
        }
    }
}

/// One pass: add unknown discovered members as learners, then promote one caught-up learner.
async fn round(raft: &RaftNode, membership: &Membership, refused: &mut HashMap<String, String>) {
    let m = raft.metrics();
    let known_addrs: BTreeSet<String> =
        m.voters.values().chain(m.learners.values()).map(|n| n.cluster_addr.clone()).collect();
    let current = membership.current();
    refused.retain(|addr, _| current.contains(addr));
    for address in membership.peers() {
        let cluster_addr = Config::member_cluster_addr(&address);
        if known_addrs.contains(&cluster_addr) {
            refused.remove(&address);
            continue;
        }
        if membership.state(&address) == MemberState::Down {
            continue;
        }
        let why = match raft.peer_status(&cluster_addr).await {
            Err(e) => {
                tracing::debug!(member = %address, error = %e, "auto-join: member not reachable on its cluster port yet");
                continue;
            }
            Ok(st) if m.voters.contains_key(&st.node_id) || m.learners.contains_key(&st.node_id) => format!(
                "its Raft id {} is already a member at another address; update it through the admin API",
                st.node_id
            ),
            Ok(st) if st.initialized => {
                "it already belongs to a cluster (removed explicitly, or another cluster's member)".to_owned()
            }
            Ok(st) => match raft.add_learner(st.node_id, NodeInfo::new(cluster_addr.clone()), false).await {
                Ok(ix) => {
                    tracing::info!(member = %address, id = st.node_id, log_index = ix, "auto-join: added as learner");
                    refused.remove(&address);
                    continue;
                }
                Err(e) => {
                    tracing::warn!(member = %address, error = %e, "auto-join: adding the learner failed");
                    continue;
                }
            },
        };
        if refused.get(&address) != Some(&why) {
            tracing::warn!(member = %address, "auto-join: not adding: {why}");
            refused.insert(address, why);
        }
    }
    promote_one(raft, membership).await;
}

/// Promotes the first discovered learner that is reachable and within [`CAUGHT_UP_LAG`] entries,
/// when the new voters keep a reachable majority (the admin API's checks).
async fn promote_one(raft: &RaftNode, membership: &Membership) {
    let m = raft.metrics();
    let current = membership.current();
    let candidates: Vec<u64> = m
        .learners
        .iter()
        .filter(|(_, info)| current.contains(&http_addr(&info.cluster_addr)))
        .map(|(id, _)| *id)
        .collect();
    if candidates.is_empty() {
        return;
    }
    let views = fresh_views(raft).await;
    for id in candidates {
        let v = views.get(&id);
        let caught_up = v.and_then(|v| v.matched).is_some_and(|x| m.last_log_index.saturating_sub(x) <= CAUGHT_UP_LAG);
        if !reachable(v) || !caught_up {
            tracing::debug!(id, "auto-join: learner not caught up or not reachable yet");
            continue;
        }
        let mut voters: BTreeSet<u64> = m.voters.keys().copied().collect();
        voters.insert(id);
        if !quorum_ok(&voters, &views) {
            tracing::debug!(id, "auto-join: promoting now would leave no reachable majority");
            continue;
        }
        match raft.change_membership(voters, true).await {
            Ok(ix) => tracing::info!(id, log_index = ix, "auto-join: learner promoted to voter"),
            Err(e) => tracing::warn!(id, error = %e, "auto-join: promotion failed"),
        }
        return;
    }
}

//! Step 1 of a reconcile: read the cluster's StatefulSet and pods from the API server and each
//! node's own Raft view, find the leader, and join Raft members with pods.

use futures::future::join_all;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::ListParams;
use kube::{Api, ResourceExt};

use crate::config::Addressing;
use crate::crd::MemberRole;
use crate::membership::{NodeClient, NodeSelf, Observed, PodView, RaftMember, RaftMembers, RaftView, StsView};
use crate::names::{ClusterNames, REVISION_LABEL};
use crate::{Error, Result};

/// The observation of one reconcile.
#[derive(Clone, Debug, Default)]
pub struct Observation {
    /// What the planner and status see.
    pub observed: Observed,
    /// The StatefulSet as read.
    pub statefulset: Option<StatefulSet>,
    /// HTTP address of the leader that answered.
    pub leader_address: Option<String>,
    /// Why no Raft view could be had (for status messages).
    pub raft_problem: Option<String>,
}

/// Whether the pod's Ready condition is True.
pub fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The planner's view of a StatefulSet.
pub fn sts_view(sts: &StatefulSet) -> StsView {
    let status = sts.status.as_ref();
    let observed = status.and_then(|s| s.observed_generation).unwrap_or(0);
    StsView {
        replicas: sts.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
        update_revision: status.and_then(|s| s.update_revision.clone()),
        up_to_date: observed >= sts.metadata.generation.unwrap_or(0),
    }
}

/// Reads the cluster's state.
pub async fn observe(
    names: &ClusterNames,
    addressing: Addressing,
    statefulsets: &Api<StatefulSet>,
    pods: &Api<Pod>,
    nodes: &NodeClient,
) -> Result<Observation> {
    let sts =
        statefulsets.get_opt(names.base()).await.map_err(Error::kube(format!("get StatefulSet {}", names.base())))?;
    let list = pods
        .list(&ListParams::default().labels(&names.selector()))
        .await
        .map_err(Error::kube(format!("list pods of {}", names.name)))?;
    let mut views = Vec::new();
    for pod in &list.items {
        let Some(ordinal) = names.ordinal_of(&pod.name_any()) else { continue };
        let ip = pod.status.as_ref().and_then(|s| s.pod_ip.as_deref()).filter(|ip| !ip.is_empty());
        views.push(PodView {
            name: pod.name_any(),
            ordinal,
            uid: pod.uid().unwrap_or_default(),
            ready: pod_ready(pod),
            terminating: pod.metadata.deletion_timestamp.is_some(),
            revision: pod.labels().get(REVISION_LABEL).cloned(),
            // A pod without an IP has no DNS record either: treat it as unaddressable in both modes.
            address: ip.and_then(|ip| names.member_address(addressing, ordinal, Some(ip))),
            node_id: None,
        });
    }
    views.sort_by_key(|p| p.ordinal);
    let answers: Vec<Option<NodeSelf>> = join_all(views.iter().map(|p| async move {
        match &p.address {
            Some(a) => nodes.node_self(a).await.ok(),
            None => None,
        }
    }))
    .await;
    for (v, a) in views.iter_mut().zip(&answers) {
        v.node_id = a.as_ref().map(|s| s.id);
    }
    let (raft, leader_address, raft_problem) = match find_leader(&views, &answers, nodes).await {
        Ok((members, address)) => (Some(join(names, addressing, &views, members)), Some(address), None),
        Err(why) => (None, None, Some(why)),
    };
    Ok(Observation {
        observed: Observed { pods: views, sts: sts.as_ref().map(sts_view), raft },
        statefulset: sts,
        leader_address,
        raft_problem,
    })
}

/// Asks the node that claims leadership (highest term first), else the node the others name as
/// leader, for the member list; accepts it only from a node that says it leads.
async fn find_leader(
    views: &[PodView],
    answers: &[Option<NodeSelf>],
    nodes: &NodeClient,
) -> std::result::Result<(RaftMembers, String), String> {
    let mut candidates: Vec<(u64, String)> = Vec::new();
    let mut claims: Vec<(&PodView, &NodeSelf)> = views
        .iter()
        .zip(answers)
        .filter_map(|(v, a)| a.as_ref().map(|a| (v, a)))
        .filter(|(_, a)| a.role == "leader")
        .collect();
    claims.sort_by_key(|(_, a)| std::cmp::Reverse(a.term));
    for (v, a) in claims {
        if let Some(addr) = &v.address {
            candidates.push((a.id, addr.clone()));
        }
    }
    let mut named: Vec<(u64, u64)> = answers.iter().flatten().filter_map(|a| a.leader.map(|l| (a.term, l))).collect();
    named.sort_by_key(|(term, _)| std::cmp::Reverse(*term));
    for (_, leader) in named {
        if let Some(addr) = views.iter().find(|v| v.node_id == Some(leader)).and_then(|v| v.address.clone())
            && !candidates.iter().any(|(id, _)| *id == leader)
        {
            candidates.push((leader, addr));
        }
    }
    if candidates.is_empty() {
        let answering = answers.iter().flatten().count();
        return Err(format!("no node knows a leader ({answering} of {} pods answered)", views.len()));
    }
    let mut last = String::new();
    for (id, addr) in candidates {
        match nodes.members(&addr).await {
            Ok(m) if m.leader == Some(m.node_id) && m.node_id == id => return Ok((m, addr)),
            Ok(m) => last = format!("node {id} at {addr} no longer leads (leader {:?})", m.leader),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// Joins the leader's member list with pods: by address, then by the id a pod's node reports, then
/// (DNS addressing) by parsing the pod name out of the address.
fn join(names: &ClusterNames, addressing: Addressing, views: &[PodView], m: RaftMembers) -> RaftView {
    let members = m
        .members
        .into_iter()
        .map(|e| {
            let ordinal = views
                .iter()
                .find(|v| v.address.as_deref() == Some(e.address.as_str()))
                .or_else(|| views.iter().find(|v| v.node_id == Some(e.id)))
                .map(|v| v.ordinal)
                .or_else(|| match addressing {
                    Addressing::Dns => {
                        let host = e.address.rsplit_once(':').map_or(e.address.as_str(), |(h, _)| h);
                        let pod = host.strip_suffix(&format!(".{}", names.peer_domain()))?;
                        names.ordinal_of(pod)
                    }
                    Addressing::Ip => None,
                });
            let role = match e.role.as_str() {
                "leader" => MemberRole::Leader,
                "learner" => MemberRole::Learner,
                _ => MemberRole::Voter,
            };
            RaftMember { id: e.id, address: e.address, role, lag: e.lag, healthy: e.healthy, ordinal }
        })
        .collect();
    RaftView { leader: m.leader.unwrap_or(m.node_id), term: m.term, members }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::RaftMembersEntry;

    fn names() -> ClusterNames {
        ClusterNames::sample()
    }

    fn entry(id: u64, address: &str, role: &str) -> RaftMembersEntry {
        RaftMembersEntry { id, address: address.into(), role: role.into(), lag: Some(0), healthy: Some(true) }
    }

    #[test]
    fn members_join_pods_by_address_id_or_name() {
        let n = names();
        let views = vec![
            PodView {
                name: "reg-0".into(),
                ordinal: 0,
                address: Some("127.0.1.1:8848".into()),
                node_id: Some(1),
                ..Default::default()
            },
            PodView {
                name: "reg-1".into(),
                ordinal: 1,
                address: Some("127.0.1.2:8848".into()),
                node_id: Some(2),
                ..Default::default()
            },
        ];
        let m = RaftMembers {
            node_id: 1,
            leader: Some(1),
            term: 4,
            members: vec![
                entry(1, "127.0.1.1:8848", "leader"),
                entry(2, "127.0.1.9:8848", "voter"),
                entry(3, "127.0.1.3:8848", "learner"),
            ],
        };
        let r = join(&n, Addressing::Ip, &views, m);
        assert_eq!(r.leader, 1);
        let got: Vec<_> = r.members.iter().map(|m| (m.id, m.role, m.ordinal)).collect();
        assert_eq!(
            got,
            [(1, MemberRole::Leader, Some(0)), (2, MemberRole::Voter, Some(1)), (3, MemberRole::Learner, None)]
        );
        let dns = RaftMembers {
            node_id: 1,
            leader: Some(1),
            term: 4,
            members: vec![entry(9, "reg-4.reg-headless.ns.svc.cluster.local:8848", "voter"), entry(8, "x:1", "voter")],
        };
        let r = join(&n, Addressing::Dns, &[], dns);
        assert_eq!(r.members[0].ordinal, Some(4), "DNS addresses name their pod even when it is gone");
        assert_eq!(r.members[1].ordinal, None);
    }
}

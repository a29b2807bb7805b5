//! Cluster formation and membership: pass-throughs to openraft with Cairn's errors.

use std::collections::BTreeMap;
use std::collections::BTreeSet;

use cairn_proto::cluster::NodeInfoRequest;
use openraft::errors::ClientWriteError;
use openraft::errors::InitializeError;
use openraft::errors::RaftError;
use openraft::raft::ClientWriteResponse;

use super::RaftNode;
use crate::error::Error;
use crate::error::Result;
use crate::network::convert::PeerStatus;
use crate::types::NodeId;
use crate::types::NodeInfo;
use crate::types::TypeConfig;

impl RaftNode {
    /// Forms a cluster of `members` (this node among them). Idempotent: on a node that is
    /// already part of a cluster it changes nothing and returns `Ok`. Call it on one node only
    /// (or on all with the same members); the others join as the leader replicates to them.
    pub async fn initialize(&self, members: BTreeMap<NodeId, NodeInfo>) -> Result<()> {
        if !members.contains_key(&self.id()) {
            return Err(Error::Initialize(format!("this node ({}) is not among the members", self.id())));
        }
        match self.inner.raft.initialize(members).await {
            Ok(()) => Ok(()),
            Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                tracing::debug!(reason = %e, "raft already initialized");
                Ok(())
            }
            Err(RaftError::APIError(e)) => Err(Error::Initialize(e.to_string())),
            Err(RaftError::Fatal(f)) => Err(Error::Stopped(f.to_string())),
        }
    }

    /// Leader only: adds `id` at `node` as a learner (it receives the log but does not vote).
    /// With `blocking`, returns once the learner has caught up. Returns the log index of the
    /// membership entry.
    pub async fn add_learner(&self, id: NodeId, node: NodeInfo, blocking: bool) -> Result<u64> {
        membership_result(self.inner.raft.add_learner(id, node, blocking).await)
    }

    /// Leader only: makes `voters` the voting members (joint consensus, two log entries).
    /// With `retain`, removed voters stay as learners. Every new voter must already be a
    /// learner. Returns the log index of the final membership entry.
    pub async fn change_membership(&self, voters: BTreeSet<NodeId>, retain: bool) -> Result<u64> {
        membership_result(self.inner.raft.change_membership(voters, retain).await)
    }

    /// Leader only: asks voter `to` to take over leadership (e.g. before removing this node).
    /// Returns once the request is submitted; watch [`metrics`](Self::metrics) for the change.
    pub async fn transfer_leader(&self, to: NodeId) -> Result<()> {
        if !self.is_leader() {
            return Err(Error::NotLeader { leader: self.leader().map(|(id, _)| id) });
        }
        self.inner.raft.trigger().transfer_leader(to).await.map_err(|f| Error::Stopped(f.to_string()))
    }

    /// Builds a snapshot now (and lets openraft purge the log it covers).
    pub async fn trigger_snapshot(&self) -> Result<()> {
        self.inner.raft.trigger().snapshot().await.map_err(|f| Error::Stopped(f.to_string()))
    }

    /// Asks the node at `cluster_addr` who it is (`NodeInfo` RPC): its id, whether it belongs
    /// to a cluster, and its view of the membership. Used before forming a cluster.
    pub async fn peer_status(&self, cluster_addr: &str) -> Result<PeerStatus> {
        let mut client = self.inner.pool.client(cluster_addr)?;
        let timeout = self.inner.config.connect_timeout * 2;
        let mut request = tonic::Request::new(NodeInfoRequest {});
        request.set_timeout(timeout);
        let rpc_error = |status| Error::Rpc { rpc: "NodeInfo", target: 0, addr: cluster_addr.to_string(), status };
        match tokio::time::timeout(timeout, client.node_info(request)).await {
            Err(_) => Err(Error::Timeout { action: "NodeInfo", after: timeout }),
            Ok(Err(status)) => Err(rpc_error(Box::new(status))),
            Ok(Ok(reply)) => Ok(reply.into_inner().into()),
        }
    }
}

fn membership_result(
    result: Result<ClientWriteResponse<TypeConfig>, RaftError<TypeConfig, ClientWriteError<TypeConfig>>>,
) -> Result<u64> {
    match result {
        Ok(resp) => Ok(resp.log_id.index()),
        Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => Err(Error::NotLeader { leader: f.leader_id }),
        Err(RaftError::APIError(e)) => Err(Error::Membership(e.to_string())),
        Err(RaftError::Fatal(f)) => Err(Error::Stopped(f.to_string())),
    }
}

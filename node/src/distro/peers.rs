//! Outbound Distro calls: one lazily connected gRPC channel per peer, every call bounded by a
//! timeout, so a vanished peer costs a timeout, never a stuck task.

use std::collections::HashMap;
use std::time::Duration;

use cairn_proto::cluster::DistroMessage;
use cairn_proto::cluster::distro_service_client::DistroServiceClient;
use futures::StreamExt;
use parking_lot::Mutex;
use tonic::transport::{Channel, Endpoint};

use super::wire::{self, SyncBatch, VerifyReply};
use crate::config::Config;

/// Channels to peers by member address.
#[derive(Default)]
pub struct Peers {
    channels: Mutex<HashMap<String, Channel>>,
}

/// Limits of one call.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

impl Peers {
    fn client(&self, member: &str) -> Result<DistroServiceClient<Channel>, String> {
        let mut map = self.channels.lock();
        if let Some(ch) = map.get(member) {
            return Ok(DistroServiceClient::new(ch.clone()).max_decoding_message_size(usize::MAX));
        }
        let url = format!("http://{}", Config::member_cluster_addr(member));
        let ch = Endpoint::from_shared(url)
            .map_err(|e| format!("bad peer address {member}: {e}"))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            .tcp_nodelay(true)
            .connect_lazy();
        map.insert(member.to_owned(), ch.clone());
        Ok(DistroServiceClient::new(ch).max_decoding_message_size(usize::MAX))
    }

    /// Forgets channels of addresses that are no longer members.
    pub fn retain(&self, members: &[String]) {
        self.channels.lock().retain(|a, _| members.contains(a));
    }

    /// Sends an encoded [`SyncBatch`] to `member`.
    pub async fn sync(&self, member: &str, payload: Vec<u8>) -> Result<(), String> {
        let mut c = self.client(member)?;
        c.sync(DistroMessage { payload }).await.map_err(|s| format!("sync to {member}: {}", s.message()))?;
        Ok(())
    }

    /// Sends an encoded verification to `member` and returns its reply.
    pub async fn verify(&self, member: &str, payload: Vec<u8>) -> Result<VerifyReply, String> {
        let mut c = self.client(member)?;
        let reply =
            c.verify(DistroMessage { payload }).await.map_err(|s| format!("verify at {member}: {}", s.message()))?;
        wire::decode(&reply.into_inner().payload)
    }

    /// Streams `member`'s own clients, handing every batch to `apply`; returns the number of
    /// batches. Bounded by `limit` overall.
    pub async fn snapshot(
        &self,
        member: &str,
        limit: Duration,
        mut apply: impl FnMut(SyncBatch),
    ) -> Result<usize, String> {
        let work = async {
            let mut c = self.client(member)?;
            let mut stream = c
                .snapshot(DistroMessage { payload: Vec::new() })
                .await
                .map_err(|s| format!("snapshot from {member}: {}", s.message()))?
                .into_inner();
            let mut n = 0;
            while let Some(msg) = stream.next().await {
                let msg = msg.map_err(|s| format!("snapshot from {member}: {}", s.message()))?;
                apply(wire::decode(&msg.payload)?);
                n += 1;
            }
            Ok(n)
        };
        tokio::time::timeout(limit, work).await.map_err(|_| format!("snapshot from {member}: timed out"))?
    }
}

//! The client side: openraft's `RaftNetworkFactory` and `RaftNetworkV2` over gRPC.

use std::future::Future;
use std::sync::Arc;

use cairn_proto::cluster::RaftReply;
use cairn_proto::cluster::RaftRequest;
use cairn_proto::cluster::SnapshotChunk;
use cairn_proto::cluster::raft_service_client::RaftServiceClient;
use futures::StreamExt;
use openraft::OptionalSend;
use openraft::RPCTypes;
use openraft::RaftNetworkFactory;
use openraft::RaftNetworkV2;
use openraft::base::BoxFuture;
use openraft::base::BoxStream;
use openraft::errors::NetworkError;
use openraft::errors::RPCError;
use openraft::errors::ReplicationClosed;
use openraft::errors::StreamingError;
use openraft::errors::Unreachable;
use openraft::network::RPCOption;
use openraft::raft::AppendEntriesRequest;
use openraft::raft::AppendEntriesResponse;
use openraft::raft::SnapshotResponse;
use openraft::raft::StreamAppendResult;
use openraft::raft::TransferLeaderRequest;
use openraft::raft::TransferLeaderResponse;
use openraft::raft::VoteRequest;
use openraft::raft::VoteResponse;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tonic::metadata::MetadataMap;
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;

use super::ChannelPool;
use super::FROM_HEADER;
use super::TARGET_HEADER;
use super::status::Route;
use crate::codec::decode;
use crate::codec::encode;
use crate::types::NodeId;
use crate::types::NodeInfo;
use crate::types::Snapshot;
use crate::types::TypeConfig;
use crate::types::Vote;

type RpcResult<T> = Result<T, RPCError<TypeConfig>>;

/// Creates a [`PeerClient`] per peer for openraft; all share one channel pool.
#[derive(Clone)]
pub struct NetworkFactory {
    self_id: NodeId,
    pool: ChannelPool,
    snapshot_chunk_bytes: usize,
}

impl NetworkFactory {
    pub(crate) fn new(self_id: NodeId, pool: ChannelPool, snapshot_chunk_bytes: usize) -> Self {
        Self { self_id, pool, snapshot_chunk_bytes }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerClient;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> PeerClient {
        let client = if target == self.self_id {
            // openraft panics if a leader replicates to itself; never build that connection.
            tracing::error!(target, addr = %node.cluster_addr, "refusing to create a raft client to this node itself");
            Err(format!("node {target} is this node; refusing to connect to self"))
        } else {
            self.pool.client(&node.cluster_addr).map_err(|e| e.to_string())
        };
        PeerClient {
            route: Route { from: self.self_id, target },
            client: client.map(Box::new),
            snapshot_chunk_bytes: self.snapshot_chunk_bytes,
        }
    }
}

/// Sends openraft's RPCs to one peer.
pub struct PeerClient {
    route: Route,
    client: Result<Box<RaftServiceClient<Channel>>, String>,
    snapshot_chunk_bytes: usize,
}

impl PeerClient {
    fn client(&self) -> Result<RaftServiceClient<Channel>, Unreachable<TypeConfig>> {
        match &self.client {
            Ok(c) => Ok((**c).clone()),
            Err(e) => Err(Unreachable::from_string(e)),
        }
    }

    fn stamp(&self, metadata: &mut MetadataMap) {
        metadata.insert(TARGET_HEADER, MetadataValue::from(self.route.target));
        metadata.insert(FROM_HEADER, MetadataValue::from(self.route.from));
    }

    /// One unary call: encode, send with the soft deadline, decode.
    async fn unary<Req, Resp, F, Fut>(&self, action: RPCTypes, req: &Req, option: RPCOption, call: F) -> RpcResult<Resp>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        F: FnOnce(RaftServiceClient<Channel>, tonic::Request<RaftRequest>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<RaftReply>, tonic::Status>>,
    {
        let client = self.client()?;
        let payload = encode("raft request", req).map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        let ttl = option.soft_ttl();
        let mut request = tonic::Request::new(RaftRequest { payload });
        request.set_timeout(ttl);
        self.stamp(request.metadata_mut());
        let reply = match tokio::time::timeout(ttl, call(client, request)).await {
            Err(_) => return Err(self.route.timeout(action, ttl)),
            Ok(Err(status)) => return Err(self.route.rpc_error(action, ttl, status)),
            Ok(Ok(reply)) => reply.into_inner(),
        };
        decode("raft reply", &reply.payload).map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<TypeConfig>> {
        self.unary(RPCTypes::AppendEntries, &rpc, option, |mut c, r| async move { c.append_entries(r).await }).await
    }

    fn stream_append<'s, S>(
        &'s mut self,
        input: S,
        option: RPCOption,
    ) -> BoxFuture<'s, RpcResult<BoxStream<'s, RpcResult<StreamAppendResult<TypeConfig>>>>>
    where
        S: futures::Stream<Item = AppendEntriesRequest<TypeConfig>> + OptionalSend + Unpin + 'static,
    {
        Box::pin(async move {
            let mut client = self.client()?;
            let route = self.route;
            // Take the first request before connecting: openraft applies its retry backoff while
            // producing requests, so a peer that refuses connections is not redialled in a loop.
            let mut input = input;
            let Some(first) = input.next().await else {
                return Ok(Box::pin(futures::stream::empty()) as BoxStream<'s, _>);
            };
            let input = futures::stream::once(async move { first }).chain(input);
            let requests = input.filter_map(|req| async move {
                match encode("append entries", &req) {
                    Ok(payload) => Some(RaftRequest { payload }),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot encode append entries; ending the stream");
                        None
                    }
                }
            });
            let mut request = tonic::Request::new(requests);
            self.stamp(request.metadata_mut());
            let ttl = option.soft_ttl();
            let replies = match tokio::time::timeout(ttl, client.stream_append(request)).await {
                Err(_) => return Err(route.timeout(RPCTypes::AppendEntries, ttl)),
                Ok(Err(status)) => return Err(route.rpc_error(RPCTypes::AppendEntries, ttl, status)),
                Ok(Ok(replies)) => replies.into_inner(),
            };
            let results = replies.map(move |item| match item {
                Ok(reply) => decode::<StreamAppendResult<TypeConfig>>("stream append result", &reply.payload)
                    .map_err(|e| RPCError::Unreachable(Unreachable::new(&e))),
                Err(status) => Err(route.rpc_error(RPCTypes::AppendEntries, ttl, status)),
            });
            Ok(Box::pin(results) as BoxStream<'s, _>)
        })
    }

    async fn vote(&mut self, rpc: VoteRequest<TypeConfig>, option: RPCOption) -> RpcResult<VoteResponse<TypeConfig>> {
        self.unary(RPCTypes::Vote, &rpc, option, |mut c, r| async move { c.vote(r).await }).await
    }

    async fn pre_vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<TypeConfig>> {
        self.unary(RPCTypes::Vote, &rpc, option, |mut c, r| async move { c.pre_vote(r).await }).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: Snapshot,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let mut client = self.client()?;
        let route = self.route;
        let total = snapshot.snapshot.len() as u64;
        let header = encode("snapshot header", &(vote, &snapshot.meta, total))
            .map_err(|e| StreamingError::Network(NetworkError::new(&e)))?;
        let mut request = tonic::Request::new(chunks(header, Arc::new(snapshot.snapshot), self.snapshot_chunk_bytes));
        self.stamp(request.metadata_mut());
        let ttl = option.hard_ttl();
        request.set_timeout(ttl);
        tracing::info!(target = route.target, bytes = total, "sending raft snapshot");
        let call = tokio::time::timeout(ttl, client.install_snapshot(request));
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            result = call => match result {
                Err(_) => Err(route.timeout(RPCTypes::InstallSnapshot, ttl).into()),
                Ok(Err(status)) => Err(route.streaming_error(RPCTypes::InstallSnapshot, ttl, status)),
                Ok(Ok(reply)) => decode("snapshot response", &reply.into_inner().payload)
                    .map_err(|e| StreamingError::Unreachable(Unreachable::new(&e))),
            },
        }
    }

    async fn transfer_leader(
        &mut self,
        req: TransferLeaderRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<TransferLeaderResponse<TypeConfig>> {
        self.unary(RPCTypes::TransferLeader, &req, option, |mut c, r| async move { c.transfer_leader(r).await }).await
    }
}

/// The snapshot as a lazy stream of chunks; the first one carries the header.
fn chunks(
    header: Vec<u8>,
    data: Arc<Vec<u8>>,
    chunk_bytes: usize,
) -> impl futures::Stream<Item = SnapshotChunk> + Send + 'static {
    let chunk_bytes = chunk_bytes.max(1);
    futures::stream::unfold(Some((0usize, Some(header))), move |state| {
        let data = data.clone();
        async move {
            let (offset, header) = state?;
            let end = offset.saturating_add(chunk_bytes).min(data.len());
            let chunk = SnapshotChunk { header: header.unwrap_or_default(), data: data[offset..end].to_vec() };
            let next = (end < data.len()).then_some((end, None));
            Some((chunk, next))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn snapshot_chunks_cover_the_data_once() {
        let data: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        let got: Vec<SnapshotChunk> = chunks(b"h".to_vec(), Arc::new(data.clone()), 4096).collect().await;
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].header, b"h");
        assert!(got[1].header.is_empty() && got[2].header.is_empty());
        let joined: Vec<u8> = got.iter().flat_map(|c| c.data.clone()).collect();
        assert_eq!(joined, data);
        let empty: Vec<SnapshotChunk> = chunks(b"h".to_vec(), Arc::new(Vec::new()), 4096).collect().await;
        assert_eq!(empty.len(), 1);
        assert!(empty[0].data.is_empty());
    }
}

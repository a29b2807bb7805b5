//! The server side: `cairn.cluster.RaftService`, mounted by the node on its cluster gRPC port.

use std::pin::Pin;
use std::sync::Arc;

use cairn_proto::cluster::ForwardReply;
use cairn_proto::cluster::ForwardRequest;
use cairn_proto::cluster::NodeInfoReply;
use cairn_proto::cluster::NodeInfoRequest;
use cairn_proto::cluster::RaftReply;
use cairn_proto::cluster::RaftRequest;
use cairn_proto::cluster::ReadIndexReply;
use cairn_proto::cluster::ReadIndexRequest;
use cairn_proto::cluster::SnapshotChunk;
use cairn_proto::cluster::raft_service_server::RaftService;
use cairn_proto::cluster::raft_service_server::RaftServiceServer;
use cairn_proto::cluster::read_index_reply;
use futures::Stream;
use futures::StreamExt;
use openraft::ReadPolicy;
use openraft::async_runtime::watch::WatchReceiver;
use openraft::errors::LinearizableReadError;
use openraft::errors::RaftError;
use openraft::raft::AppendEntriesRequest;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use tonic::Request;
use tonic::Response;
use tonic::Status;
use tonic::Streaming;
use tonic::metadata::MetadataMap;

use super::TARGET_HEADER;
use super::convert;
use super::status::bad_payload;
use super::status::stopped;
use crate::codec::decode;
use crate::codec::encode;
use crate::node::outcome::WriteOutcome;
use crate::store::snapshot;
use crate::types::Command;
use crate::types::NodeId;
use crate::types::Raft;
use crate::types::Snapshot;
use crate::types::SnapshotMeta;
use crate::types::TypeConfig;
use crate::types::Vote;

/// Serves a node's Raft to its peers. Build it with [`raft_service`].
#[derive(Clone)]
pub struct RaftGrpcServer {
    raft: Raft,
    node_id: NodeId,
    advertise_addr: Arc<str>,
    max_snapshot_bytes: u64,
    /// Either firing ends the replication streams: the server's shutdown, the node's.
    closing: [CancellationToken; 2],
}

/// The tonic service for a node's cluster gRPC server, with message limits raised to
/// [`RaftConfig::max_message_bytes`](crate::RaftConfig::max_message_bytes). The node owns the
/// listener: `Server::builder().add_service(raft_service(&node))`.
///
/// Enable `TCP_NODELAY` on the listener (`TcpIncoming::with_nodelay(Some(true))`): without
/// it, Nagle's algorithm meets delayed ACKs and small Raft messages wait up to 40 ms.
///
/// Replication streams (`StreamAppend`) stay open while Raft runs; they end when
/// [`RaftNode::shutdown`](crate::RaftNode::shutdown) starts. A server whose graceful shutdown
/// starts before that waits for them: use [`raft_service_with_shutdown`] with the server's
/// shutdown token instead.
pub fn raft_service(node: &crate::RaftNode) -> RaftServiceServer<RaftGrpcServer> {
    raft_service_with_shutdown(node, CancellationToken::new())
}

/// [`raft_service`] whose replication streams also end when `shutdown` fires, so the server's
/// graceful shutdown (on the same token) does not wait for them.
pub fn raft_service_with_shutdown(
    node: &crate::RaftNode,
    shutdown: CancellationToken,
) -> RaftServiceServer<RaftGrpcServer> {
    let cfg = node.config();
    let server = RaftGrpcServer {
        raft: node.raft().clone(),
        node_id: node.id(),
        advertise_addr: Arc::from(cfg.advertise_addr.as_str()),
        max_snapshot_bytes: cfg.max_snapshot_bytes,
        closing: [shutdown, node.closing()],
    };
    RaftServiceServer::new(server)
        .max_decoding_message_size(cfg.max_message_bytes)
        .max_encoding_message_size(cfg.max_message_bytes)
}

impl RaftGrpcServer {
    /// Refuses requests meant for another node id (see [`super`]).
    fn check_target(&self, metadata: &MetadataMap) -> Result<(), Status> {
        let target = metadata
            .get(TARGET_HEADER)
            .ok_or_else(|| Status::invalid_argument(format!("missing {TARGET_HEADER} header")))?
            .to_str()
            .ok()
            .and_then(|s| s.parse::<NodeId>().ok())
            .ok_or_else(|| Status::invalid_argument(format!("malformed {TARGET_HEADER} header")))?;
        if target != self.node_id {
            return Err(Status::failed_precondition(format!(
                "this is raft node {} at {}, not node {target}",
                self.node_id, self.advertise_addr
            )));
        }
        Ok(())
    }

    /// Completes when the server or the node shuts down.
    fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let [a, b] = self.closing.clone();
        async move {
            tokio::select! {
                _ = a.cancelled() => {}
                _ = b.cancelled() => {}
            }
        }
    }

    fn decode_request<T: DeserializeOwned>(&self, request: Request<RaftRequest>) -> Result<T, Status> {
        self.check_target(request.metadata())?;
        decode("raft request", &request.into_inner().payload).map_err(bad_payload)
    }
}

fn reply<T: Serialize>(value: &T) -> Result<Response<RaftReply>, Status> {
    let payload = encode("raft reply", value).map_err(|e| Status::internal(e.to_string()))?;
    Ok(Response::new(RaftReply { payload }))
}

type ReplyStream = Pin<Box<dyn Stream<Item = Result<RaftReply, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl RaftService for RaftGrpcServer {
    async fn append_entries(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let req: AppendEntriesRequest<TypeConfig> = self.decode_request(request)?;
        let resp = self.raft.append_entries(req).await.map_err(stopped)?;
        reply(&resp)
    }

    type StreamAppendStream = ReplyStream;

    async fn stream_append(
        &self,
        request: Request<Streaming<RaftRequest>>,
    ) -> Result<Response<Self::StreamAppendStream>, Status> {
        self.check_target(request.metadata())?;
        // A malformed message or a broken connection ends the input; openraft then ends the
        // output and the leader opens a new stream.
        let input = request.into_inner().scan((), |_, item| {
            let req = match item {
                Ok(r) => decode::<AppendEntriesRequest<TypeConfig>>("append entries", &r.payload)
                    .inspect_err(|e| tracing::warn!(error = %e, "malformed append entries in stream"))
                    .ok(),
                Err(_) => None,
            };
            futures::future::ready(req)
        });
        // On shutdown both halves end, so the HTTP/2 stream closes and the server can drain.
        let input = input.take_until(self.closed());
        let output = self.raft.stream_append(input).map(|item| match item {
            Ok(result) => encode("stream append result", &result)
                .map(|payload| RaftReply { payload })
                .map_err(|e| Status::internal(e.to_string())),
            Err(fatal) => Err(stopped(fatal)),
        });
        Ok(Response::new(Box::pin(output.take_until(self.closed()))))
    }

    async fn vote(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let req = self.decode_request(request)?;
        reply(&self.raft.vote(req).await.map_err(stopped)?)
    }

    async fn pre_vote(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let req = self.decode_request(request)?;
        reply(&self.raft.pre_vote(req).await.map_err(stopped)?)
    }

    async fn transfer_leader(&self, request: Request<RaftRequest>) -> Result<Response<RaftReply>, Status> {
        let req = self.decode_request(request)?;
        reply(&self.raft.handle_transfer_leader(req).await.map_err(stopped)?)
    }

    async fn install_snapshot(
        &self,
        request: Request<Streaming<SnapshotChunk>>,
    ) -> Result<Response<RaftReply>, Status> {
        self.check_target(request.metadata())?;
        let mut chunks = request.into_inner();
        let first = chunks.message().await?.ok_or_else(|| Status::invalid_argument("empty snapshot stream"))?;
        let (vote, meta, total): (Vote, SnapshotMeta, u64) =
            decode("snapshot header", &first.header).map_err(bad_payload)?;
        if total > self.max_snapshot_bytes {
            return Err(Status::resource_exhausted(format!(
                "snapshot of {total} bytes exceeds the {} byte limit",
                self.max_snapshot_bytes
            )));
        }
        let mut data = Vec::with_capacity(total.min(64 << 20) as usize);
        data.extend_from_slice(&first.data);
        while let Some(chunk) = chunks.message().await? {
            if data.len() as u64 + chunk.data.len() as u64 > total {
                return Err(Status::invalid_argument("snapshot longer than announced"));
            }
            data.extend_from_slice(&chunk.data);
        }
        if data.len() as u64 != total {
            return Err(Status::invalid_argument(format!("snapshot truncated at {} of {total} bytes", data.len())));
        }
        // openraft panics on a snapshot inconsistent with its metadata; check ours first.
        let (inner, _) = snapshot::decode(&data).map_err(bad_payload)?;
        if inner != meta {
            return Err(Status::invalid_argument("snapshot data does not match its metadata"));
        }
        tracing::info!(bytes = total, last_log_id = ?meta.last_log_id, "received raft snapshot");
        let resp = self.raft.install_full_snapshot(vote, Snapshot { meta, snapshot: data }).await.map_err(stopped)?;
        reply(&resp)
    }

    async fn forward(&self, request: Request<ForwardRequest>) -> Result<Response<ForwardReply>, Status> {
        let commands = request.into_inner().commands;
        let n = commands.len();
        let mut outcomes = Vec::with_capacity(n);
        match self.raft.client_write_many(commands.into_iter().map(Command)).await {
            Ok(results) => {
                let mut results = results;
                while let Some(result) = results.next().await {
                    outcomes.push(WriteOutcome::from_write_result(result).into_wire());
                }
            }
            Err(fatal) => return Err(stopped(fatal)),
        }
        // The stream ends early only if Raft stopped: those commands were not answered.
        outcomes.resize_with(n, || WriteOutcome::Unknown("raft stopped before answering".into()).into_wire());
        Ok(Response::new(ForwardReply { outcomes }))
    }

    async fn read_index(&self, _request: Request<ReadIndexRequest>) -> Result<Response<ReadIndexReply>, Status> {
        let outcome = match self.raft.get_read_log_id(ReadPolicy::ReadIndex).await {
            Ok((read_log_id, _)) => read_index_reply::Outcome::Index(read_log_id.index()),
            Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f))) => {
                read_index_reply::Outcome::NotLeader(convert::not_leader(f.leader_id.zip(f.leader_node)))
            }
            Err(RaftError::APIError(e)) => return Err(Status::unavailable(e.to_string())),
            Err(RaftError::Fatal(f)) => return Err(stopped(f)),
        };
        Ok(Response::new(ReadIndexReply { outcome: Some(outcome) }))
    }

    async fn node_info(&self, _request: Request<NodeInfoRequest>) -> Result<Response<NodeInfoReply>, Status> {
        let metrics = self.raft.metrics();
        let reply = {
            let m = metrics.borrow_watched();
            convert::node_info_reply(&m, &self.advertise_addr)
        };
        Ok(Response::new(reply))
    }
}

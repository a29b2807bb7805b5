//! The Distro gRPC service on the cluster port.

use std::pin::Pin;
use std::sync::Arc;

use cairn_proto::cluster::DistroMessage;
use cairn_proto::cluster::distro_service_server::{DistroService, DistroServiceServer};
use futures::Stream;
use tonic::{Request, Response, Status};

use super::wire::{self, SyncBatch, Verify, VerifyReply};
use super::{Distro, SNAPSHOT_BATCH};

/// Serves peers' Distro calls.
pub struct DistroServer {
    distro: Arc<Distro>,
}

impl DistroServer {
    pub(super) fn new(distro: Arc<Distro>) -> Self {
        DistroServer { distro }
    }

    /// The tonic service, accepting messages of any size (a snapshot batch or a verification
    /// of many clients can exceed tonic's 4 MiB default).
    pub fn into_service(self) -> DistroServiceServer<DistroServer> {
        DistroServiceServer::new(self).max_decoding_message_size(usize::MAX)
    }
}

type SnapshotStream = Pin<Box<dyn Stream<Item = Result<DistroMessage, Status>> + Send>>;

#[tonic::async_trait]
impl DistroService for DistroServer {
    async fn sync(&self, req: Request<DistroMessage>) -> Result<Response<DistroMessage>, Status> {
        let batch: SyncBatch = wire::decode(&req.into_inner().payload).map_err(Status::invalid_argument)?;
        self.distro.receive_sync(batch);
        Ok(Response::new(DistroMessage { payload: Vec::new() }))
    }

    async fn verify(&self, req: Request<DistroMessage>) -> Result<Response<DistroMessage>, Status> {
        let v: Verify = wire::decode(&req.into_inner().payload).map_err(Status::invalid_argument)?;
        let reply = if v.origin.owner == self.distro.owned.origin().owner {
            VerifyReply::default()
        } else {
            self.distro.replicas.apply_verify(v)
        };
        Ok(Response::new(DistroMessage { payload: wire::encode(&reply) }))
    }

    type SnapshotStream = SnapshotStream;

    async fn snapshot(&self, _req: Request<DistroMessage>) -> Result<Response<SnapshotStream>, Status> {
        let batches = self.distro.owned.snapshot(SNAPSHOT_BATCH);
        let stream = futures::stream::iter(
            batches.into_iter().map(|b| Ok::<_, Status>(DistroMessage { payload: wire::encode(&b) })),
        );
        Ok(Response::new(Box::pin(stream)))
    }
}

//! Wire definitions for Cairn.
//!
//! [`nacos`] holds the Nacos client envelope (`Payload`, `Metadata`) and the two services
//! `Request` and `BiRequestStream`, generated at build time from `proto/nacos_grpc_service.proto`.
//! [`cluster`] holds Cairn's own peer-to-peer protocol (package `cairn.cluster`, service
//! `RaftService`, `DistroService`), generated from `proto/cairn_cluster.proto`.

pub mod codec;

/// The Nacos gRPC envelope: generated from a proto file without a package.
#[allow(missing_docs, non_camel_case_types, clippy::all)]
pub mod nacos {
    tonic::include_proto!("_");
}

/// Cairn's cluster protocol (`package cairn.cluster`): Raft RPCs, forwarding, node information.
#[allow(missing_docs, clippy::all)]
pub mod cluster {
    tonic::include_proto!("cairn.cluster");
}

pub use prost_types::Any;

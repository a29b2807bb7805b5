//! Wire definitions for Cairn.
//!
//! [`nacos`] holds the Nacos client envelope (`Payload`, `Metadata`) and the two services
//! `Request` and `BiRequestStream`, generated at build time from `proto/nacos_grpc_service.proto`.

/// The Nacos gRPC envelope: generated from a proto file without a package.
#[allow(missing_docs, non_camel_case_types, clippy::all)]
pub mod nacos {
    tonic::include_proto!("_");
}

pub use prost_types::Any;

//! gRPC request handlers behind the client transport.

pub mod naming;

pub use naming::GrpcApi;

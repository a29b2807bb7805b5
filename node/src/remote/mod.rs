//! The Nacos client gRPC transport: connection ids per TCP transport, setup, health checks,
//! client detection, server→client requests with acknowledgement, and graceful reset.

pub mod conn;
pub mod detect;
pub mod io;
pub mod server;
pub mod wire;

pub use conn::Connections;
pub use server::{Dispatch, GrpcServer, RequestCtx};

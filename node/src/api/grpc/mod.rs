//! gRPC request handlers behind the client transport, routed by `metadata.type`.

pub mod config;
pub mod naming;

use cairn_proto::nacos::Payload;

pub use config::ConfigGrpc;
pub use naming::NamingGrpc;

use crate::remote::wire;
use crate::remote::{Dispatch, RequestCtx};

/// Every gRPC handler of the node.
pub struct GrpcApi {
    naming: NamingGrpc,
    config: ConfigGrpc,
}

impl GrpcApi {
    /// Naming and config handlers.
    pub fn new(naming: NamingGrpc, config: ConfigGrpc) -> Self {
        GrpcApi { naming, config }
    }
}

impl Dispatch for GrpcApi {
    async fn handle(&self, ctx: &RequestCtx, ty: &str, body: &[u8]) -> Payload {
        let rid = wire::request_id_of(body);
        let rid = rid.as_deref();
        let mut result = self.naming.handle(ctx, ty, body, rid).await;
        if result.is_none() {
            result = self.config.handle(ctx, ty, body, rid).await;
        }
        match result {
            Some(Ok(p)) => p,
            Some(Err(e)) => wire::error_response(e.nacos_code(), &e.to_string(), rid),
            None => wire::error_response(302, &format!("RequestHandler Not Found for type {ty:?}"), rid),
        }
    }

    fn label(&self, ty: &str) -> &'static str {
        naming::TYPES.iter().chain(config::TYPES.iter()).find(|t| **t == ty).copied().unwrap_or("unknown")
    }
}

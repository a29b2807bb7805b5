//! The edges: Nacos wire shapes, gRPC handlers, HTTP handlers, and the push paths.

pub mod config_push;
pub mod dto;
pub mod grpc;
pub mod http;
pub mod push;
pub mod udp;

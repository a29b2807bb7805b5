//! Integration tests of cairn-raft: storage conformance, an in-process 3-node cluster over real
//! gRPC, snapshot catch-up, and durability across unclean stops.

mod cluster;
mod durability;
mod harness;
mod kv;
mod membership;
mod rpc;
mod snapshot;
mod suite;

#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, process tests of cairn-node, and the real Nacos
# clients (Rust nacos-sdk, Java nacos-client via Maven, Go nacos-sdk-go via the module proxy).
# Missing tools (mvn, java, go) skip loudly; CAIRN_REQUIRE_ALL=1 turns those skips into failures.
set -euo pipefail
cd "$(dirname "$0")"
cargo build --workspace --locked --bins
cargo test --workspace --locked "$@"

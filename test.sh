#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, process tests of cairn-node, the real Nacos
# clients (Rust nacos-sdk, Java nacos-client via Maven, Go nacos-sdk-go via the module proxy), and
# the Kubernetes tests (operator, Helm charts, the node's k8s: discovery) against a real
# kube-apiserver + kube-controller-manager + etcd and a real helm, which
# operator/testkit/fetch-tools.sh builds from the Go module proxy into target/cairn-tools (once;
# later runs reuse them). Missing tools (mvn, java, go, python3) skip loudly; CAIRN_REQUIRE_ALL=1
# turns those skips into failures.
set -euo pipefail
cd "$(dirname "$0")"
if command -v go >/dev/null 2>&1; then
    operator/testkit/fetch-tools.sh || echo "fetch-tools.sh failed: the Kubernetes tests will skip (or fail under CAIRN_REQUIRE_ALL=1)" >&2
else
    echo "SKIPPED: go not found; the Kubernetes tools cannot be built (the tests that need them skip, or fail under CAIRN_REQUIRE_ALL=1)" >&2
fi
cargo build --workspace --locked --bins
cargo test --workspace --locked "$@"

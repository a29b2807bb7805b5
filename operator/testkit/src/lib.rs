//! # cairn-kube-testkit — a real Kubernetes control plane for tests
//!
//! Used by the operator tests, the Helm chart tests and cairn-node's `k8s:` member-discovery tests. It runs the
//! real thing on loopback — etcd, kube-apiserver (1.36, `Node,RBAC` authorization) and optionally
//! kube-controller-manager — plus a fake kubelet that runs real processes (e.g. `cairn-node`) for Pods.
//!
//! ## Tools
//! [`tools()`] finds `kube-apiserver`, `kube-controller-manager`, `etcd` and `helm` in `$CAIRN_TOOLS_DIR`
//! (default `<repo>/target/cairn-tools`), running `operator/testkit/fetch-tools.sh` to build them from the Go
//! module proxy when missing (cold: tens of minutes; run the script before the tests in CI). When they cannot be
//! obtained it prints `SKIPPED: ...` and returns `None`, or panics under `CAIRN_REQUIRE_ALL=1`.
//!
//! ## Control plane
//! ```no_run
//! use cairn_kube_testkit::{ControlPlane, ControlPlaneOptions, tools};
//! # async fn t() -> cairn_kube_testkit::Result<()> {
//! let Some(tools) = tools() else { return Ok(()) };
//! let cp = ControlPlane::start(&tools, ControlPlaneOptions { controller_manager: true, ..Default::default() }).await?;
//! let client: kube::Client = cp.client();                  // admin (system:masters)
//! let kubeconfig: &std::path::Path = cp.kubeconfig_path(); // for helm / kubectl / KUBECONFIG of processes
//! cp.create_namespace("demo").await?;                      // + its `default` ServiceAccount
//! // after creating ServiceAccount demo/op and its RBAC objects:
//! let op_client = cp.client_for_service_account("demo", "op").await?; // least-privilege identity
//! let op_kubeconfig = cp.service_account_kubeconfig("demo", "op").await?;
//! # let _ = (client, kubeconfig, op_client, op_kubeconfig); Ok(()) }
//! ```
//! Each control plane has its own temp dir, PKI and free ports, so tests can run several at once. Drop kills all
//! of its processes (process groups; with util-linux `setpriv` also on the death of the test process) and removes
//! the temp dir. Component logs are files in [`ControlPlane::dir`]; they are printed on drop when `CAIRN_TEST_LOG`
//! is set or the test panics, and are part of startup errors.
//!
//! Facts of this cluster: Endpoints/EndpointSlices are not reconciled (the apiserver rejects loopback addresses;
//! `--endpoint-reconciler-type=none`), there is no DNS and no scheduler, and without a kubelet Pod status is driven
//! by [`set_pod_status`] or by a [`FakeKubelet`]. With kube-controller-manager, StatefulSets create Pods and PVCs
//! (PVCs stay Pending: no provisioner), garbage collection follows ownerReferences, namespaces get their `default`
//! ServiceAccount.
//!
//! ## Fake kubelet
//! ```no_run
//! # async fn t(cp: &cairn_kube_testkit::ControlPlane) -> cairn_kube_testkit::Result<()> {
//! use cairn_kube_testkit::{FakeKubelet, FakeKubeletOptions, PodInfo};
//! let mut options = FakeKubeletOptions::new("demo", "app=cairn");
//! options.ip_pool = "127.0.42.0/24".into(); // distinct per concurrently running test
//! options.readiness_port = Some(8848);        // GET http://<pod ip>:8848/nacos/v1/console/health/readiness
//! let kubelet = FakeKubelet::start(cp, options, |pod: &PodInfo| {
//!     let mut cmd = tokio::process::Command::new("cairn-node");
//!     cmd.arg("--bind").arg(pod.ip.to_string()).arg("--data-dir").arg(&pod.data_dir);
//!     cmd // env POD_NAME, POD_NAMESPACE, POD_IP, KUBECONFIG are added by the kubelet
//! })
//! .await?;
//! kubelet.kill9("cairn-0")?; // crash: restarted after `restart_delay`, the Pod stays
//! # Ok(()) }
//! ```
//! See the [`kubelet`] module for the exact behaviour.
//!
//! ## Environment
//! `CAIRN_TOOLS_DIR` (tools dir), `CAIRN_REQUIRE_ALL=1` (fail instead of skip), `CAIRN_TEST_LOG` (print component,
//! kubelet and pod-process logs), plus the version overrides of `fetch-tools.sh`.

pub mod certs;
pub mod control_plane;
pub mod error;
pub mod kubeconfig;
pub mod kubelet;
pub mod pod_status;
pub mod process;
pub mod tools;
pub mod wait;

pub use control_plane::{ControlPlane, ControlPlaneOptions};
pub use error::{Error, Result};
pub use kubeconfig::client_from_kubeconfig;
pub use kubelet::{DEFAULT_READINESS_PATH, FakeKubelet, FakeKubeletOptions, IpPool, PodInfo, ProcessState};
pub use pod_status::{PodPhase, PodState, set_pod_status};
pub use tools::{Tools, ensure_tools, require_all, tools};
pub use wait::poll_until;
